//! One worker: its queues, pool and graph replica, and the loop that runs them.
//!
//! Under `clock = "packet"` the worker's replay queues (pcap inputs, see
//! [`RxQueue::replay`]) are merged by timestamp ([`Merge`]); every other
//! queue is read burst by burst, in turn.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::idle::{Flags, Sleeper, Waker};
use super::pass_clock::{cpu_ns, PassClock, IDLE_READ_EVERY};
use super::{panic_message, Clock, OnPanic, RunError, RunOptions, PUBLISH_EVERY};
use crate::element::{Context, Grace, Participant};
use crate::graph::{ElementCounters, ElementPanic, Graph};
use crate::packet::{Batch, Pool};
use crate::port::{PortError, QueueStats, Recv, RxQueue, TxQueue};

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
    /// Seconds of loop passes that received packets.
    pub busy_secs: f64,
    /// Seconds of loop passes that found nothing (spinning, yielding, sleeping).
    pub idle_secs: f64,
    /// Sleeps in `poll` (`[runtime] idle = "sleep"`), and seconds spent in them.
    pub sleeps: u64,
    pub sleep_secs: f64,
    /// CPU seconds the worker's thread has used in its loop (see [`cpu_ns`]).
    pub cpu_secs: f64,
}

/// What a job may use: the worker, its graph replica and its pool.
pub(crate) struct WorkerAccess<'a> {
    pub worker: &'a mut Worker,
    pub graph: &'a mut Graph,
    pub pool: &'a mut Pool,
    /// The worker's clock at its last burst.
    pub now_ns: u64,
}

