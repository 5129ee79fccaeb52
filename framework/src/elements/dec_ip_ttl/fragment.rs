//! Cutting an IPv4 packet longer than the outgoing link's MTU into
//! fragments, as a router does (RFC 791 section 3.2, RFC 1812 section
//! 5.2.6): each fragment carries a multiple of 8 data bytes (but the last),
//! the identification is kept, offsets count from the packet's own (a
//! fragment is cut again into smaller ones correctly), MF is set on all but
//! the last, which keeps the packet's own MF. The first fragment has every
//! option; the later ones only those whose copy flag is set.
//!
//! The fragments but the last are made in fresh buffers from the worker's
//! pool, in order; the packet's own buffer becomes the last fragment: its
//! data stays where it is and the Ethernet and IP headers are written right
//! in front of it. Nothing is allocated: the later fragments' header is built
//! on the stack.

use super::{MALFORMED, NO_BUFFER};
use crate::element::{Context, DropReason, Output};
use crate::packet::Packet;
use crate::wire::checksum::checksum;
use crate::wire::{ipv4_copied_options, Ipv4Packet};

/// Bytes of an IPv4 header without options.
const MIN_HEADER: usize = 20;
/// Most bytes of an IPv4 header (15 words).
const MAX_HEADER: usize = 60;
/// Largest offset + length a fragment may have: a datagram is at most
/// 65,535 bytes, and the offset field counts 8-byte units in 13 bits.
const MAX_END: usize = 65535;

/// How a packet is cut: the later fragments' header and the data each
/// fragment carries.
struct Plan {
    /// Where the IPv4 header starts in the frame.
    l3: usize,
    /// Header length of the first fragment: the packet's own.
    first_hl: usize,
    /// The header of the later fragments: the packet's fixed header and its
    /// options that have the copy flag, padded (`later_hl` bytes used).
    later: [u8; MAX_HEADER],
    later_hl: usize,
    /// The packet's own fragment offset in bytes and MF flag.
    base: usize,
    more: bool,
    /// Data bytes after the header.
    data: usize,
    /// Data bytes in the first fragment and in each later one but the last
    /// (multiples of 8).
    first_room: usize,
    later_room: usize,
}

impl Plan {
    /// The plan for the IPv4 packet at `l3` in `frame` (a parse with
    /// status `Ok` checked its header and total lengths) on a link of
    /// `mtu`, or `None` when its options are malformed, its data would
    /// reach past 65,535 bytes, or it fits the MTU.
    fn new(frame: &[u8], l3: usize, mtu: usize) -> Option<Plan> {
        let ip = Ipv4Packet::at(frame, l3)?;
        let first_hl = ip.header_len();
        let data = usize::from(ip.total_len()).checked_sub(first_hl)?;
        let base = usize::from(ip.frag_offset());
        let mut later = [0u8; MAX_HEADER];
        later[..MIN_HEADER].copy_from_slice(frame.get(l3..l3 + MIN_HEADER)?);
        let mut options = [0u8; MAX_HEADER - MIN_HEADER];
        let n = ipv4_copied_options(frame.get(l3 + MIN_HEADER..l3 + first_hl)?, &mut options)?;
        later[MIN_HEADER..MIN_HEADER + n].copy_from_slice(&options[..n]);
        let later_hl = MIN_HEADER + n;
        let first_room = mtu.checked_sub(first_hl)? & !7;
        let later_room = mtu.checked_sub(later_hl)? & !7;
        let fits = base + data <= MAX_END && first_room > 0 && later_room > 0;
        (fits && data > first_room).then_some(Plan {
            l3,
            first_hl,
            later,
            later_hl,
            base,
            more: ip.more_frags(),
            data,
            first_room,
            later_room,
        })
    }

    /// How many fragments: the first, then as many later ones as the rest needs.
    fn count(&self) -> usize {
        1 + (self.data - self.first_room).div_ceil(self.later_room)
    }
}

