//! `hpio-nf pktgen`: a traffic generator (the original hpio's ppktgen) and,
//! with `--rx`, a counter of arriving frames, on any port driver.
//!
//! Transmit: UDP over IPv4 or IPv6 frames of one length, from one source to
//! one destination MAC and IP, with optional ranges of source/destination
//! ports and addresses (flow variation). The frames come from the
//! framework's `generator` port, so pktgen builds them with the same code
//! (every flow's frame built once, copied into a slot per packet, checksums
//! patched incrementally when there are too many flows for a table). Each
//! thread, pinned to its core, takes a batch from its generator queue and
//! hands it to its transmit queue of the port, then waits for the next
//! inter-batch interval if one is set: at most `batch / interval` packets
//! per second and thread (a thread that falls behind does not catch up in
//! a burst).
//!
//! Receive (`--rx`): each thread polls its share of the port's receive
//! queues and counts the frames (those passing `--filter`, if given) and
//! their bytes on the wire.
//!
//! Both modes print one line per second (packets and bits per second, in
//! total and per thread) and a summary at the end; `--json` prints the same
//! as one JSON object per line. Bits are frame bits without FCS, preamble
//! or gap.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hpio_nf::element::parse_mac;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{PortError, QueueStats, Recv, RxQueue, TxQueue};
use serde_json::json;

use crate::tool::{
    fmt_bps, fmt_pps, load_config, parse_duration, pick_cores, pin, stop_on_signals, toml_str,
    wait_until, Filter, Live, PortArgs,
};

/// Name of the port in pktgen's generated config (and in its messages).
const PORT: &str = "pktgen";
/// Name of the generator port that builds the frames.
const GEN: &str = "gen";
/// Most packets per batch.
const MAX_BATCH: usize = 4096;
/// Packets per receive call in `--rx` mode.
const RX_BURST: usize = 256;
/// Empty polls in a row before a receive thread starts napping.
const RX_SPINS: u32 = 2000;
/// A receive thread's nap when nothing arrives.
const RX_NAP: Duration = Duration::from_micros(50);

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
    first: IpAddr,
    count: u64,
}

/// A first port and how many consecutive ones follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    first: u16,
    count: u32,
}

fn ip_num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

