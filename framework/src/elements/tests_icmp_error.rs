use super::*;
use crate::config::configure_element;
use crate::element::Registry;
use crate::packet::Pool;
use etherparse::{Icmpv4Type, Icmpv6Type, NetHeaders, PacketHeaders, TransportHeader};
use testkit::frame::{Frame, Ip, DST_MAC, SRC_MAC};

const CONFIG: &str = "ipv4 = \"192.0.2.1\"\nipv6 = \"2001:db8::1\"\nmtu = 1400\nburst = 100";

fn element(toml: &str) -> Box<dyn Element> {
    configure_element(&Registry::builtin(), &[], "IcmpError", toml)
        .unwrap()
        .instantiate(0)
}

/// Pushes `frames` to `input` at time `now`; the frames out and the Output.
fn run(
    e: &mut Box<dyn Element>,
    input: usize,
    now: u64,
    frames: &[Vec<u8>],
) -> (Vec<Vec<u8>>, Output) {
    let mut pool = Pool::new(0);
    let mut cx = Context::new(&mut pool, now, 0);
    let mut out = Output::new(1, DROP_REASONS.len());
    let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
    e.push(&mut cx, input, &mut b, &mut out);
    let got = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
    (got, out)
}

/// One's-complement sum of 16-bit words, written apart from the element's.
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u32 = 0;
    for part in parts {
        for c in part.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[test]
fn ipv4_errors_quote_the_packet_with_valid_checksums() {
    let mut e = element(CONFIG);
    let orig = Frame::udp(Ip::v4([10, 0, 0, 5], [198, 51, 100, 7]), 4000, 53)
        .payload(&[0xab; 100])
        .ttl(1)
        .build();
    for (input, ty, code, word) in [(0, 11, 0, 0u32), (1, 3, 0, 0), (2, 3, 4, 1400)] {
        let (got, _) = run(&mut e, input, 0, std::slice::from_ref(&orig));
        let f = &got[0];
        assert_eq!(
            (&f[..6], &f[6..12]),
            (&SRC_MAC[..], &DST_MAC[..]),
            "MACs swapped"
        );
        let h = PacketHeaders::from_ethernet_slice(f).unwrap();
        let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.source, [192, 0, 2, 1]);
        assert_eq!(ip.destination, [10, 0, 0, 5]);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(usize::from(ip.total_len), f.len() - 14);
        let Some(TransportHeader::Icmpv4(icmp)) = h.transport else {
            panic!("not ICMP")
        };
        match (ty, icmp.icmp_type) {
            (11, Icmpv4Type::TimeExceeded(_)) | (3, Icmpv4Type::DestinationUnreachable(_)) => {}
            (_, other) => panic!("{other:?}"),
        }
        assert_eq!((f[34], f[35]), (ty, code));
        assert_eq!(&f[38..42], &word.to_be_bytes());
        assert_eq!(ones_sum(&[&f[34..]]), 0xffff, "ICMP checksum");
        assert_eq!(&f[42..], &orig[14..], "the whole original packet is quoted");
    }
}

#[test]
fn ipv6_errors_carry_a_valid_checksum_and_at_most_1280_bytes() {
    let mut e = element(CONFIG);
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    let orig = Frame::udp(Ip::v6(src, [0x20; 16]), 4000, 53)
        .payload(&[0xcd; 1400])
        .build();
    let (got, _) = run(&mut e, 2, 0, std::slice::from_ref(&orig));
    let f = &got[0];
    assert_eq!(f.len(), 14 + 1280);
    let h = PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(NetHeaders::Ipv6(ip, _)) = h.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.destination, src);
    assert_eq!(
        ip.source,
        "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()
    );
    let Some(TransportHeader::Icmpv6(icmp)) = h.transport else {
        panic!("not ICMPv6")
    };
    assert!(
        matches!(icmp.icmp_type, Icmpv6Type::PacketTooBig { mtu: 1400 }),
        "{:?}",
        icmp.icmp_type
    );
    let len = ((f.len() - 54) as u32).to_be_bytes();
    let pseudo_tail = [len[0], len[1], len[2], len[3], 0, 0, 0, 58];
    assert_eq!(
        ones_sum(&[&f[22..54], &pseudo_tail, &f[54..]]),
        0xffff,
        "ICMPv6 checksum"
    );
    assert_eq!(&f[62..], &orig[14..14 + 1232]);
}

