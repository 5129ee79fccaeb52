//! An in-memory traffic generator port, for benchmarks and tests.
//!
//! Each receive queue produces Ethernet + IPv4/IPv6 + UDP/TCP frames of a
//! fixed size with a zero payload, every checksum correct. Flows vary over
//! consecutive source and destination ports, IP addresses and MAC addresses
//! (`*_count` parameters); flow `k` takes the source port fastest, then the
//! destination port, the source address, the destination address, the
//! source MAC and the destination MAC, so the flows cycle through every
//! combination, in order. Queue `q` of `n` cycles through flows
//! `q * flows / n` up to `(q + 1) * flows / n`, its own share of them as
//! RSS would give it (per-worker state, such as NAT mappings, sees each
//! flow on one worker only), and sends its share of `count`; without
//! `count` the port never ends. Timestamps are wall-clock nanoseconds,
//! read once per burst.
//!
//! Frames are built once at open. Per packet a queue takes a pool slot and
//! copies a prebuilt frame into it: with few flows (all their frames fit in
//! 256 KiB) it cycles through a table of its own flows' frames; with more
//! it copies the frame of the current addresses and writes the ports and
//! the transport checksum from precomputed partial sums, rewriting the
//! addresses (IP and MAC) and the IPv4 header checksum only when they
//! change. No allocation, lock or system call per packet; one clock read
//! per burst.
//! An empty pool ends a burst early; nothing is skipped.
//!
//! Packets sent to a generator port are counted and freed, like a wire
//! with nothing at the other end, so a graph can loop back into it.

mod frame;
mod queue;

use std::net::IpAddr;

use self::frame::{mac_num, min_size, parse_tcp_flags, Fragment, FrameSpec, Proto};
use self::queue::{flow_share, share_of_count, stride, PatchRx, SinkTx, TableRx, TABLE_BYTES};
use super::{OpenPort, PortClass, PortError, PortSpec, RxQueue, TxQueue};
use crate::params::Choice;
use crate::params::{Need, ParamError, ParamSpec, ParamType, Params};

/// The `generator` driver.
pub const CLASS: PortClass = PortClass {
    name: "generator",
    summary: "generates UDP/TCP over IPv4/IPv6 frames in memory (benchmarks, tests)",
    params: PARAMS,
    configure,
};

