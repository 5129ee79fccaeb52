//! The graph's watched path: taps and traces. A replica takes it only while
//! a tap is installed or a trace is armed (one flag, checked once per batch
//! in [`Graph::push`] and [`Graph::push_from_port`]); otherwise nothing here
//! runs.

use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::edge::EdgeId;
use super::tap::TapShared;
use super::trace::{Hop, HopOutput, TraceRecord, TraceShared};
use super::{reason_name, Graph, Target};
use crate::element::Context;
use crate::elements::summarize;
use crate::packet::{Batch, Packet};

/// Why an element sent packets outside a push.
#[derive(Clone, Copy)]
pub(super) enum SentBy {
    /// Its [`Element::timer`](crate::element::Element::timer).
    Timer,
    /// Its [`Element::finish`](crate::element::Element::finish).
    Finish,
}

/// The taps and the trace installed on one replica.
#[derive(Default)]
pub(super) struct Watch {
    taps: Vec<(u64, EdgeId, Arc<TapShared>)>,
    trace: Option<ArmedTrace>,
    /// Records of the packets traced during the current push from a port.
    open: Vec<TraceRecord>,
}

struct ArmedTrace {
    id: u64,
    shared: Arc<TraceShared>,
    records: Sender<TraceRecord>,
}

impl Graph {
    /// Installs tap `id` on `edge` (between bursts).
    pub fn add_tap(&mut self, id: u64, edge: EdgeId, tap: Arc<TapShared>) {
        self.watch.taps.push((id, edge, tap));
        self.rewatch();
    }

    /// Removes tap `id` (if it is still installed).
    pub fn remove_tap(&mut self, id: u64) {
        self.watch.taps.retain(|t| t.0 != id);
        self.rewatch();
    }

    /// Arms trace `id`: the next packets it selects are followed and their
    /// records sent to `records` at the end of their burst. Refused while
    /// another trace is armed.
    pub fn arm_trace(
        &mut self,
        id: u64,
        trace: Arc<TraceShared>,
        records: Sender<TraceRecord>,
    ) -> Result<(), String> {
        if let Some(t) = &self.watch.trace {
            if !t.shared.done() {
                return Err("a trace is running already; one at a time".into());
            }
        }
        self.watch.trace = Some(ArmedTrace {
            id,
            shared: trace,
            records,
        });
        self.rewatch();
        Ok(())
    }

    /// Disarms trace `id` (if it is still armed).
    pub fn disarm_trace(&mut self, id: u64) {
        if self.watch.trace.as_ref().is_some_and(|t| t.id == id) {
            self.watch.trace = None;
        }
        self.rewatch();
    }

    /// Whether a tap is installed or a trace armed on this replica.
    pub fn is_watched(&self) -> bool {
        self.watching
    }

    fn rewatch(&mut self) {
        self.watching = !self.watch.taps.is_empty() || self.watch.trace.is_some();
    }

    /// Copies `batch` into every tap on `edge`.
    fn tap(&mut self, edge: EdgeId, batch: &mut Batch) {
        for (_, e, tap) in &self.watch.taps {
            if *e == edge && !batch.is_empty() {
                tap.copy(batch);
            }
        }
    }

    /// [`Graph::push_from_port`] while watching: taps the port's receive
    /// side, and pushes each packet the trace takes alone, followed.
    #[cold]
    #[inline(never)]
    pub(super) fn push_from_port_watched(
        &mut self,
        cx: &mut Context<'_>,
        port: usize,
        batch: &mut Batch,
    ) {
        self.tap(EdgeId::Rx(port), batch);
        let Some(target) = self.sources.get(port).copied().flatten() else {
            cx.pool.free_batch(batch);
            return;
        };
        let Some(trace) = self.watch.trace.as_ref().map(|t| t.shared.clone()) else {
            self.push_watched(cx, target, batch, None);
            return self.end_watched_push();
        };
        let name = self.port_names[port].clone();
        self.push_picked(cx, target, batch, &trace, |pkt, n, worker| TraceRecord {
            packet: n,
            worker,
            port: name.clone(),
            time_ns: pkt.timestamp(),
            summary: summarize(pkt.data()),
            hops: Vec::new(),
        });
        self.end_watched_push();
    }

    /// Pushes `batch` into `target`, watched, each packet `trace` takes
    /// alone and followed, in its place in the batch's order, with the
    /// record `open` starts for it (given the packet, its number in the
    /// trace and the worker).
    fn push_picked(
        &mut self,
        cx: &mut Context<'_>,
        target: Target,
        batch: &mut Batch,
        trace: &TraceShared,
        open: impl Fn(&Packet, u64, usize) -> TraceRecord,
    ) {
        let mut run = Batch::new();
        for mut pkt in std::mem::take(batch) {
            let Some(n) = trace.take(&mut pkt) else {
                run.push(pkt);
                continue;
            };
            if !run.is_empty() {
                self.push_watched(cx, target, &mut run, None);
            }
            self.watch.open.push(open(&pkt, n, cx.worker));
            let mut one = Batch::new();
            one.push(pkt);
            let record = self.watch.open.len() - 1;
            self.push_watched(cx, target, &mut one, Some(record));
        }
        if !run.is_empty() {
            self.push_watched(cx, target, &mut run, None);
        }
    }

