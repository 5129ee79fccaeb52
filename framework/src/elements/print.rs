//! `Print`: logs a one-line summary of packets passing through, rate-limited.
//!
//! [`summarize`] is the tcpdump-like formatter, shared with tools that dump packets.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::{Batch, MAX_FRAME};
use crate::wire::tcp_flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};
use crate::wire::{be16, FragKind, Headers, L3Kind, ParseStatus};
use crate::wire::{
    EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket, VlanTag,
};
use crate::wire::{ETHERTYPE_ARP, ETH_HLEN, VLAN_HLEN};
use crate::wire::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// The `log` target Print writes to.
pub const LOG_TARGET: &str = "hpio_nf::print";

const NS_PER_SEC: u64 = 1_000_000_000;

hpio_nf::counters! {
    COUNTERS = [
        PRINTED = "printed": "Packets printed (or that would be, if the logger showed them)",
        SUPPRESSED = "suppressed": "Packets passed without printing because of the rate limit",
    ]
}

/// The `Print` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Print",
        summary: "Logs a one-line summary of packets passing through (rate-limited)",
        description: "\
Passes every packet to output 0 unchanged and logs a tcpdump-like line for it
at level info, log target `hpio_nf::print` (shown with RUST_LOG=info or
RUST_LOG=hpio_nf::print=info):

    label: 98 bytes 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.0.0.1:1234 > 10.0.0.2:80 TCP [S]

The line names the frame length, the Ethernet addresses, any VLAN tags
(`vlan 10`), then IPv4/IPv6 addresses with TCP (flags as tcpdump prints them:
S F R P U E W, `.` for ACK), UDP or ICMP/ICMPv6 (message name) details, an ARP
summary, or the ethertype. A header cut short or inconsistent shows as
`malformed`; a non-first fragment as `fragment`. With `bytes = N`, the first N
bytes of the frame follow in hex.

Rate limit: at most `max_per_sec` packets are printed per second and worker (the
window restarts with the first packet after it ends); the others pass through
unprinted and are counted as `suppressed`. Lines are only formatted when the
logger shows info messages for the target, so a disabled Print costs a
counter update per batch.

Notes: printing is for debugging; each printed packet allocates its line.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[
            ParamSpec {
                name: "label",
                ty: ParamType::Str,
                need: Need::Default("\"\""),
                doc: "Text put in front of each line (nothing when empty)",
            },
            ParamSpec {
                name: "max_per_sec",
                ty: ParamType::UINT,
                need: Need::Default("10"),
                doc: "Most packets printed per second and worker; 0 prints every packet",
            },
            ParamSpec {
                name: "bytes",
                ty: ParamType::Int {
                    min: 0,
                    max: MAX_FRAME as i64,
                },
                need: Need::Default("0"),
                doc: "Also print the first N bytes of the frame in hex",
            },
        ],
        drop_reasons: &[],
        counters: COUNTERS,
        handlers: &[],
        example: "\
[elements.show]
class = \"Print\"
label = \"in\"
max_per_sec = 5
bytes = 32",
        see_also: &["Counter"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let label = p.str("label")?.to_string();
    let max_per_sec = u64::try_from(p.int("max_per_sec")?)
        .map_err(|_| ParamError::new("max_per_sec", "expected an integer >= 0"))?;
    let bytes = p.usize("bytes")?;
    if bytes > MAX_FRAME {
        return Err(ParamError::new(
            "bytes",
            format!("expected an integer in 0..={MAX_FRAME}, found {bytes}"),
        ));
    }
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        1,
        Print::new(label, max_per_sec, bytes),
    ))
}

/// Logs summaries of the packets passing through, at most `max_per_sec` a second.
#[derive(Debug, Clone)]
pub struct Print {
    label: String,
    /// 0: no limit.
    max_per_sec: u64,
    bytes: usize,
    /// End of the current one-second window (0: none open yet).
    win_end: u64,
    in_window: u64,
    printed: u64,
    suppressed: u64,
}

impl Print {
    /// A printer prefixing lines with `label`, printing at most `max_per_sec`
    /// packets a second (0: all) with the first `bytes` frame bytes in hex.
    pub fn new(label: String, max_per_sec: u64, bytes: usize) -> Print {
        Print {
            label,
            max_per_sec,
            bytes,
            win_end: 0,
            in_window: 0,
            printed: 0,
            suppressed: 0,
        }
    }

