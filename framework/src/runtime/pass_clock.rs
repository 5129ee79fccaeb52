//! The worker loop's clock: read at most once per pass, and only on
//! passes that need it.
//!
//! Where the clock has no vDSO (a guest on TCG reads the HPET), every
//! `clock_gettime` is a system call. The loop therefore reads the system
//! clock:
//!
//! - once in a pass that received packets: at its start when the pass
//!   before was busy too (one reading ends that pass's busy time and
//!   starts this one's), else at its first burst (the time the elements
//!   see under `clock = "system"`, and the start of its busy time);
//! - at the start of the first empty pass after a busy one (the end of
//!   the busy time);
//! - in an empty pass only every [`IDLE_READ_EVERY`]th one, and before each
//!   sleep in `poll` (its timeout ends at the next timer deadline): for
//!   the counters published every 100 ms and the element timers.
//!
//! Busy time is the time from a busy pass's reading to the next reading;
//! idle time is the rest.
//!
//! The element timers (see [`Element::timer`](crate::element::Element::timer))
//! are checked on the passes that read the clock, and a sleep in `poll`
//! ends at their next deadline (`worker_timers`).

use std::time::Instant;

/// Nanoseconds the calling thread has run on a CPU (the first field of
/// `/proc/thread-self/schedstat`; 0 where it cannot be read). Read a few
/// times a second, never per packet.
pub(super) fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// An empty pass reads the clock once in this many (after the first).
pub(super) const IDLE_READ_EVERY: u32 = 64;

pub(super) struct PassClock {
    start: Instant,
    /// `clock = "system"`: a reading is also the elements' time.
    system: bool,
    /// The elements' time ([`Context::now`](crate::element::Context::now)):
    /// the last reading under `clock = "system"`, the latest packet
    /// timestamp under `clock = "packet"` (the worker sets it).
    pub now: u64,
    /// The last reading, ns since the loop started.
    pub t: u64,
    /// Whether the clock was read in this pass.
    pub read: bool,
    /// The last pass was busy: its reading (`t`) starts busy time that
    /// the next reading ends.
    busy: bool,
    /// Busy time so far, ns.
    pub busy_ns: u64,
}

impl PassClock {
    pub fn new(start: Instant, system: bool) -> PassClock {
        PassClock {
            start,
            system,
            now: 0,
            t: 0,
            read: false,
            busy: false,
            busy_ns: 0,
        }
    }

    /// A new pass: the clock has not been read in it.
    #[inline]
    pub fn pass(&mut self) {
        self.read = false;
    }

    /// Reads the clock (again, even if it was read in this pass).
    pub fn fresh(&mut self) -> u64 {
        let d = self.start.elapsed();
        let t = d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos());
        if self.busy {
            self.busy_ns += t.saturating_sub(self.t);
            self.busy = false;
        }
        self.t = t;
        self.read = true;
        if self.system {
            self.now = t;
        }
        t
    }

    /// Reads the clock unless it was read in this pass.
    #[inline]
    pub fn read(&mut self) -> u64 {
        if !self.read {
            self.fresh();
        }
        self.t
    }

    /// Ends a pass: a busy one is busy from its reading to the next.
    #[inline]
    pub fn end_pass(&mut self, busy: bool) {
        self.busy = busy;
    }

    /// Whether the pass just ended busy (its time is not yet counted).
    #[inline]
    pub fn after_busy(&self) -> bool {
        self.busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_per_pass_and_busy_time_runs_to_the_next_reading() {
        let mut c = PassClock::new(Instant::now(), true);
        c.pass();
        let t1 = c.read();
        assert_eq!(c.now, t1, "the system clock is the elements' time");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(c.read(), t1, "read once per pass");
        c.end_pass(true);
        assert!(c.after_busy());
        c.pass();
        let t2 = c.read();
        assert!(t2 >= t1 + 2_000_000);
        assert_eq!(
            c.busy_ns,
            t2 - t1,
            "busy from the busy pass's reading to the next"
        );
        assert!(!c.after_busy());
        c.end_pass(false);
        c.pass();
        c.read();
        assert_eq!(c.busy_ns, t2 - t1, "an idle pass adds nothing");
    }

    #[test]
    fn under_packet_time_readings_leave_the_elements_time_alone() {
        let mut c = PassClock::new(Instant::now(), false);
        c.now = 42;
        c.fresh();
        assert_eq!(c.now, 42);
    }
}
