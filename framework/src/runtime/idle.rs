//! What a worker does when its queues are empty (`[runtime] idle`).
//!
//! ```text
//! idle pass 1..64:   spin (a pause instruction between two polls)
//! then, idle = "sleep" and every live receive queue has a descriptor:
//!   while traffic is dense (DENSE_RUN sleeps in a row that frames ended
//!   within DENSE_WAKE): yield until pass 256 first;
//!   poll(2) on those descriptors and the worker's eventfd, for at most
//!   MAX_SLEEP; with a polled queue (hpio), FIRST_SLEEP (1 ms) at first,
//!   then twice as long each sleep of the quiet spell up to MAX_SLEEP
//! otherwise (idle = "spin", a generator or pcap queue, a transmit backlog):
//!   yield until pass 256, then 50 µs naps
//! ```
//!
//! Waking: frames arriving make a queue's descriptor readable. Everything
//! else that must reach a sleeping worker writes its `eventfd`: a control
//! job ([`JobSender::send`](super::worker::JobSender::send): `ctl` requests,
//! reloads, taps and traces), a stop ([`Controller::stop`](super::Controller::stop),
//! and `Running::wait`, which sees the stop flag a signal handler set
//! within 10 ms). The write happens only when the worker said it is
//! asleep (a flag), so a busy worker costs its senders no system call and
//! its data path nothing: the flag is touched only on the way into and out
//! of a sleep. The handshake is Dekker's: the worker sets `asleep` and
//! then looks at the job and stop flags; a sender sets its flag and then
//! looks at `asleep` (all sequentially consistent), so at least one of
//! them sees the other and no wake-up is lost.
//!
//! A worker goes offline in the grace-period domain (see
//! [`crate::element::grace`]) before it sleeps and online again when it
//! wakes, before it reads anything shared: no writer's grace period waits
//! for a sleeping worker.
//!
//! Every sleep is bounded by [`MAX_SLEEP`] (100 ms, the period at which
//! workers publish their counters): the live line, `ctl stats` and the
//! metrics keep seeing a sleeping worker's idle time advance, an
//! af_packet queue looks at its interface as often as when spinning
//! ([`RxQueue::slept`]), and whatever might not write the eventfd (a
//! stop flag set from a signal handler before `Running::wait` looks) is
//! still noticed. Ten wake-ups a second cost a few microseconds.
//!
//! Dense traffic: a worker that sleeps whenever its queues are empty for
//! a moment is woken by nearly every frame when its sender is just a
//! little slower than it, and worst when the two share a core: each frame
//! then costs two context switches and the sender is preempted by each
//! wake-up. On the live veth testbed (the sender on the NF's core) that
//! cost a fifth of the peak rate against `spin`. When frames end
//! [`DENSE_RUN`] sleeps in a row within [`DENSE_WAKE`] each, the worker
//! yields instead (as `spin` does) up to [`YIELD_PASSES`] before sleeping:
//! a task sharing its core runs, and the frames are taken in bursts. The
//! first sleep that lasts longer ends the dense spell. A run of short
//! sleeps, not one, so that a paced burst (8 frames, then a pause) does not
//! turn yielding on. See docs/benchmarks.md, "Idle workers: sleep or spin".
//!
//! With a queue whose frames arrive only when it is read
//! ([`RxQueue::polled`](crate::port::RxQueue::polled)), the first sleeps
//! of a quiet spell are shorter ([`FIRST_SLEEP`], doubling each time): the
//! worker must come back soon. hpio's readers busy-poll the NIC, and a NIC
//! set to defer its interrupts meanwhile (`napi_defer_hard_irqs`) is
//! polled again, when nobody reads, only once its `gro_flush_timeout`
//! expires (50 ms in the VM bench). A worker that found its NIC empty for a moment
//! (the host late to refill it) and then slept 100 ms left it unpolled
//! that long, and the NIC dropped what arrived meanwhile. Other queues
//! (af_packet, af_xdp) wake the worker as frames arrive: for them the
//! extra wake-ups cost CPU at low rates and bring nothing. See
//! docs/benchmarks.md, "A sleeping worker left its NIC unpolled".

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::element::Participant;
use crate::sys::wait::{EventFd, PollSet};

