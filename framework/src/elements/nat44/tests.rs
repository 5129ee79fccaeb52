//! Nat44's tests: each translated frame is compared byte for byte with the
//! frame `testkit::frame` builds with the translated fields (every checksum
//! computed from scratch there), and every checksum is checked again with
//! etherparse, an independent parser.

use super::*;
use crate::element::{ConfigCx, Configured, ParamError, Params, Registry};
use crate::packet::Pool;
use etherparse::{Icmpv4Slice, Ipv4HeaderSlice, NetSlice, SlicedPacket, TransportSlice, UdpSlice};
use serde_json::json;
use testkit::frame::{Frame, Ip, TCP_ACK, TCP_FIN, TCP_SYN};

const S: u64 = 1_000_000_000;
const EXT: [u8; 4] = [192, 0, 2, 1];
const HOST: [u8; 4] = [10, 0, 1, 2];
const HOST2: [u8; 4] = [10, 0, 1, 3];
const SERVER: [u8; 4] = [198, 51, 100, 7];
const ROUTER: [u8; 4] = [203, 0, 113, 1];

const BASE: &str = r#"
external = ["192.0.2.1"]
hash_seed = 1
"#;

fn nat(body: &str) -> Box<dyn Element> {
    crate::config::configure_element(&Registry::builtin(), &[], "Nat44", body)
        .unwrap_or_else(|e| panic!("{e}"))
        .instantiate(0)
}

/// What one push gave: frames on each output, and the output (drops).
struct Pushed {
    out: [Vec<Vec<u8>>; 2],
    drops: Output,
}

fn push(e: &mut dyn Element, input: usize, frames: &[Vec<u8>], now: u64) -> Pushed {
    let mut pool = Pool::new(0);
    let mut cx = Context::new(&mut pool, now, 0);
    let mut out = Output::new(2, DROP_REASONS.len());
    let mut batch: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
    e.push(&mut cx, input, &mut batch, &mut out);
    let take = |out: &mut Output, i| -> Vec<Vec<u8>> {
        out.take(i).iter().map(|p| p.data().to_vec()).collect()
    };
    Pushed {
        out: [take(&mut out, 0), take(&mut out, 1)],
        drops: out,
    }
}

/// Pushes one frame and returns the one frame that came out where expected.
fn one(e: &mut dyn Element, input: usize, frame: &Frame, now: u64) -> Vec<u8> {
    let mut p = push(e, input, &[frame.build()], now);
    let got = std::mem::take(&mut p.out[input]);
    assert_eq!(got.len(), 1, "one frame out of output {input}");
    verify(&got[0]);
    got[0].clone()
}

/// Every checksum of an IPv4 frame, checked with etherparse: the IP
/// header's, the transport's and, in an ICMP error, the quoted IP header's
/// (and the quoted UDP checksum when the whole datagram is quoted).
fn verify(frame: &[u8]) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses it");
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let (s, d) = (h.source, h.destination);
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            assert_eq!(t.checksum(), t.calc_checksum_ipv4(s, d).unwrap(), "TCP")
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let want = u.to_header().calc_checksum_ipv4_raw(s, d, u.payload());
            assert_eq!(u.checksum(), want.unwrap(), "UDP checksum");
        }
        Some(TransportSlice::Udp(_)) => {}
        Some(TransportSlice::Icmpv4(i)) => {
            let want = i.icmp_type().calc_checksum(i.payload());
            assert_eq!(i.checksum(), want, "ICMP checksum");
            verify_quoted(i);
        }
        other => panic!("unexpected transport {other:?}"),
    }
}

fn verify_quoted(i: &Icmpv4Slice<'_>) {
    if !matches!(i.type_u8(), 3 | 11) {
        return;
    }
    let q = i.payload();
    let ih = Ipv4HeaderSlice::from_slice(q).expect("quoted IPv4 header");
    let h = ih.to_header();
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "quoted IPv4 checksum"
    );
    let rest = &q[h.header_len()..];
    if h.protocol == etherparse::IpNumber::UDP && rest.len() >= h.payload_len().unwrap() as usize {
        let u = UdpSlice::from_slice(rest).unwrap();
        let want = u
            .to_header()
            .calc_checksum_ipv4_raw(h.source, h.destination, u.payload());
        assert_eq!(u.checksum(), want.unwrap(), "quoted UDP checksum");
    }
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Frame {
    Frame::udp(Ip::v4(src, dst), sport, dport).payload(b"hello nat")
}

#[test]
fn udp_out_takes_the_external_address_and_the_reply_comes_back() {
    let mut e = nat(BASE);
    let got = one(&mut *e, 0, &udp(HOST, 5000, SERVER, 53), 0);
    assert_eq!(got, udp(EXT, 5000, SERVER, 53).build(), "port preserved");
    let back = one(&mut *e, 1, &udp(SERVER, 53, EXT, 5000), S);
    assert_eq!(back, udp(SERVER, 53, HOST, 5000).build());
}

