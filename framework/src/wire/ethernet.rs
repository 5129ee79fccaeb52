//! Views over the link layer: the Ethernet II header and an 802.1Q tag.

use super::field::{eth, vlan};
use super::view::{array, get16, set16, view};

view!(
    /// An Ethernet II header at the start of a buffer: `EthernetFrame::new_checked(frame)?.ethertype()`.
    EthernetFrame,
    eth::ETHERTYPE.end
);

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        array(self.fixed(), eth::DST)
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        array(self.fixed(), eth::SRC)
    }

    /// Ethernet type, or the TPID of a first VLAN tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get16(self.fixed(), eth::ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, mac: [u8; 6]) {
        self.fixed_mut()[eth::DST].copy_from_slice(&mac);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, mac: [u8; 6]) {
        self.fixed_mut()[eth::SRC].copy_from_slice(&mac);
    }

    /// Sets the Ethernet type.
    #[inline]
    pub fn set_ethertype(&mut self, ty: u16) {
        set16(self.fixed_mut(), eth::ETHERTYPE, ty);
    }
}

view!(
    /// An 802.1Q (or 802.1ad) tag, from its TPID: the tag `i` of a frame
    /// starts at `ETH_HLEN - 2 + i * VLAN_HLEN`.
    VlanTag,
    vlan::TCI.end
);

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the tag protocol identifier.
    #[inline]
    pub fn set_tpid(&mut self, tpid: u16) {
        set16(self.fixed_mut(), vlan::TPID, tpid);
    }

    /// Sets the tag control information (priority, drop eligible, VLAN id).
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        set16(self.fixed_mut(), vlan::TCI, tci);
    }
}

/// Where the first VLAN tag of a frame starts (its TPID in the place of the
/// Ethernet type); tag `i` starts `i * VLAN_HLEN` later.
pub const FIRST_TAG: usize = eth::ETHERTYPE.start;

/// Inserts a VLAN tag (`tpid`, `tci`) after the MAC addresses of the frame
/// that starts `VLAN_HLEN` bytes into `frame`: the addresses move to the
/// front of `frame` and the tag goes where they ended. `frame` holds at
/// least `VLAN_HLEN + 12` bytes (the caller made the room, with headroom).
#[inline]
pub fn insert_vlan_tag(frame: &mut [u8], tpid: u16, tci: u16) {
    const TAG: usize = eth::ETHERTYPE.start;
    frame.copy_within(super::VLAN_HLEN..super::VLAN_HLEN + TAG, 0);
    let mut tag = VlanTag::new_unchecked(&mut frame[TAG..]);
    tag.set_tpid(tpid);
    tag.set_tci(tci);
}

/// Moves the MAC addresses of `frame` over its first VLAN tag: the frame
/// without the tag then starts `VLAN_HLEN` bytes in (the caller drops
/// those). `frame` holds at least `12 + VLAN_HLEN` bytes.
#[inline]
pub fn remove_vlan_tag(frame: &mut [u8]) {
    frame.copy_within(eth::DST.start..eth::SRC.end, super::VLAN_HLEN);
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Tag protocol identifier (0x8100 or 0x88a8).
    #[inline]
    pub fn tpid(&self) -> u16 {
        get16(self.fixed(), vlan::TPID)
    }

    /// Tag control information: priority, drop eligible, VLAN id.
    #[inline]
    pub fn tci(&self) -> u16 {
        get16(self.fixed(), vlan::TCI)
    }

    /// VLAN id (12 bits).
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn priority(&self) -> u8 {
        (self.tci() >> 13) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Truncated, ETHERTYPE_IPV4, ETHERTYPE_VLAN};
    use etherparse::{Ethernet2Slice, SingleVlanSlice};

    /// The first 18 bytes of a real tagged frame: broadcast ARP on VLAN 100, priority 5.
    const TAGGED_ARP: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x06,
    ];

    #[test]
    fn ethernet_fields_agree_with_etherparse() {
        let e = EthernetFrame::new_checked(&TAGGED_ARP[..]).unwrap();
        let p = Ethernet2Slice::from_slice_without_fcs(&TAGGED_ARP).unwrap();
        assert_eq!(e.dst_addr(), p.destination());
        assert_eq!(e.src_addr(), p.source());
        assert_eq!(e.ethertype(), p.ether_type().0);
        assert_eq!(e.ethertype(), ETHERTYPE_VLAN);
    }

    #[test]
    fn vlan_fields_agree_with_etherparse() {
        let t = VlanTag::new_checked(&TAGGED_ARP[12..]).unwrap();
        let p = SingleVlanSlice::from_slice(&TAGGED_ARP[14..]).unwrap();
        assert_eq!(t.tpid(), 0x8100);
        assert_eq!(t.vlan_id(), p.vlan_identifier().value());
        assert_eq!(t.priority(), p.priority_code_point().value());
        assert_eq!(t.vlan_id(), 100);
    }

    #[test]
    fn setters_write_the_fields() {
        let mut f = TAGGED_ARP;
        let mut e = EthernetFrame::new_checked(&mut f[..]).unwrap();
        let (s, d) = (e.src_addr(), e.dst_addr());
        e.set_src_addr(d);
        e.set_dst_addr(s);
        e.set_ethertype(ETHERTYPE_IPV4);
        assert_eq!(&f[..6], &TAGGED_ARP[6..12]);
        assert_eq!(&f[6..12], &TAGGED_ARP[..6]);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
    }

    #[test]
    fn short_buffers_are_refused() {
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED_ARP[..13]),
            Err(Truncated)
        );
        assert_eq!(VlanTag::new_checked(&TAGGED_ARP[15..]), Err(Truncated));
        assert!(EthernetFrame::new_checked(&TAGGED_ARP[..14]).is_ok());
    }
}