hpio_nf::choice! {
    /// What a worker does when its queues are empty (`[runtime] idle`).
    #[derive(Default, serde::Serialize)]
    pub enum Idle {
        /// After a short spin, sleep in `poll(2)` on the receive queues
        /// until frames arrive (queues that cannot be waited on, such as
        /// generators and pcap files, keep the worker spinning).
        #[default]
        Sleep = "sleep",
        /// Spin, yield, then nap 50 µs at a time: the lowest latency, one
        /// core busy per worker whatever the load.
        Spin = "spin",
    }
}

/// The longest sleep (see the module documentation for why).
pub const MAX_SLEEP: Duration = super::PUBLISH_EVERY;
/// The longest first sleep of a quiet spell; each next one may be twice as long.
pub const FIRST_SLEEP: Duration = Duration::from_millis(1);

/// Idle passes spent spinning before the worker sleeps, or yields.
pub(super) const SPIN_PASSES: u32 = 64;
/// Idle passes after which a worker that cannot sleep naps instead of yielding.
const YIELD_PASSES: u32 = 256;
/// A sleep that frames ended sooner than this was short...
const DENSE_WAKE: Duration = Duration::from_micros(100);
/// ...and this many short sleeps in a row say the traffic is dense.
const DENSE_RUN: u32 = 16;
/// A nap of a worker that cannot sleep in `poll`.
const NAP: Duration = Duration::from_micros(50);

/// Wakes one sleeping worker; shared by the worker and its job senders.
#[derive(Debug)]
pub(crate) struct Waker {
    /// The worker is in (or about to enter) `poll`.
    asleep: AtomicBool,
    /// `None`: the worker never sleeps (`idle = "spin"`, or no eventfd).
    event: Option<EventFd>,
}

impl Waker {
    /// A waker for a worker that sleeps when `idle` says so.
    pub fn new(idle: Idle, worker: usize) -> Arc<Waker> {
        let event = match idle {
            Idle::Spin => None,
            Idle::Sleep => EventFd::new()
                .map_err(|e| {
                    log::warn!(
                        "worker {worker}: no eventfd ({e}): it will spin when idle, as with \
                         [runtime] idle = \"spin\""
                    )
                })
                .ok(),
        };
        Arc::new(Waker {
            asleep: AtomicBool::new(false),
            event,
        })
    }

    /// Wakes the worker if it sleeps. Call after setting the flag it
    /// should see (a job queued, the stop flag) with `Ordering::SeqCst`.
    pub fn wake(&self) {
        if let Some(e) = &self.event {
            if self.asleep.load(Ordering::SeqCst) {
                e.signal();
            }
        }
    }
}

/// A worker's side of sleeping: its waker, the poll set and what it counts.
pub(super) struct Sleeper {
    pub waker: Arc<Waker>,
    set: PollSet,
    /// The longest sleep: [`MAX_SLEEP`] (tests raise it, to show that what
    /// wakes a worker does not wait for the timeout).
    pub max: Duration,
    /// The longest first sleep of a quiet spell with a polled queue:
    /// [`FIRST_SLEEP`] (tests raise it with `max`).
    pub first: Duration,
    /// Sleeps so far, and nanoseconds spent in them.
    pub sleeps: u64,
    pub sleep_ns: u64,
    /// Sleeps in a row that frames ended within [`DENSE_WAKE`].
    short_run: u32,
    /// Sleeps in this quiet spell (since the last spin pass).
    spell_sleeps: u32,
}

/// What the worker checks before it sleeps: the flags whose setters wake it.
pub(super) struct Flags<'a> {
    pub jobs: &'a AtomicBool,
    pub stop: &'a AtomicBool,
    /// Offline while asleep, so that no grace period waits for the worker.
    pub grace: &'a Participant,
}

impl Sleeper {
    pub fn new(waker: Arc<Waker>) -> Sleeper {
        Sleeper {
            waker,
            set: PollSet::default(),
            max: MAX_SLEEP,
            first: FIRST_SLEEP,
            sleeps: 0,
            sleep_ns: 0,
            short_run: 0,
            spell_sleeps: 0,
        }
    }

