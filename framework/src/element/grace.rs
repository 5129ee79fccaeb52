//! Grace periods for state the workers share (quiescent-state-based
//! reclamation, as DPDK's `rte_rcu_qsbr` and VPP's worker barrier do it).
//!
//! Workers read shared tables between the start and the end of a burst and
//! hold nothing of them across a pass of their loop: at the top of each
//! pass (where they run their control jobs) a worker is *quiescent*. A
//! writer that unpublished something (a route table's old block, a group
//! index no entry names any more) takes a [`GraceToken`] with
//! [`Grace::start`]; once [`Grace::passed`] says so, every worker that was
//! online then has been quiescent since, so none still holds a reference
//! to what was unpublished before the token, and it may be freed or reused.
//!
//! ```text
//! token: 1, 2, 3 ...           (advanced by Grace::start, a writer's call)
//! worker slot: 0 = offline     (asleep in poll, ended, or not started)
//!              t = the token the worker read at its last quiescent point
//! passed(T): every slot is 0 or >= T
//! ```
//!
//! Per pass a worker loads the token (a line only writers store to) and
//! stores it into its own slot, a cache line of its own: no per-packet
//! cost, no line two workers write. A worker going to sleep in `poll` goes
//! offline first, so that no writer waits for a sleeping worker, and online
//! again when it wakes (before it reads a table). [`Grace::passed`] never
//! blocks: the writer usually runs on worker 0 (a `Combine::Once` handler),
//! which would wait for itself; it keeps what it retired in a list and
//! reclaims it on a later call.
//!
//! One domain ([`Grace::global`]) serves every run of the process, and so
//! the runs before and after a reload alike; where no worker is registered
//! (unit tests, test harnesses, the configure step) every grace has passed
//! at once. Tests make a domain of their own with [`Grace::new`].

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{fence, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};

/// A domain: the token and the slots of the workers registered in it.
#[derive(Debug)]
pub struct Grace {
    /// The last token handed out; starts at 1 (0 means offline).
    token: AtomicU64,
    /// The registered workers' slots (writers and registration only).
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// One worker's counter, on a cache line of its own (two lines: the
/// adjacent-line prefetcher pairs them).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Slot(AtomicU64);

/// A grace period's start: see [`Grace::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GraceToken(u64);

impl Default for Grace {
    fn default() -> Self {
        Grace::new()
    }
}

impl Grace {
    /// A domain with no worker registered.
    pub fn new() -> Grace {
        Grace {
            token: AtomicU64::new(1),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The process's domain: the runtime's workers register in it, and
    /// elements reach it through [`ConfigCx::grace`](super::ConfigCx::grace).
    pub fn global() -> Arc<Grace> {
        static GLOBAL: OnceLock<Arc<Grace>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(Grace::new())).clone()
    }

    /// Starts a grace period: call it after unpublishing what is to be
    /// freed (after the store that makes readers stop finding it).
    pub fn start(&self) -> GraceToken {
        // SeqCst: ordered after the writer's unpublishing stores and before
        // its later loads of the slots (see `Participant::online`).
        GraceToken(self.token.fetch_add(1, SeqCst) + 1)
    }

    /// Whether every worker online at `t`'s start has passed a quiescent
    /// point since (or gone offline): what was unpublished before
    /// [`Grace::start`] is then read by none. Never blocks.
    pub fn passed(&self, t: &GraceToken) -> bool {
        fence(SeqCst);
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.iter().all(|s| {
            // Acquire: the worker's reads before its quiescent store
            // happen before whatever the caller does next (free, reuse).
            let c = s.0.load(Acquire);
            c == 0 || c >= t.0
        })
    }

    /// Registers the calling worker, online: it must call
    /// [`Participant::quiescent`] between its bursts from now on.
    pub fn register(self: &Arc<Grace>) -> Participant {
        let slot = Arc::new(Slot(AtomicU64::new(0)));
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot.clone());
        let p = Participant {
            grace: self.clone(),
            slot,
        };
        p.online();
        p
    }

