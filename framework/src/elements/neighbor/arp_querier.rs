//! `ArpQuerier`: resolves IPv4 next hops to Ethernet addresses with ARP.

use std::net::Ipv4Addr;

use super::querier::{ip_header, Protocol, Querier, COUNTERS, DROP_REASONS};
use super::table::Limits;
use super::{ipv4_param, Arp, ARP_REQUEST};
use crate::element::{
    ClassInfo, Combine, ConfigCx, Configured, ElementClass, HandlerKind, HandlerSpec, Inputs, Need,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::elements::route::next_hop_v4;
use crate::packet::Packet;
use crate::wire::{Ipv4Packet, L3Kind};

/// The `ArpQuerier` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "ArpQuerier",
        summary: "Resolves IPv4 next hops with ARP and writes the Ethernet header",
        description: "\
Input 0 takes IPv4 packets on their way out of a link, with the next hop
IpLookup wrote in annotation word 2 (0: the destination itself). A packet
whose next hop is resolved gets its Ethernet header rewritten (destination
the neighbour's address, source `mac`) and leaves by output 0. Otherwise the
packet is held, at most `hold` per neighbour (more are dropped as
`hold-full`), and an ARP request for the next hop (from `ipv4`, `mac`) leaves
by output 0; it is repeated every `retry` until `tries` requests went
unanswered, and the held packets are then dropped as `unresolved`. The table
holds at most `capacity` neighbours (a packet for one more is dropped as
`table-full`); a resolved entry is trusted for `timeout`, then asked again.

Input 1 takes ARP messages from the link (replies, and requests, which also
tell the asker's address, RFC 826): they resolve or refresh the sender's
entry, and release the packets held for it; they are then freed.

Time-driven work is done on time by the element's timer, whether packets
arrive or not: a request is repeated `retry` after the last one, the held
packets are dropped (`unresolved`, counted then) `retry` after the last
unanswered request, and resolved neighbours leave the table once past
`timeout` (looked for at most every `timeout`/16, so an entry may stay that
much longer; a packet never uses it past `timeout`). Bursts that arrive do
some of this work too. Under `clock = \"packet\"` the time is the packets'.
Each worker keeps its own table.

Static neighbours (`static`, like `arp -s`) are resolved from the start and
for good: never asked for, never expired, not changed by ARP messages, and
not counted against `capacity`.",
        inputs: PortCount::Fixed(2),
        outputs: PortCount::Fixed(1),
        params: ARP_PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: TABLE_HANDLER,
        example: "\
[elements.arpq_wan]
class = \"ArpQuerier\"
ipv4 = \"203.0.113.2\"
mac = \"02:00:00:00:02:01\"",
        see_also: &["ArpResponder", "IpLookup"],
    },
    configure,
};

/// The `table` read handler of both queriers.
pub(crate) const TABLE_HANDLER: &[HandlerSpec] = &[HandlerSpec {
    name: "table",
    kind: HandlerKind::Read,
    combine: Combine::Rows,
    arg: "",
    doc: "The neighbours: address, Ethernet address (or pending), age, packets held",
}];

/// The parameters of both queriers but the address.
pub(crate) const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "mac",
        ty: ParamType::Mac,
        need: Need::Required,
        doc: "The router's Ethernet address on this link",
    },
    ParamSpec {
        name: "capacity",
        ty: ParamType::Int {
            min: 1,
            max: 1 << 20,
        },
        need: Need::Default("1024"),
        doc: "Most neighbours in the table",
    },
    ParamSpec {
        name: "hold",
        ty: ParamType::Int { min: 0, max: 1024 },
        need: Need::Default("4"),
        doc: "Most packets held per unresolved neighbour",
    },
    ParamSpec {
        name: "timeout",
        ty: ParamType::Duration,
        need: Need::Default("\"60s\""),
        doc: "How long a resolved neighbour is trusted",
    },
    ParamSpec {
        name: "retry",
        ty: ParamType::Duration,
        need: Need::Default("\"1s\""),
        doc: "Time between requests for an unresolved neighbour",
    },
    ParamSpec {
        name: "tries",
        ty: ParamType::Int { min: 1, max: 100 },
        need: Need::Default("3"),
        doc: "Requests sent before the held packets are dropped",
    },
    ParamSpec {
        name: "static",
        ty: ParamType::List(&STATIC),
        need: Need::Default("[]"),
        doc: "Static neighbours `{ ip, mac }`: resolved for good, never asked for",
    },
];

