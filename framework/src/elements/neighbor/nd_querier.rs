//! `NdQuerier`: resolves IPv6 next hops with neighbour solicitations.

use std::net::Ipv6Addr;

use super::arp_querier::{limits, static_neighbours, PARAMS, TABLE_HANDLER};
use super::nd::{self, NA, NS};
use super::querier::{ip_header, Protocol, Querier, COUNTERS, DROP_REASONS};
use crate::element::{
    ClassInfo, ConfigCx, Configured, ElementClass, Inputs, Need, ParamError, ParamSpec, ParamType,
    Params, PortCount,
};
use crate::elements::route::next_hop_v6;
use crate::packet::Packet;
use crate::wire::{Ipv6Packet, L3Kind};

/// The `NdQuerier` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "NdQuerier",
        summary: "Resolves IPv6 next hops with neighbour discovery and writes the Ethernet header",
        description: "\
The IPv6 counterpart of ArpQuerier (RFC 4861 section 7.2): input 0 takes
IPv6 packets leaving by this link, with the next hop IpLookup wrote (the
link-local address fe80::/64 plus the interface identifier in annotation
words 2 and 3; the destination itself when both are 0). A resolved packet
gets its Ethernet header and leaves by output 0; an unresolved one is held
(at most `hold` per neighbour, else `hold-full`) while neighbour
solicitations from `ipv6` go to the target's solicited-node multicast
address, every `retry`, `tries` times, before the held packets are dropped
as `unresolved`. At most `capacity` neighbours (`table-full`); a resolved
entry is trusted for `timeout`; `static` neighbours (`{ ip, mac }`, the
next hop's link-local address) are resolved for good, as for ArpQuerier.

Input 1 takes neighbour advertisements (and solicitations carrying the
sender's link-layer address), which resolve or refresh entries and release
held packets; they are then freed. Retries, giving up and expiry are done
on time by the element's timer, with or without traffic, as for ArpQuerier.",
        inputs: PortCount::Fixed(2),
        outputs: PortCount::Fixed(1),
        params: ND_PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: TABLE_HANDLER,
        example: "\
[elements.ndq_wan]
class = \"NdQuerier\"
ipv6 = \"fe80::2:1\"
mac = \"02:00:00:00:02:01\"",
        see_also: &["NdResponder", "ArpQuerier", "IpLookup"],
    },
    configure,
};

const ND_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "ipv6",
        ty: ParamType::Ip,
        need: Need::Required,
        doc: "The router's IPv6 address on this link (the solicitations' source)",
    },
    PARAMS[0],
    PARAMS[1],
    PARAMS[2],
    PARAMS[3],
    PARAMS[4],
    PARAMS[5],
    PARAMS[6],
];

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let ip = match p.ip("ipv6")? {
        std::net::IpAddr::V6(a) => a,
        _ => return Err(ParamError::new("ipv6", "expected an IPv6 address")),
    };
    let mac = p.mac("mac")?;
    let limits = limits(p)?;
    let pinned = static_neighbours(p, |a| match a {
        std::net::IpAddr::V6(a) => Ok(u128::from(a)),
        _ => Err("expected an IPv6 address"),
    })?;
    Ok(Configured::new(Inputs::Fixed(2), 1, move |_| {
        Box::new(Querier::new(Nd6 { ip, mac }, limits).with_static(&pinned))
    })
    .with_timer())
}

/// Neighbour discovery for IPv6 next hops.
pub(crate) struct Nd6 {
    ip: Ipv6Addr,
    mac: [u8; 6],
}

impl Protocol for Nd6 {
    type Key = u128;
    const COLUMN: &'static str = "ipv6";

    #[inline(always)]
    fn next_hop(&self, pkt: &mut Packet) -> Option<u128> {
        let dst = Ipv6Packet::new_checked(ip_header(pkt, L3Kind::Ipv6)?)
            .ok()?
            .dst_addr();
        Some(u128::from(next_hop_v6(pkt, dst)))
    }

    fn request(&self, key: u128, frame: &mut [u8]) -> usize {
        let target = Ipv6Addr::from(key);
        let sn = nd::solicited_node(target);
        nd::write(
            frame,
            nd::multicast_mac(sn),
            self.mac,
            self.ip,
            sn,
            NS,
            0,
            target,
        );
        nd::ND_FRAME
    }

    fn learn(&self, frame: &[u8]) -> Option<(u128, [u8; 6], bool)> {
        let m = nd::parse(frame)?;
        match m.ty {
            NA => Some((u128::from(m.target), m.lladdr.unwrap_or(m.eth_src), true)),
            _ if m.src.is_unspecified() => None,
            _ => Some((u128::from(m.src), m.lladdr?, m.target == self.ip)),
        }
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn show(key: u128) -> String {
        Ipv6Addr::from(key).to_string()
    }
}

#[cfg(test)]
#[path = "tests_nd.rs"]
mod tests;
