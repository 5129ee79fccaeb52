//! Test frames from a few fields: Ethernet, up to two VLAN tags (with
//! priorities), then IPv4 or IPv6 (TOS/traffic class, flow label, IPv6
//! extension headers, ID and fragment fields) carrying TCP (with options),
//! UDP, ICMP or a raw protocol, or else ARP or any EtherType; lengths and
//! checksums right (the IP part built with etherparse). Frames that break
//! the rules on purpose come from the edits in [`Frame::partial_csum`],
//! [`Frame::ip_len`] and [`Frame::cut`], and [`Frame::fragments`] cuts a
//! datagram into IP fragments (as a host does; [`router_fragments`] as a
//! router does, to an MTU).
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
    IpDscp, IpEcn, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel,
    Ipv6Header, Ipv6RawExtHeader, Ipv6RoutingExtensions, PacketBuilder, PacketBuilderStep,
};

mod edit;
mod frag;
mod l2;

pub use frag::{fragments, reassemble, router_fragments};
pub use l2::{marked, tag, ARP_REPLY, ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

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
    /// An ICMP (over IPv4) or ICMPv6 (over IPv6) message of type `kind`
    /// and `code`, then `rest`, the 4 bytes after the checksum (the payload
    /// follows: for an error, the offending packet's IP header and more).
    Icmp {
        /// ICMP type.
        kind: u8,
        /// ICMP code.
        code: u8,
        /// The 4 bytes after the checksum.
        rest: [u8; 4],
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
    /// VLAN tags (id, priority), outer first (at most two).
    pub vlans: Vec<(u16, u8)>,
    /// Not IP: ARP or another EtherType (then `ip`, `l4` and the IP
    /// fields are unused).
    pub l2: Option<L2>,
    /// IP addresses and family.
    pub ip: Ip,
    /// DSCP (6 bits) and ECN (2 bits): IPv4's TOS, IPv6's traffic class.
    pub tos: (u8, u8),
    /// IPv6 flow label (20 bits).
    pub flow_label: u32,
    /// IPv6 extension headers, each its body after the next-header and
    /// length bytes (6 + 8n bytes): hop-by-hop options, destination
    /// options, routing, in that order on the wire when present.
    pub ext6: Ext6,
    /// TCP options (a multiple of 4 bytes).
    pub tcp_options: Vec<u8>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification and fragment fields.
    pub v4: V4Fields,
    /// IPv4 options, as they lie in the header (4n bytes, at most 40).
    pub v4_options: Vec<u8>,
    /// Transport header.
    pub l4: L4,
    /// TCP's urgent pointer (written when [`TCP_URG`] is set).
    pub urgent: u16,
    /// Bytes after the transport header.
    pub payload: Vec<u8>,
    /// Edits made to the bytes once built, in order.
    pub edits: Vec<Edit>,
}

/// IPv6 extension headers' bodies (see [`Frame::ext6`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ext6 {
    /// Hop-by-hop options.
    pub hop_by_hop: Option<Vec<u8>>,
    /// Destination options.
    pub dest_opts: Option<Vec<u8>>,
    /// Routing header.
    pub routing: Option<Vec<u8>>,
}

/// What a frame carries instead of IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2 {
    /// An Ethernet/IPv4 ARP packet.
    Arp {
        /// [`ARP_REQUEST`] or [`ARP_REPLY`].
        op: u16,
        /// Sender hardware and protocol address.
        sender: ([u8; 6], [u8; 4]),
        /// Target hardware and protocol address.
        target: ([u8; 6], [u8; 4]),
    },
    /// The payload after this EtherType, nothing else.
    Ether(u16),
}

/// An edit made after building (see [`Frame::partial_csum`],
/// [`Frame::ip_len`], [`Frame::cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The TCP/UDP checksum holds only the pseudo-header sum.
    PartialCsum,
    /// The UDP checksum is 0: none (allowed over IPv4 only).
    NoUdpCsum,
    /// TCP's data offset says a header of this many bytes.
    TcpHeaderLen(u8),
    /// The IPv4 total length or IPv6 payload length says this.
    IpLen(u16),
    /// Only the first this many bytes are kept.
    Cut(usize),
    /// This byte added up to this length (Ethernet's 60-byte minimum).
    Pad(usize, u8),
}

