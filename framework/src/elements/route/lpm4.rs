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

use std::collections::HashMap;

use crate::sys::memory::HugeArray;

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

/// A DIR-24-8 table mapping IPv4 prefixes to values `1..=MAX_VALUE`.
pub struct Lpm4 {
    /// A fixed-size array, so that indexing it with a 24-bit number needs
    /// no bounds check; 2 MiB aligned, so that all of it is on huge pages.
    tbl24: HugeArray<u16, TBL24_LEN>,
    depth24: Vec<u8>,
    tbl8: Vec<u16>,
    depth8: Vec<u8>,
    free_groups: Vec<u16>,
    /// The routes by prefix length: prefix (masked) -> value.
    routes: Vec<HashMap<u32, u16>>,
}

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lpm4Error {
    /// All `MAX_GROUPS` groups are in use.
    TooManyGroups,
}

impl std::fmt::Display for Lpm4Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too many /24s hold prefixes longer than /24 (at most {MAX_GROUPS})"
        )
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

/// A zeroed `tbl24`: 2 MiB aligned and advised for huge pages before its
/// first write, so that (with transparent huge pages) every lookup's
/// entry is on a 2 MiB page; a `Vec` of the same size leaves its first and
/// last partial 2 MiB on 4 KiB pages.
fn big_table() -> HugeArray<u16, TBL24_LEN> {
    HugeArray::new(0)
}

impl Clone for Lpm4 {
    fn clone(&self) -> Lpm4 {
        Lpm4 {
            tbl24: self.tbl24.clone(),
            depth24: self.depth24.clone(),
            tbl8: self.tbl8.clone(),
            depth8: self.depth8.clone(),
            free_groups: self.free_groups.clone(),
            routes: self.routes.clone(),
        }
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
    tbl24: &'a [u16; TBL24_LEN],
    tbl8: &'a [u16],
}

impl Lpm4View<'_> {
    /// As [`Lpm4::prefetch`].
    #[inline(always)]
    pub fn prefetch(self, addr: u32) {
        crate::sys::memory::prefetch(&self.tbl24[(addr >> 8) as usize]);
    }

    /// As [`Lpm4::lookup`].
    #[inline(always)]
    pub fn lookup(self, addr: u32) -> u16 {
        let e = self.tbl24[(addr >> 8) as usize];
        if e & GROUP == 0 {
            e
        } else {
            let at = (usize::from(e & !GROUP) << 8) | (addr & 0xff) as usize;
            // The group index came from `alloc_group`, always inside tbl8.
            self.tbl8[at]
        }
    }
}

