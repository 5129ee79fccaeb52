//! `IcmpError`: answers packets the router cannot forward with an ICMP or
//! ICMPv6 error (time exceeded, destination unreachable, too big).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, DropReason, Element, ElementClass, Inputs, Need,
    Output, ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::{Batch, Packet};
use crate::wire::checksum::{checksum, fold, sum};
use crate::wire::{
    L3Kind, ParseStatus, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP,
};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Over the rate limit (`rate`, `burst`).
        RATE_LIMITED = "rate-limited",
        /// No error may be sent for it: it is an ICMP error itself (or a
        /// TCP reset, on input 3), a non-first fragment, from or to a
        /// multicast or broadcast address, or sent as a link-layer
        /// broadcast or multicast.
        NOT_ALLOWED = "not-allowed",
        /// No router address of the packet's family is configured.
        NO_ADDRESS = "no-address",
        /// Neither IPv4 nor IPv6, or the IP header (on input 3, the TCP
        /// header) is cut short.
        NOT_IP = "not-ip",
        /// No room in front of the frame for the new headers.
        NO_ROOM = "no-room",
        /// Input 3: neither UDP nor TCP (ICMP messages to the router that
        /// are not errors, other protocols): consumed without an answer.
        NO_ANSWER = "no-answer",
    ]
}

/// Which error an input stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TimeExceeded,
    Unreachable,
    TooBig,
    /// Input 3: UDP to the router (port unreachable), TCP (a reset).
    Refused,
}

/// Number of inputs, one per [`Kind`].
const INPUTS: usize = 4;

/// The `IcmpError` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "IcmpError",
        summary: "Answers what the router cannot forward, or will not take, with ICMP/ICMPv6 errors or TCP resets",
        description: "\
Each input stands for one error; a packet arriving on it is turned, in its
own buffer, into that error addressed to the packet's source, and leaves by
output 0:

- input 0, time exceeded in transit (ICMP type 11, ICMPv6 type 3), from
  DecIpTtl's output 1: what `traceroute` shows;
- input 1, destination unreachable, no route (ICMP type 3 code 0, ICMPv6
  type 1 code 0), from IpLookup's `no_route` output;
- input 2, fragmentation needed (ICMP type 3 code 4) or packet too big
  (ICMPv6 type 2), with `mtu` as the next-hop MTU, from DecIpTtl's output 2:
  what path-MTU discovery needs;
- input 3, the router's own addresses: what a host does with a packet for
  a port nobody listens on. UDP gets port unreachable (ICMP type 3 code 3,
  ICMPv6 type 1 code 4), so `traceroute -U` ends and a UDP client learns at
  once; TCP gets a reset (RST, RFC 9293 3.10.7.1: the answer to any
  segment for a closed connection; a reset is never answered). A reset
  rather than port unreachable, which RFC 1122 3.2.2.1 also allows, because
  it is what a router's own TCP stack sends: every client ends its attempt
  at once (`connection refused`) and scanners see the port closed, while
  an ICMP error for TCP is a soft error to some stacks. Both come from
  the address the packet was sent to, not from `ipv4`/`ipv6`, so that the
  sender can match them. Anything else
  (ICMP messages that are not echo requests, other protocols) is consumed
  and counted as `no-answer`. Put ping in front (IcmpEchoResponder).

The error quotes as much of the offending IP packet as keeps it within 576
bytes (IPv4, RFC 1812 4.3.2.3) or 1280 bytes (IPv6, RFC 4443 2.4). Its
source (inputs 0 to 2) is the router's address on this side, `ipv4` or
`ipv6`; its
Ethernet header is the offending frame's with the addresses swapped, so
output 0 goes back out of the port the packet came in by (untagged).

