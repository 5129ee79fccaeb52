//! Property test of Classify at the element level: random rule lists in the
//! rule language (terms on IP version, protocol, VLAN, ports, addresses,
//! TCP flags) over random well-formed frames (built by etherparse) send
//! each frame to the output a naive reference gives: the first rule all of
//! whose terms hold, judged on etherparse's reading of the frame. (The
//! matcher's own module has seeded tests of the compiled set against a
//! reference on its key; this one goes through the config and the graph.)
//!
//! CI runs the case count below from a fixed seed; `PROPTEST_CASES=100000`
//! (or `make fuzz`) runs more (testkit::prop).

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use hpio_nf::config::Config;
use hpio_nf::element::{Context, Registry};
use hpio_nf::graph::Graph;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::PortRegistry;
use proptest::prelude::*;
use testkit::frame::{Frame, Ip, TCP_ACK, TCP_SYN};

/// One term, in the rule language and as the reference evaluates it.
#[derive(Debug, Clone)]
enum Term {
    Ip4,
    Ip6,
    Tcp,
    Udp,
    Icmp,
    Vlan,
    NoVlan,
    VlanId(u16),
    SrcPort(u16, u16),
    DstPort(u16, u16),
    SrcNet4(u8, u8),
    DstHost4(u8),
    Syn(bool),
    Ack(bool),
}

impl Term {
    fn text(&self) -> String {
        match self {
            Term::Ip4 => "ip4".into(),
            Term::Ip6 => "ip6".into(),
            Term::Tcp => "tcp".into(),
            Term::Udp => "udp".into(),
            Term::Icmp => "icmp".into(),
            Term::Vlan => "vlan".into(),
            Term::NoVlan => "novlan".into(),
            Term::VlanId(v) => format!("vlan {v}"),
            Term::SrcPort(a, b) => format!("src port {a}-{b}"),
            Term::DstPort(a, b) => format!("dst port {a}-{b}"),
            Term::SrcNet4(b, len) => format!("src net 10.{b}.0.0/{len}"),
            Term::DstHost4(h) => format!("dst host 10.0.0.{h}"),
            Term::Syn(set) => format!("tcp flags {}syn", if *set { "" } else { "!" }),
            Term::Ack(set) => format!("tcp flags {}ack", if *set { "" } else { "!" }),
        }
    }
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        Just(Term::Ip4),
        Just(Term::Ip6),
        Just(Term::Tcp),
        Just(Term::Udp),
        Just(Term::Icmp),
        Just(Term::Vlan),
        Just(Term::NoVlan),
        (1u16..4).prop_map(Term::VlanId),
        (0u16..6, 0u16..6).prop_map(|(a, b)| Term::SrcPort(1000 + a.min(b), 1000 + a.max(b))),
        (0u16..6, 0u16..6).prop_map(|(a, b)| Term::DstPort(80 + a.min(b), 80 + a.max(b))),
        (0u8..3, prop::sample::select(vec![8u8, 16]))
            .prop_map(|(b, l)| Term::SrcNet4(if l == 8 { 0 } else { b }, l)),
        (1u8..4).prop_map(Term::DstHost4),
        any::<bool>().prop_map(Term::Syn),
        any::<bool>().prop_map(Term::Ack),
    ]
}

/// What the reference reads of a frame (through etherparse).
#[derive(Debug, Default)]
struct Facts {
    v4: bool,
    v6: bool,
    proto: Option<u8>,
    vlans: Vec<u16>,
    ports: Option<(u16, u16)>,
    src4: Option<[u8; 4]>,
    dst4: Option<[u8; 4]>,
    flags: Option<(bool, bool)>,
}

fn facts(frame: &[u8]) -> Facts {
    let p = SlicedPacket::from_ethernet(frame).expect("well-formed");
    let vlans = p
        .link_exts
        .iter()
        .filter_map(|e| match e {
            etherparse::LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
            _ => None,
        })
        .collect();
    let mut f = Facts {
        vlans,
        ..Facts::default()
    };
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            (f.v4, f.src4, f.dst4) = (true, Some(h.source()), Some(h.destination()));
            f.proto = Some(h.protocol().0);
        }
        Some(NetSlice::Ipv6(ip)) => {
            f.v6 = true;
            f.proto = Some(ip.payload().ip_number.0);
        }
        _ => {}
    }
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            f.ports = Some((t.source_port(), t.destination_port()));
            f.flags = Some((t.syn(), t.ack()));
        }
        Some(TransportSlice::Udp(u)) => f.ports = Some((u.source_port(), u.destination_port())),
        _ => {}
    }
    f
}

