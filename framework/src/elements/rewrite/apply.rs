//! The per-packet work of `Rewrite` on its general path: check everything
//! that could drop the packet, then write. A packet is either rewritten
//! whole or dropped, never emitted half-done.

use super::plan::{Plan, VlanOp};
use super::{MALFORMED, NO_HEADROOM, TTL_EXPIRED};
use crate::element::DropReason;
use crate::packet::Packet;
use crate::wire::checksum::{apply_delta, delta, delta16, fold};
use crate::wire::field::{eth, ipv4, ipv6, tcp, udp, vlan};
use crate::wire::{be16, set_be16, FragKind, Headers, L3Kind, ParseStatus};
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

impl L4 {
    /// Offset of the checksum in the transport header.
    fn checksum_at(self) -> usize {
        match self {
            L4::Tcp => tcp::CHECKSUM.start,
            L4::Udp => udp::CHECKSUM.start,
            L4::Icmp6 | L4::None => 2,
        }
    }
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
        be16(pkt.data(), eth::ETHERTYPE.start),
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
            pkt.data_mut()
                .copy_within(eth::DST.start..eth::SRC.end, VLAN_HLEN);
            // Cannot fail: the frame holds a whole tag (checked above).
            let _ = pkt.pull_front(VLAN_HLEN);
        }
        VlanOp::Set { vid, pcp } if tagged => {
            let at = eth::ETHERTYPE.start + vlan::TCI.start;
            let frame = pkt.data_mut();
            let old = be16(frame, at);
            let prio = match pcp {
                Some(pcp) => (pcp as u16) << 13 | (old & 0x1000),
                None => old & 0xf000,
            };
            set_be16(frame, at, prio | vid);
        }
        VlanOp::Pop | VlanOp::Set { .. } => {}
    }
    let frame = pkt.data_mut();
    if let Some(mac) = plan.eth_dst {
        frame[eth::DST].copy_from_slice(&mac);
    }
    if let Some(mac) = plan.eth_src {
        frame[eth::SRC].copy_from_slice(&mac);
    }
    Ok(done)
}

