//! Test helpers for Classify: frames built with testkit::frame (an
//! independent builder), and the meaning of a match written directly over etherparse's
//! own parse, for differential tests of the compiled matcher.

use std::net::IpAddr;

use super::rule::{Frag, Match, Proto, Vlan, L3};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use testkit::frame::{Frame, Ip, ARP_REQUEST};

/// The network layer of a test frame.
#[derive(Debug, Clone, Copy)]
pub enum Net {
    /// IPv4 from, to.
    V4([u8; 4], [u8; 4]),
    /// IPv6 from, to.
    V6([u8; 16], [u8; 16]),
    /// An ARP request.
    Arp,
    /// Some other Ethernet type with a zero payload.
    Raw(u16),
}

/// The transport layer of a test frame.
#[derive(Debug, Clone, Copy)]
pub enum Tp {
    /// None (ARP, raw).
    None,
    /// TCP ports and flags byte (FIN = 0x01 ... CWR = 0x80).
    Tcp(u16, u16, u8),
    /// UDP ports.
    Udp(u16, u16),
    /// ICMP type.
    Icmp4(u8),
    /// ICMPv6 type.
    Icmp6(u8),
    /// Another IP protocol with a small payload.
    Proto(u8),
}

/// A test frame: VLAN ids (outer first, at most 2), network and transport.
#[derive(Debug, Clone)]
pub struct Spec {
    pub vlan: Vec<u16>,
    pub net: Net,
    pub tp: Tp,
}

const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const PAYLOAD: [u8; 8] = *b"payload!";

/// The builder of the frame `s` describes (to add fields before building).
pub fn kit(s: &Spec) -> Frame {
    let ip = match s.net {
        Net::V4(a, b) => Ip::v4(a, b),
        Net::V6(a, b) => Ip::v6(a, b),
        Net::Arp => {
            let (sender, target) = ((SRC_MAC, [10, 0, 0, 1]), ([0; 6], [10, 0, 0, 2]));
            let f = Frame::arp(ARP_REQUEST, sender, target).macs(SRC_MAC, DST_MAC);
            return f.vlans(&s.vlan);
        }
        Net::Raw(t) => return Frame::ether(t).vlans(&s.vlan).payload(&[0; 46]),
    };
    let f = match s.tp {
        Tp::Tcp(sp, dp, flags) => Frame::tcp(ip, sp, dp, flags).seq(1, 7, 1000).urgent(1),
        Tp::Udp(sp, dp) => Frame::udp(ip, sp, dp),
        Tp::Icmp4(t) | Tp::Icmp6(t) => Frame::icmp(ip, t),
        Tp::Proto(p) => Frame::raw(ip, p),
        Tp::None => return Frame::raw(ip, 253).vlans(&s.vlan),
    };
    f.vlans(&s.vlan).payload(&PAYLOAD)
}

/// Builds the frame `s` describes.
pub fn frame(s: &Spec) -> Vec<u8> {
    kit(s).build()
}

/// What etherparse (an independent parser) sees in a frame.
#[derive(Debug)]
pub struct Facts {
    ethertype: u16,
    vlan: Option<u16>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
    tcp_flags: Option<u8>,
    icmp_type: Option<u8>,
    /// An IP fragment: (first, later).
    frag: (bool, bool),
}

