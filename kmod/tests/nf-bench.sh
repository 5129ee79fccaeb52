#!/bin/busybox sh
# hpio vs AF_PACKET frame rates through a veth pair, inside the test VM
# (make -C kmod bench; /init runs this instead of the tests).
#
#   ns A: vA --veth-- vB (initial namespace, served by hpio.ko)
#
# Transmit: `hpio-nf pktgen -i vB -b 32` for DUR seconds with --driver hpio
# (one writev of 32 packets per call) and --driver af_packet (one
# sendmmsg of 32), 60-byte frames; the peer vA takes them in namespace A.
# Receive: pktgen floods vB from namespace A (AF_PACKET, CPU 1), and
# `hpio-nf run` (worker on CPU 0, burst 32, port -> Discard) receives on
# vB with driver hpio (one readv per burst, every ring of vB) and with
# driver af_packet rx_mode = "mmsg" (one recvmmsg per burst); the rate is
# frames received over the sender's seconds, and the lost frames (ring or
# socket buffer full) are printed beside it.
#
# ROUNDS rounds, the two drivers alternating; the ratios are of the summed
# rates. Absolute rates are the emulator's (TCG), only ratios mean anything.
# Lines start with "bench:"; the last is "bench: done".

NF=/bin/hpio-nf
DUR=${DUR:-4}
ROUNDS=${ROUNDS:-3}
MAC_A=02:00:00:00:0a:01
MAC_B=02:00:00:00:0b:01
T=/tmp/bench
mkdir -p $T

num() { # num FILE KEY: first number after "KEY": on the last line holding it
	grep "\"$2\":" "$1" | tail -n1 | awk -v key="\"$2\":" '{
		j = index($0, key); s = substr($0, j + length(key))
		match(s, /^[0-9.e+-]+/); print substr(s, 1, RLENGTH) }'
}
wait_readers() { # wait_readers N: until vB has N reader files (10 s at most)
	n=100
	while [ $n -gt 0 ]; do
		[ "$(cat /sys/class/hpio/vB/readers)" -ge "$1" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

[ -d /sys/module/hpio ] || insmod /lib/hpio/hpio.ko
unshare -n sleep 100000 &
NSA=$!
sleep 0.2
nsenter -t $NSA -n sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6;
	echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6'
/sbin/ip link add vA type veth peer name vB
/sbin/ip link set vA netns $NSA
nsenter -t $NSA -n /sbin/ip link set vA address $MAC_A up
/sbin/ip link set vB address $MAC_B up
Q=$(cat /sys/class/hpio/vB/queues)
echo "bench: $(nproc) CPU(s), vB has $Q hpio queue(s), $ROUNDS round(s) of ${DUR}s, burst 32"

cat >$T/rx.toml <<EOF
connections = ["in -> sink"]
[runtime]
workers = 1
burst = 32
cores = [0]
[ports.in]
driver = "hpio"
interface = "vB"
[elements.sink]
class = "Discard"
EOF

tx() { # tx DRIVER: frames per second sent on vB
	$NF pktgen -i vB --driver "$1" -S $MAC_B -D $MAC_A -l 60 -b 32 --cores 0 \
		--duration ${DUR}s --json >$T/tx.json 2>&1
	num $T/tx.json pps
}
rx() { # rx DRIVER: "fps lost" received on vB
	drv=$1
	case $1 in
	hpio) set -- --set ports.in.queues=$Q ;;
	*) set -- --set 'ports.in.driver="af_packet"' --set 'ports.in.rx_mode="mmsg"' ;;
	esac
	$NF run $T/rx.toml "$@" --json >$T/rx.json 2>$T/rx.err &
	run=$!
	[ $drv = hpio ] && wait_readers $Q
	sleep 1
	nsenter -t $NSA -n $NF pktgen -i vA --driver af_packet -S $MAC_A -D $MAC_B -l 60 -b 32 \
		--cores 1 --duration ${DUR}s --json >$T/flood.json 2>&1
	sleep 1
	kill -INT $run
	wait $run
	got=$(awk -v key='"rx":{"packets":' '{ j = index($0, key); if (!j) next
		s = substr($0, j + length(key)); match(s, /^[0-9]+/); print substr(s, 1, RLENGTH) }' \
		$T/rx.json | tail -n1)
	sent=$(num $T/flood.json packets)
	secs=$(num $T/flood.json seconds)
	[ -n "$got" ] && [ -n "$secs" ] || { sed 's/^/bench:   /' $T/rx.err; echo "0 0"; return; }
	awk -v g="$got" -v s="$sent" -v t="$secs" 'BEGIN { printf "%.0f %d\n", g / t, s - g }'
}

tx_h=0; tx_a=0; rx_h=0; rx_a=0
r=1
while [ $r -le "$ROUNDS" ]; do
	for d in hpio af_packet; do
		v=$(tx $d)
		echo "bench: round $r tx $d: ${v:-?} fps"
		[ $d = hpio ] && tx_h=$(awk "BEGIN { print $tx_h + ${v:-0} }")
		[ $d = af_packet ] && tx_a=$(awk "BEGIN { print $tx_a + ${v:-0} }")
	done
	for d in hpio af_packet; do
		set -- $(rx $d)
		echo "bench: round $r rx $d: $1 fps ($2 frames not received)"
		[ $d = hpio ] && rx_h=$(awk "BEGIN { print $rx_h + $1 }")
		[ $d = af_packet ] && rx_a=$(awk "BEGIN { print $rx_a + $1 }")
	done
	r=$((r + 1))
done
awk -v h="$tx_h" -v a="$tx_a" 'BEGIN { printf "bench: tx ratio hpio writev / AF_PACKET sendmmsg = %.2f\n", (a > 0 ? h / a : 0) }'
awk -v h="$rx_h" -v a="$rx_a" 'BEGIN { printf "bench: rx ratio hpio readv / AF_PACKET recvmmsg = %.2f\n", (a > 0 ? h / a : 0) }'
kill $NSA 2>/dev/null
/sbin/ip link del vB 2>/dev/null
echo "bench: done"
