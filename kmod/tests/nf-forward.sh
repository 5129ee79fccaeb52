#!/bin/busybox sh
# hpio-nf over hpio, inside the test VM (run by /init after hpio_test).
#
#   ns A: vA --veth-- vB  [hpio-nf: hpio vB -> hpio vC]  vC --veth-- vD :ns D
#
# pktgen sends N UDP frames on vA (AF_PACKET) in namespace A; hpio-nf runs
# /etc/hpio-nf/vm-forward.toml (hpio on vB and vC, in the initial
# namespace, where the module serves devices); hpio-nf dump captures on vD
# in namespace D. Checks: the frames arrive byte for byte (against the same
# frames written to a pcap file by pktgen's pcap driver) and the counters
# agree (the module's, through sysfs and hpio-nf's driver_stats, hpio-nf's
# port counters, the sender's and the receiver's counts).
#
# Prints one "ok"/"FAIL" line per check and, last, "nf: N passed, M failed";
# writes "N M" to /tmp/nf.result for /init's total.

NF=/bin/hpio-nf
CONF=/etc/hpio-nf/vm-forward.toml
N=2000
LEN=128
MAC_A=02:00:00:00:0a:01
MAC_D=02:00:00:00:0d:01
T=/tmp/nf
PIDS=""
. /bin/nf-lib.sh

finish() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	/sbin/ip link del vA 2>/dev/null
	/sbin/ip link del vB 2>/dev/null
	/sbin/ip link del vC 2>/dev/null
	/sbin/ip link del vD 2>/dev/null
	/sbin/ip link del vE 2>/dev/null
	echo "$passed $failed" >/tmp/nf.result
	echo "nf: $passed passed, $failed failed"
	exit 0
}
# frames FILE: the frames of a pcap of LEN-byte frames, one hex line each,
# without the file header and the record headers.
frames() {
	tail -c +25 "$1" | od -An -v -tx1 -w$((16 + LEN)) | cut -c49-
}
sysfs() { cat "/sys/class/hpio/$1/$2" 2>/dev/null; }

mkdir -p $T
echo "== hpio-nf forwarding over hpio"
[ -d /sys/module/hpio ] || insmod /lib/hpio/hpio.ko
# Emulated CPUs stall for long stretches: a deep ring absorbs them, so that
# the checks below measure forwarding, not the emulator's hiccups.
echo 8192 >/sys/module/hpio/parameters/ring_size 2>/dev/null || true
check "hpio.ko loaded" test -d /sys/module/hpio
check "hpio-nf runs in the VM" $NF --version
$NF check $CONF >$T/check.out 2>&1
check "hpio-nf check $CONF" test $? = 0
[ -d /sys/module/hpio ] || finish

# Two namespaces held by sleepers; IPv6 off there so nothing but our
# frames crosses the links.
unshare -n sleep 600 &
NSA=$!
unshare -n sleep 600 &
NSD=$!
PIDS="$NSA $NSD"
sleep 0.2
for ns in $NSA $NSD; do
	nsenter -t $ns -n sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6;
		echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; /sbin/ip link set lo up'
done
/sbin/ip link add vA type veth peer name vB
/sbin/ip link add vC type veth peer name vD
/sbin/ip link set vA netns $NSA
/sbin/ip link set vD netns $NSD
nsenter -t $NSA -n /sbin/ip link set vA address $MAC_A up
nsenter -t $NSD -n /sbin/ip link set vD address $MAC_D up
/sbin/ip link set vB up
/sbin/ip link set vC up
check "nodes /dev/hpio/vB and /dev/hpio/vC" test -c /dev/hpio/vB -a -c /dev/hpio/vC

# The receiver first: it counts and captures what reaches vD. It stops at
# $N frames; the long --duration only bounds a hung run (a loaded TCG guest
# once needed over 60 s for the whole exchange and the capture ended early).
nsenter -t $NSD -n $NF dump -i vD --driver af_packet -w $T/rx.pcap -c $N --duration 300s \
	"udp and dst port 9" >$T/dump.out 2>&1 &
DUMP=$!
PIDS="$PIDS $DUMP"
check "receiver listening on vD" wait_for 30 sh -c \
	"nsenter -t $NSD -n cat /proc/net/packet | grep -q ."
# Every ring of vB read (a frame lands in the ring of the CPU that received
# it): ready when all its files are open.
Q=$(cat /sys/class/hpio/vB/queues)
$NF run $CONF --set ports.a.queues=$Q --json >$T/run.json 2>$T/run.err &
RUN=$!
PIDS="$PIDS $RUN"
check "hpio-nf opened all $Q receive queues of vB" wait_for 30 sh -c \
	"[ \"\$(cat /sys/class/hpio/vB/readers 2>/dev/null)\" = $Q ]"
[ -s $T/run.err ] && sed 's/^/  hpio-nf: /' $T/run.err

