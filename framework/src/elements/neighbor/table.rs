//! The neighbour table behind ArpQuerier (and its IPv6 counterpart): next
//! hops to Ethernet addresses, with packets held while a next hop is being
//! resolved.
//!
//! Everything is allocated at configure time: `capacity` entries, each with
//! room for `hold` packets, and the index map with room for all of them,
//! so that nothing on the data path allocates. Time-driven work (retries,
//! giving up, expiry) is done when a packet for the entry comes, by a
//! sweep per burst (every unresolved entry, a few others for expiry), and
//! by the element's timer: [`Table::next_due`] says when, [`Table::sweep`]
//! and [`Table::age`] do it.

use std::collections::HashMap;
use std::hash::Hash;

use crate::packet::Packet;

/// Timing and bounds of a table.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries.
    pub capacity: usize,
    /// Most packets held per unresolved entry.
    pub hold: usize,
    /// How long a resolved entry is trusted, ns.
    pub timeout_ns: u64,
    /// Time between requests for an unresolved entry, ns.
    pub retry_ns: u64,
    /// Requests sent before giving up.
    pub tries: u32,
}

/// One neighbour.
#[derive(Debug)]
pub struct Entry<K> {
    /// The neighbour's address.
    pub key: K,
    /// Its Ethernet address once resolved.
    pub mac: Option<[u8; 6]>,
    /// When it was resolved (or last confirmed), or when the last request went.
    pub at: u64,
    /// Requests sent while unresolved.
    pub tries: u32,
    /// Packets waiting for the address.
    pub held: Vec<Packet>,
    /// Whether the slot is in use.
    pub used: bool,
    /// A static entry (configured): never asked, never expired, never
    /// changed by what is learned.
    pub pinned: bool,
}

/// What to do with a packet for a next hop.
pub enum Verdict {
    /// Send it to this address.
    Send([u8; 6], Packet),
    /// Held; send a request now when `true`.
    Held(bool),
    /// The entry holds `hold` packets already: drop it.
    HoldFull(Packet),
    /// No free entry: drop it.
    TableFull(Packet),
}

/// A bounded neighbour table.
pub struct Table<K> {
    limits: Limits,
    slots: Vec<Entry<K>>,
    index: HashMap<K, usize>,
    free: Vec<usize>,
    /// Unresolved entries (slot indices): the sweep retries them.
    pending: Vec<usize>,
    /// No pending entry is due (for a retry, or to be given up) before
    /// this time: a flood towards new neighbours fills `pending` (up to the
    /// capacity), and each burst looked at all of them twice before.
    next_retry: u64,
    cursor: usize,
    /// The slot the last packet resolved to: a router sends most packets to
    /// one next hop (its default gateway), which then costs no hash.
    last: usize,
    /// When [`Table::age`] next scans for expired entries (`u64::MAX`: no
    /// resolved entry).
    next_expiry: u64,
}

impl<K: Copy + Eq + Hash + Default> Table<K> {
    /// An empty table with everything allocated.
    pub fn new(limits: Limits) -> Table<K> {
        let slots = (0..limits.capacity)
            .map(|_| Entry {
                key: K::default(),
                mac: None,
                at: 0,
                tries: 0,
                held: Vec::with_capacity(limits.hold),
                used: false,
                pinned: false,
            })
            .collect();
        Table {
            limits,
            slots,
            index: HashMap::with_capacity(limits.capacity),
            free: (0..limits.capacity).rev().collect(),
            pending: Vec::with_capacity(limits.capacity),
            next_retry: u64::MAX,
            cursor: 0,
            last: 0,
            next_expiry: u64::MAX,
        }
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The entries in use.
    pub fn entries(&self) -> impl Iterator<Item = &Entry<K>> {
        self.slots.iter().filter(|e| e.used)
    }

    /// The neighbour the last packet resolved to, when it is still usable
    /// at `now` (static, or resolved within `timeout`): its address and
    /// Ethernet address. [`Table::resolve`] would send a packet for it
    /// there, changing nothing.
    #[inline]
    pub fn last_resolved(&self, now: u64) -> Option<(K, [u8; 6])> {
        let e = self.slots.get(self.last)?;
        match e.mac {
            Some(mac)
                if e.used && (e.pinned || now.saturating_sub(e.at) < self.limits.timeout_ns) =>
            {
                Some((e.key, mac))
            }
            _ => None,
        }
    }

    /// Routes `pkt` for next hop `key` at time `now`.
    #[inline]
    pub fn resolve(&mut self, key: K, pkt: Packet, now: u64) -> Verdict {
        let l = self.limits;
        let slot = match self.slots.get(self.last) {
            Some(e) if e.used && e.key == key => Some(self.last),
            _ => self.index.get(&key).copied(),
        };
        match slot {
            Some(i) => {
                self.last = i;
                let e = &mut self.slots[i];
                match e.mac {
                    Some(mac) if e.pinned || now.saturating_sub(e.at) < l.timeout_ns => {
                        Verdict::Send(mac, pkt)
                    }
                    _ if e.held.len() >= l.hold => Verdict::HoldFull(pkt),
                    stale => {
                        if stale.is_some() {
                            // Expired: resolve again, from the first request.
                            e.mac = None;
                            e.tries = 0;
                            self.pending.push(i);
                            self.next_retry = self.next_retry.min(now.saturating_add(l.retry_ns));
                        }
                        e.held.push(pkt);
                        let due = e.tries == 0 || now.saturating_sub(e.at) >= l.retry_ns;
                        if due && e.tries < l.tries {
                            e.tries += 1;
                            e.at = now;
                            Verdict::Held(true)
                        } else {
                            Verdict::Held(false)
                        }
                    }
                }
            }
            None => {
                let Some(i) = self.free.pop() else {
                    return Verdict::TableFull(pkt);
                };
                let e = &mut self.slots[i];
                (e.key, e.mac, e.at, e.tries, e.used) = (key, None, now, 1, true);
                e.held.push(pkt);
                self.index.insert(key, i);
                self.pending.push(i);
                self.next_retry = self.next_retry.min(now.saturating_add(l.retry_ns));
                Verdict::Held(true)
            }
        }
    }

    /// Learns that `key` is at `mac` (when `create`, even if no entry
    /// waits for it); returns the packets that were waiting.
    pub fn learn(&mut self, key: K, mac: [u8; 6], now: u64, create: bool, out: &mut Vec<Packet>) {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None if create => match self.free.pop() {
                Some(i) => {
                    self.index.insert(key, i);
                    let e = &mut self.slots[i];
                    (e.key, e.used) = (key, true);
                    i
                }
                None => return,
            },
            None => return,
        };
        let e = &mut self.slots[i];
        if e.pinned {
            return;
        }
        if e.mac.is_none() {
            self.pending.retain(|&j| j != i);
        }
        (e.mac, e.at, e.tries) = (Some(mac), now, 0);
        out.append(&mut e.held);
        let expires = now.saturating_add(self.limits.timeout_ns);
        self.next_expiry = self.next_expiry.min(expires);
    }

