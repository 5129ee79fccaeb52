//! Hot reload: a firewall replica hands its flows, held fragments and
//! counters to the replica of the same name in the new config, which keeps
//! its new rules (they decide from the next packet on).
//!
//! - Flows (connection tracking) move with their states and expiry times;
//!   the new timeouts apply from each flow's next packet. A smaller
//!   `max_flows` keeps the flows that fit (the rest count as expired).
//! - Fragments: the datagrams whose first fragment was decided, and the
//!   fragments held waiting for theirs, move as they are unless `frag_max`
//!   or `frag_hold` changed; then the held fragments are dropped (counted
//!   `fragments-dropped-at-end`).
//! - Rule hit counters carry over for the rules of the same counter name;
//!   flow and fragment counters carry on.

use std::any::Any;

use hpio_nf::element::Context;

use super::{Firewall, FlowTable, FragTable};

/// What a replica hands over.
pub(super) struct State {
    table: FlowTable,
    frags: FragTable,
    /// Rule hits by counter name.
    hits: Vec<(String, u64)>,
}

impl Firewall {
    /// Gives up the tables (the replica is dropped next).
    pub(super) fn hand_over(&mut self) -> Box<dyn Any + Send> {
        let s = &self.shared;
        let empty_table = FlowTable::with_seed(1, s.timeouts, 0);
        let empty_frags = FragTable::new(1, 0, s.frag_timeout, Some(0));
        let names = self.shared.rules.names.iter().cloned();
        Box::new(State {
            table: std::mem::replace(&mut self.table, empty_table),
            frags: std::mem::replace(&mut self.frags, empty_frags),
            hits: names.zip(self.hits.iter().copied()).collect(),
        })
    }

    /// Takes over what the replaced replica handed over.
    pub(super) fn take_over(&mut self, state: Box<dyn Any + Send>, cx: &mut Context<'_>) {
        let Ok(old) = state.downcast::<State>() else {
            return;
        };
        let State { table, frags, hits } = *old;
        let pinned = self.shared.hash_seed.is_some();
        // Flows that do not fit a smaller table count as expired.
        self.table.take_over(table, pinned, cx.now());
        self.frags.take_over(frags, pinned, |p| cx.free(p));
        for (name, n) in hits {
            let at = self.shared.rules.names.iter().position(|r| *r == name);
            if let Some(hit) = at.and_then(|i| self.hits.get_mut(i)) {
                *hit = n;
            }
        }
    }
}