No error is sent about an ICMP error, a non-first fragment, a packet from
or to a multicast or broadcast address, or one sent as a link-layer
broadcast or multicast (RFC 1122 3.2.2, RFC 1812 4.3.2.7, RFC 4443 2.4);
those are dropped as `not-allowed`. Errors and resets are rate-limited by
one token bucket of `rate` per second and depth `burst` (per worker);
packets over it are dropped as `rate-limited`.",
        inputs: PortCount::Fixed(INPUTS),
        outputs: PortCount::Fixed(1),
        params: &[
            ParamSpec {
                name: "ipv4",
                ty: ParamType::Ip,
                need: Need::Optional,
                doc: "The router's IPv4 address on this side: the errors' source",
            },
            ParamSpec {
                name: "ipv6",
                ty: ParamType::Ip,
                need: Need::Optional,
                doc: "The router's IPv6 address on this side: the errors' source",
            },
            ParamSpec {
                name: "mtu",
                ty: ParamType::Int {
                    min: 68,
                    max: 65535,
                },
                need: Need::Default("1500"),
                doc: "MTU reported by the errors of input 2",
            },
            ParamSpec {
                name: "rate",
                ty: ParamType::Float,
                need: Need::Default("100"),
                doc: "Errors per second allowed on average (per worker)",
            },
            ParamSpec {
                name: "burst",
                ty: ParamType::Int {
                    min: 1,
                    max: 1_000_000,
                },
                need: Need::Default("10"),
                doc: "Errors allowed at once after a quiet time",
            },
        ],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: &[],
        example: "\
[elements.icmp_lan]
class = \"IcmpError\"
ipv4 = \"192.168.1.1\"
ipv6 = \"fd00:1::1\"
mtu = 1500",
        see_also: &["DecIpTtl", "IpLookup", "IcmpEchoResponder"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let v4 = match p.get("ipv4") {
        None => None,
        Some(_) => match p.ip("ipv4")? {
            std::net::IpAddr::V4(a) => Some(a),
            _ => return Err(ParamError::new("ipv4", "expected an IPv4 address")),
        },
    };
    let v6 = match p.get("ipv6") {
        None => None,
        Some(_) => match p.ip("ipv6")? {
            std::net::IpAddr::V6(a) => Some(a),
            _ => return Err(ParamError::new("ipv6", "expected an IPv6 address")),
        },
    };
    let rate = p.float("rate")?;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(ParamError::new("rate", "must be a positive number"));
    }
    let burst = p.int("burst")? as f64;
    Ok(Configured::cloning(
        Inputs::Fixed(INPUTS),
        1,
        IcmpError {
            v4,
            v6,
            mtu: p.int("mtu")? as u16,
            per_ns: rate / 1e9,
            burst,
            tokens: burst,
            last: None,
        },
    ))
}

/// Builds ICMP errors.
#[derive(Debug, Clone)]
pub struct IcmpError {
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    mtu: u16,
    per_ns: f64,
    burst: f64,
    tokens: f64,
    last: Option<u64>,
}

/// Longest error datagrams: RFC 1812 4.3.2.3 and RFC 4443 2.4(c).
const MAX_V4: usize = 576;
const MAX_V6: usize = 1280;

impl IcmpError {
    /// Refills the bucket to `now` (once per burst).
    fn refill(&mut self, now: u64) {
        if let Some(last) = self.last {
            let add = now.saturating_sub(last) as f64 * self.per_ns;
            self.tokens = (self.tokens + add).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Turns `pkt` into the error `kind` (on input 3, the refusal), or
    /// says why not.
    fn build(&self, pkt: &mut Packet, kind: Kind) -> Result<(), DropReason> {
        let h = pkt.headers();
        if h.l3 == L3Kind::Other
            || matches!(
                h.status,
                ParseStatus::L2Truncated | ParseStatus::L3Malformed
            )
        {
            return Err(NOT_IP);
        }
        let l3 = usize::from(h.l3_off);
        let d = pkt.data();
        let v4 = h.l3 == L3Kind::Ipv4;
        let l4 = h.has_l4.then_some(usize::from(h.l4_off));
        // A link-layer broadcast or multicast (the group bit) is never
        // answered with an error (RFC 1122 3.2.2).
        if d[0] & 1 != 0 || !allowed(d, l3, v4, h.l4_proto, l4) {
            return Err(NOT_ALLOWED);
        }
        if kind == Kind::Refused {
            match h.l4_proto {
                IPPROTO_TCP => return reset(pkt, h),
                IPPROTO_UDP => {}
                _ => return Err(NO_ANSWER),
            }
        } else if (v4 && self.v4.is_none()) || (!v4 && self.v6.is_none()) {
            return Err(NO_ADDRESS);
        }
        self.quote(pkt, l3, v4, kind)
    }

    /// Writes the error `kind` about the IP packet at `l3` of `pkt`
    /// (checked by [`IcmpError::build`]) in front of as much of it as fits.
    fn quote(&self, pkt: &mut Packet, l3: usize, v4: bool, kind: Kind) -> Result<(), DropReason> {
        let d = pkt.data();
        let mut eth = [0u8; 12];
        eth[..6].copy_from_slice(&d[6..12]);
        eth[6..].copy_from_slice(&d[..6]);
        let (hlen, max) = if v4 { (20, MAX_V4) } else { (40, MAX_V6) };
        let orig_len = if v4 {
            usize::from(u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]))
        } else {
            40 + usize::from(u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]))
        };
        let quote = orig_len.min(d.len() - l3).min(max - hlen - 8);
        let need = ETH_HLEN + hlen + 8;
        if need > l3 {
            pkt.push_front(need - l3).map_err(|_| NO_ROOM)?;
        } else {
            pkt.pull_front(l3 - need).map_err(|_| NO_ROOM)?;
        }
        pkt.set_len(need + quote).map_err(|_| NO_ROOM)?;
        let mtu = self.mtu;
        let d = pkt.data_mut();
        d[..12].copy_from_slice(&eth);
        // A refusal comes from the address the packet was sent to (the
        // quote's destination), so that its sender can match it.
        if v4 {
            let mut src = self.v4.unwrap_or(Ipv4Addr::UNSPECIFIED).octets();
            if kind == Kind::Refused {
                src.copy_from_slice(&d[need + 16..need + 20]);
            }
            d[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let (ty, code, word) = match kind {
                Kind::TimeExceeded => (11, 0, 0),
                Kind::Unreachable => (3, 0, 0),
                Kind::TooBig => (3, 4, u32::from(mtu)),
                Kind::Refused => (3, 3, 0),
            };
            write_v4(d, Ipv4Addr::from(src), ty, code, word);
        } else {
            let mut src = self.v6.unwrap_or(Ipv6Addr::UNSPECIFIED).octets();
            if kind == Kind::Refused {
                src.copy_from_slice(&d[need + 24..need + 40]);
            }
            d[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let (ty, code, word) = match kind {
                Kind::TimeExceeded => (3, 0, 0),
                Kind::Unreachable => (1, 0, 0),
                Kind::TooBig => (2, 0, u32::from(mtu)),
                Kind::Refused => (1, 4, 0),
            };
            write_v6(d, Ipv6Addr::from(src), ty, code, word);
        }
        pkt.invalidate_headers();
        Ok(())
    }
}

