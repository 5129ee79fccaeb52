//! The segmenter on hand-built super-frames, every segment checked by an
//! independent parser (etherparse): lengths, checksums, IP IDs, sequence
//! numbers, flags, and the payload put back together.

use super::*;
use crate::packet::{Batch, Pool};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use testkit::frame::{Frame as Kit, Ip, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH};

/// The counters of a receiving packet socket.
const RX_SOCKET: crate::port::burst::Sides = crate::port::burst::Sides {
    rx: true,
    tx: false,
    socket: true,
};

const SRC4: [u8; 4] = [10, 1, 0, 1];
const DST4: [u8; 4] = [10, 1, 0, 2];

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = last;
    a
}

/// A super-frame's kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Tcp4,
    Tcp6,
    Udp4,
    Udp6,
}

/// Options of a test super-frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Opts {
    pub kind: Kind,
    pub payload: usize,
    pub gso: u16,
    /// FIN, PSH and CWR set on the super-frame.
    pub flags: bool,
    /// 12 bytes of TCP options (NOP, NOP, timestamps).
    pub tcp_options: bool,
    /// An 802.1Q tag left in the frame.
    pub vlan_in_frame: bool,
    /// An IPv6 destination-options header before the transport header.
    pub ext6: bool,
}

impl Opts {
    pub(crate) fn new(kind: Kind, payload: usize, gso: u16) -> Opts {
        Opts {
            kind,
            payload,
            gso,
            flags: false,
            tcp_options: false,
            vlan_in_frame: false,
            ext6: false,
        }
    }
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

/// The test frame of super-frame `o`: one frame holding the whole
/// payload, IP lengths covering it, the transport checksum holding only the
/// pseudo-header sum (`NEEDS_CSUM`).
pub(crate) fn super_kit(o: Opts) -> Kit {
    let ip6 = matches!(o.kind, Kind::Tcp6 | Kind::Udp6);
    let ip = match ip6 {
        true => Ip::v6(v6(1), v6(2)),
        false => Ip::v4(SRC4, DST4),
    };
    let k = match o.kind {
        Kind::Tcp4 | Kind::Tcp6 => {
            let more = if o.flags {
                TCP_FIN | TCP_PSH | TCP_CWR
            } else {
                0
            };
            let k = Kit::tcp(ip, 40000, 80, TCP_ACK | more).seq(0xffff_f000, 77, 1000);
            match o.tcp_options {
                // NOP, NOP, timestamps.
                true => k.tcp_options(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]),
                false => k,
            }
        }
        Kind::Udp4 | Kind::Udp6 => Kit::udp(ip, 5353, 53),
    };
    // An IP ID that wraps while cutting.
    let mut k = k.ident(0xfffe).payload(&payload(o.payload)).partial_csum();
    if o.ext6 {
        assert!(ip6);
        // Destination options (8 bytes of PadN) between IPv6 and transport.
        k = k.dest_opts(&[1, 4, 0, 0, 0, 0]);
    }
    if o.vlan_in_frame {
        k = k.vlan(7);
    }
    k
}

/// Builds a super-frame as the kernel hands it over ([`super_kit`]) and
/// its vnet header.
pub(crate) fn super_frame(o: Opts) -> (Vec<u8>, VnetHdr) {
    let f = super_kit(o).build();
    let tcp = matches!(o.kind, Kind::Tcp4 | Kind::Tcp6);
    let ip6 = matches!(o.kind, Kind::Tcp6 | Kind::Udp6);
    let l3 = 14 + if o.vlan_in_frame { 4 } else { 0 };
    let ext = if o.ext6 { 8 } else { 0 };
    let l4 = l3 + if ip6 { 40 + ext } else { 20 };
    let check_at = l4 + if tcp { 16 } else { 6 };
    let gso_type = match o.kind {
        Kind::Tcp4 if o.flags => VnetHdr::GSO_TCPV4 | VnetHdr::GSO_ECN,
        Kind::Tcp4 => VnetHdr::GSO_TCPV4,
        Kind::Tcp6 => VnetHdr::GSO_TCPV6,
        Kind::Udp4 | Kind::Udp6 => VnetHdr::GSO_UDP_L4,
    };
    let hdr_len = check_at + 2;
    let v = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type,
        hdr_len: hdr_len as u16,
        gso_size: o.gso,
        csum_start: l4 as u16,
        csum_offset: (check_at - l4) as u16,
    };
    (f, v)
}