PKT="-S $MAC_A -D $MAC_D -s 10.0.0.1 -d 10.0.1.1-10.0.1.40 --src-port 1024-1073 -l $LEN -b 8"
nsenter -t $NSA -n $NF pktgen -i vA --driver af_packet $PKT -n $N --interval 2ms --json \
	>$T/tx.json 2>&1
eq "pktgen sent (AF_PACKET on vA)" "$(summary_num $T/tx.json packets)" $N
# The same frames, written to a file instead.
$NF pktgen --driver pcap --param output=$T/ref.pcap $PKT -n $N >/dev/null 2>&1
check "reference pcap written" test -s $T/ref.pcap

wait_for 60 sh -c "[ \"\$(cat /sys/class/hpio/vC/tx_packets)\" -ge $N ]"
# Let the receiver take the last frames, then stop hpio-nf (SIGINT).
wait_for 30 sh -c "! kill -0 $DUMP 2>/dev/null"
kill -INT $RUN
wait $RUN
check "hpio-nf run exits 0 after SIGINT" test $? = 0
wait $DUMP 2>/dev/null
[ -s $T/run.err ] && sed 's/^/  hpio-nf: /' $T/run.err

# Frames intact, in order.
frames $T/ref.pcap >$T/ref.hex
frames $T/rx.pcap >$T/rx.hex
eq "frames captured on vD" "$(wc -l <$T/rx.hex)" $N
check "frames on vD byte for byte as sent" cmp -s $T/ref.hex $T/rx.hex
check "frames are distinct (flows vary)" test "$(sort -u $T/rx.hex | wc -l)" -ge 40

# Counters agree: the module (sysfs and hpio-nf's driver_stats), the
# hpio-nf ports, sender and receiver.
R=$T/run.json
check "hpio-nf printed a JSON report" grep -q '"driver":"hpio"' $R
eq "module vB rx_packets (sysfs)" "$(sysfs vB rx_packets)" $N
eq "module vB rx_drops (sysfs)" "$(sysfs vB rx_drops)" 0
eq "module vC tx_packets (sysfs)" "$(sysfs vC tx_packets)" $N
eq "module vC tx_errors (sysfs)" "$(sysfs vC tx_errors)" 0
eq "hpio-nf port a rx.packets" "$(json_num $R a '"rx":{"packets":')" $N
eq "hpio-nf port a driver_stats.hpio_rx_packets" \
	"$(json_num $R a '"hpio_rx_packets":')" $N
eq "hpio-nf port a driver_stats.hpio_rx_drops" "$(json_num $R a '"hpio_rx_drops":')" 0
eq "hpio-nf port a driver_stats.rx_truncated" "$(json_num $R a '"rx_truncated":')" 0
eq "hpio-nf port b tx.packets" "$(json_num $R b '"tx":{"packets":')" $N
eq "hpio-nf port b tx.drops" "$(json_num $R b '"tx":{' '"drops":')" 0
eq "hpio-nf port b driver_stats.hpio_tx_packets" \
	"$(json_num $R b '"hpio_tx_packets":')" $N
eq "hpio-nf port b tx.bytes" "$(json_num $R b '"tx":{' '"bytes":')" $((N * LEN))
eq "bytes on vD" $(($(wc -c <$T/rx.pcap) - 24 - 16 * N)) $((N * LEN))

# pktgen and dump over hpio: both ends of a veth pair in the initial
# namespace (where the module serves devices), vE sending, vF receiving.
echo "== hpio-nf pktgen and dump over hpio"
/sbin/ip link add vE type veth peer name vF
for i in vE vF; do
	echo 1 >/proc/sys/net/ipv6/conf/$i/disable_ipv6
	/sbin/ip link set $i up
done
QF=$(cat /sys/class/hpio/vF/queues)
$NF pktgen --rx -i vF --driver hpio --param queues=$QF --filter "udp and dst port 9" -n $N \
	--duration 60s --json >$T/hrx.json 2>&1 &
PIDS="$PIDS $!"
HRX=$!
check "pktgen --rx opened all $QF queues of vF" wait_for 30 sh -c \
	"[ \"\$(cat /sys/class/hpio/vF/readers 2>/dev/null)\" = $QF ]"
$NF pktgen -i vE --driver hpio $PKT -n $N --interval 2ms --json >$T/htx.json 2>&1
wait $HRX
eq "pktgen sent over hpio on vE" "$(summary_num $T/htx.json packets)" $N
eq "module vE tx_packets (sysfs)" "$(sysfs vE tx_packets)" $N
eq "pktgen --rx over hpio counted on vF" "$(summary_num $T/hrx.json packets)" $N
$NF dump -i vF --driver hpio --param queues=$QF -w $T/hpio.pcap -c $N --duration 60s \
	"udp and dst port 9" >$T/hdump.out 2>&1 &
PIDS="$PIDS $!"
HDUMP=$!
check "dump opened all $QF queues of vF" wait_for 30 sh -c \
	"[ \"\$(cat /sys/class/hpio/vF/readers 2>/dev/null)\" = $QF ]"