#[test]
fn mapping_is_endpoint_independent() {
    let mut e = nat(BASE);
    // HOST takes 5000; HOST2's 5000 gets another port, the same for every
    // destination, and any outside host may use it.
    one(&mut *e, 0, &udp(HOST, 5000, SERVER, 53), 0);
    let a = one(&mut *e, 0, &udp(HOST2, 5000, SERVER, 53), 0);
    let b = one(&mut *e, 0, &udp(HOST2, 5000, ROUTER, 123), 0);
    let port = u16::from_be_bytes([a[34], a[35]]);
    assert_ne!(port, 5000);
    assert_eq!(a, udp(EXT, port, SERVER, 53).build());
    assert_eq!(b, udp(EXT, port, ROUTER, 123).build());
    let back = one(&mut *e, 1, &udp(ROUTER, 9, EXT, port), 0);
    assert_eq!(back, udp(ROUTER, 9, HOST2, 5000).build());
}

#[test]
fn unsolicited_traffic_is_dropped_and_counted() {
    let mut e = nat(BASE);
    let frames = [
        udp(SERVER, 53, EXT, 5000).build(),
        Frame::tcp(Ip::v4(SERVER, EXT), 80, 22, TCP_SYN).build(),
        Frame::echo(Ip::v4(SERVER, EXT), 7, 1).build(),
    ];
    let p = push(&mut *e, 1, &frames, 0);
    assert!(p.out[1].is_empty());
    assert_eq!(p.drops.drops(NO_MAPPING), 3);
}

#[test]
fn udp_checksum_zero_stays_zero() {
    let mut e = nat(BASE);
    let mut f = udp(HOST, 5000, SERVER, 53).build();
    f[40..42].copy_from_slice(&[0, 0]);
    let p = push(&mut *e, 0, &[f], 0);
    let got = &p.out[0][0];
    assert_eq!(&got[40..42], &[0, 0]);
    let mut want = udp(EXT, 5000, SERVER, 53).build();
    want[40..42].copy_from_slice(&[0, 0]);
    assert_eq!(got, &want);
    verify(got);
    // Coming back too.
    let mut f = udp(SERVER, 53, EXT, 5000).build();
    f[40..42].copy_from_slice(&[0, 0]);
    let p = push(&mut *e, 1, &[f], 0);
    let mut want = udp(SERVER, 53, HOST, 5000).build();
    want[40..42].copy_from_slice(&[0, 0]);
    assert_eq!(p.out[1], [want]);
}

#[test]
fn a_udp_checksum_coming_in_zero_is_sent_as_ffff() {
    let mut e = nat(BASE);
    one(&mut *e, 0, &udp(HOST, 5000, SERVER, 53), 0);
    for w in 0..=u16::MAX {
        let want = udp(SERVER, 53, HOST, 5000)
            .payload(&w.to_be_bytes())
            .build();
        if want[40..42] == [0xff, 0xff] {
            let f = udp(SERVER, 53, EXT, 5000).payload(&w.to_be_bytes());
            assert_eq!(one(&mut *e, 1, &f, 0), want);
            return;
        }
    }
    panic!("no payload gives a zero checksum");
}

#[test]
fn a_udp_checksum_coming_out_zero_is_sent_as_ffff() {
    // Find a payload word that makes the translated checksum 0xffff in
    // the builder (a computed 0), then check the NAT writes 0xffff too.
    let mut e = nat(BASE);
    for w in 0..=u16::MAX {
        let want = udp(EXT, 5000, SERVER, 53).payload(&w.to_be_bytes()).build();
        if want[40..42] == [0xff, 0xff] {
            let f = udp(HOST, 5000, SERVER, 53).payload(&w.to_be_bytes());
            assert_eq!(one(&mut *e, 0, &f, 0), want);
            return;
        }
    }
    panic!("no payload gives a zero checksum");
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: u8) -> Frame {
    Frame::tcp(Ip::v4(src, dst), sport, dport, flags).seq(100, 200, 512)
}

