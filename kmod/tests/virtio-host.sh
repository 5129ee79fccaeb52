#!/usr/bin/env bash
# The host half of the virtio-net tests; run-vm.sh runs it for
# HPIO_VM_MODE=virtio (make check-virtio) and virtio-bench (make bench-virtio)
# once the initramfs is packed.
#
#   ns hpvm-a: hpvt-a (10.77.0.1) == [VM eth0 | hpio-nf bridge | eth1] == hpvt-b (10.77.0.2) :ns hpvm-b
#
# hpvt-a and hpvt-b are multiqueue tap devices; qemu attaches Q queues of
# each to a virtio-net NIC with `mq=on` (and `vnet_hdr=on`: the offloads a
# real NIC has, so TCP arrives as TSO super-frames with partial checksums),
# then the taps move into their namespaces. The guest (tests/nf-virtio.sh) takes commands on its second
# serial port, a FIFO here.
#
#   virtio        the bridge over hpio: ping, a TCP transfer with its bytes
#                 checked and 2000 UDP frames of 128 flows, counted exactly,
#                 cross it; the guest checks its counters per queue.
#   virtio-bench  frames per second through the bridge over hpio and over
#                 AF_PACKET in the same boot, in alternating rounds.
#
# Environment (from run-vm.sh): VMLINUZ INITRD OUT ACCEL CPUS MODE TIMEOUT NF,
# and HPIO_VM_QUEUES (queue pairs per NIC, default CPUS), BENCH_SECS (5),
# BENCH_PACE (pktgen options; empty: as fast as the sender can).
set -uo pipefail
: "${VMLINUZ:?}" "${INITRD:?}" "${OUT:?}" "${ACCEL:?}" "${CPUS:?}" "${MODE:?}" "${NF:?}"
Q=${HPIO_VM_QUEUES:-$CPUS}
TIMEOUT=${TIMEOUT:-900}
BENCH_SECS=${BENCH_SECS:-5}
# The sender's pace: above what the emulated bridge forwards, yet leaving
# the host CPU to the emulator (2 host cores run sender, receiver and VM).
BENCH_PACE=${BENCH_PACE---batch 16 --interval 400us}
NSA=hpvm-a
NSB=hpvm-b
TAPA=hpvt-a
TAPB=hpvt-b
IPA=10.77.0.1
IPB=10.77.0.2
SERIAL=$OUT/serial.log
CTL=$OUT/ctl
T=$OUT/virtio
QEMU=""
CHECK_TAG=host
. "$(dirname "$0")/nf-lib.sh"
. "$(dirname "$0")/boot-check.sh"