    /// Workers registered.
    pub fn registered(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A worker's membership of a [`Grace`] domain; unregisters when dropped
/// (a worker that ends, unwinding included, holds up no grace).
#[derive(Debug)]
pub struct Participant {
    grace: Arc<Grace>,
    slot: Arc<Slot>,
}

impl Participant {
    /// A quiescent point: the worker holds no reference into shared state
    /// (between two bursts). One load and one store.
    #[inline(always)]
    pub fn quiescent(&self) {
        // Release: the reads of the bursts before come before it for a
        // writer that loads the slot with Acquire.
        self.slot.0.store(self.grace.token.load(Relaxed), Release);
    }

    /// The worker stops reading shared state until [`Participant::online`]
    /// (it goes to sleep): no grace waits for it meanwhile.
    pub fn offline(&self) {
        self.slot.0.store(0, Release);
    }

    /// The worker reads shared state again (after a sleep).
    pub fn online(&self) {
        self.slot.0.store(self.grace.token.load(Relaxed), Relaxed);
        // SeqCst fence between the store and the worker's next reads of
        // shared state, as in `Grace::passed` between a writer's
        // unpublishing and its loads of the slots (Dekker): either the
        // writer sees this slot online with a token older than its own, or
        // the worker's reads see the unpublishing.
        fence(SeqCst);
    }

    /// Whether this is a slot of `domain`.
    #[inline]
    pub(crate) fn is_of(&self, domain: &Arc<Grace>) -> bool {
        Arc::ptr_eq(&self.grace, domain)
    }

    /// The range of memory the worker writes per pass (tests of cache
    /// line sharing).
    #[cfg(test)]
    pub(crate) fn hot_range(&self) -> (usize, usize) {
        (
            &*self.slot as *const Slot as usize,
            std::mem::size_of::<Slot>(),
        )
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.offline();
        let mut slots = self.grace.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| !Arc::ptr_eq(s, &self.slot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_no_worker_every_grace_has_passed() {
        let g = Grace::new();
        let t = g.start();
        assert!(g.passed(&t));
    }

    /// A worker that has not passed a quiescent point since the start
    /// holds the grace open; passing one, going offline or ending (its
    /// participant dropped) releases it.
    #[test]
    fn a_grace_waits_for_each_online_worker_and_for_no_other() {
        let g = Arc::new(Grace::new());
        let (a, b) = (g.register(), g.register());
        assert_eq!(g.registered(), 2);
        let t = g.start();
        assert!(!g.passed(&t));
        a.quiescent();
        assert!(!g.passed(&t), "b has not passed a boundary");
        b.quiescent();
        assert!(g.passed(&t));

        // Quiescent points before the start do not count.
        a.quiescent();
        let t = g.start();
        b.quiescent();
        assert!(!g.passed(&t), "a's boundary came before the start");
        // Asleep: offline.
        a.offline();
        assert!(g.passed(&t));
        // Online again after the start: reads only what is published now.
        a.online();
        assert!(g.passed(&t));
        let t = g.start();
        assert!(!g.passed(&t));
        b.quiescent();
        drop(a);
        assert_eq!(g.registered(), 1);
        assert!(g.passed(&t), "an ended worker holds up nothing");
        let t2 = g.start();
        assert!(g.passed(&t) && !g.passed(&t2));
    }

    /// Each worker's counter is on a line of its own.
    #[test]
    fn slots_are_on_lines_of_their_own() {
        let g = Arc::new(Grace::new());
        let ps: Vec<_> = (0..4).map(|_| g.register()).collect();
        for p in &ps {
            let (at, len) = p.hot_range();
            assert_eq!((at % 128, len), (0, 128));
        }
    }

    /// Another thread's quiescent points end a grace the writer polls.
    #[test]
    fn a_worker_thread_ends_a_grace() {
        use std::sync::atomic::AtomicBool;
        let g = Arc::new(Grace::new());
        let stop = AtomicBool::new(false);
        let p = g.register();
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    p.quiescent();
                    std::thread::yield_now();
                }
            });
            for _ in 0..100 {
                let t = g.start();
                while !g.passed(&t) {
                    std::thread::yield_now();
                }
            }
            stop.store(true, Relaxed);
        });
    }
}
