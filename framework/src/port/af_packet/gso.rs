//! Super-frames cut into wire-sized segments (software GSO on receive).
//!
//! With segmentation and receive offloads on (the default on every Linux
//! interface), packet sockets see frames as the kernel holds them: a local
//! TCP socket's 64 KiB send (TSO/GSO), or wire segments a NIC or the stack
//! merged (GRO). Receive sockets set `PACKET_VNET_HDR`, so each frame comes
//! with its `virtio_net_hdr`: a super-frame says how it is to be cut
//! (`gso_type`, `gso_size`). [`segment`] cuts it the way the kernel's own
//! software GSO would, straight into pool slots:
//!
//! - every segment gets a copy of the headers (Ethernet, VLAN tags in the
//!   frame, IPv4 or IPv6 with extension headers, TCP with options or UDP)
//!   and the next `gso_size` bytes of payload (the last one the rest);
//! - IPv4: total length per segment, the IP ID incremented per segment, the
//!   header checksum recomputed; IPv6: the payload length;
//! - TCP: the sequence number advanced by the payload before it, FIN and
//!   PSH kept only on the last segment, CWR only on the first;
//! - UDP (`GSO_UDP_L4`): each segment is a datagram with its own UDP header
//!   and length;
//! - the TCP/UDP checksum computed in full for each segment (the super-frame
//!   usually holds only the pseudo-header sum, `NEEDS_CSUM`).
//!
//! A super-frame that cannot be cut is dropped whole and counted by reason
//! ([`GsoError`]); it is never passed on cut short. A burst never holds more
//! than its `max` frames: the segments beyond it wait in the queue's
//! backlog ([`Segmenter`]), which the next bursts empty before anything
//! else is read, so frames keep their order.

use std::collections::VecDeque;

use super::{restore_vlan, Counters};
use crate::packet::{Batch, Packet, Pool};
use crate::port::QueueStats;
use crate::sys::{RxInfo, VnetHdr};
use crate::wire::tcp_flags;

/// Most segments waiting in a queue's backlog (8 bytes each).
pub(super) const BACKLOG_MAX: usize = 8192;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Why a super-frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GsoError {
    /// A `gso_type` this driver does not cut (UFO, or unknown).
    BadType,
    /// Headers that do not match the `gso_type`, lie beyond the frame, or
    /// disagree with the lengths and offsets of the `virtio_net_hdr`.
    Malformed,
    /// A segment would not fit a slot.
    Oversize,
    /// More segments than free slots (or room in the backlog).
    NoSlots,
    /// The super-frame did not arrive whole.
    Truncated,
}

/// A received frame: `head` followed by `tail` (the part of a `recvmmsg`
/// frame past its slot; empty for a frame read from a ring).
#[derive(Debug, Clone, Copy)]
pub(super) struct Src<'a> {
    pub head: &'a [u8],
    pub tail: &'a [u8],
}

impl Src<'_> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Copies bytes `off..off + dst.len()` of the frame into `dst`.
    fn copy(&self, off: usize, dst: &mut [u8]) {
        let end = off + dst.len();
        let h = self.head.len();
        if end <= h {
            dst.copy_from_slice(&self.head[off..end]);
        } else if off >= h {
            dst.copy_from_slice(&self.tail[off - h..end - h]);
        } else {
            let (a, b) = dst.split_at_mut(h - off);
            a.copy_from_slice(&self.head[off..]);
            b.copy_from_slice(&self.tail[..end - h]);
        }
    }
}

/// Where the parts of a super-frame lie, and how it is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    l3: usize,
    l4: usize,
    /// Length of all headers (start of the payload).
    hdr: usize,
    /// End of the IP packet (any bytes after it are padding, dropped).
    end: usize,
    v6: bool,
    tcp: bool,
    gso: usize,
    segs: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Checks a super-frame's headers (which must lie in `h`, the frame's first
