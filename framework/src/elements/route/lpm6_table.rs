//! The search table of one /16 block of `lpm6::Lpm6`: its layout, how a
//! reader probes it and how the writer lays it out.

use crate::sys::rcu::SlotsLen;

/// Routes of this length or shorter live in the first level.
pub(super) const FIRST: u8 = 16;

/// A block's search table is two arrays of `u128` words, built whole and
/// then published: its slots, an open-addressing hash table of `2^k` of
/// them (`k >= 4`; linear probing, at most half full), each 0 (empty) or a
/// [`code`] with its best match in the low 15 bits; and the array the
/// first level points to, small: the slots' address, a header of `h` words
/// (the search tree of the block's lengths past /16, a byte per node in
/// memory order: node `n`'s children are `2n` for a miss and `2n + 1` for a
/// hit, 0 is no node, the root is 1; see [`tree`]), then a byte per slot
/// (0: empty, else 7 bits of its code's hash, plus 1). A probe reads the
/// bytes first and a slot only when its byte matches: a missing length,
/// half of a search's probes, reads no slot. The small arrays of all blocks
/// are about 1/16 of the slots' size and, made one after another when a
/// table loads, lie side by side, so that they stay in the caches (main's
/// global hash tables per length had that from their control bytes). The
/// tag beside the first level's address holds the length of the first
/// probe (bits 0-6, past /16), `k` (bits 7-12) and `h - 1` (bits 13-15),
/// so that the first probe's address follows from the first-level entry
/// alone. Measured against the other layouts in docs/benchmarks.md.
pub(super) struct Tag;

impl Tag {
    /// (`h`, words of bytes, slots) of tag `tag`.
    #[inline(always)]
    pub(super) fn parts(tag: u16) -> (usize, usize, usize) {
        let cap = 1usize << (tag >> 7 & 63);
        (usize::from(tag >> 13) + 1, cap >> 4, cap)
    }
}

impl SlotsLen for Tag {
    #[inline(always)]
    fn len(tag: u16) -> usize {
        let (h, b, _) = Tag::parts(tag);
        1 + h + b
    }
}

/// A block's search table, built and not yet published.
pub(super) struct Built {
    pub(super) slots: Box<[u128]>,
    /// The small array without the slots' address.
    pub(super) meta: Vec<u128>,
    pub(super) tag: u16,
}

impl Built {
    /// The small array to publish, pointing to `self.slots`.
    pub(super) fn meta(&self) -> Meta {
        let addr = self.slots.as_ptr() as usize as u128;
        let words = std::iter::once(addr).chain(self.meta.iter().copied());
        (words.collect(), self.tag)
    }
}

/// The low bits of a slot holding its value (values are at most `0x7fff`).
pub(super) const VALUE: u128 = 0x7fff;

/// Per length past /16 (`1..=112`; the rest unused): the mask of its
/// bits in an address shifted left by 16, and its code's 1 bit.
static CODES: [(u128, u128); 128] = codes();

const fn codes() -> [(u128, u128); 128] {
    let mut t = [(0, 0); 128];
    let mut r = 1;
    while r <= 112 {
        t[r] = (u128::MAX << (128 - r), 1 << (127 - r));
        r += 1;
    }
    t
}

/// The slot code of the prefix of `r` bits past its block's 16 (`1..=112`)
/// of the address whose bits past the block are `a16` (the address shifted
/// left by 16): those bits at the top, then a 1 (so that the length is in
/// the code), then zeros down to the value's bits.
#[inline(always)]
pub(super) fn code(a16: u128, r: u8) -> u128 {
    let (mask, one) = CODES[usize::from(r & 127)];
    a16 & mask | one
}

/// The hash of code `c`: its home slot is the low bits, its byte the top 7
/// plus 1.
#[inline(always)]
pub(super) fn hash(c: u128) -> u64 {
    let x = (c >> 64) as u64 ^ (c as u64).rotate_left(29);
    let m = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
    (m as u64) ^ ((m >> 64) as u64)
}

/// A block's search table as a reader sees it.
pub(super) struct Block<'a> {
    /// The header: count, then the lengths (past /16).
    pub(super) head: &'a [u8],
    /// A byte per slot.
    pub(super) bytes: &'a [u8],
    /// The hash table's slots (a power of two of them).
    pub(super) slots: &'a [u128],
    /// Length of the first probe (past /16).
    pub(super) first: u8,
}

impl<'a> Block<'a> {
    /// The block of small array `words` (without its first word, the
    /// slots' address; the bytes of the words, in memory order) and tag
    /// `tag`, whose slots are `slots`.
    #[inline(always)]
    pub(super) fn new(words: &'a [u8], tag: u16, slots: &'a [u128]) -> Block<'a> {
        let (h, _, _) = Tag::parts(tag);
        let (head, bytes) = words.split_at(h * 16);
        // Checked once here, so that `get` indexes both unchecked.
        assert!(bytes.len() >= slots.len() && slots.len().is_power_of_two());
        Block {
            head,
            bytes,
            slots,
            first: (tag & 127) as u8,
        }
    }

    /// Node `k` of the search tree (past /16; 0: none).
    #[inline(always)]
    pub(super) fn node(&self, k: usize) -> u8 {
        self.head.get(k).copied().unwrap_or(0)
    }

    /// The value stored under code `c`, if there is an entry.
    #[allow(unsafe_code)]
    #[inline(always)]
    pub(super) fn get(&self, c: u128) -> Option<u16> {
        let mask = self.slots.len() - 1;
        let h = hash(c);
        let want = (h >> 57) as u8 + 1;
        let mut i = h as usize & mask;
        loop {
            // SAFETY: `i <= mask < slots.len() <= bytes.len()` (`new`).
            let b = unsafe { *self.bytes.get_unchecked(i) };
            if b == want {
                // SAFETY: as above.
                let s = unsafe { *self.slots.get_unchecked(i) };
                if s & !VALUE == c {
                    return Some((s & VALUE) as u16);
                }
            } else if b == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// The lengths past /16, ascending.
    #[cfg(test)]
    pub(super) fn lens(&self) -> Vec<u8> {
        let mut l: Vec<u8> = self.head[1..]
            .iter()
            .filter(|&&r| r != 0)
            .map(|r| r + FIRST)
            .collect();
        l.sort_unstable();
        l
    }
}

/// A block's small array with its tag, as published.
pub(super) type Meta = (Box<[u128]>, u16);

/// Fills the search tree `t` below node `k` with `lens` (ascending, past
/// /16 once stored): the middle one at `k`, the shorter half below `2k`,
/// the longer below `2k + 1`; the halving `Writer::entries` (in `lpm6`) places the
/// markers by.
pub(super) fn tree(t: &mut [u8], k: usize, lens: &[u8]) {
    if let Some(&l) = lens.get(lens.len() / 2) {
        t[k] = l - FIRST;
        let mid = lens.len() / 2;
        tree(t, 2 * k, &lens[..mid]);
        tree(t, 2 * k + 1, &lens[mid + 1..]);
    }
}
