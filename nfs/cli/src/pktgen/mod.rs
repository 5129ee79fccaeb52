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

mod args;
mod frames;
mod report;
mod rx;
mod tx;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::bail;
use hpio_nf::port::PortError;

use crate::tool::{pick_cores, stop_on_signals, Live};

pub(crate) use args::PktgenArgs;
use report::meter;
use rx::start_rx;
use tx::start_tx;

/// Name of the port in pktgen's generated config (and in its messages).
const PORT: &str = "pktgen";
/// Name of the generator port that builds the frames.
const GEN: &str = "gen";

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

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests;
