//! `DecIpTtl`: decrements the IPv4 TTL or IPv6 hop limit of forwarded packets.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;
use crate::wire::checksum::update16;
use crate::wire::{L3Kind, ParseStatus};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Neither IPv4 nor IPv6.
        NOT_IP = "not-ip",
        /// The IP header is cut short or inconsistent.
        MALFORMED = "malformed",
        /// An IPv4 packet longer than `mtu` that may be fragmented (this
        /// element does not fragment).
        NEEDS_FRAGMENTING = "needs-fragmenting",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        EXPIRED = "expired": "Packets whose TTL or hop limit ran out (sent to output 1)",
        TOO_BIG = "too-big": "Packets longer than `mtu` that may not be fragmented (output 2)",
    ]
}

/// The `DecIpTtl` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "DecIpTtl",
        summary: "Decrements the IPv4 TTL or IPv6 hop limit; expired packets to output 1",
        description: "\
What a router does to every packet it forwards (RFC 1812 section 5.3.1, RFC
8200): a packet whose IPv4 TTL or IPv6 hop limit is 0 or 1 cannot be
forwarded and goes, unchanged, to output 1 (into an IcmpError sending
time-exceeded, which is what makes `traceroute` show the router); every
other packet leaves by output 0 with the field one lower. The IPv4 header
checksum is updated incrementally (RFC 1624), not recomputed. Frames that
are not IP, or whose IP header is cut short, are dropped and counted.

Notes: Click's DecIPTTL; place it after the route lookup and before the
neighbour resolver, so that packets for the router itself (handled before
the lookup) keep their TTL.

With `mtu` (the outgoing link's), a third output takes the packets whose IP
length exceeds it and that may not be fragmented (IPv4 with DF set, all
IPv6), unchanged, for IcmpError's input 2 (fragmentation needed / packet
too big, which path-MTU discovery relies on); longer IPv4 packets without
DF are dropped as `needs-fragmenting`.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Configured("2, or 3 with `mtu` (output 2: too big)"),
        params: &[ParamSpec {
            name: "mtu",
            ty: ParamType::Int {
                min: 68,
                max: 65535,
            },
            need: Need::Optional,
            doc: "MTU of the outgoing link: longer packets to output 2",
        }],
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: &[],
        example: "\
[elements.ttl]
class = \"DecIpTtl\"",
        see_also: &["IpLookup", "IcmpError"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let mtu = match p.get("mtu") {
        Some(_) => Some(p.usize("mtu")?),
        None => None,
    };
    let e = DecIpTtl {
        mtu: mtu.unwrap_or(usize::MAX),
        ..DecIpTtl::default()
    };
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        2 + usize::from(mtu.is_some()),
        e,
    ))
}

/// Decrements TTL / hop limit.
#[derive(Debug, Clone)]
pub struct DecIpTtl {
    /// `usize::MAX` without `mtu`.
    mtu: usize,
    expired: u64,
    too_big: u64,
}

impl Default for DecIpTtl {
    fn default() -> Self {
        DecIpTtl {
            mtu: usize::MAX,
            expired: 0,
            too_big: 0,
        }
    }
}

