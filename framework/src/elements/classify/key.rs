//! The flow key: the fields of one packet that rules test, at fixed
//! positions, extracted once per packet from its cached parse.

use std::fmt;

use crate::wire::{Headers, L3Kind, ParseStatus};
use crate::wire::{IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use crate::wire::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// Bytes in a flow key (a power of two, so positions index it without a bounds check).
pub(super) const KEY_LEN: usize = 64;

/// Positions of the fields in a flow key.
pub(super) mod at {
    /// Ethernet type after VLAN tags (2 bytes, big endian).
    pub const ETHERTYPE: usize = 0;
    /// Class bits ([`super::class`]).
    pub const CLASS: usize = 2;
    /// Outer VLAN id (2 bytes, big endian, 12 bits used).
    pub const VLAN: usize = 3;
    /// IP protocol.
    pub const PROTO: usize = 5;
    /// TCP flags byte.
    pub const TCP_FLAGS: usize = 6;
    /// ICMP or ICMPv6 type.
    pub const ICMP_TYPE: usize = 7;
    /// TCP/UDP source port (2 bytes, big endian).
    pub const SRC_PORT: usize = 8;
    /// TCP/UDP destination port (2 bytes, big endian).
    pub const DST_PORT: usize = 10;
    /// Source address: IPv4 in the first 4 bytes, IPv6 in all 16.
    pub const SRC_ADDR: usize = 16;
    /// Destination address, laid out like the source.
    pub const DST_ADDR: usize = 32;
}

/// Bits of the class byte of a flow key.
pub(super) mod class {
    /// At least one VLAN tag.
    pub const TAGGED: u8 = 0x01;
    /// An IPv4 or IPv6 header parsed.
    pub const IP: u8 = 0x02;
    /// The IP header is IPv6 (with `IP`).
    pub const V6: u8 = 0x04;
    /// A complete TCP, UDP, ICMP or ICMPv6 header: the port, flag and type bytes are valid.
    pub const L4: u8 = 0x08;
    /// A complete TCP or UDP header: the port bytes are valid.
    pub const PORTS: u8 = 0x10;
    /// An IP fragment, first or not.
    pub const FRAG: u8 = 0x20;
    /// The first fragment of a datagram (with `FRAG`).
    pub const FIRST_FRAG: u8 = 0x40;
}

// `FragKind`'s discriminants are the class bits: the key takes them as they are.
const _: () = assert!(
    crate::wire::FragKind::First as u8 == class::FRAG | class::FIRST_FRAG
        && crate::wire::FragKind::Later as u8 == class::FRAG
        && crate::wire::FragKind::None as u8 == 0
);

/// The fields of one packet that rules test, extracted once per packet.
///
/// Built from a packet's cached [`Headers`] and its frame; fields a packet
/// lacks (ports of an ICMP packet, addresses of an ARP frame) are zero and
/// flagged absent, so a rule that needs them cannot match.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, align(64))]
pub struct FlowKey(pub(super) [u8; KEY_LEN]);

impl FlowKey {
    /// Extracts the key of `frame`, whose parse is `h`. Never panics: a field
    /// that does not lie inside `frame` is treated as absent. Meant for frames
    /// whose [`Headers::status`] is `Ok`; for others, only the layers that
    /// parsed are filled in.
    #[inline(always)]
    pub fn extract(h: &Headers, frame: &[u8]) -> FlowKey {
        FlowKey::extract_for(h, frame, Needs::ALL)
    }

    /// [`FlowKey::extract`], filling in only what `needs` asks for: the
    /// address bytes, the transport bytes (protocol, ports, TCP flags, ICMP
    /// type, and the class bits `L4` and `PORTS`). The rest of the class
    /// byte, the EtherType and the VLAN are always there. A rule set asks
    /// only for what its rules test ([`RuleSet::needs`](super::RuleSet::needs)),
    /// so "IPv4 or not" costs no address or port copies.
    #[inline(always)]
    pub fn extract_for(h: &Headers, frame: &[u8], needs: Needs) -> FlowKey {
        let mut key = FlowKey([0u8; KEY_LEN]);
        key.fill(h, frame, needs);
        key
    }

    /// Writes the key of `frame` into `self`, which must be all zeros (a
    /// caller's key on its own stack: no 64-byte copy on the way back).
    #[inline(always)]
    pub(super) fn fill(&mut self, h: &Headers, frame: &[u8], needs: Needs) {
        let k = &mut self.0;
        let mut cls = 0u8;
        k[at::ETHERTYPE..at::ETHERTYPE + 2].copy_from_slice(&h.ethertype.to_be_bytes());
        if h.vlan_tags > 0 {
            cls |= class::TAGGED;
            k[at::VLAN..at::VLAN + 2].copy_from_slice(&h.vlan_id.to_be_bytes());
        }
        let l3 = h.l3_off as usize;
        let ip = matches!(h.status, ParseStatus::Ok | ParseStatus::L4Truncated);
        // Fragment bits (zero for whole datagrams and non-IP frames).
        cls |= h.frag as u8;
        let l4 = |k: &mut [u8; KEY_LEN]| {
            if needs.l4 {
                extract_l4(k, h, frame)
            } else {
                0
            }
        };
        match h.l3 {
            L3Kind::Ipv4 if ip => {
                if let Some(p) = Ipv4Packet::at(frame, l3) {
                    if needs.addrs {
                        let a = p.addrs_bytes();
                        k[at::SRC_ADDR..at::SRC_ADDR + 4].copy_from_slice(&a[..4]);
                        k[at::DST_ADDR..at::DST_ADDR + 4].copy_from_slice(&a[4..]);
                    }
                    cls |= class::IP | l4(k);
                }
            }
            L3Kind::Ipv6 if ip => {
                if let Some(p) = Ipv6Packet::at(frame, l3) {
                    if needs.addrs {
                        k[at::SRC_ADDR..at::DST_ADDR + 16].copy_from_slice(p.addrs_bytes());
                    }
                    cls |= class::IP | class::V6 | l4(k);
                }
            }
            _ => {}
        }
        k[at::CLASS] = cls;
    }

    /// The big-endian 16-bit field at `pos`.
    #[inline]
    pub(super) fn port(&self, pos: usize) -> u16 {
        u16::from_be_bytes([self.0[pos], self.0[pos + 1]])
    }
}

/// The parts of a [`FlowKey`] that a rule set tests (see [`FlowKey::extract_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Source and destination addresses.
    pub addrs: bool,
    /// Protocol, ports, TCP flags, ICMP type, class bits `L4` and `PORTS`.
    pub l4: bool,
}