/// TCP's flags (RFC 9293 3.1).
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// Turns the TCP segment in `pkt` (parsed as `h`, checked by
/// [`IcmpError::build`]) into the reset that answers it from its
/// destination (RFC 9293 3.10.7.1, state CLOSED): to a segment with ACK, a
/// bare RST with its acknowledgment number as sequence number; otherwise
/// RST+ACK acknowledging everything it occupied (data, SYN, FIN). IPv4
/// with DF and TTL 64, IPv6 with hop limit 64, window 0, no options.
fn reset(pkt: &mut Packet, h: crate::wire::Headers) -> Result<(), DropReason> {
    if !h.has_l4 || h.status != ParseStatus::Ok {
        return Err(NOT_IP);
    }
    let (l3, l4) = (usize::from(h.l3_off), usize::from(h.l4_off));
    let v4 = h.l3 == L3Kind::Ipv4;
    let d = pkt.data();
    let t = &d[l4..l4 + 20];
    let flags = t[13];
    if flags & TCP_RST != 0 {
        return Err(NOT_ALLOWED);
    }
    let be32 = |o: usize| u32::from_be_bytes([t[o], t[o + 1], t[o + 2], t[o + 3]]);
    let ip_end = if v4 {
        l3 + usize::from(u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]))
    } else {
        l3 + 40 + usize::from(u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]))
    };
    let data = ip_end
        .min(d.len())
        .saturating_sub(l4 + usize::from(t[12] >> 4) * 4);
    let (seq, ack, out_flags) = if flags & TCP_ACK != 0 {
        (be32(8), 0, TCP_RST)
    } else {
        let len = data as u32 + u32::from(flags & TCP_SYN != 0) + u32::from(flags & TCP_FIN != 0);
        (0, be32(4).wrapping_add(len), TCP_RST | TCP_ACK)
    };
    let ports = [t[2], t[3], t[0], t[1]];
    // The new source is the old destination and back, as the IP header
    // holds them (IPv4 at 12..20, IPv6 at 8..40).
    let (alen, at) = if v4 { (4, l3 + 12) } else { (16, l3 + 8) };
    let mut addrs = [0u8; 32];
    addrs[..alen].copy_from_slice(&d[at + alen..at + 2 * alen]);
    addrs[alen..2 * alen].copy_from_slice(&d[at..at + alen]);
    let mut eth = [0u8; 12];
    eth[..6].copy_from_slice(&d[6..12]);
    eth[6..].copy_from_slice(&d[..6]);
    let hlen = if v4 { 20 } else { 40 };
    pkt.pull_front(l3 - ETH_HLEN).map_err(|_| NO_ROOM)?;
    pkt.set_len(ETH_HLEN + hlen + 20).map_err(|_| NO_ROOM)?;
    let d = pkt.data_mut();
    d[..12].copy_from_slice(&eth);
    let (ip, tcp) = d[ETH_HLEN..].split_at_mut(hlen);
    if v4 {
        ip[..12].copy_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
        ip[12..20].copy_from_slice(&addrs[..8]);
        let c = checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
        ip[8..40].copy_from_slice(&addrs);
    }
    tcp.copy_from_slice(&[0; 20]);
    tcp[..4].copy_from_slice(&ports);
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = out_flags;
    let pseudo = sum(&addrs[..2 * alen], 6 + 20);
    let c = !(fold(u64::from(sum(tcp, pseudo))) as u16);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let ethertype = if v4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 };
    d[12..14].copy_from_slice(&ethertype.to_be_bytes());
    pkt.invalidate_headers();
    Ok(())
}

