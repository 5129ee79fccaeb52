#!/usr/bin/env bash
# CPU per forwarded frame with `[runtime] idle = "sleep"` and `"spin"`, live
# over veth: configs/bridge.toml between the bridge testbed's namespaces
# (as in scripts/bench-live.sh: `hpio-nf pktgen` in hpnf-h1 sends 64-byte
# UDP frames to hpnf-h2, where `pktgen --rx` counts what arrives). For each
# load (100%: the sender unpaced; 10% and 1% of the first unpaced rate,
# paced with --batch/--interval) and each mode, interleaved over ROUNDS
# rounds: frames forwarded per second, and the NF's CPU time (utime +
# stime of /proc/PID/stat over the sending window) per forwarded frame and
# as a share of one core. Needs root; run under `flock /tmp/hpnf-net.lock`
# when others share the machine. DURATION (s, default 5), ROUNDS (default 2),
# LOADS (default "100 10 1"; 100 always runs, the paced loads need its rate),
# DRIVER (the NF's ports' driver, default auto: af_xdp where it opens, as on
# veth, else af_packet).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-5}
rounds=${ROUNDS:-2}
driver=${DRIVER:-auto}
cargo build --release -q -p hpio-nf-cli
# BIN: another hpio-nf to measure (default: the workspace's, built above).
bin=${BIN:-$PWD/target/release/hpio-nf}
nf_pid=
cleanup() {
	[ -n "$nf_pid" ] && kill "$nf_pid" 2>/dev/null || true
	"$bin" testbed down bridge >/dev/null || true
}
trap cleanup EXIT
"$bin" testbed down bridge >/dev/null
"$bin" testbed up bridge >/dev/null
dmac=$(ip netns exec hpnf-h2 cat /sys/class/net/eth0/address)
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }

# measure MODE BATCH INTERVAL: prints "fps cpu_ns_per_frame cpu_share".
measure() {
	RUST_LOG=warn "$bin" run configs/bridge.toml --set "runtime.idle=$1" \
		--set "ports.lan0.driver=$driver" --set "ports.lan1.driver=$driver" \
		--set elements.br.table_file=/tmp/hpnf-bench-idle.fdb --no-control >/dev/null 2>&1 &
	nf_pid=$!
	sleep 1
	kill -0 "$nf_pid" 2>/dev/null || {
		echo "bench-idle: hpio-nf run ended at once (idle=$1, driver=$driver); run it by hand to see why" >&2
		exit 1
	}
	ip netns exec hpnf-h2 "$bin" pktgen -i eth0 --driver af_packet --rx --cores 1 \
		--filter "udp and dst port 9" --duration $((dur + 2))s --json >/tmp/hpnf-idle-rx.json 2>/dev/null &
	local rx=$!
	sleep 1
	local pace=()
	[ "$3" != 0 ] && pace=(--interval "$3")
	local c0 t0 c1 t1
	c0=$(cpu_ticks "$nf_pid"); t0=$(date +%s.%N)
	ip netns exec hpnf-h1 "$bin" pktgen -i eth0 --driver af_packet --cores 0 -D "$dmac" \
		-d 10.0.0.2 -s 10.0.0.1 -l 60 -b "$2" "${pace[@]}" --duration ${dur}s >/dev/null 2>&1
	c1=$(cpu_ticks "$nf_pid"); t1=$(date +%s.%N)
	wait $rx
	kill "$nf_pid"; wait "$nf_pid" || true; nf_pid=
	python3 -c 'import json,sys
r=json.loads(open("/tmp/hpnf-idle-rx.json").read().splitlines()[-1])
c0,c1,hz,t0,t1=map(float,sys.argv[1:6])
cpu=(c1-c0)/hz; wall=t1-t0; n=max(r["packets"],1)
print("%.0f %.0f %.3f" % (r["packets"]/wall, cpu/n*1e9, cpu/wall))' "$c0" "$c1" "$hz" "$t0" "$t1"
}

echo "# load mode round: forwarded frames/s, NF CPU ns per forwarded frame, NF CPU share of one core"
peak=
for round in $(seq "$rounds"); do
	for mode in sleep spin; do
		r=$(measure "$mode" 64 0)
		echo "100% $mode $round: $r"
		[ -z "$peak" ] && peak=${r%% *}
	done
done
# Paced loads: batches of 8 (10%) or 1 (1%) frames at the interval that
# gives that share of the first unpaced rate.
for load in ${LOADS:-100 10 1}; do
	[ "$load" = 100 ] && continue
	if [ "$load" = 10 ]; then b=8; else b=1; fi
	us=$(python3 -c "print(max(1, round($b / ($peak * $load / 100.0) * 1e6)))")
	for round in $(seq "$rounds"); do
		for mode in sleep spin; do
			echo "$load% $mode $round: $(measure "$mode" "$b" "${us}us")"
		done
	done
done
