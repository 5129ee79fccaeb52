//! Golden tests: shipped configs run by the `hpio-nf` binary over pcap
//! inputs; their pcap outputs are compared packet by packet with frames the
//! test builds itself with etherparse (never with the code under test).

mod common;

use common::{eth_ipv4_tcp, run_ok};
use testkit::frame::{Frame, Ip, ARP_REQUEST, TCP_SYN};
use testkit::pcap;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

fn udp4(src: [u8; 4], dst: [u8; 4], ttl: u8, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    Frame::udp(Ip::v4(src, dst), sport, dport)
        .macs(A, B)
        .ttl(ttl)
        .payload(payload)
        .build()
}

fn icmp_echo(request: bool, dst: [u8; 4]) -> Vec<u8> {
    Frame::echo(Ip::v4([10, 9, 9, 9], dst), 7, 1)
        .reply(!request)
        .macs(A, B)
        .payload(if request { b"ping" } else { b"pong" })
        .build()
}

fn arp_request() -> Vec<u8> {
    Frame::arp(ARP_REQUEST, (A, [10, 0, 0, 1]), ([0; 6], [10, 0, 0, 2]))
        .pad(60)
        .build()
}

fn ipv6_udp(vlan: Option<u16>) -> Vec<u8> {
    let mut f = Frame::udp(Ip::v6([0x20; 16], [0x30; 16]), 5000, 6000)
        .macs(A, B)
        .payload(b"v6 payload");
    if let Some(id) = vlan {
        f = f.vlan(id);
    }
    f.build()
}

#[test]
fn filter_passes_only_the_allowed_traffic() {
    let allowed_http = eth_ipv4_tcp(A, B, [10, 1, 2, 3], [10, 0, 0, 80], 64, 33000, 80, true);
    let allowed_https = eth_ipv4_tcp(A, B, [10, 1, 2, 3], [10, 7, 0, 1], 64, 33001, 443, false);
    let wrong_port = eth_ipv4_tcp(A, B, [10, 1, 2, 3], [10, 0, 0, 80], 64, 33002, 22, true);
    let wrong_net = eth_ipv4_tcp(A, B, [10, 1, 2, 3], [11, 0, 0, 80], 64, 33003, 80, true);
    let udp_80 = udp4([10, 1, 2, 3], [10, 0, 0, 80], 64, 33004, 80, b"x");
    let mut truncated = allowed_http.clone();
    truncated.truncate(14 + 20 + 10); // TCP header cut short: malformed, dropped
    let input = vec![
        allowed_http.clone(),
        wrong_port,
        arp_request(),
        icmp_echo(true, [10, 0, 0, 1]),
        icmp_echo(false, [10, 0, 0, 1]),
        wrong_net,
        udp_80,
        truncated,
        ipv6_udp(None),
        allowed_https.clone(),
    ];
    let expected = vec![
        allowed_http,
        arp_request(),
        icmp_echo(true, [10, 0, 0, 1]),
        allowed_https,
    ];
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    pcap::write_data(&inp, &input, 1_000_000_000, 10_000);
    let out = dir.path().join("out.pcap");
    let report = run_ok(
        "configs/filter.toml",
        &[
            format!("ports.in.input={}", inp.display()),
            format!("ports.out.output={}", out.display()),
        ],
    );
    assert_eq!(pcap::read_data(&out), expected);
    let acl = common::element(&report, "acl");
    assert_eq!(acl["packets_in"], 10);
    assert_eq!(
        acl["packets_out"], 9,
        "the rest goes to output 1 -> discard"
    );
    assert_eq!(
        common::drop_count(acl, "malformed"),
        1,
        "the cut TCP header"
    );
    let discard = common::element(&report, "discard");
    assert_eq!(discard["packets_in"], 5);
}

