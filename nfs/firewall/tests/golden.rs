//! Golden tests: the Firewall in a real graph over pcap ports, run by the
//! framework's runtime with the packet clock, its outputs compared packet by
//! packet with frames built here with etherparse.
//!
//! Both sides come from one time-ordered trace, so the run is deterministic
//! and timeouts follow the trace's timestamps: inside frames are tagged VLAN
//! 1 and outside frames VLAN 2 in the trace; a Classify splits them by tag
//! and a Rewrite pops the tag, so the firewall sees the frames exactly as
//! built. (Two pcap inputs would be read burst by burst, one port after the
//! other, which does not keep the two sides in time order.) The burst is 1
//! so that every packet is processed at its own timestamp.
//!
//! ```text
//! trace -> side[0] -> untag_in  -> [0]fw[0] -> wan   (inside -> outside)
//!          side[1] -> untag_out -> [1]fw[1] -> lan   (outside -> inside)
//! ```
//!
//! Each event of a trace says which rule's counter it must hit and whether
//! it must come out; the expected output files and counters are computed
//! from that.

use std::collections::BTreeMap;
use std::path::Path;

use hpio_nf::config::{Clock, Config};
use hpio_nf::element::Registry;
use hpio_nf::port::PortRegistry;
use hpio_nf::runtime::Report;
use testkit::frame::{fragments, tag, tcp_flags, Frame, Ip, ARP_REQUEST, TCP_SYN};
use testkit::pcap;

const IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const OUT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x03];
/// The inside host and the outside host of the testbed (one subnet, bridged).
const INSIDE: [u8; 4] = [10, 0, 1, 2];
const OUTSIDE: [u8; 4] = [10, 0, 1, 3];
/// Another outside host.
const OUTSIDE2: [u8; 4] = [10, 0, 1, 5];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Inside,
    Outside,
}
use Side::*;

/// One packet of a trace and what the firewall must do with it.
struct Ev {
    /// Milliseconds since the start of the trace.
    at_ms: u64,
    from: Side,
    frame: Vec<u8>,
    /// The rule counter it must hit (`None`: no rule, e.g. non-IP frames).
    rule: Option<&'static str>,
    /// Whether it must come out on the other side.
    pass: bool,
}

fn ev(at_ms: u64, from: Side, frame: Vec<u8>, rule: &'static str, pass: bool) -> Ev {
    Ev {
        at_ms,
        from,
        frame,
        rule: Some(rule),
        pass,
    }
}

fn macs(from: Side) -> ([u8; 6], [u8; 6]) {
    match from {
        Inside => (IN_MAC, OUT_MAC),
        Outside => (OUT_MAC, IN_MAC),
    }
}

/// A TCP segment; `flags` among syn, ack, fin, rst, comma-separated.
fn tcp(from: Side, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: &str) -> Vec<u8> {
    let (sm, dm) = macs(from);
    Frame::tcp(Ip::v4(src, dst), sport, dport, tcp_flags(flags))
        .macs(sm, dm)
        .seq(1000, 2000, 64240)
        .payload(if flags.contains("syn") { b"" } else { b"data" })
        .build()
}

fn udp(from: Side, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let (sm, dm) = macs(from);
    Frame::udp(Ip::v4(src, dst), sport, dport)
        .macs(sm, dm)
        .payload(b"datagram")
        .build()
}

fn echo(from: Side, src: [u8; 4], dst: [u8; 4], request: bool, id: u16) -> Vec<u8> {
    let (sm, dm) = macs(from);
    Frame::echo(Ip::v4(src, dst), id, 1)
        .reply(!request)
        .macs(sm, dm)
        .payload(b"ping")
        .build()
}

fn gre(from: Side, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let (sm, dm) = macs(from);
    Frame::raw(Ip::v4(src, dst), 47)
        .macs(sm, dm)
        .payload(&[0, 0, 0x08, 0])
        .build()
}

/// An ARP request from `from`'s host for the other host.
fn arp(from: Side) -> Vec<u8> {
    let (sm, _) = macs(from);
    let (sip, tip) = match from {
        Inside => (INSIDE, OUTSIDE),
        Outside => (OUTSIDE, INSIDE),
    };
    Frame::arp(ARP_REQUEST, (sm, sip), ([0; 6], tip))
        .pad(60)
        .build()
}

