//! One parse of a frame's header stack, shared by all elements.

use super::{be16, field, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use super::{ETH_HLEN, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, VLAN_HLEN};

/// What network layer a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3Kind {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// Anything else (ARP, LLDP, ...): [`Headers::ethertype`] says which.
    Other,
}

/// How far the parse got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseStatus {
    /// Every header present is complete and consistent.
    Ok,
    /// The frame ends inside the Ethernet header or a VLAN tag.
    L2Truncated,
    /// The IP header is cut short or inconsistent (bad version, header
    /// length, total length beyond the frame).
    L3Malformed,
    /// The TCP/UDP/ICMP header is cut short.
    L4Truncated,
}

/// Offsets and key facts of a frame's headers, computed once per packet.
///
/// All offsets are from the frame's first byte. Once [`Headers::status`] is
/// [`ParseStatus::Ok`], every header named here lies wholly inside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    /// Ethernet type after any VLAN tags.
    pub ethertype: u16,
    /// VLAN id of the outermost tag (0 when untagged).
    pub vlan_id: u16,
    /// Number of VLAN tags (0, 1 or 2).
    pub vlan_tags: u8,
    /// Network layer kind.
    pub l3: L3Kind,
    /// Offset of the network header.
    pub l3_off: u16,
    /// Offset of the transport header (valid when [`Headers::has_l4`]).
    pub l4_off: u16,
    /// IP protocol of the transport header (0 when none).
    pub l4_proto: u8,
    /// A complete TCP, UDP, ICMP or ICMPv6 header is at `l4_off`
    /// (false for non-first fragments and other protocols).
    pub has_l4: bool,
    /// How far the parse got.
    pub status: ParseStatus,
}

impl Headers {
    fn empty(status: ParseStatus) -> Headers {
        Headers {
            ethertype: 0,
            vlan_id: 0,
            vlan_tags: 0,
            l3: L3Kind::Other,
            l3_off: 0,
            l4_off: 0,
            l4_proto: 0,
            has_l4: false,
            status,
        }
    }

    /// Parses the header stack of `frame`. Never panics, whatever the bytes.
    #[inline]
    pub fn parse(frame: &[u8]) -> Headers {
        match Headers::parse_common(frame) {
            Some(h) => h,
            None => Headers::parse_any(frame),
        }
    }

    /// The common case in few instructions: an untagged IPv4 frame with a
    /// 20-byte header, not a later fragment, carrying a complete UDP or TCP
    /// header. `None` for anything else, which [`Headers::parse_any`] handles.
    /// Gives exactly what `parse_any` would (a test compares them).
    #[inline(always)]
    fn parse_common(frame: &[u8]) -> Option<Headers> {
        const L3: usize = ETH_HLEN;
        const L4: usize = L3 + field::ipv4::MIN_LEN;
        let b: &[u8; L4 + field::tcp::MIN_LEN] =
            frame.get(..L4 + field::tcp::MIN_LEN)?.try_into().ok()?;
        if be16(b, field::eth::ETHERTYPE.start) != ETHERTYPE_IPV4 || b[L3] != 0x45 {
            return None;
        }
        let total = be16(b, L3 + field::ipv4::TOTAL_LEN.start) as usize;
        let frag_offset = be16(b, L3 + field::ipv4::FRAG.start) & 0x1fff;
        let proto = b[L3 + field::ipv4::PROTO];
        let (l4_len, l4_min) = match proto {
            IPPROTO_UDP => (field::udp::LEN, field::udp::LEN),
            IPPROTO_TCP => (
                (b[L4 + field::tcp::DATA_OFF] >> 4) as usize * 4,
                field::tcp::MIN_LEN,
            ),
            _ => return None,
        };
        if frag_offset != 0
            || L3 + total > frame.len()
            || l4_len < l4_min
            || total < field::ipv4::MIN_LEN + l4_len
        {
            return None;
        }
        Some(Headers {
            ethertype: ETHERTYPE_IPV4,
            vlan_id: 0,
            vlan_tags: 0,
            l3: L3Kind::Ipv4,
            l3_off: L3 as u16,
            l4_off: L4 as u16,
            l4_proto: proto,
            has_l4: true,
            status: ParseStatus::Ok,
        })
    }