pub fn facts(f: &[u8]) -> Facts {
    let sp = SlicedPacket::from_ethernet(f).expect("etherparse slices the test frame");
    if let Some(NetSlice::Ipv4(s)) = &sp.net {
        let h = s.header();
        if h.is_fragmenting_payload() {
            let first = h.fragments_offset().value() == 0;
            // etherparse reads no transport header in any fragment; a first
            // fragment carries the datagram's, so read it as a whole datagram.
            let l3 = 14 + 4 * sp.vlan_ids().len();
            // (offset and MF cleared; the parsers here do not check the
            // header checksum).
            let mut whole = f.to_vec();
            whole[l3 + 6..l3 + 8].fill(0);
            let mut x = facts(&whole);
            if !first {
                (x.ports, x.tcp_flags, x.icmp_type) = (None, None, None);
            }
            x.frag = (first, !first);
            return x;
        }
    }
    let mut x = Facts {
        ethertype: 0,
        vlan: sp.vlan_ids().first().map(|v| v.value()),
        src: None,
        dst: None,
        proto: None,
        ports: None,
        tcp_flags: None,
        icmp_type: None,
        frag: (false, false),
    };
    match &sp.net {
        Some(NetSlice::Ipv4(s)) => {
            x.ethertype = 0x0800;
            x.src = Some(s.header().source_addr().into());
            x.dst = Some(s.header().destination_addr().into());
            x.proto = Some(s.payload().ip_number.0);
        }
        Some(NetSlice::Ipv6(s)) => {
            x.ethertype = 0x86dd;
            x.src = Some(s.header().source_addr().into());
            x.dst = Some(s.header().destination_addr().into());
            x.proto = Some(s.payload().ip_number.0);
        }
        Some(NetSlice::Arp(_)) => x.ethertype = 0x0806,
        None => x.ethertype = sp.payload_ether_type().expect("an ether type").0,
    }
    match &sp.transport {
        Some(TransportSlice::Tcp(t)) => {
            x.ports = Some((t.source_port(), t.destination_port()));
            let bits = [
                t.fin(),
                t.syn(),
                t.rst(),
                t.psh(),
                t.ack(),
                t.urg(),
                t.ece(),
                t.cwr(),
            ];
            x.tcp_flags = Some(
                bits.iter()
                    .enumerate()
                    .fold(0, |a, (i, &b)| a | ((b as u8) << i)),
            );
        }
        Some(TransportSlice::Udp(u)) => x.ports = Some((u.source_port(), u.destination_port())),
        Some(TransportSlice::Icmpv4(i)) => x.icmp_type = Some(i.type_u8()),
        Some(TransportSlice::Icmpv6(i)) => x.icmp_type = Some(i.type_u8()),
        _ => {}
    }
    x
}

fn in_prefix(a: Option<IpAddr>, p: Option<(IpAddr, u8)>) -> bool {
    match (a, p) {
        (_, None) => true,
        (Some(a), Some((net, len))) => {
            a.is_ipv4() == net.is_ipv4() && crate::element::mask_addr(a, len) == net
        }
        (None, Some(_)) => false,
    }
}

fn in_ports(p: Option<u16>, r: Option<(u16, u16)>) -> bool {
    match (p, r) {
        (_, None) => true,
        (Some(p), Some((lo, hi))) => (lo..=hi).contains(&p),
        (None, Some(_)) => false,
    }
}

/// The meaning of a match, written directly over etherparse's view.
pub fn reference(m: &Match, x: &Facts) -> bool {
    let l3 = match m.l3 {
        L3::Any => true,
        L3::Ip => x.src.is_some(),
        L3::Ipv4 => x.ethertype == 0x0800,
        L3::Ipv6 => x.ethertype == 0x86dd,
        L3::Ether(t) => x.ethertype == t,
    };
    let vlan = match m.vlan {
        Vlan::Any => true,
        Vlan::Tagged => x.vlan.is_some(),
        Vlan::Untagged => x.vlan.is_none(),
        Vlan::Id(id) => x.vlan == Some(id),
    };
    let proto = match m.proto {
        Proto::Any => true,
        Proto::TcpOrUdp => x.ports.is_some(),
        Proto::Is(p) => x.proto == Some(p),
    };
    let ports = (m.src_port.is_none() && m.dst_port.is_none()) || x.ports.is_some();
    let flags = m.tcp_flags.0 == 0
        || x.tcp_flags
            .is_some_and(|f| f & m.tcp_flags.0 == m.tcp_flags.1);
    let icmp = m.icmp_type.is_none() || x.icmp_type == m.icmp_type;
    let frag = match m.frag {
        Frag::Any => true,
        Frag::Fragment => x.frag.0 || x.frag.1,
        Frag::First => x.frag.0,
    };
    l3 && vlan
        && frag
        && proto
        && ports
        && flags
        && icmp
        && in_prefix(x.src, m.src)
        && in_prefix(x.dst, m.dst)
        && in_ports(x.ports.map(|p| p.0), m.src_port)
        && in_ports(x.ports.map(|p| p.1), m.dst_port)
}