const STATIC_FIELDS: &[ParamSpec] = &[
    ParamSpec {
        name: "ip",
        ty: ParamType::Ip,
        need: Need::Required,
        doc: "The neighbour's address",
    },
    ParamSpec {
        name: "mac",
        ty: ParamType::Mac,
        need: Need::Required,
        doc: "Its Ethernet address",
    },
];

static STATIC: ParamType = ParamType::Table(STATIC_FIELDS);

/// The `static` neighbours of a querier: their addresses (of the family
/// `key` accepts: it names what it expects otherwise) and Ethernet addresses.
pub(crate) fn static_neighbours<K>(
    p: &Params,
    key: impl Fn(std::net::IpAddr) -> Result<K, &'static str>,
) -> Result<Vec<(K, [u8; 6])>, ParamError> {
    let mut v = Vec::new();
    for (i, t) in p.table_list("static")?.into_iter().enumerate() {
        let nested = |e| ParamError::nested("static", Some(i), e);
        let ip =
            key(t.ip("ip").map_err(nested)?).map_err(|what| nested(ParamError::new("ip", what)))?;
        v.push((ip, t.mac("mac").map_err(nested)?));
    }
    Ok(v)
}

fn ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The table limits of a querier's parameters.
pub(crate) fn limits(p: &Params) -> Result<Limits, ParamError> {
    Ok(Limits {
        capacity: p.usize("capacity")?,
        hold: p.usize("hold")?,
        timeout_ns: ns(p.duration("timeout")?),
        retry_ns: ns(p.duration("retry")?),
        tries: p.int("tries")? as u32,
    })
}

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let ip = ipv4_param(p, "ipv4")?;
    let mac = p.mac("mac")?;
    let limits = limits(p)?;
    let pinned = static_neighbours(p, |a| match a {
        std::net::IpAddr::V4(a) => Ok(u32::from(a)),
        _ => Err("expected an IPv4 address"),
    })?;
    Ok(Configured::new(Inputs::Fixed(2), 1, move |_| {
        Box::new(Querier::new(Arp4 { ip, mac }, limits).with_static(&pinned))
    })
    .with_timer())
}

const ARP_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "ipv4",
        ty: ParamType::Ip,
        need: Need::Required,
        doc: "The router's IPv4 address on this link (the requests' sender)",
    },
    PARAMS[0],
    PARAMS[1],
    PARAMS[2],
    PARAMS[3],
    PARAMS[4],
    PARAMS[5],
    PARAMS[6],
];

/// ARP for IPv4 next hops.
pub(crate) struct Arp4 {
    ip: Ipv4Addr,
    mac: [u8; 6],
}

impl Protocol for Arp4 {
    type Key = u32;
    const COLUMN: &'static str = "ipv4";

    #[inline(always)]
    fn next_hop(&self, pkt: &mut Packet) -> Option<u32> {
        let dst = Ipv4Packet::new_checked(ip_header(pkt, L3Kind::Ipv4)?)
            .ok()?
            .dst_addr();
        Some(u32::from(next_hop_v4(pkt, dst)))
    }

    fn request(&self, key: u32, frame: &mut [u8]) -> usize {
        let a = Arp {
            op: ARP_REQUEST,
            sender_mac: self.mac,
            sender_ip: self.ip.octets(),
            target_mac: [0; 6],
            target_ip: key.to_be_bytes(),
        };
        a.write([0xff; 6], frame);
        60
    }

    fn learn(&self, frame: &[u8]) -> Option<(u32, [u8; 6], bool)> {
        let a = Arp::parse(frame)?;
        // An address probe (RFC 5227, sender 0.0.0.0) tells nothing.
        (a.sender_ip != [0; 4]).then(|| {
            let for_us = a.target_ip == self.ip.octets();
            (u32::from_be_bytes(a.sender_ip), a.sender_mac, for_us)
        })
    }

    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn show(key: u32) -> String {
        Ipv4Addr::from(key).to_string()
    }
}

#[cfg(test)]
#[path = "tests_arp_querier.rs"]
mod tests;