/// bytes; `len` is the whole frame's) against its `virtio_net_hdr`.
fn plan(h: &[u8], len: usize, v: &VnetHdr) -> Result<Plan, GsoError> {
    use GsoError::Malformed;
    let (want_v6, tcp) = match v.gso_type & !VnetHdr::GSO_ECN {
        VnetHdr::GSO_TCPV4 => (Some(false), true),
        VnetHdr::GSO_TCPV6 => (Some(true), true),
        VnetHdr::GSO_UDP_L4 => (None, false),
        _ => return Err(GsoError::BadType),
    };
    let need = |end: usize| {
        if end <= h.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    };
    // Ethernet, then any VLAN tags left in the frame.
    need(14)?;
    let mut l3 = 14;
    let mut et = be16(h, 12);
    while et == ETH_P_8021Q || et == ETH_P_8021AD {
        need(l3 + 4)?;
        et = be16(h, l3 + 2);
        l3 += 4;
    }
    let proto = if tcp { PROTO_TCP } else { PROTO_UDP };
    let (v6, l4, end) = ip_layer(h, l3, et, proto)?;
    if want_v6.is_some_and(|w| w != v6) || end > len {
        return Err(Malformed);
    }
    let hdr = if tcp {
        need(l4 + 20)?;
        l4 + usize::from(h[l4 + 12] >> 4) * 4
    } else {
        l4 + 8
    };
    let (check_at, min_l4) = if tcp { (16, 20) } else { (6, 8) };
    need(hdr)?;
    if hdr - l4 < min_l4 || hdr >= end {
        return Err(Malformed);
    }
    if v.flags & VnetHdr::NEEDS_CSUM != 0
        && (usize::from(v.csum_start) != l4 || usize::from(v.csum_offset) != check_at)
    {
        return Err(Malformed);
    }
    let gso = usize::from(v.gso_size);
    if gso == 0 {
        return Err(Malformed);
    }
    Ok(Plan {
        l3,
        l4,
        hdr,
        end,
        v6,
        tcp,
        gso,
        segs: (end - hdr).div_ceil(gso),
    })
}

/// The IP header at `l3` of EtherType `et`, carrying `proto`: whether it
/// is IPv6, where the transport header starts (past any IPv6 extension
/// headers) and where the IP packet ends.
#[inline(always)]
fn ip_layer(h: &[u8], l3: usize, et: u16, proto: u8) -> Result<(bool, usize, usize), GsoError> {
    use GsoError::Malformed;
    let need = |end: usize| {
        if end <= h.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    };
    Ok(match et {
        ETH_P_IPV4 => {
            need(l3 + 20)?;
            let ihl = usize::from(h[l3] & 0x0f) * 4;
            let frag = be16(h, l3 + 6) & 0x3fff;
            let tot = usize::from(be16(h, l3 + 2));
            if h[l3] >> 4 != 4 || ihl < 20 || frag != 0 || h[l3 + 9] != proto || tot < ihl {
                return Err(Malformed);
            }
            need(l3 + ihl)?;
            (false, l3 + ihl, l3 + tot)
        }
        ETH_P_IPV6 => {
            need(l3 + 40)?;
            let plen = usize::from(be16(h, l3 + 4));
            if h[l3] >> 4 != 6 || plen == 0 {
                return Err(Malformed);
            }
            let end = l3 + 40 + plen;
            // Hop-by-hop, routing and destination options may come first.
            let (mut nh, mut off) = (h[l3 + 6], l3 + 40);
            while matches!(nh, 0 | 43 | 60) {
                need(off + 8)?;
                let next = h[off];
                off += (usize::from(h[off + 1]) + 1) * 8;
                nh = next;
            }
            if nh != proto || off > end {
                return Err(Malformed);
            }
            (true, off, end)
        }
        _ => return Err(Malformed),
    })
}

/// One's-complement sum of `b` (as 16-bit big-endian words, an odd last
/// byte padded with zero), added to `acc`, not folded. The words are summed
/// in native byte order, 32 bits at a time into a 64-bit accumulator (which
/// the compiler vectorises), and the folded sum byte-swapped to big-endian
/// at the end: the one's-complement sum does not depend on byte order
/// (RFC 1071).
#[inline]
fn sum(b: &[u8], acc: u64) -> u64 {
    let mut c = b.chunks_exact(4);
    let mut s: u64 = (&mut c)
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .sum();
    let r = c.remainder();
    let mut last = [0u8; 4];
    last[..r.len()].copy_from_slice(r);
    s += u64::from(u32::from_ne_bytes(last));
    acc + u64::from(u16::from_be_bytes(fold(s).to_ne_bytes()))
}

