//! The element graph: its resolved, checked form ([`GraphSpec`]) and the
//! per-worker replica that pushes batches through it ([`Graph`]).

mod edge;
mod handover;
mod tap;
mod timer;
mod trace;
mod watch;

pub use edge::{Edge, EdgeEnd, EdgeId};
pub use handover::Carried;
pub use tap::{TapCopy, TapShared};
pub use trace::{Hop, HopOutput, TraceRecord, TraceShared};

use crate::element::{ClassInfo, Configured, Context, Output, RUNTIME_DROP_REASONS};
use crate::packet::Batch;

/// Where packets leaving an output (or arriving on a port) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Input `input` of element `node`.
    Element {
        /// Index of the element in [`GraphSpec::nodes`].
        node: usize,
        /// Input number.
        input: usize,
    },
    /// The transmit side of port `port`.
    Port(usize),
}

/// One configured element of a checked graph.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Element name from the config.
    pub name: String,
    /// Its class's declarations.
    pub class: ClassInfo,
    /// Port counts and the replica factory.
    pub configured: Configured,
    /// Target of each output, indexed by output number.
    pub outputs: Vec<Target>,
}

/// A checked graph, shared by all workers; each builds its own [`Graph`] from it.
#[derive(Debug, Default, Clone)]
pub struct GraphSpec {
    /// Elements, in config order.
    pub nodes: Vec<NodeSpec>,
    /// Names of the ports, in config order (the port index space).
    pub ports: Vec<String>,
    /// Where each port's received packets go (`None`: the port is not read).
    pub sources: Vec<Option<Target>>,
}

/// Counters the runtime keeps for one element.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ElementCounters {
    /// Packets handed to the element.
    pub packets_in: u64,
    /// Packets it sent to its outputs.
    pub packets_out: u64,
    /// Packets it dropped, by reason (reasons with a zero count left out).
    pub drops: Vec<(String, u64)>,
    /// Element-specific counters.
    pub custom: Vec<(String, u64)>,
}

impl ElementCounters {
    /// All drops, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// Adds `other` (another worker's counts) into `self`.
    pub fn merge(&mut self, other: &ElementCounters) {
        self.packets_in += other.packets_in;
        self.packets_out += other.packets_out;
        merge_named(&mut self.drops, &other.drops);
        merge_named(&mut self.custom, &other.custom);
    }
}

fn merge_named(into: &mut Vec<(String, u64)>, from: &[(String, u64)]) {
    for (k, v) in from {
        match into.iter_mut().find(|(n, _)| n == k) {
            Some((_, n)) => *n += v,
            None => into.push((k.clone(), *v)),
        }
    }
}

/// The first panic caught in one element of a worker's graph.
///
/// Its batch (what was left of it and what the element had already put on
/// its outputs) has been dropped and counted as `panic`; later panics of the
/// same element are counted the same way but not reported again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementPanic {
    /// Index of the element in [`GraphSpec::nodes`].
    pub node: usize,
    /// Element name from the config.
    pub element: String,
    /// Its class.
    pub class: &'static str,
    /// The panic's message and location.
    pub message: String,
    /// Packets dropped with the batch.
    pub dropped: u64,
}

struct Node {
    element: Box<dyn crate::element::Element>,
    out: Output,
    targets: Vec<Target>,
    packets_in: u64,
    packets_out: u64,
    reasons: &'static [&'static str],
    name: String,
    class: &'static str,
    panics: u64,
}

/// A worker's replica of the graph: its elements and, per port, the packets
/// waiting to be transmitted at the end of the burst.
pub struct Graph {
    nodes: Vec<Node>,
    sources: Vec<Option<Target>>,
    tx: Vec<Batch>,
    /// First panics of elements, not yet taken by the worker (at most one
    /// per element, so this never grows past the number of elements).
    panics: Vec<ElementPanic>,
    /// Port names, in config order.
    port_names: Vec<String>,
    /// A tap is installed or a trace armed: batches take the watched path.
    watching: bool,
    /// The taps and the trace.
    watch: watch::Watch,
    /// The elements that use the timer hook (configured `with_timer`), in
    /// node order.
    timers: Vec<usize>,
    /// When their timers are next due (the earliest [`Context::wake_at`]
    /// request since they last ran; 0 at the start: they run once, to ask
    /// for their first time); `u64::MAX` when nothing is due.
    deadline: u64,
}

