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
#   virtio-bench  frames per second through the kernel's bridge and
#                 hpio-nf's bridge over hpio and over AF_PACKET in the same
#                 boot, in interleaved rounds, with how busy the guest was.
#
# Environment (from run-vm.sh): VMLINUZ INITRD OUT ACCEL CPUS MODE TIMEOUT NF,
# and HPIO_VM_QUEUES (queue pairs per NIC, default CPUS), BENCH_SECS (5),
# BENCH_ROUNDS (3), BENCH_DRIVERS ("linux hpio af_packet": linux is the
# kernel's bridge, the reference of the ratios; hpio-irq is hpio without
# busy polling, as before the module had it; hpio-1w is hpio with one
# worker reading every queue, hpio-bN hpio with a burst of N), BENCH_PACE (pktgen options;
# default empty: as fast as the sender can), BENCH_BURST (hpio-nf's
# runtime.burst, default 256: a readv/writev of up to 256 frames; empty:
# the config's, 32), BENCH_WORKERS (hpio-nf's workers, default one per
# queue; 1: one worker reads every queue), BENCH_GRO_FLUSH (the NICs'
# gro_flush_timeout in ns for the hpio round, default 50 ms), HPIO_VM_PERF=1 (a profiled
# pass per driver after the rounds; run-vm.sh packs perf), BENCH_ALT_KO and
# BENCH_ALT_NF (run-vm.sh: another hpio.ko and hpio-nf for the rounds of
# drivers named with a +alt suffix, such as "hpio hpio+alt"), BENCH_SRC_PORTS
# (the sender's UDP source ports, one flow each: default 1024-1151, 128 flows,
# which RSS splits about 53/47 over two queues), BENCH_CMDLINE (more guest
# kernel parameters, e.g. "clocksource=tsc tsc=reliable": under TCG the
# guest picks the HPET, whose every read takes qemu's big lock).
#
# Each round prints the host's CPU per thread over its middle seconds, in
# cores: qemu's main loop (which moves the frames between the taps and the
# rings), each vCPU thread, the sender and the sink, and the host's total.
# A vCPU thread using less host CPU than the guest's busy share of that vCPU
# is waiting (for qemu's lock, under TCG) while the guest counts it busy.
# A second line gives each thread's time runnable but waiting for a host CPU
# (/proc/*/schedstat; the bench turns the host's task_delayacct on for it):
# with every thread waiting about as long as it runs, the host's cores are
# the limit.
set -uo pipefail
: "${VMLINUZ:?}" "${INITRD:?}" "${OUT:?}" "${ACCEL:?}" "${CPUS:?}" "${MODE:?}" "${NF:?}"
Q=${HPIO_VM_QUEUES:-$CPUS}
TIMEOUT=${TIMEOUT:-900}
BENCH_SECS=${BENCH_SECS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_DRIVERS=${BENCH_DRIVERS:-linux hpio af_packet}
BENCH_BURST=${BENCH_BURST-256}
BENCH_WORKERS=${BENCH_WORKERS-}
BENCH_GRO_FLUSH=${BENCH_GRO_FLUSH-}
# The sender's pace: unpaced by default (issue 16's figures); e.g.
# "--batch 16 --interval 400us" (40 kfps) leaves host CPU to the emulator.
BENCH_PACE=${BENCH_PACE-}
NSA=hpvm-a
NSB=hpvm-b
TAPA=hpvt-a
TAPB=hpvt-b
IPA=10.77.0.1
IPB=10.77.0.2
SERIAL=$OUT/serial.log
CTL=$OUT/ctl
MON=$OUT/monitor.sock
T=$OUT/virtio
QEMU=""
DELAYACCT=""
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
	[ -n "$DELAYACCT" ] && echo "$DELAYACCT" >/proc/sys/kernel/task_delayacct 2>/dev/null
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
# guest_stacks: a guest that stopped answering gets an NMI (as in run-vm.sh):
# it panics (unknown_nmi_panic) and its CPUs' stacks are shown here.
guest_stacks() {
	kill -0 "$QEMU" 2>/dev/null || return 0
	"$(dirname "$0")/nmi-guest.py" "$MON" 0
	sleep 10
	tr -d '\r' <"$SERIAL" | sed -n '/NMI received\|Kernel panic/,$p' | head -n 400
}
# guest COMMAND PATTERN SECONDS: sends a command, waits for its answer.
# The guest answers "virtio: failed ..." when it cannot obey.
guest() {
	local seen failed
	seen=$(grep -c "$2\|virtio: failed" "$SERIAL")
	failed=$(grep -c "virtio: failed" "$SERIAL")
	echo "$1" >"$CTL.in"
	wait_serial "$3" "$2\|virtio: failed" "$seen" || {
		guest_stacks
		die "no \"$2\" from the guest (serial log: $SERIAL)"
	}
	[ "$(grep -c "virtio: failed" "$SERIAL")" = "$failed" ] ||
		die "the guest failed to obey \"$1\": $(tr -d '\r' <"$SERIAL" | grep -B5 "virtio: failed" | tail -n 6)"
}

# start_vm: the taps, qemu, the taps in their namespaces, and the guest
# up and waiting for commands; false (with the reason said) when the guest
# did not come up.
start_vm() {
	rm -f "$CTL.in" "$CTL.out" "$SERIAL" "$MON"
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
	timeout "$TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -m 1024 -smp "$CPUS" -display none -name hpio-vm,debug-threads=on \
		-monitor "unix:$MON,server=on,wait=off" -no-reboot -serial "file:$SERIAL" -serial "pipe:$CTL" "${NICS[@]}" \
		-kernel "$VMLINUZ" -initrd "$INITRD" \
		-append "console=ttyS0 quiet panic_on_warn=1 oops=panic panic=-1 unknown_nmi_panic panic_print=0x40 rdinit=/init hpio_mode=$MODE hpio_queues=$Q${BENCH_BURST:+ hpio_burst=$BENCH_BURST}${BENCH_WORKERS:+ hpio_workers=$BENCH_WORKERS}${BENCH_GRO_FLUSH:+ hpio_gro_flush=$BENCH_GRO_FLUSH}${BENCH_CMDLINE:+ $BENCH_CMDLINE}" \
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

# bench_round ROUND DRIVER: the sender floods for BENCH_SECS through the
# guest's bridge over DRIVER; appends "DRIVER frames/s busy%" to $T/rates
# (ROUND perf: a perf record of the guest instead, the rate not counted).
bench_round() {
	local sent got busy tx secs=$BENCH_SECS
	# perf takes seconds to start under TCG: the flood lasts longer.
	[ "$1" = perf ] && secs=$((BENCH_SECS * 4))
	guest "start $2" "virtio: ready $2" 120
	inb "$NF" pktgen --rx -i $TAPB --driver af_packet --filter "udp and dst port 9" \
		--duration $((secs + 3))s --json >$T/rx-$2.json 2>&1 &
	RX=$!
	sleep 1
	[ "$1" = perf ] || guest "mark" "virtio: marked" 60
	ina "$NF" pktgen -i $TAPA --driver af_packet -D 02:00:00:77:0b:99 -s $IPA -d $IPB \
		--src-port ${BENCH_SRC_PORTS:-1024-1151} -l 64 --duration ${secs}s $BENCH_PACE --json \
		>$T/tx-$2.json 2>&1 &
	tx=$!
	if [ "$1" = perf ]; then
		sleep 1
		guest "perf $BENCH_SECS" "virtio: perf done" 600
		wait $tx
		wait $RX
		guest "stop" "virtio: stopped $2" 120
		return
	fi
	if [ "$secs" -ge 2 ]; then
		# The host's CPU over the middle of the flood: who got the cores.
		sleep 0.5
		host_cpu qemu=$QEMU sender=$tx sink=$RX >$T/cpu0
		sleep $((secs - 1))
		host_cpu qemu=$QEMU sender=$tx sink=$RX >$T/cpu1
	fi
	wait $tx
	guest "mark" "virtio: busy" 60
	busy=$(tr -d '\r' <"$SERIAL" | sed -n 's/^virtio: busy \([0-9]*\)%.*/\1/p' | tail -n 1)
	wait $RX
	sent=$(summary_num $T/tx-$2.json packets)
	got=$(summary_num $T/rx-$2.json packets)
	echo "bench: virtio round $1 $2: sent $sent, through the bridge $got," \
		"$((${got:-0} / BENCH_SECS)) frames/s, guest busy ${busy:-?}%"
	echo "$2 $((${got:-0} / BENCH_SECS)) ${busy:-0}" >>$T/rates
	guest "stop" "virtio: stopped $2" 120
	round_host "$1" "$2"
	round_workers "$1" "$2"
}

# host_cpu LABEL=PID...: "TIME NAME TICKS" lines, one per thread name of
# qemu ("qemu-system-x86" is its main loop, which moves the frames between
# the taps and the rings under TCG; "CPU 0/TCG" a vCPU) and one per other
# process, from /proc.
host_cpu() {
	python3 - "$@" <<'EOF'
import os, sys, time
def stat(path):
    try:
        with open(path) as f:
            st = f.read()
    except OSError:
        return None, []
    return st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2:].split()
kids = {}
for p in filter(str.isdigit, os.listdir("/proc")):
    f = stat("/proc/%s/stat" % p)[1]
    if f:
        kids.setdefault(f[1], []).append(p)
now, ticks, seen = time.monotonic(), {}, set()
for arg in sys.argv[1:]:
    label, todo = arg.split("=", 1)[0], [arg.split("=", 1)[1]]
    while todo:  # the process and its descendants (a shell may stand between)
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo += kids.get(pid, [])
        try:
            tids = os.listdir("/proc/%s/task" % pid)
        except OSError:
            continue
        for tid in tids:
            comm, f = stat("/proc/%s/task/%s/stat" % (pid, tid))
            if f:
                name = comm.replace(" ", "_") if label == "qemu" else label
                ticks[name] = ticks.get(name, 0) + int(f[11]) + int(f[12])
                try:  # ns runnable but waiting for a CPU (task_delayacct)
                    with open("/proc/%s/task/%s/schedstat" % (pid, tid)) as g:
                        wait = int(g.read().split()[1])
                    ticks["wait:" + name] = ticks.get("wait:" + name, 0) + wait
                except (OSError, IndexError, ValueError):
                    pass
with open("/proc/stat") as f:  # all CPUs: busy (not idle or iowait)
    c = [int(x) for x in f.readline().split()[1:]]
ticks["all_busy"] = sum(c) - c[3] - c[4]
for name, t in ticks.items():
    print(now, name, t)
EOF
}

# round_host ROUND DRIVER: the host's CPU per thread between the two
# host_cpu snapshots of the round, in cores (1.00: one core all the time).
round_host() {
	[ -s $T/cpu0 ] && [ -s $T/cpu1 ] || return 0
	python3 - "$1" "$2" $T/cpu0 $T/cpu1 "$(getconf CLK_TCK)" <<'EOF'
import sys
rnd, drv, a, b, hz = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
def load(p):
    rows = [l.split() for l in open(p) if l.strip()]
    return float(rows[0][0]), {r[1]: int(r[2]) for r in rows}
t0, c0 = load(a)
t1, c1 = load(b)
use = {n: (c1[n] - c0.get(n, 0)) / hz / (t1 - t0) for n in c1 if not n.startswith("wait:")}
wait = {n[5:]: (c1[n] - c0.get(n, 0)) / 1e9 / (t1 - t0) for n in c1 if n.startswith("wait:")}
busy = use.pop("all_busy")
order = ["qemu-system-x86", "CPU_0/TCG", "CPU_1/TCG", "sender", "sink"]
names = [n for n in order if n in use] + sorted(n for n in use if n not in order)
names = [n for n in names if use[n] >= 0.005]
def per_thread(values):
    return ", ".join("%s %.2f" % (n.replace("qemu-system-x86", "qemu main").replace("_", " "),
                                  values.get(n, 0)) for n in names)
print("bench: virtio round %s %s host CPU over %.1f s, in cores: %s; all busy %.2f"
      % (rnd, drv, t1 - t0, per_thread(use), busy))
if any(wait.values()):
    print("bench: virtio round %s %s host run-queue wait, in threads: %s"
          % (rnd, drv, per_thread(wait)))
EOF
	rm -f $T/cpu0 $T/cpu1
}

# round_workers ROUND DRIVER: from hpio-nf's report of the round just
# stopped, each worker's busy seconds (the traffic's window is BENCH_SECS)
# and CPU seconds (the whole run), the frames the module's rings dropped
# and the TX retries: a saturated worker reads as busy for the whole window.
round_workers() {
	tr -d '\r' <"$SERIAL" | grep "^virtio-report $2 {" | tail -n 1 | python3 -c '
import json, sys
try:
    r = json.loads(sys.stdin.read().split(" ", 2)[2])
except (IndexError, ValueError):
    r = None  # no report: the Linux round, or a run that failed (said above)
if r:
    ws = "; ".join("w%d busy %.2f s, cpu %.2f s" % (w["index"], w["busy_secs"], w["cpu_secs"])
                   for w in r["workers"])
    st = [p.get("driver_stats") or {} for p in r["ports"]]
    drops = sum(s.get("hpio_rx_drops", 0) for s in st)
    retries = sum(s.get("tx_retries", 0) for s in st)
    print("bench: virtio round %s %s workers: %s; ring drops %d, TX retries %d"
          % (sys.argv[1], sys.argv[2], ws, drops, retries))
' "$1" "$2"
}

cleanup
rm -rf "$T"
mkdir -p "$T"
# The bench's run-queue waits come from /proc/*/schedstat, which the host
# fills only with task_delayacct on (restored at exit).
DELAYACCT=
if [ "$MODE" != virtio ] && [ -w /proc/sys/kernel/task_delayacct ]; then
	DELAYACCT=$(cat /proc/sys/kernel/task_delayacct)
	echo 1 >/proc/sys/kernel/task_delayacct
fi
# A guest that fails before hpio.ko is loaded boots once more (tests/boot-check.sh).
boot_with_retry "$SERIAL" reset_vm start_vm || die "the guest did not come up (serial log: $SERIAL)"
[ "$MODE" = virtio ] || echo "bench: guest clock source $(tr -d '\r' <"$SERIAL" | sed -n 's/^virtio: clocksource //p' | tail -n 1)"

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
	# Interleaved rounds: every driver once per round, in BENCH_DRIVERS order.
	for round in $(seq "$BENCH_ROUNDS"); do
		for driver in $BENCH_DRIVERS; do
			bench_round "$round" "$driver"
		done
	done
	# HPIO_VM_PERF=1: one more pass per driver, profiled (rates not counted).
	if [ "${HPIO_VM_PERF:-0}" = 1 ]; then
		for driver in $BENCH_DRIVERS; do
			bench_round perf "$driver"
		done
	fi
	guest "quit" "^nf: [0-9]* passed" 60
	# Mean, range and guest busy % per driver; ratios to the first driver
	# (the kernel's bridge by default).
	awk -v order="$BENCH_DRIVERS" -v cpus="$CPUS" 'BEGIN { nd = split(order, d, " ") }
		{ s[$1] += $2; n[$1]++; b[$1] += $3
		  if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2; if ($2 > hi[$1]) hi[$1] = $2 }
		END { ref = n[d[1]] ? s[d[1]] / n[d[1]] : 0
		for (i = 1; i <= nd; i++) { k = d[i]; if (!n[k]) continue; m = s[k] / n[k]
			printf "bench: virtio bridge %-9s %6d frames/s (%d-%d), guest busy %3.0f%%" \
				" (%.0f us of guest CPU per frame), %.2fx %s\n", k, m, lo[k], hi[k], b[k] / n[k],
				m ? b[k] / n[k] / 100 * cpus * 1e6 / m : 0, ref ? m / ref : 0, d[1] } }' $T/rates
fi

wait $QEMU 2>/dev/null
QEMU=""
tr -d '\r' <"$SERIAL" | grep -E "^(ok|FAIL) +nf:|^virtio-|^  hpio-nf:|^bench:|^perf|^fuzz: (seed|ops|chaos)" | sed 's/^/guest: /'
if grep -nE "Oops|BUG:|WARNING:|Kernel panic|unregister_netdevice: waiting|Call Trace" "$SERIAL"; then
	die "the kernel reported a problem (above)"
fi
gp=$(tr -d '\r' <"$SERIAL" | grep -c "^ok   nf:")
gf=$(tr -d '\r' <"$SERIAL" | grep -c "^FAIL nf:")
echo "$((passed + gp)) passed, $((failed + gf)) failed"
[ "$((failed + gf))" = 0 ] || die "$((failed + gf)) check(s) failed"
echo "virtio-host: PASS"
