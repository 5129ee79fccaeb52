//! Hot reload: a bridge replica hands its MAC table and counters to the
//! replica of the same name in the new config.
//!
//! The new replica keeps its new settings. The table moves as it is when
//! `max_entries` and `aging` did not change; otherwise its entries are
//! learned again into the new table (with the new lifetime, each at the
//! time it was last seen; those past the new `max_entries` are left out).
//! Entries on a bridge port the new config no longer has are dropped. The
//! counters carry on (per-port ones for the ports both configs have).

use super::{Bridge, MacTable, PortCounters, TableCounters};

/// What a replica hands over.
pub(super) struct State {
    table: MacTable,
    ports: Box<[PortCounters]>,
    counts: TableCounters,
    now: u64,
    next_sweep: u64,
    active: bool,
}

impl Bridge {
    /// Gives up the table and counters (the replica is dropped next).
    pub(super) fn hand_over(&mut self) -> State {
        let (max, aging) = self.table.limits();
        State {
            table: std::mem::replace(&mut self.table, MacTable::new(max, aging)),
            ports: std::mem::take(&mut self.ports),
            counts: self.counts,
            now: self.now,
            next_sweep: self.next_sweep,
            // The old replica writes no table file when dropped: the new one does.
            active: std::mem::replace(&mut self.active, false),
        }
    }

    /// Takes over what the replaced replica handed over.
    pub(super) fn take_over(&mut self, old: State) {
        let ports = self.ports.len();
        let fits = old.table.entries().all(|e| usize::from(e.port) < ports);
        if old.table.limits() == self.table.limits() && fits {
            self.table = old.table;
        } else {
            for e in old.table.entries() {
                let live = !self.table.is_expired(e.seen, old.now);
                if live && usize::from(e.port) < ports {
                    self.table.learn(e.mac, e.port, e.seen);
                }
            }
        }
        for (to, from) in self.ports.iter_mut().zip(old.ports.iter()) {
            *to = *from;
        }
        self.counts = old.counts;
        self.now = old.now;
        self.next_sweep = old.next_sweep;
        self.active |= old.active;
    }
}
