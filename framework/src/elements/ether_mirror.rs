//! `EtherMirror`: sends each frame back where it came from by swapping addresses.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;
use crate::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, L3Kind, TcpPacket, UdpPacket};
use crate::wire::{ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// The frame is shorter than an Ethernet header.
        TOO_SHORT = "too-short",
    ]
}

/// The `EtherMirror` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "EtherMirror",
        summary: "Swaps Ethernet source and destination addresses (a reflector)",
        description: "\
Swaps the Ethernet source and destination addresses of every frame and sends it
to output 0, so that a frame sent back out of the port it came in on returns to
its sender. With `ip = true` it also swaps the IPv4 or IPv6 source and
destination addresses and, when the packet carries a complete TCP or UDP header
(first fragments and unfragmented packets), the source and destination ports.

Checksums stay valid without being recomputed: the IPv4 header checksum and the
TCP/UDP/ICMPv6 checksums (whose pseudo-header includes both addresses) are
ones'-complement sums of 16-bit words, and swapping two aligned fields only
reorders the words being summed.

Frames of IP packets whose IP header is malformed get their Ethernet addresses
swapped only. VLAN tags are left as they are.

Notes: frames shorter than an Ethernet header (14 bytes) are dropped with reason
`too-short`. Used as a reflector in benchmarks (`eth0 -> mirror -> eth0`) and
to answer a traffic generator.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[ParamSpec {
            name: "ip",
            ty: ParamType::Bool,
            need: Need::Default("false"),
            doc: "Also swap IP addresses and TCP/UDP ports",
        }],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: &[],
        example: "\
[elements.reflect]
class = \"EtherMirror\"
ip = true",
        see_also: &["Forward"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let ip = p.bool("ip")?;
    Ok(Configured::cloning(Inputs::Fixed(1), 1, EtherMirror { ip }))
}

/// Swaps Ethernet (and optionally IP and port) source and destination.
#[derive(Debug, Clone)]
pub struct EtherMirror {
    ip: bool,
}

impl Element for EtherMirror {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            if pkt.len() < ETH_HLEN {
                out.drop(pkt, TOO_SHORT);
                continue;
            }
            if self.ip {
                let h = pkt.headers();
                if h.is_ip() {
                    let d = pkt.data_mut();
                    // Swapping reorders the 16-bit words of each checksum's
                    // input without changing them, so every checksum stays valid.
                    if let Some(l3) = d.get_mut(h.l3_off as usize..) {
                        mirror_ip(h.l3, l3);
                    }
                    if h.has_l4 {
                        if let Some(l4) = d.get_mut(h.l4_off as usize..) {
                            mirror_ports(h.l4_proto, l4);
                        }
                    }
                }
            }
            if let Ok(mut eth) = EthernetFrame::new_checked(pkt.data_mut()) {
                let (src, dst) = (eth.src_addr(), eth.dst_addr());
                eth.set_src_addr(dst);
                eth.set_dst_addr(src);
            }
            out.push(0, pkt);
        }
    }
}

/// Swaps the source and destination addresses of the IP header at the start of `l3`.
#[inline]
fn mirror_ip(kind: L3Kind, l3: &mut [u8]) {
    match kind {
        L3Kind::Ipv4 => {
            if let Ok(mut ip) = Ipv4Packet::new_checked(l3) {
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                ip.set_src_addr(dst);
                ip.set_dst_addr(src);
            }
        }
        L3Kind::Ipv6 => {
            if let Ok(mut ip) = Ipv6Packet::new_checked(l3) {
                let (src, dst) = (ip.src_addr(), ip.dst_addr());
                ip.set_src_addr(dst);
                ip.set_dst_addr(src);
            }
        }
        L3Kind::Other => {}
    }
}

