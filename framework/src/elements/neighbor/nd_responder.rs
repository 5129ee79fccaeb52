//! `NdResponder`: answers IPv6 neighbour solicitations for the router's addresses.

use std::net::{IpAddr, Ipv6Addr};

use super::nd::{self, FLAG_OVERRIDE, FLAG_ROUTER, FLAG_SOLICITED, NA, ND_FRAME, NS};
use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount, Value,
};
use crate::packet::Batch;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Not a neighbour solicitation (with hop limit 255).
        NOT_A_SOLICITATION = "not-a-solicitation",
        /// A solicitation for another address.
        NOT_FOR_US = "not-for-us",
    ]
}

/// The `NdResponder` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "NdResponder",
        summary: "Answers IPv6 neighbour solicitations for the router's addresses",
        description: "\
The IPv6 counterpart of ArpResponder (RFC 4861 section 7.2.4): a neighbour
solicitation whose target is one of `ipv6` becomes, in its own buffer, the
neighbour advertisement saying the target is at `mac` (flags router,
solicited, override), sent to the soliciting node and out of output 0. A
solicitation from the unspecified address (duplicate address detection)
is answered to all nodes (ff02::1) without the solicited flag. Other frames
and solicitations for other addresses are dropped and counted.

Notes: put it behind a Classify rule for ICMPv6 type 135 (`icmp6 type 135`
or the like); list the router's link-local address too, since hosts use it
as their default router's address.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[
            ParamSpec {
                name: "ipv6",
                ty: ParamType::List(&ParamType::Ip),
                need: Need::Required,
                doc: "The router's IPv6 addresses on this link",
            },
            ParamSpec {
                name: "mac",
                ty: ParamType::Mac,
                need: Need::Required,
                doc: "The router's Ethernet address on this link",
            },
        ],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: &[],
        example: "\
[elements.nd_lan]
class = \"NdResponder\"
ipv6 = [\"fd00:1::1\", \"fe80::1\"]
mac = \"02:00:00:00:01:01\"",
        see_also: &["NdQuerier", "ArpResponder"],
    },
    configure,
};

/// The IPv6 addresses of list parameter `name`.
pub(crate) fn ipv6_list(p: &Params, name: &str) -> Result<Vec<Ipv6Addr>, ParamError> {
    p.list(name)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Ip(IpAddr::V6(a)) => Ok(*a),
            _ => Err(ParamError::item(name, i, "expected an IPv6 address")),
        })
        .collect()
}

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let e = NdResponder {
        addrs: ipv6_list(p, "ipv6")?,
        mac: p.mac("mac")?,
    };
    Ok(Configured::cloning(Inputs::Fixed(1), 1, e))
}

/// Answers solicitations for its addresses.
#[derive(Debug, Clone)]
pub struct NdResponder {
    addrs: Vec<Ipv6Addr>,
    mac: [u8; 6],
}

impl Element for NdResponder {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            let ns = match nd::parse(pkt.data()) {
                Some(m) if m.ty == NS => m,
                _ => {
                    out.drop(pkt, NOT_A_SOLICITATION);
                    continue;
                }
            };
            if !self.addrs.contains(&ns.target) {
                out.drop(pkt, NOT_FOR_US);
                continue;
            }
            let (dst, flags) = if ns.src.is_unspecified() {
                (
                    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                    FLAG_ROUTER | FLAG_OVERRIDE,
                )
            } else {
                (ns.src, FLAG_ROUTER | FLAG_SOLICITED | FLAG_OVERRIDE)
            };
            let eth_dst = if ns.src.is_unspecified() {
                nd::multicast_mac(dst)
            } else {
                ns.lladdr.unwrap_or(ns.eth_src)
            };
            if pkt.set_len(ND_FRAME).is_err() {
                out.drop(pkt, NOT_A_SOLICITATION);
                continue;
            }
            nd::write(
                pkt.data_mut(),
                eth_dst,
                self.mac,
                ns.target,
                dst,
                NA,
                flags,
                ns.target,
            );
            pkt.invalidate_headers();
            out.push(0, pkt);
        }
    }
}
