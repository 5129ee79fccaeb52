//! The header rewrites of Nat44: an endpoint (address and port, or ICMP
//! query identifier) replaced with every checksum updated incrementally
//! (RFC 1624), and ICMP errors whose quoted datagram is translated too.

use crate::wire::checksum::{apply_delta, delta};
use crate::wire::napt::{self, ICMP_HLEN, ICMP_ID};
use crate::wire::{be16, set_be16, IcmpPacket, Ipv4Packet};
use crate::wire::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

/// Which endpoint of a header a rewrite replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Src,
    Dst,
}

/// ICMP types that are queries with an identifier (RFC 792): echo and
/// timestamp, requests and replies.
pub(super) const ECHO_REPLY: u8 = 0;
pub(super) const ECHO_REQUEST: u8 = 8;
pub(super) const TIMESTAMP: u8 = 13;
pub(super) const TIMESTAMP_REPLY: u8 = 14;

/// Whether ICMP type `t` is an error that quotes a datagram (destination
/// unreachable, source quench, time exceeded, parameter problem).
#[inline]
pub(super) fn is_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 11 | 12)
}

/// Whether ICMP type `t` is a query request / reply.
#[inline]
pub(super) fn is_request(t: u8) -> bool {
    t == ECHO_REQUEST || t == TIMESTAMP
}

#[inline]
pub(super) fn is_reply(t: u8) -> bool {
    t == ECHO_REPLY || t == TIMESTAMP_REPLY
}

/// The RFC 1624 difference (`~m + m'`, not folded: at most 18 bits) of an
/// IPv4 address changing from `old` to `new`.
#[inline(always)]
fn addr_delta(old: u32, new: u32) -> u32 {
    (!old >> 16 & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff)
}

/// Checksum `check` after the unfolded difference `d` (below 2^20):
/// RFC 1624 eq. 3, `~(~check + d)`, with a fixed number of folds.
#[inline(always)]
fn apply(check: u16, d: u32) -> u16 {
    let x = (!check) as u32 + d;
    let x = (x & 0xffff) + (x >> 16);
    let x = (x & 0xffff) + (x >> 16);
    !(x as u16)
}

/// Replaces the IPv4 address at `end` of the header at `l3` with `addr`,
/// updating the header checksum; returns the address's checksum difference
/// (for a pseudo-header checksum).
#[inline(always)]
pub(super) fn rewrite_addr(f: &mut [u8], l3: usize, end: End, addr: u32) -> u32 {
    let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
    let old = match end {
        End::Src => u32::from(ip.src_addr()),
        End::Dst => u32::from(ip.dst_addr()),
    };
    match end {
        End::Src => ip.set_src_addr(addr.into()),
        End::Dst => ip.set_dst_addr(addr.into()),
    }
    let d = addr_delta(old, addr);
    let c = apply(ip.checksum(), d);
    ip.set_checksum(c);
    d
}

/// Replaces the endpoint at `end` of a TCP/UDP packet (address and port)
/// or an ICMP query (address and identifier: `end` names the address; the
/// identifier is the query's one) with (`addr`, `port`), updating the IP
/// header checksum and, when `l4_csum` (it lies inside the frame), the
/// transport checksum: TCP's and UDP's over the pseudo-header, ICMP's over
/// the identifier. A UDP checksum of 0 (none sent) stays 0, and one that
/// comes out 0 is sent as 0xffff (RFC 768).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rewrite(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    proto: u8,
    end: End,
    addr: u32,
    port: u16,
    l4_csum: bool,
) {
    let d_addr = rewrite_addr(f, l3, end, addr);
    let (at, pseudo) = match (proto, end) {
        (IPPROTO_ICMP, _) => (ICMP_ID, 0),
        (_, End::Src) => (napt::SRC_PORT, d_addr),
        (_, End::Dst) => (napt::DST_PORT, d_addr),
    };
    let old = be16(f, l4 + at);
    set_be16(f, l4 + at, port);
    if !l4_csum {
        return;
    }
    let Some(c_at) = napt::checksum_at(proto) else {
        return;
    };
    let c = be16(f, l4 + c_at);
    if proto == IPPROTO_UDP && c == 0 {
        return;
    }
    let mut nc = apply(c, pseudo + (!old) as u32 + port as u32);
    if proto == IPPROTO_UDP && nc == 0 {
        nc = 0xffff;
    }
    set_be16(f, l4 + c_at, nc);
}

/// The checksum differences (RFC 1624 `~m + m'`, folded to 16 bits) of
/// a TCP or UDP source endpoint changing from (`from`, `from_port`) to
/// (`to`, `to_port`): the IPv4 header's (the address) and the transport
/// checksum's (the address in the pseudo-header, and the port). A mapping
/// keeps them, so that a packet going out needs no difference computed.
pub(super) fn deltas(from: u32, from_port: u16, to: u32, to_port: u16) -> (u16, u16) {
    let fold = |x: u32| {
        let x = (x & 0xffff) + (x >> 16);
        ((x & 0xffff) + (x >> 16)) as u16
    };
    let d = addr_delta(from, to);
    (fold(d), fold(d + (!from_port) as u32 + to_port as u32))
}

