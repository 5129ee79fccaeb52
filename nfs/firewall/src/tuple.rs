//! What connection tracking reads from a packet: the flow's endpoints and
//! protocol in a canonical order (so both directions of a flow give the same
//! [`Tuple`]), which way the packet goes, and what it says about the flow
//! (TCP flags, ICMP echo request or reply).
//!
//! Stateless, like the framework's `wire` layer: bytes in, meaning out.

use hpio_nf::wire::{Headers, L3Kind, ParseStatus};
use hpio_nf::wire::{IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use hpio_nf::wire::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// ICMP echo request / reply types.
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
/// ICMPv6 echo request / reply types.
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;

/// TCP flag bits (the framework's).
pub(crate) use hpio_nf::wire::tcp_flags;

/// The endpoints and protocol of a flow, endpoint `a` being the smaller
/// (address, port) pair: both directions of a flow have the same tuple.
///
/// Addresses are two big-endian 64-bit words (an IPv4 address is the low 32
/// bits of the second word); ICMP echo flows use the echo identifier as both
/// ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tuple {
    pub(crate) a: [u64; 2],
    pub(crate) b: [u64; 2],
    /// Port of `a` (bits 48..64), port of `b` (32..48), protocol (8..16),
    /// IPv6 (bit 0).
    pub(crate) rest: u64,
}

impl Tuple {
    /// The tuple of a packet from `src`:`sport` to `dst`:`dport`, and whether
    /// the packet goes from `a` to `b`.
    #[inline(always)]
    pub(crate) fn new(
        src: [u64; 2],
        sport: u16,
        dst: [u64; 2],
        dport: u16,
        proto: u8,
        v6: bool,
    ) -> (Tuple, bool) {
        let s = (src[0] as u128) << 64 | src[1] as u128;
        let d = (dst[0] as u128) << 64 | dst[1] as u128;
        let forward = s < d || (s == d && sport <= dport);
        let ((a, pa), (b, pb)) = if forward {
            ((src, sport), (dst, dport))
        } else {
            ((dst, dport), (src, sport))
        };
        let rest = (pa as u64) << 48 | (pb as u64) << 32 | (proto as u64) << 8 | u64::from(v6);
        (Tuple { a, b, rest }, forward)
    }

    /// The IP protocol.
    #[cfg(test)]
    pub(crate) fn proto(&self) -> u8 {
        (self.rest >> 8) as u8
    }

    /// The tuple's words, for hashing.
    #[inline]
    pub(crate) fn words(&self) -> [u64; 5] {
        [self.a[0], self.a[1], self.b[0], self.b[1], self.rest]
    }
}

/// What a packet says about its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A TCP segment with these flags.
    Tcp(u8),
    /// A UDP datagram.
    Udp,
    /// An ICMP or ICMPv6 echo request.
    EchoRequest,
    /// An ICMP or ICMPv6 echo reply.
    EchoReply,
}

impl Kind {
    /// True when a packet of this kind may open a flow: a TCP SYN without
    /// ACK, RST or FIN, any UDP datagram, an echo request.
    #[inline]
    pub(crate) fn starts_flow(self) -> bool {
        use tcp_flags::*;
        match self {
            Kind::Tcp(f) => f & (SYN | ACK | RST | FIN) == SYN,
            Kind::Udp | Kind::EchoRequest => true,
            Kind::EchoReply => false,
        }
    }
}

/// A packet as connection tracking sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Its flow.
    pub(crate) tuple: Tuple,
    /// It goes from the tuple's `a` to its `b`.
    pub(crate) forward: bool,
    /// What it says about the flow.
    pub(crate) kind: Kind,
}

/// The result of reading a packet for connection tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extract {
    /// A TCP, UDP or ICMP echo packet.
    Tracked(Seen),
    /// An IP packet that is not tracked: another protocol, another ICMP
    /// type, a non-first fragment.
    Untracked,
    /// An ICMP echo message too short to hold its identifier.
    Malformed,
}

/// Reads the flow of an IP packet whose parse `h` has status `Ok`.
/// Never panics: a field outside `frame` makes the packet `Malformed`.
#[inline(always)]
pub(crate) fn extract(h: &Headers, frame: &[u8]) -> Extract {
    debug_assert_eq!(h.status, ParseStatus::Ok);
    let ip = match endpoints(h, frame) {
        Ok(ip) => ip,
        Err(e) => return e,
    };
    if !h.has_l4 {
        return Extract::Untracked;
    }
    // The transport header as far as the IP packet goes (not into padding).
    let Some(seg) = frame.get(h.l4_off as usize..ip.end.min(frame.len())) else {
        return Extract::Malformed;
    };
    let proto = h.l4_proto;
    let (sport, dport, kind) = match transport(proto, ip.v6, seg) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (tuple, forward) = Tuple::new(ip.src, sport, ip.dst, dport, proto, ip.v6);
    Extract::Tracked(Seen {
        tuple,
        forward,
        kind,
    })
}

