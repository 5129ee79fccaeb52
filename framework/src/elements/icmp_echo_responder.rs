//! `IcmpEchoResponder`: answers ICMP and ICMPv6 echo requests (ping) in place.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, DropReason, Element, ElementClass, Inputs, Output,
    ParamError, Params, PortCount,
};
use crate::packet::Batch;
use crate::wire::checksum::update16;
use crate::wire::{FragKind, L3Kind, ParseStatus, IPPROTO_ICMP, IPPROTO_ICMPV6};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Not an ICMP echo request or ICMPv6 echo request (other ICMP
        /// types, other protocols, fragments, frames that are not IP).
        NOT_ECHO = "not-echo-request",
        /// The IP or ICMP header is cut short or inconsistent.
        MALFORMED = "malformed",
        /// To or from a multicast or broadcast address, or from an
        /// unspecified one: no reply (RFC 1122 3.2.2.6, RFC 4443 4.2).
        NOT_UNICAST = "not-unicast",
    ]
}

/// TTL / hop limit of the replies (RFC 1700's recommended default).
const REPLY_TTL: u8 = 64;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// The `IcmpEchoResponder` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "IcmpEchoResponder",
        summary: "Answers ICMP and ICMPv6 echo requests (ping) addressed to the router",
        description: "\
Turns each ICMP echo request (type 8, RFC 792) or ICMPv6 echo request (type
128, RFC 4443 4.1) into its echo reply, in the request's own buffer, and
sends it to output 0: the Ethernet and IP addresses are swapped, the type
becomes echo reply (0 / 129), the TTL or hop limit is set to 64, and the
identifier, sequence number and data are returned unchanged, as RFC 792 and
RFC 4443 ask. Checksums are updated incrementally (RFC 1624): swapping two
addresses leaves every sum the same; only the type and the TTL change.
VLAN tags are kept, so output 0 wired back to the input's port answers the
sender.