/// Sends the fragments of `pkt`, an IPv4 packet at `l3` longer than `mtu`
/// that may be fragmented, to output 0 in order, and returns how many.
/// Refused, with the drop reason: malformed options or offsets
/// (`malformed`), fewer free buffers in the pool than new fragments
/// (`no-buffer`; nothing is sent then).
pub(super) fn fragment(
    cx: &mut Context<'_>,
    out: &mut Output,
    mut pkt: Packet,
    l3: usize,
    mtu: usize,
) -> Result<usize, (Packet, DropReason)> {
    let Some(plan) = Plan::new(pkt.data(), l3, mtu) else {
        return Err((pkt, MALFORMED));
    };
    let count = plan.count();
    if cx.pool().available() < count - 1 {
        return Err((pkt, NO_BUFFER));
    }
    let mut pos = 0;
    for i in 0..count - 1 {
        let (hdr, room) = match i {
            0 => (&pkt.data()[l3..l3 + plan.first_hl], plan.first_room),
            _ => (&plan.later[..plan.later_hl], plan.later_room),
        };
        // Only a packet larger than the pool's slots (made outside it) gets
        // here, after the fragments before it were sent.
        let Some(f) = new_fragment(cx, &pkt, &plan, hdr, pos, room) else {
            return Err((pkt, NO_BUFFER));
        };
        out.push(0, f);
        pos += room;
    }
    if become_last(&mut pkt, &plan, pos).is_none() {
        return Err((pkt, MALFORMED));
    }
    out.push(0, pkt);
    cx.trace_note(|| format!("cut into {count} fragments of at most {mtu} bytes"));
    Ok(count)
}

/// A fragment of `pkt` in a fresh buffer: its Ethernet header (tags
/// included), the IP header `hdr` and `len` data bytes from `pos`, MF set.
fn new_fragment(
    cx: &mut Context<'_>,
    pkt: &Packet,
    plan: &Plan,
    hdr: &[u8],
    pos: usize,
    len: usize,
) -> Option<Packet> {
    let (l3, hl) = (plan.l3, hdr.len());
    let mut f = cx.alloc()?;
    if f.set_len(l3 + hl + len).is_err() {
        cx.free(f);
        return None;
    }
    f.set_timestamp(pkt.timestamp());
    f.set_in_port(pkt.in_port());
    *f.anno_mut() = *pkt.anno();
    let src = pkt.data();
    let at = l3 + plan.first_hl + pos;
    let d = f.data_mut();
    d[..l3].copy_from_slice(&src[..l3]);
    d[l3 + hl..].copy_from_slice(&src[at..at + len]);
    write_header(&mut d[l3..l3 + hl], hdr, len, plan.base + pos, true);
    Some(f)
}

/// Makes `pkt` its own last fragment, the data from `pos` on: the Ethernet
/// header moves up to just before where the later fragments' IP header goes,
/// in front of the data, which stays in place.
fn become_last(pkt: &mut Packet, plan: &Plan, pos: usize) -> Option<()> {
    let (l3, hl) = (plan.l3, plan.later_hl);
    let len = plan.data - pos;
    // The later header is never longer than the first: pos > 0 makes room.
    let shift = (plan.first_hl + pos).checked_sub(hl)?;
    pkt.data_mut().copy_within(..l3, shift);
    pkt.pull_front(shift).ok()?;
    pkt.set_len(l3 + hl + len).ok()?;
    let d = pkt.data_mut();
    write_header(
        &mut d[l3..l3 + hl],
        &plan.later[..hl],
        len,
        plan.base + pos,
        plan.more,
    );
    Some(())
}

/// Writes to `dst` the IPv4 header `src` (as long as `dst`) with the length
/// of a fragment of `len` data bytes at `offset`, MF `more`, DF clear, and
/// its checksum.
fn write_header(dst: &mut [u8], src: &[u8], len: usize, offset: usize, more: bool) {
    dst.copy_from_slice(src);
    let mut ip = Ipv4Packet::new_unchecked(&mut *dst);
    ip.set_header_len(src.len());
    ip.set_total_len((src.len() + len) as u16);
    ip.set_frag(false, more, offset as u16);
    ip.set_checksum(0);
    let c = checksum(dst);
    Ipv4Packet::new_unchecked(dst).set_checksum(c);
}
