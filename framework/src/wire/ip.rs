//! Views over the network layer: IPv4, IPv6 and the IPv6 Fragment header.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::field::{ipv4, ipv6, ipv6_frag};
use super::view::{array, get16, set16, view};

/// IPv4 "more fragments" flag.
const IPV4_MF: u16 = 0x2000;
/// IPv4 "don't fragment" flag.
const IPV4_DF: u16 = 0x4000;
/// IPv4 fragment offset, in 8-byte units.
const IPV4_OFFSET: u16 = 0x1fff;

view!(
    /// An IPv4 header: `Ipv4Packet::new_checked(&frame[l3..])?.src_addr()`.
    /// The length check covers the 20 fixed bytes; options and payload are
    /// the caller's (with [`Ipv4Packet::header_len`] and [`Ipv4Packet::total_len`]).
    Ipv4Packet,
    ipv4::MIN_LEN
);

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// IP version (4 in a well-formed header).
    #[inline]
    pub fn version(&self) -> u8 {
        self.fixed()[ipv4::VER_IHL] >> 4
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        (self.fixed()[ipv4::VER_IHL] & 0x0f) as usize * 4
    }

    /// DSCP and ECN.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.fixed()[ipv4::TOS]
    }

    /// Total length: header and payload.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get16(self.fixed(), ipv4::TOTAL_LEN)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.fixed(), ipv4::ID)
    }

    /// The "don't fragment" flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        get16(self.fixed(), ipv4::FRAG) & IPV4_DF != 0
    }

    /// The "more fragments" flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        get16(self.fixed(), ipv4::FRAG) & IPV4_MF != 0
    }

    /// Fragment offset, in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get16(self.fixed(), ipv4::FRAG) & IPV4_OFFSET) << 3
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.fixed()[ipv4::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.fixed()[ipv4::PROTO]
    }

    /// Header checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.fixed(), ipv4::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.fixed(), ipv4::SRC))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(array::<4>(self.fixed(), ipv4::DST))
    }

    /// Source then destination address, as they lie in the header (8 bytes).
    #[inline]
    pub fn addrs_bytes(&self) -> &[u8; 8] {
        let h = self.fixed();
        h[ipv4::SRC.start..ipv4::DST.end]
            .try_into()
            .unwrap_or_else(|_| unreachable!())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.fixed_mut()[ipv4::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.fixed_mut()[ipv4::DST].copy_from_slice(&a.octets());
    }

    /// Sets the header checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        set16(self.fixed_mut(), ipv4::CHECKSUM, c);
    }

    /// Sets the time to live.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.fixed_mut()[ipv4::TTL] = ttl;
    }

    /// Sets the type-of-service byte (DSCP and ECN).
    #[inline]
    pub fn set_tos(&mut self, tos: u8) {
        self.fixed_mut()[ipv4::TOS] = tos;
    }

    /// Sets the header length in bytes (a multiple of 4, 20 to 60), keeping
    /// the version.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let h = self.fixed_mut();
        h[ipv4::VER_IHL] = (h[ipv4::VER_IHL] & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the total length: header and payload.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        set16(self.fixed_mut(), ipv4::TOTAL_LEN, len);
    }

    /// Sets the fragment fields: the "don't fragment" and "more fragments"
    /// flags and the offset in bytes (a multiple of 8; its low 3 bits are
    /// dropped); the reserved flag is cleared.
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & IPV4_OFFSET;
        if dont_frag {
            v |= IPV4_DF;
        }
        if more_frags {
            v |= IPV4_MF;
        }
        set16(self.fixed_mut(), ipv4::FRAG, v);
    }
}

/// The IPv4 option type's top bit: the option goes into every fragment of
/// the datagram, not only the first (RFC 791).
const IPV4_OPT_COPIED: u8 = 0x80;
/// The "end of option list" option (one byte; what follows is padding).
const IPV4_OPT_END: u8 = 0;
/// The "no operation" option (one byte).
const IPV4_OPT_NOP: u8 = 1;

