//! Property tests of the header parse (`wire::Headers`): on any bytes it
//! never panics and every offset it reports lies inside the frame; on
//! well-formed frames it finds what etherparse, an independent parser, finds.
//!
//! CI runs the case counts below from a fixed seed; `PROPTEST_CASES=100000`
//! (or `make fuzz`) runs many more (testkit::prop).

use hpio_nf::wire::{FragKind, Headers, L3Kind, ParseStatus};
use proptest::prelude::*;

/// Checks what `Headers` promises about `frame`, whatever its bytes.
fn check_invariants(frame: &[u8]) -> Headers {
    let h = Headers::parse(frame);
    assert_eq!(
        h,
        Headers::parse_any(frame),
        "fast and general parse differ"
    );
    let len = frame.len();
    if h.status == ParseStatus::L2Truncated {
        assert!(!h.has_l4 && h.l3 == L3Kind::Other);
        return h;
    }
    assert!(len >= 14);
    assert!(h.vlan_tags <= 2);
    assert_eq!(h.l3_off as usize, 14 + 4 * h.vlan_tags as usize);
    assert!(h.l3_off as usize <= len, "l3_off {} past {len}", h.l3_off);
    if h.has_l4 {
        assert_eq!(h.status, ParseStatus::Ok);
        assert!(h.is_ip());
        let min = match h.l4_proto {
            6 => 20,
            17 => 8,
            1 | 58 => 4,
            p => panic!("has_l4 with protocol {p}"),
        };
        let l4 = h.l4_off as usize;
        assert!(l4 + min <= len, "L4 header at {l4}+{min} past {len}");
        if h.l4_proto == 6 {
            let doff = (frame[l4 + 12] >> 4) as usize * 4;
            assert!(doff >= 20 && l4 + doff <= len, "TCP options past the end");
        }
    }
    if h.is_ip() {
        assert!(h.l4_off as usize <= len, "l4_off {} past {len}", h.l4_off);
    }
    match h.fragment(frame) {
        Some(f) => {
            assert_ne!(h.frag, FragKind::None);
            assert!(f.data_off as usize <= len, "fragment data past the end");
        }
        None => assert!(h.frag == FragKind::None || !h.is_ip()),
    }
    h
}

/// Bytes that look like a frame often enough to reach every layer: an IP
/// ethertype (maybe behind up to 3 VLAN tags), a plausible version nibble,
/// a chosen protocol or Next Header, then anything.
fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 0..160),
        0usize..4,
        prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x0806, 0x1234]),
        prop::sample::select(vec![0u8, 1, 6, 17, 43, 44, 51, 58, 60, 59, 255]),
        any::<bool>(),
    )
        .prop_map(|(mut b, tags, et, proto, shape)| {
            if !shape || b.len() < 14 {
                return b;
            }
            let mut off = 12;
            for _ in 0..tags {
                if b.len() < off + 6 {
                    break;
                }
                b[off..off + 2].copy_from_slice(&0x8100u16.to_be_bytes());
                off += 4;
            }
            if b.len() >= off + 2 {
                b[off..off + 2].copy_from_slice(&et.to_be_bytes());
            }
            let l3 = off + 2;
            match (et, b.get_mut(l3..)) {
                (0x0800, Some(ip)) if ip.len() > 9 => {
                    ip[0] = 0x40 | (ip[0] & 0x0f);
                    ip[9] = proto;
                }
                (0x86dd, Some(ip)) if ip.len() > 6 => {
                    ip[0] = 0x60 | (ip[0] & 0x0f);
                    ip[6] = proto;
                }
                _ => {}
            }
            b
        })
}

/// A well-formed frame and what a correct parse says of it.
#[derive(Debug, Clone)]
struct Built {
    frame: Vec<u8>,
    vlans: Vec<u16>,
    l3_off: usize,
    l4_off: usize,
    proto: u8,
}

