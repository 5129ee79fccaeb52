//! `DecIpTtl`: decrements the IPv4 TTL or IPv6 hop limit of forwarded packets.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;
use crate::wire::{L3Kind, ParseStatus};

mod fragment;
#[cfg(test)]
mod tests;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Neither IPv4 nor IPv6.
        NOT_IP = "not-ip",
        /// The IP header is cut short or inconsistent; for a packet to
        /// fragment, also malformed options or an offset past 65,535 bytes.
        MALFORMED = "malformed",
        /// A packet to fragment needed more buffers than the pool had free.
        NO_BUFFER = "no-buffer",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        EXPIRED = "expired": "Packets whose TTL or hop limit ran out (sent to output 1)",
        TOO_BIG = "too-big": "Packets longer than `mtu` that may not be fragmented (output 2)",
        FRAGMENTED = "fragmented": "IPv4 packets longer than `mtu` sent as fragments (output 0)",
        FRAGMENTS = "fragments": "Fragments sent for them",
    ]
}

/// The `DecIpTtl` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "DecIpTtl",
        summary: "Decrements the IPv4 TTL or IPv6 hop limit; expired packets to output 1",
        description: "\
What a router does to every packet it forwards (RFC 1812 section 5.3.1, RFC
8200): a packet whose IPv4 TTL or IPv6 hop limit is 0 or 1 cannot be
forwarded and goes, unchanged, to output 1 (into an IcmpError sending
time-exceeded, which is what makes `traceroute` show the router); every
other packet leaves by output 0 with the field one lower. The IPv4 header
checksum is updated incrementally (RFC 1624), not recomputed. Frames that
are not IP, or whose IP header is cut short, are dropped and counted.

Notes: Click's DecIPTTL; place it after the route lookup and before the
neighbour resolver, so that packets for the router itself (handled before
the lookup) keep their TTL.

With `mtu` (the outgoing link's), packets whose IP length exceeds it are
fragmented or refused. An IPv4 packet without DF is cut into fragments of
at most `mtu` bytes of IP, which leave by output 0 in order (RFC 791, RFC
1812 section 4.2.2.7): each carries a multiple of 8 data bytes but the
last; identification, TTL (decremented), TOS and addresses are the
packet's; offsets count from the packet's own offset and the last fragment
keeps its MF flag, so a fragment is cut again correctly; the first
fragment has all the options, the later ones only those whose copy flag
is set. The fragments keep the packet's Ethernet header (VLAN tags too),
timestamp, input port and annotations (IpLookup's next hop). The packet's
own buffer becomes the last fragment; the others come from the worker's
pool, and when it has too few free buffers the packet is dropped as
`no-buffer` (no fragment sent). A third output takes the packets that may
not be fragmented (IPv4 with DF set, and all IPv6: routers never fragment
IPv6), unchanged, for IcmpError's input 2 (fragmentation needed / packet
too big, which path-MTU discovery relies on).",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Configured("2, or 3 with `mtu` (output 2: too big)"),
        params: &[ParamSpec {
            name: "mtu",
            ty: ParamType::Int {
                min: 68,
                max: 65535,
            },
            need: Need::Optional,
            doc: "MTU of the outgoing link: longer IPv4 packets without DF are fragmented, \
                  others go to output 2",
        }],
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: &[],
        example: "\
[elements.ttl]
class = \"DecIpTtl\"
mtu = 1500",
        see_also: &["IpLookup", "IcmpError"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let mtu = match p.get("mtu") {
        Some(_) => Some(p.usize("mtu")?),
        None => None,
    };
    let e = DecIpTtl {
        mtu: mtu.unwrap_or(usize::MAX),
        ..DecIpTtl::default()
    };
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        2 + usize::from(mtu.is_some()),
        e,
    ))
}

/// Decrements TTL / hop limit, and fragments.
#[derive(Debug, Clone)]
pub struct DecIpTtl {
    /// `usize::MAX` without `mtu`.
    mtu: usize,
    expired: u64,
    too_big: u64,
    fragmented: u64,
    fragments: u64,
}

impl Default for DecIpTtl {
    fn default() -> Self {
        DecIpTtl {
            mtu: usize::MAX,
            expired: 0,
            too_big: 0,
            fragmented: 0,
            fragments: 0,
        }
    }
}