/// The firewall's `[elements.fw]` table of the shipped configs/firewall.toml.
fn shipped_fw() -> String {
    let path = testkit::workspace_root().join("configs/firewall.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find("[elements.fw]")
        .expect("configs/firewall.toml has [elements.fw]");
    let body = &text[start..];
    // Up to the next table header, if any.
    let end = body[1..]
        .lines()
        .scan(1, |off, l| {
            let at = *off;
            *off += l.len() + 1;
            Some((at, l))
        })
        .find(|(_, l)| l.starts_with('['))
        .map_or(body.len(), |(at, _)| at);
    body[..end].to_string()
}

struct Outcome {
    wan: Vec<Vec<u8>>,
    lan: Vec<Vec<u8>>,
    report: Report,
}

/// The trace start: every event's time counts from here.
const T0_NS: u64 = 1_700_000_000 * 1_000_000_000;

fn write_pcap(path: &Path, events: &[Ev]) {
    let mut last = 0;
    let mut frames = Vec::new();
    for e in events {
        assert!(e.at_ms >= last, "events are in time order");
        last = e.at_ms;
        let frame = tag(&e.frame, 0x8100, if e.from == Inside { 1 } else { 2 });
        frames.push(pcap::Frame::new(T0_NS + e.at_ms * 1_000_000, frame));
    }
    pcap::write(path, &frames);
}

/// Runs the firewall table `fw` (an `[elements.fw]` TOML table) over `events`.
fn run(fw: &str, events: &[Ev]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let (trace, wan, lan) = (
        dir.path().join("trace.pcap"),
        dir.path().join("wan.pcap"),
        dir.path().join("lan.pcap"),
    );
    write_pcap(&trace, events);
    let text = format!(
        r#"
connections = [
  "trace -> side",
  "side[0] -> untag_in -> [0]fw[0] -> wan",
  "side[1] -> untag_out -> [1]fw[1] -> lan",
]

[runtime]
clock = "packet"
burst = 1

[ports.trace]
driver = "pcap"
input = '{}'

[ports.wan]
driver = "pcap"
output = '{}'

[ports.lan]
driver = "pcap"
output = '{}'

[elements.side]
class = "Classify"
rules = ["vlan 1 -> 0", "vlan 2 -> 1"]

[elements.untag_in]
class = "Rewrite"
vlan_pop = true

[elements.untag_out]
class = "Rewrite"
vlan_pop = true

{fw}
"#,
        trace.display(),
        wan.display(),
        lan.display()
    );
    let mut registry = Registry::builtin();
    hpio_nf_firewall::register(&mut registry);
    let config = Config::parse_str(
        &text,
        "golden.toml",
        &registry,
        &PortRegistry::builtin(),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.runtime.clock, Clock::Packet);
    let report = config.run_to_end().unwrap_or_else(|e| panic!("{e}"));
    Outcome {
        wan: pcap::read_data(&wan),
        lan: pcap::read_data(&lan),
        report,
    }
}

/// Checks the outputs and the firewall's counters against `events`, and
/// returns the firewall's counters (rule hits, flows, drops by reason).
fn check(out: &Outcome, events: &[Ev]) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let expect = |side: Side| -> Vec<Vec<u8>> {
        events
            .iter()
            .filter(|e| e.from == side && e.pass)
            .map(|e| e.frame.clone())
            .collect()
    };
    assert_eq!(out.wan, expect(Inside), "frames sent to the outside");
    assert_eq!(out.lan, expect(Outside), "frames sent to the inside");
    let fw = out
        .report
        .elements
        .iter()
        .find(|e| e.name == "fw")
        .expect("fw in the report");
    assert_eq!(fw.counters.packets_in, events.len() as u64);
    let custom: BTreeMap<String, u64> = fw.counters.custom.iter().cloned().collect();
    let drops: BTreeMap<String, u64> = fw.counters.drops.iter().cloned().collect();
    let mut hits: BTreeMap<String, u64> = custom
        .keys()
        .filter(|k| !k.starts_with("flows") && !k.starts_with("fragments"))
        .map(|k| (k.clone(), 0))
        .collect();
    for e in events {
        if let Some(r) = e.rule {
            *hits
                .get_mut(r)
                .unwrap_or_else(|| panic!("no rule counter {r:?}")) += 1;
        }
    }
    for (rule, n) in &hits {
        assert_eq!(custom[rule], *n, "hits of rule {rule:?}");
    }
    (custom, drops)
}

