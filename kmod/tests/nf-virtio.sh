#!/bin/busybox sh
# The guest half of the virtio-net tests (tests/virtio-host.sh is the host's).
#
#   host ns hpvm-a: hpvt-a (tap) == eth0 [guest: hpio-nf bridge] eth1 == hpvt-b (tap) :host ns hpvm-b
#
# eth0 and eth1 are virtio-net NICs with several queue pairs (qemu's
# `queues=N`, `mq=on`). This script sets them to Q combined channels with
# ethtool -L, then obeys commands that the host writes, one per line, to
# the second serial port (/dev/ttyS1):
#
#   start DRIVER   run configs/bridge.toml on eth0 and eth1 over DRIVER
#                  (hpio or af_packet), one worker per queue; answers
#                  "virtio: ready DRIVER" once every queue is open.
#                  DRIVER linux (virtio-bench): the kernel's own bridge
#                  br0 over eth0 and eth1 instead of hpio-nf; hpio-irq:
#                  hpio without busy polling (the module's busy_poll=0);
#                  hpio-1w: hpio with one worker for every queue;
#                  hpio-bN: hpio with runtime.burst = N; hpio-nogro,
#                  linux-nogro: hpio, linux with the NICs' GRO off; any
#                  name+alt: the same with the module BENCH_ALT_KO
#                  and hpio-nf BENCH_ALT_NF, where given
#   mark           (virtio-bench) the first mark notes the guest's CPU
#                  times, the second prints how busy the guest was between
#                  them: "virtio: busy N%"
#   perf SECS      (virtio-bench, perf in the initramfs) perf record of
#                  the whole guest for SECS seconds, kernel and hpio-nf,
#                  then its report: "perf: ..." lines, "virtio: perf done"
#   stop           SIGINT to hpio-nf; prints its JSON report and the
#                  module's per-queue counters, checks them (check mode),
#                  answers "virtio: stopped DRIVER"
#   quit           prints "nf: N passed, M failed" and returns
#
# Check lines are "ok   nf: ..." / "FAIL nf: ..." like nf-forward.sh's.

NF=/bin/hpio-nf
CONF=/etc/hpio-nf/bridge.toml
T=/tmp/virtio
Q=$(sed -n 's/.*hpio_queues=\([0-9]*\).*/\1/p' /proc/cmdline)
Q=${Q:-2}
# virtio-bench: overload is the point, so counters are printed, not checked.
BENCH=0
grep -q "hpio_mode=virtio-bench" /proc/cmdline && BENCH=1
RUN=""
DRIVER=""
. /bin/nf-lib.sh

# busy_queues IF: how many of the module's receive queues of IF carried frames.
busy_queues() {
	awk '$2 > 0 { n++ } END { print n + 0 }' "/sys/class/hpio/$1/queue_stats"
}
open_queues() { # open_queues DRIVER: every receive queue of both ports open?
	if [ "$1" = hpio ]; then
		[ "$(cat /sys/class/hpio/eth0/readers 2>/dev/null)" = "$Q" ] &&
			[ "$(cat /sys/class/hpio/eth1/readers 2>/dev/null)" = "$Q" ]
	else
		# Q fanout sockets per port, one transmit socket per worker and port.
		[ "$(($(wc -l </proc/net/packet) - 1))" -ge $((4 * Q)) ]
	fi
}