    /// How many of `n` packets arriving at `now` may be printed; counts them.
    #[inline]
    fn admit(&mut self, now: u64, n: u64) -> u64 {
        if self.max_per_sec == 0 {
            self.printed += n;
            return n;
        }
        if now >= self.win_end {
            self.win_end = now.saturating_add(NS_PER_SEC);
            self.in_window = 0;
        }
        let allow = self.max_per_sec.saturating_sub(self.in_window).min(n);
        self.in_window += allow;
        self.printed += allow;
        self.suppressed += n - allow;
        allow
    }

    /// The line printed for a frame.
    fn line(&self, frame: &[u8]) -> String {
        let mut s = String::with_capacity(96 + 3 * self.bytes);
        if !self.label.is_empty() {
            s.push_str(&self.label);
            s.push_str(": ");
        }
        write_summary(&mut s, frame);
        let n = self.bytes.min(frame.len());
        if n > 0 {
            s.push_str(" |");
            for (i, b) in frame[..n].iter().enumerate() {
                if i % 2 == 0 {
                    s.push(' ');
                }
                let _ = write!(s, "{b:02x}");
            }
        }
        s
    }
}

impl Element for Print {
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        let allow = self.admit(cx.now(), batch.len() as u64) as usize;
        if allow > 0 && log::log_enabled!(target: LOG_TARGET, log::Level::Info) {
            for pkt in &batch[..allow] {
                log::info!(target: LOG_TARGET, "{}", self.line(pkt.data()));
            }
        }
        out.push_all(0, batch);
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(PRINTED, self.printed);
        report(SUPPRESSED, self.suppressed);
    }
}

/// A one-line, tcpdump-like summary of an Ethernet frame:
/// `98 bytes 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.0.0.1:1234 > 10.0.0.2:80 TCP [S]`.
///
/// Never panics, whatever the bytes; headers cut short or inconsistent show as `malformed`.
pub fn summarize(pkt_bytes: &[u8]) -> String {
    let mut s = String::with_capacity(96);
    write_summary(&mut s, pkt_bytes);
    s
}

fn write_summary(s: &mut String, f: &[u8]) {
    let _ = write!(s, "{} bytes", f.len());
    let Ok(eth) = EthernetFrame::new_checked(f) else {
        s.push_str(" malformed");
        return;
    };
    s.push(' ');
    mac(s, &eth.src_addr());
    s.push_str(" > ");
    mac(s, &eth.dst_addr());
    let h = Headers::parse(f);
    vlans(s, f, h.vlan_tags as usize);
    if h.status == ParseStatus::L2Truncated {
        s.push_str(" malformed");
        return;
    }
    let l3 = f.get(h.l3_off as usize..).unwrap_or_default();
    match h.l3 {
        L3Kind::Ipv4 => s.push_str(" IPv4"),
        L3Kind::Ipv6 => s.push_str(" IPv6"),
        L3Kind::Other if h.ethertype == ETHERTYPE_ARP => return arp(s, l3),
        L3Kind::Other => {
            let _ = write!(s, " ethertype 0x{:04x}", h.ethertype);
            return;
        }
    }
    let addrs = match h.l3 {
        L3Kind::Ipv4 => Ipv4Packet::new_checked(l3)
            .map(|ip| (IpAddr::from(ip.src_addr()), IpAddr::from(ip.dst_addr()))),
        _ => Ipv6Packet::new_checked(l3)
            .map(|ip| (IpAddr::from(ip.src_addr()), IpAddr::from(ip.dst_addr()))),
    };
    let (src, dst) = match addrs {
        Ok(a) if h.status != ParseStatus::L3Malformed => a,
        _ => {
            s.push_str(" malformed");
            return;
        }
    };
    transport(s, f, &h, src, dst);
}

/// The `tags` VLAN tags after the MAC addresses (`Headers::parse` counts a
/// tag only once the whole tag is in the frame).
fn vlans(s: &mut String, f: &[u8], tags: usize) {
    for i in 0..tags {
        let tag = f
            .get(ETH_HLEN - 2 + i * VLAN_HLEN..)
            .map(VlanTag::new_checked);
        if let Some(Ok(tag)) = tag {
            let _ = write!(s, " vlan {}", tag.vlan_id());
            if tag.priority() != 0 {
                let _ = write!(s, " p {}", tag.priority());
            }
        }
    }
}