#[test]
fn no_error_about_errors_multicast_or_without_an_address_and_rate_limited() {
    let mut e = element(CONFIG);
    let v4 = |dst| Ip::v4([10, 0, 0, 5], dst);
    let frames = vec![
        Frame::icmp(v4([198, 51, 100, 7]), 11).build(),
        Frame::udp(v4([224, 0, 0, 5]), 1, 2).build(),
        Frame::udp(v4([198, 51, 100, 7]), 1, 2)
            .fragment(10, false)
            .build(),
        vec![0u8; 60],
    ];
    let (got, out) = run(&mut e, 0, 0, &frames);
    assert!(got.is_empty());
    assert_eq!(out.drops(NOT_ALLOWED), 3);
    assert_eq!(out.drops(NOT_IP), 1);
    let mut e4 = element("ipv4 = \"192.0.2.1\"\nrate = 10\nburst = 2");
    let v6 = Frame::udp(Ip::v6([0x20; 16], [0x20; 16]), 1, 2).build();
    let (_, out) = run(&mut e4, 0, 0, &[v6]);
    assert_eq!(out.drops(NO_ADDRESS), 1);
    let ok = Frame::udp(v4([198, 51, 100, 7]), 1, 2).build();
    let (got, out) = run(&mut e4, 0, 0, &vec![ok.clone(); 5]);
    assert_eq!((got.len(), out.drops(RATE_LIMITED)), (2, 3));
    // 0.1 s later, one token more (10 per second).
    let (got, _) = run(&mut e4, 0, 100_000_000, &vec![ok; 5]);
    assert_eq!(got.len(), 1);
}

/// The router and a host, for input 3 (packets to the router itself).
const ROUTER4: [u8; 4] = [192, 0, 2, 1];
const HOST4: [u8; 4] = [10, 0, 0, 5];

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

#[test]
fn udp_to_the_router_gets_port_unreachable_from_the_address_it_was_sent_to() {
    // `ipv4`/`ipv6` name other addresses: a refusal comes from the
    // destination of what it refuses.
    let mut e = element("ipv4 = \"192.0.2.99\"\nipv6 = \"2001:db8::99\"");
    let q4 = Frame::udp(Ip::v4(HOST4, ROUTER4), 40000, 33434).payload(&[7; 32]);
    let (r6, h6) = (v6("2001:db8::1"), v6("2001:db8::5"));
    let q6 = Frame::udp(Ip::v6(h6, r6), 40000, 33434)
        .payload(&[9; 16])
        .vlan(5);
    let (got, out) = run(&mut e, 3, 0, &[q4.build(), q6.build()]);
    let want4 = Frame::icmp(Ip::v4(ROUTER4, HOST4), 3)
        .code(3)
        .tos(48, 0)
        .ttl(64)
        .dont_fragment(false)
        .macs(DST_MAC, SRC_MAC)
        .payload(&q4.ip_bytes())
        .build();
    let want6 = Frame::icmp(Ip::v6(r6, h6), 1)
        .code(4)
        .ttl(64)
        .macs(DST_MAC, SRC_MAC)
        .payload(&q6.ip_bytes())
        .build();
    assert_eq!(out.drop_counts.iter().sum::<u64>(), 0);
    assert_eq!(got, vec![want4, want6], "untagged, whole packets quoted");
}