#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Cuts super-frame `src` (its full length on the wire `wire`, its
/// `virtio_net_hdr` and VLAN tag in `info`, received at `ts`) into segments
/// in slots of `pool`, each handed to `out` in order, and returns how many.
/// Takes no slot and hands nothing on when it fails. At most `room`
/// segments.
pub(super) fn segment(
    src: Src<'_>,
    wire: usize,
    info: &RxInfo,
    ts: u64,
    pool: &mut Pool,
    room: usize,
    mut out: impl FnMut(Packet),
) -> Result<usize, GsoError> {
    if src.len() < wire {
        return Err(GsoError::Truncated);
    }
    let p = plan(src.head, src.len(), &info.vnet)?;
    if p.segs > room || p.segs > pool.available() {
        return Err(GsoError::NoSlots);
    }
    let h = &src.head[..p.hdr];
    let id0 = be16(h, p.l3 + 4);
    let seq0 = if p.tcp {
        u32::from_be_bytes([h[p.l4 + 4], h[p.l4 + 5], h[p.l4 + 6], h[p.l4 + 7]])
    } else {
        0
    };
    // Pseudo-header without the length: addresses and protocol.
    let addrs = if p.v6 {
        &h[p.l3 + 8..p.l3 + 40]
    } else {
        &h[p.l3 + 12..p.l3 + 20]
    };
    let pseudo = sum(addrs, u64::from(if p.tcp { PROTO_TCP } else { PROTO_UDP }));
    let check_at = p.l4 + if p.tcp { 16 } else { 6 };
    for k in 0..p.segs {
        let Some(mut pkt) = pool.alloc() else {
            // Counted above: cannot happen.
            return Err(GsoError::NoSlots);
        };
        let off = p.hdr + k * p.gso;
        let len = p.hdr + p.gso.min(p.end - off);
        let buf = pkt.recv_buf();
        if len > buf.len() {
            // The first segment is the longest: nothing was handed on.
            pool.free(pkt);
            return Err(GsoError::Oversize);
        }
        let b = &mut buf[..len];
        b[..p.hdr].copy_from_slice(h);
        src.copy(off, &mut b[p.hdr..]);
        if p.v6 {
            b[p.l3 + 4..p.l3 + 6].copy_from_slice(&((len - p.l3 - 40) as u16).to_be_bytes());
        } else {
            let ihl = p.l4 - p.l3;
            b[p.l3 + 2..p.l3 + 4].copy_from_slice(&((len - p.l3) as u16).to_be_bytes());
            b[p.l3 + 4..p.l3 + 6].copy_from_slice(&id0.wrapping_add(k as u16).to_be_bytes());
            b[p.l3 + 10..p.l3 + 12].fill(0);
            let c = !fold(sum(&b[p.l3..p.l3 + ihl], 0));
            b[p.l3 + 10..p.l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        let l4_len = len - p.l4;
        if p.tcp {
            let seq = seq0.wrapping_add((k * p.gso) as u32);
            b[p.l4 + 4..p.l4 + 8].copy_from_slice(&seq.to_be_bytes());
            if k > 0 {
                b[p.l4 + 13] &= !tcp_flags::CWR;
            }
            if k + 1 < p.segs {
                b[p.l4 + 13] &= !(tcp_flags::FIN | tcp_flags::PSH);
            }
        } else {
            b[p.l4 + 4..p.l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        b[check_at..check_at + 2].fill(0);
        let mut c = !fold(sum(&b[p.l4..], pseudo + l4_len as u64));
        if c == 0 && !p.tcp {
            // 0 means "no checksum" in UDP.
            c = 0xffff;
        }
        b[check_at..check_at + 2].copy_from_slice(&c.to_be_bytes());
        pkt.finish_recv(len, len, ts);
        if let Some(tag) = info.vlan {
            // A fresh slot has the headroom and a frame longer than 12 bytes.
            restore_vlan(&mut pkt, tag);
        }
        out(pkt);
    }
    Ok(p.segs)
}

/// Super-frames cut, by outcome, since the last [`Segmenter::flush`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct GsoCounts {
    pub frames: u64,
    pub segments: u64,
    pub bad_type: u64,
    pub malformed: u64,
    pub oversize: u64,
    pub no_slots: u64,
    pub truncated: u64,
}

/// A receive queue's segmentation state: the backlog of segments beyond a
/// burst and the counts. The backlog is allocated once, at its full size.
pub(super) struct Segmenter {
    backlog: VecDeque<Packet>,
    counts: GsoCounts,
}

impl Segmenter {
    pub(super) fn new() -> Segmenter {
        Segmenter {
            backlog: VecDeque::with_capacity(BACKLOG_MAX),
            counts: GsoCounts::default(),
        }
    }

    /// Segments wait for the next burst.
    #[inline]
    pub(super) fn pending(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Moves waiting segments into `batch` while `budget` lasts; adds their
    /// bytes to `bytes`.
    #[inline]
    pub(super) fn drain(&mut self, batch: &mut Batch, budget: &mut usize, bytes: &mut u64) {
        while *budget > 0 {
            let Some(p) = self.backlog.pop_front() else {
                break;
            };
            *bytes += p.len() as u64;
            batch.push(p);
            *budget -= 1;
        }
    }

    /// Passes `p` on: into `batch` while `budget` lasts and nothing waits,
    /// else to the backlog (keeping the order). False when the backlog is
    /// full and `p` went back to the pool (the caller counts it dropped).
    #[inline]
    pub(super) fn pass(
        &mut self,
        p: Packet,
        pool: &mut Pool,
        batch: &mut Batch,
        budget: &mut usize,
        bytes: &mut u64,
    ) -> bool {
        if *budget > 0 && self.backlog.is_empty() {
            *bytes += p.len() as u64;
            batch.push(p);
            *budget -= 1;
            true
        } else if self.backlog.len() < BACKLOG_MAX {
            self.backlog.push_back(p);
            true
        } else {
            pool.free(p);
            false
        }
    }

    /// Cuts a super-frame (see [`segment`]) and passes its segments on as
    /// [`Segmenter::pass`] does; counts the outcome.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cut(
        &mut self,
        src: Src<'_>,
        wire: usize,
        info: &RxInfo,
        ts: u64,
        pool: &mut Pool,
        batch: &mut Batch,
        budget: &mut usize,
        bytes: &mut u64,
    ) {
        let room = BACKLOG_MAX - self.backlog.len() + *budget;
        let backlog = &mut self.backlog;
        let r = segment(src, wire, info, ts, pool, room, |p| {
            if *budget > 0 && backlog.is_empty() {
                *bytes += p.len() as u64;
                batch.push(p);
                *budget -= 1;
            } else {
                // `room` leaves space for every segment.
                backlog.push_back(p);
            }
        });
        let c = &mut self.counts;
        match r {
            Ok(n) => {
                c.frames += 1;
                c.segments += n as u64;
            }
            Err(GsoError::BadType) => c.bad_type += 1,
            Err(GsoError::Malformed) => c.malformed += 1,
            Err(GsoError::Oversize) => c.oversize += 1,
            Err(GsoError::NoSlots) => c.no_slots += 1,
            Err(GsoError::Truncated) => c.truncated += 1,
        }
    }

    /// Counts one super-frame the kernel would not describe (its
    /// `gso_type` has no `virtio_net_hdr` equivalent; `recvmsg` fails
    /// with `EINVAL` and the frame is gone).
    pub(super) fn count_bad_type(&mut self) {
        self.counts.bad_type += 1;
    }

    /// Adds the counts to the port's counters and the queue's drops and
    /// errors (a dropped super-frame is one drop; all but a lack of slots
    /// are also errors), and resets them. Cheap when nothing happened.
    #[inline]
    pub(super) fn flush(&mut self, counters: &Counters, stats: &mut QueueStats) {
        if self.counts == GsoCounts::default() {
            return;
        }
        let c = std::mem::take(&mut self.counts);
        let errors = c.bad_type + c.malformed + c.oversize + c.truncated;
        stats.drops += errors + c.no_slots;
        stats.errors += errors;
        Counters::add(&counters.rx_gso_frames, c.frames);
        Counters::add(&counters.rx_gso_segments, c.segments);
        Counters::add(&counters.rx_gso_bad_type, c.bad_type);
        Counters::add(&counters.rx_gso_malformed, c.malformed);
        Counters::add(&counters.rx_gso_oversize, c.oversize);
        Counters::add(&counters.rx_gso_no_slots, c.no_slots);
        Counters::add(&counters.rx_truncated, c.truncated);
    }
}

#[cfg(test)]
#[path = "gso_tests.rs"]
pub(super) mod tests;
