#!/usr/bin/env bash
# hpio.ko VM test suite (make -C kmod check).
#
#   tests/run-vm.sh KERNEL [KDIR]
#
# Builds hpio.ko against the headers of KERNEL (a Debian kernel version such
# as 6.1.0-56-amd64, installed with linux-image-amd64 linux-headers-amd64),
# builds the test programs and the C example statically, packs a busybox
# initramfs with them, veth/macvlan/bridge/tun modules and iproute2, boots
# /boot/vmlinuz-KERNEL in qemu and runs the tests.  Fails on a build
# warning, a failed check, a missing summary line or a kernel warning/oops.
# A guest that fails to boot before hpio.ko is loaded (an oops of the
# emulated kernel, no first line from /init) is booted once more, its first
# serial log kept as serial.boot1.log (tests/boot-check.sh).
#
# Environment: HPIO_VM_ACCEL=kvm|tcg skips the KVM probe, HPIO_VM_CPUS
# (default 2), HPIO_VM_TIMEOUT seconds (default 900), HPIO_VM_MODE=check
# (default), nf (the hpio-nf tests alone), bench (tests/nf-bench.sh), virtio
# or virtio-bench (two virtio-net NICs: tests/virtio-host.sh); HPIO_VM_PERF=1
# packs perf and hpio-nf's symbols (virtio-bench's profile).
set -euo pipefail

KERNEL=${1:?usage: run-vm.sh KERNEL [KDIR]}
KDIR=${2:-/usr/src/linux-headers-$KERNEL}
HERE=$(cd "$(dirname "$0")" && pwd)
KMOD=$(dirname "$HERE")
OUT=$KMOD/build/vm
ROOT=$OUT/root
VMLINUZ=/boot/vmlinuz-$KERNEL
MODDIR=/lib/modules/$KERNEL
CPUS=${HPIO_VM_CPUS:-2}
TIMEOUT=${HPIO_VM_TIMEOUT:-900}
START=$(date +%s)
# check: the test suite; nf: its hpio-nf tests alone; bench: tests/nf-bench.sh's
# measurements (make bench).
MODE=${HPIO_VM_MODE:-check}
# The syscall fuzzer's run time in the guest (tests/fuzz.c): make fuzz
# FUZZ_SECS=N alone, or a bounded part of check and check-virtio.
case "$MODE" in
fuzz) FUZZ_SECS=${HPIO_FUZZ_SECS:-600}; TIMEOUT=${HPIO_VM_TIMEOUT:-$((FUZZ_SECS + 600))} ;;
virtio) FUZZ_SECS=${HPIO_FUZZ_SECS:-30} ;;
check) FUZZ_SECS=${HPIO_FUZZ_SECS:-60} ;;
*) FUZZ_SECS=0 ;;
esac

die() { echo "run-vm: $*" >&2; exit 1; }
. "$HERE/boot-check.sh"

for f in "$VMLINUZ" "$KDIR/Makefile" "$MODDIR/modules.dep" /bin/busybox; do
	[ -e "$f" ] || die "missing $f (apt-get install linux-image-amd64 linux-headers-amd64 busybox-static qemu-system-x86 cpio iproute2)"
done
for c in qemu-system-x86_64 cpio gcc ip modprobe xz; do
	command -v "$c" >/dev/null || die "missing $c"
done
file_of() { readlink -f "$(command -v "$1")"; }
if ldd /bin/busybox >/dev/null 2>&1; then
	die "/bin/busybox is not static (apt-get install busybox-static)"
fi

rm -rf "$OUT"
mkdir -p "$ROOT"/{bin,sbin,proc,sys,dev,tmp,lib/hpio,lib/modules}

echo "== build hpio.ko against $KDIR (W=1)"
if ! make -C "$KMOD" KDIR="$KDIR" modules >"$OUT/build.log" 2>&1; then
	cat "$OUT/build.log"
	die "module build failed"
fi
if grep -E "warning:|error:" "$OUT/build.log"; then
	die "module build has warnings"
fi
cp "$KMOD/hpio.ko" "$ROOT/lib/hpio/"
# virtio-bench: another build of the module, for rounds named DRIVER+alt in
# the same boot (a change measured against the noise of one boot; see
# BENCH_ALT_NF below for hpio-nf).
if [ -n "${BENCH_ALT_KO:-}" ]; then
	modinfo -F vermagic "$BENCH_ALT_KO" | grep -q "^${KERNEL} " ||
		die "BENCH_ALT_KO=$BENCH_ALT_KO is not built for $KERNEL"
	cp "$BENCH_ALT_KO" "$ROOT/lib/hpio/hpio-alt.ko"
fi

echo "== build test programs and the C example"
CFLAGS="-static -O2 -Wall -Wextra -Werror -I$KMOD/include/uapi"
gcc $CFLAGS -o "$ROOT/bin/hpio_test" "$HERE"/main.c "$HERE"/harness.c \
	"$HERE"/t_data.c "$HERE"/t_errors.c "$HERE"/t_life.c "$HERE"/t_removal.c \
	"$HERE"/t_sizes.c "$HERE"/t_perm.c -lpthread