/// Frames need at least this many bytes (UDP over IPv4 headers).
const MIN_SIZE: i64 = 42;
/// Default frame size (grown to the headers' length for larger headers).
const DEFAULT_SIZE: usize = 64;
/// Most receive queues a generator port may have.
const MAX_QUEUES: i64 = 1024;
/// Most MAC addresses a `*_mac_count` may cycle through.
const MAX_MAC_COUNT: i64 = u32::MAX as i64;
/// The largest MAC address as a number.
const MAC_MAX: u64 = 0xffff_ffff_ffff;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "count",
        ty: ParamType::UINT,
        need: Need::Optional,
        doc: "packets to generate over all queues, then the port ends; endless when left out",
    },
    ParamSpec {
        name: "size",
        ty: ParamType::Int {
            min: MIN_SIZE,
            max: crate::packet::MAX_FRAME_LIMIT as i64,
        },
        need: Need::Optional,
        doc: "frame bytes without FCS (default 64, or the headers' length when larger); \
              at least 42 for UDP/IPv4, 54 TCP/IPv4, 62 UDP/IPv6, 74 TCP/IPv6",
    },
    ParamSpec {
        name: "proto",
        ty: ParamType::Choice(Proto::NAMES),
        need: Need::Default("\"udp\""),
        doc: "transport protocol",
    },
    ParamSpec {
        name: "src_mac",
        ty: ParamType::Mac,
        need: Need::Default("\"02:00:00:00:00:01\""),
        doc: "first Ethernet source address",
    },
    ParamSpec {
        name: "dst_mac",
        ty: ParamType::Mac,
        need: Need::Default("\"02:00:00:00:00:02\""),
        doc: "first Ethernet destination address",
    },
    ParamSpec {
        name: "src_mac_count",
        ty: ParamType::Int {
            min: 1,
            max: MAX_MAC_COUNT,
        },
        need: Need::Default("1"),
        doc: "consecutive source MAC addresses to cycle through, from src_mac \
              (the address read as a 48-bit number, last byte fastest)",
    },
    ParamSpec {
        name: "dst_mac_count",
        ty: ParamType::Int {
            min: 1,
            max: MAX_MAC_COUNT,
        },
        need: Need::Default("1"),
        doc: "consecutive destination MAC addresses to cycle through, from dst_mac",
    },
    ParamSpec {
        name: "src_ip",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "first source address (default 10.0.0.1, or fd00::1 when dst_ip is IPv6)",
    },
    ParamSpec {
        name: "dst_ip",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "first destination address, same family as src_ip \
              (default 10.0.0.2, or fd00::2 when src_ip is IPv6)",
    },
    ParamSpec {
        name: "src_ip_count",
        ty: ParamType::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        need: Need::Default("1"),
        doc: "consecutive source addresses to cycle through, from src_ip",
    },
    ParamSpec {
        name: "dst_ip_count",
        ty: ParamType::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        need: Need::Default("1"),
        doc: "consecutive destination addresses to cycle through, from dst_ip",
    },
    ParamSpec {
        name: "dst_ip_step",
        ty: ParamType::Int {
            min: 1,
            max: u32::MAX as i64,
        },
        need: Need::Default("1"),
        doc: "the k-th destination is dst_ip + (k * dst_ip_step mod dst_ip_count): a step \
              coprime with the count visits every address in a scattered order \
              (route lookup benchmarks)",
    },
    ParamSpec {
        name: "dst_ip_shift",
        ty: ParamType::Int { min: 0, max: 96 },
        need: Need::Default("0"),
        doc: "bit at which the destination index is added (64 over IPv6: one address \
              in each of dst_ip_count /64 networks)",
    },
    ParamSpec {
        name: "src_port",
        ty: ParamType::U16,
        need: Need::Default("1024"),
        doc: "first source port",
    },
    ParamSpec {
        name: "dst_port",
        ty: ParamType::U16,
        need: Need::Default("9"),
        doc: "first destination port (9: the discard service)",
    },
    ParamSpec {
        name: "src_port_count",
        ty: ParamType::Int { min: 1, max: 65536 },
        need: Need::Default("1"),
        doc: "consecutive source ports to cycle through, from src_port",
    },
    ParamSpec {
        name: "dst_port_count",
        ty: ParamType::Int { min: 1, max: 65536 },
        need: Need::Default("1"),
        doc: "consecutive destination ports to cycle through, from dst_port",
    },
    ParamSpec {
        name: "fragment",
        ty: ParamType::Choice(Fragment::NAMES),
        need: Need::Default("\"none\""),
        doc: "IPv4 fragments: `first` (more-fragments flag, offset 0) or `later` (offset 1480, \
              the transport header bytes then being data); with the source address or port \
              counts, a flood of new fragment keys",
    },
    ParamSpec {
        name: "queues",
        ty: ParamType::Int {
            min: 1,
            max: MAX_QUEUES,
        },
        need: Need::Default("1"),
        doc: "independent receive queues (spread over the workers); count and the flows are split among them, each flow on one queue as RSS would",
    },
    ParamSpec {
        name: "tcp_flags",
        ty: ParamType::Str,
        need: Need::Default("\"ack\""),
        doc:
            "TCP flags of tcp frames, names joined by `,`: fin, syn, rst, psh, ack, urg, ece, cwr \
              (\"\" for none); ignored for udp",
    },
];

/// A configured generator port.
#[derive(Debug, Clone)]
struct GenSpec {
    frame: FrameSpec,
    count: Option<u64>,
    queues: usize,
    /// Largest per-flow table; more flows are patched per packet.
    table_bytes: usize,
}

