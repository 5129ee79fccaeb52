//! IPv6 longest-prefix match: one hash table per prefix length, probed
//! from the longest length down, with a per-/16 bitmap of the lengths
//! present so that a lookup probes only lengths that can match.
//!
//! A route `p/len` sits in table `len` under `p` masked to `len` bits. For
//! each /16 block of the address space a 128-bit map says which lengths
//! 1..=128 have a route overlapping the block (a route shorter than /16
//! marks every block it covers); the /0 route is kept apart as the default.
//! A lookup reads the block's map and probes its lengths, longest first;
//! the first hit is the longest match. A per-(block, length) count keeps the
//! maps exact when routes go. Tables hash with one multiplication (the keys
//! are masked addresses, not attacker-chosen hash-flooding input beyond
//! what the operator configures).

use std::collections::HashMap;
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

/// An IPv6 route table mapping prefixes to values (0 means no route).
#[derive(Clone)]
pub struct Lpm6 {
    /// Table `len` holds the routes of length `len` (index 0 unused).
    tables: Vec<PrefixMap>,
    /// The value of ::/0, 0 when there is none.
    default: u16,
    /// Per /16 block: bit `len - 1` set when a route of length `len` overlaps it.
    lens: Vec<u128>,
    /// Routes of each length overlapping each block: (block, len) -> count.
    counts: HashMap<(u16, u8), u32>,
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
            tables: vec![PrefixMap::default(); 129],
            default: 0,
            lens: vec![0; 1 << 16],
            counts: HashMap::new(),
        }
    }

    /// The value of the longest prefix holding `addr`, 0 when none does.
    #[inline]
    pub fn lookup(&self, addr: u128) -> u16 {
        let mut m = self.lens[(addr >> 112) as usize];
        while m != 0 {
            let bit = 127 - m.leading_zeros();
            let len = bit as u8 + 1;
            if let Some(&v) = self.tables[usize::from(len)].get(&(addr & mask6(len))) {
                return v;
            }
            m &= !(1u128 << bit);
        }
        self.default
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum::<usize>() + usize::from(self.default != 0)
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every route: (prefix, length, value), shortest prefixes first.
    pub fn routes(&self) -> impl Iterator<Item = (u128, u8, u16)> + '_ {
        let default = (self.default != 0).then_some((0u128, 0u8, self.default));
        default.into_iter().chain(
            self.tables
                .iter()
                .enumerate()
                .flat_map(|(len, m)| m.iter().map(move |(&p, &v)| (p, len as u8, v))),
        )
    }

    /// The value of exactly `prefix/len`, if that route exists.
    pub fn get(&self, prefix: u128, len: u8) -> Option<u16> {
        if len == 0 {
            return (self.default != 0).then_some(self.default);
        }
        self.tables[usize::from(len)]
            .get(&(prefix & mask6(len)))
            .copied()
    }

    /// Adds or replaces `prefix/len -> value` (`len <= 128`, `value >= 1`);
    /// returns the value it replaced.
    pub fn insert(&mut self, prefix: u128, len: u8, value: u16) -> Option<u16> {
        assert!(len <= 128 && value != 0);
        if len == 0 {
            let old = std::mem::replace(&mut self.default, value);
            return (old != 0).then_some(old);
        }
        let prefix = prefix & mask6(len);
        let old = self.tables[usize::from(len)].insert(prefix, value);
        if old.is_none() {
            self.mark(prefix, len, true);
        }
        old
    }

    /// Removes `prefix/len`; returns its value.
    pub fn remove(&mut self, prefix: u128, len: u8) -> Option<u16> {
        if len == 0 {
            let old = std::mem::take(&mut self.default);
            return (old != 0).then_some(old);
        }
        let prefix = prefix & mask6(len);
        let old = self.tables[usize::from(len)].remove(&prefix)?;
        self.mark(prefix, len, false);
        Some(old)
    }

    /// Counts a route of `prefix/len` in (or out of) the blocks it overlaps.
    fn mark(&mut self, prefix: u128, len: u8, add: bool) {
        let first = (prefix >> 112) as usize;
        let blocks = if len >= 16 { 1 } else { 1usize << (16 - len) };
        let bit = 1u128 << (len - 1);
        for b in first..first + blocks {
            let c = self.counts.entry((b as u16, len)).or_insert(0);
            if add {
                *c += 1;
                self.lens[b] |= bit;
            } else {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&(b as u16, len));
                    self.lens[b] &= !bit;
                }
            }
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
        assert_eq!(t.lens[0x2400], 0, "the /3 no longer marks its blocks");
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn random_tables_agree_with_a_linear_scan() {
        let mut rng = 0x0bad_cafe_1234_5678u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let base = ip("2001:db8::");
        let mut t = Lpm6::new();
        let mut routes: Vec<(u128, u8, u16)> = Vec::new();
        let addr = |r: u64| base | (u128::from(r & 0xffff) << 80) | u128::from(r >> 48);
        for round in 0..300 {
            let r = next();
            let len = [0, 8, 16, 20, 32, 36, 40, 44, 48, 56, 64, 128][(r >> 20) as usize % 12];
            let p = addr(next()) & mask6(len);
            if round % 3 == 2 && !routes.is_empty() {
                let (rp, rl, _) = routes.swap_remove((r >> 40) as usize % routes.len());
                assert!(t.remove(rp, rl).is_some());
            } else {
                let v = 1 + (r >> 48) as u16 % 100;
                routes.retain(|&(q, l, _)| (q, l) != (p, len));
                routes.push((p, len, v));
                t.insert(p, len, v);
            }
            for _ in 0..50 {
                let a = addr(next());
                assert_eq!(t.lookup(a), naive(&routes, a), "address {a:#x}");
            }
        }
    }
}