gcc $CFLAGS -o "$ROOT/bin/hpio_example" "$KMOD/examples/hpio_tx.c"
gcc $CFLAGS -o "$ROOT/bin/hpio_fuzz" "$HERE"/fuzz.c "$HERE"/harness.c -lpthread

echo "== build hpio-nf (release) for the hpio-nf tests"
WS=$(dirname "$KMOD")
command -v cargo >/dev/null || die "missing cargo (the hpio-nf tests run the workspace's hpio-nf)"
(cd "$WS" && cargo build --release -q -p hpio-nf-cli) || die "hpio-nf build failed"
NF="$WS/target/release/hpio-nf"
mkdir -p "$ROOT/etc/hpio-nf"
# Without its debug info: a smaller initramfs (with its symbols for perf).
pack_nf() {
	if [ "${HPIO_VM_PERF:-0}" = 1 ]; then
		strip --strip-debug -o "$2" "$1"
	else
		strip -o "$2" "$1" 2>/dev/null || cp "$1" "$2"
	fi
}
pack_nf "$NF" "$ROOT/bin/hpio-nf"
# virtio-bench: another build of hpio-nf for the DRIVER+alt rounds.
if [ -n "${BENCH_ALT_NF:-}" ]; then
	[ -x "$BENCH_ALT_NF" ] || die "BENCH_ALT_NF=$BENCH_ALT_NF: no such program"
	pack_nf "$BENCH_ALT_NF" "$ROOT/bin/hpio-nf-alt"
fi
cp "$WS/configs/vm-forward.toml" "$WS/configs/bridge.toml" "$ROOT/etc/hpio-nf/"
install -m 755 "$HERE/nf-forward.sh" "$HERE/nf-bench.sh" "$HERE/nf-virtio.sh" "$ROOT/bin/"
install -m 644 "$HERE/nf-lib.sh" "$ROOT/bin/"

echo "== pack initramfs"
cp "$(readlink -f /bin/busybox)" "$ROOT/bin/busybox"
IP=$(file_of ip)
cp "$IP" "$ROOT/sbin/ip"
# iproute2's shared libraries and the dynamic loader, at their own paths.
{ ldd "$IP"; ldd "$NF"; } | awk '/=>/ { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
	[ -n "$lib" ] || continue
	mkdir -p "$ROOT$(dirname "$lib")"
	cp -L "$lib" "$ROOT$lib"
done
# Modules the tests use, with what they depend on, in load order: /init
# loads those of /lib/modules/order.
for m in veth macvlan bridge tun virtio_pci virtio_net; do
	modprobe --show-depends -S "$KERNEL" "$m" || die "no module $m for $KERNEL"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r src; do
	name=$(basename "$src")
	name=${name%.xz}
	case "$src" in
	*.xz) xz -dc "$src" >"$ROOT/lib/modules/$name" ;;
	*) cp "$src" "$ROOT/lib/modules/$name" ;;
	esac
	echo "${name%.ko}" >>"$ROOT/lib/modules/order"
done
[ -s "$ROOT/lib/modules/order" ] || die "no modules packed"
# The virtio tests' tools: ethtool (channels, offloads) and tcpdump, with
# users for tcpdump's privilege drop.
# HPIO_VM_PERF=1 (virtio-bench): Debian's perf (linux-perf) for profiles
# in the guest.
TOOLS="ethtool tcpdump"
if [ "${HPIO_VM_PERF:-0}" = 1 ]; then
	command -v perf >/dev/null || die "HPIO_VM_PERF=1: missing perf (apt-get install linux-perf)"
	TOOLS="$TOOLS perf"
fi
for tool in $TOOLS; do
	command -v "$tool" >/dev/null || die "missing $tool (apt-get install $tool)"
	cp "$(file_of "$tool")" "$ROOT/bin/$tool"
	ldd "$(file_of "$tool")" | awk '/=>/ { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
		[ -n "$lib" ] || continue
		mkdir -p "$ROOT$(dirname "$lib")"
		cp -L "$lib" "$ROOT$lib"
	done
done
mkdir -p "$ROOT/etc"
printf 'root:x:0:0:root:/:/bin/sh\ntcpdump:x:0:0:tcpdump:/:/bin/false\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\ntcpdump:x:0:\n' >"$ROOT/etc/group"
install -m 755 "$HERE/vm-init.sh" "$ROOT/init"
# hpio_fuzz's seconds and seed (empty: a new seed) for the guest.
echo "$FUZZ_SECS ${HPIO_FUZZ_SEED:-}" >"$ROOT/etc/hpio-fuzz"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initramfs.gz"

# qemu ACCEL CPUS INITRD: with MON set, a monitor socket there (nmi_guest).
# unknown_nmi_panic: an NMI from the host makes the guest panic and print
# where its CPU was.
qemu() {
	qemu-system-x86_64 -accel "$1" -m 1024 -smp "$2" -nographic -no-reboot -nic none \
		${MON:+-monitor "unix:$MON,server=on,wait=off"} \
		-kernel "$VMLINUZ" -initrd "$3" \
		-append "console=ttyS0 quiet panic_on_warn=1 oops=panic panic=-1 unknown_nmi_panic panic_print=0x40 rdinit=/init hpio_mode=$MODE"
}

