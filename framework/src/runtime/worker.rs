//! One worker: its queues, pool and graph replica, and the loop that runs them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Clock, OnPanic, RunError, RunOptions, PUBLISH_EVERY};
use crate::element::Context;
use crate::graph::{ElementCounters, ElementPanic, Graph};
use crate::packet::{Batch, Pool};
use crate::port::{QueueStats, Recv, RxQueue, TxQueue};

/// Counters a worker publishes for the reporter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Per port: received (summed over this worker's queues).
    pub rx: Vec<QueueStats>,
    /// Per port: transmitted by this worker.
    pub tx: Vec<QueueStats>,
    /// Per element.
    pub elements: Vec<ElementCounters>,
    pub core: Option<usize>,
    pub bursts: u64,
    pub idle_polls: u64,
    pub pool_exhausted: u64,
    pub finished: bool,
    /// Seconds from the loop's start to now (or to its end).
    pub run_secs: f64,
}

struct RxSlot {
    port: usize,
    queue: usize,
    rx: Box<dyn RxQueue>,
    ended: bool,
}

pub(crate) struct Worker {
    index: usize,
    core: Option<usize>,
    burst: usize,
    pool_size: usize,
    max_frame: usize,
    clock: Clock,
    on_panic: OnPanic,
    stop: Arc<AtomicBool>,
    rx: Vec<RxSlot>,
    tx: Vec<Option<Box<dyn TxQueue>>>,
    snapshot: Arc<Mutex<Snapshot>>,
    bursts: u64,
    idle_polls: u64,
    started: Option<Instant>,
    /// The time of the last burst (what `Context::now` said).
    last_now: u64,
}

/// Idle passes spent spinning before the worker starts to yield, then sleep.
const SPIN_PASSES: u32 = 64;
const YIELD_PASSES: u32 = 256;
const IDLE_SLEEP: Duration = Duration::from_micros(50);

impl Worker {
    pub fn new(index: usize, opts: &RunOptions, ports: usize, max_frame: usize) -> Worker {
        Worker {
            index,
            core: opts.cores.get(index).copied(),
            burst: opts.burst.max(1),
            pool_size: opts.pool.max(opts.burst * 2),
            max_frame,
            clock: opts.clock,
            on_panic: opts.on_panic,
            stop: opts.stop.clone(),
            rx: Vec::new(),
            tx: (0..ports).map(|_| None).collect(),
            snapshot: Arc::new(Mutex::new(Snapshot::default())),
            bursts: 0,
            idle_polls: 0,
            started: None,
            last_now: 0,
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn add_rx(&mut self, port: usize, queue: usize, rx: Box<dyn RxQueue>) {
        self.rx.push(RxSlot {
            port,
            queue,
            rx,
            ended: false,
        });
    }

    pub fn set_tx(&mut self, port: usize, tx: Box<dyn TxQueue>) {
        self.tx[port] = Some(tx);
    }

    pub fn snapshot_handle(&self) -> Arc<Mutex<Snapshot>> {
        self.snapshot.clone()
    }

    /// Runs until every receive queue has ended or the stop flag is set.
    pub fn run(mut self, mut graph: Graph) -> Result<(), RunError> {
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                log::warn!("worker {}: could not pin to core {core}", self.index);
            }
        }
        log::debug!(
            "worker {} on core {:?}: {} receive queue(s): {}",
            self.index,
            self.core,
            self.rx.len(),
            self.rx
                .iter()
                .map(|r| format!("port {} queue {}", r.port, r.queue))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut pool = Pool::with_max_frame(self.pool_size, self.max_frame);
        let mut result = self.main_loop(&mut graph, &mut pool);
        // Elements that hold packets back output or drop them (counted).
        graph.finish(&mut Context::new(&mut pool, self.last_now, self.index));
        while let Some(p) = graph.take_panic() {
            result = result.and(element_panicked(self.on_panic, self.index, p));
        }
        // Whatever happened, send what is queued and close files cleanly.
        let flushed = self.flush(&mut graph, &mut pool).and_then(|_| {
            for tx in self.tx.iter_mut().flatten() {
                tx.finish()?;
            }
            Ok(())
        });
        self.publish(&graph, &pool, true);
        let result = result.and(flushed.map_err(RunError::from));
        if result.is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
        result
    }

    fn main_loop(&mut self, graph: &mut Graph, pool: &mut Pool) -> Result<(), RunError> {
        let start = Instant::now();
        self.started = Some(start);
        let mut batch = Batch::new();
        let mut now_ns: u64 = 0;
        let mut idle: u32 = 0;
        let mut next_publish = start + PUBLISH_EVERY;
        let mut passes: u64 = 0;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if self.clock == Clock::System {
                now_ns = start.elapsed().as_nanos() as u64;
            }
            let mut got = 0;
            let mut live = 0;
            for slot in self.rx.iter_mut().filter(|s| !s.ended) {
                live += 1;
                match slot.rx.recv(pool, &mut batch, self.burst)? {
                    Recv::Ended => slot.ended = true,
                    Recv::Got(0) => {}
                    Recv::Got(n) => {
                        got += n;
                        self.bursts += 1;
                        for p in batch.iter_mut() {
                            p.set_in_port(Some(slot.port));
                        }
                        if self.clock == Clock::Packet {
                            now_ns = batch.iter().map(|p| p.timestamp()).fold(now_ns, u64::max);
                        }
                        self.last_now = now_ns;
                        let mut cx = Context::new(pool, now_ns, self.index);
                        graph.push_from_port(&mut cx, slot.port, &mut batch);
                        while let Some(p) = graph.take_panic() {
                            element_panicked(self.on_panic, self.index, p)?;
                        }
                    }
                }
            }
            if got > 0 {
                self.flush(graph, pool)?;
                idle = 0;
            } else {
                self.idle_polls += 1;
                idle = idle.saturating_add(1);
                if idle < SPIN_PASSES {
                    std::hint::spin_loop();
                } else if idle < YIELD_PASSES {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(IDLE_SLEEP);
                }
            }
            if live == 0 {
                return Ok(());
            }
            passes += 1;
            if (passes & 63 == 0 || got == 0) && Instant::now() >= next_publish {
                next_publish += PUBLISH_EVERY;
                self.publish(graph, pool, false);
            }
        }
    }