/// An event without a rule: a non-IP frame under `non_ip = "allow"` or `"deny"`.
fn l2(at_ms: u64, from: Side, frame: Vec<u8>, pass: bool) -> Ev {
    Ev {
        at_ms,
        from,
        frame,
        rule: None,
        pass,
    }
}

#[test]
fn shipped_policy_lets_out_and_replies_in_only() {
    let (i, o, o2) = (INSIDE, OUTSIDE, OUTSIDE2);
    #[rustfmt::skip]
    let events = vec![
        // ARP crosses both ways (non_ip = "allow": no rule involved).
        l2(0, Inside, arp(Inside), true),
        l2(1, Outside, arp(Outside), true),
        // An inside TCP connection: handshake, data both ways.
        ev(10, Inside, tcp(Inside, i, 40000, o, 80, "syn"), "inside tcp", true),
        // A retransmitted SYN: its flow has seen no reply yet, so it is `new`.
        ev(11, Inside, tcp(Inside, i, 40000, o, 80, "syn"), "inside tcp", true),
        ev(12, Outside, tcp(Outside, o, 80, i, 40000, "syn,ack"), "established", true),
        ev(13, Inside, tcp(Inside, i, 40000, o, 80, "ack"), "established", true),
        ev(14, Outside, tcp(Outside, o, 80, i, 40000, "ack"), "established", true),
        // Unsolicited from the outside: a SYN to SSH, a SYN-ACK and an ACK of no
        // connection, a SYN to the service port of another host.
        ev(20, Outside, tcp(Outside, o, 5555, i, 22, "syn"), "outside default deny", false),
        ev(21, Outside, tcp(Outside, o, 81, i, 40000, "syn,ack"), "outside default deny", false),
        ev(22, Outside, tcp(Outside, o, 80, i, 40001, "ack"), "outside default deny", false),
        ev(23, Outside, tcp(Outside, o, 5555, [10, 0, 1, 9], 8080, "syn"), "outside default deny", false),
        // The allowed service: the outside connects to 10.0.1.2:8080.
        ev(30, Outside, tcp(Outside, o2, 3333, i, 8080, "syn"), "outside to service", true),
        ev(31, Inside, tcp(Inside, i, 8080, o2, 3333, "syn,ack"), "established", true),
        ev(32, Outside, tcp(Outside, o2, 3333, i, 8080, "ack"), "established", true),
        // UDP out and its answer; an unsolicited datagram in.
        ev(40, Inside, udp(Inside, i, 5353, o, 53), "inside udp", true),
        ev(41, Outside, udp(Outside, o, 53, i, 5353), "established", true),
        ev(42, Outside, udp(Outside, o, 53, i, 5354), "outside default deny", false),
        // Ping out and its reply; a ping in on the same identifier; a reply to no ping.
        ev(50, Inside, echo(Inside, i, o, true, 7), "inside ping", true),
        ev(51, Outside, echo(Outside, o, i, false, 7), "established", true),
        ev(52, Outside, echo(Outside, o, i, true, 7), "outside default deny", false),
        ev(53, Outside, echo(Outside, o, i, false, 8), "outside default deny", false),
        // Neither TCP, UDP nor ping: denied on each side's own rule.
        ev(60, Inside, gre(Inside, i, o), "inside default deny", false),
        ev(61, Outside, gre(Outside, o, i), "outside default deny", false),
    ];
    let out = run(&shipped_fw(), &events);
    let (custom, drops) = check(&out, &events);
    assert_eq!(custom["flows created"], 4, "tcp, service, udp, ping");
    assert_eq!(custom["flows"], 4);
    assert_eq!(drops["denied"], 9);
    assert!(!drops.contains_key("no-rule"));
}

