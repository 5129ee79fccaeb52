//! The MAC table: a fixed-capacity open-addressing hash table from MAC
//! address to bridge port and last-seen time.
//!
//! All memory is allocated when the table is made (when a worker's replica
//! is built); nothing on the packet path allocates or grows. The slot array
//! has at least twice as many slots as the table may hold entries (load at
//! most 1/2), a power of two, probed linearly from a multiplicative hash of
//! the address. A slot is one 16-byte pair: the address and port packed in
//! one word (`mac << 16 | port`; 0 marks a free slot, which no learnable
//! address can produce) and the time the address was last seen.
//!
//! Entries expire `aging` nanoseconds after they were last seen: an
//! expired entry is never used for forwarding, is replaced when its address
//! is seen again, and gives its slot back when [`MacTable::sweep`] reaches
//! it. Removal shifts the following entries of the probe run back, so the
//! table needs no tombstones and lookups never slow down with churn.

/// What [`MacTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Learn {
    /// The address was known on this port: its time was refreshed.
    Refreshed,
    /// A new entry.
    Learned,
    /// The address was known, on another port: the entry moved.
    Moved {
        /// The port it was on.
        from: u16,
    },
    /// The address had an expired entry, which now holds the new port and time.
    Relearned,
    /// The table holds `max_entries` entries: the address was not learned.
    Full,
}

/// One slot: address and port packed, and the last-seen time.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// `mac << 16 | port`; 0 for a free slot.
    key: u64,
    /// When the address was last seen (ns, the element's clock).
    seen: u64,
}

impl Slot {
    #[inline]
    fn mac(&self) -> u64 {
        self.key >> 16
    }

    #[inline]
    fn port(&self) -> u16 {
        self.key as u16
    }
}

/// One entry, as [`MacTable::entries`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// The address, as a 48-bit number.
    pub mac: u64,
    /// The bridge port it was last seen on.
    pub port: u16,
    /// When it was last seen (ns).
    pub seen: u64,
}

/// A bounded MAC table; see the module documentation.
#[derive(Debug, Clone)]
pub(super) struct MacTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// `64 - log2(slots)`: the hash keeps the top bits of the product.
    shift: u32,
    len: usize,
    max: usize,
    aging: u64,
    /// Next slot the sweep looks at.
    cursor: usize,
}