    /// [`Graph::forward`] for what element `idx` sent on its own (from its
    /// timer, or as it finished), while watching: as for a push, its output
    /// edges are tapped (and the edges downstream), and the trace takes its
    /// packets as they leave it, each with a record whose first hop is
    /// [`Hop::Timer`] or [`Hop::Finish`].
    #[cold]
    #[inline(never)]
    pub(super) fn forward_sent_watched(&mut self, cx: &mut Context<'_>, idx: usize, by: SentBy) {
        let trace = self.watch.trace.as_ref().map(|t| t.shared.clone());
        let (element, class) = (self.nodes[idx].name.clone(), self.nodes[idx].class);
        self.forward_with(cx, idx, |g, cx, o, t, b| {
            g.tap(
                EdgeId::Output {
                    node: idx,
                    output: o,
                },
                b,
            );
            let Some(trace) = &trace else {
                return g.push_watched(cx, t, b, None);
            };
            let (element, class) = (element.clone(), class.to_string());
            let outputs = vec![HopOutput {
                output: o,
                to: g.target_name(t),
            }];
            let hop = match by {
                SentBy::Timer => Hop::Timer {
                    element,
                    class,
                    outputs,
                },
                SentBy::Finish => Hop::Finish {
                    element,
                    class,
                    outputs,
                },
            };
            let now = cx.now();
            g.push_picked(cx, t, b, trace, |pkt, n, worker| TraceRecord {
                packet: n,
                worker,
                port: String::new(),
                time_ns: now,
                summary: summarize(pkt.data()),
                hops: vec![hop.clone()],
            });
        });
        self.end_watched_push();
    }

    /// Sends the finished records; drops taps and traces that are done.
    fn end_watched_push(&mut self) {
        if let Some(t) = &self.watch.trace {
            for r in self.watch.open.drain(..) {
                let _ = t.records.send(r);
            }
            if t.shared.done() {
                self.watch.trace = None;
            }
        }
        self.watch.taps.retain(|t| !t.2.done());
        self.rewatch();
    }

    /// [`Graph::push`] while watching: taps every edge the batch crosses
    /// and, for a traced packet (`record`), records every hop.
    pub(super) fn push_watched(
        &mut self,
        cx: &mut Context<'_>,
        target: Target,
        batch: &mut Batch,
        record: Option<usize>,
    ) {
        let (idx, input) = match target {
            Target::Port(p) => {
                self.tap(EdgeId::Tx(p), batch);
                if let Some(r) = record {
                    let port = self.port_names[p].clone();
                    self.watch.open[r].hops.push(Hop::Sent { port });
                }
                self.queue_tx(p, batch);
                return;
            }
            Target::Element { node, input } => (node, input),
        };
        let Some(r) = record else {
            self.run_element(cx, idx, input, batch);
            return self.forward_watched(cx, idx, None);
        };
        let before = self.nodes[idx].out.drop_counts.clone();
        cx.notes = Some(Box::default());
        self.run_element(cx, idx, input, batch);
        let notes = cx.notes.take().map_or_else(Vec::new, |n| *n);
        let node = &self.nodes[idx];
        let outputs: Vec<HopOutput> = (0..node.targets.len())
            .filter(|&o| !node.out.batches[o].is_empty())
            .map(|o| HopOutput {
                output: o,
                to: self.target_name(node.targets[o]),
            })
            .collect();
        let dropped: Vec<String> = (node.out.drop_counts.iter().zip(&before))
            .enumerate()
            .filter(|(_, (now, was))| now > was)
            .map(|(i, (now, was))| match now - was {
                1 => reason_name(node.reasons, i).to_string(),
                k => format!("{} (x{k})", reason_name(node.reasons, i)),
            })
            .collect();
        let nothing = outputs.is_empty() && dropped.is_empty();
        let hop = Hop::Element {
            element: node.name.clone(),
            class: node.class.to_string(),
            input,
            notes,
            held: nothing && !node.targets.is_empty(),
            consumed: nothing && node.targets.is_empty(),
            outputs,
            dropped,
        };
        self.watch.open[r].hops.push(hop);
        self.forward_watched(cx, idx, record);
    }

    /// [`Graph::forward`] while watching.
    fn forward_watched(&mut self, cx: &mut Context<'_>, idx: usize, record: Option<usize>) {
        self.forward_with(cx, idx, |g, cx, o, t, b| {
            g.tap(
                EdgeId::Output {
                    node: idx,
                    output: o,
                },
                b,
            );
            g.push_watched(cx, t, b, record);
        });
    }
}
