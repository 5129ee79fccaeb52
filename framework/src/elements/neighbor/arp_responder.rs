//! `ArpResponder`: answers ARP requests for the router's address.

use std::net::Ipv4Addr;

use super::{ipv4_param, Arp, ARP_REPLY, ARP_REQUEST};
use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Not an ARP request for IPv4 over Ethernet.
        NOT_A_REQUEST = "not-a-request",
        /// A request for another address.
        NOT_FOR_US = "not-for-us",
    ]
}

/// The `ArpResponder` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "ArpResponder",
        summary: "Answers ARP requests for the router's IPv4 address",
        description: "\
Turns every ARP request (RFC 826) for `ipv4` into the reply saying that
`ipv4` is at `mac`, in the request's own buffer, and sends it to output 0,
addressed to the asker (wire output 0 back to the port the request came
from). Requests for other addresses and other frames are dropped and
counted. Gratuitous requests (sender and target the same) are not for us
unless they claim our address, and are dropped as `not-for-us`.

Notes: put it behind a Classify rule matching ARP (`ethertype 0x0806`); the
same ARP frames may go to an ArpQuerier too (through a Tee), which learns
the asker's address from them.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[
            ParamSpec {
                name: "ipv4",
                ty: ParamType::Ip,
                need: Need::Required,
                doc: "The router's IPv4 address on this link",
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
[elements.arp_lan]
class = \"ArpResponder\"
ipv4 = \"192.168.1.1\"
mac = \"02:00:00:00:01:01\"",
        see_also: &["ArpQuerier", "Classify"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let e = ArpResponder {
        ip: ipv4_param(p, "ipv4")?,
        mac: p.mac("mac")?,
    };
    Ok(Configured::cloning(Inputs::Fixed(1), 1, e))
}

/// Answers ARP requests for one address.
#[derive(Debug, Clone)]
pub struct ArpResponder {
    ip: Ipv4Addr,
    mac: [u8; 6],
}

impl Element for ArpResponder {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            let req = match Arp::parse(pkt.data()) {
                Some(a) if a.op == ARP_REQUEST && pkt.len() >= 42 => a,
                _ => {
                    out.drop(pkt, NOT_A_REQUEST);
                    continue;
                }
            };
            if req.target_ip != self.ip.octets() {
                out.drop(pkt, NOT_FOR_US);
                continue;
            }
            let reply = Arp {
                op: ARP_REPLY,
                sender_mac: self.mac,
                sender_ip: self.ip.octets(),
                target_mac: req.sender_mac,
                target_ip: req.sender_ip,
            };
            if pkt.len() < 60 && pkt.set_len(60).is_err() {
                out.drop(pkt, NOT_A_REQUEST);
                continue;
            }
            reply.write(req.sender_mac, pkt.data_mut());
            let _ = pkt.set_len(60);
            pkt.invalidate_headers();
            out.push(0, pkt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::configure_element;
    use crate::element::Registry;
    use crate::packet::{Packet, Pool};
    use etherparse::{ArpOperation, LinkSlice, SlicedPacket};

    fn request(target: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        let a = Arp {
            op: ARP_REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 9],
            sender_ip: [192, 168, 1, 9],
            target_mac: [0; 6],
            target_ip: target,
        };
        a.write([0xff; 6], &mut f);
        f
    }

    #[test]
    fn answers_requests_for_its_address_only() {
        let toml = "ipv4 = \"192.168.1.1\"\nmac = \"02:00:00:00:01:01\"";
        let c = configure_element(&Registry::builtin(), &[], "ArpResponder", toml).unwrap();
        let mut e = c.instantiate(0);
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(1, DROP_REASONS.len());
        let frames = [
            request([192, 168, 1, 1]),
            request([192, 168, 1, 2]),
            vec![0; 60],
        ];
        let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        e.push(&mut cx, 0, &mut b, &mut out);
        assert_eq!(out.drops(NOT_FOR_US), 1);
        assert_eq!(out.drops(NOT_A_REQUEST), 1);
        let reply = out.batch(0)[0].data().to_vec();
        let s = SlicedPacket::from_ethernet(&reply).unwrap();
        let Some(LinkSlice::Ethernet2(eth)) = s.link else {
            panic!("no Ethernet")
        };
        assert_eq!(eth.destination(), [2, 0, 0, 0, 0, 9]);
        assert_eq!(eth.source(), [2, 0, 0, 0, 1, 1]);
        let Some(etherparse::NetSlice::Arp(arp)) = s.net else {
            panic!("no ARP")
        };
        assert_eq!(arp.operation(), ArpOperation::REPLY);
        assert_eq!(arp.sender_hw_addr(), &[2, 0, 0, 0, 1, 1]);
        assert_eq!(arp.sender_protocol_addr(), &[192, 168, 1, 1]);
        assert_eq!(arp.target_hw_addr(), &[2, 0, 0, 0, 0, 9]);
        assert_eq!(arp.target_protocol_addr(), &[192, 168, 1, 9]);
    }
}
