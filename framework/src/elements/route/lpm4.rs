//! IPv4 longest-prefix match: DIR-24-8 (Gupta, Lin and McKeown, "Routing
//! lookups in hardware at memory access speeds", 1998), with the
//! depth bookkeeping that makes insertions and removals incremental.
//!
//! `tbl24` has one 16-bit entry per /24: a value (bit 15 clear) or, when a
//! prefix longer than /24 lies in that /24, the index of a 256-entry group
//! in `tbl8` (bit 15 set). A lookup is one load, or two for addresses under
//! a long prefix. Values are `1..=MAX_VALUE`, 0 meaning no route. Beside each
//! entry the table keeps the length of the prefix that set it, so that a
//! change rewrites only the entries that prefix owns: an insertion of a /len
//! overwrites the entries of its range set by prefixes of length <= len, a
//! removal gives the entries set by it to the next shorter prefix covering
//! it. The routes themselves are kept by length, for that search and for
//! listing.

//!
//! # One table for all workers
//!
//! The workers read one table while the control plane changes it, with no
//! lock on their side: the entries they read (`tbl24`, `tbl8`) are
//! atomics, loaded with `Acquire` (on x86-64 a plain `mov`, as a load of
//! a `u16`), stored by one writer at a time with `Release`. The writer's
//! bookkeeping (depths, routes, free groups) sits behind a `Mutex` only
//! writers take. Publication order: a new group is filled before the
//! `tbl24` entry naming it is stored; whoever loads that entry sees the
//! group's entries. `tbl8` has its full capacity from the start (a mapping
//! whose untouched pages cost nothing), so it never moves under a reader.
//!
//! A group freed by a removal serves another /24 only once a grace period
//! started at its free has passed (see [`Grace`]): a reader that loaded
//! the old `tbl24` entry (the group's index) may still load from the group
//! until its next burst boundary, and if the group had been rewritten for
//! another /24 in between, its packet would take a route of an unrelated
//! prefix. Freed groups are reused oldest first once their grace has
//! passed; before that the writer takes a never-used group, and when there
//! is none (all 32768 have been used) the insertion is refused
//! ([`Lpm4Error::Quarantined`]) rather than waited for: IpLookup's
//! handlers run on worker 0, which would wait for itself. Memory safety
//! does not depend on it: the groups live as long as the table.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU16;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::element::{Grace, GraceToken};
use crate::sys::memory::AtomicArray;

/// Bit 15 of a `tbl24` entry: the rest is a `tbl8` group index.
const GROUP: u16 = 0x8000;
/// Entries of a `tbl8` group (the last 8 bits of an address).
const GROUP_LEN: usize = 256;

/// Entries of `tbl24`: one per /24.
const TBL24_LEN: usize = 1 << 24;

/// The largest value a route may carry (the next-hop index space).
pub const MAX_VALUE: u16 = 0x7fff;
/// The most `tbl8` groups (/24s holding a prefix longer than /24).
pub const MAX_GROUPS: usize = 0x8000;
/// Entries of `tbl8` at its full capacity (16 MiB of address space, used
/// as groups are).
const TBL8_LEN: usize = MAX_GROUPS * GROUP_LEN;

/// A DIR-24-8 table mapping IPv4 prefixes to values `1..=MAX_VALUE`,
/// shared: looked up through `&self` by any number of threads while
/// [`Lpm4::insert`] and [`Lpm4::remove`] (also `&self`) change it.
pub struct Lpm4 {
    /// A fixed-size array, so that indexing it with a 24-bit number needs
    /// no bounds check; 2 MiB aligned, so that all of it is on huge pages.
    tbl24: AtomicArray<AtomicU16, TBL24_LEN>,
    /// Every group there may be: a 15-bit group and an 8-bit address byte
    /// index it with no bounds check, and it never moves.
    tbl8: AtomicArray<AtomicU16, TBL8_LEN>,
    /// The writer's side; readers never take it.
    w: Mutex<Writer>,
}

