//! The batch runtime: workers pinned to cores, each running its own replica
//! of the graph over the receive queues it owns.
//!
//! ```text
//! worker k (pinned to core k):
//!   loop {
//!     for each receive queue owned by k: recv a burst into pool slots, push it through the graph
//!     for each port with packets waiting: one send (one writev) per burst
//!     nothing received: back off (spin, then sleep in poll(2) on the
//!       queues' descriptors until frames or a control job arrive; see `idle`)
//!   }
//! ```
//! Workers share nothing on the data path. Each publishes a snapshot of its
//! counters a few times per second (and at exit) for the live line and the
//! final report.
//!
//! # Replays in timestamp order
//!
//! With [`Clock::Packet`], a worker merges its replay queues (pcap inputs:
//! [`RxQueue::replay`](crate::port::RxQueue::replay)) by timestamp, so that
//! a capture taken on both sides of a device replays as it happened. Each
//! replay queue reads up to a burst ahead into a batch of its own (the
//! worker's pool is raised to at least 2 x burst x replay queues, so the
//! read-ahead holds at most half of it); each pass pushes, from the queue
//! whose next packet is the oldest, the packets that come before every
//! other queue's next packet (at most a burst). A burst is thus cut where
//! another input's next packet is older; equal timestamps go in port order
//! (config order). Packets move between batches by pointer, nothing is
//! allocated per packet. The result is the same for every `burst`. Each
//! input must be in timestamp order itself (a capture is); the merge does
//! not sort within one input. A pcap port has one receive queue, which
//! always goes to worker 0, so with several workers every pcap input is
//! still merged on worker 0. With [`Clock::System`] inputs are read burst
//! by burst, in turn.
//!
//! # Faults
//!
//! A port error, or a panic in a port driver (caught around each receive,
//! transmit and finish call), ends the worker with [`RunError::Port`]
//! naming the port and the worker, and sets the stop flag so that every
//! other worker stops within a pass of its loop; `run` returns the first
//! error.

mod control;
mod idle;
mod observe;
mod pass_clock;
mod reload;
mod report;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_idle;
#[cfg(test)]
mod tests_observe;
#[cfg(test)]
mod tests_reload;
#[cfg(test)]
mod tests_share;
#[cfg(test)]
mod tests_shared_table;
mod worker;
mod worker_timers;

pub use control::{ControlError, Controller};
pub use idle::{Idle, MAX_SLEEP};
pub use observe::{Tap, TapNext, Trace, TraceRequest, TAP_QUEUE};
pub use reload::{PortPlan, ReloadError, ReloadSummary};
pub use report::{ElementReport, PortReport, Report, WorkerReport};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::graph::GraphSpec;
use crate::packet::{DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT};
use crate::port::{OpenPort, PortError};
use control::Shared;
use report::{Layout, PortMeta};
use worker::Worker;

crate::choice! {
    /// Where elements get the time from (`[runtime] clock`).
    #[derive(Default, serde::Serialize)]
    pub enum Clock {
        /// Monotonic time since the run started.
        #[default]
        System = "system",
        /// The timestamp of the latest packet received (replays and golden tests).
        Packet = "packet",
    }
}

crate::choice! {
    /// What to do after an element panics (`[runtime] on_panic`).
    #[derive(Default, serde::Serialize)]
    pub enum OnPanic {
        /// Drop the batch, count it against the element, keep running.
        #[default]
        Drop = "drop",
        /// Stop the run with an error naming the element.
        Stop = "stop",
    }
}

/// How to run a graph.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Number of workers.
    pub workers: usize,
    /// Core of each worker (`cores[k]` for worker k); empty: do not pin.
    pub cores: Vec<usize>,
    /// Most packets per receive call.
    pub burst: usize,
    /// Packet slots per worker.
    pub pool: usize,
    /// Bytes of frame each packet slot holds; `None`: the largest
    /// [`OpenPort::max_frame`] of the run's ports, at least
    /// [`DEFAULT_MAX_FRAME`] (see [`slot_frame`]).
    pub max_frame: Option<usize>,
    /// Time source for elements.
    pub clock: Clock,
    /// What a worker does after an element panicked (its batch is dropped
    /// either way).
    pub on_panic: OnPanic,
    /// What a worker does when its queues are empty.
    pub idle: Idle,
    /// How often to call the progress callback (`None`: never).
    pub stats_interval: Option<Duration>,
    /// Set to stop the run (signal handlers set it).
    pub stop: Arc<AtomicBool>,
    /// A packet trace armed before the first packet (`run --trace N`):
    /// take its handle with [`Running::take_trace`].
    pub trace: Option<TraceRequest>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            cores: Vec::new(),
            burst: 32,
            pool: 4096,
            max_frame: None,
            clock: Clock::System,
            on_panic: OnPanic::Drop,
            idle: Idle::Sleep,
            stats_interval: None,
            stop: Arc::new(AtomicBool::new(false)),
            trace: None,
        }
    }
}

