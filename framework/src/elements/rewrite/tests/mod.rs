//! Tests of `Rewrite`: frames built by `testkit::frame` (etherparse under it)
//! from a description, rewritten by the element, compared with the frame
//! built from the description edited the same way, then parsed again by
//! etherparse, which recomputes every checksum on its own.
//! This file holds the frame builders and runners, the configuration tests
//! and a speed report; the others test one area each.

mod fields;
mod malformed;
mod vlan;

use std::net::IpAddr;

use etherparse::{Icmpv6Slice, Ipv4Header, NetHeaders, PacketHeaders, TransportHeader, VlanId};
use testkit::frame::{Frame as Kit, Ip, ARP_REQUEST, TCP_ACK, TCP_PSH};

use super::*;
use crate::element::{Registry, Value};
use crate::packet::{Packet, Pool};

const MAC_1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const NEW_MAC_SRC: [u8; 6] = [0x0a, 0x11, 0x22, 0x33, 0x44, 0x55];
const NEW_MAC_DST: [u8; 6] = [0x0e, 0x99, 0x88, 0x77, 0x66, 0x55];
const NEW_SRC4: [u8; 4] = [192, 0, 2, 77];
const NEW_DST4: [u8; 4] = [198, 51, 100, 254];
const NEW_SRC6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 7,
];
const NEW_DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe];
/// Odd length, so the checksums cover a trailing half word.
const PAYLOAD: &[u8] = b"rewrite me, keep my checksum!";

/// What a test frame holds; `build` turns it into bytes with `testkit::frame`.
#[derive(Debug, Clone, Copy)]
struct Frame {
    vlan: Option<(u16, u8)>,
    v6: bool,
    tcp: bool,
    mac_src: [u8; 6],
    mac_dst: [u8; 6],
    src4: [u8; 4],
    dst4: [u8; 4],
    src6: [u8; 16],
    dst6: [u8; 16],
    ttl: u8,
    dscp: u8,
    ecn: u8,
    sport: u16,
    dport: u16,
}

fn frame(vlan: bool, v6: bool, tcp: bool) -> Frame {
    Frame {
        vlan: vlan.then_some((10, 5)),
        v6,
        tcp,
        mac_src: MAC_1,
        mac_dst: MAC_2,
        src4: [10, 0, 0, 1],
        dst4: [10, 0, 0, 2],
        src6: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        dst6: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        ttl: 64,
        dscp: 10,
        ecn: 1,
        sport: 40000,
        dport: if tcp { 443 } else { 53 },
    }
}

/// The eight bases: with and without VLAN, IPv4 and IPv6, TCP and UDP.
fn bases() -> Vec<Frame> {
    let mut v = Vec::new();
    for vlan in [false, true] {
        for v6 in [false, true] {
            for tcp in [false, true] {
                v.push(frame(vlan, v6, tcp));
            }
        }
    }
    v
}

/// The test frame `f` with the transport header `l4` makes from the
/// addresses (`testkit::frame` writes the bytes).
fn kit_with(f: &Frame, l4: impl FnOnce(Ip) -> Kit) -> Kit {
    let ip = match f.v6 {
        true => Ip::v6(f.src6, f.dst6),
        false => Ip::v4(f.src4, f.dst4),
    };
    let k = l4(ip)
        .macs(f.mac_src, f.mac_dst)
        .ttl(f.ttl)
        .tos(f.dscp, f.ecn)
        .flow_label(0x12345)
        .ident(0x1234)
        .payload(PAYLOAD);
    match f.vlan {
        Some((vid, pcp)) => k.vlan_pcp(vid, pcp),
        None => k,
    }
}

/// The test frame `f`: TCP (ACK and PSH) or UDP.
fn kit(f: &Frame) -> Kit {
    kit_with(f, |ip| match f.tcp {
        true => Kit::tcp(ip, f.sport, f.dport, TCP_ACK | TCP_PSH).seq(0x0102_0304, 7, 4096),
        false => Kit::udp(ip, f.sport, f.dport),
    })
}

fn build(f: &Frame) -> Vec<u8> {
    kit(f).build()
}

