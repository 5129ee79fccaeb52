//! The Ethernet header and VLAN tags, and the bodies of frames that are
//! not IP (ARP, any EtherType), written by hand.

use super::{Frame, Ip, L2};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;

/// The Ethernet header and tags of `f`, up to and with the EtherType of
/// what follows. Two tags are 802.1ad (0x88a8) then 802.1Q (0x8100).
pub(super) fn ethernet(f: &Frame) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&f.dst_mac);
    out.extend_from_slice(&f.src_mac);
    let tpids: &[u16] = match f.vlans.len() {
        0 => &[],
        1 => &[0x8100],
        2 => &[0x88a8, 0x8100],
        _ => panic!("at most two VLAN tags"),
    };
    for (&tpid, &(vid, pcp)) in tpids.iter().zip(&f.vlans) {
        assert!(vid < 4096, "VLAN id below 4096");
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&(u16::from(pcp) << 13 | vid).to_be_bytes());
    }
    let ethertype = match (f.l2, f.ip) {
        (Some(L2::Arp { .. }), _) => ETHERTYPE_ARP,
        (Some(L2::Ether(t)), _) => t,
        (None, Ip::V4(..)) => ETHERTYPE_IPV4,
        (None, Ip::V6(..)) => ETHERTYPE_IPV6,
    };
    out.extend_from_slice(&ethertype.to_be_bytes());
    out
}

/// `frame` with a VLAN tag (`tpid`, 0x8100 for 802.1Q or 0x88a8 for
/// 802.1ad, and `tci`: priority << 13 | id) put in after the MAC addresses,
/// outside any tag already there.
pub fn tag(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut v = frame.to_vec();
    let [a, b] = tpid.to_be_bytes();
    let [c, d] = tci.to_be_bytes();
    v.splice(12..12, [a, b, c, d]);
    v
}

/// A frame for tests that send on a live link and must tell their own
/// frames from others: `len` bytes of `ethertype` (pick a local
/// experimental one, 0x88b5 or 0x88b6), MAC addresses zero, then `token`
/// (whose), `seq` (which, big-endian), then bytes that vary with `seq`.
pub fn marked(ethertype: u16, token: &[u8], seq: u32, len: usize) -> Vec<u8> {
    let mut body = token.to_vec();
    body.extend_from_slice(&seq.to_be_bytes());
    let mut v = Frame::ether(ethertype)
        .macs([0; 6], [0; 6])
        .payload(&body)
        .build();
    assert!(len >= v.len(), "room for the token and sequence number");
    let n = v.len();
    v.extend((n..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8));
    v
}

/// Appends a non-IP body: an ARP packet (then `payload`), or `payload`.
pub(super) fn body(out: &mut Vec<u8>, l2: L2, payload: &[u8]) {
    if let L2::Arp { op, sender, target } = l2 {
        // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses.
        out.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
        out.extend_from_slice(&op.to_be_bytes());
        for (mac, ip) in [sender, target] {
            out.extend_from_slice(&mac);
            out.extend_from_slice(&ip);
        }
    }
    out.extend_from_slice(payload);
}