impl Graph {
    /// Builds worker `worker`'s replica of `spec`.
    pub fn new(spec: &GraphSpec, worker: usize) -> Graph {
        let nodes = spec
            .nodes
            .iter()
            .map(|n| Node {
                element: n.configured.instantiate(worker),
                out: Output::new(n.configured.outputs, n.class.drop_reasons.len()),
                targets: n.outputs.clone(),
                packets_in: 0,
                packets_out: 0,
                reasons: n.class.drop_reasons,
                name: n.name.clone(),
                class: n.class.name,
                panics: 0,
            })
            .collect();
        let timers: Vec<usize> = (0..spec.nodes.len())
            .filter(|&i| spec.nodes[i].configured.timer)
            .collect();
        Graph {
            deadline: if timers.is_empty() { u64::MAX } else { 0 },
            timers,
            nodes,
            sources: spec.sources.clone(),
            tx: spec.ports.iter().map(|_| Batch::new()).collect(),
            panics: Vec::with_capacity(spec.nodes.len()),
            port_names: spec.ports.clone(),
            watching: false,
            watch: watch::Watch::default(),
        }
    }

    /// Runs a batch received on `port` through the graph to completion.
    /// Packets for ports wait in [`Graph::tx_batch`] until the burst's flush.
    /// Timer requests made on `cx` ([`Context::wake_at`]) count from now on.
    pub fn push_from_port(&mut self, cx: &mut Context<'_>, port: usize, batch: &mut Batch) {
        if self.watching {
            self.push_from_port_watched(cx, port, batch);
        } else {
            match self.sources.get(port).copied().flatten() {
                Some(t) => self.push_plain(cx, t, batch),
                None => cx.pool.free_batch(batch),
            }
        }
        if cx.wake_at != u64::MAX {
            self.deadline = self.deadline.min(cx.wake_at);
        }
    }

    /// Runs `batch` into `target` and everything downstream of it.
    ///
    /// A panic in an element is caught at its boundary (by the guard every
    /// replica has, see [`Configured`]): its batch is dropped and counted as
    /// `panic`, nothing goes downstream from that call, and the element's
    /// first panic waits in [`Graph::take_panic`].
    pub fn push(&mut self, cx: &mut Context<'_>, target: Target, batch: &mut Batch) {
        if self.watching {
            return self.push_watched(cx, target, batch, None);
        }
        self.push_plain(cx, target, batch)
    }

    /// [`Graph::push`] when nothing watches (taps and traces change only
    /// between bursts, so a push that starts plain stays plain downstream).
    #[inline]
    fn push_plain(&mut self, cx: &mut Context<'_>, target: Target, batch: &mut Batch) {
        let (idx, input) = match target {
            Target::Port(p) => return self.queue_tx(p, batch),
            Target::Element { node, input } => (node, input),
        };
        self.run_element(cx, idx, input, batch);
        self.forward(cx, idx);
    }

    /// Adds `batch` to the packets waiting for port `p`'s flush.
    #[inline(always)]
    fn queue_tx(&mut self, p: usize, batch: &mut Batch) {
        let tx = &mut self.tx[p];
        if tx.is_empty() {
            std::mem::swap(tx, batch);
        } else {
            tx.extend(batch.drain(..));
        }
    }

    /// Runs element `idx` on `batch` (arrived on `input`), counting what it
    /// was handed and what it left in the batch.
    #[inline(always)]
    fn run_element(&mut self, cx: &mut Context<'_>, idx: usize, input: usize, batch: &mut Batch) {
        let node = &mut self.nodes[idx];
        let handed = batch.len();
        node.packets_in += handed as u64;
        node.element.push(cx, input, batch, &mut node.out);
        if node.out.panic.is_some() {
            self.dropped_after_panic(cx, idx, batch, handed);
        }
        let node = &mut self.nodes[idx];
        if !batch.is_empty() {
            node.out.drop_unhandled(batch);
        }
    }