fn info(v: VnetHdr) -> RxInfo {
    RxInfo {
        vlan: None,
        csum_not_ready: true,
        vnet: v,
    }
}

/// Cuts `f` with a pool of `slots` and returns the segments' frames.
fn cut(f: &[u8], v: VnetHdr, split: Option<usize>) -> Result<Vec<Vec<u8>>, GsoError> {
    let mut pool = Pool::new(64);
    let src = match split {
        Some(at) => Src {
            head: &f[..at],
            tail: &f[at..],
        },
        None => Src { head: f, tail: &[] },
    };
    let mut out = Vec::new();
    let n = segment(src, f.len(), &info(v), 42, &mut pool, 1000, |p| {
        assert_eq!(p.timestamp(), 42);
        out.push(p.data().to_vec());
    })?;
    assert_eq!(n, out.len());
    assert_eq!(pool.available(), 64 - n, "one slot per segment");
    Ok(out)
}

/// Checks the segments of super-frame `o` with etherparse.
pub(crate) fn check(o: Opts, segs: &[Vec<u8>]) {
    let tcp = matches!(o.kind, Kind::Tcp4 | Kind::Tcp6);
    let want = o.payload.div_ceil(usize::from(o.gso));
    assert_eq!(segs.len(), want, "{o:?}");
    let mut data = Vec::new();
    let mut seq = 0xffff_f000u32;
    for (k, s) in segs.iter().enumerate() {
        let last = k + 1 == segs.len();
        let p = SlicedPacket::from_ethernet(s).unwrap_or_else(|e| panic!("{o:?} seg {k}: {e}"));
        assert_eq!(p.link_exts.len(), usize::from(o.vlan_in_frame));
        let l3 = 14 + if o.vlan_in_frame { 4 } else { 0 };
        let (src, dst, src6, dst6) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(usize::from(h.total_len()), s.len() - l3, "{o:?} seg {k}");
                assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                assert_eq!(h.identification(), 0xfffeu16.wrapping_add(k as u16));
                (h.source(), h.destination(), [0; 16], [0; 16])
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                assert_eq!(usize::from(h.payload_length()), s.len() - l3 - 40);
                assert_eq!(ip.extensions().is_empty(), !o.ext6);
                ([0; 4], [0; 4], h.source(), h.destination())
            }
            _ => panic!("{o:?}: no IP"),
        };
        let v6 = matches!(p.net, Some(NetSlice::Ipv6(_)));
        match &p.transport {
            Some(TransportSlice::Tcp(t)) => {
                assert!(tcp);
                let good = if v6 {
                    t.calc_checksum_ipv6(src6, dst6).unwrap()
                } else {
                    t.calc_checksum_ipv4(src, dst).unwrap()
                };
                assert_eq!(t.checksum(), good, "{o:?} seg {k}");
                assert_eq!(t.sequence_number(), seq, "{o:?} seg {k}");
                assert_eq!(t.acknowledgment_number(), 77);
                assert!(t.ack());
                assert_eq!(t.fin(), o.flags && last, "FIN on the last only");
                assert_eq!(t.psh(), o.flags && last, "PSH on the last only");
                assert_eq!(t.cwr(), o.flags && k == 0, "CWR on the first only");
                assert_eq!(t.options().len(), if o.tcp_options { 12 } else { 0 });
                let pl = t.payload();
                assert!(pl.len() <= usize::from(o.gso));
                if !last {
                    assert_eq!(pl.len(), usize::from(o.gso));
                }
                seq = seq.wrapping_add(pl.len() as u32);
                data.extend_from_slice(pl);
            }
            Some(TransportSlice::Udp(u)) => {
                assert!(!tcp);
                let h = u.to_header();
                let pl = u.payload();
                assert_eq!(usize::from(h.length), pl.len() + 8, "own UDP length");
                let good = if v6 {
                    h.calc_checksum_ipv6_raw(src6, dst6, pl).unwrap()
                } else {
                    h.calc_checksum_ipv4_raw(src, dst, pl).unwrap()
                };
                assert_eq!(h.checksum, good, "{o:?} seg {k}");
                assert!(pl.len() <= usize::from(o.gso));
                data.extend_from_slice(pl);
            }
            _ => panic!("{o:?}: no transport"),
        }
    }
    assert_eq!(data, payload(o.payload), "{o:?}: payload put back together");
}