/// Errors that end a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A port failed (or its driver panicked) while running; the other
    /// workers were stopped.
    #[error("{error} (worker {worker}; the run stopped)")]
    Port {
        /// Worker index.
        worker: usize,
        /// What failed, naming the port.
        error: PortError,
    },
    /// A worker thread could not start or died.
    #[error("worker {worker}: {message}")]
    Worker {
        /// Worker index.
        worker: usize,
        /// What happened.
        message: String,
    },
    /// The options do not fit the ports.
    #[error("{0}")]
    Setup(String),
    /// An element panicked and `on_panic` is [`OnPanic::Stop`].
    #[error("element `{element}` (class {class}) panicked on worker {worker}: {message}\n(the run stopped because [runtime] on_panic = \"stop\")")]
    ElementPanic {
        /// Worker index.
        worker: usize,
        /// Element name.
        element: String,
        /// Its class.
        class: String,
        /// The panic's message and location.
        message: String,
    },
}

/// How often workers publish their counters.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Runs `spec` over the opened `ports` until every worker's sources have
/// ended or `opts.stop` is set. `progress` is called every
/// `opts.stats_interval` with the counters so far.
pub fn run(
    spec: &GraphSpec,
    ports: Vec<OpenPort>,
    opts: &RunOptions,
    progress: impl FnMut(&Report),
) -> Result<Report, RunError> {
    start(spec, ports, opts)?.wait(progress)
}

/// A run whose workers have started: [`Running::controller`] reaches into
/// it while it runs, [`Running::wait`] waits for its end.
pub struct Running {
    controller: Controller,
    handles: Vec<JoinHandle<Result<(), RunError>>>,
    stats_interval: Option<Duration>,
    trace: Option<Trace>,
}

/// Starts the workers of `spec` over the opened `ports` and returns at once.
pub fn start(
    spec: &GraphSpec,
    ports: Vec<OpenPort>,
    opts: &RunOptions,
) -> Result<Running, RunError> {
    if opts.workers == 0 {
        return Err(RunError::Setup("at least one worker is needed".into()));
    }
    if ports.len() != spec.ports.len() {
        return Err(RunError::Setup(format!(
            "{} ports opened for a graph of {}",
            ports.len(),
            spec.ports.len()
        )));
    }
    let start = Instant::now();
    let max_frame = slot_frame(opts.max_frame, &ports);
    log::info!(
        "packet slots hold frames of up to {max_frame} bytes{}",
        if opts.max_frame.is_some() {
            " ([runtime] max_frame)"
        } else {
            " (the largest the ports deliver)"
        }
    );
    let mut workers: Vec<Worker> = (0..opts.workers)
        .map(|w| Worker::new(w, opts, &spec.ports, max_frame))
        .collect();
    let port_meta = assign_queues(spec, ports, &mut workers);
    let shared = Shared {
        jobs: workers
            .iter_mut()
            .map(|w| Mutex::new(w.job_sender()))
            .collect(),
        snapshots: workers.iter().map(|w| w.snapshot_handle()).collect(),
        layout: Mutex::new(Layout::new(spec, port_meta)),
        start,
        max_frame,
        stop: opts.stop.clone(),
        opts: opts.clone(),
    };
    let controller = Controller {
        shared: Arc::new(shared),
    };
    // Queued before the workers start, so it sees their first packet.
    let trace = match &opts.trace {
        Some(t) => Some(
            controller
                .send_trace(t.count, t.filter.clone())
                .map_err(|e| RunError::Setup(e.to_string()))?
                .0,
        ),
        None => None,
    };
    let handles = spawn_workers(spec, workers)?;
    Ok(Running {
        controller,
        handles,
        stats_interval: opts.stats_interval,
        trace,
    })
}

impl Running {
    /// A handle on the run, for the control socket, metrics and reloads.
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// The trace [`RunOptions::trace`] armed (once).
    pub fn take_trace(&mut self) -> Option<Trace> {
        self.trace.take()
    }

    /// Waits until every worker has stopped and returns the final counters
    /// (or the first error). `progress` is called every `stats_interval`
    /// of the options with the counters so far.
    pub fn wait(self, mut progress: impl FnMut(&Report)) -> Result<Report, RunError> {
        let Running {
            controller,
            handles,
            stats_interval,
            trace: _,
        } = self;
        let mut next_progress = stats_interval.map(|i| Instant::now() + i);
        let mut woken = false;
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
            // A signal handler sets the flag and cannot wake sleeping workers.
            if !woken && controller.shared.stop.load(Ordering::SeqCst) {
                controller.wake_all();
                woken = true;
            }
            if let (Some(at), Some(interval)) = (next_progress, stats_interval) {
                if Instant::now() >= at {
                    progress(&controller.report());
                    next_progress = Some(at + interval);
                }
            }
        }
        match join_workers(handles, &controller.shared.stop) {
            Some(e) => Err(e),
            None => Ok(controller.report()),
        }
    }
}

