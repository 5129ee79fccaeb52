//! Golden test: the shipped configs/gateway.toml, its two ports replaced by
//! pcap ports, fed a two-sided conversation written here and replayed in
//! timestamp order across both sides (`clock = "packet"`); every frame it
//! sends is compared byte for byte with a frame built here with
//! testkit::frame (etherparse), never with the elements' own code.
//!
//! The conversation, in order (LAN host 192.168.1.2 / 2001:db8:1::2, WAN
//! next hop 203.0.113.1 / fe80::ff:1, a server behind it):
//!
//! 1. the host asks for the router's MAC (ARP): answered;
//! 2. a UDP datagram out: the router asks for the WAN next hop (ARP) ...
//! 3. ... which answers: the datagram leaves translated (source 203.0.113.2
//!    and the mapped port, TTL - 1, checksums right);
//! 4. the server's reply comes back translated to the host;
//! 5. TTL 1: ICMP time exceeded from 192.168.1.1 quoting the datagram;
//! 6. to private space (10.0.0.0/8): ICMP destination unreachable;
//! 7. 1,600 bytes with DF: ICMP fragmentation needed, MTU 1500;
//! 8. unsolicited UDP from the WAN: dropped, counted `no-mapping`;
//! 9. TCP to the port forward 203.0.113.2:8080: reaches 192.168.1.2:8080;
//! 10. the host solicits the router's IPv6 address: advertised;
//! 11. IPv6 UDP out: the router solicits the next hop ...
//! 12. ... which advertises itself: the datagram leaves, hop limit - 1;
//! 13. unsolicited IPv6 from the WAN: dropped by the firewall;
//! 14. ping to 192.168.1.1: echo reply;
//! 15. IPv6 from the WAN to a prefix with no route: ICMPv6 destination
//!     unreachable from 2001:db8:ff::2, back out of the WAN;
//! 16. hairpinning: the host opens TCP to the port forward by the public
//!     address, 203.0.113.2:8080; it comes back to 192.168.1.2:8080 from
//!     203.0.113.2 and the host's mapped port, TTL - 1 (once), with the
//!     router's and the host's MACs ...
//! 17. ... and the service's answer to that public endpoint comes back
//!     from 203.0.113.2:8080 to the host's own port;
//! 18. UDP from the host to a port of 203.0.113.2 with no mapping: not
//!     sent anywhere, counted `no-mapping`.

use std::net::Ipv6Addr;

use hpio_nf::config::Config;
use hpio_nf::port::PortRegistry;
use hpio_nf::runtime::Report;
use hpio_nf_gateway::{registry, CONFIG};
use testkit::frame::{Frame, Ip, ARP_REPLY, ARP_REQUEST, TCP_ACK, TCP_SYN};
use testkit::pcap;

const LAN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const WAN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
const HOP_MAC: [u8; 6] = [2, 0, 0, 0, 0xff, 1];
const LAN_V4: [u8; 4] = [192, 168, 1, 1];
const WAN_V4: [u8; 4] = [203, 0, 113, 2];
const HOST_V4: [u8; 4] = [192, 168, 1, 2];
const HOP_V4: [u8; 4] = [203, 0, 113, 1];
const SERVER_V4: [u8; 4] = [198, 51, 100, 10];

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Lan,
    Wan,
}

/// The solicited-node multicast address of `a` (RFC 4291 2.7.1) and its
/// Ethernet address (RFC 2464 7).
fn solicited(a: [u8; 16]) -> ([u8; 16], [u8; 6]) {
    let mut m = v6("ff02::1:ff00:0");
    m[13..].copy_from_slice(&a[13..]);
    (m, [0x33, 0x33, m[12], m[13], m[14], m[15]])
}

/// A neighbour solicitation for `target` from `src` at `mac`, with the
/// source link-layer address option.
fn ns(src: [u8; 16], mac: [u8; 6], target: [u8; 16]) -> Vec<u8> {
    let (dst, dst_mac) = solicited(target);
    let mut body = target.to_vec();
    body.extend([1, 1]);
    body.extend(mac);
    Frame::icmp(Ip::v6(src, dst), 135)
        .ttl(255)
        .macs(mac, dst_mac)
        .payload(&body)
        .build()
}

