//! Test frames from a few fields: Ethernet, up to two VLAN tags, IPv4 or
//! IPv6, then TCP, UDP or an ICMP echo request, with lengths and checksums
//! right (built with etherparse).
//!
//! ```
//! use testkit::frame::{Frame, Ip, TCP_SYN};
//! let f = Frame::tcp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80, TCP_SYN)
//!     .vlan(7)
//!     .payload(b"hi")
//!     .build();
//! assert_eq!(f.len(), 14 + 4 + 20 + 20 + 2);
//! ```

use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, PacketBuilderStep,
    VlanId,
};

/// TCP flag FIN (the bits of the header's flags byte).
pub const TCP_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag PSH.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag ACK.
pub const TCP_ACK: u8 = 0x10;
/// TCP flag URG (the urgent pointer is [`Frame::urgent`]'s).
pub const TCP_URG: u8 = 0x20;
/// TCP flag ECE.
pub const TCP_ECE: u8 = 0x40;
/// TCP flag CWR.
pub const TCP_CWR: u8 = 0x80;

/// TCP flags by name, comma-separated (`"syn,ack"`; `""` for none):
/// `fin`, `syn`, `rst`, `psh`, `ack`, `urg`, `ece`, `cwr`.
pub fn tcp_flags(names: &str) -> u8 {
    names
        .split(',')
        .map(|n| match n {
            "fin" => TCP_FIN,
            "syn" => TCP_SYN,
            "rst" => TCP_RST,
            "psh" => TCP_PSH,
            "ack" => TCP_ACK,
            "urg" => TCP_URG,
            "ece" => TCP_ECE,
            "cwr" => TCP_CWR,
            "" => 0,
            other => panic!("no TCP flag `{other}`"),
        })
        .fold(0, |a, b| a | b)
}

/// The source MAC address frames get unless told: 02:00:00:00:00:01.
pub const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The destination MAC address frames get unless told: 02:00:00:00:00:02.
pub const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// The IP header's addresses (source, destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    /// IPv4 source and destination.
    V4([u8; 4], [u8; 4]),
    /// IPv6 source and destination.
    V6([u8; 16], [u8; 16]),
}

impl Ip {
    /// IPv4 addresses.
    pub fn v4(src: [u8; 4], dst: [u8; 4]) -> Ip {
        Ip::V4(src, dst)
    }

    /// IPv6 addresses.
    pub fn v6(src: [u8; 16], dst: [u8; 16]) -> Ip {
        Ip::V6(src, dst)
    }
}

/// The transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP with its flags ([`TCP_SYN`], ...); `ack` is the acknowledgment
    /// number (written when [`TCP_ACK`] is set).
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Window.
        window: u16,
        /// Flags.
        flags: u8,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// An ICMP (over IPv4) or ICMPv6 (over IPv6) echo request, or reply.
    Echo {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
        /// A reply rather than a request.
        reply: bool,
    },
    /// An ICMP (over IPv4) or ICMPv6 (over IPv6) message of type `kind`,
    /// code 0, the 4 bytes after the checksum zero.
    Icmp {
        /// ICMP type.
        kind: u8,
    },
    /// No transport header: the payload follows the IP header, which
    /// names `proto` as its protocol (GRE is 47, say).
    Raw {
        /// IP protocol number.
        proto: u8,
    },
}

/// IPv4 header fields beyond the addresses and TTL (ignored over IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Fields {
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag (set unless told).
    pub dont_fragment: bool,
    /// More-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in units of 8 bytes.
    pub fragment_offset: u16,
}

impl Default for V4Fields {
    fn default() -> V4Fields {
        V4Fields {
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
        }
    }
}

/// A frame to build: [`Frame::tcp`], [`Frame::udp`] or [`Frame::echo`],
/// then the setters, then [`Frame::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Source MAC address.
    pub src_mac: [u8; 6],
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
    /// VLAN ids, outer first (at most two).
    pub vlans: Vec<u16>,
    /// IP addresses and family.
    pub ip: Ip,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification and fragment fields.
    pub v4: V4Fields,
    /// Transport header.
    pub l4: L4,
    /// TCP's urgent pointer (written when [`TCP_URG`] is set).
    pub urgent: u16,
    /// Bytes after the transport header.
    pub payload: Vec<u8>,
}

impl Frame {
    fn new(ip: Ip, l4: L4) -> Frame {
        Frame {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            vlans: Vec::new(),
            ip,
            ttl: 64,
            v4: V4Fields::default(),
            l4,
            urgent: 0,
            payload: Vec::new(),
        }
    }