/// Whether an error may answer the IP packet at `l3` (RFC 1122 3.2.2,
/// RFC 1812 4.3.2.7, RFC 4443 2.4(e)).
fn allowed(d: &[u8], l3: usize, v4: bool, proto: u8, l4: Option<usize>) -> bool {
    let icmp_type = l4.map(|o| d[o]);
    if v4 {
        let src = Ipv4Addr::new(d[l3 + 12], d[l3 + 13], d[l3 + 14], d[l3 + 15]);
        let dst = Ipv4Addr::new(d[l3 + 16], d[l3 + 17], d[l3 + 18], d[l3 + 19]);
        let later_fragment = u16::from_be_bytes([d[l3 + 6], d[l3 + 7]]) & 0x1fff != 0;
        let error = proto == 1 && matches!(icmp_type, Some(3 | 4 | 5 | 11 | 12));
        !(later_fragment
            || error
            || dst.is_multicast()
            || dst.is_broadcast()
            || src.is_multicast()
            || src.is_unspecified()
            || src.is_broadcast())
    } else {
        let (src, dst) = (d[l3 + 8], d[l3 + 24]);
        let unspecified = d[l3 + 8..l3 + 24].iter().all(|&b| b == 0);
        let error = proto == 58 && icmp_type.is_some_and(|t| t < 128);
        !(error || src == 0xff || dst == 0xff || unspecified)
    }
}

/// Writes the IPv4 and ICMP headers of an error from `src` in front of the
/// quote (the frame's bytes from 42 on), to the quoted packet's source.
fn write_v4(d: &mut [u8], src: Ipv4Addr, ty: u8, code: u8, word: u32) {
    let total = (d.len() - ETH_HLEN) as u16;
    let mut dst = [0u8; 4];
    dst.copy_from_slice(&d[42 + 12..42 + 16]);
    let ip = &mut d[ETH_HLEN..ETH_HLEN + 20];
    ip.copy_from_slice(&[
        0x45, 0xc0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut d[34..];
    icmp[..8].copy_from_slice(&[ty, code, 0, 0, 0, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&word.to_be_bytes());
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Writes the IPv6 and ICMPv6 headers of an error from `src` in front of
/// the quote (the frame's bytes from 62 on).
fn write_v6(d: &mut [u8], src: Ipv6Addr, ty: u8, code: u8, word: u32) {
    let plen = (d.len() - ETH_HLEN - 40) as u16;
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&d[62 + 8..62 + 24]);
    let ip = &mut d[ETH_HLEN..ETH_HLEN + 40];
    ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 58, 64]);
    ip[4..6].copy_from_slice(&plen.to_be_bytes());
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst);
    let pseudo = sum(&d[ETH_HLEN + 8..ETH_HLEN + 40], u32::from(plen) + 58);
    let icmp = &mut d[54..];
    icmp[..8].copy_from_slice(&[ty, code, 0, 0, 0, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&word.to_be_bytes());
    let c = !(fold(u64::from(sum(icmp, pseudo))) as u16);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
}

impl Element for IcmpError {
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        self.refill(cx.now());
        let kind = match input {
            0 => Kind::TimeExceeded,
            1 => Kind::Unreachable,
            2 => Kind::TooBig,
            _ => Kind::Refused,
        };
        for mut pkt in batch.drain(..) {
            if self.tokens < 1.0 {
                out.drop(pkt, RATE_LIMITED);
                continue;
            }
            match self.build(&mut pkt, kind) {
                Ok(()) => {
                    self.tokens -= 1.0;
                    out.push(0, pkt);
                }
                Err(reason) => out.drop(pkt, reason),
            }
        }
    }
}

#[cfg(test)]
#[path = "tests_icmp_error.rs"]
mod tests;