It answers every request it is given: put it behind a Classify rule naming
the router's own addresses (`icmp and icmp type echo-request and dst host
192.168.1.1`), as configs/gateway.toml does. Requests to or from a
multicast or broadcast address (or from an unspecified one) get no reply
and are dropped as `not-unicast`; anything else that is not an echo
request (fragments included) as `not-echo-request`.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: &[],
        example: "\
[elements.ping_lan]
class = \"IcmpEchoResponder\"",
        see_also: &["IcmpError", "Classify", "ArpResponder"],
    },
    configure,
};

fn configure(_p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    Ok(Configured::cloning(Inputs::Fixed(1), 1, IcmpEchoResponder))
}

/// Answers echo requests.
#[derive(Debug, Clone, Default)]
pub struct IcmpEchoResponder;

impl Element for IcmpEchoResponder {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            match reply_in_place(pkt.headers(), pkt.data_mut()) {
                Ok(()) => out.push(0, pkt),
                Err(reason) => out.drop(pkt, reason),
            }
        }
    }
}

/// Rewrites the echo request in `d` (parsed as `h`) into its reply, or
/// names the drop reason. Checks everything before writing anything.
fn reply_in_place(h: crate::wire::Headers, d: &mut [u8]) -> Result<(), DropReason> {
    if h.l3 == L3Kind::Other {
        return Err(NOT_ECHO);
    }
    if matches!(
        h.status,
        ParseStatus::L2Truncated | ParseStatus::L3Malformed
    ) {
        return Err(MALFORMED);
    }
    let want = match h.l3 {
        L3Kind::Ipv4 => (IPPROTO_ICMP, ICMP_ECHO_REQUEST),
        _ => (IPPROTO_ICMPV6, ICMPV6_ECHO_REQUEST),
    };
    if h.l4_proto != want.0 || h.frag != FragKind::None {
        return Err(NOT_ECHO);
    }
    if !h.has_l4 || h.status != ParseStatus::Ok {
        return Err(MALFORMED);
    }
    let (l3, l4) = (usize::from(h.l3_off), usize::from(h.l4_off));
    if d.get(l4) != Some(&want.1) {
        return Err(NOT_ECHO);
    }
    if h.l3 == L3Kind::Ipv4 {
        reply_v4(d, l3)?;
    } else {
        reply_v6(d, l3)?;
    }
    // The type is the high byte of the word it shares with the code.
    let reply = if h.l3 == L3Kind::Ipv4 {
        ICMP_ECHO_REPLY
    } else {
        ICMPV6_ECHO_REPLY
    };
    let code = d[l4 + 1];
    let c = u16::from_be_bytes([d[l4 + 2], d[l4 + 3]]);
    let c = update16(
        c,
        u16::from_be_bytes([want.1, code]),
        u16::from_be_bytes([reply, code]),
    );
    d[l4] = reply;
    d[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
    let (dst, src) = d.split_at_mut(6);
    dst.swap_with_slice(&mut src[..6]);
    Ok(())
}

/// Swaps the IPv4 addresses at `l3` and sets the TTL (header checksum
/// updated); refuses multicast and broadcast.
fn reply_v4(d: &mut [u8], l3: usize) -> Result<(), DropReason> {
    let ip = &mut d[l3..];
    let (src, dst) = (&ip[12..16], &ip[16..20]);
    let group_or_bcast = |a: &[u8]| a[0] >= 224 || a == [0, 0, 0, 0];
    if group_or_bcast(src) || group_or_bcast(dst) {
        return Err(NOT_UNICAST);
    }
    let old = u16::from_be_bytes([ip[8], ip[9]]);
    ip[8] = REPLY_TTL;
    let c = u16::from_be_bytes([ip[10], ip[11]]);
    let c = update16(c, old, u16::from_be_bytes([ip[8], ip[9]]));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let (a, b) = ip[12..20].split_at_mut(4);
    a.swap_with_slice(b);
    Ok(())
}

/// Swaps the IPv6 addresses at `l3` and sets the hop limit; refuses
/// multicast sources and destinations and an unspecified source.
fn reply_v6(d: &mut [u8], l3: usize) -> Result<(), DropReason> {
    let ip = &mut d[l3..];
    if ip[8] == 0xff || ip[24] == 0xff || ip[8..24] == [0; 16] {
        return Err(NOT_UNICAST);
    }
    ip[7] = REPLY_TTL;
    let (a, b) = ip[8..40].split_at_mut(16);
    a.swap_with_slice(b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Packet, Pool};
    use testkit::frame::{Frame, Ip, DST_MAC, SRC_MAC};

    const HOST4: [u8; 4] = [192, 168, 1, 2];
    const ROUTER4: [u8; 4] = [192, 168, 1, 1];

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    fn run(frames: &[Vec<u8>]) -> Output {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(1, DROP_REASONS.len());
        let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        IcmpEchoResponder.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        out
    }

    #[test]
    fn an_ipv4_request_becomes_the_independently_built_reply() {
        let req = Frame::echo(Ip::v4(HOST4, ROUTER4), 0x1234, 7)
            .payload(b"abcdefgh")
            .ttl(63)
            .build();
        let want = Frame::echo_reply(Ip::v4(ROUTER4, HOST4), 0x1234, 7)
            .payload(b"abcdefgh")
            .ttl(REPLY_TTL)
            .macs(DST_MAC, SRC_MAC)
            .build();
        let out = run(&[req]);
        assert_eq!(out.batch(0)[0].data(), &want[..]);
    }

    #[test]
    fn an_ipv6_request_behind_a_vlan_tag_becomes_the_reply() {
        let (host, router) = (v6("2001:db8:1::2"), v6("2001:db8:1::1"));
        let req = Frame::echo(Ip::v6(host, router), 9, 1)
            .payload(b"ping6")
            .ttl(1)
            .vlan(7)
            .build();
        let want = Frame::echo_reply(Ip::v6(router, host), 9, 1)
            .payload(b"ping6")
            .ttl(REPLY_TTL)
            .vlan(7)
            .macs(DST_MAC, SRC_MAC)
            .build();
        let out = run(&[req]);
        assert_eq!(out.batch(0)[0].data(), &want[..]);
    }

    #[test]
    fn other_packets_are_dropped_by_reason() {
        let (host, router) = (v6("2001:db8:1::2"), v6("2001:db8:1::1"));
        let frames = [
            Frame::echo_reply(Ip::v4(HOST4, ROUTER4), 1, 1).build(),
            Frame::udp(Ip::v4(HOST4, ROUTER4), 1, 7).build(),
            Frame::echo(Ip::v4(HOST4, ROUTER4), 1, 1)
                .fragment(0, true)
                .build(),
            Frame::icmp(Ip::v6(host, router), 135).build(),
            Frame::echo(Ip::v4(HOST4, [192, 168, 1, 255]), 1, 1).build(),
            Frame::echo(Ip::v4(HOST4, [224, 0, 0, 1]), 1, 1).build(),
            Frame::echo(Ip::v6(host, v6("ff02::1")), 1, 1).build(),
            Frame::echo(Ip::v6(v6("::"), router), 1, 1).build(),
            Frame::ether(0x0806).payload(&[0; 28]).build(),
        ];
        let out = run(&frames);
        assert_eq!(out.drops(NOT_ECHO), 5);
        assert_eq!(out.drops(NOT_UNICAST), 3);
        // A subnet broadcast looks like unicast here: the Classify rule in
        // front names the router's own addresses.
        assert_eq!(out.batch(0).len(), 1);
    }

    #[test]
    fn every_truncation_is_dropped_without_panic() {
        let (host, router) = (v6("2001:db8:1::2"), v6("2001:db8:1::1"));
        for f in [
            Frame::echo(Ip::v4(HOST4, ROUTER4), 1, 1).build(),
            Frame::echo(Ip::v6(host, router), 1, 1).build(),
        ] {
            let frames: Vec<Vec<u8>> = (0..f.len()).map(|n| f[..n].to_vec()).collect();
            let out = run(&frames);
            assert!(out.batch(0).is_empty(), "no reply to a cut request");
            assert_eq!(out.drops(MALFORMED) + out.drops(NOT_ECHO), f.len() as u64);
        }
    }
}