impl Element for DecIpTtl {
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        // The common path in place, the batch moving on whole when every
        // packet takes it; from the first that does not, one by one.
        let n = self.forward_run(batch);
        out.push_first(0, batch, n);
        for mut pkt in batch.drain(..) {
            let h = pkt.headers();
            if h.l3 == L3Kind::Other {
                out.drop(pkt, NOT_IP);
                continue;
            }
            if matches!(
                h.status,
                ParseStatus::L2Truncated | ParseStatus::L3Malformed
            ) {
                out.drop(pkt, MALFORMED);
                continue;
            }
            let l3 = usize::from(h.l3_off);
            let v4 = h.l3 == L3Kind::Ipv4;
            // The TTL is byte 8 of an IPv4 header, the hop limit byte 7 of IPv6.
            let at = if v4 { l3 + 8 } else { l3 + 7 };
            let ttl = pkt.data()[at];
            if ttl <= 1 {
                self.expired += 1;
                out.push(1, pkt);
                continue;
            }
            let too_big = self.mtu != usize::MAX && ip_len(pkt.data(), l3, v4) > self.mtu;
            // DF is the second-highest bit of byte 6 of an IPv4 header.
            if too_big && !(v4 && pkt.data()[l3 + 6] & 0x40 == 0) {
                self.too_big += 1;
                out.push(2, pkt);
                continue;
            }
            decrement(pkt.data_mut(), l3, at, v4);
            if !too_big {
                out.push(0, pkt);
                continue;
            }
            match fragment::fragment(cx, out, pkt, l3, self.mtu) {
                Ok(n) => {
                    self.fragmented += 1;
                    self.fragments += n as u64;
                }
                Err((pkt, reason)) => out.drop(pkt, reason),
            }
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(EXPIRED, self.expired);
        report(TOO_BIG, self.too_big);
        report(FRAGMENTED, self.fragmented);
        report(FRAGMENTS, self.fragments);
    }
}

impl DecIpTtl {
    /// Decrements, in place, the packets from the start of `batch` that
    /// leave by output 0 unfragmented (IP with a whole header, TTL or hop
    /// limit above 1, not longer than `mtu`); how many. The first packet
    /// that does not is left as it is, with all after it.
    #[inline(always)]
    fn forward_run(&self, batch: &mut Batch) -> usize {
        let mut n = 0;
        for pkt in batch.iter_mut() {
            let h = pkt.headers();
            if h.l3 == L3Kind::Other
                || matches!(
                    h.status,
                    ParseStatus::L2Truncated | ParseStatus::L3Malformed
                )
            {
                break;
            }
            let l3 = usize::from(h.l3_off);
            let ip = pkt.data_mut().get_mut(l3..).unwrap_or_default();
            // Fixed-size views of the header (the parse found it whole):
            // no bounds check per field.
            let ok = if h.l3 == L3Kind::Ipv4 {
                match ip.first_chunk_mut::<20>() {
                    Some(ip) if ip[8] > 1 && usize::from(be16(ip, 2)) <= self.mtu => {
                        ip[8] -= 1;
                        let c = ttl_check(be16(ip, 10));
                        ip[10..12].copy_from_slice(&c.to_be_bytes());
                        true
                    }
                    _ => false,
                }
            } else {
                match ip.first_chunk_mut::<40>() {
                    Some(ip) if ip[7] > 1 && 40 + usize::from(be16(ip, 4)) <= self.mtu => {
                        ip[7] -= 1;
                        true
                    }
                    _ => false,
                }
            };
            if !ok {
                break;
            }
            n += 1;
        }
        n
    }
}

/// The IP length of the packet at `l3` in `d`: IPv4's total length, or
/// IPv6's payload length and fixed header.
#[inline(always)]
fn ip_len(d: &[u8], l3: usize, v4: bool) -> usize {
    if v4 {
        usize::from(u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]))
    } else {
        40 + usize::from(u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]))
    }
}

/// Lowers the TTL or hop limit at `at` (at least 2) by one; for IPv4
/// (header at `l3`) updates the header checksum.
#[inline(always)]
fn decrement(d: &mut [u8], l3: usize, at: usize, v4: bool) {
    d[at] -= 1;
    if v4 {
        let c = u16::from_be_bytes([d[l3 + 10], d[l3 + 11]]);
        d[l3 + 10..l3 + 12].copy_from_slice(&ttl_check(c).to_be_bytes());
    }
}

/// The big-endian 16-bit word at `at` of a fixed-size header view.
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

/// The IPv4 header checksum after the TTL dropped by one: RFC 1624 eq. 3,
/// HC' = ~(~HC + ~m + m'), where the TTL is the high byte of its 16-bit
/// word m, so m' = m - 0x100 and ~m + m' = 0xfeff whatever the word. The
/// sum is at most 0x1fefe: one fold carries it. (The same result as
/// `checksum::update16`, with neither word read.)
#[inline(always)]
fn ttl_check(c: u16) -> u16 {
    let s = u32::from(!c) + 0xfeff;
    !(((s & 0xffff) + (s >> 16)) as u16)
}
