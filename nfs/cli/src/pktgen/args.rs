//! pktgen's command line: the options, and the ranges of addresses and
//! ports they take.

use std::net::IpAddr;
use std::time::Duration;

use hpio_nf::element::parse_mac;

use crate::tool::{parse_duration, PortArgs};

/// Most packets per batch.
pub(super) const MAX_BATCH: usize = 4096;

/// `hpio-nf pktgen`'s options.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  hpio-nf pktgen -i eth1 -D 02:00:00:00:00:02 -d 10.0.0.2 -l 60 --duration 10s
  hpio-nf pktgen -i eth1 -t 2 --cores 2,3 --src-port 1024-2047 -n 10000000
  hpio-nf pktgen -i eth1 -6 -b 32 --interval 100us      # at most 320 kpps
  hpio-nf pktgen -i eth2 --rx --filter \"udp and dst port 9\" --json")]
pub(crate) struct PktgenArgs {
    #[command(flatten)]
    pub port: PortArgs,
    /// Receive mode: count the frames arriving on the port instead of sending.
    #[arg(long)]
    pub rx: bool,
    /// Destination IP address, or a range FIRST-LAST to cycle through
    /// [default: 10.0.0.2, fd00::2 with -6].
    #[arg(short = 'd', long = "dst-ip", value_name = "IP[-IP]", value_parser = parse_ip_range, conflicts_with = "rx")]
    pub dst_ip: Option<IpRange>,
    /// Source IP address, or a range FIRST-LAST to cycle through
    /// [default: 10.0.0.1, fd00::1 with -6].
    #[arg(short = 's', long = "src-ip", value_name = "IP[-IP]", value_parser = parse_ip_range, conflicts_with = "rx")]
    pub src_ip: Option<IpRange>,
    /// Destination MAC address.
    #[arg(short = 'D', long = "dst-mac", value_name = "MAC", value_parser = parse_mac_arg,
          default_value = "ff:ff:ff:ff:ff:ff", conflicts_with = "rx")]
    pub dst_mac: [u8; 6],
    /// Source MAC address [default: the interface's, else 02:00:00:00:00:01].
    #[arg(short = 'S', long = "src-mac", value_name = "MAC", value_parser = parse_mac_arg, conflicts_with = "rx")]
    pub src_mac: Option<[u8; 6]>,
    /// UDP source port, or a range FIRST-LAST to cycle through.
    #[arg(long = "src-port", value_name = "PORT[-PORT]", value_parser = parse_port_range,
          default_value = "1024", conflicts_with = "rx")]
    pub src_port: PortRange,
    /// UDP destination port, or a range FIRST-LAST to cycle through.
    #[arg(long = "dst-port", value_name = "PORT[-PORT]", value_parser = parse_port_range,
          default_value = "9", conflicts_with = "rx")]
    pub dst_port: PortRange,
    /// Frame length in bytes, without FCS [default: 60, 62 with IPv6].
    #[arg(
        short = 'l',
        long = "length",
        value_name = "BYTES",
        conflicts_with = "rx"
    )]
    pub length: Option<usize>,
    /// IPv6 (implied by IPv6 addresses in -s/-d).
    #[arg(short = '6', long = "ipv6", conflicts_with = "rx")]
    pub ipv6: bool,
    /// Threads, each pinned to a core and with its own queue of the port.
    #[arg(short = 't', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// Cores to pin the threads to, one per thread (default 0, 1, ...).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Packets per batch (one transmit call each).
    #[arg(short = 'b', long, value_name = "N", default_value_t = 64, conflicts_with = "rx",
          value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
    pub batch: u16,
    /// Wait between batches of a thread: 10us, 1ms (default: none, as fast as possible).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "rx")]
    pub interval: Option<Duration>,
    /// Packets to send over all threads; with --rx, stop after this many.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this long: 10s, 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// With --rx, count only frames matching this Classify match, e.g. "udp and dst port 9".
    #[arg(long, value_name = "MATCH", requires = "rx")]
    pub filter: Option<String>,
    /// Print the per-second lines and the summary as JSON, one object per line.
    #[arg(long)]
    pub json: bool,
}

/// A first address and how many consecutive ones follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    pub(super) first: IpAddr,
    pub(super) count: u64,
}

/// A first port and how many consecutive ones follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    pub(super) first: u16,
    pub(super) count: u32,
}

fn ip_num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

/// `10.0.0.1` or `10.0.0.1-10.0.0.200` (same family, first <= last, at
/// most 2^32 - 1 addresses, the generator's limit).
pub(super) fn parse_ip_range(s: &str) -> Result<IpRange, String> {
    let ip = |t: &str| {
        t.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("`{t}` is not an IPv4 or IPv6 address"))
    };
    let Some((a, b)) = s.split_once('-') else {
        return Ok(IpRange {
            first: ip(s)?,
            count: 1,
        });
    };
    let (a, b) = (ip(a)?, ip(b)?);
    if a.is_ipv4() != b.is_ipv4() {
        return Err(format!("{a} and {b} are of different families"));
    }
    let (x, y) = (ip_num(a), ip_num(b));
    if y < x {
        return Err(format!("the range ends ({b}) before it starts ({a})"));
    }
    match u64::try_from(y - x + 1) {
        Ok(count) if count <= u64::from(u32::MAX) => Ok(IpRange { first: a, count }),
        _ => Err(format!("{a}-{b} holds more than {} addresses", u32::MAX)),
    }
}

/// `80` or `1024-2047`.
pub(super) fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let port = |t: &str| {
        t.trim()
            .parse::<u16>()
            .map_err(|_| format!("`{t}` is not a port (0..=65535)"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if b < a {
        return Err(format!("the range ends ({b}) before it starts ({a})"));
    }
    Ok(PortRange {
        first: a,
        count: u32::from(b - a) + 1,
    })
}

fn parse_mac_arg(s: &str) -> Result<[u8; 6], String> {
    parse_mac(s).ok_or_else(|| format!("`{s}` is not a MAC address (like 02:00:00:00:00:01)"))
}

pub(super) fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}
