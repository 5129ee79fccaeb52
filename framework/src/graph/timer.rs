//! The timer hook, graph side: the elements configured `with_timer` and
//! when they are next due (see [`Element::timer`]).
//!
//! Elements that do not use the hook cost nothing: only the listed ones
//! are ever called, and the worker compares its clock with one number
//! ([`Graph::timer_deadline`]) per pass that read the clock.
//!
//! [`Element::timer`]: crate::element::Element::timer

use super::Graph;
use crate::element::Context;
use crate::packet::Batch;

impl Graph {
    /// When the timers are next due (worker clock, ns): the earliest
    /// [`Context::wake_at`] request since they last ran, 0 before their
    /// first run, `u64::MAX` when nothing is due or no element uses timers.
    #[inline]
    pub fn timer_deadline(&self) -> u64 {
        self.deadline
    }

    /// Whether an element of this graph uses the timer hook.
    pub fn has_timers(&self) -> bool {
        !self.timers.is_empty()
    }

    /// Calls [`Element::timer`] on every listed element, in node order, and
    /// runs what each outputs through the rest of the graph as a push does
    /// (packets for ports wait in [`Graph::tx_batch`] for the worker's
    /// flush): counted on each element, copied by the taps on each edge it
    /// crosses, and taken by an armed trace as it leaves the timer's
    /// element. The
    /// deadline becomes the earliest request made meanwhile. A panic is
    /// handled as in `push` (see [`Graph::take_panic`]).
    ///
    /// [`Element::timer`]: crate::element::Element::timer
    pub fn run_timers(&mut self, cx: &mut Context<'_>) {
        cx.wake_at = u64::MAX;
        for k in 0..self.timers.len() {
            let idx = self.timers[k];
            let node = &mut self.nodes[idx];
            node.element.timer(cx, &mut node.out);
            if node.out.panic.is_some() {
                self.dropped_after_panic(cx, idx, &mut Batch::new(), 0);
            }
            if self.watching {
                self.forward_sent_watched(cx, idx, super::watch::SentBy::Timer);
            } else {
                self.forward(cx, idx);
            }
        }
        self.deadline = cx.wake_at;
    }

    /// Makes the timers due now (after a reload: the new replicas ask for
    /// their times in their first run).
    pub fn timers_due(&mut self) {
        if self.has_timers() {
            self.deadline = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GraphSpec, NodeSpec, Target};
    use super::*;
    use crate::element::{ClassInfo, Configured, Element, Inputs, Output};
    use crate::packet::{Packet, Pool};

    /// Holds packets; its timer releases those held for `delay` ns and asks
    /// for the time the next one is due.
    #[derive(Default)]
    struct Delay {
        held: Vec<(u64, Packet)>,
        calls: u64,
    }

    const DELAY: u64 = 1_000;

    impl Element for Delay {
        fn push(&mut self, cx: &mut Context<'_>, _: usize, batch: &mut Batch, _: &mut Output) {
            for p in batch.drain(..) {
                self.held.push((cx.now() + DELAY, p));
            }
            if let Some(&(at, _)) = self.held.first() {
                cx.wake_at(at);
            }
        }

        fn timer(&mut self, cx: &mut Context<'_>, out: &mut Output) {
            self.calls += 1;
            let now = cx.now();
            while self.held.first().is_some_and(|&(at, _)| at <= now) {
                out.push(0, self.held.remove(0).1);
            }
            if let Some(&(at, _)) = self.held.first() {
                cx.wake_at(at);
            }
        }

        fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
            report("calls", self.calls);
        }
    }

    /// Forwards everything (and never asks for a timer).
    #[derive(Clone)]
    struct Pass;

    impl Element for Pass {
        fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
            out.push_all(0, batch);
        }
    }

    fn spec(timer: bool) -> GraphSpec {
        let delay = Configured::new(Inputs::Fixed(1), 1, |_| Box::new(Delay::default()));
        let node = |name: &str, configured, to| NodeSpec {
            name: name.into(),
            class: ClassInfo::bare("T"),
            configured,
            outputs: vec![to],
        };
        GraphSpec {
            nodes: vec![
                node(
                    "delay",
                    if timer { delay.with_timer() } else { delay },
                    Target::Element { node: 1, input: 0 },
                ),
                node(
                    "pass",
                    Configured::cloning(Inputs::Fixed(1), 1, Pass),
                    Target::Port(0),
                ),
            ],
            ports: vec!["p".into()],
            sources: vec![Some(Target::Element { node: 0, input: 0 })],
        }
    }

    fn one(cx: &mut Context<'_>) -> Batch {
        let mut p = cx.alloc().unwrap();
        p.set_frame(&[7; 60]);
        [p].into_iter().collect()
    }

    #[test]
    fn timers_run_first_at_the_start_then_when_asked_and_their_packets_go_downstream() {
        let spec = spec(true);
        let mut g = Graph::new(&spec, 0);
        assert!(g.has_timers());
        assert_eq!(g.timer_deadline(), 0, "due at once: the first run");
        let mut pool = Pool::new(8);
        let mut cx = Context::new(&mut pool, 0, 0);
        g.run_timers(&mut cx);
        assert_eq!(g.timer_deadline(), u64::MAX, "nothing held: nothing asked");

        let mut cx = Context::new(&mut pool, 500, 0);
        let mut b = one(&mut cx);
        g.push_from_port(&mut cx, 0, &mut b);
        assert_eq!(g.timer_deadline(), 500 + DELAY, "the push's request");
        assert!(g.tx_batch(0).is_empty());

        // No packet arrives; the clock passes the deadline.
        let mut cx = Context::new(&mut pool, 500 + DELAY, 0);
        g.run_timers(&mut cx);
        assert_eq!(
            g.tx_batch(0).len(),
            1,
            "released through `pass` to the port"
        );
        assert_eq!(g.timer_deadline(), u64::MAX);
        let c = g.counters();
        assert_eq!((c[0].packets_out, c[1].packets_in), (1, 1));
        assert_eq!(c[0].custom, vec![("calls".to_string(), 2)]);
    }

    #[test]
    fn elements_not_configured_with_timer_are_never_called() {
        let spec = spec(false);
        let mut g = Graph::new(&spec, 0);
        assert!(!g.has_timers());
        assert_eq!(g.timer_deadline(), u64::MAX);
        let mut pool = Pool::new(8);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut b = one(&mut cx);
        g.push_from_port(&mut cx, 0, &mut b);
        let mut cx = Context::new(&mut pool, 10 * DELAY, 0);
        g.run_timers(&mut cx);
        g.timers_due();
        assert_eq!(g.timer_deadline(), u64::MAX);
        assert!(g.tx_batch(0).is_empty(), "the packet stays held");
        assert_eq!(g.counters()[0].custom, vec![("calls".to_string(), 0)]);
    }
}
