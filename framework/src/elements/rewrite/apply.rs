//! The per-packet work of `Rewrite` on its general path: check everything
//! that could drop the packet, then write. A packet is either rewritten
//! whole or dropped, never emitted half-done.

use super::plan::{Plan, VlanOp};
use super::{MALFORMED, NO_HEADROOM, TTL_EXPIRED};
use crate::element::DropReason;
use crate::packet::Packet;
use crate::wire::checksum::{apply_delta, delta, delta16, fold};
use crate::wire::{insert_vlan_tag, ipv6_pseudo_uses_dst, is_ipv6_ext, remove_vlan_tag};
use crate::wire::{EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use crate::wire::{FragKind, Headers, L3Kind, ParseStatus, VlanTag, FIRST_TAG};
use crate::wire::{ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETH_HLEN, VLAN_HLEN};
use crate::wire::{IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// What happened to a packet that goes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Done {
    /// At least one operation applied.
    pub changed: bool,
    /// `vlan_pop` or `vlan_set` met an untagged frame.
    pub untagged: bool,
}

/// The transport header whose checksum and ports a rewrite touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    /// None (other protocol, non-first fragment, ICMPv4).
    None,
    /// TCP: ports and a pseudo-header checksum.
    Tcp,
    /// UDP: ports and a pseudo-header checksum that may be absent (0).
    Udp,
    /// ICMPv6: a pseudo-header checksum, no ports.
    Icmp6,
}

/// The IP-level work decided for one packet, all drop checks passed.
#[derive(Debug, Clone, Copy)]
struct IpJob {
    /// IPv6 rather than IPv4.
    v6: bool,
    /// Offset of the IP header.
    l3: usize,
    /// Offset of the transport header (meaningful unless `l4` is `None`).
    l4_off: usize,
    /// Transport header to update.
    l4: L4,
    /// The pseudo-header's destination is the IP destination field (false
    /// when an IPv6 Routing header still has segments left).
    pseudo_dst: bool,
}

/// Rewrites `pkt` per `plan`, or says why it must be dropped.
///
/// Order: drop checks (frame length, headroom, VLAN tag, IP/L4 headers,
/// TTL), then IP and transport fields, then the VLAN tag, then MACs.
pub(super) fn apply(plan: &Plan, pkt: &mut Packet) -> Result<Done, DropReason> {
    if pkt.len() < ETH_HLEN {
        return Err(MALFORMED);
    }
    let mut done = Done {
        changed: plan.eth_dst.is_some() || plan.eth_src.is_some(),
        untagged: false,
    };

    // Checks.
    let tagged = matches!(
        EthernetFrame::new_unchecked(pkt.data()).ethertype(),
        ETHERTYPE_VLAN | ETHERTYPE_QINQ
    );
    match plan.vlan {
        VlanOp::Keep => {}
        VlanOp::Push { .. } if pkt.headroom() < VLAN_HLEN => return Err(NO_HEADROOM),
        VlanOp::Push { .. } => done.changed = true,
        VlanOp::Pop | VlanOp::Set { .. } if !tagged => done.untagged = true,
        VlanOp::Pop | VlanOp::Set { .. } if pkt.len() < ETH_HLEN + VLAN_HLEN => {
            return Err(MALFORMED)
        }
        VlanOp::Pop | VlanOp::Set { .. } => done.changed = true,
    }
    let job = if plan.any_ip() {
        plan_ip(plan, pkt)?
    } else {
        None
    };

    // Writes.
    if let Some(job) = job {
        let frame = pkt.data_mut();
        if job.v6 {
            write_ipv6(plan, frame, &job);
        } else {
            write_ipv4(plan, frame, &job);
        }
        done.changed = true;
    }
    match plan.vlan {
        VlanOp::Keep => {}
        VlanOp::Push { tci } => push_tag(pkt, tci),
        VlanOp::Pop if tagged => {
            remove_vlan_tag(pkt.data_mut());
            // Cannot fail: the frame holds a whole tag (checked above).
            let _ = pkt.pull_front(VLAN_HLEN);
        }
        VlanOp::Set { vid, pcp } if tagged => {
            let mut tag = VlanTag::new_unchecked(&mut pkt.data_mut()[FIRST_TAG..]);
            let old = tag.tci();
            let prio = match pcp {
                Some(pcp) => (pcp as u16) << 13 | (old & 0x1000),
                None => old & 0xf000,
            };
            tag.set_tci(prio | vid);
        }
        VlanOp::Pop | VlanOp::Set { .. } => {}
    }
    let mut eth = EthernetFrame::new_unchecked(pkt.data_mut());
    if let Some(mac) = plan.eth_dst {
        eth.set_dst_addr(mac);
    }
    if let Some(mac) = plan.eth_src {
        eth.set_src_addr(mac);
    }
    Ok(done)
}

