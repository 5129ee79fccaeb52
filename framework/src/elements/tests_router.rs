//! A router's path through the routing elements, end to end: IpLookup ->
//! DecIpTtl -> ArpQuerier, and IcmpError for what cannot be forwarded; the
//! expected frames are built independently with testkit::frame
//! (etherparse).

use crate::config::configure_element;
use crate::element::{Context, Element, Output, Registry};
use crate::packet::{Batch, Packet, Pool};
use testkit::frame::{Frame, Ip};

const ROUTER_WAN: [u8; 6] = [2, 0, 0, 0, 2, 1];
const GATEWAY: [u8; 6] = [2, 0, 0, 0, 9, 9];

fn element(class: &str, toml: &str) -> (Box<dyn Element>, usize) {
    let c = configure_element(&Registry::builtin(), &[], class, toml).unwrap();
    (c.instantiate(0), c.outputs)
}

/// Pushes `pkts` into input `input` of `e`; the batches of its outputs.
fn push(
    e: &mut Box<dyn Element>,
    outputs: usize,
    pool: &mut Pool,
    input: usize,
    pkts: Vec<Packet>,
) -> Vec<Vec<Packet>> {
    let mut cx = Context::new(pool, 0, 0);
    let mut out = Output::new(outputs, 8);
    let mut b: Batch = pkts.into_iter().collect();
    e.push(&mut cx, input, &mut b, &mut out);
    (0..outputs)
        .map(|o| out.take(o).into_iter().collect())
        .collect()
}

#[test]
fn a_forwarded_packet_matches_the_independently_built_frame() {
    let mut pool = Pool::new(16);
    let (mut rt, rt_n) = element(
        "IpLookup",
        "outputs = 3\nno_route = 2\nroutes = [\"192.168.1.0/24 -> 0\", \"0.0.0.0/0 -> 1 via 203.0.113.1\"]",
    );
    let (mut ttl, ttl_n) = element("DecIpTtl", "mtu = 1500");
    let (mut arpq, _) = element(
        "ArpQuerier",
        "ipv4 = \"203.0.113.2\"\nmac = \"02:00:00:00:02:01\"",
    );
    let ip = Ip::v4([192, 168, 1, 10], [198, 51, 100, 7]);
    let sent = Frame::udp(ip, 40000, 53).payload(b"query").ttl(64).build();

    let mut routed = push(&mut rt, rt_n, &mut pool, 0, vec![Packet::from_bytes(&sent)]);
    let mut decd = push(&mut ttl, ttl_n, &mut pool, 0, routed.swap_remove(1));
    // The gateway is not known yet: the packet waits, a request goes.
    let first = push(&mut arpq, 1, &mut pool, 0, decd.swap_remove(0));
    assert_eq!(first[0].len(), 1);
    assert_eq!(
        &first[0][0].data()[38..42],
        &[203, 0, 113, 1],
        "ARP request for the gateway"
    );
    let mut reply = vec![0u8; 60];
    crate::elements::neighbor::Arp {
        op: crate::elements::neighbor::ARP_REPLY,
        sender_mac: GATEWAY,
        sender_ip: [203, 0, 113, 1],
        target_mac: ROUTER_WAN,
        target_ip: [203, 0, 113, 2],
    }
    .write(ROUTER_WAN, &mut reply);
    let out = push(&mut arpq, 1, &mut pool, 1, vec![Packet::from_bytes(&reply)]);
    let want = Frame::udp(ip, 40000, 53)
        .payload(b"query")
        .ttl(63)
        .macs(ROUTER_WAN, GATEWAY)
        .build();
    assert_eq!(out[0].len(), 1);
    assert_eq!(
        out[0][0].data(),
        &want[..],
        "TTL 63, checksum, Ethernet addresses"
    );
}

#[test]
fn an_expiring_packet_comes_back_as_time_exceeded_from_the_router() {
    let mut pool = Pool::new(16);
    let (mut ttl, ttl_n) = element("DecIpTtl", "");
    let (mut icmp, icmp_n) = element("IcmpError", "ipv4 = \"192.168.1.1\"");
    let ip = Ip::v4([192, 168, 1, 10], [198, 51, 100, 7]);
    let sent = Frame::udp(ip, 40000, 33434).ttl(1).build();
    let expired = push(
        &mut ttl,
        ttl_n,
        &mut pool,
        0,
        vec![Packet::from_bytes(&sent)],
    );
    let err = push(
        &mut icmp,
        icmp_n,
        &mut pool,
        0,
        expired.into_iter().nth(1).unwrap(),
    );
    let f = err[0][0].data();
    let h = etherparse::PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(etherparse::NetHeaders::Ipv4(v4, _)) = h.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        (v4.source, v4.destination),
        ([192, 168, 1, 1], [192, 168, 1, 10])
    );
    assert!(matches!(
        h.transport,
        Some(etherparse::TransportHeader::Icmpv4(
            etherparse::Icmpv4Header {
                icmp_type: etherparse::Icmpv4Type::TimeExceeded(_),
                ..
            }
        ))
    ));
    assert_eq!(
        &f[42..],
        &sent[14..],
        "the quote is the packet as it arrived"
    );
}