# The kernel's bridge over eth0 and eth1 (virtio-bench's reference round).
start_linux() {
	/sbin/ip link add br0 type bridge forward_delay 0 stp_state 0
	echo 1 >/proc/sys/net/ipv6/conf/br0/disable_ipv6
	for i in eth0 eth1; do
		ethtool -K $i gro ${gro:-on}
		/sbin/ip link set $i master br0
	done
	/sbin/ip link set br0 up
	if wait_for 30 sh -c '[ "$(cat /sys/class/net/eth0/brport/state)" = 3 ] &&
		[ "$(cat /sys/class/net/eth1/brport/state)" = 3 ]'; then
		echo "virtio: ready $NAME"
	else
		echo "virtio: failed to start $NAME (bridge ports not forwarding)"
	fi
}
# kicks IF rx|tx: device notifications of IF's receive or transmit queues
# since boot (virtio-net's ethtool -S counters).
kicks() {
	ethtool -S "$1" 2>/dev/null | awk -v d="$2" '$1 ~ "^" d "_queue_[0-9]+_kicks:$" { s += $2 }
		END { print s + 0 }'
}
# print_irqs: the NICs' interrupts and the guest's timer, rescheduling,
# function-call and TLB interrupts per CPU, since boot.
print_irqs() {
	grep -E 'virtio|LOC|RES|CAL|TLB' /proc/interrupts | sed 's/^/virtio-irq /'
}
print_kicks() {
	echo "virtio-kicks $1 eth0 rx $(kicks eth0 rx) eth1 tx $(kicks eth1 tx) since boot"
}
stop_linux() {
	/sbin/ip -s link show br0 | sed 's/^/virtio-linux /'
	/sbin/ip link del br0
	print_irqs
	print_kicks $NAME
	echo "virtio: stopped $NAME"
}
# cpu_times: "busy total" jiffies of all CPUs from /proc/stat.
cpu_times() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i
		print t - $5 - $6, t; exit }' /proc/stat
}
MARK=""
mark() {
	if [ -z "$MARK" ]; then
		MARK=$(cpu_times)
		echo "virtio: marked"
		return
	fi
	set -- $MARK $(cpu_times)
	MARK=""
	awk -v b="$(($3 - $1))" -v t="$(($4 - $2))" \
		'BEGIN { printf "virtio: busy %.0f%%\n", (t > 0 ? 100 * b / t : 0) }'
}
# perf_record SECS: samples of every CPU (cpu-clock: TCG has no PMU),
# then where the time went, by command and symbol, and by symbol alone.
perf_record() {
	if ! command -v perf >/dev/null; then
		echo "virtio: failed: no perf in the initramfs (HPIO_VM_PERF=1)"
		return
	fi
	echo 0 >/proc/sys/kernel/kptr_restrict
	export HOME=/tmp
	perf record -q -a -g -e cpu-clock -F 499 -o $T/perf.data -- sleep "$1" >$T/perf.out 2>&1
	perf report -q -i $T/perf.data --stdio --no-children --sort comm,dso,sym \
		-g none --percent-limit 0.5 2>&1 | head -n 80 | sed 's/^/perf: /'
	perf report -q -i $T/perf.data --stdio --children --sort sym \
		-g none --percent-limit 2 2>&1 | head -n 60 | sed 's/^/perf-children: /'
	# Who calls the clock source, the page zeroing and the device notifications (callers, innermost first).
	perf report -q -i $T/perf.data --stdio --no-children --sort sym \
		--symbols read_hpet,clear_page_rep,vp_notify -g graph,0.3,callee \
		2>&1 | grep -v "^ *|* *$" | head -n 150 | sed "s/^/perf-callers: /"
	echo "virtio: perf done"
}

# busy_polled: frames the NICs' NAPI delivered to busy pollers since boot.
busy_polled() {
	awk '$1 == "TcpExt:" { if (!c) { for (i = 2; i <= NF; i++)
		if ($i == "BusyPollRxPackets") c = i } else { print $c + 0; exit } }' /proc/net/netstat
}

# napi_defer IF DEFER TIMEOUT: keep IF's interrupt masked for DEFER NAPI
# completions, TIMEOUT ns each, while hpio's readers busy-poll it.
napi_defer() {
	echo "$2" >/sys/class/net/$1/napi_defer_hard_irqs
	echo "$3" >/sys/class/net/$1/gro_flush_timeout
}

