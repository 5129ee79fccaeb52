//! Finishing the TCP/UDP checksum of frames the kernel hands over with it
//! not filled in (`TP_STATUS_CSUMNOTREADY`).
//!
//! Linux leaves a locally generated TCP or UDP segment `CHECKSUM_PARTIAL`
//! when the device it leaves through offloads checksums: the checksum field
//! holds only the sum of the pseudo-header, and the device is to finish it.
//! A veth device "finishes" it by handing the frame to its peer as it is, so
//! a packet socket on the peer sees the partial sum. Forwarded out of
//! another interface unchanged, the frame would be dropped by its receiver.
//!
//! The kernel's software fallback (`skb_checksum_help`) sums the bytes from
//! the transport header (`csum_start`) to the end of the packet, with the
//! partial sum in place in the field, and writes the complement of that sum
//! into the field (0 becomes 0xffff). [`complete`] does the same, ending at
//! the end of the IP payload (the frame ends there unless padded).

use crate::packet::Packet;
use crate::wire::{checksum, L3Kind, ParseStatus, IPPROTO_TCP, IPPROTO_UDP};
use crate::wire::{Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};

/// Finishes the TCP or UDP checksum of `p`, whose checksum field holds the
/// pseudo-header sum (as the kernel leaves it). True when it did; false,
/// frame untouched, for anything else (other protocols, later fragments,
/// frames cut short). Parses the headers (cached in the slot).
pub(super) fn complete(p: &mut Packet) -> bool {
    let h = p.headers();
    if h.status != ParseStatus::Ok || !h.has_l4 {
        return false;
    }
    // The fixed header holding the checksum field.
    let header = match h.l4_proto {
        IPPROTO_TCP => TcpPacket::<&[u8]>::LEN,
        IPPROTO_UDP => UdpPacket::<&[u8]>::LEN,
        _ => return false,
    };
    let (l3, l4) = (h.l3_off as usize, h.l4_off as usize);
    let f = p.data_mut();
    // A parsed IP header lies wholly inside the frame (status Ok).
    let end = match h.l3 {
        L3Kind::Ipv4 => l3 + Ipv4Packet::new_unchecked(&f[l3..]).total_len() as usize,
        L3Kind::Ipv6 => {
            l3 + Ipv6Packet::<&[u8]>::LEN
                + Ipv6Packet::new_unchecked(&f[l3..]).payload_len() as usize
        }
        L3Kind::Other => return false,
    };
    if end > f.len() || l4 + header > end {
        return false;
    }
    let mut c = checksum::checksum(&f[l4..end]);
    let seg = &mut f[l4..end];
    if h.l4_proto == IPPROTO_UDP {
        // 0 means "no checksum" in UDP; 0xffff is the same sum.
        if c == 0 {
            c = 0xffff;
        }
        UdpPacket::new_unchecked(seg).set_checksum(c);
    } else {
        TcpPacket::new_unchecked(seg).set_checksum(c);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use testkit::frame::{Frame, Ip, TCP_ACK, TCP_PSH};

    /// Sum of the pseudo-header of a transport segment of `len` bytes
    /// between `src` and `dst` (IPv4 or IPv6 addresses), computed here
    /// independently of the crate's helpers.
    fn pseudo_sum(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u16 {
        let mut words: Vec<u32> = src
            .chunks(2)
            .chain(dst.chunks(2))
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .collect();
        words.push(u32::from(proto));
        words.push((len as u32) >> 16);
        words.push((len as u32) & 0xffff);
        let mut acc: u32 = words.iter().sum();
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    /// A frame built and checksummed by etherparse (an 802.1Q tag put in
    /// when `vlan`), with its checksum field replaced by the pseudo-header
    /// sum, as the kernel hands it over; returns it with the right checksum.
    fn partial(v6: bool, tcp: bool, vlan: bool, payload: &[u8]) -> (Vec<u8>, u16) {
        let ip = if v6 {
            let mut a = [0u8; 16];
            a[0] = 0xfd;
            a[15] = 1;
            let mut z = a;
            z[15] = 2;
            Ip::v6(a, z)
        } else {
            Ip::v4([10, 0, 0, 1], [10, 0, 0, 2])
        };
        let frame = if tcp {
            Frame::tcp(ip, 40000, 80, TCP_ACK | TCP_PSH).seq(0x0102_0304, 77, 1000)
        } else {
            Frame::udp(ip, 5353, 53)
        };
        let frame = if vlan { frame.vlan(42) } else { frame };
        let mut f = frame.payload(payload).build();
        let s = SlicedPacket::from_ethernet(&f).unwrap();
        assert_eq!(s.link_exts.len(), usize::from(vlan));
        let (src, dst, proto): (Vec<u8>, Vec<u8>, u8) = match &s.net {
            Some(NetSlice::Ipv4(ip)) => (
                ip.header().source().to_vec(),
                ip.header().destination().to_vec(),
                ip.header().protocol().0,
            ),
            Some(NetSlice::Ipv6(ip)) => (
                ip.header().source().to_vec(),
                ip.header().destination().to_vec(),
                ip.header().next_header().0,
            ),
            _ => unreachable!(),
        };
        let (l4_len, good, field_at) = match &s.transport {
            Some(TransportSlice::Tcp(t)) => (t.slice().len(), t.checksum(), 16),
            Some(TransportSlice::Udp(u)) => (u.slice().len(), u.checksum(), 6),
            _ => unreachable!(),
        };
        drop(s);
        let l4_off = f.len() - l4_len;
        let ps = pseudo_sum(&src, &dst, proto, l4_len);
        f[l4_off + field_at..l4_off + field_at + 2].copy_from_slice(&ps.to_be_bytes());
        (f, good)
    }

    #[test]
    fn completes_tcp_and_udp_over_ipv4_and_ipv6_with_and_without_vlan() {
        for v6 in [false, true] {
            for tcp in [false, true] {
                for vlan in [false, true] {
                    // Odd and even lengths, empty payloads.
                    for len in [0usize, 1, 17, 600, 1401] {
                        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                        let (f, good) = partial(v6, tcp, vlan, &payload);
                        let mut p = Packet::from_bytes(&f);
                        assert!(complete(&mut p), "v6 {v6} tcp {tcp} vlan {vlan} len {len}");
                        let s = SlicedPacket::from_ethernet(p.data()).unwrap();
                        let got = match &s.transport {
                            Some(TransportSlice::Tcp(t)) => t.checksum(),
                            Some(TransportSlice::Udp(u)) => u.checksum(),
                            _ => unreachable!(),
                        };
                        assert_eq!(got, good, "v6 {v6} tcp {tcp} vlan {vlan} len {len}");
                        // Nothing else changed.
                        let n = p.data().len();
                        assert_eq!(n, f.len());
                        let diff = (0..n).filter(|&i| p.data()[i] != f[i]).count();
                        assert!(diff <= 2);
                    }
                }
            }
        }
    }

    #[test]
    fn a_zero_udp_checksum_is_written_as_ffff() {
        // Find a payload whose UDP checksum comes out as 0xffff (sum 0):
        // the one's complement of 0, which UDP must not send as 0.
        let base = partial(false, false, false, &[0, 0]).1;
        // Adding `base` to the payload words moves the checksum to !0 == 0 or
        // 0xffff; etherparse writes 0xffff for such a segment.
        let payload = base.to_be_bytes();
        let (f, good) = partial(false, false, false, &payload);
        assert_eq!(good, 0xffff);
        let mut p = Packet::from_bytes(&f);
        assert!(complete(&mut p));
        let l4 = 14 + 20;
        assert_eq!(p.data()[l4 + 6..l4 + 8], [0xff, 0xff]);
    }

    #[test]
    fn other_frames_are_left_alone() {
        // ICMP, a frame cut short, and not IP at all.
        let icmp = Frame::echo(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1, 2)
            .macs([2; 6], [4; 6])
            .payload(b"ping")
            .build();
        let (tcp, _) = partial(false, true, false, &[9; 100]);
        let cut = &tcp[..tcp.len() - 10];
        let arp = [0u8; 60];
        for f in [&icmp[..], cut, &arp[..], &[0u8; 10][..]] {
            let mut p = Packet::from_bytes(f);
            assert!(!complete(&mut p));
            assert_eq!(p.data(), f);
        }
    }
}