/// Swaps the ports of the TCP or UDP header at the start of `l4`.
#[inline]
fn mirror_ports(proto: u8, l4: &mut [u8]) {
    match proto {
        IPPROTO_TCP => {
            if let Ok(mut t) = TcpPacket::new_checked(l4) {
                let (src, dst) = (t.src_port(), t.dst_port());
                t.set_src_port(dst);
                t.set_dst_port(src);
            }
        }
        IPPROTO_UDP => {
            if let Ok(mut u) = UdpPacket::new_checked(l4) {
                let (src, dst) = (u.src_port(), u.dst_port());
                u.set_src_port(dst);
                u.set_dst_port(src);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};
    use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
    use testkit::frame::{Frame, Ip, TCP_SYN};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn mirror(ip: bool, frames: &[Vec<u8>]) -> Output {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(1, 1);
        let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        EtherMirror { ip }.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        out
    }

    fn tcp4() -> Vec<u8> {
        Frame::tcp(Ip::v4([10, 0, 0, 1], [192, 168, 7, 9]), 1234, 80, TCP_SYN)
            .seq(77, 0, 1000)
            .payload(b"hello world")
            .build()
    }

    fn udp6() -> Vec<u8> {
        let src: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let dst: [u8; 16] = "2001:db8:ff::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        Frame::udp(Ip::v6(src, dst), 5353, 53)
            .vlan(5)
            .payload(b"query!!")
            .build()
    }

    fn eth(f: &[u8]) -> ([u8; 6], [u8; 6]) {
        match PacketHeaders::from_ethernet_slice(f).unwrap().link {
            Some(etherparse::LinkHeader::Ethernet2(e)) => (e.source, e.destination),
            other => panic!("no ethernet header: {other:?}"),
        }
    }

    #[test]
    fn swaps_ethernet_only_by_default() {
        let f = tcp4();
        let out = mirror(false, std::slice::from_ref(&f));
        let got = out.batch(0)[0].data();
        assert_eq!(eth(got), (B, A));
        assert_eq!(&got[ETH_HLEN..], &f[ETH_HLEN..], "IP untouched");
    }

    #[test]
    fn swaps_ipv4_and_tcp_keeping_checksums_valid() {
        let out = mirror(true, &[tcp4()]);
        let got = out.batch(0)[0].data();
        assert_eq!(eth(got), (B, A));
        let h = PacketHeaders::from_ethernet_slice(got).unwrap();
        let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!("not ipv4")
        };
        assert_eq!(
            (ip.source, ip.destination),
            ([192, 168, 7, 9], [10, 0, 0, 1])
        );
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let Some(TransportHeader::Tcp(tcp)) = h.transport else {
            panic!("not tcp")
        };
        assert_eq!((tcp.source_port, tcp.destination_port), (80, 1234));
        assert!(tcp.syn);
        let payload = h.payload.slice();
        assert_eq!(payload, b"hello world");
        assert_eq!(tcp.checksum, tcp.calc_checksum_ipv4(&ip, payload).unwrap());
    }

    #[test]
    fn swaps_ipv6_and_udp_behind_a_vlan_tag_keeping_checksums_valid() {
        let f = udp6();
        let out = mirror(true, &[f]);
        let got = out.batch(0)[0].data();
        assert_eq!(eth(got), (B, A));
        let h = PacketHeaders::from_ethernet_slice(got).unwrap();
        let Some(NetHeaders::Ipv6(ip, _)) = h.net else {
            panic!("not ipv6")
        };
        assert_eq!(
            std::net::Ipv6Addr::from(ip.source).to_string(),
            "2001:db8:ff::2"
        );
        assert_eq!(
            std::net::Ipv6Addr::from(ip.destination).to_string(),
            "2001:db8::1"
        );
        let Some(TransportHeader::Udp(udp)) = h.transport else {
            panic!("not udp")
        };
        assert_eq!((udp.source_port, udp.destination_port), (53, 5353));
        let payload = h.payload.slice();
        assert_eq!(udp.checksum, udp.calc_checksum_ipv6(&ip, payload).unwrap());
    }

    #[test]
    fn icmp_keeps_its_payload_and_checksum() {
        let f = Frame::echo(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 7, 1)
            .payload(b"ping")
            .build();
        let out = mirror(true, std::slice::from_ref(&f));
        let got = out.batch(0)[0].data();
        let h = PacketHeaders::from_ethernet_slice(got).unwrap();
        let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!("not ipv4")
        };
        assert_eq!((ip.source, ip.destination), ([10, 0, 0, 2], [10, 0, 0, 1]));
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(&got[34..], &f[34..], "ICMP header and payload untouched");
    }

    #[test]
    fn short_frames_are_dropped_and_malformed_ip_only_loses_its_macs() {
        let mut bad = tcp4();
        bad[14] = 0x41; // IHL of 4 bytes: malformed
        let out = mirror(true, &[vec![1; 13], bad.clone(), vec![9; 14]]);
        assert_eq!(out.drops(TOO_SHORT), 1);
        let got = out.batch(0);
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0].data()[..6], &bad[6..12]);
        assert_eq!(&got[0].data()[6..12], &bad[..6]);
        assert_eq!(&got[0].data()[12..], &bad[12..]);
        assert_eq!(got[1].data(), &[9; 14]);
    }

    #[test]
    fn every_truncation_is_handled_without_panic() {
        for f in [tcp4(), udp6()] {
            let frames: Vec<Vec<u8>> = (0..=f.len()).map(|n| f[..n].to_vec()).collect();
            let out = mirror(true, &frames);
            assert_eq!(out.drops(TOO_SHORT), ETH_HLEN as u64);
            assert_eq!(out.batch(0).len(), f.len() + 1 - ETH_HLEN);
        }
    }

    #[test]
    fn configure_reads_ip() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("ip", Value::Bool(true));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 1));
        assert!((CLASS.configure)(&Params::new(), &cx).is_err());
    }
}
