//! Views over the transport layer: TCP, UDP, ICMP and ICMPv6; and the TCP flag bits.

use super::field::{icmp, tcp, udp};
use super::view::{get16, set16, view};

/// TCP flag bits, as they lie in the flags byte ([`TcpPacket::flags`]).
pub mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers (opens a connection).
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push the data to the application.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;

    /// The flags' lower-case names (as configurations write them), in bit order.
    pub const NAMES: [(&str, u8); 8] = [
        ("fin", FIN),
        ("syn", SYN),
        ("rst", RST),
        ("psh", PSH),
        ("ack", ACK),
        ("urg", URG),
        ("ece", ECE),
        ("cwr", CWR),
    ];
}

view!(
    /// A TCP header: `TcpPacket::new_checked(&frame[l4..])?.flags()`. The
    /// length check covers the 20 fixed bytes, not the options.
    TcpPacket,
    tcp::MIN_LEN
);

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.fixed(), tcp::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.fixed(), tcp::DST_PORT)
    }

    /// Source then destination port, as they lie in the header.
    #[inline]
    pub fn ports_bytes(&self) -> [u8; 4] {
        let h = self.fixed();
        [h[0], h[1], h[2], h[3]]
    }

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        u32::from_be_bytes(super::view::array(self.fixed(), tcp::SEQ))
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        u32::from_be_bytes(super::view::array(self.fixed(), tcp::ACK))
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        (self.fixed()[tcp::DATA_OFF] >> 4) as usize * 4
    }

    /// The flags byte ([`tcp_flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.fixed()[tcp::FLAGS]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.fixed(), tcp::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        set16(self.fixed_mut(), tcp::SRC_PORT, p);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        set16(self.fixed_mut(), tcp::DST_PORT, p);
    }

    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, f: u8) {
        self.fixed_mut()[tcp::FLAGS] = f;
    }

    /// Sets the checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.fixed_mut(), tcp::CHECKSUM, c);
    }
}

view!(
    /// A UDP header: `UdpPacket::new_checked(&frame[l4..])?.dst_port()`.
    UdpPacket,
    udp::LEN
);

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.fixed(), udp::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.fixed(), udp::DST_PORT)
    }

    /// Source then destination port, as they lie in the header.
    #[inline]
    pub fn ports_bytes(&self) -> [u8; 4] {
        let h = self.fixed();
        [h[0], h[1], h[2], h[3]]
    }

    /// Length of header and payload.
    #[inline]
    pub fn length(&self) -> u16 {
        get16(self.fixed(), udp::LENGTH)
    }

    /// Checksum (0: none, over IPv4).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.fixed(), udp::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        set16(self.fixed_mut(), udp::SRC_PORT, p);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        set16(self.fixed_mut(), udp::DST_PORT, p);
    }

    /// Sets the checksum (0: none, over IPv4).
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.fixed_mut(), udp::CHECKSUM, c);
    }
}

view!(
    /// An ICMP or ICMPv6 header: type, code, checksum; and, for echo
    /// messages, the identifier when the buffer holds it.
    IcmpPacket,
    icmp::MIN_LEN
);

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.fixed_mut(), icmp::CHECKSUM, c);
    }
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.fixed()[icmp::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.fixed()[icmp::CODE]
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.fixed(), icmp::CHECKSUM)
    }

    /// The identifier of an echo request or reply (the caller knows the
    /// type), or `None` when the buffer ends before it.
    #[inline]
    pub fn echo_ident(&self) -> Option<u16> {
        let id = self.as_bytes().get(icmp::ECHO_ID)?;
        Some(u16::from_be_bytes([id[0], id[1]]))
    }
}