/// The naive reference: does `t` hold for a frame with facts `f`?
fn holds(t: &Term, f: &Facts) -> bool {
    match *t {
        Term::Ip4 => f.v4,
        Term::Ip6 => f.v6,
        Term::Tcp => f.proto == Some(6),
        Term::Udp => f.proto == Some(17),
        Term::Icmp => f.v4 && f.proto == Some(1),
        Term::Vlan => !f.vlans.is_empty(),
        Term::NoVlan => f.vlans.is_empty(),
        Term::VlanId(v) => f.vlans.first() == Some(&v),
        Term::SrcPort(a, b) => f.ports.is_some_and(|(s, _)| (a..=b).contains(&s)),
        Term::DstPort(a, b) => f.ports.is_some_and(|(_, d)| (a..=b).contains(&d)),
        Term::SrcNet4(b, len) => f
            .src4
            .is_some_and(|s| s[0] == 10 && (len == 8 || s[1] == b)),
        Term::DstHost4(h) => f.dst4 == Some([10, 0, 0, h]),
        Term::Syn(set) => f.flags.is_some_and(|(s, _)| s == set),
        Term::Ack(set) => f.flags.is_some_and(|(_, a)| a == set),
    }
}

/// A well-formed frame: 0-2 VLAN tags, IPv4 or IPv6, TCP (SYN/ACK flags),
/// UDP or ICMP echo, addresses and ports from small pools.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (
        (0u8..3, 1u16..4, 1u16..4, any::<bool>(), 0u8..3),
        (
            0u8..3,
            0u8..3,
            1u8..4,
            0u16..7,
            0u16..7,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(|((tags, v1, v2, v6, l4), (sb, sh, dh, sp, dp, syn, ack))| {
            let (s4, d4) = ([10, sb, 0, sh], [10, 0, 0, dh]);
            let mut s6 = [0u8; 16];
            s6[0] = 0x20;
            s6[15] = sh;
            let mut d6 = s6;
            d6[15] = dh;
            let (sp, dp) = (1000 + sp, 80 + dp);
            let ip = if v6 { Ip::v6(s6, d6) } else { Ip::v4(s4, d4) };
            let f = match l4 {
                0 => {
                    let flags = if syn { TCP_SYN } else { 0 } | if ack { TCP_ACK } else { 0 };
                    Frame::tcp(ip, sp, dp, flags).seq(1, 5, 100)
                }
                1 => Frame::udp(ip, sp, dp),
                _ => Frame::echo(ip, 1, 2),
            };
            let vids = [v1, v2];
            f.vlans(&vids[..usize::from(tags).min(2)])
                .payload(b"x")
                .build()
        })
}

/// The rules that compile alone (terms that cannot hold together are a
/// configuration error, tested elsewhere), as (text, terms).
fn compiling(rules: Vec<Vec<Term>>) -> Vec<(String, Vec<Term>)> {
    rules
        .into_iter()
        .filter_map(|terms| {
            let m = terms
                .iter()
                .map(Term::text)
                .collect::<Vec<_>>()
                .join(" and ");
            let toml = format!("rules = [\"{m} -> 0\"]");
            hpio_nf::config::configure_element(&Registry::builtin(), &[], "Classify", &toml)
                .ok()
                .map(|_| (m, terms))
        })
        .collect()
}

proptest! {
    #![proptest_config(testkit::prop::config(256))]

    #[test]
    fn classify_decides_as_the_reference(
        rules in prop::collection::vec(prop::collection::vec(term(), 1..4), 1..6),
        frames in prop::collection::vec(frame(), 1..16),
    ) {
        let rules = compiling(rules);
        prop_assume!(!rules.is_empty());
        let n = rules.len();
        // Rule i goes to output i, and to port p<i>; no match: output n.
        let mut text = String::from("connections = [\"a -> c\"");
        for i in 0..=n {
            text += &format!(", \"c[{i}] -> p{i}\"");
        }
        text += "]\n[ports.a]\ndriver = \"pcap\"\ninput = \"a.pcap\"\n";
        for i in 0..=n {
            text += &format!("[ports.p{i}]\ndriver = \"pcap\"\noutput = \"p{i}.pcap\"\n");
        }
        let list: Vec<String> = rules.iter().enumerate().map(|(i, (m, _))| format!("\"{m} -> {i}\"")).collect();
        text += &format!("[elements.c]\nclass = \"Classify\"\nrules = [{}]\ndefault = {n}\n", list.join(", "));
        let cfg = Config::parse_str(&text, "t.toml", &Registry::builtin(), &PortRegistry::builtin(), &[])
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let mut g = Graph::new(&cfg.graph, 0);
        let mut pool = Pool::new(32);
        for f in &frames {
            let facts = facts(f);
            let want = rules.iter().position(|(_, ts)| ts.iter().all(|t| holds(t, &facts))).unwrap_or(n);
            let mut p = pool.alloc().unwrap();
            p.set_frame(f);
            let mut batch = Batch::new();
            batch.push(p);
            let mut cx = Context::new(&mut pool, 1, 0);
            g.push_from_port(&mut cx, 0, &mut batch);
            let mut got = None;
            for i in 0..=n {
                let port = cfg.graph.ports.iter().position(|p| *p == format!("p{i}")).unwrap();
                let mut tx = std::mem::take(g.tx_batch(port));
                if !tx.is_empty() {
                    prop_assert!(got.is_none() && tx.len() == 1);
                    got = Some(i);
                }
                pool.free_batch(&mut tx);
            }
            prop_assert_eq!(got, Some(want), "rules {:?}\nfacts {:?}", rules.iter().map(|r| &r.0).collect::<Vec<_>>(), facts);
        }
    }
}