    /// One idle pass's back-off, the `idle`-th in a row: a spin; then
    /// (while traffic is dense, up to [`YIELD_PASSES`]) a yield; then a
    /// sleep in `poll` on `fds` (the descriptors of the worker's live
    /// receive queues; `None`: it cannot sleep, a transmit backlog or a
    /// replay) unless one is missing, short at first when `polled` says
    /// one of them is read by polling (asked only then); else a yield or
    /// a nap. True when it slept (the caller then tells the queues, see
    /// [`RxQueue::slept`](crate::port::RxQueue::slept)).
    pub fn back_off<'a>(
        &mut self,
        idle: u32,
        fds: Option<impl Iterator<Item = Option<BorrowedFd<'a>>>>,
        flags: Flags<'_>,
        limit: Duration,
        polled: impl FnOnce() -> bool,
    ) -> bool {
        if idle < SPIN_PASSES {
            self.spell_sleeps = 0;
            std::hint::spin_loop();
        } else if self.short_run >= DENSE_RUN && idle < YIELD_PASSES {
            std::thread::yield_now();
        } else if fds.is_some_and(|fds| {
            let bound = if polled() { self.bound() } else { self.max };
            self.sleep(fds, flags, limit.min(bound))
        }) {
            return true;
        } else if idle < YIELD_PASSES {
            std::thread::yield_now();
        } else {
            std::thread::sleep(NAP);
        }
        false
    }

    /// The longest next sleep with a polled queue: `first` for the first
    /// sleep of a quiet spell, doubling with each sleep after it, at most
    /// `max`. (Counted in sleeps, not passes: a dense spell yields first.)
    fn bound(&self) -> Duration {
        let doublings = self.spell_sleeps.min(16);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// Whether this worker sleeps when idle (`idle = "sleep"` with an eventfd).
    pub fn can_sleep(&self) -> bool {
        self.waker.event.is_some()
    }

    /// Sleeps in `poll` on `fds` and the eventfd, for at most `limit`
    /// (the next element timer's deadline, at most the pass's bound).
    /// False (nothing done) when it cannot: no eventfd, a queue without a
    /// descriptor. True when it slept, or found a job or the stop flag set
    /// at the last moment.
    fn sleep<'a>(
        &mut self,
        fds: impl Iterator<Item = Option<BorrowedFd<'a>>>,
        flags: Flags<'_>,
        limit: Duration,
    ) -> bool {
        let Some(event) = &self.waker.event else {
            return false;
        };
        self.set.clear();
        self.set.add(event.as_fd());
        for fd in fds {
            match fd {
                Some(fd) => self.set.add(fd),
                None => return false,
            }
        }
        let asleep = &self.waker.asleep;
        flags.grace.offline();
        asleep.store(true, Ordering::SeqCst);
        if flags.jobs.load(Ordering::SeqCst) || flags.stop.load(Ordering::SeqCst) {
            asleep.store(false, Ordering::Relaxed);
            flags.grace.online();
            return true;
        }
        let t0 = Instant::now();
        let r = self.set.wait(limit);
        asleep.store(false, Ordering::Relaxed);
        flags.grace.online();
        let slept = t0.elapsed();
        self.sleeps += 1;
        self.spell_sleeps = self.spell_sleeps.saturating_add(1);
        self.sleep_ns += slept.as_nanos() as u64;
        let woken_by_event = self.set.ready(0);
        if woken_by_event {
            event.drain();
        }
        let short = matches!(r, Ok(n) if n > usize::from(woken_by_event)) && slept < DENSE_WAKE;
        self.short_run = if short {
            self.short_run.saturating_add(1)
        } else {
            0
        };
        if let Err(e) = r {
            // (poll fails only for want of memory or a bad set, which the
            // queues' own calls would report: nap instead.)
            log::debug!("poll failed ({e}); napping instead");
            std::thread::sleep(NAP);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn sleeps_double_from_the_first_up_to_the_longest() {
        let mut s = Sleeper::new(Waker::new(Idle::Sleep, 0));
        let bounds = [0, 1, 6, 7, 40].map(|n| {
            s.spell_sleeps = n;
            s.bound()
        });
        let expected = [
            FIRST_SLEEP,
            FIRST_SLEEP * 2,
            FIRST_SLEEP * 64,
            MAX_SLEEP,
            MAX_SLEEP,
        ];
        assert_eq!(bounds, expected);
    }

    /// One idle pass's back-off at pass `idle`, waiting on `fd`; true when it slept.
    fn pass(s: &mut Sleeper, idle: u32, fd: BorrowedFd<'_>, limit: Duration, polled: bool) -> bool {
        let (jobs, stop) = (AtomicBool::new(false), AtomicBool::new(false));
        let grace = crate::element::grace::Grace::global().register();
        let flags = Flags {
            jobs: &jobs,
            stop: &stop,
            grace: &grace,
        };
        s.back_off(idle, Some(std::iter::once(Some(fd))), flags, limit, || {
            polled
        })
    }

    /// Two sockets standing for receive queues: `ready` always readable
    /// (frames ending each sleep at once), `quiet` never.
    struct Queues {
        ready: UnixDatagram,
        quiet: UnixDatagram,
        _peers: [UnixDatagram; 2],
    }

    fn queues() -> Queues {
        let (ready, ready_peer) = UnixDatagram::pair().unwrap();
        ready_peer.send(b"frame").unwrap();
        let (quiet, quiet_peer) = UnixDatagram::pair().unwrap();
        Queues {
            ready,
            quiet,
            _peers: [ready_peer, quiet_peer],
        }
    }

    #[test]
    fn sleeps_that_frames_end_at_once_turn_sleeping_into_yielding_until_one_lasts() {
        let mut s = Sleeper::new(Waker::new(Idle::Sleep, 0));
        let q = queues();
        let (ready, quiet) = (q.ready.as_fd(), q.quiet.as_fd());
        let ms = Duration::from_millis(1);
        for i in 0..DENSE_RUN {
            assert!(
                pass(&mut s, SPIN_PASSES, ready, MAX_SLEEP, false),
                "sleep {i}"
            );
        }
        // Dense traffic: the worker yields (to whoever shares its core)
        // rather than being woken by each frame, up to YIELD_PASSES...
        assert!(!pass(&mut s, SPIN_PASSES, quiet, MAX_SLEEP, false));
        assert!(!pass(&mut s, YIELD_PASSES - 1, quiet, MAX_SLEEP, false));
        // ...then sleeps; a sleep that runs out ends the dense spell.
        assert!(pass(&mut s, YIELD_PASSES, quiet, ms, false));
        assert!(pass(&mut s, SPIN_PASSES, quiet, ms, false));
        // One short sleep alone does not make traffic dense.
        assert!(pass(&mut s, SPIN_PASSES, ready, MAX_SLEEP, false));
        assert!(pass(&mut s, SPIN_PASSES, quiet, ms, false));
    }

    #[test]
    fn a_polled_queue_sleeps_short_first_after_a_dense_spell_too() {
        let mut s = Sleeper::new(Waker::new(Idle::Sleep, 0));
        let long = Duration::from_secs(10);
        s.max = long;
        let q = queues();
        let (ready, quiet) = (q.ready.as_fd(), q.quiet.as_fd());
        // Each spell begins with a spin pass (which starts its sleep count).
        for _ in 0..DENSE_RUN {
            assert!(!pass(&mut s, 1, ready, long, true));
            assert!(pass(&mut s, SPIN_PASSES, ready, long, true));
        }
        assert!(!pass(&mut s, 1, quiet, long, true));
        assert!(!pass(&mut s, SPIN_PASSES, quiet, long, true));
        // The first sleep of the spell, at pass YIELD_PASSES: `first` (1 ms),
        // not a bound grown with the passes spent yielding (`max`).
        let t0 = Instant::now();
        assert!(pass(&mut s, YIELD_PASSES, quiet, long, true));
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "slept {:?}",
            t0.elapsed()
        );
    }
}