/// What only the writer uses.
struct Writer {
    depth24: Vec<u8>,
    /// The depths of the groups handed out so far.
    depth8: Vec<u8>,
    /// Groups `0..groups` have been handed out at least once.
    groups: usize,
    /// Freed groups and the grace started when each was freed, oldest first.
    free: VecDeque<(u16, GraceToken)>,
    /// The readers' grace-period domain.
    grace: Arc<Grace>,
    /// The routes by prefix length: prefix (masked) -> value.
    routes: Vec<HashMap<u32, u16>>,
}

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lpm4Error {
    /// All `MAX_GROUPS` groups are in use.
    TooManyGroups,
    /// Every group has been used, and a worker may still read each of those
    /// freed since (it has not passed a burst boundary since the free): the
    /// same insertion succeeds once it has.
    Quarantined,
}

impl std::fmt::Display for Lpm4Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lpm4Error::TooManyGroups => write!(
                f,
                "too many /24s hold prefixes longer than /24 (at most {MAX_GROUPS})"
            ),
            Lpm4Error::Quarantined => write!(
                f,
                "every one of the {MAX_GROUPS} groups for /24s holding prefixes longer than \
                 /24 has been used, and a worker may still be reading the freed ones (it has \
                 not finished its burst since): try again"
            ),
        }
    }
}

/// The network mask of a /len.
#[inline]
pub fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

impl Default for Lpm4 {
    fn default() -> Self {
        Lpm4::new()
    }
}

/// A borrowed [`Lpm4`] that looks up, for loops over a burst (see
/// [`Lpm4::view`]).
#[derive(Clone, Copy)]
pub struct Lpm4View<'a> {
    tbl24: &'a [AtomicU16; TBL24_LEN],
    tbl8: &'a [AtomicU16; TBL8_LEN],
}

impl Lpm4View<'_> {
    /// As [`Lpm4::prefetch`].
    #[inline(always)]
    pub fn prefetch(self, addr: u32) {
        crate::sys::memory::prefetch(&self.tbl24[(addr >> 8) as usize]);
    }

    /// As [`Lpm4::lookup`]. `Acquire` loads: what the writer stored
    /// before publishing an entry (a group's entries, a value's next-hop
    /// slot) is seen by whoever loads it; on x86-64 an ordinary load.
    #[inline(always)]
    pub fn lookup(self, addr: u32) -> u16 {
        let e = self.tbl24[(addr >> 8) as usize].load(Acquire);
        if e & GROUP == 0 {
            e
        } else {
            let at = (usize::from(e & !GROUP) << 8) | (addr & 0xff) as usize;
            self.tbl8[at].load(Acquire)
        }
    }
}

impl Lpm4 {
    /// An empty table: 48 MiB of address space for `tbl24` and its depths,
    /// 24 MiB for the groups, backed by memory as entries are written. Its
    /// readers are the runtime's workers ([`Grace::global`]).
    pub fn new() -> Lpm4 {
        Lpm4::with_grace(Grace::global())
    }