impl Element for DecIpTtl {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            let h = pkt.headers();
            if h.l3 == L3Kind::Other {
                out.drop(pkt, NOT_IP);
                continue;
            }
            if matches!(
                h.status,
                ParseStatus::L2Truncated | ParseStatus::L3Malformed
            ) {
                out.drop(pkt, MALFORMED);
                continue;
            }
            let l3 = usize::from(h.l3_off);
            // The TTL is byte 8 of an IPv4 header, the hop limit byte 7 of IPv6.
            let at = if h.l3 == L3Kind::Ipv4 { l3 + 8 } else { l3 + 7 };
            let ttl = pkt.data()[at];
            if ttl <= 1 {
                self.expired += 1;
                out.push(1, pkt);
                continue;
            }
            if self.mtu != usize::MAX {
                let d = pkt.data();
                let v4 = h.l3 == L3Kind::Ipv4;
                let len = if v4 {
                    usize::from(u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]))
                } else {
                    40 + usize::from(u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]))
                };
                if len > self.mtu {
                    if v4 && d[l3 + 6] & 0x40 == 0 {
                        out.drop(pkt, NEEDS_FRAGMENTING);
                    } else {
                        self.too_big += 1;
                        out.push(2, pkt);
                    }
                    continue;
                }
            }
            let d = pkt.data_mut();
            d[at] = ttl - 1;
            if h.l3 == L3Kind::Ipv4 {
                // The TTL is the high byte of the 16-bit word it shares with
                // the protocol: the word drops by 0x100.
                let word = u16::from_be_bytes([ttl, d[at + 1]]);
                let c = u16::from_be_bytes([d[l3 + 10], d[l3 + 11]]);
                let c = update16(c, word, word - 0x100);
                d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
            out.push(0, pkt);
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(EXPIRED, self.expired);
        report(TOO_BIG, self.too_big);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Packet, Pool};
    use etherparse::{NetHeaders, PacketHeaders};
    use testkit::frame::{Frame, Ip};

    fn run(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Output) {
        run_with(DecIpTtl::default(), frames)
    }

    fn run_with(mut e: DecIpTtl, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Output) {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(3, DROP_REASONS.len());
        let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        e.push(&mut cx, 0, &mut b, &mut out);
        let bytes = |o: &Output, i| o.batch(i).iter().map(|p| p.data().to_vec()).collect();
        (bytes(&out, 0), bytes(&out, 1), out)
    }

    #[test]
    fn decrements_with_a_checksum_etherparse_agrees_with() {
        let v4 = Ip::v4([10, 0, 0, 1], [192, 0, 2, 1]);
        let v6 = Ip::v6([0xfd; 16], [0x20; 16]);
        let mut frames = Vec::new();
        for ttl in [2u8, 64, 128, 255] {
            frames.push(Frame::udp(v4, 1, 2).ttl(ttl).build());
            frames.push(Frame::echo(v4, 7, 1).ttl(ttl).build());
        }
        frames.push(Frame::udp(v6, 1, 2).ttl(64).build());
        let (fwd, expired, _) = run(&frames);
        assert!(expired.is_empty());
        assert_eq!(fwd.len(), frames.len());
        for (before, after) in frames.iter().zip(&fwd) {
            let (b, a) = (
                PacketHeaders::from_ethernet_slice(before).unwrap(),
                PacketHeaders::from_ethernet_slice(after).unwrap(),
            );
            match (b.net.unwrap(), a.net.unwrap()) {
                (NetHeaders::Ipv4(b, _), NetHeaders::Ipv4(a, _)) => {
                    assert_eq!(a.time_to_live, b.time_to_live - 1);
                    assert_eq!(a.header_checksum, a.calc_header_checksum());
                }
                (NetHeaders::Ipv6(b, _), NetHeaders::Ipv6(a, _)) => {
                    assert_eq!(a.hop_limit, b.hop_limit - 1)
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn expired_packets_leave_unchanged_by_output_1() {
        let v4 = Ip::v4([10, 0, 0, 1], [192, 0, 2, 1]);
        let frames = vec![
            Frame::udp(v4, 1, 2).ttl(1).build(),
            Frame::udp(v4, 1, 2).ttl(0).build(),
            Frame::udp(Ip::v6([0xfd; 16], [0x20; 16]), 1, 2)
                .ttl(1)
                .build(),
            vec![0u8; 60],
        ];
        let (fwd, expired, out) = run(&frames);
        assert!(fwd.is_empty());
        assert_eq!(expired, frames[..3].to_vec());
        assert_eq!(out.drops(NOT_IP), 1);
    }

    #[test]
    fn packets_over_the_mtu_go_to_output_2_or_are_dropped_without_df() {
        let e = DecIpTtl {
            mtu: 1000,
            ..DecIpTtl::default()
        };
        let v4 = Ip::v4([10, 0, 0, 1], [192, 0, 2, 1]);
        let big = [0u8; 1000];
        let frames = vec![
            Frame::udp(v4, 1, 2).payload(&big).build(),
            Frame::udp(v4, 1, 2)
                .payload(&big)
                .dont_fragment(false)
                .build(),
            Frame::udp(Ip::v6([0xfd; 16], [0x20; 16]), 1, 2)
                .payload(&big)
                .build(),
            Frame::udp(v4, 1, 2).payload(&big[..972]).build(),
        ];
        let (fwd, _, out) = run_with(e, &frames);
        assert_eq!(fwd.len(), 1, "1000 bytes exactly pass");
        assert_eq!(out.batch(2).len(), 2);
        assert_eq!(out.batch(2)[0].data(), &frames[0][..], "unchanged");
        assert_eq!(out.drops(NEEDS_FRAGMENTING), 1);
    }
}
