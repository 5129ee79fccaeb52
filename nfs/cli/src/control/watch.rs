//! `hpio-nf ctl tap` and `hpio-nf ctl trace`: the client side of the
//! control socket's tap and trace routes (see `observe`).

use std::io::{ErrorKind, Read as _, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use hpio_nf::graph::TraceRecord;
use serde_json::Value;

use super::http::{escape, parse_head, request_within};
use super::observe::MAX_WAIT;
use crate::observe::traces_text;

/// Arguments of `hpio-nf ctl tap`.
#[derive(clap::Args)]
pub(super) struct TapArgs {
    /// The edge, written as in a connection: `br[1]`, `fw[0] -> outside`,
    /// `left` (or `left rx`: what port left receives), `-> right` (or
    /// `right tx`: what is sent on port right).
    edge: String,
    /// Stop after N packets.
    #[arg(short = 'c', value_name = "N")]
    count: Option<u64>,
    /// Write the packets as pcap to FILE (`-`: standard output, for
    /// `| tcpdump -r -`) instead of printing a line per packet.
    #[arg(short = 'w', value_name = "FILE")]
    write: Option<String>,
    /// Only packets this Classify match selects (`tcp and dst port 80`).
    #[arg(long, value_name = "RULE")]
    filter: Option<String>,
    /// Copies the run keeps for this reader; past that, copies are lost
    /// (counted) rather than slow the graph.
    #[arg(long, value_name = "COPIES")]
    queue: Option<u64>,
}

/// Arguments of `hpio-nf ctl trace`.
#[derive(clap::Args)]
pub(super) struct TraceArgs {
    /// Follow N packets.
    #[arg(short = 'c', value_name = "N", default_value_t = 1)]
    count: u64,
    /// Give up after SECONDS (at most 300) with the packets followed so far.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    wait: u64,
    /// Only packets this Classify match selects (words joined by spaces).
    #[arg(trailing_var_arg = true)]
    filter: Vec<String>,
}

/// `ctl tap`: streams the copies until the count, the run's end or a
/// signal; then says on standard error how many came and how many were lost.
pub(super) fn tap(socket: &Path, a: &TapArgs) -> anyhow::Result<ExitCode> {
    let mut target = format!("/tap?edge={}", escape(&a.edge));
    for (k, v) in [("count", a.count), ("queue", a.queue)] {
        if let Some(v) = v {
            target += &format!("&{k}={v}");
        }
    }
    if let Some(f) = &a.filter {
        target += &format!("&filter={}", escape(f));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to {} (is `hpio-nf run` serving it?)",
            socket.display()
        )
    })?;
    let head = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut raw = Vec::new();
    let (status, head_len, headers) = loop {
        if let Some(h) = parse_head(&raw)? {
            break h;
        }
        if !read_some(&mut stream, &mut raw, &stop)? {
            bail!("the run closed the connection before answering");
        }
    };
    if status != 200 {
        while read_some(&mut stream, &mut raw, &stop)? {}
        let v: Value = serde_json::from_slice(&raw[head_len..]).unwrap_or_default();
        bail!("{}", v["error"].as_str().unwrap_or("the tap was refused"));
    }
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let id = header("x-tap-id").context("the answer has no X-Tap-Id")?;
    let edge = header("x-tap-edge").unwrap_or_else(|| a.edge.clone());
    let mut sink = Sink::new(a.write.as_deref())?;
    let mut body = raw.split_off(head_len);
    loop {
        if let Err(e) = sink.take(&mut body) {
            // `| tcpdump -c N` ends the pipe: not an error.
            if e.kind() != ErrorKind::BrokenPipe {
                return Err(e).context("writing the packets");
            }
            break;
        }
        if !read_some(&mut stream, &mut body, &stop)? {
            break;
        }
    }
    drop(stream);
    let c = request_within(
        socket,
        "GET",
        &format!("/taps/{id}"),
        "",
        Duration::from_secs(10),
    )?;
    eprintln!(
        "tap {edge}: {} packet(s) copied, {} lost (the reader was behind)",
        c["copies"], c["lost"]
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads what has come into `buf`; false at the end (or on a signal).
fn read_some(
    stream: &mut UnixStream,
    buf: &mut Vec<u8>,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the tap"),
        }
    }
}

/// Where the pcap stream goes: a file or standard output as it is, or a
/// line per packet.
enum Sink {
    Pcap(Box<dyn Write>),
    Lines { pending: Vec<u8>, header_done: bool },
}

impl Sink {
    fn new(write: Option<&str>) -> anyhow::Result<Sink> {
        Ok(match write {
            Some("-") => Sink::Pcap(Box::new(std::io::stdout())),
            Some(f) => Sink::Pcap(Box::new(
                std::fs::File::create(f).with_context(|| format!("creating {f}"))?,
            )),
            None => Sink::Lines {
                pending: Vec::new(),
                header_done: false,
            },
        })
    }

    /// Writes or prints what `bytes` holds (and empties it).
    fn take(&mut self, bytes: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Sink::Pcap(w) => {
                w.write_all(bytes)?;
                bytes.clear();
                w.flush()
            }
            Sink::Lines {
                pending,
                header_done,
            } => {
                pending.append(bytes);
                let mut at = 0;
                if !*header_done && pending.len() >= 24 {
                    (at, *header_done) = (24, true);
                }
                let mut out = std::io::stdout().lock();
                while *header_done && pending.len() >= at + 16 {
                    let word = |i: usize| {
                        let b = &pending[at + 4 * i..at + 4 * i + 4];
                        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    };
                    let len = word(2) as usize;
                    if pending.len() < at + 16 + len {
                        break;
                    }
                    let frame = &pending[at + 16..at + 16 + len];
                    let summary = hpio_nf::elements::summarize(frame);
                    writeln!(out, "{}.{:06} {summary}", word(0), word(1))?;
                    at += 16 + len;
                }
                pending.drain(..at);
                Ok(())
            }
        }
    }
}

/// `ctl trace`: arms a trace, prints the records.
pub(super) fn trace(socket: &Path, a: &TraceArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut target = format!("/trace?count={}&wait={}", a.count, a.wait);
    if !a.filter.is_empty() {
        target += &format!("&filter={}", escape(&a.filter.join(" ")));
    }
    let within = Duration::from_secs(a.wait).min(MAX_WAIT) + Duration::from_secs(10);
    let answer = request_within(socket, "GET", &target, "", within)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let records: Vec<TraceRecord> = serde_json::from_value(answer["traces"].clone())
        .context("the answer's traces are not trace records")?;
    print!("{}", traces_text(&records, a.count));
    Ok(ExitCode::SUCCESS)
}