/// Where address and port translation (RFC 3022) rewrites a transport
/// header: byte offsets from the start of a TCP, UDP or ICMP header, for
/// code that may see only the first 8 bytes of one (the datagram quoted by
/// an ICMP error), where the typed views, which need the whole fixed
/// header, do not apply.
pub mod napt {
    use super::super::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};
    use super::{icmp, tcp, udp};

    /// Source port of TCP and UDP (the same place in both).
    pub const SRC_PORT: usize = tcp::SRC_PORT.start;
    /// Destination port of TCP and UDP.
    pub const DST_PORT: usize = tcp::DST_PORT.start;
    /// Identifier of an ICMP query (echo, timestamp: RFC 792).
    pub const ICMP_ID: usize = icmp::ECHO_ID.start;
    /// Length of an ICMP header: an ICMP error's quoted datagram follows it.
    pub const ICMP_HLEN: usize = 8;

    /// Offset of the checksum in a header of IP protocol `proto` (TCP, UDP,
    /// ICMP), or `None` for another protocol.
    #[inline]
    pub fn checksum_at(proto: u8) -> Option<usize> {
        match proto {
            IPPROTO_TCP => Some(tcp::CHECKSUM.start),
            IPPROTO_UDP => Some(udp::CHECKSUM.start),
            IPPROTO_ICMP => Some(icmp::CHECKSUM.start),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Truncated;
    use etherparse::{Icmpv4Slice, Icmpv4Type, Icmpv6Slice, TcpHeaderSlice, UdpHeaderSlice};

    /// A real TCP SYN: port 51234 to 443, window 64240, MSS option.
    const TCP_SYN: [u8; 24] = [
        0xc8, 0x22, 0x01, 0xbb, 0x6b, 0x8b, 0x45, 0x67, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa,
        0xf0, 0x1c, 0x46, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    /// A real UDP header: a DNS query from port 53412 to 53, 40 bytes.
    const DNS: [u8; 8] = [0xd0, 0xa4, 0x00, 0x35, 0x00, 0x28, 0x5d, 0x0e];

    /// A real ICMP echo request: id 0x1c2f, sequence 1, with 4 bytes of data.
    const PING: [u8; 12] = [
        0x08, 0x00, 0xb5, 0xcd, 0x1c, 0x2f, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64,
    ];

    /// An ICMPv6 echo reply: id 0x0042, sequence 7.
    const PONG6: [u8; 8] = [0x81, 0x00, 0x12, 0x34, 0x00, 0x42, 0x00, 0x07];

    #[test]
    fn tcp_fields_agree_with_etherparse() {
        let v = TcpPacket::new_checked(&TCP_SYN[..]).unwrap();
        let p = TcpHeaderSlice::from_slice(&TCP_SYN).unwrap();
        assert_eq!(v.src_port(), p.source_port());
        assert_eq!(v.dst_port(), p.destination_port());
        assert_eq!(v.seq_number(), p.sequence_number());
        assert_eq!(v.ack_number(), p.acknowledgment_number());
        assert_eq!(v.header_len(), p.slice().len());
        assert_eq!(v.checksum(), p.checksum());
        let f = v.flags();
        use tcp_flags::*;
        for (bit, set) in [
            (FIN, p.fin()),
            (SYN, p.syn()),
            (RST, p.rst()),
            (PSH, p.psh()),
            (ACK, p.ack()),
            (URG, p.urg()),
            (ECE, p.ece()),
            (CWR, p.cwr()),
        ] {
            assert_eq!(f & bit != 0, set, "flag {bit:#04x}");
        }
        assert_eq!(v.ports_bytes(), TCP_SYN[..4]);
    }

    #[test]
    fn udp_fields_agree_with_etherparse() {
        let v = UdpPacket::new_checked(&DNS[..]).unwrap();
        let p = UdpHeaderSlice::from_slice(&DNS).unwrap();
        assert_eq!(v.src_port(), p.source_port());
        assert_eq!(v.dst_port(), p.destination_port());
        assert_eq!(v.length(), p.length());
        assert_eq!(v.checksum(), p.checksum());
    }

    #[test]
    fn icmp_echo_agrees_with_etherparse() {
        let v = IcmpPacket::new_checked(&PING[..]).unwrap();
        let p = Icmpv4Slice::from_slice(&PING).unwrap();
        let Icmpv4Type::EchoRequest(e) = p.icmp_type() else {
            panic!("etherparse sees an echo request")
        };
        assert_eq!((v.msg_type(), v.msg_code()), (p.type_u8(), p.code_u8()));
        assert_eq!(v.checksum(), p.checksum());
        assert_eq!(v.echo_ident(), Some(e.id));

        let v = IcmpPacket::new_checked(&PONG6[..]).unwrap();
        let p = Icmpv6Slice::from_slice(&PONG6).unwrap();
        let etherparse::Icmpv6Type::EchoReply(e) = p.icmp_type() else {
            panic!("etherparse sees an echo reply")
        };
        assert_eq!(v.msg_type(), p.type_u8());
        assert_eq!(v.echo_ident(), Some(e.id));
        // Cut before the identifier: the view says so instead of panicking.
        let v = IcmpPacket::new_checked(&PONG6[..5]).unwrap();
        assert_eq!(v.echo_ident(), None);
    }

    #[test]
    fn setters_write_the_fields() {
        let mut t = TCP_SYN;
        let mut v = TcpPacket::new_checked(&mut t[..]).unwrap();
        v.set_src_port(443);
        v.set_dst_port(51234);
        v.set_flags(tcp_flags::SYN | tcp_flags::ACK);
        let p = TcpHeaderSlice::from_slice(&t).unwrap();
        assert_eq!((p.source_port(), p.destination_port()), (443, 51234));
        assert!(p.syn() && p.ack() && !p.fin());
        let mut u = DNS;
        let mut v = UdpPacket::new_checked(&mut u[..]).unwrap();
        v.set_src_port(53);
        v.set_dst_port(53412);
        assert_eq!((v.src_port(), v.dst_port()), (53, 53412));
    }

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(TcpPacket::new_checked(&TCP_SYN[..19]), Err(Truncated));
        assert_eq!(UdpPacket::new_checked(&DNS[..7]), Err(Truncated));
        assert_eq!(IcmpPacket::new_checked(&PING[..3]), Err(Truncated));
    }

    #[test]
    fn flag_names_are_in_bit_order() {
        for (i, (_, bit)) in tcp_flags::NAMES.iter().enumerate() {
            assert_eq!(*bit, 1 << i);
        }
    }
}