/// Writes to `out` the IPv4 options of `options` (the header's bytes after
/// its fixed 20) that every fragment carries (copy flag set), in order and
/// padded with zeros (end of list) to a multiple of 4 bytes, and returns
/// how many bytes that is; `None` when an option's length is below 2 or
/// runs past `options` (more than 40 bytes of options is an error too: a
/// header holds no more). What a router puts in the second and later
/// fragments it cuts a datagram into.
pub fn ipv4_copied_options(options: &[u8], out: &mut [u8; 40]) -> Option<usize> {
    if options.len() > out.len() {
        return None;
    }
    let (mut i, mut n) = (0, 0);
    while let Some(&kind) = options.get(i) {
        let len = match kind {
            IPV4_OPT_END => break,
            IPV4_OPT_NOP => 1,
            _ => Some(usize::from(*options.get(i + 1)?)).filter(|&l| l >= 2)?,
        };
        let opt = options.get(i..i + len)?;
        if kind & IPV4_OPT_COPIED != 0 {
            out[n..n + len].copy_from_slice(opt);
            n += len;
        }
        i += len;
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    Some(padded)
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// The 16-bit word holding the TTL and the protocol, as the header
    /// checksum sums it (for an incremental update after [`Ipv4Packet::set_ttl`]).
    #[inline]
    pub fn ttl_proto_word(&self) -> u16 {
        get16(self.fixed(), ipv4::TTL..ipv4::PROTO + 1)
    }

    /// The 16-bit word holding the version, header length and TOS, as the
    /// header checksum sums it (after [`Ipv4Packet::set_tos`]).
    #[inline]
    pub fn ver_tos_word(&self) -> u16 {
        get16(self.fixed(), ipv4::VER_IHL..ipv4::TOS + 1)
    }
}

view!(
    /// An IPv6 fixed header: `Ipv6Packet::new_checked(&frame[l3..])?.next_header()`.
    Ipv6Packet,
    ipv6::LEN
);

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// IP version (6 in a well-formed header).
    #[inline]
    pub fn version(&self) -> u8 {
        self.fixed()[ipv6::VER_TC_FLOW.start] >> 4
    }

    /// Payload length: extension headers and transport, without the fixed header.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        get16(self.fixed(), ipv6::PAYLOAD_LEN)
    }

    /// Type of the first header after the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.fixed()[ipv6::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.fixed()[ipv6::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.fixed(), ipv6::SRC))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(array::<16>(self.fixed(), ipv6::DST))
    }

    /// Source then destination address, as they lie in the header (32 bytes).
    #[inline]
    pub fn addrs_bytes(&self) -> &[u8; 32] {
        let h = self.fixed();
        h[ipv6::SRC.start..ipv6::DST.end]
            .try_into()
            .unwrap_or_else(|_| unreachable!())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.fixed_mut()[ipv6::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.fixed_mut()[ipv6::DST].copy_from_slice(&a.octets());
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        self.fixed_mut()[ipv6::HOP_LIMIT] = h;
    }

    /// Sets the traffic class (DSCP and ECN), keeping version and flow label.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let h = self.fixed_mut();
        h[0] = (h[0] & 0xf0) | tc >> 4;
        h[1] = (h[1] & 0x0f) | tc << 4;
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let h = self.fixed();
        h[0] << 4 | h[1] >> 4
    }
}

view!(
    /// An IPv6 Fragment extension header.
    Ipv6FragHeader,
    ipv6_frag::LEN
);