start() {
	NAME=$1
	DRIVER=${1%+alt}
	ko=/lib/hpio/hpio.ko
	nf=$NF
	if [ "$DRIVER" != "$NAME" ]; then
		[ -f /lib/hpio/hpio-alt.ko ] && ko=/lib/hpio/hpio-alt.ko
		[ -x $NF-alt ] && nf=$NF-alt
		if [ "$ko$nf" = "/lib/hpio/hpio.ko$NF" ]; then
			echo "virtio: failed to start $NAME (neither BENCH_ALT_KO nor BENCH_ALT_NF given)"
			return
		fi
	fi
	# hpio: readers busy-poll the NIC and keep its interrupt off meanwhile;
	# softirq takes over after 50 ms without a poll (a worker's pass over
	# 256 frames takes some 10 ms under TCG).
	# virtio-bench: another timeout from the host (BENCH_GRO_FLUSH, ns).
	flush=$(sed -n 's/.*hpio_gro_flush=\([0-9]*\).*/\1/p' /proc/cmdline)
	defer="100 ${flush:-50000000}"
	args=""
	burst=""
	gro=""
	# virtio-bench: fewer workers than queues (BENCH_WORKERS); one per queue by default.
	workers=$(sed -n 's/.*hpio_workers=\([0-9]*\).*/\1/p' /proc/cmdline)
	workers=${workers:-$Q}
	case "$DRIVER" in
	hpio-irq) DRIVER=hpio; defer="0 0"; args=busy_poll=0 ;;
	hpio-1w) DRIVER=hpio; workers=1 ;;
	hpio-b[0-9]*) burst=${DRIVER#hpio-b}; DRIVER=hpio ;;
	hpio-nogro) DRIVER=hpio; gro=off ;;
	linux-nogro) DRIVER=linux; defer="0 0"; gro=off ;;
	hpio) ;;
	*) defer="0 0" ;;
	esac
	for i in eth0 eth1; do napi_defer $i $defer; done
	[ "$DRIVER" = linux ] && { start_linux; return; }
	# GRO merges TCP segments into frames AF_PACKET cannot send on; hpio
	# splits them back itself, so it keeps GRO (the NIC's default).
	[ "$DRIVER" = hpio ] || gro=off
	gro=${gro:-on}
	for i in eth0 eth1; do ethtool -K $i gro $gro; done
	# Zero the module's counters: unload and load again.
	[ "$DRIVER" = hpio ] && { rmmod hpio; insmod $ko $args; }
	set --
	for p in lan0:eth0 lan1:eth1; do
		set -- "$@" --set "ports.${p%%:*}.driver=$DRIVER" \
			--set "ports.${p%%:*}.interface=${p#*:}" --set "ports.${p%%:*}.queues=$Q"
	done
	# virtio-bench: the hpio-nf's burst from the host (BENCH_BURST).
	[ -n "${burst:-}" ] || burst=$(sed -n 's/.*hpio_burst=\([0-9]*\).*/\1/p' /proc/cmdline)
	[ -n "$burst" ] && set -- "$@" --set runtime.burst=$burst
	$nf run $CONF --set runtime.workers=$workers "$@" --json >$T/run.json 2>$T/run.err &
	RUN=$!
	if wait_for 60 open_queues "$DRIVER" && kill -0 $RUN 2>/dev/null; then
		echo "virtio: ready $NAME"
	else
		sed 's/^/  hpio-nf: /' $T/run.err
		echo "virtio: failed to start $NAME"
	fi
}