impl Lpm4 {
    /// An empty table (48 MiB: every /24 has its entry).
    pub fn new() -> Lpm4 {
        Lpm4 {
            tbl24: big_table(),
            depth24: vec![0; TBL24_LEN],
            tbl8: Vec::new(),
            depth8: Vec::new(),
            free_groups: Vec::new(),
            routes: vec![HashMap::new(); 33],
        }
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
        self.routes.iter().map(|r| r.len()).sum()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Groups in use.
    pub fn groups(&self) -> usize {
        self.tbl8.len() / GROUP_LEN - self.free_groups.len()
    }

    /// Every route: (prefix, length, value), shortest prefixes first.
    pub fn routes(&self) -> impl Iterator<Item = (u32, u8, u16)> + '_ {
        self.routes
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(&p, &v)| (p, len as u8, v)))
    }

    /// The value of exactly `prefix/len`, if that route exists.
    pub fn get(&self, prefix: u32, len: u8) -> Option<u16> {
        self.routes[usize::from(len)]
            .get(&(prefix & mask4(len)))
            .copied()
    }

    /// Adds or replaces the route `prefix/len -> value` (`len <= 32`,
    /// `1 <= value <= MAX_VALUE`); returns the value it replaced.
    pub fn insert(&mut self, prefix: u32, len: u8, value: u16) -> Result<Option<u16>, Lpm4Error> {
        assert!(len <= 32 && (1..=MAX_VALUE).contains(&value));
        let prefix = prefix & mask4(len);
        if len > 24 && self.tbl24[(prefix >> 8) as usize] & GROUP == 0 {
            self.alloc_group(prefix >> 8)?;
        }
        let old = self.routes[usize::from(len)].insert(prefix, value);
        self.fill(prefix, len, value, len, |d| d <= len);
        Ok(old)
    }

    /// Removes the route `prefix/len`; returns its value.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Option<u16> {
        let prefix = prefix & mask4(len);
        let old = self.routes[usize::from(len)].remove(&prefix)?;
        let (value, depth) = self.covering(prefix, len);
        self.fill(prefix, len, value, depth, |d| d == len);
        if len > 24 {
            self.collapse(prefix >> 8);
        }
        Some(old)
    }

    /// The longest route strictly shorter than `len` holding `prefix`:
    /// (value, length), (0, 0) when none.
    fn covering(&self, prefix: u32, len: u8) -> (u16, u8) {
        (0..len)
            .rev()
            .find_map(|l| self.get(prefix, l).map(|v| (v, l)))
            .unwrap_or((0, 0))
    }

    /// Sets the entries of `prefix/len` whose depth passes `owned` to
    /// (`value`, `depth`).
    fn fill(&mut self, prefix: u32, len: u8, value: u16, depth: u8, owned: impl Fn(u8) -> bool) {
        if len <= 24 {
            let start = (prefix >> 8) as usize;
            for i in start..start + (1usize << (24 - len)) {
                let e = self.tbl24[i];
                if e & GROUP != 0 {
                    let g = usize::from(e & !GROUP) * GROUP_LEN;
                    self.fill_group(g..g + GROUP_LEN, value, depth, &owned);
                } else if owned(self.depth24[i]) {
                    self.tbl24[i] = value;
                    self.depth24[i] = depth;
                }
            }
        } else {
            let e = self.tbl24[(prefix >> 8) as usize];
            let g = usize::from(e & !GROUP) * GROUP_LEN + (prefix & 0xff) as usize;
            self.fill_group(g..g + (1usize << (32 - len)), value, depth, &owned);
        }
    }

    fn fill_group(
        &mut self,
        range: std::ops::Range<usize>,
        value: u16,
        depth: u8,
        owned: &impl Fn(u8) -> bool,
    ) {
        for j in range {
            if owned(self.depth8[j]) {
                self.tbl8[j] = value;
                self.depth8[j] = depth;
            }
        }
    }

    /// Gives /24 number `i` a group holding its current entry 256 times.
    fn alloc_group(&mut self, i: u32) -> Result<(), Lpm4Error> {
        let g = match self.free_groups.pop() {
            Some(g) => g,
            None => {
                let n = self.tbl8.len() / GROUP_LEN;
                if n >= MAX_GROUPS {
                    return Err(Lpm4Error::TooManyGroups);
                }
                self.tbl8.resize(self.tbl8.len() + GROUP_LEN, 0);
                self.depth8.resize(self.depth8.len() + GROUP_LEN, 0);
                n as u16
            }
        };
        let i = i as usize;
        let at = usize::from(g) * GROUP_LEN;
        self.tbl8[at..at + GROUP_LEN].fill(self.tbl24[i]);
        self.depth8[at..at + GROUP_LEN].fill(self.depth24[i]);
        self.tbl24[i] = GROUP | g;
        Ok(())
    }

    /// Frees the group of /24 number `i` once no prefix longer than /24
    /// remains in it (all its entries are then the same).
    fn collapse(&mut self, i: u32) {
        let i = i as usize;
        let e = self.tbl24[i];
        if e & GROUP == 0 {
            return;
        }
        let g = e & !GROUP;
        let at = usize::from(g) * GROUP_LEN;
        if self.depth8[at..at + GROUP_LEN].iter().any(|&d| d > 24) {
            return;
        }
        self.tbl24[i] = self.tbl8[at];
        self.depth24[i] = self.depth8[at];
        self.free_groups.push(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    /// `tbl24` (32 MiB) starts on a 2 MiB boundary, in a clone too (each
    /// worker's copy), so that huge pages can back all of it.
    #[test]
    fn the_first_level_is_huge_page_aligned() {
        let mut t = Lpm4::new();
        t.insert(ip("10.0.0.0"), 8, 3).unwrap();
        let c = t.clone();
        assert!(t.tbl24.huge_aligned() && c.tbl24.huge_aligned());
        assert_eq!((c.tbl24.len(), c.lookup(ip("10.1.2.3"))), (TBL24_LEN, 3));
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
        let mut t = Lpm4::new();
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
        let mut t = Lpm4::new();
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
        let mut t = Lpm4::new();
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
        /// route's first and last address and their neighbours; a clone too.
        #[test]
        fn agrees_with_a_linear_scan_through_adds_and_removes(
            ops in proptest::collection::vec(op(), 1..300),
            probes in proptest::collection::vec(address(), 64),
        ) {
            use proptest::prelude::*;
            let mut t = Lpm4::new();
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
}