/// Builds a well-formed frame: 0-2 VLAN tags, IPv4 (with options) or IPv6
/// (with 0-3 Hop-by-Hop / Destination Options headers), then TCP (with
/// options), UDP or ICMP, then payload.
fn built() -> impl Strategy<Value = Built> {
    (
        prop::collection::vec(1u16..4095, 0..=2),
        any::<bool>(),
        0usize..=10,
        prop::collection::vec(0u8..4, 0..=3),
        prop::sample::select(vec![6u8, 17, 1]),
        0usize..=10,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(vlans, v6, v4_opts, exts, proto, tcp_opts, payload)| {
            let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
            for (i, v) in vlans.iter().enumerate() {
                let tpid: u16 = if i == 0 && vlans.len() == 2 {
                    0x88a8
                } else {
                    0x8100
                };
                f.extend_from_slice(&tpid.to_be_bytes());
                f.extend_from_slice(&v.to_be_bytes());
            }
            f.extend_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
            let l3_off = f.len();
            let proto = if v6 && proto == 1 { 58 } else { proto };
            let mut l4 = match proto {
                6 => {
                    let mut t = vec![0u8; 20 + 4 * tcp_opts];
                    t[12] = ((5 + tcp_opts) as u8) << 4;
                    t[13] = 0x18;
                    t[20..].fill(1); // NOP options
                    t
                }
                17 => vec![0, 53, 0, 54, 0, 0, 0, 0],
                _ => vec![8, 0, 0, 0, 0, 1, 0, 1],
            };
            l4.extend_from_slice(&payload);
            if proto == 17 {
                let n = l4.len() as u16;
                l4[4..6].copy_from_slice(&n.to_be_bytes());
            }
            let (hdr, body, l4_rel) = if v6 {
                let mut ext = Vec::new();
                let mut next_of_prev = Vec::new();
                for (i, &len8) in exts.iter().enumerate() {
                    next_of_prev.push(if i == 0 { 0u8 } else { 60 });
                    let mut e = vec![0u8; 8 * (len8 as usize + 1)];
                    e[1] = len8;
                    e[2] = 1; // PadN over the rest
                    e[3] = (e.len() - 4) as u8;
                    ext.push(e);
                }
                let first = next_of_prev.first().copied().unwrap_or(proto);
                let mut hdr = vec![0x60, 0, 0, 0, 0, 0, first, 64];
                hdr.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
                hdr.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
                let mut body = Vec::new();
                for (i, mut e) in ext.into_iter().enumerate() {
                    e[0] = next_of_prev.get(i + 1).copied().unwrap_or(proto);
                    body.extend_from_slice(&e);
                }
                let l4_rel = hdr.len() + body.len();
                body.extend_from_slice(&l4);
                hdr[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
                (hdr, body, l4_rel)
            } else {
                let ihl = 5 + v4_opts;
                let mut hdr = vec![0u8; ihl * 4];
                hdr[0] = 0x40 | ihl as u8;
                let total = (hdr.len() + l4.len()) as u16;
                hdr[2..4].copy_from_slice(&total.to_be_bytes());
                hdr[6] = 0x40; // DF
                hdr[8] = 64;
                hdr[9] = proto;
                hdr[12..16].copy_from_slice(&[10, 0, 0, 1]);
                hdr[16..20].copy_from_slice(&[10, 0, 0, 2]);
                hdr[20..].fill(1); // NOP options
                (hdr, l4, ihl * 4)
            };
            f.extend_from_slice(&hdr);
            f.extend_from_slice(&body);
            Built {
                frame: f,
                vlans,
                l3_off,
                l4_off: l3_off + l4_rel,
                proto,
            }
        })
}

/// Offset of `part` inside `whole` (both slices of the same frame).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

proptest! {
    #![proptest_config(testkit::prop::config(2048))]

    /// Any bytes at all: no panic, every reported offset inside the frame.
    #[test]
    fn any_bytes_keep_the_promises(b in prop::collection::vec(any::<u8>(), 0..128)) {
        check_invariants(&b);
    }

    /// Bytes shaped like frames (so that the IP and transport layers are
    /// reached), cut anywhere: the same promises.
    #[test]
    fn frame_like_bytes_keep_the_promises(b in frame_like(), cut in any::<prop::sample::Index>()) {
        check_invariants(&b);
        let n = cut.index(b.len() + 1);
        check_invariants(&b[..n]);
    }

    /// Well-formed frames: the parse finds the headers where they were put,
    /// and agrees with etherparse on VLANs, protocol and the transport header.
    #[test]
    fn well_formed_frames_agree_with_etherparse(b in built(), trailer in 0usize..8) {
        let mut frame = b.frame.clone();
        frame.extend(std::iter::repeat_n(0xee, trailer)); // Ethernet padding
        let h = check_invariants(&frame);
        prop_assert_eq!(h.status, ParseStatus::Ok);
        prop_assert_eq!(h.vlan_tags as usize, b.vlans.len());
        prop_assert_eq!(h.vlan_id, b.vlans.first().copied().unwrap_or(0));
        prop_assert_eq!(h.l3_off as usize, b.l3_off);
        prop_assert_eq!(h.l4_off as usize, b.l4_off);
        prop_assert_eq!(h.l4_proto, b.proto);
        prop_assert!(h.has_l4);
        prop_assert_eq!(h.frag, FragKind::None);

        let p = etherparse::SlicedPacket::from_ethernet(&frame)
            .map_err(|e| TestCaseError::fail(format!("etherparse refused it: {e:?}")))?;
        let vlans: Vec<u16> = p.link_exts.iter().filter_map(|e| match e {
            etherparse::LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
            _ => None,
        }).collect();
        prop_assert_eq!(&vlans, &b.vlans);
        let (l4_slice, proto): (&[u8], u8) = match p.transport.as_ref().expect("transport") {
            etherparse::TransportSlice::Tcp(t) => (t.slice(), 6),
            etherparse::TransportSlice::Udp(u) => (u.slice(), 17),
            etherparse::TransportSlice::Icmpv4(i) => (i.slice(), 1),
            etherparse::TransportSlice::Icmpv6(i) => (i.slice(), 58),
            other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        };
        prop_assert_eq!(proto, h.l4_proto);
        prop_assert_eq!(offset_in(&frame, l4_slice), h.l4_off as usize);
        // IP lengths bound the transport slice, not the Ethernet padding.
        prop_assert_eq!(offset_in(&frame, l4_slice) + l4_slice.len(), b.frame.len());
    }

    /// A well-formed frame whose IPv4 total length, IHL, IPv6 payload
    /// length or TCP data offset lies: never an L4 header past the end.
    #[test]
    fn lying_lengths_are_caught(b in built(), field in 0usize..4, value in any::<u8>()) {
        let mut f = b.frame.clone();
        let l3 = b.l3_off;
        let v6 = f[l3] >> 4 == 6;
        match field {
            0 if !v6 => f[l3 + 2] = value,          // total length, high byte
            0 => f[l3 + 4] = value,                 // payload length, high byte
            1 if !v6 => f[l3] = 0x40 | (value & 0x0f), // IHL
            1 => f[l3 + 5] = value,                 // payload length, low byte
            2 if b.proto == 6 => f[b.l4_off + 12] = value, // TCP data offset
            _ => f.truncate(b.l4_off + value as usize % 24),
        }
        check_invariants(&f);
    }
}

/// Regression-style fixed cases the properties above must cover: runts,
/// 8 VLAN tags, a looping IPv6 extension chain, a chain past the frame.
#[test]
fn fixed_malformed_frames() {
    for n in 0..14 {
        assert_eq!(
            check_invariants(&vec![0x81; n]).status,
            ParseStatus::L2Truncated
        );
    }
    // Eight 802.1Q tags: two are taken, the rest is an unknown ethertype.
    let mut f = vec![0u8; 12];
    for _ in 0..8 {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    }
    f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 20]);
    f.resize(120, 0);
    let h = check_invariants(&f);
    assert_eq!((h.vlan_tags, h.ethertype, h.l3), (2, 0x8100, L3Kind::Other));
    // IPv6: Destination Options headers naming themselves, 20 of them.
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 160, 60, 64]);
    f.extend_from_slice(&[0; 32]);
    for _ in 0..20 {
        f.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let h = check_invariants(&f);
    assert!(!h.has_l4 && h.status == ParseStatus::Ok && h.l4_proto == 60);
    // A Hop-by-Hop header claiming 2 KiB in a 100-byte frame.
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 46, 0, 64]);
    f.extend_from_slice(&[0; 32]);
    f.extend_from_slice(&[6, 255, 1, 4, 0, 0, 0, 0]);
    f.resize(100, 0);
    assert_eq!(check_invariants(&f).status, ParseStatus::L3Malformed);
}
