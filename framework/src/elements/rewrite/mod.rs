//! `Rewrite`: sets Ethernet, VLAN, IP and TCP/UDP header fields, keeping
//! checksums right.
//!
//! The parameters become a [`plan::Plan`] at configure time. A plan that
//! only changes MAC addresses runs a tight loop over the batch that never
//! parses a header; everything else goes through [`apply::apply`], which
//! checks a packet completely before writing any byte of it.

mod apply;
mod plan;
#[cfg(test)]
mod tests;

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;
use crate::wire::{EthernetFrame, ETH_HLEN};
use plan::{Plan, VID_MAX};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Dropped: shorter than an Ethernet header, a cut VLAN tag, or an IP or
        /// transport header the rewrite needs is malformed or truncated.
        MALFORMED = "malformed",
        /// Dropped: `dec_ttl` met a TTL or hop limit of 0 or 1.
        TTL_EXPIRED = "ttl-expired",
        /// Dropped: no headroom left in front of the frame for `vlan_push`.
        NO_HEADROOM = "no-headroom",
    ]
}

const VID: ParamType = ParamType::Int {
    min: 0,
    max: VID_MAX as i64,
};

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "eth_src",
        ty: ParamType::Mac,
        need: Need::Optional,
        doc: "New source MAC address.",
    },
    ParamSpec {
        name: "eth_dst",
        ty: ParamType::Mac,
        need: Need::Optional,
        doc: "New destination MAC address.",
    },
    ParamSpec {
        name: "vlan_push",
        ty: VID,
        need: Need::Optional,
        doc: "Push a new outer 802.1Q tag (TPID 0x8100) with this VLAN id.",
    },
    ParamSpec {
        name: "vlan_pop",
        ty: ParamType::Bool,
        need: Need::Default("false"),
        doc: "Remove the outer VLAN tag (802.1Q or 802.1ad); untagged frames pass unchanged.",
    },
    ParamSpec {
        name: "vlan_set",
        ty: VID,
        need: Need::Optional,
        doc: "Change the outer tag's VLAN id; untagged frames pass unchanged.",
    },
    ParamSpec {
        name: "vlan_pcp",
        ty: ParamType::Int { min: 0, max: 7 },
        need: Need::Optional,
        doc: "Priority of the tag from `vlan_push` (0 when left out) or `vlan_set` \
              (the tag keeps its own when left out).",
    },
    ParamSpec {
        name: "ip_src",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "New source address: an IPv4 address rewrites IPv4 packets, an IPv6 address IPv6 packets.",
    },
    ParamSpec {
        name: "ip_dst",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "New destination address: an IPv4 address rewrites IPv4 packets, an IPv6 address IPv6 packets.",
    },
    ParamSpec {
        name: "ip6_src",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "New IPv6 source address, to rewrite both families alongside an IPv4 `ip_src`.",
    },
    ParamSpec {
        name: "ip6_dst",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "New IPv6 destination address, to rewrite both families alongside an IPv4 `ip_dst`.",
    },
    ParamSpec {
        name: "src_port",
        ty: ParamType::U16,
        need: Need::Optional,
        doc: "New TCP/UDP source port.",
    },
    ParamSpec {
        name: "dst_port",
        ty: ParamType::U16,
        need: Need::Optional,
        doc: "New TCP/UDP destination port.",
    },
    ParamSpec {
        name: "dscp",
        ty: ParamType::Int { min: 0, max: 63 },
        need: Need::Optional,
        doc: "New DSCP of IPv4 and IPv6 packets; the ECN bits are kept.",
    },
    ParamSpec {
        name: "dec_ttl",
        ty: ParamType::Bool,
        need: Need::Default("false"),
        doc: "Decrement the IPv4 TTL / IPv6 hop limit; drop packets arriving with 1 or 0.",
    },
];

hpio_nf::counters! {
    COUNTERS = [
        REWRITTEN = "rewritten": "Packets sent on with at least one operation applied.",
        SKIPPED = "skipped": "Packets sent on unchanged: no operation applied to them.",
        UNTAGGED = "untagged": "Untagged frames that `vlan_pop` or `vlan_set` passed unchanged.",
    ]
}

/// The `Rewrite` element class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Rewrite",
        summary: "Sets MAC, VLAN, IP, port and DSCP fields, decrements TTL; keeps checksums right",
        description: "\
Changes the header fields its parameters name in every packet and sends it on
output 0. Operations apply in this order: drop checks first (a packet is
either rewritten completely or dropped, never sent half-rewritten), then
TTL/hop limit, DSCP, IP addresses and TCP/UDP ports, then the VLAN tag
(push, pop or set), then the MAC addresses. Each step touches different
bytes, so the order only decides which drop reason wins.

Checksums: the IPv4 header checksum follows TTL, DSCP and address changes;
TCP, UDP and ICMPv6 checksums follow port changes and address changes
(their pseudo-header), for IPv4 and IPv6. Updates are incremental (RFC 1624),
so a checksum that was wrong stays wrong. A UDP checksum of 0 (none) stays 0;
a UDP checksum that computes to 0 is sent as 0xffff. VLAN changes leave IP
and transport checksums alone.