#[test]
fn rule_order_decides_first_match() {
    let config = |first: &str, second: &str| {
        format!(
            r#"[elements.fw]
class = "Firewall"
non_ip = "deny"
rules = [
  {first},
  {second},
  {{ from = "any", match = "any", action = "deny", name = "rest" }},
]"#
        )
    };
    let block = r#"{ from = "outside", match = "tcp and src host 10.0.1.3", action = "deny", name = "block .3" }"#;
    let service = r#"{ from = "outside", match = "tcp and dst port 8080", action = "allow", name = "service" }"#;
    let (i, o, o2) = (INSIDE, OUTSIDE, OUTSIDE2);
    for block_first in [true, false] {
        let first_hit = if block_first { "block .3" } else { "service" };
        #[rustfmt::skip]
        let events = vec![
            // From .3 to the service: whichever rule comes first.
            ev(0, Outside, tcp(Outside, o, 1000, i, 8080, "syn"), first_hit, !block_first),
            ev(1, Outside, tcp(Outside, o2, 1000, i, 8080, "syn"), "service", true),
            // Not the service port: `block .3` either way.
            ev(2, Outside, tcp(Outside, o, 1000, i, 22, "syn"), "block .3", false),
            // No rule here allows replies: the flow exists, but the rules decide.
            ev(3, Inside, tcp(Inside, i, 8080, o2, 1000, "syn,ack"), "rest", false),
            l2(4, Inside, arp(Inside), false),
        ];
        let fw = if block_first {
            config(block, service)
        } else {
            config(service, block)
        };
        let out = run(&fw, &events);
        let (_, drops) = check(&out, &events);
        assert_eq!(drops["non-ip"], 1);
    }
}

/// A policy like the shipped one with short timeouts, for the timeout and close tests.
fn short_timeouts() -> String {
    r#"[elements.fw]
class = "Firewall"
rules = [
  { from = "any", match = "any", state = "established", action = "allow", name = "established" },
  { from = "inside", match = "tcp", state = "new", action = "allow", name = "inside tcp" },
  { from = "inside", match = "udp", state = "new", action = "allow", name = "inside udp" },
  { from = "inside", match = "icmp and icmp type echo-request", state = "new", action = "allow", name = "inside ping" },
  { from = "any", match = "any", action = "deny", name = "deny" },
]
max_flows = 16
timeouts = { tcp_syn = "3s", tcp_established = "60s", tcp_fin = "5s", tcp_time_wait = "4s", tcp_close = "2s", udp = "10s", udp_stream = "30s", icmp = "5s" }
"#
    .to_string()
}

#[test]
fn flows_expire_after_their_timeouts() {
    let (i, o) = (INSIDE, OUTSIDE);
    #[rustfmt::skip]
    let events = vec![
        // UDP, unanswered: the answer must come within `udp` (10 s).
        ev(0, Inside, udp(Inside, i, 6000, o, 53), "inside udp", true),
        ev(9_999, Outside, udp(Outside, o, 53, i, 6000), "established", true),
        // Answered, it is a stream: `udp_stream` (30 s) from the last packet.
        ev(39_998, Outside, udp(Outside, o, 53, i, 6000), "established", true),
        ev(69_998, Outside, udp(Outside, o, 53, i, 6000), "deny", false),
        // Another datagram, answered exactly at its timeout: too late.
        ev(70_000, Inside, udp(Inside, i, 6001, o, 53), "inside udp", true),
        ev(80_000, Outside, udp(Outside, o, 53, i, 6001), "deny", false),
        // Ping: a reply within `icmp` (5 s), then one too late.
        ev(90_000, Inside, echo(Inside, i, o, true, 1), "inside ping", true),
        ev(94_000, Outside, echo(Outside, o, i, false, 1), "established", true),
        ev(99_500, Outside, echo(Outside, o, i, false, 1), "deny", false),
        // TCP: a SYN-ACK later than `tcp_syn` (3 s) finds no connection.
        ev(100_000, Inside, tcp(Inside, i, 41000, o, 80, "syn"), "inside tcp", true),
        ev(103_500, Outside, tcp(Outside, o, 80, i, 41000, "syn,ack"), "deny", false),
        // An established connection idle past `tcp_established` (60 s).
        ev(110_000, Inside, tcp(Inside, i, 42000, o, 80, "syn"), "inside tcp", true),
        ev(110_001, Outside, tcp(Outside, o, 80, i, 42000, "syn,ack"), "established", true),
        ev(110_002, Inside, tcp(Inside, i, 42000, o, 80, "ack"), "established", true),
        ev(170_001, Outside, tcp(Outside, o, 80, i, 42000, "ack"), "established", true),
        ev(230_002, Outside, tcp(Outside, o, 80, i, 42000, "ack"), "deny", false),
        // The inside's own mid-stream segment is not `new` either.
        ev(230_003, Inside, tcp(Inside, i, 42000, o, 80, "ack"), "deny", false),
    ];
    let out = run(&short_timeouts(), &events);
    let (custom, _) = check(&out, &events);
    assert_eq!(custom["flows created"], 5);
    assert_eq!(custom["flows"], 0, "every flow expired and was removed");
    assert_eq!(custom["flows expired"], 5);
}