/// The network layer of a packet, as [`Tuple::new`] takes it.
struct Endpoints {
    src: [u64; 2],
    dst: [u64; 2],
    /// Offset in the frame of the end of the IP packet (Ethernet padding follows).
    end: usize,
    v6: bool,
}

/// Reads the addresses and the end of the IP packet.
#[inline(always)]
fn endpoints(h: &Headers, frame: &[u8]) -> Result<Endpoints, Extract> {
    let l3 = h.l3_off as usize;
    match h.l3 {
        L3Kind::Ipv4 => {
            let ip = Ipv4Packet::at(frame, l3).ok_or(Extract::Malformed)?;
            let word = |a: std::net::Ipv4Addr| [0, u64::from(u32::from(a))];
            Ok(Endpoints {
                src: word(ip.src_addr()),
                dst: word(ip.dst_addr()),
                end: l3 + ip.total_len() as usize,
                v6: false,
            })
        }
        L3Kind::Ipv6 => {
            let ip = Ipv6Packet::at(frame, l3).ok_or(Extract::Malformed)?;
            let words = |a: std::net::Ipv6Addr| {
                let a = u128::from(a);
                [(a >> 64) as u64, a as u64]
            };
            Ok(Endpoints {
                src: words(ip.src_addr()),
                dst: words(ip.dst_addr()),
                end: l3 + Ipv6Packet::<&[u8]>::LEN + ip.payload_len() as usize,
                v6: true,
            })
        }
        L3Kind::Other => Err(Extract::Untracked),
    }
}