#[test]
fn tcp_over_ipv4_and_ipv6_is_cut_like_the_kernel_does() {
    for kind in [Kind::Tcp4, Kind::Tcp6] {
        for (payload, gso) in [(64_000, 1448), (14_480, 1448), (1000, 1448), (5001, 500)] {
            for flags in [false, true] {
                for tcp_options in [false, true] {
                    let o = Opts {
                        flags,
                        tcp_options,
                        ..Opts::new(kind, payload, gso)
                    };
                    let (f, v) = super_frame(o);
                    check(o, &cut(&f, v, None).unwrap());
                }
            }
        }
    }
}

#[test]
fn udp_l4_segments_are_datagrams_of_their_own() {
    for kind in [Kind::Udp4, Kind::Udp6] {
        for (payload, gso) in [(30_000, 1472), (2944, 1472), (100, 1472), (1, 1)] {
            let o = Opts::new(kind, payload, gso);
            let (f, v) = super_frame(o);
            check(o, &cut(&f, v, None).unwrap());
        }
    }
}

#[test]
fn vlan_tags_and_ipv6_extension_headers_are_copied_into_every_segment() {
    let o = Opts {
        vlan_in_frame: true,
        flags: true,
        tcp_options: true,
        ..Opts::new(Kind::Tcp4, 9000, 1400)
    };
    let (f, v) = super_frame(o);
    check(o, &cut(&f, v, None).unwrap());
    for kind in [Kind::Tcp6, Kind::Udp6] {
        let o = Opts {
            ext6: true,
            ..Opts::new(kind, 7000, 1200)
        };
        let (f, v) = super_frame(o);
        check(o, &cut(&f, v, None).unwrap());
    }
}

#[test]
fn a_tag_the_kernel_took_out_goes_back_on_every_segment() {
    let o = Opts::new(Kind::Tcp4, 4000, 1448);
    let (f, v) = super_frame(o);
    let mut pool = Pool::new(8);
    let mut segs = Vec::new();
    let i = RxInfo {
        vlan: Some((0x8100, 0x2005)),
        ..info(v)
    };
    let src = Src {
        head: &f,
        tail: &[],
    };
    segment(src, f.len(), &i, 0, &mut pool, 8, |p| {
        segs.push(p.data().to_vec())
    })
    .unwrap();
    assert_eq!(segs.len(), 3);
    let untagged: Vec<Vec<u8>> = segs
        .iter()
        .map(|s| {
            assert_eq!(s[12..16], [0x81, 0x00, 0x20, 0x05]);
            let mut u = s.clone();
            u.drain(12..16);
            u
        })
        .collect();
    check(o, &untagged);
}

#[test]
fn a_frame_split_between_slot_and_overflow_cuts_the_same() {
    let o = Opts {
        flags: true,
        ..Opts::new(Kind::Tcp4, 20_000, 1448)
    };
    let (f, v) = super_frame(o);
    let whole = cut(&f, v, None).unwrap();
    // Splits inside the headers are refused; anywhere after, the same.
    for at in [66, 100, 1513, 1514, 1515, 2048, 2049, 19_999, f.len()] {
        assert_eq!(cut(&f, v, Some(at)).unwrap(), whole, "split at {at}");
    }
    assert_eq!(cut(&f, v, Some(40)), Err(GsoError::Malformed));
}