    /// Ends the run: calls every element's [`Element::finish`] once, in node
    /// order, and runs what each one outputs through the rest of the graph
    /// (packets for ports then wait in [`Graph::tx_batch`] for the last flush).
    ///
    /// [`Element::finish`]: crate::element::Element::finish
    pub fn finish(&mut self, cx: &mut Context<'_>) {
        for idx in 0..self.nodes.len() {
            self.finish_node(cx, idx);
        }
    }

    /// Calls element `idx`'s `finish` and forwards what it outputs (tapped
    /// and traced like a push while watched).
    fn finish_node(&mut self, cx: &mut Context<'_>, idx: usize) {
        let node = &mut self.nodes[idx];
        node.element.finish(cx, &mut node.out);
        if node.out.panic.is_some() {
            let mut none = Batch::new();
            self.dropped_after_panic(cx, idx, &mut none, 0);
        }
        if self.watching {
            self.forward_sent_watched(cx, idx, watch::SentBy::Finish);
        } else {
            self.forward(cx, idx);
        }
    }

    /// Recycles what element `idx` dropped and hands what it output to its targets.
    #[inline]
    fn forward(&mut self, cx: &mut Context<'_>, idx: usize) {
        self.forward_with(cx, idx, |g, cx, _, t, b| g.push_plain(cx, t, b));
    }

    /// [`Graph::forward`], handing each non-empty output batch (with its
    /// output number and target) to `push`.
    #[inline(always)]
    fn forward_with(
        &mut self,
        cx: &mut Context<'_>,
        idx: usize,
        mut push: impl FnMut(&mut Graph, &mut Context<'_>, usize, Target, &mut Batch),
    ) {
        let node = &mut self.nodes[idx];
        if !node.out.dropped.is_empty() {
            cx.pool.free_batch(&mut node.out.dropped);
        }
        // Lend the output batches out as one vector (three words) rather
        // than moving each batch (a `SmallVec` with its packets inline) out
        // and back. The graph is acyclic (the config checks), so no target
        // pushes into `idx` while its batches are lent.
        let outputs = node.targets.len();
        if outputs == 0 {
            return;
        }
        let mut batches = std::mem::take(&mut node.out.batches);
        for (o, b) in batches.iter_mut().enumerate().take(outputs) {
            if b.is_empty() {
                continue;
            }
            let node = &mut self.nodes[idx];
            let t = node.targets[o];
            node.packets_out += b.len() as u64;
            push(self, cx, o, t, b);
        }
        // The placeholder is an empty `Vec::new()`, which owns nothing:
        // forgetting it skips its drop code.
        std::mem::forget(std::mem::replace(&mut self.nodes[idx].out.batches, batches));
    }

    /// Drops what is left of element `idx`'s batch after it panicked,
    /// replaces the slots destroyed while the panic unwound, and records the
    /// element's first panic.
    #[cold]
    #[inline(never)]
    fn dropped_after_panic(
        &mut self,
        cx: &mut Context<'_>,
        idx: usize,
        batch: &mut Batch,
        handed: usize,
    ) {
        let node = &mut self.nodes[idx];
        let message = node.out.panic.take().unwrap_or_default();
        let (dropped, destroyed) = node.out.drop_after_panic(batch, handed);
        cx.pool.replace_lost(destroyed);
        node.panics += 1;
        if node.panics == 1 {
            self.panics.push(ElementPanic {
                node: idx,
                element: node.name.clone(),
                class: node.class,
                message,
                dropped,
            });
        }
    }

    /// The first panic of an element not taken yet, if any (the worker
    /// checks after each burst; one per element at most).
    #[inline]
    pub fn take_panic(&mut self) -> Option<ElementPanic> {
        self.panics.pop()
    }

    /// The packets waiting to be sent on `port`.
    pub fn tx_batch(&mut self, port: usize) -> &mut Batch {
        &mut self.tx[port]
    }

    /// Element `idx` (in [`GraphSpec::nodes`] order), for handlers.
    pub fn element(&self, idx: usize) -> &dyn crate::element::Element {
        &*self.nodes[idx].element
    }

    /// Element `idx`, to change it (write handlers, reloads).
    pub fn element_mut(&mut self, idx: usize) -> &mut dyn crate::element::Element {
        &mut *self.nodes[idx].element
    }

    /// Number of ports.
    pub fn ports(&self) -> usize {
        self.tx.len()
    }

    /// The counters of every element, in node order.
    pub fn counters(&self) -> Vec<ElementCounters> {
        self.nodes
            .iter()
            .map(|n| {
                let mut drops = Vec::new();
                for (i, &c) in n.out.drop_counts.iter().enumerate() {
                    if c != 0 {
                        drops.push((reason_name(n.reasons, i).to_string(), c));
                    }
                }
                let mut custom = Vec::new();
                n.element.stats(&mut |k, v| custom.push((k.to_string(), v)));
                ElementCounters {
                    packets_in: n.packets_in,
                    packets_out: n.packets_out,
                    drops,
                    custom,
                }
            })
            .collect()
    }
}

/// The name of drop count `i` of an element whose class declares `reasons`.
fn reason_name(reasons: &'static [&'static str], i: usize) -> &'static str {
    match reasons.get(i) {
        Some(r) => r,
        None => RUNTIME_DROP_REASONS
            .get(i - reasons.len())
            .copied()
            .unwrap_or("?"),
    }
}