Families: an IPv4 `ip_src`/`ip_dst` rewrites IPv4 packets and an IPv6 one
IPv6 packets; `ip6_src`/`ip6_dst` add IPv6 addresses next to IPv4 ones.
`dscp`, `dec_ttl` and the ports apply to both families. Packets of a family
nothing applies to, and non-IP frames, pass unchanged (counted `skipped`).

Malformed input: frames shorter than 14 bytes are dropped (`malformed`).
MAC rewrites apply to any other frame. `vlan_pop`/`vlan_set` drop frames
whose outer tag is cut short and pass untagged frames unchanged (counted
`untagged`). When an IP operation applies, a frame whose VLAN tags, IP header,
or a transport header it must update is malformed or truncated is dropped
(`malformed`).

Notes: ports and transport checksums are only touched in a packet carrying
the transport header (not in non-first fragments; the first fragment's
checksum covers the whole datagram). With a TTL/hop limit of 1 or 0,
`dec_ttl` drops the packet (`ttl-expired`); no ICMP error is sent. For an
IPv6 packet with a Routing header that has segments left, the transport
checksum covers the final destination, so changing the destination field
leaves it alone. Checksums of other protocols with a pseudo-header (UDP-Lite,
DCCP) and IPv4 source routes are not handled. `vlan_push` needs 4 bytes of
headroom and drops the packet (`no-headroom`) without them. With only
`eth_src`/`eth_dst` set, no header is parsed at all; with no parameter at
all, Rewrite passes frames unchanged (still dropping those under 14 bytes).",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: &[],
        example: r#"[elements.to_gateway]
class = "Rewrite"
eth_src = "02:00:00:00:00:01"
eth_dst = "02:00:00:00:00:fe"
ip_src = "192.0.2.1"
ip6_src = "2001:db8::1"
dec_ttl = true
"#,
        see_also: &["Classify", "Counter"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let plan = Plan::from_params(p)?;
    Ok(Configured::cloning(Inputs::Fixed(1), 1, Rewrite::new(plan)))
}

/// One worker's replica of a `Rewrite`.
#[derive(Debug, Clone)]
struct Rewrite {
    plan: Plan,
    rewritten: u64,
    skipped: u64,
    untagged: u64,
}

impl Rewrite {
    fn new(plan: Plan) -> Rewrite {
        Rewrite {
            plan,
            rewritten: 0,
            skipped: 0,
            untagged: 0,
        }
    }

    /// The MAC-only plan: writes addresses in place without parsing and
    /// hands the whole batch on. Returns false when a frame is too short;
    /// the caller then takes the general path, which drops that frame and
    /// writes the same addresses again into the others (no harm done).
    #[inline]
    fn push_macs(&mut self, batch: &mut Batch, out: &mut Output) -> bool {
        let ok = match (self.plan.eth_dst, self.plan.eth_src) {
            (Some(dst), Some(src)) => each_frame(batch, |f| {
                let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
                eth.set_dst_addr(dst);
                eth.set_src_addr(src);
            }),
            (Some(dst), None) => each_frame(batch, |f| {
                EthernetFrame::new_unchecked(&mut f[..]).set_dst_addr(dst)
            }),
            (None, Some(src)) => each_frame(batch, |f| {
                EthernetFrame::new_unchecked(&mut f[..]).set_src_addr(src)
            }),
            (None, None) => each_frame(batch, |_| {}),
        };
        if !ok {
            return false;
        }
        let n = batch.len() as u64;
        if self.plan.eth_dst.is_some() || self.plan.eth_src.is_some() {
            self.rewritten += n;
        } else {
            self.skipped += n;
        }
        out.push_all(0, batch);
        true
    }
}

/// Runs `f` over the first 14 bytes of every frame of `batch` that has
/// them; false when some frame is shorter.
#[inline(always)]
fn each_frame(batch: &mut Batch, f: impl Fn(&mut [u8; ETH_HLEN])) -> bool {
    let mut ok = true;
    for p in batch.iter_mut() {
        match p.data_mut().first_chunk_mut::<ETH_HLEN>() {
            Some(h) => f(h),
            None => ok = false,
        }
    }
    ok
}

impl Element for Rewrite {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        if self.plan.mac_only() && self.push_macs(batch, out) {
            return;
        }
        for mut pkt in batch.drain(..) {
            match apply::apply(&self.plan, &mut pkt) {
                Ok(done) => {
                    if done.changed {
                        self.rewritten += 1;
                    } else {
                        self.skipped += 1;
                    }
                    self.untagged += done.untagged as u64;
                    out.push(0, pkt);
                }
                Err(reason) => out.drop(pkt, reason),
            }
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(REWRITTEN, self.rewritten);
        report(SKIPPED, self.skipped);
        report(UNTAGGED, self.untagged);
    }
}