/// Pushes an 802.1Q tag with `tci` in front of the frame's ethertype; the
/// caller has checked the headroom.
fn push_tag(pkt: &mut Packet, tci: u16) {
    let Ok(frame) = pkt.push_front(VLAN_HLEN) else {
        return;
    };
    insert_vlan_tag(frame, ETHERTYPE_VLAN, tci);
}

/// Decides the IP-level work for `pkt`: `None` when nothing applies (not IP,
/// the other family, nothing to change), an error when the packet must be dropped.
fn plan_ip(plan: &Plan, pkt: &mut Packet) -> Result<Option<IpJob>, DropReason> {
    let h = pkt.headers();
    let (v6, addrs) = match h.l3 {
        L3Kind::Other if h.status == ParseStatus::L2Truncated => return Err(MALFORMED),
        L3Kind::Other => return Ok(None),
        L3Kind::Ipv4 if !plan.v4_active() => return Ok(None),
        L3Kind::Ipv6 if !plan.v6_active() => return Ok(None),
        L3Kind::Ipv4 => (false, plan.v4.any()),
        L3Kind::Ipv6 => (true, plan.v6.any()),
    };
    if h.status == ParseStatus::L3Malformed {
        return Err(MALFORMED);
    }
    let l3 = h.l3_off as usize;
    let ip = &pkt.data()[l3..];
    if plan.dec_ttl {
        let ttl = if v6 {
            Ipv6Packet::new_unchecked(ip).hop_limit()
        } else {
            Ipv4Packet::new_unchecked(ip).ttl()
        };
        if ttl <= 1 {
            return Err(TTL_EXPIRED);
        }
    }

    let l4 = transport(plan, &h, v6, addrs)?;
    let mut pseudo_dst = true;
    if v6
        && plan.v6.dst.is_some()
        && l4 != L4::None
        && is_ipv6_ext(Ipv6Packet::new_unchecked(ip).next_header())
    {
        pseudo_dst = ipv6_pseudo_uses_dst(ip).ok_or(MALFORMED)?;
    }
    let ip_level = plan.dscp.is_some() || plan.dec_ttl || addrs;
    let ports = plan.ports() && matches!(l4, L4::Tcp | L4::Udp);
    if !ip_level && !ports {
        return Ok(None);
    }
    Ok(Some(IpJob {
        v6,
        l3,
        l4_off: h.l4_off as usize,
        l4,
        pseudo_dst,
    }))
}

/// The transport header the rewrite must update, or `MALFORMED` when one is
/// needed but truncated (or cannot be found behind IPv6 extension headers).
fn transport(plan: &Plan, h: &Headers, v6: bool, addrs: bool) -> Result<L4, DropReason> {
    let (l4, pseudo) = match h.l4_proto {
        IPPROTO_TCP => (L4::Tcp, true),
        IPPROTO_UDP => (L4::Udp, true),
        IPPROTO_ICMPV6 if v6 => (L4::Icmp6, true),
        p if v6 && addrs && is_ipv6_ext(p) && h.frag != FragKind::Later => {
            // The parser gave up walking extension headers before finding
            // the transport header, whose checksum the addresses feed (a
            // non-first fragment has none: its protocol is the Fragment
            // header's next header).
            return Err(MALFORMED);
        }
        _ => (L4::None, false),
    };
    let needed = (addrs && pseudo) || (plan.ports() && matches!(l4, L4::Tcp | L4::Udp));
    if h.has_l4 {
        Ok(l4)
    } else if needed && h.status == ParseStatus::L4Truncated {
        Err(MALFORMED)
    } else {
        // A non-first fragment, or a protocol without a pseudo-header checksum.
        Ok(L4::None)
    }
}

