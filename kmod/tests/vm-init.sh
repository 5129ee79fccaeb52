#!/bin/busybox sh
# /init of the hpio test VM: mount, load helper modules, run the suite, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# Show warnings and worse on the console: the host scans it for WARNING/BUG.
echo "5 4 1 7" > /proc/sys/kernel/printk

while read -r m; do
	insmod /lib/modules/$m.ko || echo "insmod $m failed"
done </lib/modules/order
/sbin/ip link set lo up

# The host takes this line as "the guest booted" (tests/boot-check.sh):
# hpio.ko must not be loaded before it.
echo "== hpio VM: $(uname -r), $(nproc) CPU(s)"
# fuzz [-v]: the syscall fuzzer for the seconds and seed of /etc/hpio-fuzz;
# its summary is renamed and its counts written to /tmp/fuzz.result.
fuzz() {
	read -r secs seed </etc/hpio-fuzz
	if [ "${secs:-0}" = 0 ]; then
		echo "0 0" >/tmp/fuzz.result
		return
	fi
	/bin/hpio_fuzz -t "$secs" ${seed:+-s "$seed"} "$@" 2>&1 | awk '/^[0-9]+ passed, [0-9]+ failed$/ {
		print "hpio_fuzz: " $0; print $1, $3 > "/tmp/fuzz.result"; fflush(); next }
		{ print; fflush() }'
}
case "$(sed -n 's/.*hpio_mode=\([a-z-]*\).*/\1/p' /proc/cmdline)" in
bench)
	# make -C kmod bench: the measurements only (tests/nf-bench.sh).
	/bin/nf-bench.sh
	;;
fuzz)
	# make fuzz: the syscall fuzzer alone, for as long as FUZZ_SECS says.
	fuzz
	read -r p f </tmp/fuzz.result && echo "$p passed, $f failed"
	;;
nf)
	# HPIO_VM_MODE=nf: the hpio-nf tests alone (quicker while working on them).
	/bin/nf-forward.sh
	read -r p f </tmp/nf.result && echo "$p passed, $f failed"
	;;
virtio | virtio-bench)
	# make check-virtio / bench-virtio: the host drives tests/nf-virtio.sh.
	/bin/nf-virtio.sh
	;;
*)
	# hpio_test's summary is renamed so that the last "N passed, M failed"
	# line is the total over hpio_test and the hpio-nf tests.
	/bin/hpio_test 2>&1 | awk '/^[0-9]+ passed, [0-9]+ failed$/ {
		print "hpio_test: " $0; print $1, $3 > "/tmp/hpio_test.result"; fflush(); next }
		{ print; fflush() }'
	/bin/nf-forward.sh
	fuzz
	if read -r p1 f1 </tmp/hpio_test.result && read -r p2 f2 </tmp/nf.result &&
		read -r p3 f3 </tmp/fuzz.result; then
		echo "$((p1 + p2 + p3)) passed, $((f1 + f2 + f3)) failed"
	else
		echo "== a test program did not report its counts"
	fi
	;;
esac
sync
poweroff -f