/// Pushes an 802.1Q tag with `tci` in front of the frame's ethertype; the
/// caller has checked the headroom.
fn push_tag(pkt: &mut Packet, tci: u16) {
    let Ok(frame) = pkt.push_front(VLAN_HLEN) else {
        return;
    };
    frame.copy_within(VLAN_HLEN..VLAN_HLEN + eth::SRC.end, 0);
    let tag = eth::ETHERTYPE.start;
    set_be16(frame, tag + vlan::TPID.start, ETHERTYPE_VLAN);
    set_be16(frame, tag + vlan::TCI.start, tci);
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
        let ttl = ip[if v6 { ipv6::HOP_LIMIT } else { ipv4::TTL }];
        if ttl <= 1 {
            return Err(TTL_EXPIRED);
        }
    }

    let l4 = transport(plan, &h, v6, addrs)?;
    let mut pseudo_dst = true;
    if v6 && plan.v6.dst.is_some() && l4 != L4::None && is_ipv6_ext(ip[ipv6::NEXT_HEADER]) {
        pseudo_dst = ipv6_pseudo_dst(ip).ok_or(MALFORMED)?;
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

/// IPv6 extension headers, as the header parser walks them.
const IPV6_EXT_HOP_BY_HOP: u8 = 0;
const IPV6_EXT_ROUTING: u8 = 43;
const IPV6_EXT_FRAGMENT: u8 = 44;
const IPV6_EXT_AUTH: u8 = 51;
const IPV6_EXT_DEST_OPTS: u8 = 60;
/// Most extension headers the parser walks (see `wire::headers`).
const IPV6_MAX_EXT: usize = 8;

fn is_ipv6_ext(next: u8) -> bool {
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
/// the parser): `Some(false)` when a Routing header still has segments left,
/// so the transport pseudo-header uses the final destination from that header
/// instead of the destination field; `None` when the chain is longer than the
/// parser walks.
fn ipv6_pseudo_dst(ip: &[u8]) -> Option<bool> {
    let mut next = *ip.get(ipv6::NEXT_HEADER)?;
    let mut off = ipv6::LEN;
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
        if next == IPV6_EXT_ROUTING && *ip.get(off + 3)? > 0 {
            uses_dst = false;
        }
        next = *ip.get(off)?;
        off += len;
    }
    (!is_ipv6_ext(next)).then_some(uses_dst)
}

/// Writes the IPv4 rewrites of `job` and fixes the header and transport checksums.
fn write_ipv4(plan: &Plan, frame: &mut [u8], job: &IpJob) {
    let ip = &mut frame[job.l3..];
    let mut hdr = 0; // difference of header-only words
    if plan.dec_ttl {
        let old = be16(ip, ipv4::TTL);
        ip[ipv4::TTL] -= 1;
        hdr = delta16(hdr, old, be16(ip, ipv4::TTL));
    }
    if let Some(dscp) = plan.dscp {
        let old = be16(ip, ipv4::VER_IHL);
        ip[ipv4::TOS] = dscp << 2 | (ip[ipv4::TOS] & 0x03);
        hdr = delta16(hdr, old, be16(ip, ipv4::VER_IHL));
    }
    let mut pseudo = 0; // difference of words the transport pseudo-header shares
    if let Some(a) = plan.v4.src {
        pseudo = delta(pseudo, &ip[ipv4::SRC], &a);
        ip[ipv4::SRC].copy_from_slice(&a);
    }
    if let Some(a) = plan.v4.dst {
        pseudo = delta(pseudo, &ip[ipv4::DST], &a);
        ip[ipv4::DST].copy_from_slice(&a);
    }
    let at = ipv4::CHECKSUM.start;
    let check = apply_delta(be16(ip, at), fold(hdr as u64 + pseudo as u64));
    set_be16(ip, at, check);
    write_l4(plan, frame, job, pseudo, plan.v4.any());
}

/// Writes the IPv6 rewrites of `job` and fixes the transport checksum.
fn write_ipv6(plan: &Plan, frame: &mut [u8], job: &IpJob) {
    let ip = &mut frame[job.l3..];
    if plan.dec_ttl {
        ip[ipv6::HOP_LIMIT] -= 1;
    }
    if let Some(dscp) = plan.dscp {
        // Version (4 bits) | DSCP (6) | ECN (2) | flow label (20).
        ip[0] = (ip[0] & 0xf0) | dscp >> 2;
        ip[1] = (ip[1] & 0x3f) | (dscp & 0x03) << 6;
    }
    let mut pseudo = 0;
    if let Some(a) = plan.v6.src {
        pseudo = delta(pseudo, &ip[ipv6::SRC], &a);
        ip[ipv6::SRC].copy_from_slice(&a);
    }
    if let Some(a) = plan.v6.dst {
        if job.pseudo_dst {
            pseudo = delta(pseudo, &ip[ipv6::DST], &a);
        }
        ip[ipv6::DST].copy_from_slice(&a);
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
        for (port, at) in [
            (plan.src_port, tcp::SRC_PORT.start),
            (plan.dst_port, tcp::DST_PORT.start),
        ] {
            if let Some(port) = port {
                diff = delta16(diff, be16(l4, at), port);
                set_be16(l4, at, port);
                changed = true;
            }
        }
    }
    if !changed {
        return;
    }
    let at = job.l4.checksum_at();
    let old = be16(l4, at);
    let new = match job.l4 {
        // No checksum (IPv4, or an RFC 6935 tunnel over IPv6) stays none.
        L4::Udp if old == 0 => 0,
        // A computed 0 is sent as all ones (RFC 768).
        L4::Udp => match apply_delta(old, diff) {
            0 => 0xffff,
            c => c,
        },
        _ => apply_delta(old, diff),
    };
    set_be16(l4, at, new);
}