/// Hands each port's receive queues to the workers and its transmit
/// handles one per worker (see [`split_port`]); returns what the report
/// needs of each port.
fn assign_queues(spec: &GraphSpec, ports: Vec<OpenPort>, workers: &mut [Worker]) -> Vec<PortMeta> {
    let mut port_meta = Vec::new();
    for (p, port) in ports.into_iter().enumerate() {
        let n = workers.len();
        let meta = split_port(&spec.ports[p], port, n, |w, queue| match queue {
            Queue::Rx(q, rx) => workers[w].add_rx(p, q, rx),
            Queue::Tx(tx) => workers[w].set_tx(p, tx),
        });
        port_meta.push(meta);
    }
    port_meta
}

/// A queue of an opened port, for one worker.
enum Queue {
    /// Receive queue number `.0`.
    Rx(usize, Box<dyn crate::port::RxQueue>),
    Tx(Box<dyn crate::port::TxQueue>),
}

/// Splits opened port `name` over `workers` workers: receive queue `q` to
/// worker `q % workers`, transmit handle `w` to worker `w`; returns what the
/// report needs of it.
fn split_port(
    name: &str,
    port: OpenPort,
    workers: usize,
    mut give: impl FnMut(usize, Queue),
) -> PortMeta {
    let OpenPort {
        rx,
        tx,
        driver,
        driver_stats,
        max_frame: _,
    } = port;
    let meta = (name.to_string(), driver, driver_stats, rx.len());
    for (q, queue) in rx.into_iter().enumerate() {
        give(q % workers, Queue::Rx(q, queue));
    }
    for (w, queue) in tx.into_iter().enumerate().take(workers) {
        give(w, Queue::Tx(queue));
    }
    meta
}

/// Starts a thread per worker, each running its own replica of the graph.
fn spawn_workers(
    spec: &GraphSpec,
    workers: Vec<Worker>,
) -> Result<Vec<JoinHandle<Result<(), RunError>>>, RunError> {
    let mut handles = Vec::new();
    // Each worker builds its replica on its own thread: the replica's
    // allocations (node table, output batches, drop counts, elements' own
    // tables) then come from that thread's malloc arena, not interleaved
    // with the other workers' on the starting thread's heap, where two
    // workers' hot state could share a cache line (see docs/benchmarks.md,
    // "Two-worker scaling").
    let spec = Arc::new(spec.clone());
    for worker in workers {
        let idx = worker.index();
        let spec = spec.clone();
        let h = std::thread::Builder::new()
            .name(format!("hpio-nf-w{idx}"))
            .spawn(move || {
                let graph = crate::graph::Graph::new(&spec, idx);
                drop(spec);
                worker.run(graph)
            })
            .map_err(|e| RunError::Worker {
                worker: idx,
                message: format!("cannot start thread: {e}"),
            })?;
        handles.push(h);
    }
    Ok(handles)
}

/// Joins every worker; returns the first error (a panic counts as one). A
/// failing worker sets `stop`, so the others stop too.
fn join_workers(
    handles: Vec<JoinHandle<Result<(), RunError>>>,
    stop: &AtomicBool,
) -> Option<RunError> {
    let mut first_error = None;
    for (w, h) in handles.into_iter().enumerate() {
        let res = h.join().unwrap_or_else(|p| {
            Err(RunError::Worker {
                worker: w,
                message: format!("panicked: {}", panic_message(&*p)),
            })
        });
        if let Err(e) = res {
            log::error!("{e}");
            // One failing worker stops the others.
            stop.store(true, Ordering::Relaxed);
            first_error.get_or_insert(e);
        }
    }
    first_error
}

/// Bytes of frame the run's packet slots hold: `max_frame` when set (at
/// most [`MAX_FRAME_LIMIT`]), else the largest frame any of `ports` delivers,
/// at least [`DEFAULT_MAX_FRAME`] (so runs of standard-MTU ports keep
/// 2048-byte slots).
pub fn slot_frame(max_frame: Option<usize>, ports: &[OpenPort]) -> usize {
    match max_frame {
        Some(m) => m.clamp(DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT),
        None => ports
            .iter()
            .map(|p| p.max_frame)
            .fold(DEFAULT_MAX_FRAME, usize::max)
            .min(MAX_FRAME_LIMIT),
    }
}

/// The text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}
