//! Field rewrites and their checksums, per family and transport.

use super::*;

#[test]
fn sets_mac_addresses() {
    let list = [
        ("eth_src", Value::Mac(NEW_MAC_SRC)),
        ("eth_dst", Value::Mac(NEW_MAC_DST)),
    ];
    check(&list, |f| {
        (f.mac_src, f.mac_dst) = (NEW_MAC_SRC, NEW_MAC_DST)
    });
    check(&list[..1], |f| f.mac_src = NEW_MAC_SRC);
    check(&list[1..], |f| f.mac_dst = NEW_MAC_DST);
}

#[test]
fn sets_addresses_of_both_families() {
    let list = [
        ("ip_src", ip("192.0.2.77")),
        ("ip_dst", ip("198.51.100.254")),
        ("ip6_src", ip("2001:db8::abcd:7")),
        ("ip6_dst", ip("fd00::fffe")),
    ];
    check(&list, |f| {
        (f.src4, f.dst4, f.src6, f.dst6) = (NEW_SRC4, NEW_DST4, NEW_SRC6, NEW_DST6)
    });
    check(&list[..1], |f| f.src4 = NEW_SRC4);
    check(&list[1..2], |f| f.dst4 = NEW_DST4);
    check(&list[2..3], |f| f.src6 = NEW_SRC6);
    check(&list[3..], |f| f.dst6 = NEW_DST6);
    // An IPv6 address in `ip_src`/`ip_dst` rewrites IPv6 packets only.
    check(&[("ip_src", ip("2001:db8::abcd:7"))], |f| f.src6 = NEW_SRC6);
    check(&[("ip_dst", ip("fd00::fffe"))], |f| f.dst6 = NEW_DST6);
}

#[test]
fn other_family_passes_unchanged_and_is_counted() {
    let mut el = element(&[("ip_src", ip("192.0.2.77"))]);
    let frames: Vec<_> = bases().iter().map(build).collect();
    let (sent, _) = run(&mut *el, &frames);
    for (f, (input, output)) in bases().iter().zip(frames.iter().zip(&sent)) {
        assert_eq!(f.v6, input == output, "{f:?}");
    }
    assert_eq!((stat(&*el, "rewritten"), stat(&*el, "skipped")), (4, 4));
}

#[test]
fn sets_ports() {
    let list = [
        ("src_port", Value::Int(1234)),
        ("dst_port", Value::Int(8080)),
    ];
    check(&list, |f| (f.sport, f.dport) = (1234, 8080));
    check(&list[..1], |f| f.sport = 1234);
    check(&list[1..], |f| f.dport = 8080);
}

#[test]
fn sets_dscp_and_keeps_ecn() {
    check(&[("dscp", Value::Int(46))], |f| f.dscp = 46);
    check(&[("dscp", Value::Int(0))], |f| f.dscp = 0);
    check(&[("dscp", Value::Int(63))], |f| f.dscp = 63);
}

#[test]
fn decrements_ttl_and_hop_limit() {
    check(&[("dec_ttl", Value::Bool(true))], |f| f.ttl = 63);
}

#[test]
fn applies_everything_at_once() {
    let list = [
        ("eth_src", Value::Mac(NEW_MAC_SRC)),
        ("eth_dst", Value::Mac(NEW_MAC_DST)),
        ("ip_src", ip("192.0.2.77")),
        ("ip_dst", ip("198.51.100.254")),
        ("ip6_src", ip("2001:db8::abcd:7")),
        ("ip6_dst", ip("fd00::fffe")),
        ("src_port", Value::Int(1)),
        ("dst_port", Value::Int(65535)),
        ("dscp", Value::Int(34)),
        ("dec_ttl", Value::Bool(true)),
        ("vlan_set", Value::Int(300)),
    ];
    check(&list, |f| {
        (f.mac_src, f.mac_dst) = (NEW_MAC_SRC, NEW_MAC_DST);
        (f.src4, f.dst4, f.src6, f.dst6) = (NEW_SRC4, NEW_DST4, NEW_SRC6, NEW_DST6);
        (f.sport, f.dport, f.dscp, f.ttl) = (1, 65535, 34, 63);
        f.vlan = f.vlan.map(|(_, pcp)| (300, pcp));
    });
}

