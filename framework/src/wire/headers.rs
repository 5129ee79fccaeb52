//! One parse of a frame's header stack, shared by all elements.

use super::{be16, field, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use super::{Ipv4Packet, Ipv6FragHeader};
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

/// Whether a packet is an IP fragment, and which.
///
/// The discriminants are flag bits: 0x20 for any fragment, 0x40 for a
/// first one (the positions of Classify's key class bits, so that building
/// a key takes them with one OR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FragKind {
    /// A whole datagram: IPv4 with MF clear and offset 0, IPv6 without a
    /// Fragment header or with an atomic one (offset 0, M clear: RFC 6946
    /// says to process it as a whole datagram), or not IP.
    None = 0,
    /// A non-first fragment (offset != 0): no transport header.
    Later = 0x20,
    /// The first fragment of a datagram (offset 0, more fragments follow):
    /// it carries the transport header.
    First = 0x60,
}

/// A fragment's identity and place in its datagram, read by
/// [`Headers::fragment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 Fragment header identification.
    pub id: u32,
    /// Offset of the fragment's data in the datagram's fragmentable part, in bytes.
    pub offset: u16,
    /// More fragments follow (MF / M flag).
    pub more: bool,
    /// The IPv4 protocol, or the IPv6 Fragment header's Next Header (the
    /// first header of the fragmentable part): the same in every fragment
    /// of a datagram, unlike [`Headers::l4_proto`] when extension headers
    /// follow the Fragment header.
    pub proto: u8,
    /// Offset in the frame of the fragment's data: after the IPv4 header, or
    /// after the IPv6 Fragment header.
    pub data_off: u16,
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
    /// Offset of the transport header (valid when [`Headers::has_l4`]); in a
    /// non-first fragment, of the fragment's data.
    pub l4_off: u16,
    /// IP protocol of the transport header (0 when none).
    pub l4_proto: u8,
    /// A complete TCP, UDP, ICMP or ICMPv6 header is at `l4_off`
    /// (false for non-first fragments and other protocols).
    pub has_l4: bool,
    /// Whether the packet is an IP fragment ([`Headers::fragment`] reads its
    /// identification and offset).
    pub frag: FragKind,
    /// How far the parse got.
    pub status: ParseStatus,
}