/// Reads the ports (an echo's identifier, twice) and the kind of a
/// transport segment `seg` of protocol `proto`.
#[inline(always)]
fn transport(proto: u8, v6: bool, seg: &[u8]) -> Result<(u16, u16, Kind), Extract> {
    match proto {
        IPPROTO_TCP => {
            let t = TcpPacket::new_checked(seg).map_err(|_| Extract::Malformed)?;
            Ok((t.src_port(), t.dst_port(), Kind::Tcp(t.flags())))
        }
        IPPROTO_UDP => {
            let u = UdpPacket::new_checked(seg).map_err(|_| Extract::Malformed)?;
            Ok((u.src_port(), u.dst_port(), Kind::Udp))
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => echo(proto, v6, seg),
        _ => Err(Extract::Untracked),
    }
}

/// Reads an ICMP or ICMPv6 echo message; other ICMP types are not tracked.
#[inline(always)]
fn echo(proto: u8, v6: bool, seg: &[u8]) -> Result<(u16, u16, Kind), Extract> {
    let icmp = IcmpPacket::new_checked(seg).map_err(|_| Extract::Malformed)?;
    let kind = match (proto, icmp.msg_type(), v6) {
        (IPPROTO_ICMP, ICMP_ECHO_REQUEST, false) => Kind::EchoRequest,
        (IPPROTO_ICMP, ICMP_ECHO_REPLY, false) => Kind::EchoReply,
        (IPPROTO_ICMPV6, ICMP6_ECHO_REQUEST, true) => Kind::EchoRequest,
        (IPPROTO_ICMPV6, ICMP6_ECHO_REPLY, true) => Kind::EchoReply,
        _ => return Err(Extract::Untracked),
    };
    let id = icmp.echo_ident().ok_or(Extract::Malformed)?;
    Ok((id, id, kind))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use testkit::frame::{Frame, Ip, ARP_REQUEST, TCP_ACK, TCP_SYN};

    const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const M2: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn seen(frame: &[u8]) -> Extract {
        let h = Headers::parse(frame);
        assert_eq!(h.status, ParseStatus::Ok);
        extract(&h, frame)
    }

    pub(crate) fn tcp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn: bool) -> Vec<u8> {
        let flags = if syn { TCP_SYN } else { TCP_ACK };
        Frame::tcp(Ip::v4(src, dst), sport, dport, flags)
            .macs(M1, M2)
            .seq(1, 5, 1000)
            .payload(b"x")
            .build()
    }

    fn echo4(src: [u8; 4], dst: [u8; 4], request: bool, id: u16) -> Vec<u8> {
        Frame::echo(Ip::v4(src, dst), id, 1)
            .reply(!request)
            .macs(M1, M2)
            .payload(b"p")
            .build()
    }

    #[test]
    fn both_directions_share_a_tuple() {
        let a = [10, 0, 1, 2];
        let b = [10, 0, 1, 3];
        let Extract::Tracked(out) = seen(&tcp4(a, 40000, b, 80, true)) else {
            panic!()
        };
        let Extract::Tracked(back) = seen(&tcp4(b, 80, a, 40000, false)) else {
            panic!()
        };
        assert_eq!(out.tuple, back.tuple);
        assert_ne!(out.forward, back.forward);
        assert_eq!(out.kind, Kind::Tcp(tcp_flags::SYN));
        assert!(out.kind.starts_flow());
        assert!(!back.kind.starts_flow());
        assert_eq!(out.tuple.proto(), 6);
        // A different port is a different flow.
        let Extract::Tracked(other) = seen(&tcp4(a, 40001, b, 80, true)) else {
            panic!()
        };
        assert_ne!(other.tuple, out.tuple);

        let u = Frame::udp(Ip::v6([1; 16], [2; 16]), 5000, 53)
            .macs(M1, M2)
            .payload(b"q")
            .build();
        let r = Frame::udp(Ip::v6([2; 16], [1; 16]), 53, 5000)
            .macs(M2, M1)
            .payload(b"a")
            .build();
        let (Extract::Tracked(q), Extract::Tracked(a6)) = (seen(&u), seen(&r)) else {
            panic!()
        };
        assert_eq!(q.tuple, a6.tuple);
        assert_eq!((q.kind, q.tuple.rest & 1), (Kind::Udp, 1));
    }

    #[test]
    fn echo_flows_use_the_identifier() {
        let a = [10, 0, 1, 2];
        let b = [192, 0, 2, 1];
        let (Extract::Tracked(req), Extract::Tracked(rep)) =
            (seen(&echo4(a, b, true, 77)), seen(&echo4(b, a, false, 77)))
        else {
            panic!()
        };
        assert_eq!(req.tuple, rep.tuple);
        assert_eq!((req.kind, rep.kind), (Kind::EchoRequest, Kind::EchoReply));
        assert!(req.kind.starts_flow() && !rep.kind.starts_flow());
        let Extract::Tracked(other) = seen(&echo4(a, b, true, 78)) else {
            panic!()
        };
        assert_ne!(other.tuple, req.tuple);
    }

    #[test]
    fn untracked_and_malformed() {
        // Destination unreachable: ICMP but not echo.
        // (port unreachable, about a UDP datagram the other way).
        let offender = Frame::udp(Ip::v4([2; 4], [1; 4]), 5000, 53).payload(b"q");
        let v = Frame::icmp_error(Ip::v4([1; 4], [2; 4]), 3, 3, &offender)
            .macs(M1, M2)
            .build();
        assert_eq!(seen(&v), Extract::Untracked);
        // GRE.
        let g = Frame::raw(Ip::v4([1; 4], [2; 4]), 47)
            .macs(M1, M2)
            .payload(&[0; 4])
            .build();
        assert_eq!(seen(&g), Extract::Untracked);
        // An echo request cut to its first 4 ICMP bytes (the IP length says so):
        // the framework parses it (4 bytes of ICMP), the identifier is missing.
        let cut = |f: Frame| f.ip_len(24).cut(14 + 20 + 4);
        let e = cut(Frame::echo(Ip::v4([1; 4], [2; 4]), 5, 1).macs(M1, M2));
        assert_eq!(seen(&e.build()), Extract::Malformed);
        // The same cut, but Ethernet padding after it: the padding is not read as the id.
        assert_eq!(seen(&e.pad_with(60, 0xaa).build()), Extract::Malformed);
        // ARP is not IP.
        let arp = Frame::arp(ARP_REQUEST, (M1, [1; 4]), ([0; 6], [2; 4])).pad(60);
        assert_eq!(seen(&arp.build()), Extract::Untracked);
    }

    #[test]
    fn tuple_orders_by_address_then_port() {
        let lo = [0, 1];
        let hi = [0, 2];
        let (t, fwd) = Tuple::new(hi, 1, lo, 9, 17, false);
        assert!(!fwd);
        assert_eq!((t.a, t.b), (lo, hi));
        assert_eq!(t.rest >> 48, 9);
        let (t2, fwd) = Tuple::new(lo, 5, lo, 4, 17, false);
        assert!(!fwd, "same address: the smaller port is `a`");
        assert_eq!(t2.rest >> 48, 4);
    }
}
