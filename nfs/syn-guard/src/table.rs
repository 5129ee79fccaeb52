//! A fixed-size table of token buckets keyed by source address.
//!
//! The table is allocated once and never grows: `sets` sets of [`WAYS`]
//! entries each. A key lives in the set its hash picks; when that set is
//! full, the entry idle the longest is evicted (its source starts again with
//! a full bucket, which errs on the side of letting traffic through).
//!
//! Buckets count credit in picotokens (10^-12 of a SYN), so rates down to one
//! SYN per thousand seconds accrue exactly with integer arithmetic: `rate`
//! is in milli-SYNs per second, and one nanosecond at `rate` adds `rate`
//! picotokens.

/// Entries per set.
pub const WAYS: usize = 4;

/// Picotokens in one token (the cost of one SYN).
pub const TOKEN: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    key: u128,
    /// Credit in picotokens.
    credit: u64,
    /// Time of the last SYN seen, ns.
    last: u64,
    used: bool,
}

/// What the table decided for one SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the source's rate.
    Pass,
    /// Over the source's rate.
    Limit,
}

/// Token buckets for up to `sets * WAYS` sources.
#[derive(Debug, Clone)]
pub struct Table {
    entries: Vec<Entry>,
    set_mask: usize,
    seed: u64,
    /// Refill rate, milli-SYNs per second (= picotokens per ns).
    rate: u64,
    /// Bucket depth in picotokens.
    depth: u64,
    /// Entries in use.
    pub used: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
}

impl Table {
    /// A table of at least `capacity` entries (rounded up to whole sets of a
    /// power-of-two count), refilling at `rate_milli` milli-SYNs per second
    /// up to `burst` SYNs, hashing with `seed`.
    pub fn new(capacity: usize, rate_milli: u64, burst: u64, seed: u64) -> Table {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        Table {
            entries: vec![Entry::default(); sets * WAYS],
            set_mask: sets - 1,
            seed,
            rate: rate_milli.max(1),
            depth: burst.max(1).saturating_mul(TOKEN),
            used: 0,
            evictions: 0,
        }
    }

    /// The refill rate (milli-SYNs per second) and bucket depth (SYNs).
    pub fn limits(&self) -> (u64, u64) {
        (self.rate, self.depth / TOKEN)
    }

    /// Sets new limits; the buckets keep their credit (capped at the new depth).
    pub fn set_limits(&mut self, rate_milli: u64, burst: u64) {
        self.rate = rate_milli.max(1);
        self.depth = burst.max(1).saturating_mul(TOKEN);
        for e in &mut self.entries {
            e.credit = e.credit.min(self.depth);
        }
    }