impl<T: AsRef<[u8]>> Ipv6FragHeader<T> {
    /// Type of the first header of the fragmentable part.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.fixed()[ipv6_frag::NEXT_HEADER]
    }

    /// Fragment offset, in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        get16(self.fixed(), ipv6_frag::OFFSET_M) & 0xfff8
    }

    /// The M flag: more fragments follow.
    #[inline]
    pub fn more_frags(&self) -> bool {
        get16(self.fixed(), ipv6_frag::OFFSET_M) & 1 != 0
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        u32::from_be_bytes(array(self.fixed(), ipv6_frag::ID))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Truncated;
    use etherparse::{Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice};

    /// A real IPv4 header: a DNS query from 192.168.1.23 to 8.8.8.8, DF set.
    const V4: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x4b, 0x2a, 0xc0, 0xa8, 0x01,
        0x17, 0x08, 0x08, 0x08, 0x08,
    ];

    /// A real IPv6 header: TCP from 2001:db8::1 to 2001:db8::2, hop limit 64.
    const V6: [u8; 40] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
    ];

    #[test]
    fn ipv4_fields_agree_with_etherparse() {
        let v = Ipv4Packet::new_checked(&V4[..]).unwrap();
        let p = Ipv4HeaderSlice::from_slice(&V4).unwrap();
        assert_eq!(v.version(), p.version());
        assert_eq!(v.header_len(), p.slice().len());
        assert_eq!(v.total_len(), p.total_len());
        assert_eq!(v.ident(), p.identification());
        assert_eq!(v.dont_frag(), p.dont_fragment());
        assert_eq!(v.more_frags(), p.more_fragments());
        assert_eq!(v.frag_offset(), p.fragments_offset().value() * 8);
        assert_eq!(v.ttl(), p.ttl());
        assert_eq!(v.protocol(), p.protocol().0);
        assert_eq!(v.checksum(), p.header_checksum());
        assert_eq!(v.src_addr(), p.source_addr());
        assert_eq!(v.dst_addr(), p.destination_addr());
        assert_eq!(v.addrs_bytes()[..4], p.source());
        assert_eq!(v.tos(), 0);
    }

    #[test]
    fn ipv4_fragment_fields() {
        let mut h = V4;
        h[6..8].copy_from_slice(&(0x2000u16 | 185).to_be_bytes());
        let v = Ipv4Packet::new_checked(&h[..]).unwrap();
        let p = Ipv4HeaderSlice::from_slice(&h).unwrap();
        assert!(v.more_frags() && p.more_fragments() && !v.dont_frag());
        assert_eq!(v.frag_offset(), 1480);
        assert_eq!(v.frag_offset(), p.fragments_offset().value() * 8);
    }

    #[test]
    fn ipv4_length_and_fragment_setters_agree_with_etherparse() {
        let mut h = [0u8; 24];
        h[..20].copy_from_slice(&V4);
        let mut v = Ipv4Packet::new_checked(&mut h[..]).unwrap();
        v.set_header_len(24);
        v.set_total_len(1000);
        v.set_frag(false, true, 2960);
        let p = Ipv4HeaderSlice::from_slice(&h).unwrap();
        assert_eq!((p.ihl(), p.total_len()), (6, 1000));
        assert!(p.more_fragments() && !p.dont_fragment());
        assert_eq!(p.fragments_offset().value(), 370);
        let mut v = Ipv4Packet::new_checked(&mut h[..]).unwrap();
        v.set_frag(true, false, 0);
        let p = Ipv4HeaderSlice::from_slice(&h).unwrap();
        assert!(!p.more_fragments() && p.dont_fragment());
        assert_eq!((p.version(), p.fragments_offset().value()), (4, 0));
    }

    #[test]
    fn ipv4_copied_options_keep_those_with_the_copy_flag() {
        let mut out = [0xff; 40];
        // Security (copied), NOP, record route (not), timestamp (not), end.
        let opts = [
            0x82, 4, 9, 9, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0x44, 4, 5, 0, 0, 0, 0, 0,
        ];
        assert_eq!(ipv4_copied_options(&opts, &mut out), Some(4));
        assert_eq!(out[..4], [0x82, 4, 9, 9]);
        // An odd length is padded with zeros; nothing copied is nothing.
        let opts = [0x83, 3, 4, 0];
        assert_eq!(ipv4_copied_options(&opts, &mut out), Some(4));
        assert_eq!(out[..4], [0x83, 3, 4, 0]);
        assert_eq!(ipv4_copied_options(&[1, 1, 7, 3, 4, 0], &mut out), Some(0));
        assert_eq!(ipv4_copied_options(&[], &mut out), Some(0));
        // After the end of the list, only padding: never read.
        assert_eq!(ipv4_copied_options(&[0, 0x83, 200, 0], &mut out), Some(0));
        for bad in [
            &[0x83, 9, 0, 0][..],
            &[0x83, 1, 0, 0],
            &[7, 0, 0, 0],
            &[0x83],
        ] {
            assert_eq!(ipv4_copied_options(bad, &mut out), None, "{bad:?}");
        }
        assert_eq!(
            ipv4_copied_options(&[1; 44], &mut out),
            None,
            "over 40 bytes"
        );
    }

    #[test]
    fn ipv6_fields_agree_with_etherparse() {
        let v = Ipv6Packet::new_checked(&V6[..]).unwrap();
        let p = Ipv6HeaderSlice::from_slice(&V6).unwrap();
        assert_eq!(v.version(), p.version());
        assert_eq!(v.payload_len(), p.payload_length());
        assert_eq!(v.next_header(), p.next_header().0);
        assert_eq!(v.hop_limit(), p.hop_limit());
        assert_eq!(v.src_addr(), p.source_addr());
        assert_eq!(v.dst_addr(), p.destination_addr());
        assert_eq!(v.addrs_bytes()[16..], p.destination());
    }

    #[test]
    fn ipv6_fragment_header_agrees_with_etherparse() {
        // Next header UDP, offset 1448 bytes, M set, identification 0xdeadbeef.
        let f = [17, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef];
        let v = Ipv6FragHeader::new_checked(&f[..]).unwrap();
        let p = Ipv6FragmentHeaderSlice::from_slice(&f).unwrap();
        assert_eq!(v.next_header(), p.next_header().0);
        assert_eq!(v.frag_offset(), p.fragment_offset().value() * 8);
        assert_eq!(v.more_frags(), p.more_fragments());
        assert_eq!(v.ident(), p.identification());
        assert_eq!((v.frag_offset(), v.more_frags()), (1448, true));
    }

    #[test]
    fn setters_write_the_fields() {
        let mut h = V4;
        let mut v = Ipv4Packet::new_checked(&mut h[..]).unwrap();
        let (s, d) = (v.src_addr(), v.dst_addr());
        v.set_src_addr(d);
        v.set_dst_addr(s);
        v.set_checksum(0x1234);
        let p = Ipv4HeaderSlice::from_slice(&h).unwrap();
        assert_eq!((p.source_addr(), p.destination_addr()), (d, s));
        assert_eq!(p.header_checksum(), 0x1234);
        let mut h6 = V6;
        let mut v = Ipv6Packet::new_checked(&mut h6[..]).unwrap();
        let (s, d) = (v.src_addr(), v.dst_addr());
        v.set_src_addr(d);
        v.set_dst_addr(s);
        assert_eq!((v.src_addr(), v.dst_addr()), (d, s));
    }

    #[test]
    fn at_views_the_fixed_header_inside_a_frame() {
        let mut frame = vec![0xee; 14];
        frame.extend_from_slice(&V4);
        frame.extend_from_slice(&[1, 2, 3]);
        let v = Ipv4Packet::at(&frame, 14).unwrap();
        assert_eq!(v.as_bytes(), &V4[..], "the fixed part only");
        assert_eq!(v.dst_addr(), Ipv4Addr::new(8, 8, 8, 8));
        assert!(Ipv4Packet::at(&frame, 18).is_none(), "ends past the frame");
        assert!(Ipv4Packet::at(&frame, usize::MAX).is_none());
        assert!(Ipv6Packet::at(&frame, 0).is_none());
    }

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(Ipv4Packet::new_checked(&V4[..19]), Err(Truncated));
        assert_eq!(Ipv6Packet::new_checked(&V6[..39]), Err(Truncated));
        assert_eq!(Ipv6FragHeader::new_checked(&V6[..7]), Err(Truncated));
    }

    #[test]
    fn ttl_tos_and_traffic_class_setters_touch_only_their_bits() {
        let mut b = V4;
        let mut ip = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!((ip.ttl_proto_word(), ip.ver_tos_word()), (0x4011, 0x4500));
        ip.set_ttl(7);
        ip.set_tos(0xb9);
        assert_eq!((ip.ttl(), ip.protocol(), ip.tos()), (7, 17, 0xb9));
        assert_eq!((ip.ttl_proto_word(), ip.ver_tos_word()), (0x0711, 0x45b9));

        // Version 6, traffic class 0xa5, flow label 0x12345.
        let mut h = [0u8; 40];
        h[..4].copy_from_slice(&[0x6a, 0x51, 0x23, 0x45]);
        let mut ip = Ipv6Packet::new_checked(&mut h[..]).unwrap();
        assert_eq!(ip.traffic_class(), 0xa5);
        ip.set_traffic_class(0x3c);
        ip.set_hop_limit(9);
        assert_eq!(
            (ip.traffic_class(), ip.hop_limit(), ip.version()),
            (0x3c, 9, 6)
        );
        assert_eq!(
            &h[..4],
            &[0x63, 0xc1, 0x23, 0x45],
            "version and flow label kept"
        );
    }
}