stop() {
	[ "$DRIVER" = linux ] && { stop_linux; return; }
	kill -INT $RUN
	wait $RUN
	check "hpio-nf ($DRIVER) exits 0 after SIGINT" test $? = 0
	[ -s $T/run.err ] && sed 's/^/  hpio-nf: /' $T/run.err
	R=$T/run.json
	echo "virtio-report $NAME $(grep '"ports"' $R | tail -n 1)"
	if [ "$DRIVER" = hpio ]; then
		for i in eth0 eth1; do
			sed "s/^/virtio-queue $i /" /sys/class/hpio/$i/queue_stats
			# Fewer than the module's: super-frames (TSO, GRO) that it split.
			echo "virtio-netdev $i rx_packets $(cat /sys/class/net/$i/statistics/rx_packets)"
		done
	fi
	print_irqs
	echo "virtio-busypoll $NAME $(busy_polled) frames since boot"
	print_kicks "$NAME"
	if [ $BENCH = 1 ]; then
		echo "virtio: stopped $NAME"
		return
	fi
	# Nothing lost without a counted reason: every frame a port received
	# left by the other port (a two-port bridge floods to the other side)
	# or was dropped by the bridge with a reason (frames for a station on
	# the side they came from).
	rx=0
	tx=0
	for p in lan0 lan1; do
		rx=$((rx + $(json_num $R $p '"rx":{"packets":')))
		tx=$((tx + $(json_num $R $p '"tx":{"packets":')))
		check "port $p ($DRIVER) dropped nothing on transmit" \
			test "$(json_num $R $p '"tx":{' '"drops":')" = 0
	done
	# The bridge's drops, summed over reasons: "drops":[["reason",N],...].
	dropped=$(awk '{ i = index($0, "\"name\":\"br\""); if (!i) next
		s = substr($0, i); j = index(s, "\"drops\":["); s = substr(s, j + 9)
		s = substr(s, 1, index(s, "]") == 1 ? 0 : index(s, "]]")); gsub(/"[^"]*"/, "", s)
		n = split(s, a, /[^0-9]+/); t = 0; for (x = 1; x <= n; x++) t += a[x]
		print t; exit }' $R)
	echo "virtio-count $DRIVER rx=$rx tx=$tx bridge_dropped=$dropped"
	check "$DRIVER: frames received ($rx) = frames sent ($tx) + counted drops ($dropped)" \
		test "$rx" -gt 0 -a "$rx" = $((tx + dropped))
	if [ "$DRIVER" = hpio ]; then
		for i in eth0 eth1; do
			check "module $i: no receive drops" test "$(cat /sys/class/hpio/$i/rx_drops)" = 0
			check "module $i: no transmit errors" test "$(cat /sys/class/hpio/$i/tx_errors)" = 0
		done
		check "readers busy-polled the NICs: $(busy_polled) frames" \
			test "$(busy_polled)" -gt 0
		check "more than one receive queue of eth0 carried frames ($(busy_queues eth0) of $Q)" \
			test "$(busy_queues eth0)" -gt 1
		# Receive work on several CPUs: each worker (pinned to its own core)
		# took bursts. Not the NICs' receive interrupts: readers busy-poll
		# NAPI with the interrupts deferred, so a run sees only a handful,
		# and on 6.12 they came on one CPU (CI, session 7).
		cores=$(grep '"ports"' $R | tail -n 1 | grep -o '"bursts":[0-9]*' | awk -F: '$2 > 0' | wc -l)
		check "workers on more than one core took bursts ($cores)" test "$cores" -gt 1
	fi
	echo "virtio: stopped $NAME"
}

mkdir -p $T
echo "== hpio-nf bridge over hpio on virtio-net ($Q queues)"
insmod /lib/hpio/hpio.ko
for i in eth0 eth1; do
	check "$i is virtio-net" test "$(basename "$(readlink /sys/class/net/$i/device/driver)")" = virtio_net
	# The guest itself stays silent on the bridged links.
	echo 1 >/proc/sys/net/ipv6/conf/$i/disable_ipv6
	ethtool -L $i combined "$Q"
	check "ethtool -L $i combined $Q" test "$(ls -d /sys/class/net/$i/queues/rx-* | wc -l)" = "$Q"
	ip link set $i up
