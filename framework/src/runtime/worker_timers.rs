//! The worker loop and the element timers: when the loop needs the time
//! to sleep, how long it may sleep, and running the timers (see
//! [`Element::timer`](crate::element::Element::timer) and `pass_clock`).

use std::time::Duration;

use super::idle::SPIN_PASSES;
use super::pass_clock::PassClock;
use super::worker::{element_panicked, Worker};
use super::{Clock, RunError};
use crate::element::Context;
use crate::graph::Graph;
use crate::packet::Pool;

/// The worker loop's uses of the clock for element timers and sleeps.
impl Worker {
    /// Whether the back-off of the `idle`-th empty pass in a row may sleep
    /// in `poll` (it then needs the time, to end the sleep at the next
    /// timer deadline).
    #[inline]
    pub(super) fn may_sleep(&self, idle: u32) -> bool {
        idle >= SPIN_PASSES && self.sleeper.can_sleep() && self.merged.is_empty()
    }

    /// The longest sleep now: until the graph's next timer deadline (worker
    /// clock; packet time does not pass while asleep), at most the
    /// sleeper's own limit.
    pub(super) fn sleep_limit(&self, graph: &Graph, clock: &PassClock) -> Duration {
        let deadline = graph.timer_deadline();
        if self.clock == Clock::System && deadline != u64::MAX {
            let left = Duration::from_nanos(deadline.saturating_sub(clock.now));
            left.min(self.sleeper.max)
        } else {
            self.sleeper.max
        }
    }

    /// Runs the graph's element timers at `now` (see [`Graph::run_timers`]).
    #[cold]
    #[inline(never)]
    pub(super) fn run_timers(
        &mut self,
        graph: &mut Graph,
        pool: &mut Pool,
        now: u64,
    ) -> Result<(), RunError> {
        self.last_now = self.last_now.max(now);
        // Online, between two quiescent points, as in a burst.
        graph.run_timers(&mut Context::new(pool, now, self.index).in_burst(&self.grace));
        while let Some(p) = graph.take_panic() {
            element_panicked(self.on_panic, self.index, p)?;
        }
        Ok(())
    }
}