/// Parses `frame` with etherparse and checks each checksum in it against
/// one etherparse computes.
fn assert_checksums(frame: &[u8]) {
    let p = PacketHeaders::from_ethernet_slice(frame).expect("etherparse parses the frame");
    let payload = p.payload.slice();
    match (&p.net, &p.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), t) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "IPv4 header checksum"
            );
            match t {
                Some(TransportHeader::Tcp(t)) => {
                    assert_eq!(t.checksum, t.calc_checksum_ipv4(ip, payload).unwrap())
                }
                Some(TransportHeader::Udp(u)) if u.checksum != 0 => {
                    assert_eq!(u.checksum, u.calc_checksum_ipv4(ip, payload).unwrap())
                }
                _ => {}
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Tcp(t))) => {
            assert_eq!(t.checksum, t.calc_checksum_ipv6(ip, payload).unwrap())
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Udp(u))) => {
            assert_eq!(u.checksum, u.calc_checksum_ipv6(ip, payload).unwrap())
        }
        _ => {}
    }
}

fn ip(s: &str) -> Value {
    Value::Ip(s.parse::<IpAddr>().unwrap())
}

fn params(list: &[(&'static str, Value)]) -> Params {
    let mut p = Params::new();
    for (k, v) in list {
        p.set(k, v.clone());
    }
    p
}

fn configure_with(list: &[(&'static str, Value)]) -> Result<Configured, ParamError> {
    let cx = ConfigCx {
        ports: &[],
        workers: 1,
        grace: crate::element::Grace::global(),
    };
    (CLASS.configure)(&params(list), &cx)
}

fn element(list: &[(&'static str, Value)]) -> Box<dyn Element> {
    let c = configure_with(list).expect("configures");
    assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 1));
    c.instantiate(0)
}

/// Pushes `packets` through `el` as one batch; returns the output.
fn push_packets(el: &mut dyn Element, packets: Vec<Packet>) -> Output {
    let mut pool = Pool::new(4);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut out = Output::new(1, CLASS.info.drop_reasons.len());
    let mut batch: Batch = packets.into_iter().collect();
    el.push(&mut cx, 0, &mut batch, &mut out);
    assert!(batch.is_empty(), "every packet is handled");
    out
}

/// Runs `frames` through `el`; returns the frames sent on output 0.
fn run(el: &mut dyn Element, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Output) {
    let out = push_packets(el, frames.iter().map(|f| Packet::from_bytes(f)).collect());
    let sent = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
    (sent, out)
}

/// Rewrites one frame with a fresh element: the frame sent on, or the drop reason.
fn rewrite(list: &[(&'static str, Value)], frame: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (mut sent, out) = run(&mut *element(list), &[frame.to_vec()]);
    match sent.pop() {
        Some(f) => Ok(f),
        None => Err((0..CLASS.info.drop_reasons.len())
            .find(|&i| out.drops(crate::element::DropReason(i as u8)) == 1)
            .map(|i| CLASS.info.drop_reasons[i])
            .expect("a dropped packet has a reason")),
    }
}

fn stats(el: &dyn Element) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    el.stats(&mut |k, n| v.push((k.to_string(), n)));
    v
}

fn stat(el: &dyn Element, name: &str) -> u64 {
    stats(el)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, n)| n)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// For each base frame: rewrite it with `list`; the result must be exactly
/// the frame etherparse builds from the base edited by `edit`, and its
/// checksums must check out.
fn check(list: &[(&'static str, Value)], edit: impl Fn(&mut Frame)) {
    for base in bases() {
        let mut expected = base;
        edit(&mut expected);
        let got = rewrite(list, &build(&base)).unwrap_or_else(|r| panic!("{base:?}: {r}"));
        assert_eq!(got, build(&expected), "{base:?}");
        assert_checksums(&got);
    }
}

#[test]
fn configure_rejects_contradictions_and_bad_values() {
    let cases: &[(&[(&'static str, Value)], &str)] = &[
        (
            &[
                ("vlan_push", Value::Int(1)),
                ("vlan_pop", Value::Bool(true)),
            ],
            "vlan_pop",
        ),
        (
            &[("vlan_push", Value::Int(1)), ("vlan_set", Value::Int(2))],
            "vlan_set",
        ),
        (
            &[("vlan_pop", Value::Bool(true)), ("vlan_set", Value::Int(2))],
            "vlan_set",
        ),
        (&[("vlan_pcp", Value::Int(2))], "vlan_pcp"),
        (
            &[("vlan_pop", Value::Bool(true)), ("vlan_pcp", Value::Int(2))],
            "vlan_pcp",
        ),
        (&[("vlan_push", Value::Int(4095))], "vlan_push"),
        (&[("vlan_set", Value::Int(-1))], "vlan_set"),
        (
            &[("vlan_push", Value::Int(1)), ("vlan_pcp", Value::Int(8))],
            "vlan_pcp",
        ),
        (&[("dscp", Value::Int(64))], "dscp"),
        (&[("src_port", Value::Int(65536))], "src_port"),
        (&[("ip6_src", ip("10.0.0.1"))], "ip6_src"),
        (
            &[
                ("ip_dst", ip("2001:db8::1")),
                ("ip6_dst", ip("2001:db8::2")),
            ],
            "ip6_dst",
        ),
        (
            &[("eth_src", Value::Str("02:00:00:00:00:01".into()))],
            "eth_src",
        ),
        (&[("dec_ttl", Value::Int(1))], "dec_ttl"),
    ];
    for (list, param) in cases {
        let err = configure_with(list).expect_err(&format!("{list:?} must be rejected"));
        assert_eq!(err.param, *param, "{list:?}: {err}");
    }
    // The same parameters one at a time are fine.
    for list in [
        &[("vlan_push", Value::Int(4094)), ("vlan_pcp", Value::Int(7))][..],
        &[
            ("vlan_push", Value::Int(0)),
            ("vlan_pop", Value::Bool(false)),
        ],
        &[("ip_src", ip("10.0.0.1")), ("ip6_src", ip("::1"))],
        &[],
    ] {
        configure_with(list).unwrap();
    }
}

#[test]
fn class_example_configures() {
    let table: toml::Table = CLASS.info.example.parse().expect("example is TOML");
    let elements = table["elements"].as_table().unwrap();
    assert_eq!(elements.len(), 1);
    let (_, el) = elements.iter().next().unwrap();
    let el = el.as_table().unwrap();
    assert_eq!(el["class"].as_str(), Some(CLASS.info.name));
    let mut p = Params::new();
    for (key, v) in el.iter().filter(|(k, _)| *k != "class") {
        let spec = PARAMS
            .iter()
            .find(|s| s.name == key)
            .unwrap_or_else(|| panic!("example uses unknown parameter {key}"));
        let value = match v {
            toml::Value::String(s) => spec.ty.parse_str(s).unwrap(),
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Integer(i) => Value::Int(*i),
            other => panic!("unexpected {other:?}"),
        };
        p.set(spec.name, value);
    }
    let cx = ConfigCx {
        ports: &[],
        workers: 1,
        grace: crate::element::Grace::global(),
    };
    let mut el = (CLASS.configure)(&p, &cx).unwrap().instantiate(0);
    let (sent, _) = run(&mut *el, &[build(&frame(false, false, true))]);
    assert_eq!(&sent[0][..6], &[2, 0, 0, 0, 0, 0xfe]);
    assert_checksums(&sent[0]);
}

#[test]
fn registered_with_documented_counters() {
    let r = Registry::builtin();
    assert!(r.get("Rewrite").is_some());
    let el = element(&[]);
    let names: Vec<_> = stats(&*el).into_iter().map(|(k, _)| k).collect();
    let documented: Vec<_> = CLASS
        .info
        .counters
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(names, documented);
}

/// Packets per second through `el`, 32-packet batches of copies of `frame`.
/// Cached headers are forgotten every round, as if each packet were new.
fn speed(el: &mut dyn Element, frame: &[u8]) -> f64 {
    let mut pool = Pool::new(4);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut out = Output::new(1, CLASS.info.drop_reasons.len());
    let mut batch: Batch = (0..32).map(|_| Packet::from_bytes(frame)).collect();
    let rounds = 2_000_000;
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        el.push(&mut cx, 0, &mut batch, &mut out);
        batch = out.take(0);
        batch.iter_mut().for_each(Packet::invalidate_headers);
    }
    assert_eq!(batch.len(), 32);
    (rounds * 32) as f64 / t.elapsed().as_secs_f64()
}

/// Rough speed of the MAC-only path and of a full rewrite (run with
/// `cargo test --release -p hpio-nf --lib rewrite::tests::speed_report -- --ignored --nocapture`).
#[test]
#[ignore]
fn speed_report() {
    let f = build(&frame(false, false, true));
    let mut macs = element(&[
        ("eth_src", Value::Mac(NEW_MAC_SRC)),
        ("eth_dst", Value::Mac(NEW_MAC_DST)),
    ]);
    let mut full = element(&[
        ("eth_src", Value::Mac(NEW_MAC_SRC)),
        ("ip_src", ip("192.0.2.77")),
        ("src_port", Value::Int(1)),
        ("dscp", Value::Int(46)),
    ]);
    println!("MAC only: {:.1} Mpps", speed(&mut *macs, &f) / 1e6);
    println!(
        "MAC, address, port, DSCP: {:.1} Mpps",
        speed(&mut *full, &f) / 1e6
    );
}