/// The address `ip` as a number, and whether it is IPv6.
fn ip_num(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u32::from(a).into(), false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

fn optional_ip(p: &Params, name: &str) -> Result<Option<IpAddr>, ParamError> {
    p.get(name).map(|_| p.ip(name)).transpose()
}

/// Checks that `count` addresses from `base` stay inside the family's space.
fn check_ip_range(name: &str, base: IpAddr, count: u64) -> Result<(), ParamError> {
    let (n, v6) = ip_num(base);
    let max = if v6 { u128::MAX } else { u32::MAX.into() };
    if max - n < u128::from(count) - 1 {
        return Err(ParamError::new(
            &format!("{name}_count"),
            format!(
                "{count} addresses from {base} run past the end of the IPv{} address space",
                if v6 { 6 } else { 4 }
            ),
        ));
    }
    Ok(())
}

/// `dst_ip_step` and `dst_ip_shift`, checked: the step coprime with the
/// count, the last address inside the family's space.
fn dst_step(p: &Params, dst: IpAddr, count: u64) -> Result<(u64, u32), ParamError> {
    let step = p.int("dst_ip_step")? as u64;
    let shift = p.int("dst_ip_shift")? as u32;
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    if count > 1 && gcd(step % count, count) != 1 {
        return Err(ParamError::new(
            "dst_ip_step",
            format!(
                "{step} shares a factor with dst_ip_count {count}: some addresses would never come"
            ),
        ));
    }
    let bits = if dst.is_ipv6() { 128 } else { 32 };
    if shift >= bits || (count > 1 && (128 - u128::from(count - 1).leading_zeros()) + shift > bits)
    {
        return Err(ParamError::new(
            "dst_ip_shift",
            format!(
                "{count} addresses shifted by {shift} bits do not fit an IPv{} address",
                if bits == 32 { 4 } else { 6 }
            ),
        ));
    }
    let (n, v6) = ip_num(dst);
    let max = if v6 { u128::MAX } else { u32::MAX.into() };
    if max - n < (u128::from(count) - 1) << shift {
        return Err(ParamError::new(
            "dst_ip_count",
            format!(
                "{count} addresses from {dst} run past the end of the IPv{} address space",
                if v6 { 6 } else { 4 }
            ),
        ));
    }
    Ok((step, shift))
}

/// The `{name}_count` of MAC parameter `name`, checked to stay below
/// ff:ff:ff:ff:ff:ff.
fn mac_range(p: &Params, name: &str) -> Result<([u8; 6], u64), ParamError> {
    let base = p.mac(name)?;
    let cname = format!("{name}_count");
    let n = p.int(&cname)?;
    let count = u64::try_from(n)
        .ok()
        .filter(|&c| (1..=MAX_MAC_COUNT as u64).contains(&c))
        .ok_or_else(|| ParamError::new(&cname, format!("expected 1..={MAX_MAC_COUNT}, got {n}")))?;
    if MAC_MAX - mac_num(base) < count - 1 {
        let b = base.map(|x| format!("{x:02x}")).join(":");
        return Err(ParamError::new(
            &cname,
            format!("{count} MAC addresses from {b} run past ff:ff:ff:ff:ff:ff"),
        ));
    }
    Ok((base, count))
}

/// A port parameter and its count, checked to stay within 0..=65535.
fn ports(p: &Params, name: &'static str) -> Result<(u16, u32), ParamError> {
    let first = p.int(name)?;
    let first = u16::try_from(first)
        .map_err(|_| ParamError::new(name, format!("expected a port 0..=65535, got {first}")))?;
    let cname = if name == "src_port" {
        "src_port_count"
    } else {
        "dst_port_count"
    };
    let count = p.int(cname)?;
    if !(1..=65536).contains(&count) || i64::from(first) + count - 1 > 65535 {
        return Err(ParamError::new(
            cname,
            format!("{count} ports from {first} run past port 65535"),
        ));
    }
    Ok((first, count as u32))
}

/// The frames to generate: protocol, addresses and their counts, ports,
/// size and TCP flags.
fn frame_spec(p: &Params) -> Result<FrameSpec, ParamError> {
    let proto = p.choice::<Proto>("proto")?;
    let (src, dst) = ip_pair(p)?;
    let ipv6 = src.is_ipv6();
    let (src_ip_count, dst_ip_count) = (ip_count(p, "src_ip_count")?, ip_count(p, "dst_ip_count")?);
    check_ip_range("src_ip", src, src_ip_count)?;
    let (dst_ip_step, dst_ip_shift) = dst_step(p, dst, dst_ip_count)?;
    let (src_port, src_port_count) = ports(p, "src_port")?;
    let (dst_port, dst_port_count) = ports(p, "dst_port")?;
    let (src_mac, src_mac_count) = mac_range(p, "src_mac")?;
    let (dst_mac, dst_mac_count) = mac_range(p, "dst_mac")?;
    let frame = FrameSpec {
        size: frame_size(p, proto, ipv6)?,
        proto,
        ipv6,
        src_mac,
        dst_mac,
        src_ip: ip_num(src).0,
        dst_ip: ip_num(dst).0,
        src_ip_count,
        dst_ip_count,
        dst_ip_step,
        dst_ip_shift,
        src_port,
        dst_port,
        src_port_count,
        dst_port_count,
        src_mac_count,
        dst_mac_count,
        tcp_flags: parse_tcp_flags(p.str("tcp_flags")?)
            .map_err(|m| ParamError::new("tcp_flags", m))?,
        fragment: p.choice::<Fragment>("fragment")?,
    };
    if ipv6 && frame.fragment != Fragment::None {
        return Err(ParamError::new(
            "fragment",
            "fragments are generated for IPv4 only: give IPv4 addresses or leave fragment out",
        ));
    }
    if frame.checked_flows().is_none() {
        // Ports and IP addresses alone give at most 2^96 flows: the MAC
        // counts made the product too large.
        return Err(ParamError::new(
            "dst_mac_count",
            format!(
                "{src_mac_count} source x {dst_mac_count} destination MAC addresses, \
                 times the port and IP address combinations, exceed 2^128 flows"
            ),
        ));
    }
    Ok(frame)
}

/// The first source and destination addresses, defaulted to the family of
/// the one given (IPv4 when neither is), and checked to be of one family.
fn ip_pair(p: &Params) -> Result<(IpAddr, IpAddr), ParamError> {
    let (src, dst) = match (optional_ip(p, "src_ip")?, optional_ip(p, "dst_ip")?) {
        (Some(s), Some(d)) => (s, d),
        (Some(s @ IpAddr::V6(_)), None) => (s, "fd00::2".parse().expect("literal")),
        (None, Some(d @ IpAddr::V6(_))) => ("fd00::1".parse().expect("literal"), d),
        (s, d) => (
            s.unwrap_or_else(|| [10, 0, 0, 1].into()),
            d.unwrap_or_else(|| [10, 0, 0, 2].into()),
        ),
    };
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(ParamError::new(
            "dst_ip",
            format!(
                "src_ip {src} and dst_ip {dst} are of different families: \
                 give both as IPv4 or both as IPv6"
            ),
        ));
    }
    Ok((src, dst))
}