/// [`rewrite`] of a TCP or UDP packet (`proto`) by a mapping's kept
/// [`deltas`]: going out (`end` the source, the internal endpoint, becomes
/// the external one) with (`d_ip`, `d_l4`) as kept; coming in (`end` the
/// destination, back to the internal endpoint) with their complements (in
/// one's complement, `!d` undoes `d`). Nothing is read from the frame but
/// the two checksums. Only the outbound path uses it: calling it from the
/// inbound one too made the outbound code 4 instructions per packet longer
/// (code generation), which the benchmark measures and inbound does not.
#[inline(always)]
pub(super) fn rewrite_kept(
    f: &mut [u8],
    (l3, l4): (usize, usize),
    proto: u8,
    end: End,
    (addr, port): (u32, u16),
    (d_ip, d_l4): (u16, u16),
) {
    let mut ip = Ipv4Packet::new_unchecked(&mut f[l3..]);
    let at = match end {
        End::Src => {
            ip.set_src_addr(addr.into());
            napt::SRC_PORT
        }
        End::Dst => {
            ip.set_dst_addr(addr.into());
            napt::DST_PORT
        }
    };
    let c = apply(ip.checksum(), d_ip as u32);
    ip.set_checksum(c);
    set_be16(f, l4 + at, port);
    let Some(c_at) = napt::checksum_at(proto).map(|c| l4 + c) else {
        return;
    };
    let c = be16(f, c_at);
    if proto == IPPROTO_UDP && c == 0 {
        return;
    }
    let nc = apply(c, d_l4 as u32);
    let nc = if proto == IPPROTO_UDP && nc == 0 {
        0xffff
    } else {
        nc
    };
    set_be16(f, c_at, nc);
}

/// The datagram an ICMP error quotes, as far as translation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quoted {
    /// Offsets of its IP and transport headers in the frame.
    pub ip: usize,
    pub l4: usize,
    /// Its IP protocol (TCP, UDP, or ICMP with a query inside).
    pub proto: u8,
    /// Its source and destination addresses (host order).
    pub src: u32,
    pub dst: u32,
    /// Its source and destination ports (the identifier twice for ICMP).
    pub sport: u16,
    pub dport: u16,
    /// Where the outer IP datagram ends (Ethernet padding excluded).
    pub end: usize,
}

/// The quoted datagram of the ICMP error at `l4` (outer IP header at
/// `l3`), or `None` when it is not IPv4 TCP, UDP or an ICMP query with at
/// least 8 bytes of its transport header, or is a non-first fragment.
pub(super) fn quoted(f: &[u8], l3: usize, l4: usize) -> Option<Quoted> {
    let outer = Ipv4Packet::at(f, l3)?;
    let end = (l3 + outer.total_len() as usize).min(f.len());
    let ip = l4 + ICMP_HLEN;
    let v = Ipv4Packet::at(&f[..end], ip)?;
    let q4 = ip + v.header_len();
    if v.version() != 4 || v.header_len() < Ipv4Packet::<&[u8]>::LEN || v.frag_offset() != 0 {
        return None;
    }
    let t = f[..end].get(q4..q4 + 8)?;
    let (sport, dport) = match v.protocol() {
        IPPROTO_TCP | IPPROTO_UDP => (be16(t, napt::SRC_PORT), be16(t, napt::DST_PORT)),
        IPPROTO_ICMP if is_request(t[0]) || is_reply(t[0]) => (be16(t, ICMP_ID), be16(t, ICMP_ID)),
        _ => return None,
    };
    Some(Quoted {
        ip,
        l4: q4,
        proto: v.protocol(),
        src: v.src_addr().into(),
        dst: v.dst_addr().into(),
        sport,
        dport,
        end,
    })
}

/// Most bytes of a quoted datagram a translation changes: an IP header
/// with options (60) and a TCP header up to its checksum (18), rounded up.
const QUOTED_SPAN: usize = 80;

/// Translates the ICMP error at `l4` (outer IP header at `l3`) quoting
/// `q`: the quoted datagram's endpoint at `inner` becomes (`addr`, `port`)
/// (its own checksums updated, the transport one when quoted), the outer
/// address at the other end becomes `addr`, and the ICMP checksum follows
/// every quoted byte that changed.
pub(super) fn translate_error(
    f: &mut [u8],
    l3: usize,
    l4: usize,
    q: &Quoted,
    inner: End,
    addr: u32,
    port: u16,
) {
    // The quoted bytes that can change, before: 16-bit aligned from the
    // quoted IP header (8 bytes into the ICMP message).
    let span = (q.end - q.ip).min(QUOTED_SPAN) & !1;
    let mut before = [0u8; QUOTED_SPAN];
    before[..span].copy_from_slice(&f[q.ip..q.ip + span]);
    let csum_in = napt::checksum_at(q.proto).is_some_and(|c| q.l4 + c + 2 <= q.end);
    rewrite(f, q.ip, q.l4, q.proto, inner, addr, port, csum_in);
    let d = delta(0, &before[..span], &f[q.ip..q.ip + span]);
    let mut icmp = IcmpPacket::new_unchecked(&mut f[l4..]);
    let c = apply_delta(icmp.checksum(), d);
    icmp.set_checksum(c);
    let outer = match inner {
        End::Src => End::Dst,
        End::Dst => End::Src,
    };
    rewrite_addr(f, l3, outer, addr);
}