ACCEL=${HPIO_VM_ACCEL:-}
if [ -z "$ACCEL" ]; then
	# /dev/kvm may exist and still hang (nested virtualisation): boot a
	# two-line init under KVM with a short timeout, else use TCG.
	ACCEL=tcg
	if [ -w /dev/kvm ]; then
		mkdir -p "$OUT/probe/bin"
		cp "$ROOT/bin/busybox" "$OUT/probe/bin/"
		printf '#!/bin/busybox sh\necho KVM-PROBE-OK\n/bin/busybox poweroff -f\n' >"$OUT/probe/init"
		chmod +x "$OUT/probe/init"
		(cd "$OUT/probe" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/probe.gz"
		if timeout 20 bash -c "$(declare -f qemu); VMLINUZ=$VMLINUZ MODE=probe qemu kvm 1 $OUT/probe.gz" \
			</dev/null 2>&1 | grep -q KVM-PROBE-OK; then
			ACCEL=kvm
		fi
	fi
fi

case "$MODE" in
virtio | virtio-bench)
	# Two virtio-net NICs on host taps: tests/virtio-host.sh drives the VM.
	export VMLINUZ OUT ACCEL CPUS MODE TIMEOUT NF INITRD=$OUT/initramfs.gz
	exec "$HERE/virtio-host.sh"
	;;
esac

boot() {
	local rc watch mon=$OUT/monitor.sock

	echo "== boot $VMLINUZ in qemu ($ACCEL, $CPUS CPUs)"
	rm -f "$mon" "$OUT/serial.log.nmi"
	# A minute before the timeout, an NMI: a hung guest (even one with
	# interrupts off on every CPU, where the kernel's own lockup detectors
	# are silent under TCG) panics and prints its stacks, so that a hang in
	# CI says where it was. A guest that does not answer it is booted once
	# more (tests/boot-check.sh, emulator_stuck).
	"$HERE/nmi-guest.py" "$mon" $((TIMEOUT > 120 ? TIMEOUT - 60 : TIMEOUT / 2)) "$OUT/serial.log.nmi" &
	watch=$!
	timeout "$TIMEOUT" bash -c "$(declare -f qemu); VMLINUZ=$VMLINUZ MODE=$MODE MON=$mon qemu $ACCEL $CPUS $OUT/initramfs.gz" \
		</dev/null 2>&1 | tr -d '\r' | tee "$OUT/serial.log"
	rc=$?
	kill "$watch" 2>/dev/null
	wait "$watch" 2>/dev/null
	return "$rc"
}
set +e
# A guest that fails before hpio.ko is loaded boots once more (tests/boot-check.sh).
boot_with_retry "$OUT/serial.log" true boot
set -e
echo "== serial log: $OUT/serial.log ($(( $(date +%s) - START )) s in all)"

fail=0
if grep -nE "Oops|BUG:|WARNING:|Kernel panic|unregister_netdevice: waiting|Call Trace" "$OUT/serial.log"; then
	echo "run-vm: the kernel reported a problem (above)"
	fail=1
fi
# The fuzzer's seed and operation counts, for the record.
grep -E "^fuzz: (seed|ops|chaos)" "$OUT/serial.log" | sed 's/^/run-vm: /' || true
if [ "$MODE" = bench ]; then
	[ "$fail" = 0 ] || exit 1
	grep -q "^bench: done" "$OUT/serial.log" || die "no \"bench: done\" line: the VM crashed, hung or timed out"
	echo "== results (ratios hpio / AF_PACKET; absolute rates are TCG's)"
	grep "^bench:" "$OUT/serial.log"
	exit 0
fi
summary=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$OUT/serial.log" | tail -n1 || true)
if [ -z "$summary" ]; then
	echo "run-vm: no summary line: the VM crashed, hung or timed out"
	fail=1
else
	failed=$(echo "$summary" | awk '{ print $3 }')
	[ "$failed" = 0 ] || { echo "run-vm: $failed check(s) failed"; fail=1; }
fi
# Checks the guest skipped ("(...: skipped)"): counted like the workspace's
# skipped tests (testkit), and a failure under HPIO_NF_REQUIRE_ALL=1.
while IFS= read -r l; do
	echo "SKIPPED: kmod $MODE $KERNEL: $l" | tee -a "${HPIO_NF_SKIP_LOG:-/dev/null}"
	[ "${HPIO_NF_REQUIRE_ALL:-0}" != 1 ] || { echo "run-vm: HPIO_NF_REQUIRE_ALL=1: a skipped check fails"; fail=1; }
done < <(grep -E "skipped\)$" "$OUT/serial.log" | sed 's/^ *//')
[ "$fail" = 0 ] || exit 1
echo "run-vm: PASS ($summary)"