/// The IPv4 total length of the frame starting with `b` (`frame_len`
/// bytes long) when it is untagged IPv4 with a 20-byte header (EtherType
/// 0x0800 and version/IHL 0x45, tested in one compare) and that length
/// fits the frame; `None` otherwise. The first test of both fast paths,
/// [`Headers::common_proto`] and [`Headers::plain_ipv4_dst`].
#[inline(always)]
fn plain_ipv4_total(b: &[u8], frame_len: usize) -> Option<usize> {
    let b: &[u8; ETH_HLEN + field::ipv4::MIN_LEN] =
        b.get(..ETH_HLEN + field::ipv4::MIN_LEN)?.try_into().ok()?;
    let head = u32::from_be_bytes([b[12], b[13], b[14], 0]);
    let total = be16(b, ETH_HLEN + field::ipv4::TOTAL_LEN.start) as usize;
    let ok = head == (u32::from(ETHERTYPE_IPV4) << 16 | 0x45 << 8) && ETH_HLEN + total <= frame_len;
    ok.then_some(total)
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
            frag: FragKind::None,
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

    /// The IP protocol (TCP or UDP) when `frame` is the common frame that
    /// [`Headers::parse`] handles on its fast path: untagged IPv4 with a
    /// 20-byte header, not a fragment, with a complete UDP or TCP header
    /// (status `Ok`). `None` for any other frame. Every such frame of one
    /// protocol parses to the same layout, so a matcher that tests only the
    /// EtherType, VLAN, class and protocol can decide it from this alone.
    /// Tests what [`Headers::parse_common`] tests, in fewer instructions (a
    /// test checks that the two agree).
    #[inline(always)]
    pub fn common_proto(frame: &[u8]) -> Option<u8> {
        const L3: usize = ETH_HLEN;
        const L4: usize = L3 + field::ipv4::MIN_LEN;
        let b: &[u8; L4 + field::tcp::MIN_LEN] =
            frame.get(..L4 + field::tcp::MIN_LEN)?.try_into().ok()?;
        let total = plain_ipv4_total(b, frame.len())?;
        let frag = be16(b, L3 + field::ipv4::FRAG.start) & (IPV4_MF | IPV4_OFFSET);
        let proto = b[L3 + field::ipv4::PROTO];
        let l4_len = match proto {
            IPPROTO_UDP => field::udp::LEN,
            IPPROTO_TCP => match (b[L4 + field::tcp::DATA_OFF] >> 4) as usize * 4 {
                short if short < field::tcp::MIN_LEN => return None,
                len => len,
            },
            _ => return None,
        };
        let ok = frag == 0 && total >= field::ipv4::MIN_LEN + l4_len;
        ok.then_some(proto)
    }

    /// The destination address of an untagged IPv4 frame with a 20-byte
    /// header (version/IHL 0x45) whose total length is at least 20 and fits
    /// the frame; `None` for any other frame (VLAN tags, options, IPv6,
    /// short or inconsistent frames), which the caller hands to
    /// [`Headers::parse`]. For a router's lookup, which needs only the
    /// destination: whenever it gives an address, [`Headers::parse`] finds
    /// IPv4 at offset 14 with a status other than `L2Truncated` and
    /// `L3Malformed` (a property test checks this against the parse), so a
    /// lookup may skip the parse and classify such a frame as the parse
    /// would. Fragments and the transport header are not looked at.
    #[inline(always)]
    pub fn plain_ipv4_dst(frame: &[u8]) -> Option<u32> {
        const L3: usize = ETH_HLEN;
        const DST: usize = L3 + field::ipv4::DST.start;
        let b: &[u8; L3 + field::ipv4::MIN_LEN] =
            frame.get(..L3 + field::ipv4::MIN_LEN)?.try_into().ok()?;
        let total = plain_ipv4_total(b, frame.len())?;
        (total >= field::ipv4::MIN_LEN)
            .then(|| u32::from_be_bytes([b[DST], b[DST + 1], b[DST + 2], b[DST + 3]]))
    }

    /// The common case in few instructions: an untagged IPv4 frame with a
    /// 20-byte header, not a fragment, carrying a complete UDP or TCP
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
        // Offset and MF: any fragment takes the general path.
        let frag = be16(b, L3 + field::ipv4::FRAG.start) & (IPV4_MF | IPV4_OFFSET);
        let proto = b[L3 + field::ipv4::PROTO];
        let (l4_len, l4_min) = match proto {
            IPPROTO_UDP => (field::udp::LEN, field::udp::LEN),
            IPPROTO_TCP => (
                (b[L4 + field::tcp::DATA_OFF] >> 4) as usize * 4,
                field::tcp::MIN_LEN,
            ),
            _ => return None,
        };
        if frag != 0
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
            frag: FragKind::None,
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

    /// The identification and offset of a fragment (`None` when
    /// [`Headers::frag`] is [`FragKind::None`]). Reads the IPv4 header, or
    /// walks the IPv6 extension headers again to the Fragment header: meant
    /// for fragments only, not for every packet.
    pub fn fragment(&self, frame: &[u8]) -> Option<Fragment> {
        if self.frag == FragKind::None {
            return None;
        }
        let l3 = self.l3_off as usize;
        match self.l3 {
            L3Kind::Ipv4 => {
                let ip = Ipv4Packet::at(frame, l3)?;
                Some(Fragment {
                    id: ip.ident() as u32,
                    offset: ip.frag_offset(),
                    more: ip.more_frags(),
                    proto: ip.protocol(),
                    data_off: (l3 + ip.header_len()) as u16,
                })
            }
            L3Kind::Ipv6 => {
                let ip = frame.get(l3..)?;
                let at = ipv6_fragment_header(ip)?;
                let fh = Ipv6FragHeader::at(ip, at)?;
                Some(Fragment {
                    id: fh.ident(),
                    offset: fh.frag_offset(),
                    more: fh.more_frags(),
                    proto: fh.next_header(),
                    data_off: (l3 + at + Ipv6FragHeader::<&[u8]>::LEN) as u16,
                })
            }
            L3Kind::Other => None,
        }
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
    let frag = be16(ip, FRAG.start);
    if frag & IPV4_OFFSET != 0 {
        h.frag = FragKind::Later;
        return;
    }
    if frag & IPV4_MF != 0 {
        h.frag = FragKind::First;
    }
    check_l4(&ip[ihl..total], h);
}

/// IPv4 "more fragments" flag and fragment offset (in 8-byte units) bits.
const IPV4_MF: u16 = 0x2000;
const IPV4_OFFSET: u16 = 0x1fff;

/// Length of an IPv6 extension header of type `next` starting at `ip[off]`
/// (`None` for a header that is not an extension header, or cut short).
fn ipv6_ext_len(ip: &[u8], next: u8, off: usize) -> Option<Option<usize>> {
    let len = match next {
        IPV6_EXT_HOP_BY_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DEST_OPTS => {
            ip.get(off + 1).map(|&l| (l as usize + 1) * 8)
        }
        IPV6_EXT_AUTH => ip.get(off + 1).map(|&l| (l as usize + 2) * 4),
        IPV6_EXT_FRAGMENT => Some(8),
        _ => return None,
    };
    Some(len.filter(|&l| off + l <= ip.len()))
}

/// Offset in the IPv6 packet `ip` of its Fragment header, if it has one
/// within the first [`IPV6_MAX_EXT`] extension headers.
fn ipv6_fragment_header(ip: &[u8]) -> Option<usize> {
    use field::ipv6::*;
    let mut next = *ip.get(NEXT_HEADER)?;
    let mut off = LEN;
    for _ in 0..IPV6_MAX_EXT {
        let len = ipv6_ext_len(ip, next, off)??;
        if next == IPV6_EXT_FRAGMENT {
            return Some(off);
        }
        next = ip[off];
        off += len;
    }
    None
}

/// Whether `next` names an IPv6 extension header the parser walks over.
#[inline]
pub fn is_ipv6_ext(next: u8) -> bool {
    matches!(
        next,
        IPV6_EXT_HOP_BY_HOP
            | IPV6_EXT_ROUTING
            | IPV6_EXT_FRAGMENT
            | IPV6_EXT_AUTH
            | IPV6_EXT_DEST_OPTS
    )
}

/// Walks the extension headers of the IPv6 packet `ip` (already checked by
/// the parser): whether the transport pseudo-header uses the destination
/// field. `Some(false)` when a Routing header still has segments left (the
/// pseudo-header then uses the final destination, from that header);
/// `None` when the chain is cut short or longer than the parser walks.
pub fn ipv6_pseudo_uses_dst(ip: &[u8]) -> Option<bool> {
    use field::ipv6::*;
    let mut next = *ip.get(NEXT_HEADER)?;
    let mut off = LEN;
    let mut uses_dst = true;
    for _ in 0..IPV6_MAX_EXT {
        let len = match next {
            IPV6_EXT_HOP_BY_HOP | IPV6_EXT_ROUTING | IPV6_EXT_DEST_OPTS => {
                (*ip.get(off + 1)? as usize + 1) * 8
            }
            IPV6_EXT_AUTH => (*ip.get(off + 1)? as usize + 2) * 4,
            IPV6_EXT_FRAGMENT => 8,
            _ => return Some(uses_dst),
        };
        // Segments left, in the Routing header's fourth byte.
        if next == IPV6_EXT_ROUTING && *ip.get(off + 3)? > 0 {
            uses_dst = false;
        }
        next = *ip.get(off)?;
        off += len;
    }
    (!is_ipv6_ext(next)).then_some(uses_dst)
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
        let Some(ext_len) = ipv6_ext_len(ip, next, off) else {
            break;
        };
        let Some(ext_len) = ext_len else {
            h.status = ParseStatus::L3Malformed;
            return;
        };
        if next == IPV6_EXT_FRAGMENT {
            let f = be16(ip, off + 2);
            if f & 0xfff8 != 0 {
                // A non-first fragment carries no transport header.
                h.frag = FragKind::Later;
                h.l4_proto = ip[off];
                h.l4_off = (l3 + off + ext_len) as u16;
                return;
            }
            if f & 1 != 0 {
                h.frag = FragKind::First;
            }
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
    use testkit::frame::{Frame, Ip, TCP_SYN};

    fn udp4(vlan: Option<u16>) -> Vec<u8> {
        let f = Frame::udp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1000, 53)
            .macs([1; 6], [2; 6])
            .payload(&[0u8; 18]);
        vlan.map_or(f.clone(), |v| f.vlan(v)).build()
    }

    /// TCP (no flags) over IPv4 with 30 bytes of payload.
    fn tcp4() -> Vec<u8> {
        Frame::tcp(Ip::v4([1, 2, 3, 4], [5, 6, 7, 8]), 1, 2, 0)
            .macs([1; 6], [2; 6])
            .ttl(9)
            .seq(3, 0, 4)
            .payload(&[0; 30])
            .build()
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
        let out = Frame::tcp(Ip::v6([1; 16], [2; 16]), 80, 443, TCP_SYN)
            .macs([1; 6], [2; 6])
            .payload(b"hi")
            .build();
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
        let mut f = tcp4();
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
    fn fragments_are_told_apart_and_read() {
        let whole = udp4(Some(3));
        let l3 = 18;
        let with = |flags: u16| {
            let mut f = whole.clone();
            f[l3 + 4..l3 + 6].copy_from_slice(&0xbeefu16.to_be_bytes());
            f[l3 + 6..l3 + 8].copy_from_slice(&flags.to_be_bytes());
            f
        };
        let h = Headers::parse(&whole);
        assert_eq!((h.frag, h.fragment(&whole)), (FragKind::None, None));
        // MF with offset 0: the first fragment, transport header and all.
        let f = with(0x2000);
        let h = Headers::parse(&f);
        assert_eq!((h.frag, h.has_l4, h.l4_off), (FragKind::First, true, 38));
        assert_eq!(
            h.fragment(&f),
            Some(Fragment {
                id: 0xbeef,
                offset: 0,
                more: true,
                proto: 17,
                data_off: 38
            })
        );
        // Offset 185 (1480 bytes), last: no transport header; data at l4_off.
        let f = with(185);
        let h = Headers::parse(&f);
        assert_eq!(h.status, ParseStatus::Ok);
        assert_eq!(
            (h.frag, h.has_l4, h.l4_proto, h.l4_off),
            (FragKind::Later, false, 17, 38)
        );
        let fr = h.fragment(&f).unwrap();
        assert_eq!((fr.id, fr.offset, fr.more), (0xbeef, 1480, false));
        // DF alone is not a fragment.
        assert_eq!(Headers::parse(&with(0x4000)).frag, FragKind::None);
        // A first fragment too short for its UDP header: truncated, still a fragment.
        let mut cut = with(0x2000);
        cut.truncate(l3 + 20 + 4);
        cut[l3 + 2..l3 + 4].copy_from_slice(&24u16.to_be_bytes());
        let h = Headers::parse(&cut);
        assert_eq!(
            (h.status, h.frag),
            (ParseStatus::L4Truncated, FragKind::First)
        );
    }

    #[test]
    fn ipv6_fragment_header_behind_other_extension_headers() {
        // IPv6, hop-by-hop options (8 bytes), Fragment header, then UDP.
        let whole = Frame::udp(Ip::v6([1; 16], [2; 16]), 1000, 53)
            .macs([1; 6], [2; 6])
            .payload(&[7u8; 16])
            .build();
        let build = |frag: u16, body: &[u8]| {
            let mut f = whole[..54].to_vec();
            f[20] = 0; // next: hop-by-hop
            f.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // next: fragment; PadN
            f.extend_from_slice(&[17, 0]);
            f.extend_from_slice(&frag.to_be_bytes());
            f.extend_from_slice(&0x0102_0304u32.to_be_bytes());
            f.extend_from_slice(body);
            let plen = (f.len() - 54) as u16;
            f[18..20].copy_from_slice(&plen.to_be_bytes());
            f
        };
        let first = build(1, &whole[54..]);
        let h = Headers::parse(&first);
        assert_eq!(h.status, ParseStatus::Ok);
        assert_eq!((h.frag, h.has_l4, h.l4_off), (FragKind::First, true, 70));
        let fr = h.fragment(&first).unwrap();
        assert_eq!(
            (fr.id, fr.offset, fr.more, fr.data_off),
            (0x0102_0304, 0, true, 70)
        );
        let later = build(24, &[9; 8]);
        let h = Headers::parse(&later);
        assert_eq!(
            (h.frag, h.has_l4, h.l4_proto, h.l4_off),
            (FragKind::Later, false, 17, 70)
        );
        let fr = h.fragment(&later).unwrap();
        assert_eq!(
            (fr.offset, fr.more, fr.data_off, fr.proto),
            (24, false, 70, 17)
        );
        // Destination options after the Fragment header: the first fragment's
        // transport protocol is UDP, but the datagram's fragments all say 60.
        let mut opts = build(1, &[]);
        opts[62] = 60; // the Fragment header's next header
        opts.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        opts.extend_from_slice(&whole[54..]);
        let plen = (opts.len() - 54) as u16;
        opts[18..20].copy_from_slice(&plen.to_be_bytes());
        let h = Headers::parse(&opts);
        assert_eq!(
            (h.status, h.frag, h.l4_proto, h.l4_off),
            (ParseStatus::Ok, FragKind::First, 17, 78)
        );
        let fr = h.fragment(&opts).unwrap();
        assert_eq!((fr.proto, fr.data_off), (60, 70));
        // Atomic fragment: a whole datagram.
        let atomic = build(0, &whole[54..]);
        let h = Headers::parse(&atomic);
        assert_eq!((h.frag, h.has_l4), (FragKind::None, true));
        // etherparse agrees on each.
        for (f, frag) in [(&first, true), (&later, true), (&atomic, false)] {
            let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
            let Some(etherparse::NetSlice::Ipv6(v6)) = p.net else {
                panic!("IPv6")
            };
            assert_eq!(v6.is_payload_fragmented(), frag);
        }
    }

    #[test]
    fn headers_stay_small() {
        assert!(std::mem::size_of::<Headers>() <= 14);
    }

    /// Frames for the IPv4 destination's fast path: the plain common
    /// ones and every kind it must leave to the parse.
    fn lookup_frames() -> Vec<Vec<u8>> {
        let v4 = Ip::v4([10, 0, 0, 1], [198, 51, 100, 7]);
        vec![
            Frame::udp(v4, 1, 2).build(),
            Frame::udp(v4, 1, 2).pad(60).build(),
            Frame::tcp(v4, 1, 2, 0).build(),
            Frame::echo(v4, 1, 2).build(),
            Frame::raw(v4, 47).build(),
            Frame::udp(v4, 1, 2).vlan(5).build(),
            Frame::udp(v4, 1, 2).vlans(&[5, 6]).build(),
            Frame::udp(v4, 1, 2).ip_options(&[1, 1, 1, 0]).build(),
            Frame::udp(v4, 1, 2).fragment(8, true).build(),
            Frame::udp(v4, 1, 2).ip_len(19).build(),
            Frame::udp(v4, 1, 2).ip_len(200).build(),
            Frame::udp(Ip::v6([0xfd; 16], [0x20; 16]), 1, 2).build(),
            Frame::arp(1, ([1; 6], [10, 0, 0, 1]), ([0; 6], [10, 0, 0, 2])).build(),
            Frame::ether(0x0800).pad(60).build(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(testkit::prop::config(2048))]

        /// Whenever `plain_ipv4_dst` gives an address, the parse finds
        /// IPv4 at offset 14, neither `L2Truncated` nor `L3Malformed`,
        /// with that destination: a lookup that skips the parse for such
        /// frames routes and drops every frame as the parse would.
        /// Frames: the kinds above with some bytes of their headers
        /// replaced and sometimes cut short, and random bytes.
        #[test]
        fn plain_ipv4_dst_agrees_with_the_parse(
            kind in 0..15usize,
            edits in proptest::collection::vec((0..48usize, proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::option::of(0..80usize),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        ) {
            let kinds = lookup_frames();
            let mut f = kinds.get(kind).cloned().unwrap_or(noise);
            for &(i, b) in &edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            if let Some(n) = cut {
                f.truncate(n);
            }
            let h = Headers::parse(&f);
            let parsed = (h.l3 == L3Kind::Ipv4
                && !matches!(h.status, ParseStatus::L2Truncated | ParseStatus::L3Malformed))
                .then(|| {
                    let d = &f[usize::from(h.l3_off) + 16..usize::from(h.l3_off) + 20];
                    (h.l3_off, u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
                });
            if let Some(dst) = Headers::plain_ipv4_dst(&f) {
                proptest::prop_assert_eq!(parsed, Some((14, dst)), "frame {:02x?}", f);
            }
            // And it takes the plain frames, unchanged and uncut, itself.
            if kind < 5 && edits.is_empty() && cut.is_none() {
                proptest::prop_assert_eq!(Headers::plain_ipv4_dst(&f), Some(0xc633_6407));
            }
        }
    }

    #[test]
    fn common_case_agrees_with_the_general_parse() {
        let frames = vec![udp4(None), udp4(Some(5)), tcp4()];
        let mut rng = testkit::rng::Rng::new(99);
        let mut next = || rng.next_u64();
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
                assert_eq!(
                    Headers::common_proto(f),
                    Headers::parse_common(f).map(|h| h.l4_proto),
                    "frame {f:02x?}"
                );
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
        let mut rng = testkit::rng::Rng::new(12345);
        for _ in 0..20000 {
            let mut f = [0u8; 80];
            rng.fill(&mut f);
            let x = rng.next_u64();
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