#[cfg(test)]
mod tests_watch;

#[cfg(test)]
impl Graph {
    /// The byte ranges (address, length) this replica writes as batches go
    /// through it: its node table and transmit batches, each element, each
    /// node's output batches and drop counts. (For the test that no two
    /// workers' replicas share a cache line.)
    pub(crate) fn hot_ranges(&self) -> Vec<(usize, usize)> {
        fn of<T>(v: &[T]) -> (usize, usize) {
            (v.as_ptr() as usize, std::mem::size_of_val(v))
        }
        let mut r = vec![of(&self.nodes), of(&self.tx)];
        for n in &self.nodes {
            let e: &dyn crate::element::Element = &*n.element;
            r.push((
                e as *const _ as *const u8 as usize,
                std::mem::size_of_val(e),
            ));
            r.push(of(&n.out.batches));
            r.push(of(&n.out.drop_counts));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::{Element, Inputs};
    use crate::packet::{Packet, Pool};

    /// Forwards everything; panics on a batch holding a frame that starts with 0xff.
    #[derive(Clone)]
    struct Touchy;

    impl Element for Touchy {
        fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
            for p in batch.drain(..) {
                out.push(0, p);
            }
            let marked = out.batch(0).iter().any(|p| p.data()[0] == 0xff);
            assert!(!marked, "marked packet");
        }
    }

    /// Panics in the middle of draining its batch on a frame starting with 0xee:
    /// the packets left in the drain are destroyed by the unwinding.
    #[derive(Clone)]
    struct Drainer;

    impl Element for Drainer {
        fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
            for p in batch.drain(..) {
                assert!(p.data()[0] != 0xee, "drained into a marked packet");
                out.push(0, p);
            }
        }
    }

    const INFO: ClassInfo = ClassInfo {
        drop_reasons: &["mine"],
        ..crate::element::ClassInfo::bare("Touchy")
    };

    fn spec() -> GraphSpec {
        GraphSpec {
            nodes: vec![NodeSpec {
                name: "t".into(),
                class: INFO,
                configured: Configured::cloning(Inputs::Fixed(1), 1, Touchy),
                outputs: vec![Target::Port(0)],
            }],
            ports: vec!["p".into()],
            sources: vec![Some(Target::Element { node: 0, input: 0 })],
        }
    }

    fn batch(first_bytes: &[u8]) -> Batch {
        first_bytes
            .iter()
            .map(|&b| Packet::from_bytes(&[b; 60]))
            .collect()
    }