#[test]
fn nat_rewrite_matches_independently_built_frames() {
    let tcp_in = eth_ipv4_tcp(A, B, [10, 1, 2, 3], [198, 51, 100, 7], 64, 33000, 80, true);
    let udp_in = udp4([10, 1, 2, 4], [198, 51, 100, 8], 17, 5353, 53, b"query");
    let expiring = udp4([10, 1, 2, 5], [198, 51, 100, 9], 1, 5000, 53, b"dies");
    let v6 = ipv6_udp(None);
    let input = vec![tcp_in, expiring, udp_in, v6.clone(), arp_request()];

    let gw_mac = [0x02, 0, 0, 0, 0x01, 0x01];
    let next_hop = [0x02, 0, 0, 0, 0x01, 0xfe];
    let tcp_out = Frame::tcp(
        Ip::v4([192, 0, 2, 1], [198, 51, 100, 7]),
        40000,
        80,
        TCP_SYN,
    )
    .macs(gw_mac, next_hop)
    .ttl(63)
    .seq(1000, 0, 64240)
    .payload(b"hello")
    .build();
    let udp_out = Frame::udp(Ip::v4([192, 0, 2, 1], [198, 51, 100, 8]), 40000, 53)
        .macs(gw_mac, next_hop)
        .ttl(16)
        .payload(b"query")
        .build();
    let expected = vec![tcp_out, udp_out, v6, arp_request()];

    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    pcap::write_data(&inp, &input, 1_000_000_000, 10_000);
    let out = dir.path().join("out.pcap");
    let report = run_ok(
        "configs/nat-rewrite.toml",
        &[
            format!("ports.in.input={}", inp.display()),
            format!("ports.out.output={}", out.display()),
        ],
    );
    assert_eq!(pcap::read_data(&out), expected);
    let nat = common::element(&report, "nat");
    assert_eq!(common::drop_count(nat, "ttl-expired"), 1);
}

#[test]
fn vlan_trunk_splits_and_untags() {
    let v10_out = udp4([10, 0, 10, 1], [10, 0, 10, 2], 64, 1, 2, b"ten");
    let v10 = Frame::udp(Ip::v4([10, 0, 10, 1], [10, 0, 10, 2]), 1, 2)
        .macs(A, B)
        .vlan(10)
        .payload(b"ten")
        .build();
    let v20 = ipv6_udp(Some(20));
    let v30 = ipv6_udp(Some(30));
    let untagged = udp4([10, 0, 0, 1], [10, 0, 0, 2], 64, 1, 2, b"none");
    let input = vec![v10, v20, v30, untagged, arp_request()];

    let v20_out = ipv6_udp(None);

    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("trunk.pcap");
    pcap::write_data(&inp, &input, 1_000_000_000, 10_000);
    let (o10, o20) = (dir.path().join("10.pcap"), dir.path().join("20.pcap"));
    let report = run_ok(
        "configs/vlan-trunk.toml",
        &[
            format!("ports.trunk.input={}", inp.display()),
            format!("ports.access10.output={}", o10.display()),
            format!("ports.access20.output={}", o20.display()),
        ],
    );
    assert_eq!(pcap::read_data(&o10), vec![v10_out]);
    assert_eq!(pcap::read_data(&o20), vec![v20_out]);
    assert_eq!(common::element(&report, "discard")["packets_in"], 3);
}

#[test]
fn mirror_reflects_and_taps() {
    let tcp = eth_ipv4_tcp(A, B, [10, 1, 2, 3], [10, 3, 2, 1], 64, 1111, 2222, false);
    let udp = udp4([10, 0, 0, 1], [10, 0, 0, 2], 64, 7, 9, b"echo");
    let input = vec![tcp.clone(), udp.clone()];
    let tcp_back = eth_ipv4_tcp(B, A, [10, 3, 2, 1], [10, 1, 2, 3], 64, 2222, 1111, false);
    let udp_back = Frame::udp(Ip::v4([10, 0, 0, 2], [10, 0, 0, 1]), 9, 7)
        .macs(B, A)
        .payload(b"echo")
        .build();

    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    pcap::write_data(&inp, &input, 1_000_000_000, 10_000);
    let (refl, tap) = (dir.path().join("r.pcap"), dir.path().join("t.pcap"));
    run_ok(
        "configs/mirror.toml",
        &[
            format!("ports.in.input={}", inp.display()),
            format!("ports.reflect.output={}", refl.display()),
            format!("ports.tap.output={}", tap.display()),
        ],
    );
    assert_eq!(pcap::read_data(&tap), input);
    assert_eq!(pcap::read_data(&refl), vec![tcp_back, udp_back]);
}
