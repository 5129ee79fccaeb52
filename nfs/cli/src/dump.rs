//! `hpio-nf dump`: captures the frames arriving on a port (the original
//! hpio's mgdump), on any port driver.
//!
//! Frames are written to a pcap file (`-w FILE`, through the framework's
//! `pcap` port: the classic format with microsecond timestamps that every
//! tcpdump reads) or printed one line each, as `tcpdump -tt` would: the
//! timestamp in seconds since the epoch, then the summary that the `Print`
//! element logs. A filter in the Classify rule language (`--filter "tcp and
//! dst port 80"`, or the same words after the options) keeps only the
//! frames it matches. The capture stops after `-c` frames, after
//! `--duration`, on SIGINT/SIGTERM, or when the port's input ends (a pcap
//! file). A summary goes to standard error.
//!
//! One thread polls every receive queue of the port in turn. Frames the
//! port truncated (longer than a packet slot) keep their length on the wire
//! in the file's records.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use hpio_nf::elements::summarize;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{OpenPort, QueueStats, Recv, RxQueue, TxQueue};

use crate::tool::{load_config, parse_duration, stop_on_signals, toml_str, Filter, PortArgs};

/// Name of the captured port in dump's generated config (and its messages).
const PORT: &str = "dump";
/// Name of the pcap port that writes the file.
const FILE: &str = "file";
/// Packets per receive call.
const BURST: usize = 256;
/// Empty polls in a row before dump starts napping.
const SPINS: u32 = 200;
/// The nap when nothing arrives.
const NAP: Duration = Duration::from_micros(200);

/// `hpio-nf dump`'s options.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  hpio-nf dump -i eth1 -c 10                          # one line per frame
  hpio-nf dump -i eth1 -w cap.pcap tcp and dst port 80 # then: tcpdump -nn -r cap.pcap
  hpio-nf dump --driver pcap --param input=in.pcap udp")]
pub(crate) struct DumpArgs {
    #[command(flatten)]
    pub port: PortArgs,
    /// Write the frames to this pcap file instead of printing them.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<String>,
    /// Stop after capturing this many frames.
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this long: 10s, 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Capture only frames matching this Classify match, e.g. "tcp and dst port 80".
    #[arg(long, value_name = "MATCH")]
    pub filter: Option<String>,
    /// The filter, as words after the options (like tcpdump's expression).
    #[arg(value_name = "MATCH", conflicts_with = "filter")]
    pub words: Vec<String>,
}

/// What a capture saw.
#[derive(Debug, Default)]
struct Tally {
    captured: u64,
    filtered: u64,
}

/// Runs `hpio-nf dump`.
pub(crate) fn cmd_dump(a: &DumpArgs) -> anyhow::Result<ExitCode> {
    let text = match (&a.filter, a.words.is_empty()) {
        (Some(f), _) => Some(f.clone()),
        (None, false) => Some(a.words.join(" ")),
        (None, true) => None,
    };
    a.port.check()?;
    let filter = text.as_deref().map(Filter::parse).transpose()?;
    if a.count == Some(0) {
        bail!("-c 0: give a count of at least 1 frame");
    }
    let (mut open, writer) = open_ports(a, text.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(&stop)?;
    let deadline = a.duration.map(|d| Instant::now() + d);
    let stdout = std::io::stdout();
    let mut capture = Capture {
        filter: filter.as_ref(),
        limit: a.count.unwrap_or(u64::MAX),
        writer,
        lines: std::io::BufWriter::new(stdout.lock()),
        // Slots that hold the largest frame the interface delivers.
        pool: Pool::with_max_frame(4 * BURST, open.max_frame),
        b: Batch::new(),
        out: Batch::new(),
        tally: Tally::default(),
    };
    capture.run(&mut open.rx, deadline, &stop)?;
    let Capture {
        mut lines,
        mut writer,
        tally,
        ..
    } = capture;
    let _ = lines.flush();
    drop(lines);
    let mut written = QueueStats::default();
    if let Some(w) = writer.as_mut() {
        w.finish()?;
        written = w.stats();
    }
    let mut port = QueueStats::default();
    for q in &open.rx {
        port += q.stats();
    }
    eprintln!("{}", summary(a, filter.is_some(), &tally, &written, &port));
    Ok(ExitCode::SUCCESS)
}

/// Opens the captured port (every receive queue) and, with `-w`, the pcap
/// port that writes the file; says so on standard error.
fn open_ports(
    a: &DumpArgs,
    filter: Option<&str>,
) -> anyhow::Result<(OpenPort, Option<Box<dyn TxQueue>>)> {
    let mut tables = vec![a.port.table(PORT, &[])];
    let conn = match &a.write {
        Some(path) => {
            tables.push(format!(
                "[ports.{FILE}]\ndriver = \"pcap\"\noutput = {}\n",
                toml_str(path)
            ));
            format!("{PORT} -> {FILE}")
        }
        None => format!("{PORT} -> discard"),
    };
    let config = load_config("dump", &[&conn], &tables, &a.port.overrides(PORT))?;
    let open = config.ports[0].spec.open(PORT, 1, true, false)?;
    let writer = match &a.write {
        Some(_) => {
            let mut f = config.ports[1].spec.open(FILE, 1, false, true)?;
            Some(f.tx.remove(0))
        }
        None => None,
    };
    eprintln!(
        "dump: capturing{} on {} (driver {}, {} queue(s)){}",
        filter.map_or(String::new(), |f| format!(" `{f}`")),
        a.port.label(&*config.ports[0].spec),
        open.driver,
        open.rx.len(),
        a.write
            .as_deref()
            .map_or(String::new(), |w| format!(", writing {w}"))
    );
    Ok((open, writer))
}

/// A capture in progress: what it keeps, where it goes, and what it saw.
struct Capture<'f, W: Write> {
    filter: Option<&'f Filter>,
    /// Frames to capture before stopping.
    limit: u64,
    /// The pcap file's transmit queue (`-w`); else frames are printed to `lines`.
    writer: Option<Box<dyn TxQueue>>,
    lines: W,
    pool: Pool,
    /// Frames as received.
    b: Batch,
    /// Frames kept for the file.
    out: Batch,
    tally: Tally,
}