impl Needs {
    /// Everything: the key [`FlowKey::extract`] builds.
    pub const ALL: Needs = Needs {
        addrs: true,
        l4: true,
    };
}

/// Fills in the protocol and transport fields of an IP packet's key;
/// returns the class bits they earn.
#[inline]
fn extract_l4(k: &mut [u8; KEY_LEN], h: &Headers, frame: &[u8]) -> u8 {
    k[at::PROTO] = h.l4_proto;
    if !h.has_l4 {
        return 0;
    }
    let l4 = h.l4_off as usize;
    match h.l4_proto {
        IPPROTO_TCP => match TcpPacket::at(frame, l4) {
            Some(t) => {
                k[at::SRC_PORT..at::SRC_PORT + 4].copy_from_slice(&t.ports_bytes());
                k[at::TCP_FLAGS] = t.flags();
                class::L4 | class::PORTS
            }
            None => 0,
        },
        IPPROTO_UDP => match UdpPacket::at(frame, l4) {
            Some(u) => {
                k[at::SRC_PORT..at::SRC_PORT + 4].copy_from_slice(&u.ports_bytes());
                class::L4 | class::PORTS
            }
            None => 0,
        },
        IPPROTO_ICMP | IPPROTO_ICMPV6 => match IcmpPacket::at(frame, l4) {
            Some(i) => {
                k[at::ICMP_TYPE] = i.msg_type();
                class::L4
            }
            None => 0,
        },
        _ => 0,
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowKey")
            .field(
                "ethertype",
                &format_args!("{:#06x}", self.port(at::ETHERTYPE)),
            )
            .field("class", &format_args!("{:#04x}", self.0[at::CLASS]))
            .field("vlan", &self.port(at::VLAN))
            .field("proto", &self.0[at::PROTO])
            .field("ports", &(self.port(at::SRC_PORT), self.port(at::DST_PORT)))
            .field("tcp_flags", &format_args!("{:#04x}", self.0[at::TCP_FLAGS]))
            .field("icmp_type", &self.0[at::ICMP_TYPE])
            .field("src", &&self.0[at::SRC_ADDR..at::SRC_ADDR + 16])
            .field("dst", &&self.0[at::DST_ADDR..at::DST_ADDR + 16])
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{frame, Net, Spec, Tp};
    use super::*;
    use etherparse::{SlicedPacket, TransportSlice};

    #[test]
    fn fields_land_at_their_positions() {
        let f = frame(&Spec {
            vlan: vec![300],
            net: Net::V4([10, 1, 2, 3], [192, 168, 4, 5]),
            tp: Tp::Tcp(40000, 443, 0x12),
        });
        let k = FlowKey::extract(&Headers::parse(&f), &f);
        let sp = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Tcp(t)) = &sp.transport else {
            panic!("etherparse sees TCP")
        };
        assert_eq!(k.port(at::ETHERTYPE), 0x0800);
        assert_eq!(k.port(at::VLAN), sp.vlan_ids()[0].value());
        assert_eq!(
            k.0[at::CLASS],
            class::TAGGED | class::IP | class::L4 | class::PORTS
        );
        assert_eq!(k.0[at::PROTO], 6);
        assert_eq!(k.0[at::TCP_FLAGS], 0x12);
        assert_eq!(k.port(at::SRC_PORT), t.source_port());
        assert_eq!(k.port(at::DST_PORT), t.destination_port());
        assert_eq!(
            k.0[at::SRC_ADDR..at::SRC_ADDR + 16],
            [10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(k.0[at::DST_ADDR..at::DST_ADDR + 4], [192, 168, 4, 5]);

        let f = frame(&Spec {
            vlan: vec![],
            net: Net::V6([1; 16], [2; 16]),
            tp: Tp::Icmp6(135),
        });
        let k = FlowKey::extract(&Headers::parse(&f), &f);
        assert_eq!(k.0[at::CLASS], class::IP | class::V6 | class::L4);
        assert_eq!((k.0[at::PROTO], k.0[at::ICMP_TYPE]), (58, 135));
        assert_eq!(k.port(at::SRC_PORT), 0, "ICMP has no ports");
        assert_eq!(k.0[at::SRC_ADDR..at::DST_ADDR], [1; 16]);
        assert_eq!(k.0[at::DST_ADDR..at::DST_ADDR + 16], [2; 16]);
    }

    #[test]
    fn truncated_frames_extract_without_panic_and_only_what_parsed() {
        let f = frame(&Spec {
            vlan: vec![7],
            net: Net::V6([1; 16], [2; 16]),
            tp: Tp::Udp(1, 2),
        });
        for n in 0..f.len() {
            let h = Headers::parse(&f[..n]);
            let k = FlowKey::extract(&h, &f[..n]);
            if h.status != ParseStatus::L4Truncated {
                assert_eq!(k.0[at::CLASS] & class::IP, 0, "cut at {n}");
            }
            assert_eq!(k.0[at::CLASS] & class::PORTS, 0, "cut at {n}");
        }
        // A parse that claims more than the frame holds reads nothing past it.
        let mut h = Headers::parse(&f);
        h.l3_off = 2000;
        h.l4_off = 2000;
        let k = FlowKey::extract(&h, &f);
        assert_eq!(k.0[at::CLASS] & (class::IP | class::PORTS), 0);
    }
}