    /// Parses any frame (the general path of [`Headers::parse`]).
    #[inline(never)]
    pub fn parse_any(frame: &[u8]) -> Headers {
        if frame.len() < ETH_HLEN {
            return Headers::empty(ParseStatus::L2Truncated);
        }
        let mut h = Headers::empty(ParseStatus::Ok);
        let mut off = field::eth::ETHERTYPE.start;
        let mut ethertype = be16(frame, off);
        while matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ) && h.vlan_tags < 2 {
            if frame.len() < off + VLAN_HLEN + 2 {
                h.status = ParseStatus::L2Truncated;
                return h;
            }
            if h.vlan_tags == 0 {
                h.vlan_id = be16(frame, off + 2) & 0x0fff;
            }
            h.vlan_tags += 1;
            off += VLAN_HLEN;
            ethertype = be16(frame, off);
        }
        h.ethertype = ethertype;
        let l3 = off + 2;
        h.l3_off = l3 as u16;
        match ethertype {
            ETHERTYPE_IPV4 => {
                h.l3 = L3Kind::Ipv4;
                parse_ipv4(frame, l3, &mut h);
            }
            ETHERTYPE_IPV6 => {
                h.l3 = L3Kind::Ipv6;
                parse_ipv6(frame, l3, &mut h);
            }
            _ => {}
        }
        h
    }

    /// True for IPv4 or IPv6 frames whose IP header parsed.
    #[inline]
    pub fn is_ip(&self) -> bool {
        self.l3 != L3Kind::Other
            && matches!(self.status, ParseStatus::Ok | ParseStatus::L4Truncated)
    }
}

fn parse_ipv4(frame: &[u8], l3: usize, h: &mut Headers) {
    use field::ipv4::*;
    let ip = &frame[l3..];
    if ip.len() < MIN_LEN || ip[VER_IHL] >> 4 != 4 {
        h.status = ParseStatus::L3Malformed;
        return;
    }
    let ihl = (ip[VER_IHL] & 0x0f) as usize * 4;
    let total = be16(ip, TOTAL_LEN.start) as usize;
    if ihl < MIN_LEN || ip.len() < ihl || total < ihl || total > ip.len() {
        h.status = ParseStatus::L3Malformed;
        return;
    }
    h.l4_proto = ip[PROTO];
    h.l4_off = (l3 + ihl) as u16;
    let frag_offset = be16(ip, FRAG.start) & 0x1fff;
    if frag_offset == 0 {
        check_l4(&ip[ihl..total], h);
    }
}

/// IPv6 extension headers the parser walks over to find the transport header.
const IPV6_EXT_HOP_BY_HOP: u8 = 0;
const IPV6_EXT_ROUTING: u8 = 43;
const IPV6_EXT_FRAGMENT: u8 = 44;
const IPV6_EXT_AUTH: u8 = 51;
const IPV6_EXT_DEST_OPTS: u8 = 60;
/// Most extension headers walked before giving up on finding L4.
const IPV6_MAX_EXT: usize = 8;

fn parse_ipv6(frame: &[u8], l3: usize, h: &mut Headers) {
    use field::ipv6::*;
    let ip = &frame[l3..];
    if ip.len() < LEN || ip[0] >> 4 != 6 {
        h.status = ParseStatus::L3Malformed;
        return;
    }
    let end = LEN + be16(ip, PAYLOAD_LEN.start) as usize;
    if end > ip.len() {
        h.status = ParseStatus::L3Malformed;
        return;
    }
    let ip = &ip[..end];
    let mut next = ip[NEXT_HEADER];
    let mut off = LEN;
    for _ in 0..IPV6_MAX_EXT {
        let ext_len = match next {
            IPV6_EXT_HOP_BY_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DEST_OPTS => {
                ip.get(off + 1).map(|&l| (l as usize + 1) * 8)
            }
            IPV6_EXT_AUTH => ip.get(off + 1).map(|&l| (l as usize + 2) * 4),
            IPV6_EXT_FRAGMENT => Some(8),
            _ => break,
        };
        let Some(ext_len) = ext_len.filter(|&l| off + l <= ip.len()) else {
            h.status = ParseStatus::L3Malformed;
            return;
        };
        if next == IPV6_EXT_FRAGMENT && be16(ip, off + 2) & 0xfff8 != 0 {
            // A non-first fragment carries no transport header.
            h.l4_proto = ip[off];
            return;
        }
        next = ip[off];
        off += ext_len;
    }
    h.l4_proto = next;
    h.l4_off = (l3 + off) as u16;
    check_l4(&ip[off..], h);
}