    /// An empty table whose readers are the participants of `grace`.
    pub fn with_grace(grace: Arc<Grace>) -> Lpm4 {
        Lpm4 {
            tbl24: AtomicArray::zeroed(),
            tbl8: AtomicArray::zeroed(),
            w: Mutex::new(Writer {
                depth24: vec![0; TBL24_LEN],
                depth8: Vec::new(),
                groups: 0,
                free: VecDeque::new(),
                grace,
                routes: vec![HashMap::new(); 33],
            }),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A writer that panicked left no entry half-published (each store
        // is whole); carry on with its bookkeeping.
        self.w.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts loading the first-level entry of `addr` into the caches
    /// without waiting for it. A burst looks up faster when every address's
    /// entry is prefetched first and [`Lpm4::lookup`] runs afterwards: the
    /// table (32 MiB) misses the caches, and the misses then overlap.
    #[inline(always)]
    pub fn prefetch(&self, addr: u32) {
        self.view().prefetch(addr)
    }

    /// The value of the longest prefix holding `addr`, 0 when none does.
    #[inline(always)]
    pub fn lookup(&self, addr: u32) -> u16 {
        self.view().lookup(addr)
    }

    /// The two tables as plain references, for a loop of lookups: held in
    /// registers, where through `&Lpm4` each lookup reloads them (a store
    /// to a packet might, for all the compiler knows, have changed them).
    #[inline(always)]
    pub fn view(&self) -> Lpm4View<'_> {
        Lpm4View {
            tbl24: &self.tbl24,
            tbl8: &self.tbl8,
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.writer().routes.iter().map(|r| r.len()).sum()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Groups in use.
    pub fn groups(&self) -> usize {
        let w = self.writer();
        w.groups - w.free.len()
    }

    /// Every route: (prefix, length, value), shortest prefixes first.
    pub fn routes(&self) -> Vec<(u32, u8, u16)> {
        let w = self.writer();
        w.routes
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(&p, &v)| (p, len as u8, v)))
            .collect()
    }

    /// The value of exactly `prefix/len`, if that route exists.
    pub fn get(&self, prefix: u32, len: u8) -> Option<u16> {
        self.writer().get(prefix, len)
    }

    /// Adds or replaces the route `prefix/len -> value` (`len <= 32`,
    /// `1 <= value <= MAX_VALUE`); returns the value it replaced.
    pub fn insert(&self, prefix: u32, len: u8, value: u16) -> Result<Option<u16>, Lpm4Error> {
        assert!(len <= 32 && (1..=MAX_VALUE).contains(&value));
        let w = &mut *self.writer();
        let prefix = prefix & mask4(len);
        if len > 24 && self.tbl24[(prefix >> 8) as usize].load(Relaxed) & GROUP == 0 {
            self.alloc_group(w, prefix >> 8)?;
        }
        let old = w.routes[usize::from(len)].insert(prefix, value);
        self.fill(w, prefix, len, value, len, |d| d <= len);
        Ok(old)
    }

    /// Removes the route `prefix/len`; returns its value.
    pub fn remove(&self, prefix: u32, len: u8) -> Option<u16> {
        let w = &mut *self.writer();
        let prefix = prefix & mask4(len);
        let old = w.routes[usize::from(len)].remove(&prefix)?;
        let (value, depth) = w.covering(prefix, len);
        self.fill(w, prefix, len, value, depth, |d| d == len);
        if len > 24 {
            self.collapse(w, prefix >> 8);
        }
        Some(old)
    }

    /// Sets the entries of `prefix/len` whose depth passes `owned` to
    /// (`value`, `depth`).
    fn fill(
        &self,
        w: &mut Writer,
        prefix: u32,
        len: u8,
        value: u16,
        depth: u8,
        owned: impl Fn(u8) -> bool,
    ) {
        if len <= 24 {
            let start = (prefix >> 8) as usize;
            for i in start..start + (1usize << (24 - len)) {
                let e = self.tbl24[i].load(Relaxed);
                if e & GROUP != 0 {
                    let g = usize::from(e & !GROUP) * GROUP_LEN;
                    self.fill_group(w, g..g + GROUP_LEN, value, depth, &owned);
                } else if owned(w.depth24[i]) {
                    self.tbl24[i].store(value, Release);
                    w.depth24[i] = depth;
                }
            }
        } else {
            let e = self.tbl24[(prefix >> 8) as usize].load(Relaxed);
            let g = usize::from(e & !GROUP) * GROUP_LEN + (prefix & 0xff) as usize;
            self.fill_group(w, g..g + (1usize << (32 - len)), value, depth, &owned);
        }
    }

    fn fill_group(
        &self,
        w: &mut Writer,
        range: std::ops::Range<usize>,
        value: u16,
        depth: u8,
        owned: &impl Fn(u8) -> bool,
    ) {
        for j in range {
            if owned(w.depth8[j]) {
                self.tbl8[j].store(value, Release);
                w.depth8[j] = depth;
            }
        }
    }

    /// Gives /24 number `i` a group holding its current entry 256 times:
    /// filled first, then published by storing its index in `tbl24`.
    fn alloc_group(&self, w: &mut Writer, i: u32) -> Result<(), Lpm4Error> {
        let g = match w.free.front() {
            Some(&(g, freed)) if w.grace.passed(&freed) => {
                w.free.pop_front();
                g
            }
            _ if w.groups < MAX_GROUPS => {
                w.groups += 1;
                w.depth8.resize(w.groups * GROUP_LEN, 0);
                (w.groups - 1) as u16
            }
            Some(_) => return Err(Lpm4Error::Quarantined),
            None => return Err(Lpm4Error::TooManyGroups),
        };
        let i = i as usize;
        let at = usize::from(g) * GROUP_LEN;
        let (e, d) = (self.tbl24[i].load(Relaxed), w.depth24[i]);
        for j in at..at + GROUP_LEN {
            self.tbl8[j].store(e, Relaxed);
        }
        w.depth8[at..at + GROUP_LEN].fill(d);
        // Release: a reader that loads this index sees the entries above.
        self.tbl24[i].store(GROUP | g, Release);
        Ok(())
    }

    /// Frees the group of /24 number `i` once no prefix longer than /24
    /// remains in it (all its entries are then the same): the /24 gets
    /// that entry back, and the group waits for a grace period to pass.
    fn collapse(&self, w: &mut Writer, i: u32) {
        let i = i as usize;
        let e = self.tbl24[i].load(Relaxed);
        if e & GROUP == 0 {
            return;
        }
        let g = e & !GROUP;
        let at = usize::from(g) * GROUP_LEN;
        if w.depth8[at..at + GROUP_LEN].iter().any(|&d| d > 24) {
            return;
        }
        self.tbl24[i].store(self.tbl8[at].load(Relaxed), Release);
        w.depth24[i] = w.depth8[at];
        // After the store that unpublished it.
        let t = w.grace.start();
        w.free.push_back((g, t));
    }
}

impl Writer {
    fn get(&self, prefix: u32, len: u8) -> Option<u16> {
        self.routes[usize::from(len)]
            .get(&(prefix & mask4(len)))
            .copied()
    }

    /// The longest route strictly shorter than `len` holding `prefix`:
    /// (value, length), (0, 0) when none.
    fn covering(&self, prefix: u32, len: u8) -> (u16, u8) {
        (0..len)
            .rev()
            .find_map(|l| self.get(prefix, l).map(|v| (v, l)))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    /// `tbl24` (32 MiB) and `tbl8` start on a 2 MiB boundary, so that
    /// huge pages can back all of them.
    #[test]
    fn the_tables_are_huge_page_aligned() {
        let t = Lpm4::new();
        t.insert(ip("10.0.0.0"), 8, 3).unwrap();
        assert!(t.tbl24.huge_aligned() && t.tbl8.huge_aligned());
        assert_eq!((t.tbl24.len(), t.lookup(ip("10.1.2.3"))), (TBL24_LEN, 3));
    }

    /// The reference: the longest matching route by a linear scan.
    fn naive(routes: &[(u32, u8, u16)], addr: u32) -> u16 {
        routes
            .iter()
            .filter(|&&(p, l, _)| addr & mask4(l) == p & mask4(l))
            .max_by_key(|&&(_, l, _)| l)
            .map_or(0, |&(_, _, v)| v)
    }

    #[test]
    fn longest_prefix_wins_and_removal_uncovers_the_shorter() {
        let t = Lpm4::new();
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        t.insert(ip("10.1.0.0"), 16, 2).unwrap();
        t.insert(ip("10.1.2.128"), 25, 3).unwrap();
        t.insert(ip("10.1.2.130"), 32, 4).unwrap();
        assert_eq!(t.lookup(ip("10.9.9.9")), 1);
        assert_eq!(t.lookup(ip("10.1.9.9")), 2);
        assert_eq!(t.lookup(ip("10.1.2.1")), 2);
        assert_eq!(t.lookup(ip("10.1.2.129")), 3);
        assert_eq!(t.lookup(ip("10.1.2.130")), 4);
        assert_eq!(t.lookup(ip("11.0.0.1")), 0);
        // A shorter prefix added later does not take over longer ones.
        t.insert(ip("0.0.0.0"), 0, 5).unwrap();
        assert_eq!(t.lookup(ip("10.1.2.130")), 4);
        assert_eq!(t.lookup(ip("11.0.0.1")), 5);
        assert_eq!(t.remove(ip("10.1.0.0"), 16), Some(2));
        assert_eq!(t.lookup(ip("10.1.2.1")), 1);
        assert_eq!(t.lookup(ip("10.1.2.129")), 3);
        assert_eq!(t.groups(), 1);
        t.remove(ip("10.1.2.128"), 25);
        t.remove(ip("10.1.2.130"), 32);
        assert_eq!(
            t.groups(),
            0,
            "the group is freed with its last long prefix"
        );
        assert_eq!(t.lookup(ip("10.1.2.130")), 1);
        assert_eq!(t.remove(ip("10.1.2.130"), 32), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn replacing_a_route_keeps_one_entry() {
        let t = Lpm4::new();
        assert_eq!(t.insert(ip("192.0.2.0"), 24, 1), Ok(None));
        assert_eq!(t.insert(ip("192.0.2.77"), 24, 2), Ok(Some(1)));
        assert_eq!(t.lookup(ip("192.0.2.1")), 2);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn random_tables_agree_with_a_linear_scan() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let t = Lpm4::new();
        let mut routes: Vec<(u32, u8, u16)> = Vec::new();
        for round in 0..400 {
            let r = next();
            // Prefixes inside 10.0.0.0/14 so that they overlap a lot.
            let p = 0x0a00_0000 | (r as u32 & 0x0003_ffff);
            let len = [8, 12, 14, 16, 20, 22, 24, 25, 26, 28, 30, 32][(r >> 32) as usize % 12];
            let p = p & mask4(len);
            if round % 3 == 2 && !routes.is_empty() {
                let (rp, rl, _) = routes.swap_remove((r >> 40) as usize % routes.len());
                assert!(t.remove(rp, rl).is_some());
            } else {
                let v = 1 + (r >> 48) as u16 % 100;
                routes.retain(|&(q, l, _)| (q, l) != (p, len));
                routes.push((p, len, v));
                t.insert(p, len, v).unwrap();
            }
            for _ in 0..50 {
                let a = 0x0a00_0000 | (next() as u32 & 0x0003_ffff);
                assert_eq!(t.lookup(a), naive(&routes, a), "address {a:#x}");
            }
        }
    }

    /// One change: a route, or the removal of an existing route (picked by
    /// index modulo the routes present).
    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u8, u16),
        Remove(usize),
    }

    /// Addresses crowded into a few blocks so that routes nest, /24s get
    /// groups and groups are freed again.
    fn address() -> impl proptest::strategy::Strategy<Value = u32> {
        use proptest::prelude::*;
        (0..4usize, any::<u32>()).prop_map(|(w, r)| {
            let (base, spread) = [
                (0x0a01_0700, 0xff),
                (0x0a01_0000, 0xffff),
                (0x0a00_0000, 0x3_ffff),
                (0, u32::MAX),
            ][w];
            base | (r & spread)
        })
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let len = prop_oneof![0..=32u8, 22..=32u8, 14..=24u8];
        prop_oneof![
            4 => (address(), len, 1..=MAX_VALUE).prop_map(|(a, l, v)| Op::Insert(a, l, v % 5 + 1)),
            1 => any::<usize>().prop_map(Op::Remove),
        ]
    }

    proptest::proptest! {
        #![proptest_config(testkit::prop::config(64))]

        /// After every change the table answers as a linear scan of the
        /// routes does: at random addresses near the routes and at each
        /// route's first and last address and their neighbours.
        #[test]
        fn agrees_with_a_linear_scan_through_adds_and_removes(
            ops in proptest::collection::vec(op(), 1..300),
            probes in proptest::collection::vec(address(), 64),
        ) {
            use proptest::prelude::*;
            let t = Lpm4::new();
            let mut routes: Vec<(u32, u8, u16)> = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                match *op {
                    Op::Insert(a, l, v) => {
                        let p = a & mask4(l);
                        let old = routes.iter().position(|r| (r.0, r.1) == (p, l));
                        let was = old.map(|i| routes.remove(i).2);
                        routes.push((p, l, v));
                        prop_assert_eq!(t.insert(a, l, v), Ok(was));
                    }
                    Op::Remove(k) if !routes.is_empty() => {
                        let (p, l, v) = routes.remove(k % routes.len());
                        prop_assert_eq!(t.remove(p, l), Some(v));
                    }
                    Op::Remove(_) => {}
                }
                prop_assert_eq!(t.len(), routes.len());
                if i % 50 != 49 && i + 1 != ops.len() {
                    continue;
                }
                let edges = routes.iter().flat_map(|&(p, l, _)| {
                    let end = p | !mask4(l);
                    [p.wrapping_sub(1), p, end, end.wrapping_add(1)]
                });
                for a in probes.iter().copied().chain(edges) {
                    t.prefetch(a);
                    prop_assert_eq!(t.lookup(a), naive(&routes, a), "address {:#x}", a);
                }
            }
            let long = routes.iter().filter(|r| r.1 > 24).count();
            prop_assert!(t.groups() <= long, "{} groups for {} long routes", t.groups(), long);
        }
    }

    /// The group index /24 number `i` points to, if any.
    fn group_of(t: &Lpm4, i: u32) -> Option<u16> {
        let e = t.tbl24[i as usize].load(Relaxed);
        (e & GROUP != 0).then_some(e & !GROUP)
    }

    /// A freed group does not serve another /24 while a reader may still
    /// hold its index (a grace started at its free is open: a fresh group
    /// serves meanwhile); once the grace has passed it is reused, oldest
    /// first; with every group used, an insertion needing one is refused
    /// until the oldest freed group's grace has passed.
    #[test]
    fn a_freed_group_waits_for_a_grace_period_before_serving_another_24() {
        let grace = Arc::new(Grace::new());
        let reader = grace.register();
        let t = Lpm4::with_grace(grace.clone());
        let a = ip("10.0.1.0") >> 8;
        t.insert(ip("10.0.1.5"), 32, 1).unwrap();
        let g = group_of(&t, a).unwrap();
        t.remove(ip("10.0.1.5"), 32).unwrap();
        assert_eq!((group_of(&t, a), t.groups()), (None, 0));
        // Another /24 while the reader has not passed a boundary: a fresh
        // group, not the freed one.
        t.insert(ip("10.0.2.5"), 32, 2).unwrap();
        let h = group_of(&t, ip("10.0.2.0") >> 8).unwrap();
        assert_ne!(h, g, "reused while a reader may hold it");
        reader.quiescent();
        t.insert(ip("10.0.3.5"), 32, 3).unwrap();
        assert_eq!(
            group_of(&t, ip("10.0.3.0") >> 8),
            Some(g),
            "reused after the grace"
        );
        assert_eq!(t.lookup(ip("10.0.3.5")), 3);
        assert_eq!(t.lookup(ip("10.0.1.5")), 0);

        // All groups used: the next one is refused until the oldest freed
        // group's grace has passed (a writer that waited would hold up
        // worker 0's bursts); a reader gone to sleep ends it too.
        let t = Lpm4::with_grace(grace.clone());
        for i in 0..MAX_GROUPS as u32 {
            t.insert((i << 8) | 1, 32, 1).unwrap();
        }
        assert_eq!(t.insert(0xff00_0001, 32, 1), Err(Lpm4Error::TooManyGroups));
        t.remove(7 << 8 | 1, 32).unwrap();
        let e = t.insert(0xff00_0001, 32, 2).unwrap_err();
        assert_eq!(e, Lpm4Error::Quarantined);
        assert!(e.to_string().contains("try again"), "{e}");
        assert_eq!(t.lookup(0xff00_0001), 0);
        reader.offline();
        t.insert(0xff00_0001, 32, 2).unwrap();
        assert_eq!(group_of(&t, 0xff_0000), Some(7));
        assert_eq!((t.lookup(0xff00_0001), t.lookup(7 << 8 | 1)), (2, 0));
    }

    /// With no reader registered (a unit test, a harness, the configure
    /// step) every grace has passed: a freed group serves again at once.
    #[test]
    fn with_no_reader_a_freed_group_is_reused_at_once() {
        let t = Lpm4::with_grace(Arc::new(Grace::new()));
        t.insert(ip("10.0.1.5"), 32, 1).unwrap();
        let g = group_of(&t, ip("10.0.1.0") >> 8).unwrap();
        t.remove(ip("10.0.1.5"), 32).unwrap();
        t.insert(ip("10.0.2.5"), 32, 2).unwrap();
        assert_eq!(group_of(&t, ip("10.0.2.0") >> 8), Some(g));
    }

    /// One thread adds and removes routes (long ones that take and free
    /// groups among them) while another looks up addresses all the time:
    /// every answer is 0 or the value of a route that holds the address
    /// (each candidate route has a value of its own), never the value of
    /// a route elsewhere, as a group reused too early would give.
    #[test]
    fn lookups_during_changes_see_only_routes_of_their_address() {
        use std::sync::atomic::AtomicBool;
        // Candidate routes in 10.0.0.0/16: the /16, 64 /24s, and in 16 of
        // those /24s /25../32 prefixes; value = index + 1.
        let mut cands: Vec<(u32, u8)> = vec![(ip("10.0.0.0"), 16)];
        for k in 0..64u32 {
            cands.push((ip("10.0.0.0") | k << 8, 24));
        }
        for k in 0..16u32 {
            for len in 25..=32u8 {
                for n in [0u32, 3, 77, 200] {
                    let p = (ip("10.0.0.0") | k << 8 | n) & mask4(len);
                    if !cands.contains(&(p, len)) {
                        cands.push((p, len));
                    }
                }
            }
        }
        let grace = Arc::new(Grace::new());
        let t = Lpm4::with_grace(grace.clone());
        let stop = AtomicBool::new(false);
        let holds = |v: u16, a: u32| {
            v == 0 || {
                let (p, l) = cands[usize::from(v) - 1];
                a & mask4(l) == p
            }
        };
        std::thread::scope(|s| {
            // Registered before the writer starts; a quiescent point
            // between bursts of 1000 lookups, as a worker's loop has.
            let me = grace.register();
            let reader = s.spawn(|| {
                let me = me;
                let mut n = 0u64;
                let mut a = ip("10.0.0.0");
                while !stop.load(Relaxed) {
                    me.quiescent();
                    for _ in 0..1000 {
                        a = ip("10.0.0.0")
                            | (a.wrapping_mul(2_654_435_761).wrapping_add(12345) & 0x3fff);
                        let v = t.lookup(a);
                        assert!(holds(v, a), "{a:#x} -> {v}: a route elsewhere");
                        n += 1;
                    }
                }
                n
            });
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..200_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng >> 20) as usize % cands.len();
                let (p, l) = cands[i];
                if rng & 1 == 0 {
                    // (Refused only if the reader was descheduled while
                    // every fresh group was taken.)
                    match t.insert(p, l, i as u16 + 1) {
                        Ok(_) | Err(Lpm4Error::Quarantined) => {}
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    t.remove(p, l);
                }
            }
            stop.store(true, Relaxed);
            let looked = reader.join().unwrap();
            assert!(looked > 0);
        });
        assert!(t.groups() <= 16);
    }
}