/// An `*_ip_count` parameter, checked to be in 1..=2^32-1.
fn ip_count(p: &Params, name: &str) -> Result<u64, ParamError> {
    let n = p.int(name)?;
    u64::try_from(n)
        .ok()
        .filter(|&n| (1..=u64::from(u32::MAX)).contains(&n))
        .ok_or_else(|| ParamError::new(name, format!("expected 1..={}, got {n}", u32::MAX)))
}

/// The frame size: `size`, checked to hold the headers, or the default.
fn frame_size(p: &Params, proto: Proto, ipv6: bool) -> Result<usize, ParamError> {
    let min = min_size(proto, ipv6);
    if p.get("size").is_none() {
        return Ok(DEFAULT_SIZE.max(min));
    }
    let s = p.int("size")?;
    let max = crate::packet::MAX_FRAME_LIMIT;
    match usize::try_from(s) {
        Ok(s) if (min..=max).contains(&s) => Ok(s),
        _ => Err(ParamError::new(
            "size",
            format!(
                "a {}/IPv{} frame takes {min}..={max} bytes (without FCS), got {s}",
                if proto == Proto::Udp { "UDP" } else { "TCP" },
                if ipv6 { 6 } else { 4 }
            ),
        )),
    }
}

/// `count`: packets to generate before the port ends (`None`: endless).
fn packet_count(p: &Params) -> Result<Option<u64>, ParamError> {
    p.get("count")
        .map(|_| {
            let c = p.int("count")?;
            u64::try_from(c).map_err(|_| {
                ParamError::new("count", format!("expected a number of packets, got {c}"))
            })
        })
        .transpose()
}

