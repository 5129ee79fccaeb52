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

use etherparse::{PacketBuilder, PacketBuilderStep, VlanId};

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

/// TCP flags by name, comma-separated (`"syn,ack"`; `""` for none):
/// `fin`, `syn`, `rst`, `psh`, `ack`.
pub fn tcp_flags(names: &str) -> u8 {
    names
        .split(',')
        .map(|n| match n {
            "fin" => TCP_FIN,
            "syn" => TCP_SYN,
            "rst" => TCP_RST,
            "psh" => TCP_PSH,
            "ack" => TCP_ACK,
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
    /// Transport header.
    pub l4: L4,
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
            l4,
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
        match self.vlans[..] {
            [] => self.l3(eth.ipv4_or_6(self.ip, self.ttl)),
            [a] => self.l3(eth.single_vlan(vid(a)).ipv4_or_6(self.ip, self.ttl)),
            [a, b] => self.l3(eth.double_vlan(vid(a), vid(b)).ipv4_or_6(self.ip, self.ttl)),
            _ => panic!("at most two VLAN tags"),
        }
    }

    fn l3(&self, ip: PacketBuilderStep<etherparse::IpHeaders>) -> Vec<u8> {
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
                t.write(&mut out, p)
            }
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

/// The IP step of a builder, either family (one type for both).
trait IpStep {
    fn ipv4_or_6(self, ip: Ip, ttl: u8) -> PacketBuilderStep<etherparse::IpHeaders>;
}

impl IpStep for PacketBuilderStep<etherparse::Ethernet2Header> {
    fn ipv4_or_6(self, ip: Ip, ttl: u8) -> PacketBuilderStep<etherparse::IpHeaders> {
        match ip {
            Ip::V4(a, b) => self.ipv4(a, b, ttl),
            Ip::V6(a, b) => self.ipv6(a, b, ttl),
        }
    }
}

impl IpStep for PacketBuilderStep<etherparse::VlanHeader> {
    fn ipv4_or_6(self, ip: Ip, ttl: u8) -> PacketBuilderStep<etherparse::IpHeaders> {
        match ip {
            Ip::V4(a, b) => self.ipv4(a, b, ttl),
            Ip::V6(a, b) => self.ipv6(a, b, ttl),
        }
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
}
