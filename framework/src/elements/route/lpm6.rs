//! IPv6 longest-prefix match: a direct first level over /16 blocks and,
//! below it, a binary search on prefix lengths with markers and precomputed
//! best matches (Waldvogel, Varghese, Turner and Plattner, "Scalable
//! high speed IP routing lookups", 1997).
//!
//! Routes of length 0..=16 are folded into the first level: each of the
//! 65,536 /16 blocks holds the value of the longest such route covering it.
//! Longer routes belong to the block of their first 16 bits. A block also
//! lists, sorted, the lengths (17..=128) of its routes; a lookup searches
//! that list by halving it: probe the hash table of the middle length under
//! the address masked to it; a hit means "a match this long or longer may
//! exist" (search the longer half) and carries the best match known so far,
//! a miss means "search the shorter half". A route of length `L` leaves a
//! *marker* in the table of every length its own search passes on the way
//! up to `L`, so that a search for an address under it turns towards it;
//! each entry (route or marker) stores the value of the longest route of
//! the block no longer than the entry that matches its key (0 when none,
//! and the lookup keeps the first level's value). A lookup thus costs one
//! read of the block and about log2(lengths in the block) + 1 hash probes,
//! whatever the address.
//!
//! Updates rebuild one block: a route longer than /16 changes only its own
//! block's markers (remove the old entries, add the new), a route of 16 or
//! fewer bits rewrites the first-level value of the blocks it covers (for
//! a /8, 256 of them). Tables hash with one multiplication (the keys are
//! masked addresses the operator configures).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a u128 key with a multiply and a fold (the keys are prefixes).
#[derive(Default, Clone, Copy)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    #[inline]
    fn write_u128(&mut self, k: u128) {
        let x = (k as u64) ^ ((k >> 64) as u64).rotate_left(29);
        let m = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

type PrefixMap = HashMap<u128, u16, BuildHasherDefault<PrefixHasher>>;

/// The network mask of a /len.
#[inline]
pub fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// Routes of this length or shorter live in the first level.
const FIRST: u8 = 16;
/// Lengths a block holds inline; a block with more keeps them in `spill`.
const INLINE: usize = 13;

/// One /16 block of the first level (16 bytes: four to a cache line).
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Block {
    /// Value of the longest route of 16 bits or fewer covering the block.
    short: u16,
    /// Number of distinct route lengths past /16 in the block.
    n: u8,
    /// Those lengths, ascending (the first `n`, when `n <= INLINE`).
    lens: [u8; INLINE],
}

/// The block of `addr`.
#[inline]
fn block_of(addr: u128) -> u16 {
    (addr >> 112) as u16
}

/// An IPv6 route table mapping prefixes to values (0 means no route).
#[derive(Clone)]
pub struct Lpm6 {
    /// Table `len` holds the routes of length `len`: the routes themselves.
    routes: Vec<PrefixMap>,
    /// Per block, the prefixes and lengths of its routes longer than /16.
    members: HashMap<u16, Vec<(u128, u8)>>,
    /// The first level, one entry per /16 block.
    blocks: Box<[Block]>,
    /// Lengths of the blocks holding more than `INLINE` of them.
    spill: HashMap<u16, Box<[u8]>>,
    /// Table `len` (17..=128) maps routes and markers to their best match.
    search: Vec<PrefixMap>,
    /// While loading ([`Lpm6::defer`]): the blocks to build at
    /// [`Lpm6::flush`], their search entries already taken out.
    dirty: Option<HashSet<u16>>,
}

impl Default for Lpm6 {
    fn default() -> Self {
        Lpm6::new()
    }
}

impl Lpm6 {
    /// An empty table.
    pub fn new() -> Lpm6 {
        Lpm6 {
            routes: vec![PrefixMap::default(); 129],
            members: HashMap::new(),
            blocks: vec![Block::default(); 1 << 16].into_boxed_slice(),
            spill: HashMap::new(),
            search: vec![PrefixMap::default(); 129],
            dirty: None,
        }
    }

    /// Defers the search structure's updates until [`Lpm6::flush`], so that
    /// loading many routes builds each block once. Lookups are wrong until then.
    pub fn defer(&mut self) {
        self.dirty.get_or_insert_with(HashSet::new);
    }

    /// Builds the blocks changed since [`Lpm6::defer`]; lookups are exact again.
    pub fn flush(&mut self) {
        for b in self.dirty.take().unwrap_or_default() {
            self.build(b);
        }
    }

    /// Takes block `b`'s entries out before a change (once while deferring).
    fn begin_change(&mut self, b: u16) {
        match &mut self.dirty {
            Some(d) => {
                if d.insert(b) {
                    self.unbuild(b);
                }
            }
            None => self.unbuild(b),
        }
    }

    /// Rebuilds block `b` after a change (unless deferring).
    fn end_change(&mut self, b: u16) {
        if self.dirty.is_none() {
            self.build(b);
        }
    }

    /// The sorted route lengths past /16 of block `b`.
    #[inline(always)]
    fn lens(&self, b: u16) -> &[u8] {
        let blk = &self.blocks[usize::from(b)];
        match blk.lens.get(..usize::from(blk.n)) {
            Some(l) => l,
            None => self.spill.get(&b).map_or(&[], |l| l),
        }
    }

    /// The value of the longest prefix holding `addr`, 0 when none does.
    #[inline]
    pub fn lookup(&self, addr: u128) -> u16 {
        let b = block_of(addr);
        let mut best = self.blocks[usize::from(b)].short;
        let lens = self.lens(b);
        let (mut lo, mut hi) = (0, lens.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let len = lens[mid];
            match self.search[usize::from(len)].get(&(addr & mask6(len))) {
                Some(&v) => {
                    if v != 0 {
                        best = v;
                    }
                    lo = mid + 1;
                }
                None => hi = mid,
            }
        }
        best
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.iter().map(|t| t.len()).sum()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every route: (prefix, length, value), shortest prefixes first.
    pub fn routes(&self) -> impl Iterator<Item = (u128, u8, u16)> + '_ {
        self.routes
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(&p, &v)| (p, len as u8, v)))
    }

    /// The value of exactly `prefix/len`, if that route exists.
    pub fn get(&self, prefix: u128, len: u8) -> Option<u16> {
        self.routes[usize::from(len)]
            .get(&(prefix & mask6(len)))
            .copied()
    }

    /// Adds or replaces `prefix/len -> value` (`len <= 128`, `value >= 1`);
    /// returns the value it replaced.
    pub fn insert(&mut self, prefix: u128, len: u8, value: u16) -> Option<u16> {
        assert!(len <= 128 && value != 0);
        let prefix = prefix & mask6(len);
        if len <= FIRST {
            let old = self.routes[usize::from(len)].insert(prefix, value);
            self.refresh_short(prefix, len);
            return old;
        }
        let b = block_of(prefix);
        self.begin_change(b);
        let old = self.routes[usize::from(len)].insert(prefix, value);
        if old.is_none() {
            self.members.entry(b).or_default().push((prefix, len));
        }
        self.end_change(b);
        old
    }

    /// Removes `prefix/len`; returns its value.
    pub fn remove(&mut self, prefix: u128, len: u8) -> Option<u16> {
        let prefix = prefix & mask6(len);
        if len <= FIRST {
            let old = self.routes[usize::from(len)].remove(&prefix)?;
            self.refresh_short(prefix, len);
            return Some(old);
        }
        let b = block_of(prefix);
        self.routes[usize::from(len)].get(&prefix)?;
        self.begin_change(b);
        let old = self.routes[usize::from(len)].remove(&prefix);
        if let Some(m) = self.members.get_mut(&b) {
            m.retain(|&r| r != (prefix, len));
            if m.is_empty() {
                self.members.remove(&b);
            }
        }
        self.end_change(b);
        old
    }

    /// Recomputes the first-level value of the blocks `prefix/len` covers.
    fn refresh_short(&mut self, prefix: u128, len: u8) {
        let first = usize::from(block_of(prefix));
        let count = 1usize << (FIRST - len);
        for b in first..first + count {
            let addr = (b as u128) << 112;
            let v = (0..=FIRST)
                .rev()
                .find_map(|l| self.routes[usize::from(l)].get(&(addr & mask6(l))))
                .copied()
                .unwrap_or(0);
            self.blocks[b].short = v;
        }
    }

    /// The entries (key, length) of block `b`'s search tables: each route
    /// and the markers on its search path, as the block's lengths place them.
    fn entries(&self, b: u16, lens: &[u8]) -> Vec<(u128, u8)> {
        let mut out = Vec::new();
        for &(p, len) in self.members.get(&b).map_or(&[][..], |m| m) {
            let (mut lo, mut hi) = (0, lens.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                let m = lens[mid];
                if m < len {
                    out.push((p & mask6(m), m));
                    lo = mid + 1;
                } else if m > len {
                    hi = mid;
                } else {
                    break;
                }
            }
            out.push((p, len));
        }
        out
    }

    /// Takes block `b`'s entries out of the search tables.
    fn unbuild(&mut self, b: u16) {
        let lens = self.lens(b).to_vec();
        for (k, len) in self.entries(b, &lens) {
            self.search[usize::from(len)].remove(&k);
        }
    }

    /// Puts block `b`'s entries into the search tables, from its routes.
    fn build(&mut self, b: u16) {
        let mut lens: Vec<u8> = self
            .members
            .get(&b)
            .map_or(Vec::new(), |m| m.iter().map(|r| r.1).collect());
        lens.sort_unstable();
        lens.dedup();
        for (k, len) in self.entries(b, &lens) {
            let best = lens
                .iter()
                .rev()
                .filter(|&&l| l <= len)
                .find_map(|&l| self.routes[usize::from(l)].get(&(k & mask6(l))))
                .copied()
                .unwrap_or(0);
            self.search[usize::from(len)].insert(k, best);
        }
        let blk = &mut self.blocks[usize::from(b)];
        blk.n = lens.len() as u8;
        if lens.len() <= INLINE {
            blk.lens[..lens.len()].copy_from_slice(&lens);
            self.spill.remove(&b);
        } else {
            self.spill.insert(b, lens.into_boxed_slice());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    fn naive(routes: &[(u128, u8, u16)], addr: u128) -> u16 {
        routes
            .iter()
            .filter(|&&(p, l, _)| addr & mask6(l) == p & mask6(l))
            .max_by_key(|&&(_, l, _)| l)
            .map_or(0, |&(_, _, v)| v)
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn longest_prefix_wins_across_blocks() {
        let mut t = Lpm6::new();
        t.insert(ip("2000::"), 3, 1);
        t.insert(ip("2001:db8::"), 32, 2);
        t.insert(ip("2001:db8:1::"), 48, 3);
        t.insert(ip("2001:db8:1::1"), 128, 4);
        assert_eq!(t.lookup(ip("2400::1")), 1);
        assert_eq!(t.lookup(ip("2001:db8:2::1")), 2);
        assert_eq!(t.lookup(ip("2001:db8:1::2")), 3);
        assert_eq!(t.lookup(ip("2001:db8:1::1")), 4);
        assert_eq!(t.lookup(ip("fe80::1")), 0);
        t.insert(0, 0, 9);
        assert_eq!(t.lookup(ip("fe80::1")), 9);
        assert_eq!(t.remove(ip("2001:db8::"), 32), Some(2));
        assert_eq!(t.lookup(ip("2001:db8:2::1")), 1);
        assert_eq!(t.remove(ip("2000::"), 3), Some(1));
        assert_eq!(t.lookup(ip("2001:db8:2::1")), 9);
        assert_eq!(
            t.blocks[0x2400].short, 9,
            "the /3 no longer covers its blocks"
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.remove(0, 0), Some(9));
        assert_eq!(t.lookup(ip("fe80::1")), 0);
        assert_eq!(t.remove(0, 0), None);
    }

    #[test]
    fn a_marker_carries_the_best_shorter_match_when_the_search_turns_wrong() {
        // Lengths 32, 48, 64 in one block: a search starts at 48. The /64
        // leaves a marker at 48 under 2001:db8:0::/48, so an address there
        // that misses the /64 turns towards it and must still get the /32.
        let mut t = Lpm6::new();
        t.insert(ip("2001:db8::"), 32, 1);
        t.insert(ip("2001:db8:0:1::"), 64, 2);
        t.insert(ip("2001:db8:ffff::"), 48, 3);
        assert_eq!(t.lens(0x2001), &[32, 48, 64]);
        assert_eq!(t.search[48].get(&ip("2001:db8::")), Some(&1), "marker");
        assert_eq!(t.lookup(ip("2001:db8:0:2::1")), 1);
        assert_eq!(t.lookup(ip("2001:db8:0:1::1")), 2);
        assert_eq!(t.lookup(ip("2001:db8:ffff::1")), 3);
        assert_eq!(t.lookup(ip("2001:db9::1")), 0);
        // Without the /32 the marker matches nothing: the first level's value.
        t.insert(ip("2001::"), 16, 7);
        t.insert(ip("2001:db8:ff00::"), 40, 8);
        t.remove(ip("2001:db8::"), 32);
        assert_eq!(t.lens(0x2001), &[40, 48, 64]);
        assert_eq!(t.search[48].get(&ip("2001:db8::")), Some(&0));
        assert_eq!(t.lookup(ip("2001:db8:0:2::1")), 7);
        // Removing the /64 takes its marker out.
        t.remove(ip("2001:db8:0:1::"), 64);
        assert_eq!(t.search[48].get(&ip("2001:db8::")), None);
        assert_eq!(t.lens(0x2001), &[40, 48]);
    }

    #[test]
    fn host_routes_and_the_default_route_sit_at_the_edges() {
        let mut t = Lpm6::new();
        let all = u128::MAX;
        t.insert(all, 128, 5);
        t.insert(0, 128, 6);
        t.insert(0, 0, 1);
        assert_eq!(t.lookup(all), 5);
        assert_eq!(t.lookup(all - 1), 1);
        assert_eq!(t.lookup(0), 6);
        assert_eq!(t.lookup(1), 1);
        assert_eq!(t.get(all, 128), Some(5));
        assert_eq!(t.insert(all, 128, 8), Some(5), "a replaced value");
        assert_eq!(t.lookup(all), 8);
        assert_eq!(t.remove(all, 128), Some(8));
        assert_eq!(t.lookup(all), 1);
        assert_eq!(t.lens(0xffff), &[] as &[u8]);
    }

    /// Random tables with lengths all over 0..=128, in a few blocks (deep
    /// searches) and a few routes spread wide, with removals.
    fn random_check(seed: u64, deferred: bool) {
        let mut rng = Rng(seed);
        let base = ip("2001:db8::");
        let mut t = Lpm6::new();
        if deferred {
            t.defer();
        }
        let mut routes: Vec<(u128, u8, u16)> = Vec::new();
        let addr = |r: u64, s: u64| {
            let a = base | (u128::from(r & 0x3) << 112) | (u128::from(r & 0xffff_0000) << 64);
            if s % 8 == 0 {
                u128::from(r) << 64 | u128::from(s)
            } else {
                a | u128::from(s >> 32)
            }
        };
        for round in 0..400 {
            let r = rng.next();
            let len = (r >> 56) as u8 % 129;
            let p = addr(rng.next(), rng.next()) & mask6(len);
            if round % 3 == 2 && !routes.is_empty() {
                let (rp, rl, v) = routes.swap_remove((r >> 40) as usize % routes.len());
                assert_eq!(t.remove(rp, rl), Some(v));
            } else {
                let v = 1 + (r >> 20) as u16 % 1000;
                routes.retain(|&(q, l, _)| (q, l) != (p, len));
                routes.push((p, len, v));
                t.insert(p, len, v);
            }
            if deferred {
                continue;
            }
            for _ in 0..40 {
                let a = addr(rng.next(), rng.next());
                assert_eq!(t.lookup(a), naive(&routes, a), "address {a:#x}");
            }
        }
        t.flush();
        for &(p, _, _) in &routes {
            for a in [p, p | 1, p ^ (1 << 70), !p] {
                assert_eq!(t.lookup(a), naive(&routes, a), "address {a:#x}");
            }
        }
        assert_eq!(t.len(), routes.len());
        assert!(t.spill.values().any(|l| l.len() > INLINE), "a block spills");
    }

    #[test]
    fn random_tables_agree_with_a_linear_scan() {
        random_check(0x0bad_cafe_1234_5678, false);
    }

    #[test]
    fn a_deferred_load_builds_the_same_table() {
        random_check(0x1234_5678_9abc_def1, true);
    }
}