#[test]
fn super_frames_that_cannot_be_cut_are_refused_by_reason() {
    let o = Opts::new(Kind::Tcp4, 8000, 1448);
    let (f, v) = super_frame(o);
    let with = |g: VnetHdr| cut(&f, g, None);
    // Kinds not cut here.
    for t in [VnetHdr::GSO_UDP, 2, 0x7f] {
        let g = VnetHdr { gso_type: t, ..v };
        assert_eq!(with(g), Err(GsoError::BadType), "type {t}");
    }
    // Type and headers disagree, offsets and sizes wrong.
    let bad = [
        VnetHdr {
            gso_type: VnetHdr::GSO_TCPV6,
            ..v
        },
        VnetHdr {
            gso_type: VnetHdr::GSO_UDP_L4,
            ..v
        },
        VnetHdr { gso_size: 0, ..v },
        VnetHdr {
            csum_start: v.csum_start + 4,
            ..v
        },
        VnetHdr {
            csum_offset: 6,
            ..v
        },
    ];
    for g in bad {
        assert_eq!(with(g), Err(GsoError::Malformed), "{g:?}");
    }
    // Headers cut short or lying: IP length beyond the frame, not IP,
    // a fragment, a TCP header longer than the packet.
    let long = super_kit(o).ip_len(f.len() as u16).build();
    let arp = Kit::ether(0x0806).payload(&f[14..]).build();
    let frag = super_kit(o).fragment(0, true).build();
    let doff = super_kit(o).tcp_header_len(4).build();
    for (what, g) in [
        ("length", long),
        ("arp", arp),
        ("fragment", frag),
        ("doff", doff),
    ] {
        assert_eq!(cut(&g, v, None), Err(GsoError::Malformed), "{what}");
    }
    assert_eq!(cut(&f[..50], v, None), Err(GsoError::Malformed));
    // Segments larger than a slot.
    let big = VnetHdr {
        gso_size: 4000,
        ..v
    };
    assert_eq!(with(big), Err(GsoError::Oversize));
    // Cut short on the way (the ring or the buffer held only part of it).
    let mut pool = Pool::new(64);
    let src = Src {
        head: &f[..3000],
        tail: &[],
    };
    let r = segment(src, f.len(), &info(v), 0, &mut pool, 64, |_| panic!());
    assert_eq!(r, Err(GsoError::Truncated));
    // More segments than free slots, or than room.
    let mut pool = Pool::new(5);
    let src = Src {
        head: &f,
        tail: &[],
    };
    let r = segment(src, f.len(), &info(v), 0, &mut pool, 64, |_| panic!());
    assert_eq!(r, Err(GsoError::NoSlots));
    assert_eq!(pool.available(), 5, "no slot taken");
    let mut pool = Pool::new(64);
    let r = segment(src, f.len(), &info(v), 0, &mut pool, 5, |_| panic!());
    assert_eq!(r, Err(GsoError::NoSlots));
    assert_eq!(pool.available(), 64);
}

#[test]
fn segments_beyond_the_burst_wait_in_order_and_errors_are_counted() {
    let o = Opts::new(Kind::Tcp4, 20 * 1000, 1000);
    let (f, v) = super_frame(o);
    let mut pool = Pool::new(100);
    let mut g = Segmenter::new();
    let mut batch = Batch::new();
    let mut budget = 8;
    let mut bytes = 0;
    let src = Src {
        head: &f,
        tail: &[],
    };
    g.cut(
        src,
        f.len(),
        &info(v),
        0,
        &mut pool,
        &mut batch,
        &mut budget,
        &mut bytes,
    );
    assert_eq!((batch.len(), budget), (8, 0));
    assert!(g.pending());
    // A frame received meanwhile waits behind them.
    let mut later = pool.alloc().unwrap();
    later.set_frame(&[0xaa; 60]);
    assert!(g.pass(later, &mut pool, &mut batch, &mut budget, &mut bytes));
    let mut segs: Vec<Vec<u8>> = batch.drain(..).map(|p| p.data().to_vec()).collect();
    let mut budget = 32;
    g.drain(&mut batch, &mut budget, &mut bytes);
    assert!(!g.pending());
    assert_eq!(batch.len(), 13);
    assert_eq!(batch[12].data(), &[0xaa; 60]);
    segs.extend(batch.drain(..12).map(|p| p.data().to_vec()));
    check(o, &segs);
    assert_eq!(
        bytes,
        segs.iter().map(|s| s.len() as u64).sum::<u64>() + 60,
        "bytes of every frame handed on"
    );
    // Counts: one frame of 20 segments; one malformed, one without slots.
    let bad = VnetHdr { gso_size: 0, ..v };
    let mut budget = 64;
    g.cut(
        src,
        f.len(),
        &info(bad),
        0,
        &mut pool,
        &mut batch,
        &mut budget,
        &mut bytes,
    );
    let mut few = Pool::new(3);
    g.cut(
        src,
        f.len(),
        &info(v),
        0,
        &mut few,
        &mut batch,
        &mut budget,
        &mut bytes,
    );
    let counters = Counters::default();
    let mut stats = QueueStats::default();
    g.flush(&counters, &mut stats);
    let snap = counters.snapshot(RX_SOCKET);
    assert_eq!(snap["rx_gso_frames"], 1);
    assert_eq!(snap["rx_gso_segments"], 20);
    assert_eq!(snap["rx_gso_malformed"], 1);
    assert_eq!(snap["rx_gso_no_slots"], 1);
    assert_eq!(snap["rx_truncated"], 0);
    assert_eq!((stats.drops, stats.errors), (2, 1));
    // Flushing again adds nothing.
    g.flush(&counters, &mut stats);
    assert_eq!(counters.snapshot(RX_SOCKET)["rx_gso_frames"], 1);
}