    #[test]
    fn a_panicking_element_loses_its_batch_and_nothing_else() {
        let spec = spec();
        let mut g = Graph::new(&spec, 0);
        let mut pool = Pool::new(16);
        let mut cx = Context::new(&mut pool, 0, 0);
        g.push_from_port(&mut cx, 0, &mut batch(&[1, 2]));
        assert_eq!(g.take_panic(), None);
        g.push_from_port(&mut cx, 0, &mut batch(&[3, 0xff, 4]));
        g.push_from_port(&mut cx, 0, &mut batch(&[5]));
        g.push_from_port(&mut cx, 0, &mut batch(&[0xff]));
        let sent: Vec<u8> = g.tx_batch(0).iter().map(|p| p.data()[0]).collect();
        assert_eq!(sent, [1, 2, 5], "the batches with a marked packet are gone");
        let p = g.take_panic().expect("the first panic is reported");
        assert_eq!((p.node, p.element.as_str(), p.class), (0, "t", "Touchy"));
        assert!(p.message.starts_with("marked packet (at "), "{}", p.message);
        assert_eq!(p.dropped, 3);
        assert_eq!(g.take_panic(), None, "later panics are only counted");
        let c = &g.counters()[0];
        assert_eq!((c.packets_in, c.packets_out), (7, 3));
        assert_eq!(c.drops, vec![("panic".to_string(), 4)]);
        assert_eq!(pool.available(), 16, "dropped slots went back to the pool");
    }

    #[test]
    fn packets_destroyed_by_the_unwinding_are_counted_and_their_slots_replaced() {
        let mut spec = spec();
        spec.nodes[0].configured = Configured::cloning(Inputs::Fixed(1), 1, Drainer);
        let mut g = Graph::new(&spec, 0);
        let mut pool = Pool::new(16);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut b: Batch = [1u8, 0xee, 2, 3]
            .iter()
            .map(|&f| {
                let mut p = cx.alloc().unwrap();
                p.set_frame(&[f; 60]);
                p
            })
            .collect();
        g.push_from_port(&mut cx, 0, &mut b);
        assert!(g.tx_batch(0).is_empty());
        assert_eq!(g.take_panic().unwrap().dropped, 4);
        assert_eq!(g.counters()[0].drops, vec![("panic".to_string(), 4)]);
        assert_eq!(pool.available(), 16, "the pool is whole again");
    }

    /// Holds every packet; at the end of the run sends the first it holds
    /// on and drops the rest with its own reason.
    #[derive(Default)]
    pub(super) struct Holder {
        held: Vec<Packet>,
    }

    impl Element for Holder {
        fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, _: &mut Output) {
            self.held.extend(batch.drain(..));
        }

        fn finish(&mut self, _: &mut Context<'_>, out: &mut Output) {
            let mut held = std::mem::take(&mut self.held).into_iter();
            if let Some(p) = held.next() {
                out.push(0, p);
            }
            for p in held {
                out.drop(p, crate::element::DropReason(0));
            }
        }
    }

    #[test]
    fn finish_lets_held_packets_out_or_counts_their_drops() {
        let mut spec = spec();
        spec.nodes[0].configured =
            Configured::new(Inputs::Fixed(1), 1, |_| Box::new(Holder::default()));
        let mut g = Graph::new(&spec, 0);
        let mut pool = Pool::new(16);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut b: Batch = (1..=3u8)
            .map(|f| {
                let mut p = cx.alloc().unwrap();
                p.set_frame(&[f; 60]);
                p
            })
            .collect();
        g.push_from_port(&mut cx, 0, &mut b);
        assert!(g.tx_batch(0).is_empty());
        g.finish(&mut cx);
        let sent: Vec<u8> = g.tx_batch(0).iter().map(|p| p.data()[0]).collect();
        assert_eq!(sent, [1], "what finish outputs goes on to the port");
        let c = &g.counters()[0];
        assert_eq!((c.packets_in, c.packets_out), (3, 1));
        assert_eq!(c.drops, vec![("mine".to_string(), 2)]);
        assert_eq!(
            pool.available(),
            15,
            "the dropped slots are back in the pool"
        );
    }
}