#[test]
fn absent_udp_checksum_stays_absent() {
    for vlan in [false, true] {
        let f = kit(&frame(vlan, false, false)).no_udp_csum().build();
        let list = [("ip_src", ip("192.0.2.77")), ("src_port", Value::Int(7))];
        let got = rewrite(&list, &f).unwrap();
        let p = PacketHeaders::from_ethernet_slice(&got).unwrap();
        match (p.net, p.transport) {
            (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Udp(u))) => {
                assert_eq!(ip.source, NEW_SRC4);
                assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                assert_eq!((u.source_port, u.checksum), (7, 0));
            }
            other => panic!("not UDP/IPv4: {other:?}"),
        }
    }
}

#[test]
fn udp_over_ipv6_never_sends_a_zero_checksum() {
    let base = frame(false, true, false);
    // The destination port whose checksum computes to 0 (sent as 0xffff).
    let port = (0..=u16::MAX)
        .find(|&dport| build(&Frame { dport, ..base })[14 + 40 + 6..14 + 40 + 8] == [0xff, 0xff])
        .expect("some port sums to zero");
    let got = rewrite(&[("dst_port", Value::Int(port as i64))], &build(&base)).unwrap();
    assert_eq!(&got[14 + 40 + 6..14 + 40 + 8], &[0xff, 0xff]);
    assert_checksums(&got);
    let mut expected = base;
    expected.dport = port;
    assert_eq!(got, build(&expected));
}

#[test]
fn expired_ttl_is_dropped_with_a_reason() {
    let mut el = element(&[("dec_ttl", Value::Bool(true))]);
    let mut frames = Vec::new();
    for f in bases() {
        for ttl in [0, 1, 2] {
            frames.push(build(&Frame { ttl, ..f }));
        }
    }
    let (sent, out) = run(&mut *el, &frames);
    assert_eq!(out.drops(TTL_EXPIRED), 16);
    assert_eq!(sent.len(), 8);
    for f in &sent {
        assert_checksums(f);
        let p = PacketHeaders::from_ethernet_slice(f).unwrap();
        match p.net {
            Some(NetHeaders::Ipv4(ip, _)) => assert_eq!(ip.time_to_live, 1),
            Some(NetHeaders::Ipv6(ip, _)) => assert_eq!(ip.hop_limit, 1),
            other => panic!("not IP: {other:?}"),
        }
    }
}

#[test]
fn icmpv6_checksum_follows_the_addresses() {
    for vlan in [false, true] {
        let f = frame(vlan, true, false);
        let input = kit_with(&f, |ip| Kit::echo(ip, 7, 9)).build();
        let list = [
            ("ip_src", ip("2001:db8::abcd:7")),
            ("ip_dst", ip("fd00::fffe")),
            ("src_port", Value::Int(3)),
        ];
        let got = rewrite(&list, &input).unwrap();
        let l3 = if vlan { 18 } else { 14 };
        let icmp = Icmpv6Slice::from_slice(&got[l3 + 40..]).unwrap();
        assert!(icmp.is_checksum_valid(NEW_SRC6, NEW_DST6));
        assert_eq!(
            &got[l3 + 40 + 4..],
            &input[l3 + 40 + 4..],
            "no ports in ICMPv6"
        );
    }
}

/// An IPv6/TCP frame with a Routing header (type 0 layout, one address)
/// with `segments_left` segments left.
fn routed(segments_left: u8) -> Vec<u8> {
    let mut data = vec![0u8, segments_left, 0, 0, 0, 0];
    data.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
    kit(&frame(false, true, true)).routing(&data).build()
}

#[test]
fn routing_header_with_segments_left_keeps_the_final_destination_checksum() {
    let list = [("ip_dst", ip("fd00::fffe"))];
    // Segments left: the pseudo-header holds the final destination from the
    // Routing header, which does not change, so the TCP checksum must not.
    let f = routed(1);
    let got = rewrite(&list, &f).unwrap();
    let csum = 14 + 40 + 24 + 16;
    assert_eq!(&got[14 + 24..14 + 40], &NEW_DST6);
    assert_eq!(&got[csum..csum + 2], &f[csum..csum + 2]);
    // No segments left: the destination field is the final destination.
    let got = rewrite(&list, &routed(0)).unwrap();
    assert_eq!(&got[14 + 24..14 + 40], &NEW_DST6);
    assert_checksums(&got);
}
