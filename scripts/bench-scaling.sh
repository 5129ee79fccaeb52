#!/usr/bin/env bash
# Two workers against one, with each core's own speed taken out: per round,
# `hpio-nf bench` with one worker on core 0, one worker on core 1, then two
# workers (cores 0 and 1), each the best of RUNS runs of COUNT packets. The
# round's ratio is the two workers' total over the sum of the two
# one-worker rates: 1.0 when two workers together do what each core does
# alone, whatever the cores' speeds (on a shared host one vCPU is often
# slower than the other for a while, which a ratio to core 0 alone would
# count against the engine). Also printed: the plain ratio to core 0 alone
# times two, and the same two rates per CPU second.
#
# The control row: two separate one-worker processes at once, one on each
# core, each with half the packets. They share nothing but the machine, so
# what they lose against the cores alone is the machine's (shared caches,
# memory, the host), not the engine's; two workers that lose no more than
# that lose nothing to each other.
#
#   scripts/bench-scaling.sh [SCENARIO ...]      (default: discard classify firewall rewrite)
#   ROUNDS (default 7), COUNT (default 20000000), RUNS (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-7}
count=${COUNT:-20000000}
runs=${RUNS:-3}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(discard classify firewall rewrite)
[ "$(nproc)" -ge 2 ] || { echo "bench-scaling: needs 2 cores, this machine has $(nproc)" >&2; exit 1; }
cargo build --release -q -p hpio-nf-cli
bin=$PWD/target/release/hpio-nf
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
	"$bin" bench "${scenarios[@]}" --count "$count" --runs "$runs" --core 0 --json 2>/dev/null >"$out/$r.c0"
	"$bin" bench "${scenarios[@]}" --count "$count" --runs "$runs" --core 1 --json 2>/dev/null >"$out/$r.c1"
	"$bin" bench "${scenarios[@]}" --count "$count" --runs "$runs" --workers 2 --json 2>/dev/null >"$out/$r.w2"
	"$bin" bench "${scenarios[@]}" --count $((count / 2)) --runs "$runs" --core 0 --json 2>/dev/null >"$out/$r.p0" &
	"$bin" bench "${scenarios[@]}" --count $((count / 2)) --runs "$runs" --core 1 --json 2>/dev/null >"$out/$r.p1"
	wait
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(r, k):
    return {s["scenario"]: s for s in json.load(open(f"{out}/{r}.{k}"))}
def cpu(s):
    return sum(w["mpps_cpu"] for w in s["workers"])
rows = {}
for r in range(1, rounds + 1):
    c0, c1, w2 = load(r, "c0"), load(r, "c1"), load(r, "w2")
    p0, p1 = load(r, "p0"), load(r, "p1")
    for name in c0:
        a, b, t = c0[name], c1[name], w2[name]
        # Two processes: both halves done when the slower one is.
        p = 2 * min(p0[name]["mpps"], p1[name]["mpps"])
        rows.setdefault(name, []).append((
            a["mpps"], b["mpps"], t["mpps"],
            t["mpps"] / (a["mpps"] + b["mpps"]), t["mpps"] / a["mpps"] / 2,
            cpu(t) / (cpu(a) + cpu(b)),
            p / (a["mpps"] + b["mpps"]),
            (cpu(p0[name]) + cpu(p1[name])) / (cpu(a) + cpu(b))))
print("| scenario | core 0 alone, Mpps | core 1 alone | 2 workers | 2w / (c0 + c1), median (range) | 2w / 2c0, median | per CPU second, median | control: 2 processes / (c0 + c1), wall / per CPU second |")
print("|---|---|---|---|---|---|---|---|")
for name, rs in rows.items():
    med = lambda i: statistics.median(x[i] for x in rs)
    lo = min(x[3] for x in rs); hi = max(x[3] for x in rs)
    print(f"| {name} | {med(0):.1f} | {med(1):.1f} | {med(2):.1f} | **{med(3):.2f}** ({lo:.2f}-{hi:.2f}) | {med(4):.2f} | {med(5):.2f} | {med(6):.2f} / {med(7):.2f} |")
PY