done
check "nodes /dev/hpio/eth0 and /dev/hpio/eth1" test -c /dev/hpio/eth0 -a -c /dev/hpio/eth1
$NF check $CONF >$T/check.out 2>&1
check "hpio-nf check $CONF" test $? = 0

# ethtool -L shrinks eth0's channels under hpio writers on every queue: the
# module picks the TX queue (q % real_num_tx_queues) inside its BH-off
# section, which the driver's shrink waits for. No warning (the host scans
# the console), no TX watchdog, every frame counted, none refused.
if [ "$Q" -gt 1 ] && [ $BENCH = 0 ]; then
	before=$(cat /sys/class/hpio/eth0/tx_packets)
	$NF pktgen -i eth0 --driver hpio --param queues=$Q -t $Q -D 02:00:00:00:0e:01 -b 16 \
		--interval 1ms --duration 2s --json >$T/shrink.json 2>&1 &
	PG=$!
	k=0
	while kill -0 $PG 2>/dev/null; do
		ethtool -L eth0 combined 1 && ethtool -L eth0 combined "$Q" && k=$((k + 1))
	done
	wait $PG
	check "pktgen over hpio on $Q queues of eth0 while ethtool -L toggled 1/$Q channels ($k times)" \
		test $? = 0 -a $k -gt 0
	sent=$(summary_num $T/shrink.json packets)
	eq "module eth0 counted every frame pktgen sent" \
		"$(($(cat /sys/class/hpio/eth0/tx_packets) - before))" "${sent:-none}"
	check "module eth0: no transmit errors" test "$(cat /sys/class/hpio/eth0/tx_errors)" = 0
	check "eth0 back to $Q channels" test "$(ls -d /sys/class/net/eth0/queues/tx-* | wc -l)" = "$Q"
fi

# The syscall fuzzer (tests/fuzz.c) with eth0 and eth1 among its devices:
# ethtool -L, MTU and link changes on virtio-net under random calls. Its
# check lines count as this script's; then the NICs are set back.
read -r secs seed </etc/hpio-fuzz
if [ "${secs:-0}" != 0 ] && [ $BENCH = 0 ]; then
	/bin/hpio_fuzz -v -t "$secs" ${seed:+-s "$seed"} >$T/fuzz.out 2>&1
	check "syscall fuzzer on virtio-net and veth ($secs s) exits 0" test $? = 0
	sed -n 's/^\(ok  \|FAIL\) fuzz:/\1 nf: fuzz:/p; /^fuzz:/p' $T/fuzz.out
	passed=$((passed + $(grep -c "^ok   fuzz:" $T/fuzz.out)))
	failed=$((failed + $(grep -c "^FAIL fuzz:" $T/fuzz.out)))
	[ -d /sys/module/hpio ] || insmod /lib/hpio/hpio.ko
	for i in eth0 eth1; do
		ethtool -L $i combined "$Q"
		ip link set $i mtu 1500 up
	done
	check "eth0 and eth1 back to $Q channels after the fuzzer" \
		test "$(ls -d /sys/class/net/eth1/queues/rx-* | wc -l)" = "$Q" -a \
		"$(ls -d /sys/class/net/eth0/queues/tx-* | wc -l)" = "$Q"
fi

stty -F /dev/ttyS1 -echo
exec 3</dev/ttyS1
# The clock source decides what a clock read costs under TCG (an emulated
# HPET takes qemu's big lock; the TSC does not): the bench says which.
echo "virtio: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "virtio: waiting for commands"
while read -r cmd arg <&3; do
	case "$cmd" in
	start) start "$arg" ;;
	stop) stop ;;
	mark) mark ;;
	perf) perf_record "$arg" ;;
	quit) break ;;
	*) echo "virtio: unknown command '$cmd'" ;;
	esac
done
echo "$passed $failed" >/tmp/nf.result
echo "nf: $passed passed, $failed failed"
