//! The gateway NF live (configs/gateway.toml): `hpio-nf testbed up gateway`
//! builds a LAN namespace (`hpnf-lan`, 192.168.1.2, 2001:db8:1::2) and a
//! WAN one (`hpnf-wan`: the next hop 203.0.113.1 and a server,
//! 198.51.100.10 and 2001:db8:100::10, behind it), `hpio-nf run` routes
//! between them, and the namespaces' own stacks talk through it: ping and
//! ping6, a 10 MiB TCP transfer checked by SHA-256, UDP request and reply,
//! traceroute and traceroute6 showing the router, the NAT's source address
//! seen by the server, unsolicited inbound IPv4 and IPv6 dropped and
//! counted, the static port forward, also reached from the LAN by the
//! public address (hairpinning), and TCP and UDP to the router's own
//! addresses refused (reset, port unreachable).
//!
//! Needs root, `ip`, `ping`, `traceroute` and `python3` (scripts/install-deps);
//! without them the test prints a `SKIPPED:` line, or fails under
//! `HPIO_NF_REQUIRE_ALL=1`. Run it under `flock /tmp/hpnf-net.lock`: the
//! testbed's names are global to the machine.

mod common;

use std::thread;
use std::time::Duration;

use common::live::{self, Live};
use common::{counter, drop_count, element};
use hpio_nf_gateway::addr;
use serde_json::Value;
use testkit::Need;

const LAN: &str = "hpnf-lan";
const WAN: &str = "hpnf-wan";

impl Live {
    /// The hops `traceroute` (UDP probes, one per hop) shows from the LAN.
    fn traceroute(&self, dst: &str) -> Vec<String> {
        let v = if dst.contains(':') { "-6" } else { "-4" };
        let out = self.run(
            LAN,
            &["traceroute", v, "-n", "-q", "1", "-w", "1", "-m", "4", dst],
        );
        out.lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect()
    }
}

#[test]
fn gateway_routes_nats_filters_and_forwards() {
    let more = [Need::Command("traceroute"), Need::Command("python3")];
    let Some(_lock) = live::setup("gateway_routes_nats_filters_and_forwards", &more) else {
        return;
    };
    let mut g = Live::start("gateway", hpio_nf_gateway::CONFIG, &[]);

    // ping and ping6 through the router, and to its own addresses.
    g.ping(LAN, addr::SERVER_V4, 3);
    g.ping(LAN, addr::SERVER_V6, 3);
    for own in [addr::LAN_V4, addr::LAN_V6, addr::WAN_V4] {
        g.ping(LAN, own, 3);
    }

    // 10 MiB of TCP to the server, intact; the server sees the NAT's
    // address.
    let seen = g.tcp_transfer(WAN, LAN, addr::SERVER_V4, 9000, 10 << 20);
    assert_eq!(seen, addr::WAN_V4, "the server saw the LAN's address");

    // UDP request and reply.
    let echo = g.py_background(WAN, &["udp-echo", "9001"]);
    thread::sleep(Duration::from_millis(200));
    let answer = g.py(LAN, &["udp-ask", addr::SERVER_V4, "9001"]);
    g.wait_helper(echo);
    assert_eq!(answer, format!("echo hello from {}", addr::WAN_V4));

    // The router's own addresses refuse what they do not serve, as a
    // host does: TCP with a reset, UDP with port unreachable (IcmpError's
    // input 3), on the LAN and on the WAN (IPv6; IPv4 to 203.0.113.2 is
    // the NAT's).
    for (side, own) in [
        (LAN, addr::LAN_V4),
        (LAN, addr::LAN_V6),
        (WAN, addr::WAN_V6),
    ] {
        assert_eq!(
            g.py(side, &["probe", own, "22", "3"]),
            "refused",
            "TCP to {own}"
        );
        assert_eq!(
            g.py(side, &["udp-probe", own, "33434", "3"]),
            "refused",
            "UDP to {own}"
        );
    }

    // traceroute: the router is the first hop, the server the second.
    let want = |first: &str, last: &str| vec![first.to_string(), last.to_string()];
    assert_eq!(
        g.traceroute(addr::SERVER_V4),
        want(addr::LAN_V4, addr::SERVER_V4)
    );
    assert_eq!(
        g.traceroute(addr::SERVER_V6),
        want(addr::LAN_V6, addr::SERVER_V6)
    );

    // Unsolicited inbound: UDP to the NAT's address (IPv4) and straight to
    // the LAN host (IPv6) never arrives, and is counted.
    let r0 = g.next_report();
    let recv = g.py_background(LAN, &["udp-recv", "5555", "1.5"]);
    thread::sleep(Duration::from_millis(300));
    g.py(WAN, &["udp-send", addr::WAN_V4, "5555", "10"]);
    g.py(WAN, &["udp-send", addr::LAN_HOST_V6, "5555", "10"]);
    let got = g.wait_helper(recv);
    assert_eq!(got.lines().last(), Some("0"), "unsolicited UDP got through");
    let r1 = g.next_report();
    let no_mapping = |r: &Value| drop_count(element(r, "nat"), "no-mapping");
    assert!(
        no_mapping(&r1) - no_mapping(&r0) >= 10,
        "Nat44 no-mapping: {} then {}",
        no_mapping(&r0),
        no_mapping(&r1)
    );
    let denied = |r: &Value| counter(r, "fw", "unsolicited inbound");
    assert!(denied(&r1) - denied(&r0) >= 10, "firewall: {r1}");

    // The port forward: the server reaches the LAN's service through the
    // WAN address, and the LAN host sees the server's own address.
    let port = addr::FORWARD_PORT;
    let seen = g.tcp_transfer(LAN, WAN, addr::WAN_V4, port, 1 << 20);
    assert_eq!(seen, addr::NEXT_HOP_V4);

    // Hairpinning (NAT loopback): a LAN client reaches the forwarded
    // service by the public address. The testbed's LAN has one host, so
    // the client and the service share its namespace; the service sees
    // the NAT's address, as it would see an outside client's.
    let hairpinned = |r: &Value| counter(r, "nat", "hairpinned");
    let r0 = g.next_report();
    let seen = g.tcp_transfer(LAN, LAN, addr::WAN_V4, port, 1 << 20);
    assert_eq!(
        seen,
        addr::WAN_V4,
        "the service saw the client's own address"
    );
    let r1 = g.next_report();
    assert!(
        hairpinned(&r1) - hairpinned(&r0) >= (1 << 20) / 1514,
        "Nat44 hairpinned: {} then {}",
        hairpinned(&r0),
        hairpinned(&r1)
    );

    let last = g.stop();
    assert!(
        counter(&last, "ttl4_lan", "expired") >= 1,
        "traceroute's TTL 1"
    );
    assert!(counter(&last, "ttl6_lan", "expired") >= 1);
    assert!(
        counter(&last, "nat", "icmp-errors") >= 1,
        "port unreachable"
    );
    // The uplink's meter saw the upload: every packet is metered green,
    // yellow or red (a fast transfer exceeds 1 Gbit/s beyond the committed
    // burst: yellow, then red, dropped; TCP recovers).
    let metered: u64 = ["green", "yellow", "red"]
        .iter()
        .map(|c| counter(&last, "pol", c))
        .sum();
    assert!(metered > (10 << 20) / 1514, "pol metered {metered}: {last}");
}