    /// Forgets every source (each starts again with a full bucket).
    pub fn clear(&mut self) {
        self.entries.fill(Entry::default());
        self.used = 0;
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Charges one SYN from source `key` at time `now` (ns).
    #[inline]
    pub fn charge(&mut self, key: u128, now: u64) -> Verdict {
        let base = (self.hash(key) as usize & self.set_mask) * WAYS;
        let set = &mut self.entries[base..base + WAYS];
        let e = match set.iter().position(|e| e.used && e.key == key) {
            Some(i) => {
                let e = &mut set[i];
                let elapsed = now.saturating_sub(e.last);
                e.credit = e
                    .credit
                    .saturating_add(elapsed.saturating_mul(self.rate))
                    .min(self.depth);
                e.last = e.last.max(now);
                e
            }
            None => {
                let i = match set.iter().position(|e| !e.used) {
                    Some(i) => {
                        self.used += 1;
                        i
                    }
                    None => {
                        self.evictions += 1;
                        // The set is full: every entry is used. Evict the idlest.
                        (0..WAYS).min_by_key(|&i| set[i].last).unwrap_or(0)
                    }
                };
                set[i] = Entry {
                    key,
                    credit: self.depth,
                    last: now,
                    used: true,
                };
                &mut set[i]
            }
        };
        if e.credit >= TOKEN {
            e.credit -= TOKEN;
            Verdict::Pass
        } else {
            Verdict::Limit
        }
    }

    /// splitmix64's finalizer over the key folded to 64 bits and the seed.
    #[inline]
    fn hash(&self, key: u128) -> u64 {
        let hi = ((key >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut x = key as u64 ^ hi.rotate_left(32) ^ self.seed;
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn run(t: &mut Table, key: u128, now: u64, n: usize) -> Vec<Verdict> {
        (0..n).map(|_| t.charge(key, now)).collect()
    }

    #[test]
    fn a_new_source_gets_a_full_bucket_then_the_rate() {
        // 2 SYNs/s, burst 3.
        let mut t = Table::new(64, 2_000, 3, 7);
        let v = run(&mut t, 1, 10 * SEC, 5);
        assert_eq!(
            v,
            [
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Limit,
                Verdict::Limit
            ]
        );
        // Half a second later: one token back.
        assert_eq!(
            run(&mut t, 1, 10 * SEC + SEC / 2, 2),
            [Verdict::Pass, Verdict::Limit]
        );
        // An idle hour refills only up to the burst.
        let v = run(&mut t, 1, 3600 * SEC, 4);
        assert_eq!(v.iter().filter(|v| **v == Verdict::Pass).count(), 3);
        assert_eq!((t.used, t.evictions), (1, 0));
    }

    #[test]
    fn slow_rates_accrue_exactly() {
        // One SYN every 1000 s.
        let mut t = Table::new(4, 1, 1, 0);
        assert_eq!(t.charge(9, 0), Verdict::Pass);
        assert_eq!(t.charge(9, 999 * SEC), Verdict::Limit);
        assert_eq!(t.charge(9, 1000 * SEC), Verdict::Pass);
    }

    #[test]
    fn sources_do_not_share_buckets() {
        let mut t = Table::new(1024, 1_000, 1, 1);
        for k in 1..=20u128 {
            assert_eq!(t.charge(k, 0), Verdict::Pass, "source {k}");
        }
        assert_eq!(t.charge(5, 0), Verdict::Limit);
        assert_eq!((t.used, t.evictions), (20, 0));
    }

    #[test]
    fn a_full_set_evicts_the_idlest_entry() {
        // One set of 4 ways.
        let mut t = Table::new(1, 1_000, 1, 3);
        assert_eq!(t.capacity(), WAYS);
        for k in 0..4u128 {
            t.charge(k, k as u64 * SEC);
        }
        assert_eq!(t.charge(0, 4 * SEC), Verdict::Pass, "refilled after 4 s");
        // Key 1 is now the idlest (last seen at 1 s): key 9 takes its place.
        assert_eq!(t.charge(9, 5 * SEC), Verdict::Pass);
        assert_eq!((t.used, t.evictions), (4, 1));
        // Key 1 comes back as a new source with a full bucket, evicting key 2.
        assert_eq!(t.charge(1, 5 * SEC), Verdict::Pass);
        assert_eq!(t.evictions, 2);
        assert_eq!(t.charge(3, 5 * SEC), Verdict::Pass, "key 3 was kept");
        assert_eq!(t.charge(3, 5 * SEC), Verdict::Limit);
    }

    #[test]
    fn time_going_back_neither_panics_nor_refills() {
        let mut t = Table::new(8, 1_000, 1, 0);
        assert_eq!(t.charge(1, 100 * SEC), Verdict::Pass);
        assert_eq!(t.charge(1, 5 * SEC), Verdict::Limit);
        assert_eq!(
            t.charge(1, 100 * SEC + SEC / 2),
            Verdict::Limit,
            "last stays at 100 s"
        );
        assert_eq!(t.charge(1, 101 * SEC), Verdict::Pass);
        assert_eq!(t.charge(2, u64::MAX), Verdict::Pass);
        assert_eq!(t.charge(2, u64::MAX), Verdict::Limit);
    }
}