/// Writes the IPv4 rewrites of `job` and fixes the header and transport checksums.
fn write_ipv4(plan: &Plan, frame: &mut [u8], job: &IpJob) {
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[job.l3..]);
    let mut hdr = 0; // difference of header-only words
    if plan.dec_ttl {
        let old = ip.ttl_proto_word();
        ip.set_ttl(ip.ttl() - 1);
        hdr = delta16(hdr, old, ip.ttl_proto_word());
    }
    if let Some(dscp) = plan.dscp {
        let old = ip.ver_tos_word();
        ip.set_tos(dscp << 2 | (ip.tos() & 0x03));
        hdr = delta16(hdr, old, ip.ver_tos_word());
    }
    let mut pseudo = 0; // difference of words the transport pseudo-header shares
    if let Some(a) = plan.v4.src {
        pseudo = delta(pseudo, &ip.src_addr().octets(), &a);
        ip.set_src_addr(a.into());
    }
    if let Some(a) = plan.v4.dst {
        pseudo = delta(pseudo, &ip.dst_addr().octets(), &a);
        ip.set_dst_addr(a.into());
    }
    let check = apply_delta(ip.checksum(), fold(hdr as u64 + pseudo as u64));
    ip.set_checksum(check);
    write_l4(plan, frame, job, pseudo, plan.v4.any());
}

/// Writes the IPv6 rewrites of `job` and fixes the transport checksum.
fn write_ipv6(plan: &Plan, frame: &mut [u8], job: &IpJob) {
    let mut ip = Ipv6Packet::new_unchecked(&mut frame[job.l3..]);
    if plan.dec_ttl {
        ip.set_hop_limit(ip.hop_limit() - 1);
    }
    if let Some(dscp) = plan.dscp {
        // DSCP (6 bits) | ECN (2), the ECN kept.
        ip.set_traffic_class(dscp << 2 | (ip.traffic_class() & 0x03));
    }
    let mut pseudo = 0;
    if let Some(a) = plan.v6.src {
        pseudo = delta(pseudo, &ip.src_addr().octets(), &a);
        ip.set_src_addr(a.into());
    }
    if let Some(a) = plan.v6.dst {
        if job.pseudo_dst {
            pseudo = delta(pseudo, &ip.dst_addr().octets(), &a);
        }
        ip.set_dst_addr(a.into());
    }
    let pseudo_changed = plan.v6.src.is_some() || (plan.v6.dst.is_some() && job.pseudo_dst);
    write_l4(plan, frame, job, pseudo, pseudo_changed);
}

/// Writes the port rewrites and folds `pseudo` (the pseudo-header difference,
/// meaningful when `pseudo_changed`) and the port changes into the transport checksum.
fn write_l4(plan: &Plan, frame: &mut [u8], job: &IpJob, pseudo: u32, pseudo_changed: bool) {
    if job.l4 == L4::None {
        return;
    }
    let l4 = &mut frame[job.l4_off..];
    let mut diff = pseudo;
    let mut changed = pseudo_changed;
    if matches!(job.l4, L4::Tcp | L4::Udp) {
        // TCP and UDP put their ports in the same place: the UDP view sets both.
        let mut ports = UdpPacket::new_unchecked(&mut *l4);
        if let Some(port) = plan.src_port {
            diff = delta16(diff, ports.src_port(), port);
            ports.set_src_port(port);
            changed = true;
        }
        if let Some(port) = plan.dst_port {
            diff = delta16(diff, ports.dst_port(), port);
            ports.set_dst_port(port);
            changed = true;
        }
    }
    if !changed {
        return;
    }
    match job.l4 {
        L4::Tcp => {
            let mut t = TcpPacket::new_unchecked(l4);
            t.set_checksum(apply_delta(t.checksum(), diff));
        }
        L4::Udp => {
            let mut u = UdpPacket::new_unchecked(l4);
            let new = match u.checksum() {
                // No checksum (IPv4, or an RFC 6935 tunnel over IPv6) stays none.
                0 => 0,
                // A computed 0 is sent as all ones (RFC 768).
                old => match apply_delta(old, diff) {
                    0 => 0xffff,
                    c => c,
                },
            };
            u.set_checksum(new);
        }
        L4::Icmp6 => {
            let mut i = IcmpPacket::new_unchecked(l4);
            i.set_checksum(apply_delta(i.checksum(), diff));
        }
        L4::None => {}
    }
}