#[test]
fn tcp_close_and_reset_handling() {
    let i = |flags| tcp(Inside, INSIDE, 43000, OUTSIDE, 443, flags);
    let o = |flags| tcp(Outside, OUTSIDE, 443, INSIDE, 43000, flags);
    let ri = |flags| tcp(Inside, INSIDE, 44000, OUTSIDE, 443, flags);
    let ro = |flags| tcp(Outside, OUTSIDE, 443, INSIDE, 44000, flags);
    #[rustfmt::skip]
    let events = vec![
        // A connection closed by FINs.
        ev(0, Inside, i("syn"), "inside tcp", true),
        ev(1, Outside, o("syn,ack"), "established", true),
        ev(2, Inside, i("ack"), "established", true),
        // FIN_WAIT lasts `tcp_fin` (5 s): the other side's FIN comes in time.
        ev(3, Inside, i("fin,ack"), "established", true),
        ev(4_000, Outside, o("fin,ack"), "established", true),
        // The last ACK: TIME_WAIT, `tcp_time_wait` (4 s) from the last packet.
        ev(4_001, Inside, i("ack"), "established", true),
        ev(7_000, Outside, o("fin,ack"), "established", true),
        ev(11_002, Outside, o("fin,ack"), "deny", false),
        // The ports are free again: a new connection on them.
        ev(12_000, Inside, i("syn"), "inside tcp", true),
        ev(12_001, Outside, o("syn,ack"), "established", true),
        ev(12_002, Inside, i("ack"), "established", true),
        ev(12_003, Inside, i("fin,ack"), "established", true),
        ev(12_004, Outside, o("fin,ack"), "established", true),
        ev(12_005, Inside, i("ack"), "established", true),
        // A SYN in TIME_WAIT opens a new connection at once (a `new` packet).
        ev(12_006, Inside, i("syn"), "inside tcp", true),
        ev(12_007, Outside, o("syn,ack"), "established", true),
        // A reset: CLOSE lasts `tcp_close` (2 s), not `tcp_established` (60 s).
        ev(20_000, Inside, ri("syn"), "inside tcp", true),
        ev(20_001, Outside, ro("syn,ack"), "established", true),
        ev(20_002, Inside, ri("ack"), "established", true),
        ev(20_003, Outside, ro("rst"), "established", true),
        ev(21_000, Inside, ri("ack"), "established", true),
        ev(23_001, Outside, ro("ack"), "deny", false),
    ];
    let out = run(&short_timeouts(), &events);
    let (custom, _) = check(&out, &events);
    assert_eq!(
        custom["flows created"], 4,
        "two opens, one reopen in TIME_WAIT, the reset one"
    );
}

