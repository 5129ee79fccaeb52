#!/usr/bin/env bash
# Forwarded Mpps over veth, every driver in one run: `hpio-nf pktgen` in
# namespace hpnf-h1 (pinned to core 0) sends 64-byte UDP frames to hpnf-h2,
# where `hpio-nf pktgen --rx` (core 1) counts what arrives, through
#   - configs/bridge.toml over af_packet, in the variants listed below,
#   - configs/firewall.toml over af_packet (its ports moved to the bridge
#     testbed's interfaces),
#   - configs/bridge.toml over af_xdp with bursts of 256 frames, and with
#     the default 32, when this build accepts `driver = "af_xdp"` (the rows
#     are left out, and said so, otherwise),
#   - the Linux bridge on the same veth pairs.
# ROUNDS rounds (default 3) run every row once each, interleaved; each row's
# ratio is to the Linux bridge of the same round.
#
# lost %: of the frames the generator sent, those the sink did not count.
# CPU per forwarded frame (frames = what the sink counted):
#   NF       CPU time of the NF process (utime + stime, /proc/PID/stat)
#            while the generator ran; none for the Linux bridge;
#   sender + NF  generator (getrusage of its whole run) + NF + the
#            ksoftirqd threads: the CPU seconds each row spent on sending
#            and forwarding, compared the same way for every row. The
#            kernel's own forwarding runs as softirq in the context of the
#            thread that transmitted (the generator's, for the Linux bridge),
#            and this kernel's tick accounting charges that to the thread it
#            interrupted. The sink is left out: it polls, so its time per
#            frame mostly says how long it waited;
#   softirq  the machine's softirq time (/proc/stat) in the same window:
#            the share of the above spent in the kernel's receive paths
#            (veth, bridge, IP stack of the sink's namespace, packet sockets).
# Needs root. DURATION (seconds per measurement) defaults to 10.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-10}
rounds=${ROUNDS:-3}
cargo build --release -q -p hpio-nf-cli
bin=$PWD/target/release/hpio-nf
out=$(mktemp -d /tmp/hpnf-bench-live.XXXXXX)
nf_pid=
cleanup() {
	[ -n "$nf_pid" ] && kill "$nf_pid" 2>/dev/null || true
	ip link del hpnf-kbr 2>/dev/null || true
	"$bin" testbed down bridge >/dev/null || true
	rm -rf "$out"
}
trap cleanup EXIT
"$bin" testbed down bridge >/dev/null
"$bin" testbed up bridge >/dev/null
dmac=$(ip netns exec hpnf-h2 cat /sys/class/net/eth0/address)
hz=$(getconf CLK_TCK)

# The rows: name, then the `hpio-nf run` arguments ("linux" for the Linux bridge).
bridge=(configs/bridge.toml --set elements.br.table_file=/tmp/hpnf-bench.fdb
	--set ports.lan0.driver=af_packet --set ports.lan1.driver=af_packet)
fw=(configs/firewall.toml --set ports.inside.interface=hpnf-br0
	--set ports.outside.interface=hpnf-br1
	--set ports.inside.driver=af_packet --set ports.outside.driver=af_packet)
rows=(
	"Bridge af_packet, worker on core 0 (with the generator)|${bridge[*]}"
	"Bridge af_packet|${bridge[*]} --set runtime.cores=[1]"
	"Bridge af_packet, qdisc_bypass = false|${bridge[*]} --set runtime.cores=[1] --set ports.lan0.qdisc_bypass=false --set ports.lan1.qdisc_bypass=false"
	"Bridge af_packet, rx_mode = tpacket_v3|${bridge[*]} --set runtime.cores=[1] --set ports.lan0.rx_mode=tpacket_v3 --set ports.lan1.rx_mode=tpacket_v3"
	"Bridge af_packet, burst = 256|${bridge[*]} --set runtime.cores=[1] --set runtime.burst=256"
	"Firewall af_packet|${fw[*]} --set runtime.cores=[1]"
)
xdp=(configs/bridge.toml --set elements.br.table_file=/tmp/hpnf-bench.fdb
	--set ports.lan0.driver=af_xdp --set ports.lan1.driver=af_xdp)
if "$bin" check "${xdp[@]}" >/dev/null 2>&1; then
	# Bursts of 256: one sendto and one pass through the graph per 256
	# frames (system calls and context switches are dear in some guests).
	rows+=("Bridge af_xdp, burst = 256|${xdp[*]} --set runtime.cores=[1] --set runtime.burst=256")
	rows+=("Bridge af_xdp, burst = 32|${xdp[*]} --set runtime.cores=[1]")
else
	echo "(no af_xdp rows: this build does not accept driver = \"af_xdp\")"
fi
rows+=("Linux bridge|linux")

