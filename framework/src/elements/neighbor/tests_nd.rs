use super::super::querier::UNRESOLVED;
use super::*;
use crate::elements::route::NEXT_HOP_ANNO;
use etherparse::{Icmpv6Type, NetHeaders, PacketHeaders, TransportHeader};
use testkit::frame::{Frame, Ip};

const MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const PEER: [u8; 6] = [2, 0, 0, 0, 9, 9];

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

use super::super::tests_rig::Rig;

const SEC: u64 = 1_000_000_000;

/// An NdQuerier for fe80::2:1 with `extra` parameters.
fn querier(extra: &str) -> Rig {
    let toml = format!("ipv6 = \"fe80::2:1\"\nmac = \"02:00:00:00:02:01\"\n{extra}");
    Rig::new("NdQuerier", &toml, 16)
}

/// A UDP packet from fd00::1 to `dst` with next hop `via` (the interface
/// identifier's two annotation words; 0 and 0: `dst` itself).
fn ip_to(dst: &str, via: [u32; 2]) -> Packet {
    let ip = Ip::v6(v6("fd00::1").octets(), v6(dst).octets());
    let mut p = Packet::from_bytes(&Frame::udp(ip, 1, 2).build());
    p.anno_mut()[NEXT_HOP_ANNO..NEXT_HOP_ANNO + 2].copy_from_slice(&via);
    p
}

/// Checks `f` is an NS or NA with a right ICMPv6 checksum (an independent
/// sum over the pseudo-header) and hop limit 255; (type, IPv6 dst, target).
fn check(f: &[u8]) -> (u8, Ipv6Addr, Ipv6Addr) {
    let h = PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(NetHeaders::Ipv6(ip, _)) = h.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.hop_limit, 255);
    let Some(TransportHeader::Icmpv6(icmp)) = h.transport else {
        panic!("not ICMPv6")
    };
    let payload = &f[54 + 8..];
    assert_eq!(
        icmp.icmp_type
            .calc_checksum(ip.source, ip.destination, payload)
            .unwrap(),
        icmp.checksum
    );
    let ty = match icmp.icmp_type {
        Icmpv6Type::Unknown { type_u8, .. } => type_u8,
        other => other.type_u8(),
    };
    (
        ty,
        Ipv6Addr::from(ip.destination),
        Ipv6Addr::from(<[u8; 16]>::try_from(&f[62..78]).unwrap()),
    )
}

#[test]
fn querier_solicits_the_solicited_node_address_and_releases_on_advertisement() {
    let mut r = querier("");
    // Via fe80::1:2:3:4.
    let p = ip_to("2001:db8::9", [0x0001_0002, 0x0003_0004]);
    let (got, _) = r.push(0, 0, vec![p]);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][..6], &[0x33, 0x33, 0xff, 0x03, 0x00, 0x04]);
    assert_eq!(
        check(&got[0]),
        (NS, v6("ff02::1:ff03:4"), v6("fe80::1:2:3:4"))
    );
    assert_eq!(&got[0][80..86], &MAC, "source link-layer address option");
    let mut na = vec![0u8; nd::ND_FRAME];
    nd::write(
        &mut na,
        MAC,
        PEER,
        v6("fe80::1:2:3:4"),
        v6("fe80::2:1"),
        NA,
        0x60,
        v6("fe80::1:2:3:4"),
    );
    let (got, _) = r.push(1, 0, vec![Packet::from_bytes(&na)]);
    assert_eq!(got.len(), 1, "the held packet goes");
    assert_eq!((&got[0][..6], &got[0][6..12]), (&PEER[..], &MAC[..]));
    assert_eq!(
        &got[0][38..54],
        &v6("2001:db8::9").octets(),
        "the packet itself"
    );
}

#[test]
fn responder_advertises_its_addresses_only() {
    let toml = "ipv6 = [\"fd00:1::1\", \"fe80::1\"]\nmac = \"02:00:00:00:02:01\"";
    let mut r = Rig::new("NdResponder", toml, 0);
    let ns = |src: &str, target: &str| {
        let mut f = vec![0u8; nd::ND_FRAME];
        let t = v6(target);
        nd::write(
            &mut f,
            nd::multicast_mac(nd::solicited_node(t)),
            PEER,
            v6(src),
            nd::solicited_node(t),
            NS,
            0,
            t,
        );
        Packet::from_bytes(&f)
    };
    let (got, _) = r.push(
        0,
        0,
        vec![
            ns("fd00:1::9", "fd00:1::1"),
            ns("fd00:1::9", "fd00:1::2"),
            ns("::", "fe80::1"),
        ],
    );
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0][..6], &PEER);
    assert_eq!(check(&got[0]), (NA, v6("fd00:1::9"), v6("fd00:1::1")));
    assert_eq!(got[0][58], 0xe0, "router, solicited, override");
    assert_eq!(&got[0][80..86], &MAC, "target link-layer address option");
    assert_eq!(&got[0][22..38], &v6("fd00:1::1").octets());
    assert_eq!(check(&got[1]), (NA, v6("ff02::1"), v6("fe80::1")));
    assert_eq!(
        got[1][58], 0xa0,
        "no solicited flag for duplicate address detection"
    );
}

#[test]
fn querier_sends_to_a_static_neighbour_without_soliciting() {
    let mut r = querier("static = [{ ip = \"fe80::1:2:3:4\", mac = \"02:00:00:00:09:09\" }]");
    let p = ip_to("2001:db8::9", [0x0001_0002, 0x0003_0004]);
    let (got, _) = r.push(0, 0, vec![p]);
    assert_eq!(got.len(), 1, "the packet itself, no solicitation");
    assert_eq!((&got[0][..6], &got[0][6..12]), (&PEER[..], &MAC[..]));
    assert_eq!(&got[0][38..54], &v6("2001:db8::9").octets());
}

#[test]
fn querier_timer_solicits_again_and_drops_on_time_without_traffic() {
    let mut r = querier("retry = \"1s\"\ntries = 2");
    let (got, _) = r.push(0, 0, vec![ip_to("fe80::9", [0, 0])]);
    assert_eq!(got.len(), 1, "the first solicitation");
    let (got, out, asked) = r.timer(SEC);
    assert_eq!(check(&got[0]), (NS, v6("ff02::1:ff00:9"), v6("fe80::9")));
    assert_eq!((out.drops(UNRESOLVED), asked), (0, Some(2 * SEC)));
    let (got, out, asked) = r.timer(2 * SEC);
    assert!(got.is_empty());
    assert_eq!(
        (out.drops(UNRESOLVED), asked),
        (1, None),
        "dropped and counted at its timeout"
    );
}