#[test]
fn tcp_to_the_router_gets_a_reset_as_rfc_9293_says() {
    use testkit::frame::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
    let mut e = element(CONFIG);
    let (r6, h6) = (v6("2001:db8::1"), v6("2001:db8::5"));
    let reply = |ip: Ip, flags: u8, seq: u32, ack: u32| {
        Frame::tcp(ip, 22, 40000, flags)
            .seq(seq, ack, 0)
            .ttl(64)
            .macs(DST_MAC, SRC_MAC)
            .build()
    };
    let cases = [
        // A SYN (sequence 1): RST+ACK acknowledging the SYN.
        (
            Frame::tcp(Ip::v4(HOST4, ROUTER4), 40000, 22, TCP_SYN),
            reply(Ip::v4(ROUTER4, HOST4), TCP_RST | TCP_ACK, 0, 2),
        ),
        // Data with ACK: a bare RST at the acknowledged sequence number.
        (
            Frame::tcp(Ip::v4(HOST4, ROUTER4), 40000, 22, TCP_ACK)
                .seq(100, 5000, 1000)
                .payload(b"hello"),
            reply(Ip::v4(ROUTER4, HOST4), TCP_RST, 5000, 0),
        ),
        // Data and FIN without ACK, over IPv6 behind a tag, with options.
        (
            Frame::tcp(Ip::v6(h6, r6), 40000, 22, TCP_FIN)
                .seq(0xffff_fffe, 0, 1000)
                .tcp_options(&[1, 1, 1, 1])
                .payload(b"abc")
                .vlan(9),
            reply(Ip::v6(r6, h6), TCP_RST | TCP_ACK, 0, 2),
        ),
    ];
    for (q, want) in cases {
        let (got, out) = run(&mut e, 3, 0, &[q.build()]);
        assert_eq!(out.drop_counts.iter().sum::<u64>(), 0);
        assert_eq!(got, vec![want], "{q:?}");
    }
}

#[test]
fn no_refusal_for_resets_icmp_broadcasts_or_over_the_shared_rate() {
    use testkit::frame::{TCP_ACK, TCP_RST};
    let mut e = element(CONFIG);
    let to_router = Ip::v4(HOST4, ROUTER4);
    let frames = vec![
        Frame::tcp(to_router, 1, 22, TCP_RST | TCP_ACK).build(),
        Frame::udp(to_router, 1, 53)
            .macs(SRC_MAC, [0xff; 6])
            .build(),
        Frame::udp(Ip::v4(HOST4, [255, 255, 255, 255]), 1, 53).build(),
        Frame::icmp(to_router, 3).build(),
        Frame::echo_reply(to_router, 1, 1).build(),
        Frame::raw(to_router, 47).payload(&[0; 8]).build(),
        Frame::tcp(to_router, 1, 22, TCP_ACK)
            .cut(14 + 20 + 10)
            .build(),
    ];
    let (got, out) = run(&mut e, 3, 0, &frames);
    assert!(got.is_empty());
    assert_eq!(
        out.drops(NOT_ALLOWED),
        4,
        "RST, L2 and IP broadcast, ICMP error"
    );
    assert_eq!(out.drops(NO_ANSWER), 2, "echo reply, GRE");
    assert_eq!(out.drops(NOT_IP), 1, "TCP header cut short");
    // Resets, port unreachables and the other errors share one bucket.
    let mut e = element("ipv4 = \"192.0.2.1\"\nrate = 10\nburst = 2");
    let udp = Frame::udp(to_router, 1, 53).build();
    let syn = Frame::tcp(to_router, 1, 22, 2).build();
    let (got, out) = run(&mut e, 3, 0, &[udp, syn]);
    assert_eq!(got.len(), 2);
    let late = Frame::udp(Ip::v4(HOST4, [198, 51, 100, 7]), 1, 2).build();
    let (got, out2) = run(&mut e, 0, 0, &[late]);
    assert_eq!((got.len(), out2.drops(RATE_LIMITED)), (0, 1));
    assert_eq!(out.drop_counts.iter().sum::<u64>(), 0);
}