/// A control job for one worker (see [`super::Controller`]).
pub(crate) type Job = Box<dyn FnOnce(&mut WorkerAccess<'_>) + Send>;

/// The sending end of a worker's jobs: the channel, and a flag the worker
/// checks once per pass (a load, where an empty-channel check costs some
/// forty instructions).
pub(crate) struct JobSender {
    jobs: Sender<Job>,
    pending: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl JobSender {
    /// Queues `job` for the worker's next pass; an error when the worker
    /// has ended.
    pub fn send(&self, job: Job) -> Result<(), mpsc::SendError<Job>> {
        self.jobs.send(job)?;
        // After the send: a worker that sees the flag finds the job. Then
        // the worker is woken if it sleeps (see `idle` for the ordering).
        self.pending.store(true, Ordering::SeqCst);
        self.waker.wake();
        Ok(())
    }

    /// Wakes the worker if it sleeps in `poll` (after the stop flag was set).
    pub fn wake(&self) {
        self.waker.wake();
    }
}

pub(super) struct RxSlot {
    pub port: usize,
    queue: usize,
    pub rx: Box<dyn RxQueue>,
    /// `recv` said `Ended` (packets may still wait in `pending`).
    pub ended: bool,
    /// Merged replay queues only: packets read ahead, oldest first.
    pub pending: Batch,
}

pub(crate) struct Worker {
    pub(super) index: usize,
    core: Option<usize>,
    burst: usize,
    pool_size: usize,
    max_frame: usize,
    pub(super) clock: Clock,
    pub(super) on_panic: OnPanic,
    stop: Arc<AtomicBool>,
    /// Port names (for errors).
    pub(super) names: Vec<String>,
    /// Queues read burst by burst.
    pub(super) rx: Vec<RxSlot>,
    /// Replay queues merged by timestamp (`clock = "packet"`), in port order.
    pub(super) merged: Vec<RxSlot>,
    pub(super) tx: Vec<Option<Box<dyn TxQueue>>>,
    snapshot: Arc<Mutex<Snapshot>>,
    bursts: u64,
    idle_polls: u64,
    /// Loop time so far, and the part of it in passes that received
    /// packets, in nanoseconds (see `main_loop`).
    loop_ns: u64,
    busy_ns: u64,
    started: Option<Instant>,
    /// The thread's CPU time when the loop started (see [`cpu_ns`]).
    cpu_start: u64,
    /// The time of the last burst (what `Context::now` said).
    pub(super) last_now: u64,
    /// The merge had to go on without knowing every input's next packet.
    order_warned: bool,
    /// Control jobs, run between bursts.
    jobs: Receiver<Job>,
    /// Set by [`JobSender::send`] after it queued a job.
    jobs_pending: Arc<AtomicBool>,
    /// The sending end, until the run takes it ([`Worker::job_sender`]).
    job_sender: Option<JobSender>,
    /// An error a job ran into (a reload's flush), ending the run.
    pub(super) fault: Option<RunError>,
    /// Sleeping when idle (see `idle`).
    pub(super) sleeper: Sleeper,
    /// Its slot in the grace-period domain: quiescent at the top of each
    /// pass, offline while asleep, unregistered when the worker is dropped.
    pub(super) grace: Participant,
}

impl Worker {
    pub fn new(index: usize, opts: &RunOptions, names: &[String], max_frame: usize) -> Worker {
        let (sender, jobs) = mpsc::channel();
        let jobs_pending = Arc::new(AtomicBool::new(false));
        let waker = Waker::new(opts.idle, index);
        let job_sender = JobSender {
            jobs: sender,
            pending: jobs_pending.clone(),
            waker: waker.clone(),
        };
        Worker {
            index,
            core: opts.cores.get(index).copied(),
            burst: opts.burst.max(1),
            pool_size: opts.pool.max(opts.burst * 2),
            max_frame,
            clock: opts.clock,
            on_panic: opts.on_panic,
            stop: opts.stop.clone(),
            names: names.to_vec(),
            rx: Vec::new(),
            merged: Vec::new(),
            tx: (0..names.len()).map(|_| None).collect(),
            snapshot: Arc::new(Mutex::new(Snapshot::default())),
            bursts: 0,
            idle_polls: 0,
            loop_ns: 0,
            busy_ns: 0,
            started: None,
            cpu_start: 0,
            last_now: 0,
            order_warned: false,
            jobs,
            jobs_pending,
            job_sender: Some(job_sender),
            fault: None,
            sleeper: Sleeper::new(waker),
            grace: Grace::global().register(),
        }
    }

    /// The sending end of this worker's job channel (once: the worker
    /// stops taking jobs when it ends, and dropping its receiver then tells
    /// the senders).
    pub fn job_sender(&mut self) -> JobSender {
        self.job_sender
            .take()
            .expect("the job sender is taken once")
    }

    /// Runs the control jobs waiting, if any (between bursts): one load
    /// when there is none. A port error one of them ran into ends the run.
    #[inline]
    fn run_jobs(
        &mut self,
        graph: &mut Graph,
        pool: &mut Pool,
        now_ns: u64,
    ) -> Result<(), RunError> {
        if self.jobs_pending.load(Ordering::Relaxed) {
            self.run_pending_jobs(graph, pool, now_ns)
        } else {
            Ok(())
        }
    }

    #[cold]
    #[inline(never)]
    fn run_pending_jobs(
        &mut self,
        graph: &mut Graph,
        pool: &mut Pool,
        now_ns: u64,
    ) -> Result<(), RunError> {
        // Cleared before the channel is read, and with Acquire: a job sent
        // before the flag was set is found now; one sent after sets it again.
        self.jobs_pending.swap(false, Ordering::Acquire);
        while let Ok(job) = self.jobs.try_recv() {
            job(&mut WorkerAccess {
                worker: self,
                graph,
                pool,
                now_ns,
            });
            if let Some(e) = self.fault.take() {
                return Err(e);
            }
        }
        Ok(())
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// Adds receive queue `queue` of port `port` (called in port order).
    pub fn add_rx(&mut self, port: usize, queue: usize, rx: Box<dyn RxQueue>) {
        let ordered = self.clock == Clock::Packet && rx.replay();
        let slot = RxSlot {
            port,
            queue,
            rx,
            ended: false,
            pending: Batch::new(),
        };
        if ordered {
            self.merged.push(slot);
        } else {
            self.rx.push(slot);
        }
    }

    pub fn set_tx(&mut self, port: usize, tx: Box<dyn TxQueue>) {
        self.tx[port] = Some(tx);
    }

    pub fn snapshot_handle(&self) -> Arc<Mutex<Snapshot>> {
        self.snapshot.clone()
    }

    /// Runs until every receive queue has ended or the stop flag is set.
    /// An error (or a panic in a port driver) sets the stop flag, so that
    /// the other workers stop too.
    pub fn run(mut self, mut graph: Graph) -> Result<(), RunError> {
        // Set on every way out but a clean end, unwinding included.
        let stop_others = StopOnDrop(Some(self.stop.clone()));
        // The tables of queues move to this thread's heap (see `spawn_workers`).
        let (mut rx, mut tx) = (Vec::with_capacity(self.rx.len()), Vec::new());
        rx.append(&mut self.rx);
        tx.append(&mut self.tx);
        (self.rx, self.tx) = (rx, tx);
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                log::warn!("worker {}: could not pin to core {core}", self.index);
            }
        }
        log::debug!(
            "worker {} on core {:?}: {} receive queue(s): {}{}",
            self.index,
            self.core,
            self.rx.len() + self.merged.len(),
            self.rx
                .iter()
                .chain(&self.merged)
                .map(|r| format!("port {} queue {}", r.port, r.queue))
                .collect::<Vec<_>>()
                .join(", "),
            if self.merged.is_empty() {
                ""
            } else {
                " (replays merged by timestamp)"
            }
        );
        // Merged queues read a burst ahead each: keep them to half the pool.
        let pool_size = self.pool_size.max(2 * self.burst * self.merged.len());
        let mut pool = Pool::with_max_frame(pool_size, self.max_frame);
        let mut result = self.main_loop(&mut graph, &mut pool);
        for slot in &mut self.merged {
            pool.free_batch(&mut slot.pending);
        }
        // Elements that hold packets back output or drop them (counted).
        graph.finish(&mut Context::new(&mut pool, self.last_now, self.index));
        while let Some(p) = graph.take_panic() {
            result = result.and(element_panicked(self.on_panic, self.index, p));
        }
        // Whatever happened, send what is queued and close files cleanly.
        let flushed = self.flush(&mut graph, &mut pool).and_then(|_| {
            for (port, tx) in self.tx.iter_mut().enumerate() {
                if let Some(tx) = tx {
                    guarded(&self.names[port], self.index, "finish", || tx.finish())?;
                }
            }
            Ok(())
        });
        self.publish(&graph, &pool, true);
        let index = self.index;
        let result = result.and(flushed.map_err(|error| RunError::Port {
            worker: index,
            error,
        }));
        if result.is_ok() {
            stop_others.disarm();
        }
        result
    }

    pub(super) fn port_error(&self, error: PortError) -> RunError {
        RunError::Port {
            worker: self.index,
            error,
        }
    }

    fn main_loop(&mut self, graph: &mut Graph, pool: &mut Pool) -> Result<(), RunError> {
        let start = Instant::now();
        self.started = Some(start);
        self.cpu_start = cpu_ns();
        let mut batch = Batch::new();
        // Read once per pass that received packets, rarely on empty ones
        // (see `pass_clock`).
        let mut clock = PassClock::new(start, self.clock == Clock::System);
        let mut idle: u32 = 0;
        let publish_every = PUBLISH_EVERY.as_nanos() as u64;
        let mut next_publish = publish_every;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                let t = clock.fresh();
                self.set_times(t, clock.busy_ns);
                return Ok(());
            }
            // Between two bursts: nothing of a shared table is held.
            self.grace.quiescent();
            self.run_jobs(graph, pool, clock.now)?;
            clock.pass();
            if clock.after_busy() {
                // The end of the last pass's busy time (and, when this
                // pass is busy too, the start of its own).
                clock.read();
            }
            let (mut got, mut live) = self.plain_pass(graph, pool, &mut batch, &mut clock)?;
            if !self.merged.is_empty() {
                let (g, l) = self.merge_pass(graph, pool, &mut batch, &mut clock)?;
                got += g;
                live += l;
            }
            if got > 0 {
                idle = 0;
            } else {
                self.idle_polls += 1;
                idle = idle.saturating_add(1);
                if idle % IDLE_READ_EVERY == 0 || self.may_sleep(idle) {
                    clock.read();
                }
            }
            let timers = clock.read && clock.now >= graph.timer_deadline();
            if timers {
                self.run_timers(graph, pool, clock.now)?;
            }
            if got > 0 || timers {
                self.flush(graph, pool).map_err(|e| self.port_error(e))?;
            }
            clock.end_pass(got > 0);
            if got == 0 {
                self.back_off(idle, self.sleep_limit(graph, &clock))?;
            }
            if live == 0 {
                let t = clock.fresh();
                self.set_times(t, clock.busy_ns);
                return Ok(());
            }
            if clock.read && clock.t >= next_publish {
                next_publish = clock.t + publish_every;
                self.set_times(clock.t, clock.busy_ns);
                self.publish(graph, pool, false);
            }
        }
    }

    /// An idle pass's back-off (see `idle`): may sleep in `poll` unless a
    /// transmit queue has a backlog or replays are merged. After a sleep,
    /// each live queue is told ([`RxQueue::slept`]); its error ends the run.
    fn back_off(&mut self, idle: u32, limit: std::time::Duration) -> Result<(), RunError> {
        let flags = Flags {
            jobs: &self.jobs_pending,
            stop: &self.stop,
            grace: &self.grace,
        };
        let can = self.merged.is_empty() && !self.tx.iter().flatten().any(|t| t.backlog());
        let live = self.rx.iter().filter(|s| !s.ended);
        let polled = || live.clone().any(|s| s.rx.polled());
        let fds = can.then(|| live.clone().map(|s| s.rx.wait_fd()));
        if !self.sleeper.back_off(idle, fds, flags, limit, polled) {
            return Ok(());
        }
        for s in self.rx.iter_mut().filter(|s| !s.ended) {
            let r = guarded(&self.names[s.port], self.index, "receive", || s.rx.slept());
            r.map_err(|error| RunError::Port {
                worker: self.index,
                error,
            })?;
        }
        Ok(())
    }

    /// Records the loop's time so far and the busy part of it, for
    /// [`Worker::publish`].
    fn set_times(&mut self, loop_ns: u64, busy_ns: u64) {
        self.loop_ns = loop_ns;
        self.busy_ns = busy_ns;
    }

    /// One burst from each queue that is not merged. Returns the packets
    /// received and the number of queues still live.
    fn plain_pass(
        &mut self,
        graph: &mut Graph,
        pool: &mut Pool,
        batch: &mut Batch,
        clock: &mut PassClock,
    ) -> Result<(usize, usize), RunError> {
        let (mut got, mut live) = (0, 0);
        for i in 0..self.rx.len() {
            if self.rx[i].ended {
                continue;
            }
            live += 1;
            let slot = &mut self.rx[i];
            let (port, burst) = (slot.port, self.burst);
            let r = guarded(&self.names[port], self.index, "receive", || {
                slot.rx.recv(pool, batch, burst)
            });
            match r.map_err(|e| self.port_error(e))? {
                Recv::Ended => self.rx[i].ended = true,
                Recv::Got(0) => {}
                Recv::Got(n) => {
                    got += n;
                    self.bursts += 1;
                    // The pass's one reading, at its first burst.
                    clock.read();
                    self.push(graph, pool, port, batch, &mut clock.now)?;
                }
            }
        }
        Ok((got, live))
    }

    /// Packets of `batch` (all from `port`) through the graph.
    fn push(
        &mut self,
        graph: &mut Graph,
        pool: &mut Pool,
        port: usize,
        batch: &mut Batch,
        now_ns: &mut u64,
    ) -> Result<(), RunError> {
        for p in batch.iter_mut() {
            p.set_in_port(Some(port));
        }
        if self.clock == Clock::Packet {
            *now_ns = batch.iter().map(|p| p.timestamp()).fold(*now_ns, u64::max);
        }
        self.last_now = *now_ns;
        // The worker is online (it sleeps only in `back_off`) and passes its
        // quiescent point at the top of the next pass.
        let mut cx = Context::new(pool, *now_ns, self.index).in_burst(&self.grace);
        graph.push_from_port(&mut cx, port, batch);
        while let Some(p) = graph.take_panic() {
            element_panicked(self.on_panic, self.index, p)?;
        }
        Ok(())
    }

    /// One step of the timestamp merge of the replay queues: refills each
    /// queue's read-ahead that ran dry, then pushes the run of packets of
    /// the queue with the oldest head that come before every other queue's
    /// head (at most a burst). Equal timestamps go in port order. Returns
    /// the packets pushed and the number of queues still live.
    fn merge_pass(
        &mut self,
        graph: &mut Graph,
        pool: &mut Pool,
        batch: &mut Batch,
        clock: &mut PassClock,
    ) -> Result<(usize, usize), RunError> {
        let mut waiting = false;
        for i in 0..self.merged.len() {
            let slot = &mut self.merged[i];
            if slot.ended || !slot.pending.is_empty() {
                continue;
            }
            let (port, burst) = (slot.port, self.burst);
            let r = guarded(&self.names[port], self.index, "receive", || {
                slot.rx.recv(pool, &mut slot.pending, burst)
            });
            match r.map_err(|e| self.port_error(e))? {
                Recv::Ended => self.merged[i].ended = true,
                // Only an empty pool stops a replay queue short.
                Recv::Got(0) => waiting = true,
                Recv::Got(_) => self.bursts += 1,
            }
        }
        let live = self
            .merged
            .iter()
            .filter(|s| !s.ended || !s.pending.is_empty())
            .count();
        if waiting && pool.available() > 0 {
            // A queue's next timestamp is unknown yet: try again.
            return Ok((0, live));
        }
        // (With the pool empty, the packets held here must move on to free
        // slots, and the order may break: only when elements hold over half
        // the pool, see `run`.)
        let Some((first, k)) = next_run(&self.merged, self.burst) else {
            return Ok((0, live));
        };
        if waiting && !self.order_warned {
            self.order_warned = true;
            log::warn!(
                "worker {}: the pool ran out while replaying pcap inputs in timestamp order; \
                 packets may now reach the graph out of order (elements hold over half of \
                 [runtime] pool = {}: raise it)",
                self.index,
                self.pool_size
            );
        }
        let port = self.merged[first].port;
        batch.extend(self.merged[first].pending.drain(..k));
        clock.read();
        self.push(graph, pool, port, batch, &mut clock.now)?;
        Ok((k, live))
    }

    /// Sends every port's waiting packets: one call per port per burst.
    pub(super) fn flush(&mut self, graph: &mut Graph, pool: &mut Pool) -> Result<(), PortError> {
        for port in 0..graph.ports() {
            let batch = graph.tx_batch(port);
            if batch.is_empty() {
                continue;
            }
            match &mut self.tx[port] {
                Some(tx) => guarded(&self.names[port], self.index, "transmit", || {
                    tx.send(pool, batch)
                })?,
                // No transmit handle (the config checker prevents this): recycle.
                None => pool.free_batch(batch),
            }
        }
        Ok(())
    }

    pub(super) fn publish(&self, graph: &Graph, pool: &Pool, finished: bool) {
        let ports = graph.ports();
        let mut rx = vec![QueueStats::default(); ports];
        for slot in self.rx.iter().chain(&self.merged) {
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
            s.busy_secs = self.busy_ns as f64 * 1e-9;
            s.idle_secs = self.loop_ns.saturating_sub(self.busy_ns) as f64 * 1e-9;
            s.sleeps = self.sleeper.sleeps;
            s.sleep_secs = self.sleeper.sleep_ns as f64 * 1e-9;
            s.cpu_secs = cpu_ns().saturating_sub(self.cpu_start) as f64 * 1e-9;
            s.finished = finished;
        }
    }
}