    /// A TCP segment with `flags`, sequence number 1, window 1000.
    pub fn tcp(ip: Ip, sport: u16, dport: u16, flags: u8) -> Frame {
        let l4 = L4::Tcp {
            sport,
            dport,
            seq: 1,
            ack: 0,
            window: 1000,
            flags,
        };
        Frame::new(ip, l4)
    }

    /// A UDP datagram.
    pub fn udp(ip: Ip, sport: u16, dport: u16) -> Frame {
        Frame::new(ip, L4::Udp { sport, dport })
    }

    /// An ICMP or ICMPv6 echo request.
    pub fn echo(ip: Ip, id: u16, seq: u16) -> Frame {
        let reply = false;
        Frame::new(ip, L4::Echo { id, seq, reply })
    }

    /// An ICMP or ICMPv6 echo reply.
    pub fn echo_reply(ip: Ip, id: u16, seq: u16) -> Frame {
        let reply = true;
        Frame::new(ip, L4::Echo { id, seq, reply })
    }

    /// An IP packet of protocol `proto` with no transport header (the
    /// payload follows the IP header).
    pub fn raw(ip: Ip, proto: u8) -> Frame {
        Frame::new(ip, L4::Raw { proto })
    }

    /// An ICMP or ICMPv6 message of type `kind` (code 0, rest of header zero).
    pub fn icmp(ip: Ip, kind: u8) -> Frame {
        Frame::new(ip, L4::Icmp { kind })
    }

    /// TCP's urgent pointer (written when [`TCP_URG`] is set).
    pub fn urgent(mut self, ptr: u16) -> Frame {
        self.urgent = ptr;
        self
    }

    /// An echo reply rather than a request when `reply` (no-op for others).
    pub fn reply(mut self, is_reply: bool) -> Frame {
        if let L4::Echo { reply, .. } = &mut self.l4 {
            *reply = is_reply;
        }
        self
    }

    /// The IPv4 identification.
    pub fn ident(mut self, ident: u16) -> Frame {
        self.v4.ident = ident;
        self
    }

    /// IPv4 fragment fields: offset in 8-byte units and more-fragments (the
    /// don't-fragment flag is cleared).
    pub fn fragment(mut self, offset: u16, more: bool) -> Frame {
        self.v4.dont_fragment = false;
        self.v4.fragment_offset = offset;
        self.v4.more_fragments = more;
        self
    }

    /// The IPv4 don't-fragment flag.
    pub fn dont_fragment(mut self, df: bool) -> Frame {
        self.v4.dont_fragment = df;
        self
    }