/// `queues`, checked to be in 1..=MAX_QUEUES.
fn queue_count(p: &Params) -> Result<usize, ParamError> {
    let queues = p.int("queues")?;
    if !(1..=MAX_QUEUES).contains(&queues) {
        return Err(ParamError::new(
            "queues",
            format!("expected 1..={MAX_QUEUES}, got {queues}"),
        ));
    }
    Ok(queues as usize)
}

fn configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
    Ok(Box::new(GenSpec::from_params(p)?))
}

impl GenSpec {
    fn from_params(p: &Params) -> Result<GenSpec, ParamError> {
        Ok(GenSpec {
            frame: frame_spec(p)?,
            count: packet_count(p)?,
            queues: queue_count(p)?,
            table_bytes: TABLE_BYTES,
        })
    }

    /// True when every flow's frame fits in the table.
    fn use_table(&self) -> bool {
        self.frame
            .flows()
            .checked_mul(stride(self.frame.size) as u128)
            .is_some_and(|bytes| bytes <= self.table_bytes as u128)
    }
}

impl PortSpec for GenSpec {
    fn rx_queues(&self) -> usize {
        self.queues
    }

    fn endless(&self) -> bool {
        self.count.is_none()
    }

    fn describe(&self) -> String {
        let f = &self.frame;
        format!(
            "generator: {}-byte {}/IPv{} frames, {} flow(s), {} queue(s), {}",
            f.size,
            if f.proto == Proto::Udp { "UDP" } else { "TCP" },
            if f.ipv6 { 6 } else { 4 },
            f.flows(),
            self.queues,
            match self.count {
                Some(c) => format!("{c} packets"),
                None => "endless".to_string(),
            }
        )
    }

    fn open(&self, _name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError> {
        let mut rx_queues: Vec<Box<dyn RxQueue>> = Vec::new();
        if rx {
            let flows = self.frame.flows();
            for q in 0..self.queues {
                let share = flow_share(flows, q, self.queues);
                let left = share_of_count(self.count, q, self.queues);
                rx_queues.push(if self.use_table() {
                    Box::new(TableRx::new(&self.frame, share, left))
                } else {
                    Box::new(PatchRx::new(&self.frame, share, left))
                });
            }
        }
        let tx_queues: Vec<Box<dyn TxQueue>> = if tx {
            (0..workers)
                .map(|_| Box::new(SinkTx::default()) as Box<dyn TxQueue>)
                .collect()
        } else {
            Vec::new()
        };
        Ok(OpenPort {
            rx: rx_queues,
            tx: tx_queues,
            driver: "generator".to_string(),
            driver_stats: None,
            // Frames are copied in whole 64-byte blocks.
            max_frame: queue::stride(self.frame.size),
        })
    }
}

#[cfg(test)]
mod tests;