die() { echo "virtio-host: $*" >&2; exit 1; }
cleanup() {
	[ -n "$QEMU" ] && kill "$QEMU" 2>/dev/null
	ip netns del $NSA 2>/dev/null
	ip netns del $NSB 2>/dev/null
	ip link del $TAPA 2>/dev/null
	ip link del $TAPB 2>/dev/null
	true
}
trap cleanup EXIT
ina() { ip netns exec $NSA "$@"; }
inb() { ip netns exec $NSB "$@"; }
# wait_serial SECONDS PATTERN [SEEN]: waits for a line of the guest's
# console matching PATTERN, beyond the SEEN (default 0) already there.
wait_serial() {
	local n=$(($1 * 10))
	while [ $n -gt 0 ]; do
		[ "$(grep -c "$2" "$SERIAL" 2>/dev/null)" -gt "${3:-0}" ] && return 0
		kill -0 "$QEMU" 2>/dev/null || return 1
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
# guest COMMAND PATTERN SECONDS: sends a command, waits for its answer.
# The guest answers "virtio: failed ..." when it cannot obey.
guest() {
	local seen failed
	seen=$(grep -c "$2\|virtio: failed" "$SERIAL")
	failed=$(grep -c "virtio: failed" "$SERIAL")
	echo "$1" >"$CTL.in"
	wait_serial "$3" "$2\|virtio: failed" "$seen" || die "no \"$2\" from the guest (serial log: $SERIAL)"
	[ "$(grep -c "virtio: failed" "$SERIAL")" = "$failed" ] ||
		die "the guest failed to obey \"$1\": $(tr -d '\r' <"$SERIAL" | grep -B5 "virtio: failed" | tail -n 6)"
}

# start_vm: the taps, qemu, the taps in their namespaces, and the guest
# up and waiting for commands; false (with the reason said) when the guest
# did not come up.
start_vm() {
	rm -f "$CTL.in" "$CTL.out" "$SERIAL"
	mkfifo "$CTL.in" "$CTL.out"
	for tap in $TAPA $TAPB; do
		ip tuntap add dev $tap mode tap multi_queue || die "cannot create tap $tap"
	done
	echo "== boot $VMLINUZ in qemu ($ACCEL, $CPUS CPUs), two virtio-net NICs with $Q queue pairs"
	local nic=0 n=300 NICS=()
	for tap in $TAPA $TAPB; do
		NICS+=(-netdev "tap,id=n$nic,ifname=$tap,script=no,downscript=no,queues=$Q,vnet_hdr=on"
			-device "virtio-net-pci,netdev=n$nic,mq=on,vectors=$((2 * Q + 2)),mac=52:54:00:77:00:0$nic")
		nic=$((nic + 1))
	done
	timeout "$TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -m 1024 -smp "$CPUS" -display none \
		-monitor none -no-reboot -serial "file:$SERIAL" -serial "pipe:$CTL" "${NICS[@]}" \
		-kernel "$VMLINUZ" -initrd "$INITRD" \
		-append "console=ttyS0 quiet panic_on_warn=1 oops=panic panic=-1 rdinit=/init hpio_mode=$MODE hpio_queues=$Q" \
		</dev/null &
	QEMU=$!
	# qemu has attached its queues: move the taps into their namespaces.
	until [ "$(attached $TAPB)" = "$Q" ]; do
		n=$((n - 1))
		[ $n -gt 0 ] && kill -0 $QEMU 2>/dev/null || {
			echo "virtio-host: qemu did not attach $Q queues to $TAPB"
			return 1
		}
		sleep 0.1
	done
	for ns in $NSA:$TAPA:$IPA $NSB:$TAPB:$IPB; do
		IFS=: read -r netns tap ip <<<"$ns"
		ip netns add "$netns"
		ip link set "$tap" netns "$netns"
		ip netns exec "$netns" sh -c "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1; ip link set lo up;
			ip addr add $ip/24 dev $tap; ip link set $tap up" || die "cannot set up $netns"
	done
	wait_serial 600 "virtio: waiting for commands" || {
		echo "virtio-host: the guest did not come up (serial log: $SERIAL)"
		return 1
	}
}
# reset_vm: undoes start_vm before a second boot.
reset_vm() {
	cleanup
	wait "$QEMU" 2>/dev/null
	QEMU=""
}

# attached TAP: queues attached to it (enabled ones and those the guest
# has not enabled yet).
attached() {
	ip -d link show "$1" 2>/dev/null | awk '{ for (i = 1; i < NF; i++)
		if ($i == "numqueues" || $i == "numdisabled") n += $(i + 1) } END { print n + 0 }'
}

cleanup
rm -rf "$T"
mkdir -p "$T"
# A guest that fails before hpio.ko is loaded boots once more (tests/boot-check.sh).
boot_with_retry "$SERIAL" reset_vm start_vm || die "the guest did not come up (serial log: $SERIAL)"

if [ "$MODE" = virtio ]; then
	guest "start hpio" "virtio: ready hpio" 120
	check "ping $IPA -> $IPB across the bridge" ina ping -c 5 -i 0.5 -W 10 -q $IPB
	# 4 MiB over TCP from A to B; both ends hash what they saw.
	inb python3 -c '
import hashlib, socket, sys
s = socket.socket(); s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(float(sys.argv[2]))
c, _ = s.accept(); c.settimeout(float(sys.argv[2])); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())' $IPB ${TCP_TIMEOUT:-120} >$T/tcp-rx.out 2>&1 &
	RX=$!
	sleep 1
	ina python3 -c '