    /// The MAC addresses.
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Frame {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// One more VLAN tag (after those already given).
    pub fn vlan(mut self, vid: u16) -> Frame {
        self.vlans.push(vid);
        self
    }

    /// More VLAN tags, outer first (after those already given).
    pub fn vlans(mut self, vids: &[u16]) -> Frame {
        self.vlans.extend_from_slice(vids);
        self
    }

    /// The TTL or hop limit.
    pub fn ttl(mut self, ttl: u8) -> Frame {
        self.ttl = ttl;
        self
    }

    /// TCP's sequence and acknowledgment numbers and window (no-op for others).
    pub fn seq(mut self, seq_no: u32, ack_no: u32, win: u16) -> Frame {
        if let L4::Tcp {
            seq, ack, window, ..
        } = &mut self.l4
        {
            (*seq, *ack, *window) = (seq_no, ack_no, win);
        }
        self
    }

    /// The payload after the transport header.
    pub fn payload(mut self, payload: &[u8]) -> Frame {
        self.payload = payload.to_vec();
        self
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let vid = |v: u16| VlanId::try_new(v).expect("VLAN id below 4096");
        let ip = self.ip_headers();
        match self.vlans[..] {
            [] => self.l3(eth.ip(ip)),
            [a] => self.l3(eth.single_vlan(vid(a)).ip(ip)),
            [a, b] => self.l3(eth.double_vlan(vid(a), vid(b)).ip(ip)),
            _ => panic!("at most two VLAN tags"),
        }
    }

    fn ip_headers(&self) -> IpHeaders {
        match self.ip {
            Ip::V4(source, destination) => {
                let v = self.v4;
                let h = Ipv4Header {
                    source,
                    destination,
                    time_to_live: self.ttl,
                    identification: v.ident,
                    dont_fragment: v.dont_fragment,
                    more_fragments: v.more_fragments,
                    fragment_offset: IpFragOffset::try_new(v.fragment_offset)
                        .expect("fragment offset below 8192"),
                    ..Default::default()
                };
                IpHeaders::Ipv4(h, Default::default())
            }
            Ip::V6(source, destination) => {
                let h = Ipv6Header {
                    source,
                    destination,
                    hop_limit: self.ttl,
                    ..Default::default()
                };
                IpHeaders::Ipv6(h, Default::default())
            }
        }
    }

    fn l3(&self, ip: PacketBuilderStep<IpHeaders>) -> Vec<u8> {
        let mut out = Vec::new();
        let p = &self.payload[..];
        let res = match (self.l4, self.ip) {
            (
                L4::Tcp {
                    sport,
                    dport,
                    seq,
                    ack,
                    window,
                    flags,
                },
                _,
            ) => {
                let mut t = ip.tcp(sport, dport, seq, window);
                for (bit, set) in [
                    (TCP_FIN, PacketBuilderStep::fin as fn(_) -> _),
                    (TCP_SYN, PacketBuilderStep::syn),
                    (TCP_RST, PacketBuilderStep::rst),
                    (TCP_PSH, PacketBuilderStep::psh),
                ] {
                    if flags & bit != 0 {
                        t = set(t);
                    }
                }
                if flags & TCP_ACK != 0 {
                    t = t.ack(ack);
                }
                if flags & TCP_URG != 0 {
                    t = t.urg(self.urgent);
                }
                if flags & TCP_ECE != 0 {
                    t = t.ece();
                }
                if flags & TCP_CWR != 0 {
                    t = t.cwr();
                }
                t.write(&mut out, p)
            }
            (L4::Icmp { kind }, Ip::V4(..)) => ip.icmpv4_raw(kind, 0, [0; 4]).write(&mut out, p),
            (L4::Icmp { kind }, Ip::V6(..)) => ip.icmpv6_raw(kind, 0, [0; 4]).write(&mut out, p),
            (L4::Raw { proto }, _) => ip.write(&mut out, IpNumber(proto), p),
            (L4::Udp { sport, dport }, _) => ip.udp(sport, dport).write(&mut out, p),
            (L4::Echo { id, seq, reply }, Ip::V4(..)) => match reply {
                false => ip.icmpv4_echo_request(id, seq).write(&mut out, p),
                true => ip.icmpv4_echo_reply(id, seq).write(&mut out, p),
            },
            (L4::Echo { id, seq, reply }, Ip::V6(..)) => match reply {
                false => ip.icmpv6_echo_request(id, seq).write(&mut out, p),
                true => ip.icmpv6_echo_reply(id, seq).write(&mut out, p),
            },
        };
        res.expect("a test frame that etherparse writes");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn frames_parse_back_to_what_was_asked() {
        let f = Frame::tcp(
            Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]),
            1234,
            80,
            TCP_SYN | TCP_ACK,
        )
        .seq(7, 9, 512)
        .vlan(5)
        .vlan(6)
        .ttl(3)
        .payload(b"hello")
        .build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = s.net else {
            panic!()
        };
        assert_eq!(ip.header().ttl(), 3);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert!(t.syn() && t.ack() && !t.fin() && !t.rst());
        assert_eq!(
            (
                t.sequence_number(),
                t.acknowledgment_number(),
                t.window_size()
            ),
            (7, 9, 512)
        );
        assert_eq!(t.payload(), b"hello");
        assert_eq!(f.len(), 14 + 8 + 20 + 20 + 5);

        let f = Frame::udp(Ip::v6([1; 16], [2; 16]), 5353, 53).build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        assert!(matches!(s.transport, Some(TransportSlice::Udp(u)) if u.destination_port() == 53));

        let f = Frame::echo(Ip::v6([1; 16], [2; 16]), 7, 1).build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        assert!(matches!(s.transport, Some(TransportSlice::Icmpv6(_))));
    }

    #[test]
    fn ipv4_fields_and_raw_protocols() {
        let ip = Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]);
        let f = Frame::udp(ip, 1, 2).ident(77).fragment(3, true).build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(v4)) = s.net else {
            panic!()
        };
        let h = v4.header();
        assert_eq!(h.identification(), 77);
        assert_eq!(h.fragments_offset().value(), 3);
        assert!(h.more_fragments() && !h.dont_fragment());

        let f = Frame::raw(ip, 47).payload(&[0, 0, 8, 0]).build();
        assert_eq!((f[14 + 9], f.len()), (47, 14 + 20 + 4));
        let f = Frame::echo(ip, 1, 2).reply(true).build();
        assert_eq!(f[14 + 20], 0, "ICMP echo reply type");
        // Defaults are PacketBuilder's own: identical bytes.
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut v, b"x")
            .unwrap();
        assert_eq!(Frame::udp(ip, 1, 2).payload(b"x").build(), v);
    }
}