#[test]
fn tcp_is_translated_and_its_timeout_follows_the_handshake() {
    let body =
        format!("{BASE}timeouts = {{ tcp_transitory = \"10s\", tcp_established = \"100s\" }}");
    let mut e = nat(&body);
    let out = one(&mut *e, 0, &tcp(HOST, 40000, SERVER, 80, TCP_SYN), 0);
    assert_eq!(out, tcp(EXT, 40000, SERVER, 80, TCP_SYN).build());
    // Transitory: gone after 10 s.
    let p = push(
        &mut *e,
        1,
        &[tcp(SERVER, 80, EXT, 40000, TCP_SYN | TCP_ACK).build()],
        11 * S,
    );
    assert_eq!(p.drops.drops(NO_MAPPING), 1);
    // Again, with the handshake answered: established, lives 100 s idle.
    one(&mut *e, 0, &tcp(HOST, 40000, SERVER, 80, TCP_SYN), 20 * S);
    let back = one(
        &mut *e,
        1,
        &tcp(SERVER, 80, EXT, 40000, TCP_SYN | TCP_ACK),
        21 * S,
    );
    assert_eq!(
        back,
        tcp(SERVER, 80, HOST, 40000, TCP_SYN | TCP_ACK).build()
    );
    one(&mut *e, 0, &tcp(HOST, 40000, SERVER, 80, TCP_ACK), 22 * S);
    one(&mut *e, 1, &tcp(SERVER, 80, EXT, 40000, TCP_ACK), 90 * S);
    // A FIN makes it transitory again.
    one(
        &mut *e,
        0,
        &tcp(HOST, 40000, SERVER, 80, TCP_FIN | TCP_ACK),
        100 * S,
    );
    let p = push(
        &mut *e,
        1,
        &[tcp(SERVER, 80, EXT, 40000, TCP_ACK).build()],
        111 * S,
    );
    assert_eq!(p.drops.drops(NO_MAPPING), 1);
}

#[test]
fn icmp_echo_identifiers_are_mapped() {
    let mut e = nat(BASE);
    let out = one(&mut *e, 0, &Frame::echo(Ip::v4(HOST, SERVER), 77, 1), 0);
    // The identifier is not in the port range: the first free one is taken.
    let id = u16::from_be_bytes([out[38], out[39]]);
    assert!(id >= 1024);
    assert_eq!(out, Frame::echo(Ip::v4(EXT, SERVER), id, 1).build());
    let back = one(
        &mut *e,
        1,
        &Frame::echo_reply(Ip::v4(SERVER, EXT), id, 1),
        0,
    );
    assert_eq!(back, Frame::echo_reply(Ip::v4(SERVER, HOST), 77, 1).build());
}

/// The IP packet of a frame (what an ICMP error quotes).
fn ip_of(frame: &Frame) -> Vec<u8> {
    frame.build()[14..].to_vec()
}

#[test]
fn icmp_errors_from_outside_are_translated_with_their_quoted_datagram() {
    let mut e = nat(BASE);
    let sent = udp(HOST, 5000, SERVER, 33434).ttl(1);
    one(&mut *e, 0, &sent, 0);
    let translated = udp(EXT, 5000, SERVER, 33434).ttl(1);
    // Time exceeded from a router, quoting the whole datagram.
    let err = Frame::icmp(Ip::v4(ROUTER, EXT), 11).payload(&ip_of(&translated));
    let got = one(&mut *e, 1, &err, 0);
    let want = Frame::icmp(Ip::v4(ROUTER, HOST), 11).payload(&ip_of(&sent));
    assert_eq!(got, want.build());
    // A TCP segment quoted with only 8 bytes of its header (no checksum).
    let syn = tcp(HOST, 40000, SERVER, 80, TCP_SYN);
    let out = one(&mut *e, 0, &syn, 0);
    let quoted = |b: &[u8]| b[14..14 + 28].to_vec();
    let err = Frame::icmp(Ip::v4(ROUTER, EXT), 3).payload(&quoted(&out));
    let got = one(&mut *e, 1, &err, 0);
    let want = Frame::icmp(Ip::v4(ROUTER, HOST), 3).payload(&quoted(&syn.build()));
    assert_eq!(got, want.build());
    // Quoting a ping.
    let ping = one(&mut *e, 0, &Frame::echo(Ip::v4(HOST, SERVER), 9, 3), 0);
    let err = Frame::icmp(Ip::v4(ROUTER, EXT), 11).payload(&ping[14..]);
    let got = one(&mut *e, 1, &err, 0);
    let want = Frame::icmp(Ip::v4(ROUTER, HOST), 11).payload(&ip_of(&Frame::echo(
        Ip::v4(HOST, SERVER),
        9,
        3,
    )));
    assert_eq!(got, want.build());
}