    /// When time-driven work is next due: the earliest retry (or giving
    /// up) of an unresolved entry, or the next scan for expired ones.
    /// `None`: nothing is.
    pub fn next_due(&self) -> Option<u64> {
        let due = if self.pending.is_empty() {
            self.next_expiry
        } else {
            self.next_retry.min(self.next_expiry)
        };
        (due != u64::MAX).then_some(due)
    }

    /// Frees the resolved entries past the timeout, when a scan is due
    /// (one visits every slot: scans come at most every `timeout`/16).
    pub fn age(&mut self, now: u64) {
        if now < self.next_expiry {
            return;
        }
        let timeout_ns = self.limits.timeout_ns;
        let mut next = u64::MAX;
        for i in 0..self.slots.len() {
            let e = &self.slots[i];
            if !e.used || e.pinned || e.mac.is_none() {
                continue;
            }
            let expires = e.at.saturating_add(timeout_ns);
            if now >= expires {
                self.release(i);
            } else {
                next = next.min(expires);
            }
        }
        self.next_expiry = match next {
            u64::MAX => u64::MAX,
            t => t.max(now.saturating_add(timeout_ns / 16)),
        };
    }

    /// Whether [`Table::sweep`] may have work at `now`: an entry waits for
    /// its address, or a scan for expired ones is due (as for
    /// [`Table::age`]). A table of resolved neighbours skips the sweep until
    /// the first of them may expire.
    #[inline]
    pub fn sweep_due(&self, now: u64) -> bool {
        (!self.pending.is_empty() && now >= self.next_retry) || now >= self.next_expiry
    }

    /// Retries the unresolved entries whose `retry` time has come (their
    /// keys into `retry`) or gives up on them (their packets into
    /// `dropped`); then looks at `n` entries from the cursor on and frees
    /// resolved ones past the timeout.
    pub fn sweep(&mut self, n: usize, now: u64, retry: &mut Vec<K>, dropped: &mut Vec<Packet>) {
        let l = self.limits;
        if now >= self.next_retry {
            let (mut k, mut next_retry) = (0, u64::MAX);
            while k < self.pending.len() {
                let i = self.pending[k];
                let e = &mut self.slots[i];
                if now.saturating_sub(e.at) < l.retry_ns {
                    next_retry = next_retry.min(e.at.saturating_add(l.retry_ns));
                    k += 1;
                } else if e.tries < l.tries {
                    e.tries += 1;
                    e.at = now;
                    retry.push(e.key);
                    next_retry = next_retry.min(now.saturating_add(l.retry_ns));
                    k += 1;
                } else {
                    dropped.append(&mut e.held);
                    self.pending.swap_remove(k);
                    self.release(i);
                }
            }
            self.next_retry = next_retry;
        }
        for _ in 0..n.min(self.slots.len()) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % self.slots.len();
            let e = &self.slots[i];
            if e.used && !e.pinned && e.mac.is_some() && now.saturating_sub(e.at) >= l.timeout_ns {
                self.release(i);
            }
        }
    }

    /// Adds a static entry: `key` is at `mac` for good. It takes a slot of
    /// its own, beyond `capacity`; a second one for `key` replaces it.
    /// Called at configure time (it may allocate).
    pub fn pin(&mut self, key: K, mac: [u8; 6]) {
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.slots.push(Entry {
                    key,
                    mac: None,
                    at: 0,
                    tries: 0,
                    held: Vec::new(),
                    used: true,
                    pinned: true,
                });
                self.index.insert(key, self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        let e = &mut self.slots[i];
        (e.mac, e.pinned) = (Some(mac), true);
        // Room for `capacity` dynamic entries besides the static ones.
        self.index.reserve(self.limits.capacity);
    }

    fn release(&mut self, i: usize) {
        let e = &mut self.slots[i];
        e.used = false;
        e.mac = None;
        self.index.remove(&e.key);
        self.free.push(i);
    }

    /// Every packet still held (at the end of a run).
    pub fn drain_held(&mut self, out: &mut Vec<Packet>) {
        for e in &mut self.slots {
            out.append(&mut e.held);
        }
    }
}