/// Fibonacci hashing: the top bits of `mac * 2^64 / phi` spread
/// consecutive addresses over the whole table.
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl MacTable {
    /// A table for up to `max_entries` (at least 1) addresses that expire
    /// `aging_ns` after they were last seen.
    pub fn new(max_entries: usize, aging_ns: u64) -> MacTable {
        let max = max_entries.max(1);
        let slots = (2 * max).next_power_of_two().max(8);
        MacTable {
            slots: vec![Slot::default(); slots].into_boxed_slice(),
            mask: slots - 1,
            shift: 64 - slots.trailing_zeros(),
            len: 0,
            max,
            aging: aging_ns,
            cursor: 0,
        }
    }

    /// Entries held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated (twice `max_entries` or more, a power of two).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn home(&self, mac: u64) -> usize {
        (mac.wrapping_mul(HASH_MUL) >> self.shift) as usize
    }

    #[inline]
    fn expired(&self, seen: u64, now: u64) -> bool {
        now.saturating_sub(seen) >= self.aging
    }

    /// The port `mac` was learned on, unless unknown or expired at `now`.
    #[inline]
    pub fn lookup(&self, mac: u64, now: u64) -> Option<u16> {
        let mut i = self.home(mac);
        loop {
            let s = self.slots[i];
            if s.key == 0 {
                return None;
            }
            if s.mac() == mac {
                return (!self.expired(s.seen, now)).then_some(s.port());
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Records that `mac` (a non-zero 48-bit address) was seen on `port` at `now`.
    #[inline]
    pub fn learn(&mut self, mac: u64, port: u16, now: u64) -> Learn {
        debug_assert!(mac != 0 && mac >> 48 == 0);
        let key = mac << 16 | u64::from(port);
        let mut i = self.home(mac);
        loop {
            let s = self.slots[i];
            if s.key == 0 {
                break;
            }
            if s.mac() == mac {
                let expired = self.expired(s.seen, now);
                let slot = &mut self.slots[i];
                slot.seen = now;
                if s.key == key {
                    return if expired {
                        Learn::Relearned
                    } else {
                        Learn::Refreshed
                    };
                }
                slot.key = key;
                return if expired {
                    Learn::Relearned
                } else {
                    Learn::Moved { from: s.port() }
                };
            }
            i = (i + 1) & self.mask;
        }
        if self.len >= self.max {
            return Learn::Full;
        }
        self.slots[i] = Slot { key, seen: now };
        self.len += 1;
        Learn::Learned
    }

    /// Frees slot `i` and shifts the rest of its probe run back so every
    /// entry stays reachable from its home slot (no tombstones).
    fn remove_at(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s.key == 0 {
                break;
            }
            // The entry at j may fill the hole at i unless its home lies
            // cyclically in (i, j]: it would then be unreachable from it.
            let home = self.home(s.mac());
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = Slot::default();
        self.len -= 1;
    }

    /// Removes the entry of `mac`, if any; returns whether there was one.
    #[cfg(test)]
    pub fn remove(&mut self, mac: u64) -> bool {
        let mut i = self.home(mac);
        loop {
            let s = self.slots[i];
            if s.key == 0 {
                return false;
            }
            if s.mac() == mac {
                self.remove_at(i);
                return true;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Looks at up to `budget` slots from where the previous call stopped,
    /// removing entries expired at `now`. Returns the number removed and
    /// whether the pass over the whole table is complete (the next call
    /// starts a new pass).
    pub fn sweep(&mut self, now: u64, budget: usize) -> (usize, bool) {
        let mut removed = 0;
        let end = self.cursor.saturating_add(budget).min(self.slots.len());
        let mut i = self.cursor;
        while i < end {
            let s = self.slots[i];
            if s.key != 0 && self.expired(s.seen, now) {
                // An entry from further on may move into slot i: look again.
                self.remove_at(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
        if end == self.slots.len() {
            self.cursor = 0;
            (removed, true)
        } else {
            self.cursor = end;
            (removed, false)
        }
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        self.slots.fill(Slot::default());
        self.len = 0;
        self.cursor = 0;
        n
    }

    /// Every entry, expired ones included, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().filter(|s| s.key != 0).map(|s| Entry {
            mac: s.mac(),
            port: s.port(),
            seen: s.seen,
        })
    }

    /// Whether an entry last seen at `seen` has expired at `now`.
    pub fn is_expired(&self, seen: u64, now: u64) -> bool {
        self.expired(seen, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use testkit::rng::Rng;

    const S: u64 = 1_000_000_000;

    /// Every entry is reachable from its home slot, the count is right and
    /// the load stays at most 1/2.
    fn check_invariants(t: &MacTable) {
        let mut n = 0;
        for (i, s) in t.slots.iter().enumerate() {
            if s.key == 0 {
                continue;
            }
            n += 1;
            let mut j = t.home(s.mac());
            while j != i {
                assert_ne!(t.slots[j].key, 0, "hole between home and slot {i}");
                j = (j + 1) & t.mask;
            }
        }
        assert_eq!(n, t.len);
        assert!(t.len * 2 <= t.slots.len());
    }

    #[test]
    fn learns_refreshes_moves_and_looks_up() {
        let mut t = MacTable::new(16, 10 * S);
        assert_eq!(t.capacity(), 32);
        assert_eq!(t.lookup(0x0200_0000_000a, 0), None);
        assert_eq!(t.learn(0x0200_0000_000a, 0, S), Learn::Learned);
        assert_eq!(t.learn(0x0200_0000_000a, 0, 2 * S), Learn::Refreshed);
        assert_eq!(t.lookup(0x0200_0000_000a, 2 * S), Some(0));
        assert_eq!(
            t.learn(0x0200_0000_000a, 3, 3 * S),
            Learn::Moved { from: 0 }
        );
        assert_eq!(t.lookup(0x0200_0000_000a, 3 * S), Some(3));
        assert_eq!(t.len(), 1);
        // The largest address and the largest port pack without clashing.
        assert_eq!(t.learn(0xfeff_ffff_ffff, u16::MAX, 3 * S), Learn::Learned);
        assert_eq!(t.lookup(0xfeff_ffff_ffff, 3 * S), Some(u16::MAX));
        assert_eq!(t.lookup(0x0200_0000_000a, 3 * S), Some(3));
    }

    #[test]
    fn entries_expire_at_the_aging_time() {
        let mut t = MacTable::new(4, 10 * S);
        t.learn(1, 1, 5 * S);
        assert_eq!(t.lookup(1, 15 * S - 1), Some(1));
        assert_eq!(t.lookup(1, 15 * S), None, "expired after exactly `aging`");
        // Seen again: the expired entry is reused, on the new port.
        assert_eq!(t.learn(1, 2, 16 * S), Learn::Relearned);
        assert_eq!(t.lookup(1, 16 * S), Some(2));
        assert_eq!(t.learn(1, 2, 30 * S), Learn::Relearned);
        assert_eq!(t.len(), 1);
        // A clock that goes backwards (never by the runtime) does not expire anything.
        assert_eq!(t.lookup(1, 0), Some(2));
    }

    #[test]
    fn a_full_table_refuses_new_addresses_but_keeps_serving() {
        let mut t = MacTable::new(3, 10 * S);
        for m in 1..=3 {
            assert_eq!(t.learn(m, m as u16, 0), Learn::Learned);
        }
        assert_eq!(t.learn(4, 0, 0), Learn::Full);
        assert_eq!(t.lookup(4, 0), None);
        // Known addresses still refresh and move.
        assert_eq!(t.learn(2, 2, S), Learn::Refreshed);
        assert_eq!(t.learn(3, 0, S), Learn::Moved { from: 3 });
        assert_eq!(t.len(), 3);
        // Once an entry expires and is swept, there is room again.
        let (removed, done) = t.sweep(10 * S, usize::MAX);
        assert_eq!((removed, done), (1, true), "only address 1 was idle 10 s");
        assert_eq!(t.learn(4, 0, 10 * S), Learn::Learned);
        check_invariants(&t);
    }

    #[test]
    fn sweep_is_incremental_and_wraps() {
        let mut t = MacTable::new(8, S);
        for m in 1..=8 {
            t.learn(m, 0, 0);
        }
        let cap = t.capacity();
        let mut removed = 0;
        let mut passes = 0;
        for _ in 0..cap {
            let (r, done) = t.sweep(S, 3);
            removed += r;
            if done {
                passes += 1;
                break;
            }
        }
        assert_eq!(passes, 1);
        assert_eq!(removed, 8);
        assert_eq!(t.len(), 0);
        assert!(t.entries().next().is_none());
        // The next call starts a new pass from slot 0.
        assert_eq!(t.sweep(S, 1), (0, false));
    }

    #[test]
    fn random_operations_match_a_model() {
        // A tiny table over few addresses: long probe runs, collisions,
        // wrap-around at the end of the slot array, and constant churn.
        for seed in 1..=20u64 {
            let mut rng = Rng::new(seed * 0x9e37_79b9);
            let max = 1 + (seed as usize % 12);
            let aging = 50;
            let mut t = MacTable::new(max, aging);
            let mut model: HashMap<u64, (u16, u64)> = HashMap::new();
            let mut now = 0u64;
            for step in 0..20_000 {
                now += rng.next_u64() % 3;
                let mac = 1 + rng.next_u64() % (3 * max as u64);
                let live = |m: &HashMap<u64, (u16, u64)>, mac: u64, now: u64| {
                    m.get(&mac)
                        .filter(|(_, seen)| now - seen < aging)
                        .map(|(p, _)| *p)
                };
                match rng.next_u64() % 8 {
                    0..=3 => {
                        let port = (rng.next_u64() % 4) as u16;
                        let got = t.learn(mac, port, now);
                        let want = match model.get(&mac) {
                            None if model.len() >= max => Learn::Full,
                            None => Learn::Learned,
                            Some(&(_, seen)) if now - seen >= aging => Learn::Relearned,
                            Some(&(p, _)) if p == port => Learn::Refreshed,
                            Some(&(p, _)) => Learn::Moved { from: p },
                        };
                        assert_eq!(got, want, "seed {seed} step {step}");
                        if want != Learn::Full {
                            model.insert(mac, (port, now));
                        }
                    }
                    4..=5 => assert_eq!(
                        t.lookup(mac, now),
                        live(&model, mac, now),
                        "seed {seed} step {step}"
                    ),
                    6 => {
                        let (removed, _) = t.sweep(now, 1 + (rng.next_u64() % 7) as usize);
                        // Which expired entries a partial sweep reaches
                        // depends on their slots: it must remove only
                        // expired ones, and say how many.
                        let kept: HashSet<u64> = t.entries().map(|e| e.mac).collect();
                        for (m, (_, seen)) in &model {
                            if !kept.contains(m) {
                                assert!(
                                    now - seen >= aging,
                                    "seed {seed} step {step}: live {m} swept"
                                );
                            }
                        }
                        let before = model.len();
                        model.retain(|m, _| kept.contains(m));
                        assert_eq!(before - model.len(), removed, "seed {seed} step {step}");
                    }
                    _ => {
                        assert_eq!(t.remove(mac), model.remove(&mac).is_some());
                    }
                }
                assert_eq!(t.len(), model.len());
                if step % 97 == 0 {
                    check_invariants(&t);
                    let mut got: Vec<_> = t.entries().map(|e| (e.mac, e.port, e.seen)).collect();
                    let mut want: Vec<_> = model.iter().map(|(m, (p, s))| (*m, *p, *s)).collect();
                    got.sort_unstable();
                    want.sort_unstable();
                    assert_eq!(got, want, "seed {seed} step {step}");
                }
            }
        }
    }

    #[test]
    fn never_reallocates() {
        let mut t = MacTable::new(64, S);
        let base = t.slots.as_ptr();
        for m in 1..10_000u64 {
            t.learn(m, (m % 5) as u16, m);
            t.sweep(m, 16);
        }
        assert_eq!(t.slots.as_ptr(), base);
        assert_eq!(t.capacity(), 128);
        assert!(t.len() <= 64);
    }
}
