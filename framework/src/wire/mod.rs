//! Wire formats: turns frame bytes into meaning, keeps no state.
//!
//! [`Headers`] is the one parse of a frame that every element shares (cached in
//! the packet's slot); `field` (private: offsets are known only here) names
//! the byte ranges of each header, and [`checksum`] keeps IPv4/TCP/UDP
//! checksums right after a rewrite.
//!
//! Typed views read and write one header's fields over a buffer, without a
//! copy, in the manner of smoltcp: `Ipv4Packet::new_checked(&frame[l3..])?.src_addr()`.
//! `new_checked` checks the buffer holds the header's fixed part; after that
//! no accessor can panic. Getters need `AsRef<[u8]>`, setters `AsMut<[u8]>`.
//! On the data path, `Ipv4Packet::at(frame, off)` views the fixed header at an
//! offset with one range check (docs/benchmarks.md: same instructions as the
//! offsets it replaced).

pub mod checksum;
mod ethernet;
mod field;
mod headers;
mod ip;
mod transport;
mod view;

pub use ethernet::{insert_vlan_tag, remove_vlan_tag, FIRST_TAG};
pub use ethernet::{EthernetFrame, VlanTag};
pub use headers::{ipv6_pseudo_uses_dst, is_ipv6_ext};
pub use headers::{FragKind, Fragment, Headers, L3Kind, ParseStatus};
pub use ip::{ipv4_copied_options, Ipv4Packet, Ipv6FragHeader, Ipv6Packet};
pub use transport::{napt, tcp_flags, IcmpPacket, TcpPacket, UdpPacket};
pub use view::Truncated;

/// Ethernet type of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethernet type of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Ethernet type of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Ethernet type of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Ethernet type of an 802.1ad (QinQ) service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// Length of an Ethernet header without tags.
pub const ETH_HLEN: usize = 14;
/// Length of one 802.1Q tag.
pub const VLAN_HLEN: usize = 4;

/// Reads a big-endian u16 at `at`; the caller has checked the length.
#[inline]
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Writes a big-endian u16 at `at`; the caller has checked the length.
#[inline]
pub fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