#[test]
fn full_table_is_counted_and_refuses_new_flows() {
    let fw = short_timeouts().replace("max_flows = 16", "max_flows = 2");
    let (i, o) = (INSIDE, OUTSIDE);
    #[rustfmt::skip]
    let events = vec![
        ev(0, Inside, udp(Inside, i, 7000, o, 53), "inside udp", true),
        ev(1, Inside, udp(Inside, i, 7001, o, 53), "inside udp", true),
        // The third and fourth flows do not fit: their rules matched, the table refused them.
        ev(2, Inside, udp(Inside, i, 7002, o, 53), "inside udp", false),
        ev(3, Inside, echo(Inside, i, o, true, 3), "inside ping", false),
        // The first two are tracked; the third never was.
        ev(4, Outside, udp(Outside, o, 53, i, 7000), "established", true),
        ev(5, Outside, udp(Outside, o, 53, i, 7001), "established", true),
        ev(6, Outside, udp(Outside, o, 53, i, 7002), "deny", false),
        // Both answered flows live `udp_stream` (30 s); after that there is room.
        ev(40_000, Inside, udp(Inside, i, 7002, o, 53), "inside udp", true),
        ev(40_001, Outside, udp(Outside, o, 53, i, 7002), "established", true),
    ];
    let out = run(&fw, &events);
    let (custom, drops) = check(&out, &events);
    assert_eq!(drops["table-full"], 2);
    assert_eq!(drops["denied"], 1);
    assert_eq!(custom["flows created"], 3);
}

/// A UDP datagram with `len` bytes of data (over IPv6 when the addresses are).
fn big_udp(from: Side, src: &[u8], sport: u16, dst: &[u8], dport: u16, len: usize) -> Vec<u8> {
    let (sm, dm) = macs(from);
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let ip = match (src.len(), dst.len()) {
        (4, 4) => Ip::v4(src.try_into().unwrap(), dst.try_into().unwrap()),
        _ => Ip::v6(src.try_into().unwrap(), dst.try_into().unwrap()),
    };
    Frame::udp(ip, sport, dport)
        .macs(sm, dm)
        .payload(&data)
        .build()
}

fn big_echo(from: Side, src: [u8; 4], dst: [u8; 4], request: bool, id: u16, len: usize) -> Vec<u8> {
    let (sm, dm) = macs(from);
    Frame::echo(Ip::v4(src, dst), id, 9)
        .reply(!request)
        .macs(sm, dm)
        .payload(&vec![0xa5; len])
        .build()
}

/// A fragment event: a first fragment names its rule, a later one none.
fn fr(at_ms: u64, from: Side, frame: &[u8], rule: Option<&'static str>) -> Ev {
    Ev {
        at_ms,
        from,
        frame: frame.to_vec(),
        rule,
        pass: false,
    }
}

