//! DecIpTtl: TTL and hop limit, the MTU output, and fragments checked
//! against those testkit makes with etherparse (`router_fragments`, the
//! host-style `fragments`) and against etherparse's reassembly.

use super::*;
use crate::packet::{Packet, Pool};
use etherparse::{NetHeaders, PacketHeaders};
use testkit::frame::{reassemble, router_fragments, Frame, Ip};

/// What one push of `frames` made: the frames of outputs 0 and 1, and the
/// output (drops, output 2).
fn run(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Output) {
    run_with(DecIpTtl::default(), &mut Pool::new(64), frames)
}

fn run_with(
    mut e: DecIpTtl,
    pool: &mut Pool,
    frames: &[Vec<u8>],
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Output) {
    let mut cx = Context::new(pool, 0, 0);
    let mut out = Output::new(3, DROP_REASONS.len());
    let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
    e.push(&mut cx, 0, &mut b, &mut out);
    let bytes = |o: &Output, i| o.batch(i).iter().map(|p| p.data().to_vec()).collect();
    (bytes(&out, 0), bytes(&out, 1), out)
}

fn with_mtu(mtu: usize) -> DecIpTtl {
    DecIpTtl {
        mtu,
        ..DecIpTtl::default()
    }
}

/// The frames of output 0 for `frames` through a DecIpTtl of `mtu`.
fn fragmented(mtu: usize, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let (fwd, expired, out) = run_with(with_mtu(mtu), &mut Pool::new(128), frames);
    assert!(expired.is_empty() && out.batch(2).is_empty());
    assert_eq!(out.drops(MALFORMED) + out.drops(NO_BUFFER), 0);
    fwd
}

const V4: Ip = Ip::V4([10, 0, 0, 1], [192, 0, 2, 1]);