# Ticks of softirq time of the whole machine so far.
softirq() { awk '/^cpu /{print $8}' /proc/stat; }
# Ticks of CPU time (user + system, all threads) of process $1 so far.
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ksoftirqd=$(pgrep -x 'ksoftirqd/[0-9]+' | sed 's|^|/proc/|; s|$|/stat|' | tr '\n' ' ' || true)
ksoft_cpu() { [ -z "$ksoftirqd" ] && echo 0 || cat $ksoftirqd | awk '{t += $14 + $15} END {print t + 0}'; }
# Runs a command and writes its CPU seconds (user + system, all threads:
# getrusage of the child) to $1.
cat >"$out/cpu.py" <<'PY'
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
open(sys.argv[1], "w").write("%f\n" % (ru.ru_utime + ru.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))
PY
cpu_of() { python3 "$out/cpu.py" "$@"; }

# The packets of a pktgen --json summary (its last line).
summary() {
	python3 -c 'import json,sys
print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["packets"])' "$1"
}

# Measures one row; writes "frames nf_ticks softirq_ticks ksoftirqd_ticks
# generator_secs frames_sent" to $1.
measure() {
	local file=$1
	ip netns exec hpnf-h2 "$bin" pktgen -i eth0 --driver af_packet --rx \
		--cores 1 --filter "udp and dst port 9" --duration $((dur + 2))s --json \
		>"$out/rx.json" 2>/dev/null &
	local rx=$!
	sleep 1
	local s0 p0=0 k0 s1 p1=0 k1
	s0=$(softirq) k0=$(ksoft_cpu)
	[ -n "$nf_pid" ] && p0=$(proc_cpu "$nf_pid")
	cpu_of "$out/tx.cpu" ip netns exec hpnf-h1 "$bin" pktgen -i eth0 --driver af_packet \
		--cores 0 -D "$dmac" -d 10.0.0.2 -s 10.0.0.1 -l 60 --duration ${dur}s --json >"$out/tx.json" 2>/dev/null
	s1=$(softirq) k1=$(ksoft_cpu)
	[ -n "$nf_pid" ] && p1=$(proc_cpu "$nf_pid")
	wait $rx
	local frames sent
	frames=$(summary "$out/rx.json")
	sent=$(summary "$out/tx.json")
	echo "$frames $((p1 - p0)) $((s1 - s0)) $((k1 - k0)) $(cat "$out/tx.cpu") $sent" >"$file"
}

run_row() {
	local r=$1 i=$2 args=$3
	if [ "$args" = linux ]; then
		ip link add hpnf-kbr type bridge
		ip link set hpnf-br0 master hpnf-kbr
		ip link set hpnf-br1 master hpnf-kbr
		ip link set hpnf-kbr up
		measure "$out/$r.$i"
		ip link del hpnf-kbr
		return
	fi
	# shellcheck disable=SC2086 # the row's arguments are words
	RUST_LOG=warn "$bin" run --no-control $args >/dev/null 2>"$out/nf.err" &
	nf_pid=$!
	sleep 1
	if ! kill -0 "$nf_pid" 2>/dev/null; then
		echo "row $i did not start:" >&2
		cat "$out/nf.err" >&2
		exit 1
	fi
	measure "$out/$r.$i"
	kill "$nf_pid"
	wait "$nf_pid" || true
	nf_pid=
}

for ((r = 0; r < rounds; r++)); do
	for i in "${!rows[@]}"; do
		run_row "$r" "$i" "${rows[$i]#*|}"
	done
done

echo "$rounds rounds of ${dur}s, interleaved; ratio = row / Linux bridge of the same round"
names=()
for row in "${rows[@]}"; do names+=("${row%%|*}"); done
python3 - "$out" "$rounds" "$dur" "$hz" "${names[@]}" <<'EOF'
import statistics, sys
out, rounds, dur, hz, names = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]
linux = len(names) - 1
def rng(xs, fmt):
    xs = sorted(xs)
    med = statistics.median(xs)
    return (fmt % med) + (" (" + fmt % xs[0] + "-" + fmt % xs[-1] + ")" if len(xs) > 1 else "")
print("| row | Mpps | ratio | lost % | NF CPU us/frame | sender + NF CPU us/frame | softirq us/frame |")
print("|---|---|---|---|---|---|---|")
for i, name in enumerate(names):
    mpps, ratio, lost, nf, bed, sirq = [], [], [], [], [], []
    for r in range(rounds):
        f, p, s, k, gen, sent = open(f"{out}/{r}.{i}").read().split()
        f, p, s, k, gen, sent = int(f), int(p), int(s), int(k), float(gen), int(sent)
        lost.append(100.0 * (sent - f) / sent if sent else 0.0)
        base = int(open(f"{out}/{r}.{linux}").read().split()[0])
        mpps.append(f / dur / 1e6)
        ratio.append(f / base if base else 0.0)
        per = lambda secs: secs * 1e6 / f if f else float("nan")
        nf.append(per(p / hz)); sirq.append(per(s / hz))
        bed.append(per((p + k) / hz + gen))
    print(f"| {name} | {rng(mpps, '%.3f')} | {rng(ratio, '%.2f')} | {rng(lost, '%.0f')} | {rng(nf, '%.2f')} "
          f"| {rng(bed, '%.2f')} | {rng(sirq, '%.2f')} |")
EOF
