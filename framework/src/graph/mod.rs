//! The element graph: its resolved, checked form ([`GraphSpec`]) and the
//! per-worker replica that pushes batches through it ([`Graph`]).

use crate::element::{ClassInfo, Configured, Context, Output};
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
#[derive(Debug)]
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
#[derive(Debug, Default)]
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

struct Node {
    element: Box<dyn crate::element::Element>,
    out: Output,
    targets: Vec<Target>,
    packets_in: u64,
    packets_out: u64,
    reasons: &'static [&'static str],
}

/// A worker's replica of the graph: its elements and, per port, the packets
/// waiting to be transmitted at the end of the burst.
pub struct Graph {
    nodes: Vec<Node>,
    sources: Vec<Option<Target>>,
    tx: Vec<Batch>,
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
            })
            .collect();
        Graph {
            nodes,
            sources: spec.sources.clone(),
            tx: spec.ports.iter().map(|_| Batch::new()).collect(),
        }
    }

    /// Runs a batch received on `port` through the graph to completion.
    /// Packets for ports wait in [`Graph::tx_batch`] until the burst's flush.
    pub fn push_from_port(&mut self, cx: &mut Context<'_>, port: usize, batch: &mut Batch) {
        match self.sources.get(port).copied().flatten() {
            Some(t) => self.push(cx, t, batch),
            None => cx.pool.free_batch(batch),
        }
    }

    /// Runs `batch` into `target` and everything downstream of it.
    pub fn push(&mut self, cx: &mut Context<'_>, target: Target, batch: &mut Batch) {
        let (idx, input) = match target {
            Target::Port(p) => {
                let tx = &mut self.tx[p];
                if tx.is_empty() {
                    std::mem::swap(tx, batch);
                } else {
                    tx.extend(batch.drain(..));
                }
                return;
            }
            Target::Element { node, input } => (node, input),
        };
        let node = &mut self.nodes[idx];
        node.packets_in += batch.len() as u64;
        node.element.push(cx, input, batch, &mut node.out);
        if !batch.is_empty() {
            node.out.drop_unhandled(batch);
        }
        if !node.out.dropped.is_empty() {
            cx.pool.free_batch(&mut node.out.dropped);
        }
        for o in 0..node.targets.len() {
            let node = &mut self.nodes[idx];
            if node.out.batches[o].is_empty() {
                continue;
            }
            let t = node.targets[o];
            let mut b = std::mem::take(&mut node.out.batches[o]);
            node.packets_out += b.len() as u64;
            self.push(cx, t, &mut b);
            // Hand the (now empty) batch back so a spilled one keeps its capacity.
            self.nodes[idx].out.batches[o] = b;
        }
    }

    /// The packets waiting to be sent on `port`.
    pub fn tx_batch(&mut self, port: usize) -> &mut Batch {
        &mut self.tx[port]
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
                    if c == 0 {
                        continue;
                    }
                    let name = match n.reasons.get(i) {
                        Some(r) => r,
                        None if i == n.reasons.len() => "unhandled",
                        None => "no-such-output",
                    };
                    drops.push((name.to_string(), c));
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