/// Bytes 0, 1, 2, ... (mod 251): a payload whose pieces differ.
fn counting(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn decrements_with_a_checksum_etherparse_agrees_with() {
    let v6 = Ip::v6([0xfd; 16], [0x20; 16]);
    let mut frames = Vec::new();
    for ttl in [2u8, 64, 128, 255] {
        frames.push(Frame::udp(V4, 1, 2).ttl(ttl).build());
        frames.push(Frame::echo(V4, 7, 1).ttl(ttl).build());
    }
    frames.push(Frame::udp(v6, 1, 2).ttl(64).build());
    let (fwd, expired, _) = run(&frames);
    assert!(expired.is_empty());
    assert_eq!(fwd.len(), frames.len());
    for (before, after) in frames.iter().zip(&fwd) {
        let (b, a) = (
            PacketHeaders::from_ethernet_slice(before).unwrap(),
            PacketHeaders::from_ethernet_slice(after).unwrap(),
        );
        match (b.net.unwrap(), a.net.unwrap()) {
            (NetHeaders::Ipv4(b, _), NetHeaders::Ipv4(a, _)) => {
                assert_eq!(a.time_to_live, b.time_to_live - 1);
                assert_eq!(a.header_checksum, a.calc_header_checksum());
            }
            (NetHeaders::Ipv6(b, _), NetHeaders::Ipv6(a, _)) => {
                assert_eq!(a.hop_limit, b.hop_limit - 1)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn expired_packets_leave_unchanged_by_output_1() {
    let frames = vec![
        Frame::udp(V4, 1, 2).ttl(1).build(),
        Frame::udp(V4, 1, 2).ttl(0).dont_fragment(false).build(),
        Frame::udp(Ip::v6([0xfd; 16], [0x20; 16]), 1, 2)
            .ttl(1)
            .build(),
        vec![0u8; 60],
    ];
    let (fwd, expired, out) = run_with(with_mtu(68), &mut Pool::new(8), &frames);
    assert!(fwd.is_empty());
    assert_eq!(expired, frames[..3].to_vec());
    assert_eq!(out.drops(NOT_IP), 1);
}

#[test]
fn only_df_and_ipv6_packets_over_the_mtu_go_to_output_2() {
    let big = [0u8; 1000];
    let frames = vec![
        Frame::udp(V4, 1, 2).payload(&big).build(),
        Frame::udp(Ip::v6([0xfd; 16], [0x20; 16]), 1, 2)
            .payload(&big)
            .build(),
        Frame::udp(V4, 1, 2).payload(&big[..972]).build(),
        Frame::udp(V4, 1, 2)
            .payload(&big[..972])
            .dont_fragment(false)
            .build(),
        Frame::udp(V4, 1, 2)
            .payload(&big)
            .dont_fragment(false)
            .build(),
    ];
    let (fwd, _, out) = run_with(with_mtu(1000), &mut Pool::new(8), &frames);
    assert_eq!(out.batch(2).len(), 2);
    assert_eq!(out.batch(2)[0].data(), &frames[0][..], "unchanged");
    assert_eq!(out.batch(2)[1].data(), &frames[1][..], "unchanged");
    assert_eq!(fwd.len(), 2 + 2, "1000 bytes exactly pass; 1028 make 2");
    assert_eq!(fwd[2].len(), 14 + 20 + 976);
}

#[test]
fn fragments_are_a_routers_with_tags_annotations_and_reassembly() {
    for vlans in [&[][..], &[7], &[7, 8]] {
        let sent = Frame::udp(V4, 5000, 53)
            .vlans(vlans)
            .dont_fragment(false)
            .ident(0x1234)
            .tos(10, 1)
            .payload(&counting(3300));
        let mut p = Packet::from_bytes(&sent.build());
        *p.anno_mut() = [1, 2, 3, 4];
        p.set_timestamp(77);
        p.set_in_port(Some(3));
        let mut e = with_mtu(1500);
        let mut pool = Pool::new(8);
        let mut out = Output::new(3, DROP_REASONS.len());
        let mut b: Batch = [p].into_iter().collect();
        e.push(&mut Context::new(&mut pool, 0, 0), 0, &mut b, &mut out);
        let got: Vec<Vec<u8>> = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
        let want = router_fragments(&sent.clone().ttl(63).build(), 1500);
        assert_eq!(want.len(), 3);
        assert_eq!(got, want, "tags {vlans:?}");
        for f in out.batch(0) {
            assert_eq!(
                (f.anno(), f.timestamp(), f.in_port()),
                (&[1, 2, 3, 4], 77, Some(3))
            );
        }
        assert_eq!(pool.available(), 8 - 2, "two new buffers, one reused");
        let mut stats = Vec::new();
        e.stats(&mut |n, v| stats.push((n.to_string(), v)));
        let want_stats = [
            (String::from("fragmented"), 1),
            (String::from("fragments"), 3),
        ];
        assert_eq!(stats[2..], want_stats);
        if vlans.is_empty() {
            // The router's fragments are a host's of 1480 bytes, and they
            // reassemble to the datagram sent.
            assert_eq!(got, sent.clone().ttl(63).fragments(1480, 0x1234));
            assert_eq!(reassemble(&got), sent.ip_bytes()[20..]);
        }
    }
}

#[test]
fn only_the_first_fragment_has_the_options_without_the_copy_flag() {
    let options = [
        [0x83, 7, 4, 192, 0, 2, 9].as_slice(), // loose source route: copied
        &[1],                                  // no operation
        &[7, 15, 4],                           // record route: first only
        &[0; 12],
        &[0x94, 4, 0, 0], // router alert: copied
        &[0; 13],         // end of list, padding
    ]
    .concat();
    let sent = Frame::udp(V4, 1, 2)
        .dont_fragment(false)
        .ident(9)
        .ip_options(&options)
        .payload(&counting(2500));
    for mtu in [1500, 1001, 576, 68] {
        let got = fragmented(mtu, &[sent.build()]);
        assert_eq!(got, router_fragments(&sent.clone().ttl(63).build(), mtu));
        assert_eq!(got[0][14] & 0x0f, 15, "60 bytes: all the options");
        for f in &got[1..] {
            assert_eq!(&f[14..15], &[0x48], "32 bytes: the copied options");
            assert_eq!(f[34..46], [0x83, 7, 4, 192, 0, 2, 9, 0x94, 4, 0, 0, 0]);
        }
        assert_eq!(reassemble(&got), sent.ip_bytes()[60..], "mtu {mtu}");
    }
}

#[test]
fn a_fragment_is_cut_again_at_its_own_offset() {
    let datagram = Frame::udp(V4, 1, 2)
        .dont_fragment(false)
        .payload(&counting(4000));
    // The fragments of a 3000-byte link, then each through a 1500-byte
    // one: the same as cut for 1500 at once (2960 is twice 1480).
    let pieces = datagram.fragments(2960, 42);
    assert_eq!(pieces.len(), 2);
    let got = fragmented(1500, &pieces);
    assert_eq!(got, datagram.clone().ttl(63).fragments(1480, 42));
    assert_eq!(reassemble(&got), datagram.ip_bytes()[20..]);
    // A middle fragment keeps MF on its last piece.
    let middle = Frame::udp(V4, 1, 2)
        .fragment(100, true)
        .payload(&counting(1592));
    let got = fragmented(820, &[middle.build()]);
    assert_eq!(got, router_fragments(&middle.clone().ttl(63).build(), 820));
    assert!(got.iter().all(|f| f[20] & 0x20 != 0), "MF on every piece");
}

#[test]
fn bad_options_and_offsets_past_64k_are_malformed() {
    let cut = |o: &[u8]| {
        Frame::udp(V4, 1, 2)
            .dont_fragment(false)
            .ip_options(o)
            .payload(&[0; 200])
            .build()
    };
    let frames = [
        cut(&[0x83, 9, 4, 1, 2, 3, 4, 0]), // runs past the options
        cut(&[0x83, 1, 0, 0]),             // length below 2
        cut(&[7, 0, 0, 0]),
        Frame::udp(V4, 1, 2)
            .fragment(8190, false)
            .payload(&[0; 600])
            .build(),
    ];
    let (fwd, _, out) = run_with(with_mtu(100), &mut Pool::new(64), &frames);
    assert!(fwd.is_empty());
    assert_eq!(out.drops(MALFORMED), 4);
    // Options are looked at only to fragment.
    let (fwd, _, _) = run_with(with_mtu(1500), &mut Pool::new(0), &frames[..1]);
    assert_eq!(fwd.len(), 1);
}

#[test]
fn too_few_free_buffers_drop_the_packet_as_no_buffer() {
    let f = Frame::udp(V4, 1, 2)
        .dont_fragment(false)
        .payload(&[0; 2000])
        .build();
    let mut pool = Pool::new(1);
    let (fwd, _, out) = run_with(with_mtu(800), &mut pool, std::slice::from_ref(&f));
    assert!(fwd.is_empty());
    assert_eq!(out.drops(NO_BUFFER), 1);
    assert_eq!(pool.available(), 1, "no buffer taken");
    let mut pool = Pool::new(2);
    let (fwd, _, _) = run_with(with_mtu(800), &mut pool, &[f]);
    assert_eq!(fwd.len(), 3);
}

#[test]
fn the_ttl_checksum_update_is_rfc_1624s_for_every_checksum() {
    for ttl in [2u8, 3, 64, 128, 255] {
        for proto in [1u8, 6, 17] {
            let word = u16::from_be_bytes([ttl, proto]);
            for c in 0..=u16::MAX {
                let want = crate::wire::checksum::update16(c, word, word - 0x100);
                assert_eq!(ttl_check(c), want, "checksum {c:#06x}, ttl {ttl}");
            }
        }
    }
}

#[test]
fn a_mixed_batch_keeps_each_outputs_order() {
    let big = [0u8; 1000];
    let v6 = Ip::v6([0xfd; 16], [0x20; 16]);
    // Forwarded (payload length tells them apart), expired, too big with
    // DF, forwarded, not IP, forwarded IPv6.
    let frames = vec![
        Frame::udp(V4, 1, 2).payload(&[1]).build(),
        Frame::udp(V4, 1, 2).ttl(1).build(),
        Frame::udp(V4, 1, 2).payload(&big).build(),
        Frame::udp(V4, 1, 2).payload(&[1, 2]).build(),
        vec![0u8; 60],
        Frame::udp(v6, 1, 2).payload(&[1, 2, 3]).build(),
    ];
    let (fwd, expired, out) = run_with(with_mtu(500), &mut Pool::new(8), &frames);
    let len = |f: &Vec<u8>| f.len();
    assert_eq!(
        fwd.iter().map(len).collect::<Vec<_>>(),
        [0, 3, 5].map(|i| frames[i].len())
    );
    for f in &fwd {
        let h = PacketHeaders::from_ethernet_slice(f).unwrap();
        match h.net.unwrap() {
            NetHeaders::Ipv4(a, _) => {
                assert_eq!(a.time_to_live, 63);
                assert_eq!(a.header_checksum, a.calc_header_checksum());
            }
            NetHeaders::Ipv6(a, _) => assert_eq!(a.hop_limit, 63),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(expired, [frames[1].clone()]);
    assert_eq!(out.batch(2).len(), 1);
    assert_eq!(out.batch(2)[0].data(), &frames[2][..], "unchanged");
    assert_eq!(out.drops(NOT_IP), 1);
}