/// A neighbour advertisement of `target` at `mac` with `flags`, from `src`
/// to `dst` at `dst_mac`, with the target link-layer address option.
fn na(src: [u8; 16], dst: [u8; 16], dst_mac: [u8; 6], mac: [u8; 6], flags: u8) -> Vec<u8> {
    let mut body = src.to_vec();
    body.extend([2, 1]);
    body.extend(mac);
    Frame::icmp(Ip::v6(src, dst), 136)
        .rest([flags, 0, 0, 0])
        .ttl(255)
        .macs(mac, dst_mac)
        .payload(&body)
        .build()
}

/// An ICMP error from the router's LAN address to the host, quoting `quote`
/// (TOS 0xc0, internetwork control, TTL 64, DF clear: any router on the
/// way may fragment it).
fn icmp_error(kind: u8, code: u8, rest: [u8; 4], quote: &[u8]) -> Vec<u8> {
    Frame::icmp(Ip::v4(LAN_V4, HOST_V4), kind)
        .code(code)
        .rest(rest)
        .tos(48, 0)
        .ttl(64)
        .dont_fragment(false)
        .macs(LAN_MAC, HOST_MAC)
        .payload(quote)
        .build()
}

/// What the gateway sent, and its report.
struct Outcome {
    lan: Vec<Vec<u8>>,
    wan: Vec<Vec<u8>>,
    report: Report,
}

impl Outcome {
    /// Packets `element` dropped as `reason`.
    fn drops(&self, element: &str, reason: &str) -> u64 {
        let e = self.report.elements.iter().find(|e| e.name == element);
        let e = e.unwrap_or_else(|| panic!("no element {element}"));
        e.counters
            .drops
            .iter()
            .find(|(k, _)| k == reason)
            .map_or(0, |d| d.1)
    }
}

