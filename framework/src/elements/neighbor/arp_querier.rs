//! `ArpQuerier`: resolves IPv4 next hops to Ethernet addresses with ARP.

use std::net::Ipv4Addr;

use super::table::{Limits, Table, Verdict};
use super::{ipv4_param, mac_string, Arp, ARP_REQUEST};
use crate::element::{
    handler, ClassInfo, Combine, ConfigCx, Configured, Context, Element, ElementClass, HandlerCx,
    HandlerKind, HandlerResult, HandlerSpec, Inputs, Need, Output, ParamError, ParamSpec,
    ParamType, Params, PortCount,
};
use crate::elements::route::next_hop_v4;
use crate::packet::{Batch, Packet};
use crate::wire::{L3Kind, ParseStatus};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// The next hop is being resolved and already holds `hold` packets.
        HOLD_FULL = "hold-full",
        /// Every entry of the table is in use.
        TABLE_FULL = "table-full",
        /// The next hop did not answer `tries` requests (or the run ended).
        UNRESOLVED = "unresolved",
        /// Not an IPv4 packet (input 0) or not ARP (input 1).
        WRONG_INPUT = "wrong-input",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        REQUESTS = "requests": "ARP requests sent",
        LEARNED = "learned": "ARP messages that resolved or refreshed an entry",
        NO_BUFFER = "no-buffer": "Requests not sent for want of a free packet",
    ]
}

/// Entries looked at per burst for retries and expiry.
const SWEEP: usize = 8;

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

Time-driven work is done without a timer: when a packet for the neighbour
comes, and once per burst (retries and giving up on unresolved neighbours,
expiry of a few resolved ones; only when packets arrive). Each worker keeps its
own table.",
        inputs: PortCount::Fixed(2),
        outputs: PortCount::Fixed(1),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: &[HandlerSpec {
            name: "table",
            kind: HandlerKind::Read,
            combine: Combine::Rows,
            arg: "",
            doc: "The neighbours: address, Ethernet address (or pending), age, packets held",
        }],
        example: "\
[elements.arpq_wan]
class = \"ArpQuerier\"
ipv4 = \"203.0.113.2\"
mac = \"02:00:00:00:02:01\"",
        see_also: &["ArpResponder", "IpLookup"],
    },
    configure,
};

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "ipv4",
        ty: ParamType::Ip,
        need: Need::Required,
        doc: "The router's IPv4 address on this link (the requests' sender)",
    },
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
];

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
    Ok(Configured::new(Inputs::Fixed(2), 1, move |_| {
        Box::new(ArpQuerier::new(ip, mac, limits))
    }))
}

/// Resolves IPv4 next hops.
pub struct ArpQuerier {
    ip: Ipv4Addr,
    mac: [u8; 6],
    table: Table<u32>,
    /// Scratch space, allocated once: packets released or dropped together,
    /// next hops to ask again.
    released: Vec<Packet>,
    retry: Vec<u32>,
    requests: u64,
    learned: u64,
    no_buffer: u64,
}

impl ArpQuerier {
    /// An empty querier.
    pub fn new(ip: Ipv4Addr, mac: [u8; 6], limits: Limits) -> ArpQuerier {
        ArpQuerier {
            ip,
            mac,
            table: Table::new(limits),
            released: Vec::with_capacity(SWEEP * limits.hold.max(1)),
            retry: Vec::with_capacity(SWEEP),
            requests: 0,
            learned: 0,
            no_buffer: 0,
        }
    }

    /// Sends an ARP request for `target` to output 0.
    fn request(&mut self, cx: &mut Context<'_>, target: u32, out: &mut Output) {
        let Some(mut p) = cx.alloc() else {
            self.no_buffer += 1;
            return;
        };
        if p.set_len(60).is_err() {
            cx.free(p);
            self.no_buffer += 1;
            return;
        }
        let a = Arp {
            op: ARP_REQUEST,
            sender_mac: self.mac,
            sender_ip: self.ip.octets(),
            target_mac: [0; 6],
            target_ip: target.to_be_bytes(),
        };
        a.write([0xff; 6], p.data_mut());
        p.invalidate_headers();
        self.requests += 1;
        out.push(0, p);
    }