/// The next run of the merge: the slot whose first pending packet is the
/// oldest (ties: the first slot, that is the lowest port), and how many of
/// its pending packets (at most `burst`, at least 1) come before the first
/// pending packet of every other slot. `None` when nothing is pending.
pub(super) fn next_run(slots: &[RxSlot], burst: usize) -> Option<(usize, usize)> {
    let mut first: Option<(u64, usize)> = None;
    let mut second: Option<(u64, usize)> = None;
    for (i, s) in slots.iter().enumerate() {
        let Some(p) = s.pending.first() else { continue };
        let key = (p.timestamp(), i);
        if first.is_none_or(|f| key < f) {
            second = first;
            first = Some(key);
        } else if second.is_none_or(|s| key < s) {
            second = Some(key);
        }
    }
    let (_, i) = first?;
    let pending = &slots[i].pending;
    let limit = pending.len().min(burst);
    let k = match second {
        None => limit,
        // Slot i's packets go before a later slot's head of equal time,
        // after an earlier slot's.
        Some((ts, j)) => pending[..limit]
            .iter()
            .take_while(|p| (p.timestamp(), i) < (ts, j))
            .count(),
    };
    Some((i, k.max(1)))
}

/// Calls port driver code, turning a panic into an error naming the port,
/// the worker and what was being done.
pub(super) fn guarded<T>(
    port: &str,
    worker: usize,
    what: &str,
    f: impl FnOnce() -> Result<T, PortError>,
) -> Result<T, PortError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(PortError::other(
            port,
            format!(
                "the driver panicked on {what} in worker {worker}: {}",
                panic_message(&*p)
            ),
        ))
    })
}

/// Sets the stop flag when dropped, unless disarmed.
struct StopOnDrop(Option<Arc<AtomicBool>>);

impl StopOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = &self.0 {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// Applies `on_panic` to an element's first panic: log it once and go on,
/// or stop the run.
#[cold]
pub(super) fn element_panicked(
    on_panic: OnPanic,
    worker: usize,
    p: ElementPanic,
) -> Result<(), RunError> {
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