$NF pktgen -i vE --driver hpio $PKT -n $N --interval 2ms >/dev/null 2>&1
wait $HDUMP
check "dump over hpio exits 0" test $? = 0
frames $T/hpio.pcap >$T/hpio.hex
eq "frames dumped over hpio" "$(wc -l <$T/hpio.hex)" $N
check "frames dumped over hpio byte for byte as sent" cmp -s $T/ref.hex $T/hpio.hex
# tcpdump reads the file back: every frame with the sent addresses, ports
# and lengths (128-byte frames: 86 bytes of UDP payload).
tcpdump -Z root -e -nn -r $T/hpio.pcap >$T/tcpdump.txt 2>$T/tcpdump.err
check "tcpdump reads the dump" test $? = 0
eq "frames tcpdump read" "$(wc -l <$T/tcpdump.txt)" $N
want="$MAC_A > $MAC_D, ethertype IPv4 (0x0800), length $LEN: 10.0.0.1.[0-9]* > 10.0.1.[0-9]*.9: UDP, length $((LEN - 42))"
eq "tcpdump lines with the sent fields" "$(grep -c "$want" $T/tcpdump.txt)" $N
eq "destination addresses tcpdump saw" \
	"$(awk '{ print $(NF - 3) }' $T/tcpdump.txt | sed 's/\.9:$//' | sort -u | wc -l)" 40
eq "source ports tcpdump saw" \
	"$(awk '{ print $(NF - 5) }' $T/tcpdump.txt | sed 's/.*\.//' | sort -u | wc -l)" 50
/sbin/ip link del vE

# Jumbo frames over hpio: a veth pair of MTU 9000, 9014-byte frames (a full
# 9000-byte IP packet) sent by pktgen over hpio on vJ, received over hpio on
# vK into slots sized from the MTU (9024 bytes): every frame whole, none
# counted oversize or truncated.
echo "== hpio-nf jumbo frames over hpio (MTU 9000)"
JN=200
JLEN=9014
/sbin/ip link add vJ mtu 9000 type veth peer name vK mtu 9000
for i in vJ vK; do
	echo 1 >/proc/sys/net/ipv6/conf/$i/disable_ipv6
	/sbin/ip link set $i up
done
QK=$(cat /sys/class/hpio/vK/queues)
JPKT="-S $MAC_A -D $MAC_D -s 10.0.0.1 -d 10.0.1.1 -l $JLEN -b 8"
$NF dump -i vK --driver hpio --param queues=$QK -w $T/jumbo.pcap -c $JN --duration 60s \
	"udp and dst port 9" >$T/jdump.out 2>&1 &
PIDS="$PIDS $!"
JDUMP=$!
check "jumbo: dump opened all $QK queues of vK" wait_for 30 sh -c \
	"[ \"\$(cat /sys/class/hpio/vK/readers 2>/dev/null)\" = $QK ]"
$NF pktgen -i vJ --driver hpio $JPKT -n $JN --interval 5ms --json >$T/jtx.json 2>&1
wait $JDUMP
check "jumbo: dump over hpio exits 0" test $? = 0
eq "jumbo: pktgen sent $JLEN-byte frames over hpio on vJ" "$(summary_num $T/jtx.json packets)" $JN
eq "jumbo: module vJ tx_errors (sysfs)" "$(sysfs vJ tx_errors)" 0
eq "jumbo: module vK truncated (sysfs)" "$(sysfs vK truncated)" 0
$NF pktgen --driver pcap --param output=$T/jref.pcap $JPKT -n 1 >/dev/null 2>&1
# Every record whole (incl_len = orig_len = 9014) and equal to the reference frame.
tail -c +41 $T/jref.pcap >$T/jref.bin
eq "jumbo: dump file size" "$(wc -c <$T/jumbo.pcap)" $((24 + JN * (16 + JLEN)))
eq "jumbo: records of $JLEN bytes, whole" \
	"$(tcpdump -Z root -nn -r $T/jumbo.pcap 2>/dev/null | grep -c "UDP, length $((JLEN - 42))")" $JN
tail -c +41 $T/jumbo.pcap | head -c $JLEN >$T/jfirst.bin
check "jumbo: first frame byte for byte as sent" cmp -s $T/jref.bin $T/jfirst.bin
/sbin/ip link del vJ

# The driver's errors are one line each.
/sbin/ip link set vC down
$NF run $CONF >$T/down.out 2>&1
check "interface down: one clear line" grep -q "interface \`vC\` is down: \`ip link set vC up\`" \
	$T/down.out
/sbin/ip link set vC up
sed 's/interface = "vB"/interface = "nfnone0"/' $CONF >$T/none.toml
$NF run $T/none.toml >$T/none.out 2>&1
check "no node: one clear line" grep -q "no /dev/hpio/nfnone0: the hpio module does not serve" \
	$T/none.out
finish