impl Frame {
    fn new(ip: Ip, l4: L4) -> Frame {
        Frame {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            vlans: Vec::new(),
            l2: None,
            ip,
            tos: (0, 0),
            flow_label: 0,
            ext6: Ext6::default(),
            tcp_options: Vec::new(),
            ttl: 64,
            v4: V4Fields::default(),
            v4_options: Vec::new(),
            l4,
            urgent: 0,
            payload: Vec::new(),
            edits: Vec::new(),
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

    /// An ICMP or ICMPv6 message of type `kind` (code 0, rest of header
    /// zero unless told: [`Frame::code`], [`Frame::rest`]).
    pub fn icmp(ip: Ip, kind: u8) -> Frame {
        let (code, rest) = (0, [0; 4]);
        Frame::new(ip, L4::Icmp { kind, code, rest })
    }

    /// An ICMP error of type `kind` and `code` about `offender`: its IP
    /// header and the first 8 bytes after it (as RFC 792 asks), from the
    /// source and TTL of `ip` back to the offender's source.
    pub fn icmp_error(ip: Ip, kind: u8, code: u8, offender: &Frame) -> Frame {
        let quoted = offender.ip_bytes();
        let ihl = match offender.ip {
            Ip::V4(..) => usize::from(quoted[0] & 0x0f) * 4,
            Ip::V6(..) => 40,
        };
        let n = quoted.len().min(ihl + 8);
        Frame::icmp(ip, kind).code(code).payload(&quoted[..n])
    }

    /// An ARP packet (Ethernet, IPv4): `op` is [`ARP_REQUEST`] or
    /// [`ARP_REPLY`]. The Ethernet addresses are the sender's and, for a
    /// request, broadcast (for a reply, the target's).
    pub fn arp(op: u16, sender: ([u8; 6], [u8; 4]), target: ([u8; 6], [u8; 4])) -> Frame {
        let dst = if op == ARP_REQUEST {
            [0xff; 6]
        } else {
            target.0
        };
        let mut f = Frame::raw(Ip::v4(sender.1, target.1), 0).macs(sender.0, dst);
        f.l2 = Some(L2::Arp { op, sender, target });
        f
    }

    /// A frame of `ethertype` holding only the payload (no IP).
    pub fn ether(ethertype: u16) -> Frame {
        let mut f = Frame::raw(Ip::v4([0; 4], [0; 4]), 0);
        f.l2 = Some(L2::Ether(ethertype));
        f
    }

    /// The ICMP code (no-op for others).
    pub fn code(mut self, c: u8) -> Frame {
        if let L4::Icmp { code, .. } = &mut self.l4 {
            *code = c;
        }
        self
    }

    /// The ICMP header's 4 bytes after the checksum (no-op for others).
    pub fn rest(mut self, r: [u8; 4]) -> Frame {
        if let L4::Icmp { rest, .. } = &mut self.l4 {
            *rest = r;
        }
        self
    }

    /// DSCP and ECN (IPv4 TOS, IPv6 traffic class).
    pub fn tos(mut self, dscp: u8, ecn: u8) -> Frame {
        self.tos = (dscp, ecn);
        self
    }

    /// The IPv6 flow label.
    pub fn flow_label(mut self, label: u32) -> Frame {
        self.flow_label = label;
        self
    }

    /// An IPv6 hop-by-hop options header with this body (6 + 8n bytes).
    pub fn hop_by_hop(mut self, body: &[u8]) -> Frame {
        self.ext6.hop_by_hop = Some(body.to_vec());
        self
    }

    /// An IPv6 destination options header with this body (6 + 8n bytes).
    pub fn dest_opts(mut self, body: &[u8]) -> Frame {
        self.ext6.dest_opts = Some(body.to_vec());
        self
    }

    /// An IPv6 routing header with this body (6 + 8n bytes: routing type,
    /// segments left, then the type's data).
    pub fn routing(mut self, body: &[u8]) -> Frame {
        self.ext6.routing = Some(body.to_vec());
        self
    }

    /// TCP options (a multiple of 4 bytes; no-op for others).
    pub fn tcp_options(mut self, options: &[u8]) -> Frame {
        self.tcp_options = options.to_vec();
        self
    }

    /// The TCP/UDP checksum holding only the pseudo-header sum, as a
    /// sender that leaves the checksum to the NIC writes it (Linux's
    /// `CHECKSUM_PARTIAL`).
    pub fn partial_csum(mut self) -> Frame {
        self.edits.push(Edit::PartialCsum);
        self
    }

    /// The UDP checksum left out (0), as IPv4 allows.
    pub fn no_udp_csum(mut self) -> Frame {
        self.edits.push(Edit::NoUdpCsum);
        self
    }

    /// TCP's data offset set to say a header of `len` bytes (a multiple of
    /// 4) after building: a header that lies.
    pub fn tcp_header_len(mut self, len: u8) -> Frame {
        self.edits.push(Edit::TcpHeaderLen(len));
        self
    }

    /// The IPv4 total length or IPv6 payload length set to `len` after
    /// building (the IPv4 header checksum still right): a header that lies.
    pub fn ip_len(mut self, len: u16) -> Frame {
        self.edits.push(Edit::IpLen(len));
        self
    }

    /// Zeros added after the built frame up to `len` bytes (60 is
    /// Ethernet's minimum without the FCS).
    pub fn pad(self, len: usize) -> Frame {
        self.pad_with(len, 0)
    }

    /// `byte` added after the built frame up to `len` bytes.
    pub fn pad_with(mut self, len: usize, byte: u8) -> Frame {
        self.edits.push(Edit::Pad(len, byte));
        self
    }

    /// Only the first `len` bytes of the built frame kept.
    pub fn cut(mut self, len: usize) -> Frame {
        self.edits.push(Edit::Cut(len));
        self
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

    /// IPv4 options: the bytes after the fixed header (4n bytes, at
    /// most 40, padding included).
    pub fn ip_options(mut self, options: &[u8]) -> Frame {
        assert!(
            options.len() % 4 == 0 && options.len() <= 40,
            "IPv4 options of 4n bytes, at most 40"
        );
        self.v4_options = options.to_vec();
        self
    }

    /// The MAC addresses.
    pub fn macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Frame {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// One more VLAN tag (after those already given), priority 0.
    pub fn vlan(mut self, vid: u16) -> Frame {
        self.vlans.push((vid, 0));
        self
    }

    /// One more VLAN tag with priority (PCP) `pcp`.
    pub fn vlan_pcp(mut self, vid: u16, pcp: u8) -> Frame {
        assert!(pcp < 8, "VLAN priority below 8");
        self.vlans.push((vid, pcp));
        self
    }

    /// More VLAN tags, outer first (after those already given).
    pub fn vlans(mut self, vids: &[u16]) -> Frame {
        self.vlans.extend(vids.iter().map(|&v| (v, 0)));
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
        let mut out = l2::ethernet(self);
        match self.l2 {
            Some(body) => l2::body(&mut out, body, &self.payload),
            None => out.extend(self.l3(PacketBuilder::ip(self.ip_headers()))),
        }
        edit::apply(self, &mut out);
        out
    }

    /// The bytes from the IP header on (what [`Frame::build`] puts after
    /// the Ethernet header and VLAN tags).
    pub fn ip_bytes(&self) -> Vec<u8> {
        let f = self.build();
        f[14 + 4 * self.vlans.len()..].to_vec()
    }

    fn ip_headers(&self) -> IpHeaders {
        let (dscp, ecn) = self.tos;
        match self.ip {
            Ip::V4(source, destination) => {
                let v = self.v4;
                let h = Ipv4Header {
                    source,
                    destination,
                    time_to_live: self.ttl,
                    dscp: IpDscp::try_new(dscp).expect("DSCP below 64"),
                    ecn: IpEcn::try_new(ecn).expect("ECN below 4"),
                    identification: v.ident,
                    dont_fragment: v.dont_fragment,
                    more_fragments: v.more_fragments,
                    fragment_offset: IpFragOffset::try_new(v.fragment_offset)
                        .expect("fragment offset below 8192"),
                    options: self.v4_options[..]
                        .try_into()
                        .expect("4n bytes, at most 40"),
                    ..Default::default()
                };
                IpHeaders::Ipv4(h, Default::default())
            }
            Ip::V6(source, destination) => {
                let h = Ipv6Header {
                    source,
                    destination,
                    hop_limit: self.ttl,
                    traffic_class: dscp << 2 | ecn,
                    flow_label: Ipv6FlowLabel::try_new(self.flow_label)
                        .expect("flow label below 2^20"),
                    ..Default::default()
                };
                IpHeaders::Ipv6(h, self.extensions())
            }
        }
    }

    fn extensions(&self) -> Ipv6Extensions {
        // The next-header bytes are set by etherparse when it writes.
        let raw = |b: &Option<Vec<u8>>| {
            b.as_ref()
                .map(|b| Ipv6RawExtHeader::new_raw(IpNumber(0), b).expect("6 + 8n bytes"))
        };
        Ipv6Extensions {
            hop_by_hop_options: raw(&self.ext6.hop_by_hop),
            destination_options: raw(&self.ext6.dest_opts),
            routing: raw(&self.ext6.routing).map(|routing| Ipv6RoutingExtensions {
                routing,
                final_destination_options: None,
            }),
            ..Default::default()
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
                if !self.tcp_options.is_empty() {
                    t = t
                        .options_raw(&self.tcp_options)
                        .expect("TCP options of 4n bytes, at most 40");
                }
                t.write(&mut out, p)
            }
            (L4::Icmp { kind, code, rest }, Ip::V4(..)) => {
                ip.icmpv4_raw(kind, code, rest).write(&mut out, p)
            }
            (L4::Icmp { kind, code, rest }, Ip::V6(..)) => {
                ip.icmpv6_raw(kind, code, rest).write(&mut out, p)
            }
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

    #[test]
    fn the_fields_beyond_the_common_ones() {
        let v6 = Ip::v6([1; 16], [2; 16]);
        let f = Frame::udp(v6, 1, 2)
            .vlan_pcp(9, 5)
            .vlan_pcp(10, 3)
            .tos(46, 1)
            .flow_label(0x12345)
            .hop_by_hop(&[1, 4, 0, 0, 0, 0])
            .routing(&[0, 0, 0, 0, 0, 0])
            .build();
        assert_eq!(f[12..18], [0x88, 0xa8, 0xa0, 9, 0x81, 0x00]);
        assert_eq!(f[18..20], [0x60, 10]);
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        let h = ip.header();
        assert_eq!(
            (h.traffic_class(), h.flow_label().value()),
            (46 << 2 | 1, 0x12345)
        );
        let kinds: Vec<_> = ip.extensions().clone().into_iter().collect();
        assert_eq!(kinds.len(), 2, "hop-by-hop and routing");
        assert!(matches!(s.transport, Some(TransportSlice::Udp(_))));

        let v4 = Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]);
        let f = Frame::tcp(v4, 1, 2, TCP_SYN)
            .tcp_options(&[2, 4, 5, 0xb4])
            .tos(10, 2)
            .build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().to_header().dscp.value(), 10);
        assert_eq!(ip.header().to_header().ecn.value(), 2);
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        assert_eq!(t.options(), [2, 4, 5, 0xb4]);
    }

    #[test]
    fn arp_icmp_errors_and_other_ethertypes() {
        let f = Frame::arp(
            ARP_REQUEST,
            ([2; 6], [10, 0, 0, 1]),
            ([0; 6], [10, 0, 0, 2]),
        )
        .build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Arp(a)) = s.net else {
            panic!()
        };
        assert_eq!(a.operation().0, ARP_REQUEST);
        assert_eq!(
            (a.sender_protocol_addr(), a.target_protocol_addr()),
            (&[10, 0, 0, 1][..], &[10, 0, 0, 2][..])
        );
        assert_eq!((f[..6].to_vec(), f.len()), (vec![0xff; 6], 42));
        let f = Frame::ether(0x88cc).vlan(3).payload(&[1, 2]).build();
        assert_eq!(f[12..], [0x81, 0, 0, 3, 0x88, 0xcc, 1, 2]);
        let plain = Frame::ether(0x88cc).payload(&[1, 2]).build();
        assert_eq!(tag(&plain, 0x8100, 3), f);
        let m = marked(0x88b5, b"tok", 9, 60);
        assert_eq!(
            (m.len(), &m[12..21]),
            (60, &[0x88, 0xb5, b't', b'o', b'k', 0, 0, 0, 9][..])
        );

        let v4 = Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]);
        let inner = Frame::udp(v4, 5, 6).payload(&[7; 30]);
        let f = Frame::icmp_error(Ip::v4([10, 0, 0, 9], [10, 0, 0, 1]), 3, 3, &inner).build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Icmpv4(i)) = s.transport else {
            panic!()
        };
        assert_eq!((i.type_u8(), i.code_u8()), (3, 3));
        assert_eq!(i.payload(), &inner.ip_bytes()[..28]);
    }

    #[test]
    fn edits_break_what_they_say() {
        let v4 = Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]);
        let good = Frame::udp(v4, 1, 2).payload(&[1, 2, 3]).build();
        let f = Frame::udp(v4, 1, 2)
            .payload(&[1, 2, 3])
            .ip_len(99)
            .cut(40)
            .build();
        assert_eq!(f.len(), 40);
        assert_eq!(f[16..18], [0, 99]);
        let (h, _) = Ipv4Header::from_slice(&f[14..]).unwrap();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(f[18..24], good[18..24]);
        // The partial checksum plus the checksum of the rest is the full one.
        let p = Frame::udp(v4, 1, 2)
            .payload(&[1, 2, 3])
            .partial_csum()
            .build();
        let mut rest = p[34..].to_vec();
        rest[6..8].fill(0);
        let partial = u16::from_be_bytes([p[40], p[41]]);
        let full = !edit::fold(edit::sum(&rest, u64::from(partial)));
        assert_eq!(full.to_be_bytes(), good[40..42]);

        let frags = Frame::udp(v4, 1, 2)
            .dont_fragment(false)
            .payload(&[9; 100])
            .fragments(48, 7);
        assert_eq!(frags.len(), 3);
    }
}
