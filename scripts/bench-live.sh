#!/usr/bin/env bash
# Forwarded Mpps over veth in one run: `hpio-nf pktgen` in namespace hpnf-h1
# sends 64-byte UDP frames to hpnf-h2, where `hpio-nf pktgen --rx` counts
# what arrives, through (1) configs/bridge.toml, (2) configs/firewall.toml
# (its ports moved to the bridge testbed's interfaces), (3) the Linux
# bridge on the same veth pairs. Needs root. DURATION defaults to 10s.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-10}
cargo build --release -q -p hpio-nf-cli
bin=$PWD/target/release/hpio-nf
nf_pid=
cleanup() {
	[ -n "$nf_pid" ] && kill "$nf_pid" 2>/dev/null || true
	ip link del hpnf-kbr 2>/dev/null || true
	"$bin" testbed down bridge >/dev/null || true
}
trap cleanup EXIT
"$bin" testbed down bridge >/dev/null
"$bin" testbed up bridge >/dev/null
dmac=$(ip netns exec hpnf-h2 cat /sys/class/net/eth0/address)

# Prints the received Mpps of one measurement.
measure() {
	ip netns exec hpnf-h2 "$bin" pktgen -i eth0 --driver af_packet --rx --cores 1 \
		--filter "udp and dst port 9" --duration $((dur + 2))s --json >/tmp/hpnf-rx.json 2>/dev/null &
	local rx=$!
	sleep 1
	ip netns exec hpnf-h1 "$bin" pktgen -i eth0 --driver af_packet --cores 0 -D "$dmac" \
		-d 10.0.0.2 -s 10.0.0.1 -l 60 --duration ${dur}s >/dev/null 2>&1
	wait $rx
	python3 -c 'import json,sys
r=json.loads(open("/tmp/hpnf-rx.json").read().splitlines()[-1])
print("%.3f" % (r["packets"] / float(sys.argv[1]) / 1e6))' "$dur"
}

run_nf() {
	RUST_LOG=warn "$bin" run "$@" >/dev/null 2>&1 &
	nf_pid=$!
	sleep 1
}
stop_nf() { kill "$nf_pid"; wait "$nf_pid" || true; nf_pid=; }

run_nf configs/bridge.toml --set elements.br.table_file=/tmp/hpnf-bench.fdb
bridge=$(measure); stop_nf
run_nf configs/firewall.toml --set ports.inside.interface=hpnf-br0 \
	--set ports.outside.interface=hpnf-br1
firewall=$(measure); stop_nf
ip link add hpnf-kbr type bridge
ip link set hpnf-br0 master hpnf-kbr
ip link set hpnf-br1 master hpnf-kbr
ip link set hpnf-kbr up
kernel=$(measure)

echo "hpio-nf Bridge (AF_PACKET): $bridge Mpps"
echo "hpio-nf Firewall (AF_PACKET): $firewall Mpps"
echo "Linux bridge: $kernel Mpps"
python3 -c "print('ratio bridge/linux %.2f, firewall/linux %.2f' % ($bridge/$kernel, $firewall/$kernel))"