/// Whether a capture goes on after a batch.
#[derive(PartialEq, Eq)]
enum Next {
    More,
    /// The count is reached, or the reader of the lines went away.
    Done,
}

impl<W: Write> Capture<'_, W> {
    /// Polls every queue in turn until they all end, `stop`, the
    /// `deadline`, or [`Next::Done`]; naps when nothing arrives.
    fn run(
        &mut self,
        queues: &mut [Box<dyn RxQueue>],
        deadline: Option<Instant>,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        let mut ended = vec![false; queues.len()];
        let mut idle = 0u32;
        while !stop.load(Ordering::Relaxed) && ended.iter().any(|e| !e) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let mut got = 0;
            for (q, rxq) in queues.iter_mut().enumerate() {
                if ended[q] {
                    continue;
                }
                match rxq.recv(&mut self.pool, &mut self.b, BURST)? {
                    Recv::Ended => ended[q] = true,
                    Recv::Got(n) => got += n,
                }
                if self.take_batch()? == Next::Done {
                    return Ok(());
                }
            }
            if got == 0 {
                let _ = self.lines.flush();
                idle = idle.saturating_add(1);
                if idle > SPINS {
                    std::thread::sleep(NAP);
                }
            } else {
                idle = 0;
            }
        }
        Ok(())
    }

    /// Captures the frames of the received batch that pass the filter (up to
    /// the count): into the file, or one line each.
    fn take_batch(&mut self) -> anyhow::Result<Next> {
        for mut p in self.b.drain(..) {
            let under = self.tally.captured < self.limit;
            let keep = under && self.filter.is_none_or(|f| f.pass(&mut p));
            if !keep {
                self.tally.filtered += u64::from(under);
                self.pool.free(p);
                continue;
            }
            self.tally.captured += 1;
            if self.writer.is_some() {
                self.out.push(p);
            } else {
                let ts = p.timestamp();
                let line = writeln!(
                    self.lines,
                    "{}.{:06} {}",
                    ts / 1_000_000_000,
                    ts % 1_000_000_000 / 1000,
                    summarize(p.data())
                );
                self.pool.free(p);
                if line.is_err() {
                    // The reader went away (`| head`): stop quietly.
                    return Ok(Next::Done);
                }
            }
        }
        if let Some(w) = self.writer.as_mut() {
            if !self.out.is_empty() {
                w.send(&mut self.pool, &mut self.out)?;
            }
        }
        Ok(if self.tally.captured >= self.limit {
            Next::Done
        } else {
            Next::More
        })
    }
}

/// The summary line for standard error.
fn summary(
    a: &DumpArgs,
    filtered: bool,
    tally: &Tally,
    written: &QueueStats,
    port: &QueueStats,
) -> String {
    let mut summary = format!("dump: {} frame(s) captured", tally.captured);
    if filtered {
        summary += &format!(", {} not matching the filter", tally.filtered);
    }
    if let Some(w) = &a.write {
        summary += &format!(", {} written to {w}", written.packets);
    }
    summary += &format!(", {} dropped by the port", port.drops);
    summary
}