/// `10.0.0.1` or `10.0.0.1-10.0.0.200` (same family, first <= last, at
/// most 2^32 - 1 addresses, the generator's limit).
fn parse_ip_range(s: &str) -> Result<IpRange, String> {
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
fn parse_port_range(s: &str) -> Result<PortRange, String> {
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

fn mac_str(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

/// The MAC address of interface `ifname`, from sysfs.
fn interface_mac(ifname: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    parse_mac(s.trim()).filter(|m| *m != [0; 6])
}

/// The frames pktgen sends, resolved from the options.
#[derive(Debug, Clone, PartialEq)]
struct Frames {
    length: usize,
    ipv6: bool,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: IpRange,
    dst_ip: IpRange,
    src_port: PortRange,
    dst_port: PortRange,
}

impl Frames {
    fn new(a: &PktgenArgs) -> anyhow::Result<Frames> {
        let v6_given = [a.src_ip, a.dst_ip]
            .iter()
            .flatten()
            .any(|r| r.first.is_ipv6());
        let v4_given = [a.src_ip, a.dst_ip]
            .iter()
            .flatten()
            .any(|r| r.first.is_ipv4());
        if v6_given && v4_given {
            bail!("-s and -d are of different IP families: give both as IPv4 or both as IPv6");
        }
        if a.ipv6 && v4_given {
            bail!("-6 asks for IPv6 but -s/-d give IPv4 addresses");
        }
        let ipv6 = a.ipv6 || v6_given;
        let default = |v4: [u8; 4], v6: &str| IpRange {
            first: if ipv6 {
                v6.parse().expect("literal")
            } else {
                v4.into()
            },
            count: 1,
        };
        // Ethernet + IPv4/IPv6 + UDP headers.
        let min = 14 + if ipv6 { 40 } else { 20 } + 8;
        let length = a.length.unwrap_or(min.max(60));
        let max = hpio_nf::packet::MAX_FRAME_LIMIT;
        if !(min..=max).contains(&length) {
            bail!(
                "-l {length}: a UDP/IPv{} frame takes {min}..={max} bytes (without FCS)",
                if ipv6 { 6 } else { 4 }
            );
        }
        let src_mac = a
            .src_mac
            .or_else(|| a.port.interface.as_deref().and_then(interface_mac))
            .unwrap_or([0x02, 0, 0, 0, 0, 1]);
        Ok(Frames {
            length,
            ipv6,
            src_mac,
            dst_mac: a.dst_mac,
            src_ip: a
                .src_ip
                .unwrap_or_else(|| default([10, 0, 0, 1], "fd00::1")),
            dst_ip: a
                .dst_ip
                .unwrap_or_else(|| default([10, 0, 0, 2], "fd00::2")),
            src_port: a.src_port,
            dst_port: a.dst_port,
        })
    }

    /// Number of distinct flows.
    fn flows(&self) -> u128 {
        [
            self.src_ip.count,
            self.dst_ip.count,
            self.src_port.count.into(),
            self.dst_port.count.into(),
        ]
        .iter()
        .map(|&c| u128::from(c))
        .product()
    }

    /// The `generator` port table that builds these frames, `queues` queues
    /// sending `count` packets in all.
    fn generator_table(&self, queues: usize, count: Option<u64>) -> String {
        let mut t = format!(
            "[ports.{GEN}]\ndriver = \"generator\"\nproto = \"udp\"\nsize = {}\n\
             src_mac = \"{}\"\ndst_mac = \"{}\"\n\
             src_ip = {}\nsrc_ip_count = {}\ndst_ip = {}\ndst_ip_count = {}\n\
             src_port = {}\nsrc_port_count = {}\ndst_port = {}\ndst_port_count = {}\n\
             queues = {queues}\n",
            self.length,
            mac_str(self.src_mac),
            mac_str(self.dst_mac),
            toml_str(&self.src_ip.first.to_string()),
            self.src_ip.count,
            toml_str(&self.dst_ip.first.to_string()),
            self.dst_ip.count,
            self.src_port.first,
            self.src_port.count,
            self.dst_port.first,
            self.dst_port.count,
        );
        if let Some(c) = count {
            t += &format!("count = {c}\n");
        }
        t
    }

    /// One line for the start message.
    fn describe(&self) -> String {
        let range = |r: &IpRange| match r.count {
            1 => r.first.to_string(),
            n => format!("{}(+{})", r.first, n - 1),
        };
        let ports = |r: &PortRange| match r.count {
            1 => r.first.to_string(),
            n => format!("{}-{}", r.first, u32::from(r.first) + n - 1),
        };
        format!(
            "{}-byte UDP/IPv{} frames {} > {}, {}:{} > {}:{}, {} flow(s)",
            self.length,
            if self.ipv6 { 6 } else { 4 },
            mac_str(self.src_mac),
            mac_str(self.dst_mac),
            range(&self.src_ip),
            ports(&self.src_port),
            range(&self.dst_ip),
            ports(&self.dst_port),
            self.flows()
        )
    }
}

/// Runs `hpio-nf pktgen`.
pub(crate) fn cmd_pktgen(a: &PktgenArgs) -> anyhow::Result<ExitCode> {
    let threads = usize::from(a.threads);
    let cores = pick_cores(&a.cores, threads)?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(&stop)?;
    if a.count == Some(0) {
        bail!("-n 0: give a count of at least 1 packet");
    }
    let run = if a.rx {
        start_rx(a, &cores, &stop)?
    } else {
        start_tx(a, &cores, &stop)?
    };
    let report = meter(run, &cores, a, &stop);
    report.print(a.json);
    if let Some(e) = report.error {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The running threads of one pktgen run.
struct Running {
    mode: &'static str,
    what: String,
    driver: String,
    start: Instant,
    live: Arc<[Live]>,
    handles: Vec<JoinHandle<Result<Instant, PortError>>>,
}

fn start_tx(a: &PktgenArgs, cores: &[usize], stop: &Arc<AtomicBool>) -> anyhow::Result<Running> {
    let threads = cores.len();
    a.port.check()?;
    let frames = Frames::new(a)?;
    let config = load_config(
        "pktgen",
        &[&format!("{GEN} -> {PORT}")],
        &[
            frames.generator_table(threads, a.count),
            a.port.table(PORT, &[]),
        ],
        &a.port.overrides(PORT),
    )?;
    let (gen, port) = (&config.ports[0], &config.ports[1]);
    let generated = gen.spec.open(GEN, threads, true, false)?;
    let open = port.spec.open(PORT, threads, false, true)?;
    if open.tx.len() != threads {
        bail!(
            "port `{PORT}` ({}) opened {} transmit queue(s) for {threads} thread(s)",
            open.driver,
            open.tx.len()
        );
    }
    eprintln!(
        "pktgen: sending {} on {} (driver {}), {threads} thread(s) on core(s) {}",
        frames.describe(),
        a.port.label(&*port.spec),
        open.driver,
        join(cores)
    );
    let live: Arc<[Live]> = (0..threads).map(|_| Live::default()).collect();
    let start = Instant::now();
    let batch = usize::from(a.batch);
    // Slots that hold the generator's frames (jumbo frames included).
    let slot = generated.max_frame;
    let handles = generated
        .rx
        .into_iter()
        .zip(open.tx)
        .enumerate()
        .map(|(t, (gen, tx))| {
            let (live, stop, core, interval) = (live.clone(), stop.clone(), cores[t], a.interval);
            std::thread::Builder::new()
                .name(format!("pktgen-tx{t}"))
                .spawn(move || {
                    pin(core);
                    let r = send_loop(gen, tx, batch, slot, interval, &stop, &live[t]);
                    live[t].finish();
                    r
                })
                .context("starting a thread")
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Running {
        mode: "tx",
        what: a.port.label(&*port.spec),
        driver: open.driver,
        start,
        live,
        handles,
    })
}

/// One transmit thread: batches from the generator queue to the port's
/// transmit queue until the generator ends or `stop`.
fn send_loop(
    mut gen: Box<dyn RxQueue>,
    mut tx: Box<dyn TxQueue>,
    batch: usize,
    slot: usize,
    interval: Option<Duration>,
    stop: &AtomicBool,
    live: &Live,
) -> Result<Instant, PortError> {
    // The generator fills a batch from the pool and sending returns every slot.
    let mut pool = Pool::with_max_frame(2 * batch.max(32), slot);
    let mut b = Batch::new();
    let mut next = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match gen.recv(&mut pool, &mut b, batch) {
            Ok(Recv::Ended) => break Ok(()),
            Ok(Recv::Got(_)) => {}
            Err(e) => break Err(e),
        }
        if let Err(e) = tx.send(&mut pool, &mut b) {
            break Err(e);
        }
        live.publish(&tx.stats());
        if let Some(iv) = interval {
            next += iv;
            let now = Instant::now();
            if next < now {
                next = now;
            } else {
                wait_until(next, stop);
            }
        }
    };
    let end = Instant::now();
    let finished = tx.finish();
    live.publish(&tx.stats());
    result.and(finished).map(|()| end)
}

fn start_rx(a: &PktgenArgs, cores: &[usize], stop: &Arc<AtomicBool>) -> anyhow::Result<Running> {
    let threads = cores.len();
    a.port.check()?;
    let filter = a.filter.as_deref().map(Filter::parse).transpose()?;
    // One receive queue per thread, unless --param says otherwise.
    let extra = if a.port.driver_has("queues") {
        vec![("queues", threads.to_string())]
    } else {
        Vec::new()
    };
    let config = load_config(
        "pktgen",
        &[&format!("{PORT} -> discard")],
        &[a.port.table(PORT, &extra)],
        &a.port.overrides(PORT),
    )?;
    let open = config.ports[0].spec.open(PORT, threads, true, false)?;
    let queues = open.rx.len();
    // Slots that hold the largest frame the interface delivers.
    let slot = open.max_frame;
    if queues < threads {
        log::warn!(
            "port `{PORT}` has {queues} receive queue(s) for {threads} threads: \
             {} thread(s) will be idle",
            threads - queues
        );
    }
    let mut shares: Vec<Vec<Box<dyn RxQueue>>> = (0..threads).map(|_| Vec::new()).collect();
    for (q, rxq) in open.rx.into_iter().enumerate() {
        shares[q % threads].push(rxq);
    }
    eprintln!(
        "pktgen: counting frames{} on {} (driver {}, {queues} queue(s)), {threads} thread(s) on core(s) {}",
        a.filter
            .as_deref()
            .map_or(String::new(), |f| format!(" matching `{f}`")),
        a.port.label(&*config.ports[0].spec),
        open.driver,
        join(cores)
    );
    let live: Arc<[Live]> = (0..threads).map(|_| Live::default()).collect();
    let limit = a.count.map(|c| (c, Arc::new(AtomicU64::new(0))));
    let start = Instant::now();
    let handles = shares
        .into_iter()
        .enumerate()
        .map(|(t, qs)| {
            let (live, stop, core) = (live.clone(), stop.clone(), cores[t]);
            let (filter, limit) = (filter.clone(), limit.clone());
            std::thread::Builder::new()
                .name(format!("pktgen-rx{t}"))
                .spawn(move || {
                    pin(core);
                    let r = count_loop(qs, filter.as_ref(), limit, slot, &stop, &live[t]);
                    live[t].finish();
                    r
                })
                .context("starting a thread")
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Running {
        mode: "rx",
        what: a.port.label(&*config.ports[0].spec),
        driver: open.driver,
        start,
        live,
        handles,
    })
}

/// One receive thread: counts frames (those passing `filter`) on its
/// queues until they all end, `stop`, or the shared `limit` is reached.
fn count_loop(
    mut queues: Vec<Box<dyn RxQueue>>,
    filter: Option<&Filter>,
    limit: Option<(u64, Arc<AtomicU64>)>,
    slot: usize,
    stop: &AtomicBool,
    live: &Live,
) -> Result<Instant, PortError> {
    let mut pool = Pool::with_max_frame(4 * RX_BURST, slot);
    let mut b = Batch::new();
    let mut counted = QueueStats::default();
    let mut ended = vec![false; queues.len()];
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) && ended.iter().any(|e| !e) {
        let mut got = 0;
        for (q, rxq) in queues.iter_mut().enumerate() {
            if ended[q] {
                continue;
            }
            match rxq.recv(&mut pool, &mut b, RX_BURST)? {
                Recv::Ended => ended[q] = true,
                Recv::Got(n) => got += n,
            }
            let (mut n, mut bytes) = (0u64, 0u64);
            for p in b.iter_mut() {
                if filter.is_none_or(|f| f.pass(p)) {
                    n += 1;
                    bytes += p.wire_len() as u64;
                }
            }
            if let Some((max, total)) = &limit {
                if n > 0 {
                    let before = total.fetch_add(n, Ordering::Relaxed);
                    let allowed = n.min(max.saturating_sub(before));
                    if before + n >= *max {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if allowed < n {
                        // Count the first `allowed` matching frames only.
                        (n, bytes) = (0, 0);
                        for p in b.iter_mut() {
                            if n < allowed && filter.is_none_or(|f| f.pass(p)) {
                                n += 1;
                                bytes += p.wire_len() as u64;
                            }
                        }
                    }
                }
            }
            counted.packets += n;
            counted.bytes += bytes;
            pool.free_batch(&mut b);
        }
        let mut s = counted;
        for rxq in &queues {
            let q = rxq.stats();
            s.drops += q.drops;
            s.errors += q.errors;
        }
        live.publish(&s);
        if got == 0 {
            idle = idle.saturating_add(1);
            if idle > RX_SPINS {
                std::thread::sleep(RX_NAP);
            }
        } else {
            idle = 0;
        }
    }
    Ok(Instant::now())
}

/// What a run did, per thread and in total.
struct Report {
    mode: &'static str,
    what: String,
    driver: String,
    seconds: f64,
    threads: Vec<(usize, QueueStats)>,
    error: Option<PortError>,
}

impl Report {
    fn total(&self) -> QueueStats {
        let mut t = QueueStats::default();
        for (_, s) in &self.threads {
            t += *s;
        }
        t
    }

    fn print(&self, json: bool) {
        let secs = self.seconds.max(1e-9);
        let rate = |s: &QueueStats| (s.packets as f64 / secs, s.bytes as f64 * 8.0 / secs);
        let total = self.total();
        let (pps, bps) = rate(&total);
        if json {
            let threads: Vec<_> = self
                .threads
                .iter()
                .enumerate()
                .map(|(t, (core, s))| {
                    let (pps, bps) = rate(s);
                    json!({"thread": t, "core": core, "packets": s.packets, "bytes": s.bytes,
                           "drops": s.drops, "errors": s.errors, "pps": pps, "bps": bps})
                })
                .collect();
            let v = json!({"event": "summary", "mode": self.mode, "port": self.what,
                "driver": self.driver, "seconds": self.seconds, "packets": total.packets,
                "bytes": total.bytes, "drops": total.drops, "errors": total.errors,
                "pps": pps, "bps": bps, "threads": threads,
                "error": self.error.as_ref().map(|e| e.to_string())});
            println!("{v}");
            return;
        }
        let verb = if self.mode == "tx" {
            "sent"
        } else {
            "received"
        };
        let drops = if self.mode == "tx" {
            "dropped (device busy)"
        } else {
            "dropped by the port"
        };
        println!(
            "pktgen: {verb} {} packets ({} bytes) in {:.3} s on {} (driver {}): {}, {}; \
             {} {drops}, {} errors",
            total.packets,
            total.bytes,
            self.seconds,
            self.what,
            self.driver,
            fmt_pps(pps),
            fmt_bps(bps),
            total.drops,
            total.errors
        );
        if self.threads.len() > 1 {
            for (t, (core, s)) in self.threads.iter().enumerate() {
                let (pps, bps) = rate(s);
                println!(
                    "  thread {t} (core {core}): {} packets, {}, {}, {} {drops}, {} errors",
                    s.packets,
                    fmt_pps(pps),
                    fmt_bps(bps),
                    s.drops,
                    s.errors
                );
            }
        }
    }
}

/// Prints a line per second until every thread has finished (stopping them
/// at the `--duration`), then joins them.
fn meter(run: Running, cores: &[usize], a: &PktgenArgs, stop: &AtomicBool) -> Report {
    let deadline = a.duration.map(|d| run.start + d);
    let mut prev: Vec<QueueStats> = vec![QueueStats::default(); run.live.len()];
    let mut prev_t = run.start;
    let mut tick = run.start + Duration::from_secs(1);
    while !run.live.iter().all(Live::done) {
        std::thread::sleep(Duration::from_millis(5));
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if now >= tick && !stop.load(Ordering::Relaxed) {
            let cur: Vec<QueueStats> = run.live.iter().map(Live::read).collect();
            let dt = (now - prev_t).as_secs_f64();
            let rates: Vec<(f64, f64)> = cur
                .iter()
                .zip(&prev)
                .map(|(c, p)| {
                    (
                        (c.packets - p.packets) as f64 / dt,
                        (c.bytes - p.bytes) as f64 * 8.0 / dt,
                    )
                })
                .collect();
            interval_line(&run, cores, (now - run.start).as_secs_f64(), &rates, a.json);
            (prev, prev_t) = (cur, now);
            while tick <= now {
                tick += Duration::from_secs(1);
            }
        }
    }
    let mut end = run.start;
    let mut error = None;
    for h in run.handles {
        match h.join() {
            Ok(Ok(t)) => end = end.max(t),
            Ok(Err(e)) => {
                end = end.max(Instant::now());
                error.get_or_insert(e);
            }
            Err(p) => {
                let msg = hpio_nf::runtime::panic_message(&*p);
                error.get_or_insert(PortError::other(PORT, format!("a thread panicked: {msg}")));
            }
        }
    }
    let threads = run
        .live
        .iter()
        .zip(cores)
        .map(|(l, &c)| (c, l.read()))
        .collect();
    Report {
        mode: run.mode,
        what: run.what,
        driver: run.driver,
        seconds: (end - run.start).as_secs_f64(),
        threads,
        error,
    }
}

fn interval_line(run: &Running, cores: &[usize], t: f64, rates: &[(f64, f64)], json: bool) {
    let (pps, bps) = rates
        .iter()
        .fold((0.0, 0.0), |(p, b), (x, y)| (p + x, b + y));
    if json {
        let threads: Vec<_> = rates
            .iter()
            .enumerate()
            .map(|(i, (p, b))| json!({"thread": i, "core": cores[i], "pps": p, "bps": b}))
            .collect();
        println!(
            "{}",
            json!({"event": "interval", "mode": run.mode, "time": t, "pps": pps, "bps": bps,
                   "threads": threads})
        );
        return;
    }
    let mut line = format!(
        "{t:7.2} s  {} {:>12} {:>15}",
        run.mode,
        fmt_pps(pps),
        fmt_bps(bps)
    );
    if rates.len() > 1 {
        let per: Vec<String> = rates
            .iter()
            .enumerate()
            .map(|(i, (p, _))| format!("t{i}@{} {}", cores[i], fmt_pps(*p)))
            .collect();
        line += &format!("  [{}]", per.join(", "));
    }
    println!("{line}");
}

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    use clap::Parser;
    use etherparse::{LinkHeader, NetHeaders, PacketHeaders, TransportHeader};

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        a: PktgenArgs,
    }

    fn args(line: &str) -> Result<PktgenArgs, String> {
        Cmd::try_parse_from(std::iter::once("pktgen").chain(line.split_whitespace()))
            .map(|c| c.a)
            .map_err(|e| e.to_string())
    }

    /// The first `n` frames pktgen sends for `line`, from the generator it configures.
    fn frames(line: &str, n: usize) -> (Frames, Vec<Vec<u8>>) {
        let a = args(line).unwrap();
        let f = Frames::new(&a).unwrap();
        let table = f.generator_table(1, None);
        let config = load_config("test", &[&format!("{GEN} -> discard")], &[table], &[]).unwrap();
        let mut open = config.ports[0].spec.open(GEN, 1, true, false).unwrap();
        let mut pool = Pool::new(n);
        let mut b = Batch::new();
        assert_eq!(open.rx[0].recv(&mut pool, &mut b, n).unwrap(), Recv::Got(n));
        (f, b.iter().map(|p| p.data().to_vec()).collect())
    }

    /// What etherparse reads from a frame: (src MAC, dst MAC, src IP, dst IP,
    /// src port, dst port), after checking lengths and every checksum.
    type Seen = ([u8; 6], [u8; 6], IpAddr, IpAddr, u16, u16);

    fn check(frame: &[u8], length: usize) -> Seen {
        assert_eq!(frame.len(), length);
        let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
        let Some(LinkHeader::Ethernet2(eth)) = h.link else {
            panic!("no Ethernet header")
        };
        let net = h.net.as_ref().unwrap();
        let (src, dst, l4) = match net {
            NetHeaders::Ipv4(ip, _) => {
                assert_eq!(ip.total_len as usize, length - 14);
                assert_eq!(ip.header_checksum, ip.calc_header_checksum());
                (IpAddr::from(ip.source), IpAddr::from(ip.destination), 34)
            }
            NetHeaders::Ipv6(ip, _) => {
                assert_eq!(ip.payload_length as usize, length - 54);
                (IpAddr::from(ip.source), IpAddr::from(ip.destination), 54)
            }
            other => panic!("unexpected {other:?}"),
        };
        let Some(TransportHeader::Udp(u)) = h.transport.as_ref() else {
            panic!("not UDP")
        };
        assert_eq!(u.length as usize, length - l4);
        let payload = &frame[l4 + 8..];
        let want = match net {
            NetHeaders::Ipv4(ip, _) => u.calc_checksum_ipv4(ip, payload).unwrap(),
            NetHeaders::Ipv6(ip, _) => u.calc_checksum_ipv6(ip, payload).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(u.checksum, want, "UDP checksum");
        (
            eth.source,
            eth.destination,
            src,
            dst,
            u.source_port,
            u.destination_port,
        )
    }

    #[test]
    fn ipv4_frames_carry_the_options_with_correct_checksums() {
        let line = "-S 02:aa:00:00:00:01 -D 02:bb:00:00:00:02 -s 192.168.1.10 -d 192.168.2.20 \
                    --src-port 5000 --dst-port 7 -l 128";
        let (f, got) = frames(line, 3);
        assert_eq!(f.flows(), 1);
        for frame in &got {
            assert_eq!(
                check(frame, 128),
                (
                    [2, 0xaa, 0, 0, 0, 1],
                    [2, 0xbb, 0, 0, 0, 2],
                    "192.168.1.10".parse().unwrap(),
                    "192.168.2.20".parse().unwrap(),
                    5000,
                    7
                )
            );
        }
    }

    #[test]
    fn defaults_are_a_minimal_broadcast_frame() {
        let (_, got) = frames("", 1);
        let (_, dmac, s, d, sp, dp) = check(&got[0], 60);
        assert_eq!(dmac, [0xff; 6]);
        assert_eq!(
            (s, d),
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        );
        assert_eq!((sp, dp), (1024, 9));
    }

    #[test]
    fn ranges_vary_source_ports_fastest_then_addresses() {
        let (f, got) = frames("-s 10.1.0.1-10.1.0.3 --src-port 2000-2003 -l 60", 24);
        assert_eq!(f.flows(), 12);
        let seen: Vec<Seen> = got.iter().map(|fr| check(fr, 60)).collect();
        assert_eq!(seen[0].4, 2000);
        assert_eq!(seen[1].4, 2001);
        assert_eq!(seen[4].2, "10.1.0.2".parse::<IpAddr>().unwrap());
        let distinct: BTreeSet<(IpAddr, u16)> = seen.iter().map(|s| (s.2, s.4)).collect();
        assert_eq!(distinct.len(), 12, "every flow once per cycle");
        assert_eq!(seen[12], seen[0], "then the cycle repeats");
    }

    #[test]
    fn ipv6_by_flag_or_by_address() {
        let (f, got) = frames("-6", 2);
        assert!(f.ipv6);
        let (_, _, s, d, _, _) = check(&got[0], 62);
        assert_eq!(
            (s, d),
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
        );
        let (_, got) = frames("-d 2001:db8::5 -l 200 --dst-port 100-101", 2);
        let seen: Vec<Seen> = got.iter().map(|fr| check(fr, 200)).collect();
        assert_eq!(seen[0].2, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(seen[0].3, "2001:db8::5".parse::<IpAddr>().unwrap());
        assert_eq!((seen[0].5, seen[1].5), (100, 101));
    }

    #[test]
    fn range_syntax() {
        assert_eq!(
            parse_port_range("10-12"),
            Ok(PortRange {
                first: 10,
                count: 3
            })
        );
        assert_eq!(
            parse_port_range("0-65535").unwrap().count,
            65536,
            "the whole port space"
        );
        assert!(parse_port_range("12-10")
            .unwrap_err()
            .contains("before it starts"));
        assert!(parse_port_range("70000")
            .unwrap_err()
            .contains("not a port"));
        let r = parse_ip_range("10.0.0.250-10.0.1.4").unwrap();
        assert_eq!(r.count, 11);
        assert!(parse_ip_range("10.0.0.1-fd00::1")
            .unwrap_err()
            .contains("different families"));
        assert!(parse_ip_range("::-::1:0:0")
            .unwrap_err()
            .contains("more than"));
        assert!(parse_ip_range("10.0.0.x")
            .unwrap_err()
            .contains("not an IPv4"));
    }

    #[test]
    fn bad_options_are_clear_errors() {
        let err = |line: &str| Frames::new(&args(line).unwrap()).unwrap_err().to_string();
        assert!(err("-l 40").contains("-l 40: a UDP/IPv4 frame takes 42..=65535"));
        assert!(err("-6 -l 60").contains("UDP/IPv6 frame takes 62"));
        assert!(err("-l 70000").contains("42..=65535"));
        assert!(
            Frames::new(&args("-l 9014").unwrap()).is_ok(),
            "jumbo frames"
        );
        assert!(err("-s 10.0.0.1 -d fd00::2").contains("different IP families"));
        assert!(err("-6 -d 10.0.0.2").contains("-6 asks for IPv6"));
        // Options of one mode are refused in the other.
        assert!(args("--rx -d 10.0.0.2")
            .unwrap_err()
            .contains("cannot be used with"));
        assert!(args("--filter udp").unwrap_err().contains("--rx"));
        assert!(args("-D 02:00").unwrap_err().contains("not a MAC address"));
        assert!(args("--interval 10xs")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(args("-b 0").is_err());
    }
}
