//! Short, truncated, malformed and non-IP frames.

use super::*;

#[test]
fn short_frames_are_dropped_as_malformed() {
    for list in [
        vec![("eth_src", Value::Mac(NEW_MAC_SRC))],
        vec![],
        vec![("dec_ttl", Value::Bool(true))],
        vec![("vlan_push", Value::Int(5))],
    ] {
        let mut el = element(&list);
        let good = build(&frame(false, false, false));
        let mut frames: Vec<_> = (0..14).map(|n| good[..n].to_vec()).collect();
        frames.insert(5, good.clone());
        frames.push(good.clone());
        let (sent, out) = run(&mut *el, &frames);
        assert_eq!(out.drops(MALFORMED), 14, "{list:?}");
        assert_eq!(sent.len(), 2);
        if !list.is_empty() {
            assert_eq!(stat(&*el, "rewritten"), 2);
        }
    }
}

#[test]
fn mac_only_batch_goes_through_whole() {
    let mut el = element(&[("eth_dst", Value::Mac(NEW_MAC_DST))]);
    let frames: Vec<_> = (0..100)
        .map(|i| {
            build(&Frame {
                sport: i,
                ..frame(i % 2 == 0, false, false)
            })
        })
        .collect();
    let (sent, _) = run(&mut *el, &frames);
    assert_eq!(sent.len(), 100);
    for (got, f) in sent.iter().zip(&frames) {
        assert_eq!(&got[..6], &NEW_MAC_DST);
        assert_eq!(&got[6..], &f[6..]);
    }
    assert_eq!(stat(&*el, "rewritten"), 100);
}

#[test]
fn malformed_ip_is_dropped_only_when_an_ip_rewrite_needs_it() {
    let mut bad = build(&frame(true, false, true));
    bad[18] = 0x44; // IHL of 16 bytes
    assert_eq!(
        rewrite(&[("ip_src", ip("192.0.2.77"))], &bad),
        Err("malformed")
    );
    assert_eq!(
        rewrite(&[("dec_ttl", Value::Bool(true))], &bad),
        Err("malformed")
    );
    // An IPv6-only rewrite leaves the (broken) IPv4 packet alone.
    assert_eq!(
        rewrite(&[("ip_src", ip("2001:db8::1"))], &bad),
        Ok(bad.clone())
    );
    // Ethernet-level rewrites do not look at the IP header.
    let got = rewrite(
        &[
            ("eth_src", Value::Mac(NEW_MAC_SRC)),
            ("vlan_set", Value::Int(9)),
        ],
        &bad,
    )
    .unwrap();
    assert_eq!(&got[6..12], &NEW_MAC_SRC);
    assert_eq!(&got[16..], &bad[16..]);
}

#[test]
fn truncated_transport_header_is_dropped_when_needed() {
    // Cut the TCP header short and shrink the IP lengths to match, so only L4 is cut.
    let f = kit(&frame(false, false, true))
        .ip_len(30)
        .cut(14 + 20 + 10)
        .build();
    assert_eq!(
        rewrite(&[("src_port", Value::Int(1))], &f),
        Err("malformed")
    );
    assert_eq!(
        rewrite(&[("ip_dst", ip("192.0.2.1"))], &f),
        Err("malformed")
    );
    // DSCP needs no transport header.
    let got = rewrite(&[("dscp", Value::Int(8))], &f).unwrap();
    let hdr = Ipv4Header::from_slice(&got[14..]).unwrap().0;
    assert_eq!(
        (hdr.dscp.value(), hdr.header_checksum),
        (8, hdr.calc_header_checksum())
    );
}

#[test]
fn non_ip_frames_pass_ip_rewrites_unchanged() {
    let arp = Kit::arp(ARP_REQUEST, (MAC_1, [10, 0, 0, 1]), ([0; 6], [10, 0, 0, 2]))
        .macs(MAC_1, MAC_2)
        .build();
    let list = [
        ("ip_src", ip("192.0.2.77")),
        ("dec_ttl", Value::Bool(true)),
        ("src_port", Value::Int(9)),
    ];
    let mut el = element(&list);
    let (sent, _) = run(&mut *el, std::slice::from_ref(&arp));
    assert_eq!(sent, vec![arp]);
    assert_eq!(stat(&*el, "skipped"), 1);
}

#[test]
fn every_truncation_of_a_vlan_ipv6_tcp_frame_is_safe() {
    let full = build(&frame(true, true, true));
    let configs: [&[(&'static str, Value)]; 4] = [
        &[
            ("eth_src", Value::Mac(NEW_MAC_SRC)),
            ("ip_src", ip("2001:db8::abcd:7")),
            ("ip_dst", ip("fd00::fffe")),
            ("src_port", Value::Int(1)),
            ("dscp", Value::Int(1)),
            ("dec_ttl", Value::Bool(true)),
            ("vlan_set", Value::Int(7)),
        ],
        &[
            ("vlan_pop", Value::Bool(true)),
            ("ip_src", ip("2001:db8::1")),
        ],
        &[("vlan_push", Value::Int(1)), ("dst_port", Value::Int(2))],
        &[("eth_dst", Value::Mac(NEW_MAC_DST))],
    ];
    for (i, list) in configs.iter().enumerate() {
        for n in 0..=full.len() {
            let got = rewrite(list, &full[..n]);
            if n == full.len() {
                assert_checksums(&got.unwrap());
            } else if i == 3 && n >= 14 {
                assert_eq!(got.map(|f| f.len()), Ok(n), "MAC-only at {n}");
            } else {
                assert_eq!(got, Err("malformed"), "config {i}, cut at {n}");
            }
        }
    }
}

#[test]
fn non_first_fragments_keep_their_payload() {
    let base = frame(false, false, false);
    let f = kit(&base).fragment(100, false).build();
    let list = [("ip_src", ip("192.0.2.77")), ("src_port", Value::Int(1))];
    let got = rewrite(&list, &f).unwrap();
    let (hdr, rest) = Ipv4Header::from_slice(&got[14..]).unwrap();
    assert_eq!(
        (hdr.source, hdr.header_checksum),
        (NEW_SRC4, hdr.calc_header_checksum())
    );
    assert_eq!(rest, &f[34..]);
}

#[test]
fn ipv6_non_first_fragments_get_new_addresses_whatever_their_next_header() {
    // A non-first fragment whose Fragment header names Destination Options
    // (60) as the next header: there is no transport header to update, so
    // the address rewrite goes through, payload untouched.
    let mut frag = vec![60, 0, 0, 24, 0, 0, 0, 9]; // offset 24, last
    frag.extend_from_slice(&[0xab; 16]);
    let f = Kit::raw(Ip::v6([1; 16], [2; 16]), 44)
        .macs(MAC_1, MAC_2)
        .payload(&frag)
        .build();
    let list = [("ip_src", ip("2001:db8::abcd:7"))];
    let got = rewrite(&list, &f).unwrap();
    let want: std::net::Ipv6Addr = "2001:db8::abcd:7".parse().unwrap();
    assert_eq!(got[22..38], want.octets());
    assert_eq!(got[38..], f[38..], "the rest as it was");
}