/// Runs configs/gateway.toml over `events` (side, frame), one millisecond
/// apart, with pcap ports.
fn run(events: &[(Side, Vec<u8>)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);
    for (side, name) in [(Side::Lan, "lan-in.pcap"), (Side::Wan, "wan-in.pcap")] {
        let frames: Vec<pcap::Frame> = (1u64..)
            .zip(events)
            .filter(|(_, (s, _))| *s == side)
            .map(|(ms, (_, f))| {
                pcap::Frame::new(1_700_000_000_000_000_000 + ms * 1_000_000, f.clone())
            })
            .collect();
        pcap::write(&path(name), &frames);
    }
    let port = |side: &str| {
        format!(
            "ports.{side}={{ driver = \"pcap\", input = '{}', output = '{}' }}",
            path(&format!("{side}-in.pcap")).display(),
            path(&format!("{side}-out.pcap")).display()
        )
    };
    let overrides = [
        port("lan"),
        port("wan"),
        "runtime.clock=\"packet\"".to_string(),
        "runtime.burst=1".to_string(),
    ];
    let text = std::fs::read_to_string(testkit::workspace_root().join(CONFIG)).unwrap();
    let config = Config::parse_str(
        &text,
        CONFIG,
        &registry(),
        &PortRegistry::builtin(),
        &overrides,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report = config.run_to_end().unwrap_or_else(|e| panic!("{e}"));
    Outcome {
        lan: pcap::read_data(&path("lan-out.pcap")),
        wan: pcap::read_data(&path("wan-out.pcap")),
        report,
    }
}

fn check(got: &[Vec<u8>], want: &[(&str, Vec<u8>)], side: &str) {
    for (i, (what, w)) in want.iter().enumerate() {
        let g = got
            .get(i)
            .unwrap_or_else(|| panic!("{side}: no frame {i} ({what})"));
        assert_eq!(g, w, "{side}: frame {i}: {what}");
    }
    assert_eq!(got.len(), want.len(), "{side}: frames sent");
}

#[test]
fn the_gateway_routes_translates_answers_and_drops_as_built() {
    use Side::*;
    let (host6, server6) = (v6("2001:db8:1::2"), v6("2001:db8:100::10"));
    let (lan6, wan_ll, hop_ll) = (v6("2001:db8:1::1"), v6("fe80::2"), v6("fe80::ff:1"));
    let from_host = |ip: Ip| (ip, HOST_MAC, LAN_MAC);
    let udp_out = |dst: [u8; 4], ttl: u8| {
        let (ip, s, d) = from_host(Ip::v4(HOST_V4, dst));
        Frame::udp(ip, 40000, 53)
            .ttl(ttl)
            .macs(s, d)
            .payload(b"query")
    };
    let big = udp_out(SERVER_V4, 64)
        .dont_fragment(true)
        .payload(&[7; 1600 - 28]);
    let private = udp_out([10, 1, 2, 3], 64);
    let expiring = udp_out(SERVER_V4, 1);
    let v6_out = Frame::udp(Ip::v6(host6, server6), 40001, 53)
        .macs(HOST_MAC, LAN_MAC)
        .payload(b"query6");
    let lost = Frame::udp(Ip::v6(server6, v6("2001:db8:2::1")), 53, 9)
        .macs(HOP_MAC, WAN_MAC)
        .payload(b"lost");
    let ping = Frame::echo(Ip::v4(HOST_V4, LAN_V4), 77, 1)
        .macs(HOST_MAC, LAN_MAC)
        .payload(b"ping");

    let events = vec![
        (
            Lan,
            Frame::arp(ARP_REQUEST, (HOST_MAC, HOST_V4), ([0; 6], LAN_V4))
                .pad(60)
                .build(),
        ),
        (Lan, udp_out(SERVER_V4, 64).build()),
        (
            Wan,
            Frame::arp(ARP_REPLY, (HOP_MAC, HOP_V4), (WAN_MAC, WAN_V4))
                .pad(60)
                .build(),
        ),
        (
            Wan,
            Frame::udp(Ip::v4(SERVER_V4, WAN_V4), 53, 40000)
                .ttl(50)
                .macs(HOP_MAC, WAN_MAC)
                .payload(b"answer")
                .build(),
        ),
        (Lan, expiring.build()),
        (Lan, private.build()),
        (Lan, big.build()),
        (
            Wan,
            Frame::udp(Ip::v4(SERVER_V4, WAN_V4), 53, 5000)
                .macs(HOP_MAC, WAN_MAC)
                .build(),
        ),
        (
            Wan,
            Frame::tcp(Ip::v4(SERVER_V4, WAN_V4), 50000, 8080, TCP_SYN)
                .ttl(50)
                .macs(HOP_MAC, WAN_MAC)
                .build(),
        ),
        (Lan, ns(host6, HOST_MAC, lan6)),
        (Lan, v6_out.build()),
        (Wan, na(hop_ll, wan_ll, WAN_MAC, HOP_MAC, 0x60)),
        (
            Wan,
            Frame::udp(Ip::v6(server6, host6), 53, 9999)
                .macs(HOP_MAC, WAN_MAC)
                .build(),
        ),
        (Lan, ping.build()),
        (Wan, lost.build()),
        (
            Lan,
            Frame::tcp(Ip::v4(HOST_V4, WAN_V4), 40002, 8080, TCP_SYN)
                .macs(HOST_MAC, LAN_MAC)
                .build(),
        ),
        (
            Lan,
            Frame::tcp(Ip::v4(HOST_V4, WAN_V4), 8080, 40002, TCP_SYN | TCP_ACK)
                .macs(HOST_MAC, LAN_MAC)
                .build(),
        ),
        (
            Lan,
            Frame::udp(Ip::v4(HOST_V4, WAN_V4), 40003, 9)
                .macs(HOST_MAC, LAN_MAC)
                .build(),
        ),
    ];
    let o = run(&events);

    let (_, sn_mac) = solicited(hop_ll);
    let wan_want = [
        (
            "ARP request for the next hop",
            Frame::arp(ARP_REQUEST, (WAN_MAC, WAN_V4), ([0; 6], HOP_V4))
                .pad(60)
                .build(),
        ),
        (
            "the datagram translated, once the next hop answered",
            Frame::udp(Ip::v4(WAN_V4, SERVER_V4), 40000, 53)
                .ttl(63)
                .macs(WAN_MAC, HOP_MAC)
                .payload(b"query")
                .build(),
        ),
        ("neighbour solicitation for the next hop", {
            let f = ns(wan_ll, WAN_MAC, hop_ll);
            assert_eq!(&f[..6], &sn_mac);
            f
        }),
        (
            "the IPv6 datagram, hop limit 63",
            v6_out.clone().ttl(63).macs(WAN_MAC, HOP_MAC).build(),
        ),
        (
            "ICMPv6 unreachable (no route), quoting the packet",
            Frame::icmp(Ip::v6(v6("2001:db8:ff::2"), server6), 1)
                .ttl(64)
                .macs(WAN_MAC, HOP_MAC)
                .payload(&lost.ip_bytes())
                .build(),
        ),
    ];
    let lan_want = [
        (
            "ARP reply",
            Frame::arp(ARP_REPLY, (LAN_MAC, LAN_V4), (HOST_MAC, HOST_V4))
                .pad(60)
                .build(),
        ),
        (
            "the reply translated back",
            Frame::udp(Ip::v4(SERVER_V4, HOST_V4), 53, 40000)
                .ttl(49)
                .macs(LAN_MAC, HOST_MAC)
                .payload(b"answer")
                .build(),
        ),
        (
            "time exceeded, quoting the datagram as it came",
            icmp_error(11, 0, [0; 4], &expiring.ip_bytes()),
        ),
        (
            "destination unreachable for private space",
            icmp_error(3, 0, [0; 4], &private.ip_bytes()),
        ),
        (
            "fragmentation needed, MTU 1500, quoting 548 bytes (576 in all)",
            icmp_error(3, 4, [0, 0, 0x05, 0xdc], &big.ip_bytes()[..548]),
        ),
        (
            "the port forward to 192.168.1.2:8080",
            Frame::tcp(Ip::v4(SERVER_V4, HOST_V4), 50000, 8080, TCP_SYN)
                .ttl(49)
                .macs(LAN_MAC, HOST_MAC)
                .build(),
        ),
        (
            "neighbour advertisement (router, solicited, override)",
            na(lan6, host6, HOST_MAC, LAN_MAC, 0xe0),
        ),
        (
            "echo reply from the router",
            Frame::echo_reply(Ip::v4(LAN_V4, HOST_V4), 77, 1)
                .macs(LAN_MAC, HOST_MAC)
                .payload(b"ping")
                .build(),
        ),
        (
            "hairpinned: the SYN to 203.0.113.2:8080 reaches the service",
            Frame::tcp(Ip::v4(WAN_V4, HOST_V4), 40002, 8080, TCP_SYN)
                .ttl(63)
                .macs(LAN_MAC, HOST_MAC)
                .build(),
        ),
        (
            "hairpinned: the service's answer, from the public endpoint",
            Frame::tcp(Ip::v4(WAN_V4, HOST_V4), 8080, 40002, TCP_SYN | TCP_ACK)
                .ttl(63)
                .macs(LAN_MAC, HOST_MAC)
                .build(),
        ),
    ];
    check(&o.wan, &wan_want, "wan");
    check(&o.lan, &lan_want, "lan");
    assert_eq!(
        o.drops("nat", "no-mapping"),
        2,
        "unsolicited IPv4, UDP from the LAN to the WAN address"
    );
    assert_eq!(o.drops("fw", "denied"), 1, "unsolicited IPv6");
}

/// The router's own addresses answer like a host with no open ports: UDP
/// gets port unreachable and TCP a reset, from the address they were sent
/// to, on the side they came from; a reset, a link-layer broadcast and
/// IPv4 to the NAT's address get nothing.
#[test]
fn the_router_refuses_what_is_sent_to_it_as_a_host_does() {
    use testkit::frame::{TCP_RST, TCP_SYN};
    use Side::*;
    let (host6, lan6, wan6) = (
        v6("2001:db8:1::2"),
        v6("2001:db8:1::1"),
        v6("2001:db8:ff::2"),
    );
    let server6 = v6("2001:db8:100::10");
    let probe = Frame::udp(Ip::v4(HOST_V4, LAN_V4), 40000, 33434)
        .ttl(64)
        .macs(HOST_MAC, LAN_MAC)
        .payload(&[0x40; 32]);
    let probe6 = Frame::udp(Ip::v6(host6, wan6), 40001, 33435)
        .macs(HOST_MAC, LAN_MAC)
        .payload(b"to the WAN address, from the LAN");
    let from_wan = Frame::udp(Ip::v6(server6, wan6), 40002, 33436)
        .macs(HOP_MAC, WAN_MAC)
        .payload(b"from outside");
    let events = vec![
        (Lan, probe.build()),
        (
            Lan,
            Frame::tcp(Ip::v4(HOST_V4, LAN_V4), 40010, 22, TCP_SYN)
                .macs(HOST_MAC, LAN_MAC)
                .build(),
        ),
        (
            Lan,
            Frame::tcp(Ip::v6(host6, lan6), 40011, 22, TCP_SYN)
                .seq(1000, 0, 1000)
                .macs(HOST_MAC, LAN_MAC)
                .build(),
        ),
        (Lan, probe6.build()),
        (Wan, from_wan.build()),
        // No answer: to a reset, to a link-layer broadcast.
        (
            Lan,
            Frame::tcp(Ip::v4(HOST_V4, LAN_V4), 40010, 22, TCP_RST)
                .macs(HOST_MAC, LAN_MAC)
                .build(),
        ),
        (
            Lan,
            Frame::udp(Ip::v4(HOST_V4, LAN_V4), 40000, 33434)
                .macs(HOST_MAC, [0xff; 6])
                .build(),
        ),
        // IPv4 to the WAN address from outside is the NAT's: no mapping.
        (
            Wan,
            Frame::udp(Ip::v4(SERVER_V4, WAN_V4), 40003, 33437)
                .macs(HOP_MAC, WAN_MAC)
                .build(),
        ),
    ];
    let o = run(&events);
    let rst = |ip: Ip, sport: u16, ack: u32| {
        Frame::tcp(ip, 22, sport, TCP_RST | TCP_ACK)
            .seq(0, ack, 0)
            .ttl(64)
            .macs(LAN_MAC, HOST_MAC)
            .build()
    };
    let lan_want = [
        (
            "port unreachable from 192.168.1.1, the whole datagram quoted",
            icmp_error(3, 3, [0; 4], &probe.ip_bytes()),
        ),
        (
            "a reset for the SYN to 192.168.1.1:22",
            rst(Ip::v4(LAN_V4, HOST_V4), 40010, 2),
        ),
        (
            "a reset for the SYN to [2001:db8:1::1]:22",
            rst(Ip::v6(lan6, host6), 40011, 1001),
        ),
        (
            "ICMPv6 port unreachable from the WAN address, out of the LAN",
            Frame::icmp(Ip::v6(wan6, host6), 1)
                .code(4)
                .ttl(64)
                .macs(LAN_MAC, HOST_MAC)
                .payload(&probe6.ip_bytes())
                .build(),
        ),
    ];
    let wan_want = [(
        "ICMPv6 port unreachable from the WAN address, back out of the WAN",
        Frame::icmp(Ip::v6(wan6, server6), 1)
            .code(4)
            .ttl(64)
            .macs(WAN_MAC, HOP_MAC)
            .payload(&from_wan.ip_bytes())
            .build(),
    )];
    check(&o.lan, &lan_want, "lan");
    check(&o.wan, &wan_want, "wan");
    assert_eq!(
        o.drops("icmp_lan", "not-allowed"),
        2,
        "the reset, the broadcast"
    );
    assert_eq!(o.drops("nat", "no-mapping"), 1);
}
