#!/usr/bin/env bash
# Forwarded Mpps over veth, every driver in one run: `hpio-nf pktgen` in
# namespace hpnf-h1 (pinned to core 0) sends 64-byte UDP frames to hpnf-h2,
# where `hpio-nf pktgen --rx` (core 1) counts what arrives, through
#   - configs/bridge.toml over af_packet, in the variants listed below,
#   - configs/firewall.toml over af_packet (its ports moved to the bridge
#     testbed's interfaces),
#   - configs/bridge.toml over af_xdp, when this build accepts
#     `driver = "af_xdp"` (the row is left out, and said so, otherwise),
#   - the Linux bridge on the same veth pairs.
# ROUNDS rounds (default 3) run every row once each, interleaved; each row's
# ratio is to the Linux bridge of the same round.
#
# CPU per forwarded frame, two figures per row:
#   nf_us   CPU time of the NF process (utime + stime, /proc/PID/stat) over
#           the frames the sink counted; 0 for the Linux bridge (no process);
#   sirq_us the whole machine's softirq time (/proc/stat) over the same
#           frames: where the kernel's own forwarding runs, and also where the
#           veth receive work for the NF's sockets runs;
#   sum     nf_us + sirq_us: the row's forwarding cost, compared the same way
#           for every row (the generator and the sink are the same in all).
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
	"Firewall af_packet|${fw[*]} --set runtime.cores=[1]"
)
xdp=(configs/bridge.toml --set elements.br.table_file=/tmp/hpnf-bench.fdb
	--set ports.lan0.driver=af_xdp --set ports.lan1.driver=af_xdp)
if "$bin" check "${xdp[@]}" >/dev/null 2>&1; then
	rows+=("Bridge af_xdp worker on core 1|${xdp[*]} --set runtime.cores=[1]")
else
	echo "(no af_xdp row: this build does not accept driver = \"af_xdp\")"
fi
rows+=("Linux bridge|linux")

# Ticks of softirq time of the whole machine so far.
softirq() { awk '/^cpu /{print $8}' /proc/stat; }
# Ticks of CPU time (user + system) of process $1 so far.
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Measures one row; writes "frames nf_ticks softirq_ticks" to $1.
measure() {
	local file=$1
	ip netns exec hpnf-h2 "$bin" pktgen -i eth0 --driver af_packet --rx --cores 1 \
		--filter "udp and dst port 9" --duration $((dur + 2))s --json >"$out/rx.json" 2>/dev/null &
	local rx=$!
	sleep 1
	local s0 p0=0 s1 p1=0
	s0=$(softirq)
	[ -n "$nf_pid" ] && p0=$(proc_cpu "$nf_pid")
	ip netns exec hpnf-h1 "$bin" pktgen -i eth0 --driver af_packet --cores 0 -D "$dmac" \
		-d 10.0.0.2 -s 10.0.0.1 -l 60 --duration ${dur}s >/dev/null 2>&1
	s1=$(softirq)
	[ -n "$nf_pid" ] && p1=$(proc_cpu "$nf_pid")
	wait $rx
	local frames
	frames=$(python3 -c 'import json,sys
print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["packets"])' "$out/rx.json")
	echo "$frames $((p1 - p0)) $((s1 - s0))" >"$file"
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
print("| row | Mpps | ratio | NF CPU us/frame | softirq us/frame | sum us/frame |")
print("|---|---|---|---|---|---|")
for i, name in enumerate(names):
    mpps, ratio, nf, sirq, tot = [], [], [], [], []
    for r in range(rounds):
        f, p, s = map(int, open(f"{out}/{r}.{i}").read().split())
        k = int(open(f"{out}/{r}.{linux}").read().split()[0])
        mpps.append(f / dur / 1e6)
        ratio.append(f / k if k else 0.0)
        per = lambda t: t / hz * 1e6 / f if f else float("nan")
        nf.append(per(p)); sirq.append(per(s)); tot.append(per(p + s))
    print(f"| {name} | {rng(mpps, '%.3f')} | {rng(ratio, '%.2f')} | {rng(nf, '%.2f')} "
          f"| {rng(sirq, '%.2f')} | {rng(tot, '%.2f')} |")
EOF