/// The addresses with their ports and the transport protocol, or what
/// stands in for them (ICMP type, `fragment`, `malformed`).
fn transport(s: &mut String, f: &[u8], h: &Headers, src: IpAddr, dst: IpAddr) {
    let proto = h.l4_proto;
    let l4 = f.get(h.l4_off as usize..).unwrap_or_default();
    let name = match proto {
        IPPROTO_TCP => "TCP",
        IPPROTO_UDP => "UDP",
        IPPROTO_ICMP => "ICMP",
        IPPROTO_ICMPV6 => "ICMPv6",
        _ => "",
    };
    let ports = match proto {
        IPPROTO_TCP => TcpPacket::new_checked(l4)
            .ok()
            .map(|t| (t.src_port(), t.dst_port(), Some(t.flags()))),
        IPPROTO_UDP => UdpPacket::new_checked(l4)
            .ok()
            .map(|u| (u.src_port(), u.dst_port(), None)),
        _ => None,
    };
    if let (true, Some((sp, dp, flags))) = (h.has_l4, ports) {
        let _ = write!(
            s,
            " {} > {} {name}",
            SocketAddr::new(src, sp),
            SocketAddr::new(dst, dp)
        );
        if let Some(flags) = flags {
            tcp_flags(s, flags);
        }
        return;
    }
    let _ = write!(s, " {src} > {dst}");
    if name.is_empty() {
        let _ = write!(s, " proto {proto}");
    } else {
        let _ = write!(s, " {name}");
    }
    match IcmpPacket::new_checked(l4) {
        // ICMP or ICMPv6 (the only other protocols with has_l4).
        Ok(i) if h.has_l4 => icmp(s, proto, i.msg_type(), i.msg_code()),
        _ if h.status == ParseStatus::L4Truncated => s.push_str(" malformed"),
        _ if h.frag == FragKind::Later => s.push_str(" fragment"),
        _ => {}
    }
}

