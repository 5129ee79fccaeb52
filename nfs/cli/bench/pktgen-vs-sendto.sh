#!/usr/bin/env bash
# pktgen's transmit rate on one core over AF_PACKET into a veth pair, side by
# side with a plain loop of one sendto(2) per frame (sendto_loop.c) on the
# same core, the same interface and the same 60-byte frames, each with and
# without PACKET_QDISC_BYPASS. Each method runs ROUNDS times, alternating;
# the best round of each is reported: the wall-clock rate and the CPU time
# per frame (user + system time of the sender over the frames it sent).
#
# The frames go to 02:00:00:00:00:02, a MAC the peer does not have, so the
# peer's stack drops them at IP entry: a veth runs its peer's receive path
# on the sending core, and this keeps that part small and equal for all.
#
#   nfs/cli/bench/pktgen-vs-sendto.sh [SECONDS=5] [CORE=0] [ROUNDS=3]
#
# HPIO_NF=path/to/hpio-nf uses that binary instead of building target/release/hpio-nf.
#
# Needs root, `ip`, `taskset`, a C compiler and cargo. Prints a Markdown table.
set -euo pipefail
secs=${1:-5}
core=${2:-0}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)

bin=${HPIO_NF:-}
if [ -z "$bin" ]; then
	cargo build --release -q -p hpio-nf-cli --manifest-path "$top/Cargo.toml"
	bin=$top/target/release/hpio-nf
fi
tmp=$(mktemp -d)
a=hpnfbn$$a
b=hpnfbn$$b
cleanup() {
	ip link del "$a" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
cc -O2 -o "$tmp/sendto_loop" "$here/sendto_loop.c"

ip link add "$a" type veth peer name "$b"
for end in "$a" "$b"; do
	echo 1 >"/proc/sys/net/ipv6/conf/$end/disable_ipv6"
	ip link set "$end" up
done
sleep 1

# run NAME COMMAND...: runs one round; prints "frames wall_seconds cpu_seconds".
# CPU time is the command's user + system time, which includes the veth's
# receive work done in the sender's context; it is what a busy machine
# cannot steal, so the CPU cost per frame is steadier than the wall rate.
run() {
	local name=$1
	shift
	local frames
	TIMEFORMAT='%R %U %S'
	{ time "$@" >"$tmp/out" 2>/dev/null; } 2>"$tmp/time"
	case $name in
	pktgen) frames=$(grep '"event":"summary"' "$tmp/out" | sed 's/.*"packets":\([0-9]*\).*/\1/') ;;
	*) frames=$(sed 's/sendto: \([0-9]*\) sent.*/\1/' "$tmp/out") ;;
	esac
	read -r real user sys <"$tmp/time"
	echo "$frames $real $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')"
}

declare -A best_ns best_pps
methods=(pktgen pktgen_qdisc sendto sendto_bypass)
for m in "${methods[@]}"; do best_ns[$m]=1e99; best_pps[$m]=0; done
for r in $(seq "$rounds"); do
	for m in "${methods[@]}"; do
		case $m in
		pktgen) res=$(run pktgen "$bin" pktgen -i "$a" --cores "$core" \
			-D 02:00:00:00:00:02 --duration "${secs}s" --json) ;;
		pktgen_qdisc) res=$(run pktgen "$bin" pktgen -i "$a" --cores "$core" \
			-D 02:00:00:00:00:02 --duration "${secs}s" --json --param qdisc_bypass=false) ;;
		sendto) res=$(run sendto taskset -c "$core" "$tmp/sendto_loop" "$a" "$secs") ;;
		sendto_bypass) res=$(run sendto taskset -c "$core" "$tmp/sendto_loop" "$a" "$secs" -q) ;;
		esac
		read -r n real cpu <<<"$res"
		ns=$(awk -v n="$n" -v c="$cpu" 'BEGIN { printf "%.1f", c * 1e9 / n }')
		pps=$(awk -v n="$n" -v r="$real" 'BEGIN { printf "%.0f", n / r }')
		echo "round $r $m: $n frames in $real s wall, $cpu s CPU: $pps pps, $ns ns CPU per frame" >&2
		if awk -v x="$ns" -v y="${best_ns[$m]}" 'BEGIN { exit !(x < y) }'; then
			best_ns[$m]=$ns
		fi
		if awk -v x="$pps" -v y="${best_pps[$m]}" 'BEGIN { exit !(x > y) }'; then
			best_pps[$m]=$pps
		fi
	done
done

base=${best_ns[sendto]}
echo "| method (one core, 60-byte frames, AF_PACKET into a veth) | best wall rate (Mpps) | best CPU per frame (ns) | frames per CPU-second vs sendto loop |"
echo "|---|---:|---:|---:|"
for m in "${methods[@]}"; do
	case $m in
	pktgen) label='`hpio-nf pktgen` (sendmmsg of 64 frames, qdisc bypass: the default)' ;;
	pktgen_qdisc) label='`hpio-nf pktgen --param qdisc_bypass=false`' ;;
	sendto) label='sendto loop, one frame per call' ;;
	sendto_bypass) label='sendto loop, one frame per call, PACKET_QDISC_BYPASS' ;;
	esac
	awk -v l="$label" -v p="${best_pps[$m]}" -v n="${best_ns[$m]}" -v b="$base" \
		'BEGIN { printf "| %s | %.3f | %.0f | %.2fx |\n", l, p / 1e6, n, b / n }'
done