fn check_l4(l4: &[u8], h: &mut Headers) {
    let need = match h.l4_proto {
        IPPROTO_TCP => match l4.get(field::tcp::DATA_OFF) {
            Some(&d) => {
                let off = (d >> 4) as usize * 4;
                // A data offset below the fixed 20 bytes is as bad as a cut header.
                if off < field::tcp::MIN_LEN {
                    usize::MAX
                } else {
                    off
                }
            }
            None => field::tcp::MIN_LEN,
        },
        IPPROTO_UDP => field::udp::LEN,
        IPPROTO_ICMP | IPPROTO_ICMPV6 => field::icmp::MIN_LEN,
        _ => return,
    };
    if l4.len() < need {
        h.status = ParseStatus::L4Truncated;
    } else {
        h.has_l4 = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp4(vlan: Option<u16>) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]);
        let mut out = Vec::new();
        match vlan {
            Some(v) => b
                .single_vlan(v.try_into().unwrap())
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1000, 53)
                .write(&mut out, &[0u8; 18]),
            None => b
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1000, 53)
                .write(&mut out, &[0u8; 18]),
        }
        .unwrap();
        out
    }

    #[test]
    fn parses_udp_over_ipv4_with_and_without_vlan() {
        let h = Headers::parse(&udp4(None));
        assert_eq!(h.status, ParseStatus::Ok);
        assert_eq!(
            (h.l3, h.l3_off, h.l4_off, h.l4_proto),
            (L3Kind::Ipv4, 14, 34, 17)
        );
        assert!(h.has_l4);
        let h = Headers::parse(&udp4(Some(42)));
        assert_eq!(
            (h.vlan_tags, h.vlan_id, h.l3_off, h.l4_off),
            (1, 42, 18, 38)
        );
    }

    #[test]
    fn parses_tcp_over_ipv6() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([1; 16], [2; 16], 64)
            .tcp(80, 443, 1, 1000)
            .syn()
            .write(&mut out, b"hi")
            .unwrap();
        let h = Headers::parse(&out);
        assert_eq!(h.status, ParseStatus::Ok);
        assert_eq!(
            (h.l3, h.l4_off, h.l4_proto, h.has_l4),
            (L3Kind::Ipv6, 54, 6, true)
        );
    }

    #[test]
    fn every_truncation_of_a_frame_parses_without_panic() {
        let f = udp4(Some(7));
        for n in 0..f.len() {
            let h = Headers::parse(&f[..n]);
            assert_ne!(h.status, ParseStatus::Ok, "cut at {n} must not look whole");
        }
    }

    #[test]
    fn bad_ipv4_header_length_is_malformed() {
        let mut f = udp4(None);
        f[14] = 0x44; // ihl 16 bytes < 20
        assert_eq!(Headers::parse(&f).status, ParseStatus::L3Malformed);
    }

    #[test]
    fn tcp_data_offset_below_five_words_is_truncated() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 9)
            .tcp(1, 2, 3, 4)
            .write(&mut f, &[0; 30])
            .unwrap();
        f[14 + 20 + 12] = 0x20; // 2 words
        let h = Headers::parse(&f);
        assert_eq!(h.status, ParseStatus::L4Truncated);
        assert!(!h.has_l4);
    }

    #[test]
    fn non_first_fragment_has_no_l4() {
        let mut f = udp4(None);
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // fragment offset 16
        let h = Headers::parse(&f);
        assert_eq!(h.status, ParseStatus::Ok);
        assert!(!h.has_l4);
    }

    #[test]
    fn common_case_agrees_with_the_general_parse() {
        let mut frames = vec![udp4(None), udp4(Some(5))];
        let mut tcp = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 9)
            .tcp(1, 2, 3, 4)
            .write(&mut tcp, &[0; 30])
            .unwrap();
        frames.push(tcp);
        let mut x: u32 = 99;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut fast = 0;
        for base in frames {
            for _ in 0..20_000 {
                let mut f = base.clone();
                // Flip a byte of the headers, and sometimes cut the frame.
                let i = next() as usize % 60.min(f.len());
                f[i] = next() as u8;
                let len = if next() % 4 == 0 {
                    next() as usize % (f.len() + 1)
                } else {
                    f.len()
                };
                let f = &f[..len];
                if let Some(h) = Headers::parse_common(f) {
                    fast += 1;
                    assert_eq!(h, Headers::parse_any(f), "frame {f:02x?}");
                }
            }
        }
        assert!(
            fast > 10_000,
            "the common path must take most frames: {fast}"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u32 = 12345;
        for _ in 0..20000 {
            let mut f = [0u8; 80];
            for b in f.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            // Bias towards IP ethertypes so deeper layers get exercised.
            if x & 1 == 0 {
                f[12] = 0x08;
                f[13] = 0x00;
                f[14] = 0x45;
            } else {
                f[12] = 0x86;
                f[13] = 0xdd;
                f[14] = 0x60;
            }
            let len = (x as usize >> 8) % 81;
            let _ = Headers::parse(&f[..len]);
        }
    }
}
