//! Taps and traces on a running graph ([`Controller::tap`],
//! [`Controller::trace`]): installed on every worker's replica between
//! bursts, removed when their handle is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::{ControlError, Controller};
use crate::elements::classify::Filter;
use crate::graph::{Edge, TapCopy, TapShared, TraceRecord, TraceShared};

/// Copies a tap holds for its reader by default: a reader further behind
/// loses copies (counted), the graph never waits.
pub const TAP_QUEUE: usize = 4096;

/// How long a reader sleeps when a tap has nothing for it.
const POLL: Duration = Duration::from_millis(1);

/// Tap and trace numbers (to remove the right one).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A trace to arm before a run starts ([`super::RunOptions::trace`]).
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// Packets to trace.
    pub count: u64,
    /// Only packets this selects.
    pub filter: Option<Filter>,
}

/// What [`Tap::next`] found.
#[derive(Debug)]
pub enum TapNext {
    /// A copy (hand it back with [`Tap::recycle`] once written).
    Copy(TapCopy),
    /// Nothing within the wait.
    Idle,
    /// No more copies will come: the count was reached or the run ended.
    Done,
}

/// A tap on one edge of a running graph. Dropping it removes it.
pub struct Tap {
    controller: Controller,
    id: u64,
    shared: Arc<TapShared>,
    edge: String,
    limit: Option<u64>,
    read: u64,
}

impl Tap {
    /// The edge, as the graph writes it (`fw[1] -> outside`, `left rx`).
    pub fn edge(&self) -> &str {
        &self.edge
    }

    /// The tap's number (unique in the process).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What the tap shares with the workers: its counts stay readable
    /// after the tap is gone.
    pub fn shared(&self) -> Arc<TapShared> {
        self.shared.clone()
    }

    /// The next copy, waiting up to `wait` for one.
    pub fn next(&mut self, wait: Duration) -> TapNext {
        let deadline = Instant::now() + wait;
        loop {
            if self.limit.is_some_and(|l| self.read >= l) {
                return TapNext::Done;
            }
            if let Some(c) = self.shared.pop() {
                self.read += 1;
                return TapNext::Copy(c);
            }
            if self.controller.ended() {
                // A last look: a worker may have queued more before it ended.
                return match self.shared.pop() {
                    Some(c) => {
                        self.read += 1;
                        TapNext::Copy(c)
                    }
                    None => TapNext::Done,
                };
            }
            if Instant::now() >= deadline {
                return TapNext::Idle;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Gives a copy's buffer back for reuse.
    pub fn recycle(&self, copy: TapCopy) {
        self.shared.recycle(copy)
    }

    /// Copies lost so far because the reader was behind.
    pub fn lost(&self) -> u64 {
        self.shared.lost()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let id = self.id;
        // Best effort: a run that has ended has nothing to remove.
        let _ = self
            .controller
            .on_each_worker(move |a| a.graph.remove_tap(id));
    }
}

/// A packet trace armed on a running graph. Dropping it disarms it.
pub struct Trace {
    controller: Controller,
    id: u64,
    shared: Arc<TraceShared>,
    records: Receiver<TraceRecord>,
    got: u64,
}

impl Trace {
    /// Packets asked for.
    pub fn count(&self) -> u64 {
        self.shared.count()
    }

    /// The next finished record, waiting up to `wait`; `None` when none
    /// came in time, or none will (all taken, or the run ended).
    pub fn next(&mut self, wait: Duration) -> Option<TraceRecord> {
        if self.got >= self.shared.count() {
            return None;
        }
        match self.records.recv_timeout(wait) {
            Ok(r) => {
                self.got += 1;
                Some(r)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Every record until the count is reached, the run ends, or `limit`
    /// has passed (`None`: until the count or the end), in packet order.
    pub fn collect(&mut self, limit: Option<Duration>) -> Vec<TraceRecord> {
        let mut out = Vec::new();
        let deadline = limit.map(|l| Instant::now() + l);
        while self.got < self.shared.count() {
            match self.next(POLL * 50) {
                Some(r) => out.push(r),
                None if self.controller.ended() => {
                    // Whatever the workers sent before they ended.
                    out.extend(self.records.try_iter());
                    break;
                }
                None if deadline.is_some_and(|d| Instant::now() >= d) => break,
                None => {}
            }
        }
        out.sort_by_key(|r| r.packet);
        out
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self
            .controller
            .on_each_worker(move |a| a.graph.disarm_trace(id));
    }
}

impl Controller {
    /// Installs a tap on `edge` of every worker's replica: copies of the
    /// frames crossing it (those `filter` selects; at most `limit`) wait for
    /// the reader in a queue of `capacity` copies; when it is full, copies
    /// are lost and counted ([`Tap::lost`]). Removed when the [`Tap`] is
    /// dropped.
    pub fn tap(
        &self,
        edge: &Edge,
        filter: Option<Filter>,
        limit: Option<u64>,
        capacity: usize,
    ) -> Result<Tap, ControlError> {
        let shared = Arc::new(TapShared::new(capacity, limit, filter));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (edge, tap) = (edge.clone(), shared.clone());
        let names = self.on_each_worker(move |a| {
            let e = a.graph.resolve(&edge)?;
            a.graph.add_tap(id, e, tap.clone());
            Ok(a.graph.edge_name(e))
        });
        let mut tap = Tap {
            controller: self.clone(),
            id,
            shared,
            edge: String::new(),
            limit,
            read: 0,
        };
        // On an error, dropping `tap` removes what any worker installed.
        tap.edge = first_answer(names?)?;
        Ok(tap)
    }

    /// Arms a trace of the next `count` packets that `filter` selects, on
    /// every worker. Disarmed when the [`Trace`] is dropped.
    pub fn trace(&self, count: u64, filter: Option<Filter>) -> Result<Trace, ControlError> {
        let (trace, answers) = self.send_trace(count, filter)?;
        first_answer(self.gather(answers)?)?;
        Ok(trace)
    }

    /// Queues the jobs that arm a trace, without waiting for the workers.
    #[allow(clippy::type_complexity)]
    pub(super) fn send_trace(
        &self,
        count: u64,
        filter: Option<Filter>,
    ) -> Result<(Trace, Receiver<(usize, Result<(), String>)>), ControlError> {
        let shared = Arc::new(TraceShared::new(count, filter));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, records) = mpsc::channel();
        let armed = shared.clone();
        let answers = self.send_each(move |a| a.graph.arm_trace(id, armed.clone(), tx.clone()))?;
        let trace = Trace {
            controller: self.clone(),
            id,
            shared,
            records,
            got: 0,
        };
        Ok((trace, answers))
    }
}

/// The first worker's answer, or the first error (every worker resolves
/// the same graph, so they agree).
fn first_answer<T>(answers: Vec<Result<T, String>>) -> Result<T, ControlError> {
    let mut first = None;
    for a in answers {
        match a {
            Ok(v) => {
                first.get_or_insert(v);
            }
            Err(e) => return Err(ControlError::Request(e)),
        }
    }
    first.ok_or_else(|| ControlError::Request("no worker answered".into()))
}