fn mac(s: &mut String, m: &[u8]) {
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// Flags in tcpdump's order and letters; ACK prints as `.`.
fn tcp_flags(s: &mut String, flags: u8) {
    const NAMES: [(u8, char); 8] = [
        (FIN, 'F'),
        (SYN, 'S'),
        (RST, 'R'),
        (PSH, 'P'),
        (ACK, '.'),
        (URG, 'U'),
        (ECE, 'E'),
        (CWR, 'W'),
    ];
    s.push_str(" [");
    if flags == 0 {
        s.push_str("none");
    }
    for (bit, c) in NAMES {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s.push(']');
}

fn icmp(s: &mut String, proto: u8, ty: u8, code: u8) {
    let name = match (proto, ty) {
        (IPPROTO_ICMP, 0) => "echo-reply",
        (IPPROTO_ICMP, 3) => "unreachable",
        (IPPROTO_ICMP, 5) => "redirect",
        (IPPROTO_ICMP, 8) => "echo-request",
        (IPPROTO_ICMP, 11) => "time-exceeded",
        (IPPROTO_ICMPV6, 1) => "unreachable",
        (IPPROTO_ICMPV6, 2) => "packet-too-big",
        (IPPROTO_ICMPV6, 3) => "time-exceeded",
        (IPPROTO_ICMPV6, 128) => "echo-request",
        (IPPROTO_ICMPV6, 129) => "echo-reply",
        (IPPROTO_ICMPV6, 133) => "router-solicit",
        (IPPROTO_ICMPV6, 134) => "router-advert",
        (IPPROTO_ICMPV6, 135) => "neighbor-solicit",
        (IPPROTO_ICMPV6, 136) => "neighbor-advert",
        _ => "",
    };
    if name.is_empty() {
        let _ = write!(s, " type {ty} code {code}");
    } else {
        let _ = write!(s, " {name}");
        if code != 0 {
            let _ = write!(s, " code {code}");
        }
    }
}

/// Ethernet/IPv4 ARP: `ARP who-has 10.0.0.2 tell 10.0.0.1`, `ARP reply 10.0.0.2 is-at MAC`.
fn arp(s: &mut String, a: &[u8]) {
    // htype(2) ptype(2) hlen(1) plen(1) oper(2) sha(6) spa(4) tha(6) tpa(4)
    const LEN: usize = 28;
    s.push_str(" ARP");
    if a.len() < LEN || be16(a, 0) != 1 || be16(a, 2) != 0x0800 || a[4] != 6 || a[5] != 4 {
        s.push_str(" malformed");
        return;
    }
    let (sha, spa, tpa) = (&a[8..14], ipv4(&a[14..18]), ipv4(&a[24..28]));
    match be16(a, 6) {
        1 => {
            let _ = write!(s, " who-has {tpa} tell {spa}");
        }
        2 => {
            let _ = write!(s, " reply {spa} is-at ");
            mac(s, sha);
        }
        op => {
            let _ = write!(s, " op {op} {spa} > {tpa}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};
    use testkit::frame::{Frame, Ip, ARP_REPLY, ARP_REQUEST, TCP_ACK, TCP_SYN};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const MACS: &str = "02:00:00:00:00:01 > 02:00:00:00:00:02";

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    fn tcp4_syn() -> Vec<u8> {
        Frame::tcp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80, TCP_SYN)
            .payload(&[0; 44])
            .build()
    }

    fn udp6_qinq() -> Vec<u8> {
        Frame::udp(Ip::v6(v6("2001:db8::1"), v6("2001:db8::2")), 5353, 53)
            .vlan(100)
            .vlan(7)
            .payload(b"abc")
            .build()
    }

    fn arp_request() -> Vec<u8> {
        Frame::arp(ARP_REQUEST, (A, [10, 0, 0, 1]), ([0; 6], [10, 0, 0, 2])).build()
    }

    #[test]
    fn summarizes_tcp_over_ipv4() {
        let f = tcp4_syn();
        assert_eq!(f.len(), 98);
        assert_eq!(
            summarize(&f),
            format!("98 bytes {MACS} IPv4 10.0.0.1:1234 > 10.0.0.2:80 TCP [S]")
        );
        let f = Frame::tcp(
            Ip::v4([10, 0, 0, 2], [10, 0, 0, 1]),
            80,
            1234,
            TCP_SYN | TCP_ACK,
        )
        .seq(1, 2, 1000)
        .build();
        assert!(summarize(&f).ends_with("10.0.0.2:80 > 10.0.0.1:1234 TCP [S.]"));
    }

    #[test]
    fn summarizes_udp_over_ipv6_with_two_vlan_tags() {
        let got = summarize(&udp6_qinq());
        assert_eq!(
            got,
            format!(
                "{} bytes {MACS} vlan 100 vlan 7 IPv6 [2001:db8::1]:5353 > [2001:db8::2]:53 UDP",
                udp6_qinq().len()
            )
        );
    }

    #[test]
    fn summarizes_icmp_and_icmpv6() {
        let f = Frame::echo(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1, 2)
            .vlan(42)
            .payload(&[0; 56])
            .build();
        assert_eq!(
            summarize(&f),
            format!(
                "{} bytes {MACS} vlan 42 IPv4 10.0.0.1 > 10.0.0.2 ICMP echo-request",
                f.len()
            )
        );
        let f = Frame::icmp(Ip::v6(v6("fe80::1"), v6("ff02::1")), 135)
            .macs(A, B)
            .ttl(255)
            .payload(&[0; 16])
            .build();
        assert!(summarize(&f).ends_with("IPv6 fe80::1 > ff02::1 ICMPv6 neighbor-solicit"));
    }

    #[test]
    fn summarizes_arp_and_other_ethertypes() {
        let f = arp_request();
        assert_eq!(
            summarize(&f),
            format!(
                "{} bytes 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP who-has 10.0.0.2 tell 10.0.0.1",
                f.len()
            )
        );
        let reply = Frame::arp(ARP_REPLY, (A, [10, 0, 0, 1]), (B, [10, 0, 0, 2])).build();
        assert!(summarize(&reply).ends_with("ARP reply 10.0.0.1 is-at 02:00:00:00:00:01"));
        let lldp = Frame::ether(0x88cc).pad(60).build();
        assert!(summarize(&lldp).ends_with(" ethertype 0x88cc"));
    }

    #[test]
    fn fragments_and_other_protocols() {
        let syn = Frame::tcp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80, TCP_SYN);
        let f = syn.fragment(16, false).payload(&[0; 44]).build();
        assert!(summarize(&f).ends_with("IPv4 10.0.0.1 > 10.0.0.2 TCP fragment"));
        let f = Frame::raw(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 47).build(); // GRE
        assert!(summarize(&f).ends_with("IPv4 10.0.0.1 > 10.0.0.2 proto 47"));
    }

    #[test]
    fn truncated_frames_say_malformed_and_never_panic() {
        let frames = [tcp4_syn(), udp6_qinq(), arp_request()];
        for f in &frames {
            for n in 0..f.len() {
                let s = summarize(&f[..n]);
                assert!(s.starts_with(&format!("{n} bytes")), "{s}");
                assert!(s.ends_with("malformed"), "cut at {n}: {s}");
            }
        }
        assert_eq!(summarize(&[]), "0 bytes malformed");
        // A TCP header cut short inside a consistent IP packet.
        let syn = Frame::tcp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1234, 80, TCP_SYN);
        let f = syn.ip_len(30).cut(14 + 20 + 10).build();
        assert!(summarize(&f).ends_with("IPv4 10.0.0.1 > 10.0.0.2 TCP malformed"));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = testkit::rng::Rng::new(0x9e37_79b9);
        for _ in 0..20_000 {
            let mut f = [0u8; 96];
            rng.fill(&mut f);
            let x = rng.next_u64();
            let (et, v): ([u8; 2], u8) = match x % 4 {
                0 => ([0x08, 0x00], 0x45),
                1 => ([0x86, 0xdd], 0x60),
                2 => ([0x08, 0x06], 0x00),
                _ => ([0x81, 0x00], f[14]),
            };
            f[12..14].copy_from_slice(&et);
            f[14] = v;
            let len = (x as usize >> 8) % (f.len() + 1);
            let _ = summarize(&f[..len]);
        }
    }

    #[test]
    fn line_has_label_and_hex_bytes() {
        let p = Print::new("in".into(), 10, 5);
        let f = tcp4_syn();
        assert_eq!(p.line(&f), format!("in: {} | 0200 0000 00", summarize(&f)));
        let p = Print::new(String::new(), 10, 4000);
        assert_eq!(p.line(&[1, 2, 3]), "3 bytes malformed | 0102 03");
    }

    fn run(p: &mut Print, now: u64, n: usize) -> usize {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, now, 0);
        let mut out = Output::new(1, 0);
        let mut b: Batch = (0..n).map(|_| Packet::from_bytes(&tcp4_syn())).collect();
        p.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        out.batch(0).len()
    }

    fn stats(p: &Print) -> (u64, u64) {
        let mut v = (0, 0);
        p.stats(&mut |k, n| match k {
            "printed" => v.0 = n,
            "suppressed" => v.1 = n,
            _ => panic!("unexpected counter {k}"),
        });
        v
    }

    #[test]
    fn rate_limit_passes_everything_and_counts_suppressed() {
        const S: u64 = NS_PER_SEC;
        let mut p = Print::new(String::new(), 10, 0);
        assert_eq!(run(&mut p, 100 * S, 6), 6);
        assert_eq!(run(&mut p, 100 * S + S / 2, 6), 6);
        assert_eq!(stats(&p), (10, 2));
        assert_eq!(run(&mut p, 100 * S + 9 * S / 10, 3), 3);
        assert_eq!(stats(&p), (10, 5));
        // A new window opens at 101 s.
        assert_eq!(run(&mut p, 101 * S, 4), 4);
        assert_eq!(stats(&p), (14, 5));
        // A window also opens when the clock starts at 0.
        let mut p = Print::new(String::new(), 2, 0);
        run(&mut p, 0, 3);
        run(&mut p, S - 1, 1);
        run(&mut p, S, 1);
        assert_eq!(stats(&p), (3, 2));
        // 0: no limit.
        let mut p = Print::new(String::new(), 0, 0);
        run(&mut p, 0, 100);
        assert_eq!(stats(&p), (100, 0));
    }

    /// Records this thread's lines for Print's target (tests run on many threads).
    struct Capture;

    thread_local! {
        static LINES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.target() == LOG_TARGET && m.level() <= log::Level::Info
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                LINES.with(|l| l.borrow_mut().push(r.args().to_string()));
            }
        }
        fn flush(&self) {}
    }

    #[test]
    fn logs_the_admitted_packets_at_info() {
        static CAPTURE: Capture = Capture;
        if log::set_logger(&CAPTURE).is_err() {
            // Another test installed a logger first; nothing to observe here.
            return;
        }
        log::set_max_level(log::LevelFilter::Info);
        let mut p = Print::new("lan".into(), 2, 0);
        run(&mut p, 0, 3);
        let lines = LINES.with(|l| l.borrow().clone());
        let want = format!("lan: {}", summarize(&tcp4_syn()));
        assert_eq!(lines, [want.clone(), want]);
    }

    #[test]
    fn configure_checks_params() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("label", Value::Str("x".into()))
            .set("max_per_sec", Value::Int(10))
            .set("bytes", Value::Int(16));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 1));
        p.set("bytes", Value::Int(-1));
        assert_eq!((CLASS.configure)(&p, &cx).unwrap_err().param, "bytes");
        p.set("bytes", Value::Int(0))
            .set("max_per_sec", Value::Int(-3));
        assert_eq!((CLASS.configure)(&p, &cx).unwrap_err().param, "max_per_sec");
    }
}