    /// Writes the Ethernet addresses of `pkt` and sends it.
    #[inline]
    fn send(&self, mut pkt: Packet, mac: [u8; 6], out: &mut Output) {
        let d = pkt.data_mut();
        d[..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&self.mac);
        out.push(0, pkt);
    }

    fn route(&mut self, cx: &mut Context<'_>, mut pkt: Packet, out: &mut Output) {
        let h = pkt.headers();
        if h.l3 != L3Kind::Ipv4
            || matches!(
                h.status,
                ParseStatus::L2Truncated | ParseStatus::L3Malformed
            )
        {
            out.drop(pkt, WRONG_INPUT);
            return;
        }
        let o = usize::from(h.l3_off) + 16;
        let d = pkt.data();
        let dst = Ipv4Addr::new(d[o], d[o + 1], d[o + 2], d[o + 3]);
        let hop = u32::from(next_hop_v4(&pkt, dst));
        match self.table.resolve(hop, pkt, cx.now()) {
            Verdict::Send(mac, pkt) => self.send(pkt, mac, out),
            Verdict::Held(true) => self.request(cx, hop, out),
            Verdict::Held(false) => {}
            Verdict::HoldFull(pkt) => out.drop(pkt, HOLD_FULL),
            Verdict::TableFull(pkt) => out.drop(pkt, TABLE_FULL),
        }
    }

    fn learn(&mut self, cx: &mut Context<'_>, pkt: Packet, out: &mut Output) {
        let Some(a) = Arp::parse(pkt.data()) else {
            out.drop(pkt, WRONG_INPUT);
            return;
        };
        cx.free(pkt);
        if a.sender_ip == [0; 4] {
            return; // An address probe (RFC 5227) tells nothing.
        }
        let for_us = a.target_ip == self.ip.octets();
        let key = u32::from_be_bytes(a.sender_ip);
        let mut released = std::mem::take(&mut self.released);
        self.table
            .learn(key, a.sender_mac, cx.now(), for_us, &mut released);
        self.learned += 1;
        for p in released.drain(..) {
            self.send(p, a.sender_mac, out);
        }
        self.released = released;
    }

    /// Retries, gives up on and expires a few entries.
    fn sweep(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        let mut retry = std::mem::take(&mut self.retry);
        let mut dropped = std::mem::take(&mut self.released);
        self.table.sweep(SWEEP, cx.now(), &mut retry, &mut dropped);
        for hop in retry.drain(..) {
            self.request(cx, hop, out);
        }
        for p in dropped.drain(..) {
            out.drop(p, UNRESOLVED);
        }
        self.retry = retry;
        self.released = dropped;
    }
}

impl Element for ArpQuerier {
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        self.sweep(cx, out);
        for pkt in batch.drain(..) {
            if input == 0 {
                self.route(cx, pkt, out);
            } else {
                self.learn(cx, pkt, out);
            }
        }
    }

    fn finish(&mut self, _cx: &mut Context<'_>, out: &mut Output) {
        let mut held = Vec::new();
        self.table.drain_held(&mut held);
        for p in held {
            out.drop(p, UNRESOLVED);
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(REQUESTS, self.requests);
        report(LEARNED, self.learned);
        report(NO_BUFFER, self.no_buffer);
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        if name != "table" {
            return Err(handler::no_such_handler(name));
        }
        let rows: Vec<_> = self
            .table
            .entries()
            .map(|e| {
                handler::json!({
                    "ipv4": Ipv4Addr::from(e.key).to_string(),
                    "mac": e.mac.map_or("pending".to_string(), mac_string),
                    "age_ms": cx.now().saturating_sub(e.at) / 1_000_000,
                    "held": e.held.len(),
                })
            })
            .collect();
        Ok(rows.into())
    }
}

#[cfg(test)]
#[path = "arp_querier_tests.rs"]
mod tests;