#[test]
fn the_fast_sum_matches_the_plain_one() {
    for n in 0..70 {
        let b: Vec<u8> = (0..n).map(|i| (i * 97 + 13) as u8).collect();
        let plain = crate::wire::checksum::sum(&b, 0) as u16;
        assert_eq!(fold(sum(&b, 0)), plain, "{n} bytes");
    }
}

/// The cost of cutting, against copying the same wire frames one by one
/// (what the driver does when offloads are off). Run with
/// `cargo test --release -p hpio-nf --lib gso_cost -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn gso_cost() {
    use std::time::Instant;
    let rounds = 20_000;
    for (kind, payload, gso) in [
        (Kind::Tcp4, 64_000, 1448),
        (Kind::Tcp6, 64_000, 1428),
        (Kind::Udp4, 64_000, 1472),
        (Kind::Tcp4, 2896, 1448),
    ] {
        let o = Opts::new(kind, payload, gso);
        let (f, v) = super_frame(o);
        let i = info(v);
        let segs = payload.div_ceil(usize::from(gso));
        let mut pool = Pool::new(64);
        let mut batch = Batch::new();
        let src = Src {
            head: &f,
            tail: &[],
        };
        let mut best_cut = f64::MAX;
        let mut best_copy = f64::MAX;
        let wire = segment(src, f.len(), &i, 0, &mut pool, 64, |p| batch.push(p)).unwrap();
        let frames: Vec<Vec<u8>> = batch.iter().map(|p| p.data().to_vec()).collect();
        pool.free_batch(&mut batch);
        assert_eq!(wire, segs);
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..rounds {
                segment(src, f.len(), &i, 0, &mut pool, 64, |p| batch.push(p)).unwrap();
                pool.free_batch(&mut batch);
            }
            best_cut = best_cut.min(t.elapsed().as_nanos() as f64 / rounds as f64);
            let t = Instant::now();
            for _ in 0..rounds {
                for w in &frames {
                    let mut p = pool.alloc().unwrap();
                    p.recv_buf()[..w.len()].copy_from_slice(w);
                    p.finish_recv(w.len(), w.len(), 0);
                    batch.push(p);
                }
                pool.free_batch(&mut batch);
            }
            best_copy = best_copy.min(t.elapsed().as_nanos() as f64 / rounds as f64);
        }
        let bytes: usize = frames.iter().map(Vec::len).sum();
        println!(
            "{kind:?} {payload} B payload, gso_size {gso}: {segs} segments; cut {best_cut:.0} ns \
             ({:.0} ns/segment, {:.3} ns/byte); copying the same {segs} wire frames \
             {best_copy:.0} ns ({:.0} ns/frame); difference {:.0} ns/segment",
            best_cut / segs as f64,
            best_cut / bytes as f64,
            best_copy / segs as f64,
            (best_cut - best_copy) / segs as f64,
        );
    }
}