/// IPv4 and IPv6 fragments through the shipped policy, over pcap ports:
/// datagrams both ways (UDP, ping, UDP over IPv6), out of order, denied,
/// unsolicited, the tiny-fragment attack and fragments still held when the
/// trace ends. The fragments are cut by `testfrag` (etherparse headers,
/// checked by etherparse's reassembly); the expected outputs are listed
/// here frame by frame, and compared byte for byte.
#[test]
fn fragments_follow_their_first_through_the_shipped_policy() {
    let (i, o) = (INSIDE, OUTSIDE);
    let (i6, o6) = (
        [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
    );
    // The reported case: 3000 bytes of UDP from the inside (three fragments), and a
    // 2000-byte answer whose last fragment arrives before its first.
    let q = fragments(&big_udp(Inside, &i, 5000, &o, 4500, 3000), 1480, 1);
    let a = fragments(&big_udp(Outside, &o, 4500, &i, 5000, 2000), 1480, 2);
    // A fragmented ping and its fragmented reply.
    let ping = fragments(&big_echo(Inside, i, o, true, 9, 3500), 1480, 3);
    let pong = fragments(&big_echo(Outside, o, i, false, 9, 3500), 1480, 4);
    // UDP over IPv6, both ways.
    let q6 = fragments(
        &big_udp(Inside, &i6, 500, &o6, 500, 2600),
        1232,
        0x0a0b_0c0d,
    );
    let a6 = fragments(
        &big_udp(Outside, &o6, 500, &i6, 500, 2600),
        1232,
        0x0102_0304,
    );
    // Unsolicited: an outside datagram denied with all its fragments (the
    // first last), and later fragments whose first never comes.
    let denied = fragments(&big_udp(Outside, &o, 53, &i, 9999, 3000), 1480, 5);
    let orphan = fragments(&big_udp(Outside, &o, 53, &i, 5000, 3000), 1480, 6);
    // The tiny-fragment attack on the allowed service: 8 bytes of TCP header
    // in the first fragment, then fragments at offsets 8 and 16 (inside the header).
    let syn = tcp(Outside, OUTSIDE2, 3333, i, 8080, "syn");
    let tiny = fragments(&syn, 8, 7);
    // Inside fragments still waiting for their first when the trace ends.
    let late = fragments(&big_udp(Inside, &i, 6000, &o, 53, 3000), 1480, 8);
    #[rustfmt::skip]
    let events = vec![
        fr(0, Inside, &q[0], Some("inside udp")),
        fr(1, Inside, &q[1], None),
        fr(2, Inside, &q[2], None),
        fr(10, Outside, &a[1], None),
        fr(11, Outside, &a[0], Some("established")),
        fr(20, Inside, &ping[0], Some("inside ping")),
        fr(21, Inside, &ping[1], None),
        fr(22, Inside, &ping[2], None),
        fr(23, Outside, &pong[2], None),
        fr(24, Outside, &pong[0], Some("established")),
        fr(25, Outside, &pong[1], None),
        fr(30, Inside, &q6[0], Some("inside udp")),
        fr(31, Inside, &q6[1], None),
        fr(32, Inside, &q6[2], None),
        fr(33, Outside, &a6[1], None),
        fr(34, Outside, &a6[2], None),
        fr(35, Outside, &a6[0], Some("established")),
        fr(40, Outside, &denied[1], None),
        fr(41, Outside, &denied[2], None),
        fr(42, Outside, &denied[0], Some("outside default deny")),
        fr(50, Outside, &orphan[1], None),
        fr(51, Outside, &orphan[2], None),
        // (The tiny first fragment is malformed to the VLAN splitter, which
        // keeps it from the firewall: see the next test.)
        fr(61, Outside, &tiny[1], None),
        fr(62, Outside, &tiny[2], None),
        // 30 s later (frag_timeout): the orphans expire on this burst.
        l2(40_000, Inside, arp(Inside), true),
        fr(40_001, Inside, &late[1], None),
        fr(40_002, Inside, &late[2], None),
    ];
    assert_eq!(
        (q.len(), a.len(), ping.len(), q6.len(), a6.len(), tiny.len()),
        (3, 2, 3, 3, 3, 3)
    );
    let out = run(&shipped_fw(), &events);
    let cat = |parts: &[&[Vec<u8>]]| parts.concat();
    same(
        &out.wan,
        &cat(&[&q, &ping, &q6, &[arp(Inside)]]),
        "to the outside: the inside datagrams, whole and in order",
    );
    same(
        &out.lan,
        &cat(&[
            &[a[0].clone(), a[1].clone()],
            &[pong[0].clone(), pong[2].clone(), pong[1].clone()],
            &[a6[0].clone(), a6[1].clone(), a6[2].clone()],
        ]),
        "to the inside: each answer's first fragment, then the ones held for it, as they came",
    );
    let (custom, drops) = check_counts(&out, &events);
    assert_eq!(custom["fragments passed"], 2 + 1 + 2 + 2 + 2 + 2);
    assert_eq!(custom["fragments held"], 1 + 1 + 2 + 2 + 2 + 2);
    assert_eq!(custom["fragments released"], 1 + 1 + 2);
    assert_eq!(custom["fragments denied"], 2);
    assert_eq!(custom["fragments expired"], 2);
    assert_eq!(custom["fragments overlapping"], 2);
    assert_eq!(custom["fragments dropped at end"], 2);
    assert_eq!(custom["fragments held now"], 0);
    assert_eq!(drops["denied"], 3);
    assert_eq!(drops["fragment"], 2 + 2 + 2);
    assert_eq!(custom["flows created"], 3, "udp, ping, udp6");
}

/// The tiny-fragment attack (RFC 1858) from the outside, straight from a
/// pcap input into the firewall (the VLAN splitter of [`run`] would drop
/// the tiny first fragment as malformed before the firewall sees it): the
/// first fragment holds 8 bytes of TCP header, later fragments start inside
/// the header; all are dropped as `fragment`, while a well-formed
/// fragmented SYN to the same service passes whole.
#[test]
fn tiny_fragment_attack_over_pcap_ports() {
    let syn = tcp(Outside, OUTSIDE2, 3333, INSIDE, 8080, "syn");
    let tiny = fragments(&syn, 8, 7);
    let (sm, dm) = macs(Outside);
    let v = Frame::tcp(Ip::v4(OUTSIDE2, INSIDE), 3334, 8080, TCP_SYN)
        .seq(1000, 0, 64240)
        .macs(sm, dm)
        .payload(&[0x11; 1200])
        .build();
    let fine = fragments(&v, 512, 8);
    let frames: Vec<Vec<u8>> = tiny.iter().chain(fine.iter()).cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let (wan_in, lan_in, wan, lan) = (
        dir.path().join("wan_in.pcap"),
        dir.path().join("lan_in.pcap"),
        dir.path().join("wan.pcap"),
        dir.path().join("lan.pcap"),
    );
    pcap::write_data(&wan_in, &frames, T0_NS, 1_000_000);
    pcap::write(&lan_in, &[]);
    let text = format!(
        r#"
connections = ["wan_in -> [1]fw[1] -> lan", "lan_in -> [0]fw[0] -> wan"]

[runtime]
clock = "packet"

[ports.wan_in]
driver = "pcap"
input = '{}'

[ports.lan_in]
driver = "pcap"
input = '{}'

[ports.wan]
driver = "pcap"
output = '{}'

[ports.lan]
driver = "pcap"
output = '{}'

{}
"#,
        wan_in.display(),
        lan_in.display(),
        wan.display(),
        lan.display(),
        shipped_fw()
    );
    let mut registry = Registry::builtin();
    hpio_nf_firewall::register(&mut registry);
    let config = Config::parse_str(&text, "tiny.toml", &registry, &PortRegistry::builtin(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let report = config.run_to_end().unwrap_or_else(|e| panic!("{e}"));
    same(&pcap::read_data(&lan), &fine, "the well-formed SYN, whole");
    assert!(pcap::read_data(&wan).is_empty());
    let fw = report.elements.iter().find(|e| e.name == "fw").unwrap();
    let custom: BTreeMap<String, u64> = fw.counters.custom.iter().cloned().collect();
    let drops: BTreeMap<String, u64> = fw.counters.drops.iter().cloned().collect();
    assert_eq!(drops.get("fragment"), Some(&3), "{drops:?}");
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(custom["fragments overlapping"], 3);
    assert_eq!(
        custom["outside to service"], 1,
        "only the well-formed first fragment"
    );
    assert_eq!(custom["fragments passed"], fine.len() as u64 - 1);
}

/// Frames `got` are `want`, byte for byte (a short message when not).
fn same(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    let show = |v: &[Vec<u8>]| {
        v.iter()
            .map(|f| format!("{} bytes {:02x?}", f.len(), &f[12..f.len().min(26)]))
            .collect::<Vec<_>>()
    };
    assert!(
        got == want,
        "{what}:\n got {:#?}\nwant {:#?}",
        show(got),
        show(want)
    );
}

/// The firewall's rule hits (each event with a rule hits it once), and its
/// counters and drops by reason.
fn check_counts(out: &Outcome, events: &[Ev]) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let fw = out
        .report
        .elements
        .iter()
        .find(|e| e.name == "fw")
        .expect("fw in the report");
    assert_eq!(fw.counters.packets_in, events.len() as u64);
    let custom: BTreeMap<String, u64> = fw.counters.custom.iter().cloned().collect();
    let drops: BTreeMap<String, u64> = fw.counters.drops.iter().cloned().collect();
    let mut hits: BTreeMap<&str, u64> = BTreeMap::new();
    for r in events.iter().filter_map(|e| e.rule) {
        *hits.entry(r).or_default() += 1;
    }
    for (name, n) in &custom {
        if !name.starts_with("flows") && !name.starts_with("fragments") {
            assert_eq!(
                *n,
                hits.get(name.as_str()).copied().unwrap_or(0),
                "hits of {name:?}"
            );
        }
    }
    let out_total = (out.wan.len() + out.lan.len()) as u64;
    let dropped: u64 = drops.values().sum();
    assert_eq!(
        out_total + dropped,
        events.len() as u64,
        "every frame passed or dropped, counted"
    );
    (custom, drops)
}