#[test]
fn icmp_errors_from_inside_are_translated_and_unknown_ones_dropped() {
    let mut e = nat(BASE);
    one(&mut *e, 0, &udp(HOST, 5000, SERVER, 53), 0);
    // The server's datagram in, and the host's port unreachable about it.
    let inbound = udp(SERVER, 53, EXT, 5000);
    let delivered = udp(SERVER, 53, HOST, 5000);
    assert_eq!(one(&mut *e, 1, &inbound, 0), delivered.build());
    let err = Frame::icmp(Ip::v4(HOST, SERVER), 3).payload(&ip_of(&delivered));
    let got = one(&mut *e, 0, &err, 0);
    let want = Frame::icmp(Ip::v4(EXT, SERVER), 3).payload(&ip_of(&inbound));
    assert_eq!(got, want.build());
    // About no mapping: dropped; quoting too little: malformed.
    let stray = udp(SERVER, 53, EXT, 6000);
    let err = Frame::icmp(Ip::v4(ROUTER, EXT), 3).payload(&ip_of(&stray));
    let short = Frame::icmp(Ip::v4(ROUTER, EXT), 3).payload(&ip_of(&stray)[..24]);
    let p = push(&mut *e, 1, &[err.build(), short.build()], 0);
    assert_eq!(
        (p.drops.drops(NO_MAPPING), p.drops.drops(MALFORMED)),
        (1, 1)
    );
    let mut s = Vec::new();
    e.stats(&mut |n, v| s.push((n.to_string(), v)));
    assert!(s.contains(&(ICMP_ERRORS.to_string(), 1)));
}

#[test]
fn port_exhaustion_drops_new_mappings_as_table_full() {
    let mut e = nat(&format!("{BASE}ports = \"2000-2003\""));
    let frames: Vec<Vec<u8>> = (0..6)
        .map(|i| udp(HOST, 100 + i, SERVER, 53).build())
        .collect();
    let p = push(&mut *e, 0, &frames, 0);
    assert_eq!(p.out[0].len(), 4);
    assert_eq!(p.drops.drops(TABLE_FULL), 2);
    let ports: Vec<u16> = p.out[0]
        .iter()
        .map(|f| u16::from_be_bytes([f[34], f[35]]))
        .collect();
    assert_eq!(ports, [2000, 2001, 2002, 2003]);
    // Existing mappings still flow; TCP has its own ports.
    assert_eq!(push(&mut *e, 0, &frames[..4], 1).out[0].len(), 4);
    let t = tcp(HOST, 100, SERVER, 80, TCP_SYN).build();
    assert_eq!(push(&mut *e, 0, &[t], 1).out[0].len(), 1);
    // Once the UDP mappings expire (5 minutes), new ones fit again.
    let p = push(&mut *e, 0, &frames[4..], 302 * S);
    assert_eq!((p.out[0].len(), p.drops.drops(TABLE_FULL)), (2, 0));
}

#[test]
fn a_full_table_drops_new_mappings_as_table_full() {
    let mut e = nat(&format!("{BASE}max_mappings = 2"));
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| udp(HOST, 100 + i, SERVER, 53).build())
        .collect();
    let p = push(&mut *e, 0, &frames, 0);
    assert_eq!((p.out[0].len(), p.drops.drops(TABLE_FULL)), (2, 1));
}

#[test]
fn udp_mappings_expire_after_their_timeout() {
    let mut e = nat(&format!("{BASE}timeouts = {{ udp = \"30s\" }}"));
    one(&mut *e, 0, &udp(HOST, 5000, SERVER, 53), 0);
    // An answer refreshes it.
    one(&mut *e, 1, &udp(SERVER, 53, EXT, 5000), 29 * S);
    one(&mut *e, 1, &udp(SERVER, 53, EXT, 5000), 58 * S);
    let p = push(&mut *e, 1, &[udp(SERVER, 53, EXT, 5000).build()], 89 * S);
    assert_eq!(p.drops.drops(NO_MAPPING), 1);
    let mut s = Vec::new();
    e.stats(&mut |n, v| s.push((n.to_string(), v)));
    assert!(s.contains(&(EXPIRED.to_string(), 1)) && s.contains(&(MAPPINGS.to_string(), 0)));
}

#[test]
fn static_forwards_reach_the_inside_and_replies_leave_from_their_port() {
    let body = format!(
        "{BASE}forwards = [{{ proto = \"tcp\", port = 8080, to = \"10.0.1.2:80\" }}]\n\
         timeouts = {{ tcp_transitory = \"1s\" }}"
    );
    let mut e = nat(&body);
    let client = [198, 51, 100, 99];
    let got = one(&mut *e, 1, &tcp(client, 50000, EXT, 8080, TCP_SYN), 0);
    assert_eq!(got, tcp(client, 50000, HOST, 80, TCP_SYN).build());
    let reply = tcp(HOST, 80, client, 50000, TCP_SYN | TCP_ACK);
    let out = one(&mut *e, 0, &reply, 1000 * S);
    assert_eq!(
        out,
        tcp(EXT, 8080, client, 50000, TCP_SYN | TCP_ACK).build()
    );
    // Never expires, survives a flush; UDP to that port finds nothing.
    let cx = HandlerCx::new(0, 0);
    assert_eq!(e.write("flush", "", &cx).unwrap(), json!({"flushed": 0}));
    one(
        &mut *e,
        1,
        &tcp(client, 50000, EXT, 8080, TCP_ACK),
        5000 * S,
    );
    let p = push(&mut *e, 1, &[udp(client, 1, EXT, 8080).build()], 0);
    assert_eq!(p.drops.drops(NO_MAPPING), 1);
}