    /// Sends every port's waiting packets: one call per port per burst.
    fn flush(&mut self, graph: &mut Graph, pool: &mut Pool) -> Result<(), crate::port::PortError> {
        for port in 0..graph.ports() {
            let batch = graph.tx_batch(port);
            if batch.is_empty() {
                continue;
            }
            match &mut self.tx[port] {
                Some(tx) => tx.send(pool, batch)?,
                // No transmit handle (the config checker prevents this): recycle.
                None => pool.free_batch(batch),
            }
        }
        Ok(())
    }

    fn publish(&self, graph: &Graph, pool: &Pool, finished: bool) {
        let ports = graph.ports();
        let mut rx = vec![QueueStats::default(); ports];
        for slot in &self.rx {
            rx[slot.port] += slot.rx.stats();
        }
        let tx = self
            .tx
            .iter()
            .map(|t| t.as_ref().map(|t| t.stats()).unwrap_or_default())
            .collect();
        let elements = graph.counters();
        if let Ok(mut s) = self.snapshot.lock() {
            s.rx = rx;
            s.tx = tx;
            s.elements = elements;
            s.core = self.core;
            s.pool_exhausted = pool.exhausted();
            s.bursts = self.bursts;
            s.idle_polls = self.idle_polls;
            s.run_secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
            s.finished = finished;
        }
    }
}

/// Applies `on_panic` to an element's first panic: log it once and go on,
/// or stop the run.
#[cold]
fn element_panicked(on_panic: OnPanic, worker: usize, p: ElementPanic) -> Result<(), RunError> {
    match on_panic {
        OnPanic::Stop => Err(RunError::ElementPanic {
            worker,
            element: p.element,
            class: p.class.to_string(),
            message: p.message,
        }),
        OnPanic::Drop => {
            log::error!(
                "element `{}` (class {}) panicked on worker {}: {}; its batch of {} packet(s) was dropped; \
                 going on ([runtime] on_panic = \"drop\"), counting its later panics as drops with reason `panic`",
                p.element,
                p.class,
                worker,
                p.message,
                p.dropped
            );
            Ok(())
        }
    }
}
