//! Hot reload, graph side: a worker's new replica takes over the state of
//! the elements of its old one that keep their name and class.

use super::Graph;
use crate::element::Context;

/// What became of one element of the new graph in a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// An element of the same name and class was there; it handed its state
    /// over ([`Element::take_state`](crate::element::Element::take_state)
    /// gave something) and the runtime's counters carried on.
    State,
    /// Same name and class, nothing to hand over; the counters carried on.
    Counters,
    /// New (or its class changed): starts afresh.
    Added,
}

impl Graph {
    /// The index of the element named `name` of class `class`, if any.
    fn find_node(&self, name: &str, class: &str) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.name == name && n.class == class)
    }

    /// Whether element `idx` of this graph has a successor in `new` (an
    /// element of the same name and class).
    pub fn kept_in(&self, idx: usize, new: &Graph) -> bool {
        let n = &self.nodes[idx];
        new.find_node(&n.name, n.class).is_some()
    }

    /// Before a reload: calls [`Element::finish`] on every element of this
    /// (old) graph that has no successor in `new`, in node order, and runs
    /// what each one outputs through the rest of this graph, as at the end
    /// of a run (packets for ports wait in [`Graph::tx_batch`]).
    ///
    /// [`Element::finish`]: crate::element::Element::finish
    pub fn finish_leaving(&mut self, cx: &mut Context<'_>, new: &Graph) {
        for idx in 0..self.nodes.len() {
            if !self.kept_in(idx, new) {
                self.finish_node(cx, idx);
            }
        }
    }

    /// The reload proper: each element of this (new) graph that has a
    /// predecessor of the same name and class in `old` takes over its state
    /// (`old.take_state()` then `new.give_state(state, cx)`) and its runtime
    /// counters (packets in and out, drops by reason), so totals stay
    /// monotonic. Returns what became of each element, in node order.
    pub fn take_over(&mut self, old: &mut Graph, cx: &mut Context<'_>) -> Vec<Carried> {
        let mut carried = Vec::with_capacity(self.nodes.len());
        for node in &mut self.nodes {
            let Some(i) = old.find_node(&node.name, node.class) else {
                carried.push(Carried::Added);
                continue;
            };
            let prev = &mut old.nodes[i];
            node.packets_in = prev.packets_in;
            node.packets_out = prev.packets_out;
            node.panics = prev.panics;
            for (to, from) in node.out.drop_counts.iter_mut().zip(&prev.out.drop_counts) {
                *to = *from;
            }
            carried.push(match prev.element.take_state() {
                Some(state) => {
                    node.element.give_state(state, cx);
                    Carried::State
                }
                None => Carried::Counters,
            });
        }
        carried
    }

    /// Element names of this graph, in node order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }
}