#[test]
fn handlers_show_stats_and_flush_the_mappings() {
    let mut e = nat(BASE);
    one(&mut *e, 0, &udp(HOST, 5000, SERVER, 53), 0);
    one(&mut *e, 0, &tcp(HOST, 6000, SERVER, 80, TCP_SYN), 0);
    let cx = HandlerCx::new(2 * S, 0);
    let rows = e.read("mappings", &cx).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let udp_row = rows.iter().find(|r| r["proto"] == "udp").unwrap();
    assert_eq!(udp_row["internal"], "10.0.1.2:5000");
    assert_eq!(udp_row["external"], "192.0.2.1:5000");
    assert_eq!(
        (udp_row["age"].as_f64(), udp_row["static"].as_bool()),
        (Some(2.0), Some(false))
    );
    let tcp_row = rows.iter().find(|r| r["proto"] == "tcp").unwrap();
    assert_eq!(tcp_row["state"], "transitory");
    let st = e.read("stats", &cx).unwrap();
    assert_eq!(
        (st["mappings"].as_u64(), st["by_proto"]["udp"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(e.write("flush", "", &cx).unwrap(), json!({"flushed": 2}));
    assert!(e.write("flush", "now", &cx).is_err());
    let p = push(&mut *e, 1, &[udp(SERVER, 53, EXT, 5000).build()], 0);
    assert_eq!(p.drops.drops(NO_MAPPING), 1);
}

#[test]
fn a_reload_keeps_the_mappings() {
    let mut old = nat(BASE);
    one(&mut *old, 0, &udp(HOST, 5000, SERVER, 53), 0);
    one(&mut *old, 0, &udp(HOST2, 5000, SERVER, 53), 0);
    let second = one(&mut *old, 0, &udp(HOST2, 5000, SERVER, 53), 0);
    let state = old.take_state().unwrap();
    let mut new = nat(&format!("{BASE}timeouts = {{ udp = \"1m\" }}"));
    let mut pool = Pool::new(0);
    new.give_state(state, &mut Context::new(&mut pool, 0, 0));
    // Same external ports both ways after the reload.
    assert_eq!(one(&mut *new, 0, &udp(HOST2, 5000, SERVER, 53), S), second);
    let back = one(&mut *new, 1, &udp(SERVER, 53, EXT, 5000), S);
    assert_eq!(back, udp(SERVER, 53, HOST, 5000).build());
    // A new range that no longer holds a port: that mapping is gone.
    let state = new.take_state().unwrap();
    let mut third = nat(&format!("{BASE}ports = \"5000-5000\""));
    third.give_state(state, &mut Context::new(&mut pool, 0, 0));
    let st = third.read("stats", &HandlerCx::new(0, 0)).unwrap();
    assert_eq!(
        (st["mappings"].as_u64(), st["expired"].as_u64()),
        (Some(1), Some(1))
    );
}

/// Nat44 configured from `body` as for a run with `W` workers.
fn configure_with<const W: usize>(body: &str) -> Result<Configured, String> {
    fn configure_w<const W: usize>(
        p: &Params,
        cx: &ConfigCx<'_>,
    ) -> Result<Configured, ParamError> {
        configure(
            p,
            &ConfigCx {
                ports: cx.ports,
                workers: W,
                grace: crate::element::Grace::global(),
            },
        )
    }
    let mut r = Registry::builtin();
    let info = ClassInfo {
        name: "Nat44w",
        ..CLASS.info
    };
    r.register(ElementClass {
        info,
        configure: configure_w::<W>,
    });
    crate::config::configure_element(&r, &[], "Nat44w", body).map_err(|e| e.to_string())
}

#[test]
fn workers_split_the_port_range_and_refuse_each_others_ports() {
    let c = configure_with::<2>("external = [\"192.0.2.1\"]\nports = \"2000-2003\"\nhash_seed = 1")
        .unwrap();
    let (mut w0, mut w1) = (c.instantiate(0), c.instantiate(1));
    let port = |f: &Vec<u8>| u16::from_be_bytes([f[34], f[35]]);
    let a = push(&mut *w0, 0, &[udp(HOST, 1, SERVER, 53).build()], 0);
    let b = push(&mut *w1, 0, &[udp(HOST, 2, SERVER, 53).build()], 0);
    assert_eq!((port(&a.out[0][0]), port(&b.out[0][0])), (2000, 2002));
    // Worker 0 gets the reply for worker 1's port: other-worker.
    let p = push(&mut *w0, 1, &[udp(SERVER, 53, EXT, 2002).build()], 0);
    assert_eq!(p.drops.drops(OTHER_WORKER), 1);
    let p = push(&mut *w1, 1, &[udp(SERVER, 53, EXT, 2002).build()], 0);
    assert_eq!(p.out[1].len(), 1);
    let e = configure_with::<8>("external = [\"192.0.2.1\"]\nports = \"2000-2003\"").unwrap_err();
    assert!(e.contains("fewer ports than the 8 workers"), "{e}");
}

#[test]
fn other_traffic_passes_or_is_dropped_with_a_reason() {
    let mut e = nat(BASE);
    let v6 = Frame::udp(Ip::v6([0xfd; 16], [0xfe; 16]), 1, 2).build();
    let gre = Frame::raw(Ip::v4(HOST, SERVER), 47)
        .payload(&[0; 8])
        .build();
    let frag = udp(HOST, 1, SERVER, 2).fragment(8, false).build();
    let reply = Frame::echo_reply(Ip::v4(HOST, SERVER), 1, 1).build();
    let p = push(&mut *e, 0, &[v6.clone(), gre, frag, reply], 0);
    assert_eq!(p.out[0], vec![v6.clone()]);
    assert_eq!(
        (p.drops.drops(UNSUPPORTED), p.drops.drops(FRAGMENT)),
        (2, 1)
    );
    let mut e = nat(&format!("{BASE}non_ipv4 = \"drop\""));
    assert_eq!(push(&mut *e, 1, &[v6], 0).drops.drops(NON_IPV4), 1);
}

#[test]
fn bad_parameters_are_refused_with_their_name() {
    let err = |body: &str| {
        crate::config::configure_element(&Registry::builtin(), &[], "Nat44", body)
            .unwrap_err()
            .to_string()
    };
    assert!(err("external = [\"2001:db8::1\"]").contains("expected an IPv4 address"));
    assert!(err("external = [\"192.0.2.1\"]\nports = \"9-3\"").contains("FIRST-LAST"));
    let e =
        err("external = [\"192.0.2.1\"]\nforwards = [{ proto = \"tcp\", port = 1, to = \"x\" }]");
    assert!(e.contains("IPV4:PORT"), "{e}");
    let e = err(
        "external = [\"192.0.2.1\"]\nforwards = [{ proto = \"tcp\", port = 1, to = \"10.0.0.1:1\", \
         external = \"192.0.2.9\" }]",
    );
    assert!(e.contains("not one of `external`"), "{e}");
}

/// A UDP datagram of 200 bytes of payload: fragments of 64 bytes.
fn big_udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Frame {
    let payload: Vec<u8> = (0..200).map(|i| i as u8).collect();
    Frame::udp(Ip::v4(src, dst), sport, dport).payload(&payload)
}

#[test]
fn fragments_are_translated_like_their_first_both_ways() {
    let mut e = nat(BASE);
    let frags = big_udp(HOST, 5000, SERVER, 53).fragments(64, 0x1234);
    assert_eq!(frags.len(), 4);
    let p = push(&mut *e, 0, &frags, 0);
    let want = big_udp(EXT, 5000, SERVER, 53).fragments(64, 0x1234);
    assert_eq!(
        p.out[0], want,
        "addresses, and the port and UDP checksum in the first"
    );
    // Coming back, fragmented too; a later fragment 15 s after its first.
    let frags = big_udp(SERVER, 53, EXT, 5000).fragments(64, 0x4321);
    let want = big_udp(SERVER, 53, HOST, 5000).fragments(64, 0x4321);
    let p = push(&mut *e, 1, &frags[..3], S);
    assert_eq!(p.out[1], want[..3]);
    let p = push(&mut *e, 1, &frags[3..], 16 * S);
    assert_eq!(p.out[1], want[3..]);
    let mut s = Vec::new();
    e.stats(&mut |n, v| s.push((n.to_string(), v)));
    assert!(s.contains(&(FRAGMENTS.to_string(), 6)), "{s:?}");
    // Past 15 s, its memory is gone.
    let p = push(&mut *e, 1, &frags[3..], 17 * S);
    assert_eq!((p.out[1].len(), p.drops.drops(FRAGMENT)), (0, 1));
}

#[test]
fn later_fragments_before_their_first_or_of_another_datagram_are_dropped() {
    let mut e = nat(BASE);
    let mut frags = big_udp(HOST, 5000, SERVER, 53).fragments(64, 7);
    frags.reverse();
    let p = push(&mut *e, 0, &frags, 0);
    let want = big_udp(EXT, 5000, SERVER, 53).fragments(64, 7);
    assert_eq!(p.out[0], want[..1], "only the first passes");
    assert_eq!(p.drops.drops(FRAGMENT), 3);
    // The same source and destination, another identification or protocol.
    let other = big_udp(HOST, 5000, SERVER, 53).fragments(64, 8);
    let tcp_frag = Frame::tcp(Ip::v4(HOST, SERVER), 5000, 53, TCP_ACK)
        .payload(&[0; 200])
        .fragments(64, 7);
    let p = push(&mut *e, 0, &[other[1].clone(), tcp_frag[1].clone()], 0);
    assert_eq!((p.out[0].len(), p.drops.drops(FRAGMENT)), (0, 2));
    // Coming in, a fragment for an address with no first fragment seen.
    let back = big_udp(SERVER, 53, EXT, 5000).fragments(64, 9);
    assert_eq!(push(&mut *e, 1, &back[1..], 0).drops.drops(FRAGMENT), 3);
}

#[test]
fn fragmented_icmp_echoes_are_translated() {
    let mut e = nat(BASE);
    let ping = |ip: Ip| Frame::echo(ip, 3000, 1).payload(&[0x5a; 100]);
    let frags = ping(Ip::v4(HOST, SERVER)).fragments(48, 11);
    let p = push(&mut *e, 0, &frags, 0);
    assert_eq!(p.out[0], ping(Ip::v4(EXT, SERVER)).fragments(48, 11));
    let pong = |ip: Ip| Frame::echo_reply(ip, 3000, 1).payload(&[0x5a; 100]);
    let p = push(&mut *e, 1, &pong(Ip::v4(SERVER, EXT)).fragments(48, 12), 0);
    assert_eq!(p.out[1], pong(Ip::v4(SERVER, HOST)).fragments(48, 12));
}

#[test]
fn inside_hosts_reach_each_other_through_the_external_address() {
    let body =
        format!("{BASE}forwards = [{{ proto = \"tcp\", port = 8080, to = \"10.0.1.3:80\" }}]");
    let mut e = nat(&body);
    // HOST2's UDP 6000 has a mapping (external port 6000).
    one(&mut *e, 0, &udp(HOST2, 6000, SERVER, 53), 0);
    let p = push(&mut *e, 0, &[udp(HOST, 5000, EXT, 6000).build()], 0);
    assert!(p.out[0].is_empty());
    assert_eq!(p.out[1], vec![udp(EXT, 5000, HOST2, 6000).build()]);
    verify(&p.out[1][0]);
    // The answer goes back the same way, from HOST2's external endpoint.
    let p = push(&mut *e, 0, &[udp(HOST2, 6000, EXT, 5000).build()], 0);
    assert_eq!(p.out[1], vec![udp(EXT, 6000, HOST, 5000).build()]);
    // A static forward, by TCP.
    let syn = tcp(HOST, 5001, EXT, 8080, TCP_SYN);
    let p = push(&mut *e, 0, &[syn.build()], 0);
    assert_eq!(p.out[1], vec![tcp(EXT, 5001, HOST2, 80, TCP_SYN).build()]);
    verify(&p.out[1][0]);
    // Fragments follow their first fragment back inside.
    let frags = big_udp(HOST, 5002, EXT, 6000).fragments(64, 5);
    let p = push(&mut *e, 0, &frags, 0);
    assert_eq!(p.out[1], big_udp(EXT, 5002, HOST2, 6000).fragments(64, 5));
    // An external port with no mapping: dropped as from outside.
    let p = push(&mut *e, 0, &[udp(HOST, 5003, EXT, 7000).build()], 0);
    assert_eq!(
        (p.out[0].len() + p.out[1].len(), p.drops.drops(NO_MAPPING)),
        (0, 1)
    );
    let mut s = Vec::new();
    e.stats(&mut |n, v| s.push((n.to_string(), v)));
    assert!(s.contains(&(HAIRPINNED.to_string(), 4)), "{s:?}");
}

#[test]
fn a_slot_reclaimed_within_a_group_is_looked_up_again() {
    let mut e = nat(&format!(
        "{BASE}max_mappings = 4\ntimeouts = {{ udp = \"1s\" }}"
    ));
    one(&mut *e, 0, &udp(HOST2, 5000, SERVER, 53), 0);
    let fresh: Vec<Vec<u8>> = (0..3)
        .map(|i| udp(HOST2, 6000 + i, SERVER, 53).build())
        .collect();
    assert_eq!(push(&mut *e, 0, &fresh, 2 * S).out[0].len(), 3);
    // HOST2:5000's mapping has expired: the new one of HOST:7000 takes its
    // slot; HOST2:5000, looked up before that, must not use it.
    let p = push(
        &mut *e,
        0,
        &[
            udp(HOST, 7000, SERVER, 53).build(),
            udp(HOST2, 5000, SERVER, 53).build(),
        ],
        2 * S,
    );
    assert_eq!(p.out[0], vec![udp(EXT, 7000, SERVER, 53).build()]);
    assert_eq!(p.drops.drops(TABLE_FULL), 1);
}

#[test]
fn icmp_errors_about_hairpinned_datagrams_go_back_inside() {
    let body =
        format!("{BASE}forwards = [{{ proto = \"tcp\", port = 8080, to = \"10.0.1.3:80\" }}]");
    let mut e = nat(&body);
    // HOST2's UDP 6000 has a mapping (external port 6000); HOST sends to it.
    one(&mut *e, 0, &udp(HOST2, 6000, SERVER, 53), 0);
    let sent = udp(HOST, 5000, EXT, 6000);
    let delivered = udp(EXT, 5000, HOST2, 6000);
    assert_eq!(
        push(&mut *e, 0, &[sent.build()], 0).out[1],
        [delivered.build()]
    );
    // HOST2's port unreachable about what it got, quoting all of it: back
    // to HOST, from the external address, about the datagram HOST sent.
    let err = Frame::icmp(Ip::v4(HOST2, EXT), 3)
        .code(3)
        .payload(&ip_of(&delivered));
    let p = push(&mut *e, 0, &[err.build()], 0);
    let want = Frame::icmp(Ip::v4(EXT, HOST), 3)
        .code(3)
        .payload(&ip_of(&sent));
    assert!(p.out[0].is_empty(), "not sent outside");
    assert_eq!(p.out[1], [want.build()]);
    verify(&p.out[1][0]);
    // Through a static forward, TCP quoted with 8 bytes of its header.
    let syn = tcp(HOST, 5001, EXT, 8080, TCP_SYN);
    let got = tcp(EXT, 5001, HOST2, 80, TCP_SYN);
    assert_eq!(push(&mut *e, 0, &[syn.build()], 0).out[1], [got.build()]);
    let err = Frame::icmp_error(Ip::v4(HOST2, EXT), 3, 1, &got);
    let p = push(&mut *e, 0, &[err.build()], 0);
    let want = Frame::icmp_error(Ip::v4(EXT, HOST), 3, 1, &syn);
    assert_eq!(p.out[1], [want.build()]);
    verify(&p.out[1][0]);
    // Quoting an external endpoint with no mapping: dropped, not sent out.
    let stray = udp(EXT, 7000, HOST2, 6000);
    let err = Frame::icmp(Ip::v4(HOST2, EXT), 3).payload(&ip_of(&stray));
    let p = push(&mut *e, 0, &[err.build()], 0);
    assert_eq!(
        (p.out[0].len() + p.out[1].len(), p.drops.drops(NO_MAPPING)),
        (0, 1)
    );
    let mut s = Vec::new();
    e.stats(&mut |n, v| s.push((n.to_string(), v)));
    assert!(s.contains(&(ICMP_ERRORS.to_string(), 2)), "{s:?}");
    assert!(s.contains(&(HAIRPINNED.to_string(), 4)), "{s:?}");
}

#[test]
fn fragmented_hairpinned_icmp_errors_follow_their_first_fragment_inside() {
    let mut e = nat(BASE);
    one(&mut *e, 0, &udp(HOST2, 6000, SERVER, 53), 0);
    let sent = big_udp(HOST, 5000, EXT, 6000);
    let delivered = big_udp(EXT, 5000, HOST2, 6000);
    assert_eq!(
        push(&mut *e, 0, &[sent.build()], 0).out[1],
        [delivered.build()]
    );
    // An error quoting the whole 228-byte datagram, in fragments of 64.
    let err = |ip: Ip, quoted: &Frame| Frame::icmp(ip, 3).code(3).payload(&ip_of(quoted));
    let frags = err(Ip::v4(HOST2, EXT), &delivered).fragments(64, 21);
    let p = push(&mut *e, 0, &frags, 0);
    assert!(p.out[0].is_empty());
    assert_eq!(p.out[1], err(Ip::v4(EXT, HOST), &sent).fragments(64, 21));
}

#[test]
fn pings_to_an_external_address_from_inside_are_not_sent_out() {
    let mut e = nat(BASE);
    // No inside host owns an identifier of the external address: the
    // request is dropped as it would be from outside, and makes no mapping.
    let p = push(
        &mut *e,
        0,
        &[Frame::echo(Ip::v4(HOST, EXT), 7, 1).build()],
        0,
    );
    assert_eq!(
        (p.out[0].len() + p.out[1].len(), p.drops.drops(NO_MAPPING)),
        (0, 1)
    );
    let mut s = Vec::new();
    e.stats(&mut |n, v| s.push((n.to_string(), v)));
    assert!(s.contains(&(CREATED.to_string(), 0)), "{s:?}");
    // A ping to another address still goes out.
    one(&mut *e, 0, &Frame::echo(Ip::v4(HOST, SERVER), 7, 1), 0);
}
