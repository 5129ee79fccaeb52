//! Generated route tables for benchmarks: random prefixes with a prefix
//! length distribution shaped like the Internet's (BGP) tables.
//!
//! The weights approximate the published length distributions of the
//! global routing tables (Geoff Huston's yearly "BGP in 20xx" reports, the
//! CIDR Report): in IPv4 about 60% /24, then /22, /23, /21, /20, /19, /16
//! and few shorter; in IPv6 about half /48, then /32, /44, /40, /29, /36,
//! /46, /47. Real IPv4 tables carry almost nothing longer than /24; half a
//! percent of such prefixes are added here so that the second table level
//! is exercised. Prefixes are distinct, inside 1.0.0.0-223.255.255.255 and
//! 2000::/3, drawn from a seeded generator (the same seed, the same table).

use std::collections::HashSet;

/// (length, weight) of IPv4 prefixes, weights in 1/100000.
const V4_LENGTHS: &[(u8, u32)] = &[
    (8, 3),
    (9, 2),
    (10, 5),
    (11, 15),
    (12, 45),
    (13, 90),
    (14, 180),
    (15, 330),
    (16, 1350),
    (17, 750),
    (18, 1250),
    (19, 2500),
    (20, 4100),
    (21, 4600),
    (22, 11000),
    (23, 10000),
    (24, 62000),
    (25, 100),
    (26, 100),
    (27, 80),
    (28, 80),
    (29, 60),
    (30, 50),
    (32, 110),
];

/// (length, weight) of IPv6 prefixes, weights in 1/1000.
const V6_LENGTHS: &[(u8, u32)] = &[
    (19, 1),
    (20, 2),
    (24, 3),
    (28, 10),
    (29, 50),
    (30, 5),
    (31, 3),
    (32, 120),
    (33, 8),
    (34, 8),
    (35, 5),
    (36, 40),
    (37, 3),
    (38, 6),
    (40, 70),
    (41, 3),
    (42, 20),
    (44, 80),
    (45, 20),
    (46, 30),
    (47, 30),
    (48, 480),
    (56, 3),
    (64, 6),
];

/// A small seeded generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A length drawn from `table`'s weights.
    fn length(&mut self, table: &[(u8, u32)]) -> u8 {
        let total: u32 = table.iter().map(|&(_, w)| w).sum();
        let mut r = (self.next() % u64::from(total)) as u32;
        for &(len, w) in table {
            if r < w {
                return len;
            }
            r -= w;
        }
        table[table.len() - 1].0
    }
}

/// `count` distinct IPv4 prefixes (address, length) drawn with `seed`.
pub fn generate_v4(count: usize, seed: u64) -> Vec<(u32, u8)> {
    let mut rng = Rng(seed);
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let len = rng.length(V4_LENGTHS);
        // 1.0.0.0 to 223.255.255.255: the unicast space.
        let addr = 0x0100_0000 + (rng.next() % (0xe000_0000 - 0x0100_0000)) as u32;
        let p = (addr & super::lpm4::mask4(len), len);
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

/// `count` distinct IPv6 prefixes (address, length) inside 2000::/3.
pub fn generate_v6(count: usize, seed: u64) -> Vec<(u128, u8)> {
    let mut rng = Rng(seed ^ 0x6666);
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let len = rng.length(V6_LENGTHS);
        let bits = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let addr = (0x2000u128 << 112) | (bits >> 3);
        let p = (addr & super::lpm6::mask6(len), len);
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_distinct_seeded_and_mostly_slash_24_or_48() {
        let a = generate_v4(20_000, 7);
        assert_eq!(a, generate_v4(20_000, 7));
        assert_ne!(a, generate_v4(20_000, 8));
        let set: HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), a.len());
        let n24 = a.iter().filter(|p| p.1 == 24).count();
        assert!((11_000..13_500).contains(&n24), "{n24} /24s of 20000");
        assert!(a
            .iter()
            .all(|&(p, _)| (0x0100_0000..0xe000_0000).contains(&p)));
        let b = generate_v6(20_000, 7);
        let n48 = b.iter().filter(|p| p.1 == 48).count();
        assert!((8_500..10_500).contains(&n48), "{n48} /48s of 20000");
        assert!(b.iter().all(|&(p, _)| p >> 125 == 1));
    }
}