import hashlib, os, socket, sys
data = os.urandom(4 << 20)
s = socket.create_connection((sys.argv[1], 5001), timeout=float(sys.argv[2])); s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())' $IPB ${TCP_TIMEOUT:-120} >$T/tcp-tx.out 2>&1
	wait $RX
	check "TCP: 4 MiB from A reach B intact ($(cut -c1-20 $T/tcp-rx.out))" \
		test -s $T/tcp-rx.out -a "$(cat $T/tcp-tx.out)" = "$(cat $T/tcp-rx.out)"
	# 2000 UDP frames of 128 flows (source ports) to an address nobody
	# owns: the bridge floods them to B, where they are counted.
	N=2000
	inb "$NF" pktgen --rx -i $TAPB --driver af_packet --filter "udp and dst port 9" -n $N \
		--duration 120s --json >$T/udp-rx.json 2>&1 &
	RX=$!
	sleep 1
	ina "$NF" pktgen -i $TAPA --driver af_packet -D 02:00:00:77:0b:99 -s $IPA -d $IPB \
		--src-port 1024-1151 -l 128 -n $N -b 4 --interval 5ms --json >$T/udp-tx.json 2>&1
	wait $RX
	check "UDP: pktgen sent $N on $TAPA" test "$(summary_num $T/udp-tx.json packets)" = $N
	check "UDP: all $N counted on $TAPB ($(summary_num $T/udp-rx.json packets))" \
		test "$(summary_num $T/udp-rx.json packets)" = $N
	# The taps' own counters (RX: from the guest; TX: to it).
	ina ip -s link show $TAPA | sed 's/^/  /'
	inb ip -s link show $TAPB | sed 's/^/  /'
	guest "stop" "virtio: stopped hpio" 120
	guest "quit" "^nf: [0-9]* passed" 60
else
	for round in 1 2; do
		for driver in hpio af_packet; do
			guest "start $driver" "virtio: ready $driver" 120
			inb "$NF" pktgen --rx -i $TAPB --driver af_packet --filter "udp and dst port 9" \
				--duration $((BENCH_SECS + 3))s --json >$T/rx-$driver.json 2>&1 &
			RX=$!
			sleep 1
			ina "$NF" pktgen -i $TAPA --driver af_packet -D 02:00:00:77:0b:99 -s $IPA -d $IPB \
				--src-port 1024-1151 -l 64 --duration ${BENCH_SECS}s $BENCH_PACE --json \
				>$T/tx-$driver.json 2>&1
			wait $RX
			sent=$(summary_num $T/tx-$driver.json packets)
			got=$(summary_num $T/rx-$driver.json packets)
			echo "bench: virtio round $round $driver: sent $sent, through the bridge $got," \
				"$((got / BENCH_SECS)) frames/s"
			echo "$driver $((got / BENCH_SECS))" >>$T/rates
			guest "stop" "virtio: stopped $driver" 120
		done
	done
	guest "quit" "^nf: [0-9]* passed" 60
	awk '{ sum[$1] += $2; n[$1]++ } END {
		h = sum["hpio"] / n["hpio"]; a = sum["af_packet"] / n["af_packet"]
		printf "bench: virtio bridge hpio %d frames/s, af_packet %d frames/s, ratio %.2f\n", h, a, a ? h / a : 0 }' $T/rates
fi

wait $QEMU 2>/dev/null
QEMU=""
tr -d '\r' <"$SERIAL" | grep -E "^(ok|FAIL) +nf:|^virtio-|^  hpio-nf:|^bench:|^fuzz: (seed|ops|chaos)" | sed 's/^/guest: /'
if grep -nE "Oops|BUG:|WARNING:|Kernel panic|unregister_netdevice: waiting|Call Trace" "$SERIAL"; then
	die "the kernel reported a problem (above)"
fi
gp=$(tr -d '\r' <"$SERIAL" | grep -c "^ok   nf:")
gf=$(tr -d '\r' <"$SERIAL" | grep -c "^FAIL nf:")
echo "$((passed + gp)) passed, $((failed + gf)) failed"
[ "$((failed + gf))" = 0 ] || die "$((failed + gf)) check(s) failed"
echo "virtio-host: PASS"
