//! IPv6 longest-prefix match: a direct first level over /16 blocks and,
//! below it, a binary search on prefix lengths with markers and precomputed
//! best matches (Waldvogel, Varghese, Turner and Plattner, "Scalable
//! high speed IP routing lookups", 1997).
//!
//! Routes of length 0..=16 are folded into the first level: each of the
//! 65,536 /16 blocks holds the value of the longest such route covering it.
//! Longer routes belong to the block of their first 16 bits. A block also
//! has the lengths (17..=128) of its routes, as a search tree that halves
//! their sorted list; a lookup walks it: probe the block's hash table under
//! the address masked to the middle length; a hit means "a match this long
//! or longer may exist" (search the longer half) and carries the best match
//! known so far, a miss means "search the shorter half". A route of length `L` leaves a
//! *marker* in the table of every length its own search passes on the way
//! up to `L`, so that a search for an address under it turns towards it;
//! each entry (route or marker) stores the value of the longest route of
//! the block no longer than the entry that matches its key (0 when none,
//! and the lookup keeps the first level's value). A lookup thus costs one
//! read of the block's first-level entry and about log2(lengths in the
//! block) + 1 hash probes, whatever the address. The entry (16 bytes, as
//! the block's whole entry was when each worker had a copy) holds what the
//! first probe needs beside the table's address: a lookup whose entry was
//! prefetched goes straight to its first probe (see [`Tag`]).
//!
//! Updates rebuild one block: a route longer than /16 builds its block's
//! search tables anew, a route of 16 or fewer bits rewrites the
//! first-level value of the blocks it covers (for a /8, 256 of them).
//! Tables hash with one multiplication (the keys are masked addresses the
//! operator configures).
//!
//! # One table for all workers
//!
//! The workers look up one table while the control plane changes it, with
//! no lock on their side. A first-level entry holds the short value (an
//! atomic `u16`, stored whole) and, in one atomic word loaded with
//! `Acquire`, a pointer to the block's search table with the tag the
//! first probe needs (`sys::rcu::RcuSlots`). A block is never changed once published:
//! the writer (one at a time, under the table's writer mutex) builds the
//! changed block anew and swaps the pointer (`Release`: its tables are
//! seen by whoever loads the pointer). A reader may still be searching the
//! old block, so it is retired, not freed: kept in a list with a grace
//! period started after the swap ([`Grace`]), and freed by a later writer
//! call once every worker has passed a burst boundary since (or with the
//! table). Readers must keep to that rule: a lookup runs within a burst of
//! a worker registered in the table's domain, or on the writer's thread.
//! The types hold them to it: a lookup needs an [`Lpm6Reader`], which
//! only [`Lpm6::reader`] (given the pushing thread's [`Context`]: lock-free
//! when it is a worker's burst in the table's domain, else holding the
//! writer lock), [`Lpm6::exclusive`] (the writer lock) and the tests make;
//! it borrows the context and is neither `Send` nor `Sync`. No safe code
//! can search a block a writer may free. That rule is the compiler's
//! (no runtime test shows it); what runs is tested below and in
//! `tests_ip_lookup` (a push outside a worker takes the lock).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::sync::atomic::AtomicU16;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{Arc, Mutex, MutexGuard};

use super::lpm6_table::{code, hash, tree, Block, Built, Meta, Tag, FIRST, VALUE};
use crate::element::{Context, Grace, GraceToken};
use crate::sys::memory::prefetch_ptr;
use crate::sys::rcu::RcuSlots;

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

/// Blocks of the first level.
const BLOCKS: usize = 1 << 16;

/// One /16 block of the first level (16 bytes, four to a cache line, as
/// the whole entry a lookup prefetches): the value of the longest route of
/// 16 bits or fewer covering the block, and the block's search table
/// (none: no route longer than /16) with, in the same word as its address,
/// what the first probe needs (see [`Tag`]), so that the first probe's
/// address follows from this entry alone.
#[derive(Default)]
#[repr(C, align(16))]
struct Entry {
    slots: RcuSlots<Tag>,
    short: AtomicU16,
}

/// The block of `addr`.
#[inline]
fn block_of(addr: u128) -> u16 {
    (addr >> 112) as u16
}

/// An IPv6 route table mapping prefixes to values (0 means no route),
/// looked up through `&self` by any number of workers while
/// [`Lpm6::insert`] and [`Lpm6::remove`] (also `&self`) change it.
pub struct Lpm6 {
    /// The first level, an entry per block.
    blocks: Box<[Entry; BLOCKS]>,
    /// The writer's side; readers in their domain never take it.
    w: Mutex<Writer>,
    /// The readers' grace-period domain (the writer's copy is in `w`).
    domain: Arc<Grace>,
}

/// The right to search an [`Lpm6`] on this thread, and the way to: either
/// the thread is in a read-side section of the table's grace domain (a
/// worker's burst; nothing held, nothing to check per lookup) or it holds
/// the table's writer lock. Not `Send` nor `Sync`: it proves something of
/// the thread that made it.
pub struct Lpm6Reader<'a> {
    t: &'a Lpm6,
    _held: Option<MutexGuard<'a, Writer>>,
    _here: PhantomData<*const ()>,
}

/// A replaced block's small array and slots, with the grace started after
/// the swap.
type Retired = (GraceToken, Box<[u128]>, Option<Box<[u128]>>);

/// What only the writer uses.
struct Writer {
    /// Table `len` holds the routes of length `len`: the routes themselves.
    routes: Vec<PrefixMap>,
    /// Per block, the prefixes and lengths of its routes longer than /16.
    members: HashMap<u16, Vec<(u128, u8)>>,
    /// While loading ([`Lpm6::defer`]): the blocks to build at [`Lpm6::flush`].
    dirty: Option<HashSet<u16>>,
    /// Blocks replaced, with the grace started after each was, oldest first.
    retired: VecDeque<Retired>,
    /// Per block, the slots its published small array points to.
    slots: HashMap<u16, Box<[u128]>>,
    /// Retired blocks freed so far.
    freed: u64,
    /// The readers' grace-period domain.
    grace: Arc<Grace>,
}

impl Default for Lpm6 {
    fn default() -> Self {
        Lpm6::new()
    }
}

/// A boxed array of `BLOCKS` defaults, built on the heap.
fn boxed<T: Default>() -> Box<[T; BLOCKS]> {
    let v: Vec<T> = (0..BLOCKS).map(|_| T::default()).collect();
    v.into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("BLOCKS entries"))
}

impl Lpm6 {
    /// An empty table whose readers are the runtime's workers
    /// ([`Grace::global`]).
    pub fn new() -> Lpm6 {
        Lpm6::with_grace(Grace::global())
    }

    /// An empty table whose readers are the participants of `grace`.
    pub fn with_grace(grace: Arc<Grace>) -> Lpm6 {
        Lpm6 {
            domain: grace.clone(),
            blocks: boxed(),
            w: Mutex::new(Writer {
                routes: vec![PrefixMap::default(); 129],
                members: HashMap::new(),
                dirty: None,
                retired: VecDeque::new(),
                slots: HashMap::new(),
                freed: 0,
                grace,
            }),
        }
    }

    /// A reader for the thread pushing with `cx`: lock-free when `cx` is a
    /// worker's burst in the table's grace domain, else holding the writer
    /// lock until it drops (a test driving an element; writer calls wait).
    /// One compare; make one per burst, not per packet.
    #[inline]
    pub fn reader<'a>(&'a self, cx: &'a Context<'_>) -> Lpm6Reader<'a> {
        let held = (!cx.in_section(&self.domain)).then(|| self.writer());
        Lpm6Reader {
            t: self,
            _held: held,
            _here: PhantomData,
        }
    }

    /// A reader holding the writer lock, on any thread (writer calls wait
    /// until it drops).
    pub fn exclusive(&self) -> Lpm6Reader<'_> {
        Lpm6Reader {
            t: self,
            _held: Some(self.writer()),
            _here: PhantomData,
        }
    }

    /// A lock-free reader for a test thread registered in the table's
    /// domain as `p`, which stays online and passes no quiescent point
    /// while the reader lives (the borrow keeps `p` alive, not online: a
    /// test's own rule).
    #[cfg(test)]
    fn reader_of<'a>(&'a self, p: &'a crate::element::Participant) -> Lpm6Reader<'a> {
        assert!(p.is_of(&self.domain));
        Lpm6Reader {
            t: self,
            _held: None,
            _here: PhantomData,
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A writer that panicked published whole blocks only; go on.
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        w.reclaim();
        w
    }

    /// Defers building the changed blocks until [`Lpm6::flush`], so that
    /// loading many routes builds each block once. Lookups under the
    /// routes of changed blocks are wrong until then.
    pub fn defer(&self) {
        self.writer().dirty.get_or_insert_with(HashSet::new);
    }

    /// Builds the blocks changed since [`Lpm6::defer`]; lookups are exact again.
    pub fn flush(&self) {
        let w = &mut *self.writer();
        let built: Vec<(u16, Option<Built>)> = (w.dirty.take().unwrap_or_default())
            .into_iter()
            .map(|b| (b, w.block(b)))
            .collect();
        // The small arrays made one after another, side by side.
        let metas: Vec<_> = built
            .iter()
            .map(|(_, x)| x.as_ref().map(Built::meta))
            .collect();
        for ((b, x), meta) in built.into_iter().zip(metas) {
            self.publish(w, b, x.map(|x| (meta.unwrap_or_default(), x.slots)));
        }
    }

    /// Starts loading the first-level entry of `addr`'s block into the
    /// caches (a lookup then finds its first probe's address without a
    /// miss): for a burst, prefetch every address first, as
    /// [`Lpm4::prefetch`](super::lpm4::Lpm4::prefetch).
    #[inline(always)]
    pub fn prefetch(&self, addr: u128) {
        prefetch_ptr(&self.blocks[usize::from(block_of(addr))]);
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.writer().routes.iter().map(|t| t.len()).sum()
    }

    /// Whether the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every route: (prefix, length, value), shortest prefixes first.
    pub fn routes(&self) -> Vec<(u128, u8, u16)> {
        self.writer()
            .routes
            .iter()
            .enumerate()
            .flat_map(|(len, m)| m.iter().map(move |(&p, &v)| (p, len as u8, v)))
            .collect()
    }

    /// The value of exactly `prefix/len`, if that route exists.
    pub fn get(&self, prefix: u128, len: u8) -> Option<u16> {
        self.writer().get(prefix, len)
    }

    /// Blocks replaced and not freed yet, and those freed so far.
    pub fn retired(&self) -> (usize, u64) {
        let w = self.writer();
        (w.retired.len(), w.freed)
    }

    /// Adds or replaces `prefix/len -> value` (`len <= 128`, `value >= 1`);
    /// returns the value it replaced.
    pub fn insert(&self, prefix: u128, len: u8, value: u16) -> Option<u16> {
        assert!(len <= 128 && value != 0 && u128::from(value) <= VALUE);
        let w = &mut *self.writer();
        let prefix = prefix & mask6(len);
        let old = w.routes[usize::from(len)].insert(prefix, value);
        if len <= FIRST {
            self.refresh_short(w, prefix, len);
            return old;
        }
        let b = block_of(prefix);
        if old.is_none() {
            w.members.entry(b).or_default().push((prefix, len));
        }
        self.changed(w, b);
        old
    }

    /// Removes `prefix/len`; returns its value.
    pub fn remove(&self, prefix: u128, len: u8) -> Option<u16> {
        let w = &mut *self.writer();
        let prefix = prefix & mask6(len);
        let old = w.routes[usize::from(len)].remove(&prefix)?;
        if len <= FIRST {
            self.refresh_short(w, prefix, len);
            return Some(old);
        }
        let b = block_of(prefix);
        if let Some(m) = w.members.get_mut(&b) {
            m.retain(|&r| r != (prefix, len));
            if m.is_empty() {
                w.members.remove(&b);
            }
        }
        self.changed(w, b);
        Some(old)
    }

    /// Block `b`'s routes changed: build it now, or at the flush.
    fn changed(&self, w: &mut Writer, b: u16) {
        match &mut w.dirty {
            Some(d) => {
                d.insert(b);
            }
            None => self.build(w, b),
        }
    }

    /// Recomputes the first-level value of the blocks `prefix/len` covers.
    fn refresh_short(&self, w: &Writer, prefix: u128, len: u8) {
        let first = usize::from(block_of(prefix));
        let count = 1usize << (FIRST - len);
        for b in first..first + count {
            let addr = (b as u128) << 112;
            let v = (0..=FIRST)
                .rev()
                .find_map(|l| w.routes[usize::from(l)].get(&(addr & mask6(l))))
                .copied()
                .unwrap_or(0);
            // Release: the next-hop slot of `v` was written before.
            self.blocks[b].short.store(v, Release);
        }
    }

    /// Builds block `b` anew from its routes, publishes it and retires the
    /// block it replaces.
    fn build(&self, w: &mut Writer, b: u16) {
        let new = w.block(b).map(|x| (x.meta(), x.slots));
        self.publish(w, b, new);
    }

    /// Publishes `new` (the small array with its tag, and the slots it
    /// points to) as block `b`'s search table and retires the one it
    /// replaces, both arrays.
    fn publish(&self, w: &mut Writer, b: u16, new: Option<(Meta, Box<[u128]>)>) {
        // The slots are kept (boxed: they stay where the small array points)
        // before the small array is published.
        let (meta, old_slots) = match new {
            Some((meta, slots)) => (Some(meta), w.slots.insert(b, slots)),
            None => (None, w.slots.remove(&b)),
        };
        if let Some(old) = self.blocks[usize::from(b)].slots.replace(meta) {
            // Started after the swap: a reader that finds the old block
            // loaded the pointer before it.
            let t = w.grace.start();
            w.retired.push_back((t, old, old_slots));
        }
    }
}

impl Lpm6Reader<'_> {
    /// The search table of block `b`.
    #[allow(unsafe_code)]
    #[inline(always)]
    fn block(&self, b: usize) -> Option<Block<'_>> {
        // SAFETY: `RcuSlots::load`'s contract: `self` exists only on a
        // thread in a read-side section of the table's domain (a worker's
        // burst: `Lpm6::reader` checked the context, which the reader
        // borrows, so the worker passes no quiescent point and stays online
        // meanwhile) or holding the writer lock (`_held`); the block does
        // not outlive `&self`.
        let (words, tag) = unsafe { self.t.blocks[b].slots.load() }?;
        let (&addr, words) = words.split_first()?;
        let (_, _, cap) = Tag::parts(tag);
        // SAFETY: the small array's first word is the address of the
        // `cap` slots it was built with (`Built::meta`), which the writer
        // keeps (in `Writer::slots`, then with the small array in
        // `retired`) for as long as the small array: alive while it is,
        // by the contract above.
        let slots = unsafe { std::slice::from_raw_parts(addr as usize as *const u128, cap) };
        // SAFETY: the same words as bytes (any initialized memory is `u8`s,
        // and `u8` needs no alignment), borrowed as long.
        let bytes =
            unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 16) };
        Some(Block::new(bytes, tag, slots))
    }

    /// The value of the longest prefix holding `addr`, 0 when none does.
    #[inline]
    pub fn lookup(&self, addr: u128) -> u16 {
        let b = usize::from(block_of(addr));
        let mut best = self.t.blocks[b].short.load(Acquire);
        let Some(blk) = self.block(b) else {
            return best;
        };
        // The first probe's length came with the table's address; the
        // search tree loads meanwhile.
        let a16 = addr << FIRST;
        let (mut k, mut r) = (1, blk.first);
        loop {
            let hit = blk.get(code(a16, r));
            if let Some(v) = hit {
                if v != 0 {
                    best = v;
                }
            }
            k = 2 * k + usize::from(hit.is_some());
            r = blk.node(k);
            if r == 0 {
                return best;
            }
        }
    }

    /// The second stage of a prefetch, once [`Lpm6Reader::prefetch`]'s
    /// entry has arrived: starts loading the small array of block `b` (the
    /// address's first 16 bits; its first 3 lines), which every probe of
    /// the lookup reads.
    #[inline(always)]
    pub fn prefetch_block(&self, b: u16) {
        if let Some((p, _)) = self.t.blocks[usize::from(b)].slots.peek() {
            let p = p.cast::<u8>();
            prefetch_ptr(p);
            prefetch_ptr(p.wrapping_add(64));
            prefetch_ptr(p.wrapping_add(128));
        }
    }

    /// [`Lpm6::prefetch`].
    #[inline(always)]
    pub fn prefetch(&self, addr: u128) {
        self.t.prefetch(addr);
    }
}

impl Writer {
    fn get(&self, prefix: u128, len: u8) -> Option<u16> {
        self.routes[usize::from(len)]
            .get(&(prefix & mask6(len)))
            .copied()
    }

    /// Frees the retired blocks whose grace has passed (oldest first: the
    /// tokens grow).
    fn reclaim(&mut self) {
        while let Some((t, _, _)) = self.retired.front() {
            if !self.grace.passed(t) {
                break;
            }
            self.retired.pop_front();
            self.freed += 1;
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

    /// Block `b`'s search table and its tag, from its routes; `None` when
    /// it has no route longer than /16.
    fn block(&self, b: u16) -> Option<Built> {
        let mut lens: Vec<u8> = self.members.get(&b)?.iter().map(|r| r.1).collect();
        lens.sort_unstable();
        lens.dedup();
        // Markers shared by several routes are one entry.
        let mut codes = PrefixMap::default();
        for (k, len) in self.entries(b, &lens) {
            let best = lens
                .iter()
                .rev()
                .filter(|&&l| l <= len)
                .find_map(|&l| self.routes[usize::from(l)].get(&(k & mask6(l))))
                .copied()
                .unwrap_or(0);
            codes.insert(code(k << FIRST, len - FIRST), best);
        }
        let k = (codes.len() * 2)
            .next_power_of_two()
            .trailing_zeros()
            .max(4);
        let mut head = vec![0u8; 128];
        tree(&mut head, 1, &lens);
        let used = head.iter().rposition(|&r| r != 0).unwrap_or(0) + 1;
        head.truncate(used);
        let mask = (1usize << k) - 1;
        let (mut bytes, mut slots) = (vec![0u8; 1 << k], vec![0u128; 1 << k]);
        for (c, v) in codes {
            let h = hash(c);
            let mut i = h as usize & mask;
            while bytes[i] != 0 {
                i = (i + 1) & mask;
            }
            bytes[i] = (h >> 57) as u8 + 1;
            slots[i] = c | u128::from(v);
        }
        let packed = |mut b: Vec<u8>| {
            b.resize(b.len().div_ceil(16) * 16, 0);
            b.chunks(16)
                .map(|w| u128::from_ne_bytes(w.try_into().unwrap_or_else(|_| unreachable!())))
                .collect::<Vec<u128>>()
        };
        let mut meta = packed(head);
        let h = meta.len();
        meta.extend(packed(bytes));
        let tag = u16::from(lens[lens.len() / 2] - FIRST) | (k as u16) << 7 | (h as u16 - 1) << 13;
        Some(Built {
            slots: slots.into_boxed_slice(),
            meta,
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    /// The lengths past /16 block `b` holds.
    fn lens(t: &Lpm6, b: u16) -> Vec<u8> {
        let r = t.exclusive();
        r.block(usize::from(b)).map_or(Vec::new(), |blk| blk.lens())
    }

    /// The search entry of `k` at length `len`, if any.
    fn entry(t: &Lpm6, k: u128, len: u8) -> Option<u16> {
        let r = t.exclusive();
        let blk = r.block(usize::from(block_of(k)))?;
        blk.get(code(k << FIRST, len - FIRST))
    }

    /// A lookup under the writer lock.
    fn look(t: &Lpm6, a: u128) -> u16 {
        t.exclusive().lookup(a)
    }

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
        let t = Lpm6::new();
        t.insert(ip("2000::"), 3, 1);
        t.insert(ip("2001:db8::"), 32, 2);
        t.insert(ip("2001:db8:1::"), 48, 3);
        t.insert(ip("2001:db8:1::1"), 128, 4);
        assert_eq!(look(&t, ip("2400::1")), 1);
        assert_eq!(look(&t, ip("2001:db8:2::1")), 2);
        assert_eq!(look(&t, ip("2001:db8:1::2")), 3);
        assert_eq!(look(&t, ip("2001:db8:1::1")), 4);
        assert_eq!(look(&t, ip("fe80::1")), 0);
        t.insert(0, 0, 9);
        assert_eq!(look(&t, ip("fe80::1")), 9);
        assert_eq!(t.remove(ip("2001:db8::"), 32), Some(2));
        assert_eq!(look(&t, ip("2001:db8:2::1")), 1);
        assert_eq!(t.remove(ip("2000::"), 3), Some(1));
        assert_eq!(look(&t, ip("2001:db8:2::1")), 9);
        assert_eq!(
            t.blocks[0x2400].short.load(Relaxed),
            9,
            "the /3 no longer covers its blocks"
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t.remove(0, 0), Some(9));
        assert_eq!(look(&t, ip("fe80::1")), 0);
        assert_eq!(t.remove(0, 0), None);
    }

    #[test]
    fn a_marker_carries_the_best_shorter_match_when_the_search_turns_wrong() {
        // Lengths 32, 48, 64 in one block: a search starts at 48. The /64
        // leaves a marker at 48 under 2001:db8:0::/48, so an address there
        // that misses the /64 turns towards it and must still get the /32.
        let t = Lpm6::new();
        t.insert(ip("2001:db8::"), 32, 1);
        t.insert(ip("2001:db8:0:1::"), 64, 2);
        t.insert(ip("2001:db8:ffff::"), 48, 3);
        assert_eq!(lens(&t, 0x2001), [32, 48, 64]);
        assert_eq!(entry(&t, ip("2001:db8::"), 48), Some(1), "marker");
        assert_eq!(look(&t, ip("2001:db8:0:2::1")), 1);
        assert_eq!(look(&t, ip("2001:db8:0:1::1")), 2);
        assert_eq!(look(&t, ip("2001:db8:ffff::1")), 3);
        assert_eq!(look(&t, ip("2001:db9::1")), 0);
        // Without the /32 the marker matches nothing: the first level's value.
        t.insert(ip("2001::"), 16, 7);
        t.insert(ip("2001:db8:ff00::"), 40, 8);
        t.remove(ip("2001:db8::"), 32);
        assert_eq!(lens(&t, 0x2001), [40, 48, 64]);
        assert_eq!(entry(&t, ip("2001:db8::"), 48), Some(0));
        assert_eq!(look(&t, ip("2001:db8:0:2::1")), 7);
        // Removing the /64 takes its marker out.
        t.remove(ip("2001:db8:0:1::"), 64);
        assert_eq!(entry(&t, ip("2001:db8::"), 48), None);
        assert_eq!(lens(&t, 0x2001), [40, 48]);
    }

    #[test]
    fn host_routes_and_the_default_route_sit_at_the_edges() {
        let t = Lpm6::new();
        let all = u128::MAX;
        t.insert(all, 128, 5);
        t.insert(0, 128, 6);
        t.insert(0, 0, 1);
        assert_eq!(look(&t, all), 5);
        assert_eq!(look(&t, all - 1), 1);
        assert_eq!(look(&t, 0), 6);
        assert_eq!(look(&t, 1), 1);
        assert_eq!(t.get(all, 128), Some(5));
        assert_eq!(t.insert(all, 128, 8), Some(5), "a replaced value");
        assert_eq!(look(&t, all), 8);
        assert_eq!(t.remove(all, 128), Some(8));
        assert_eq!(look(&t, all), 1);
        assert_eq!(lens(&t, 0xffff), [] as [u8; 0]);
    }

    /// Random tables with lengths all over 0..=128, in a few blocks (deep
    /// searches) and a few routes spread wide, with removals.
    fn random_check(seed: u64, deferred: bool) {
        let mut rng = Rng(seed);
        let base = ip("2001:db8::");
        let t = Lpm6::new();
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
                assert_eq!(look(&t, a), naive(&routes, a), "address {a:#x}");
            }
        }
        t.flush();
        for &(p, _, _) in &routes {
            for a in [p, p | 1, p ^ (1 << 70), !p] {
                assert_eq!(look(&t, a), naive(&routes, a), "address {a:#x}");
            }
        }
        assert_eq!(t.len(), routes.len());
        assert!(
            (0..=u16::MAX).any(|b| lens(&t, b).len() > 13),
            "a block with many lengths"
        );
    }

    #[test]
    fn random_tables_agree_with_a_linear_scan() {
        random_check(0x0bad_cafe_1234_5678, false);
    }

    #[test]
    fn a_deferred_load_builds_the_same_table() {
        random_check(0x1234_5678_9abc_def1, true);
    }

    /// A block replaced while a reader may still search it is kept, not
    /// freed, until a grace started after the swap has passed: counted by
    /// the writer's frees, not timed. Dropping the table frees the rest.
    #[test]
    fn a_retired_block_is_freed_only_after_its_grace() {
        let grace = Arc::new(Grace::new());
        let reader = grace.register();
        let t = Lpm6::with_grace(grace.clone());
        t.insert(ip("2001:db8::"), 32, 1);
        assert_eq!(t.retired(), (0, 0), "a first block replaces none");
        t.insert(ip("2001:db8:1::"), 48, 2);
        assert_eq!(t.retired(), (1, 0), "the /32's block is retired");
        // Routes of 16 bits or fewer change no block.
        t.insert(ip("2001::"), 16, 3);
        t.insert(ip("3000::"), 40, 4);
        assert_eq!(t.retired(), (1, 0), "held while the reader is in its burst");
        reader.quiescent();
        t.remove(ip("2001:db8::"), 32);
        assert_eq!(t.retired(), (1, 1), "freed; the removal retired another");
        assert_eq!(look(&t, ip("2001:db8:1::1")), 2);
        assert_eq!(look(&t, ip("2001:db8:2::1")), 3);
        // A sleeping reader holds up nothing.
        reader.offline();
        t.remove(ip("2001:db8:1::"), 48);
        assert_eq!(t.retired(), (0, 3));
        assert_eq!(lens(&t, 0x2001), [] as [u8; 0]);
        // With the reader online and not quiescent, retired blocks stay
        // until the table is dropped (a leak would show under the
        // allocation tests; here the count only).
        reader.online();
        t.insert(ip("3000::"), 48, 5);
        assert_eq!(t.retired(), (1, 3));
        drop(t);
    }

    /// A reader is lock-free only for a worker's burst in the table's own
    /// domain; any other context (a test's, a worker of another domain)
    /// gets one that holds the writer lock, so that writers wait for it.
    /// (That no safe code can look up without a reader is the compiler's
    /// rule, not tested at run time.)
    #[test]
    fn a_reader_outside_the_tables_domain_holds_the_writers_off() {
        use crate::packet::Pool;
        let grace = Arc::new(Grace::new());
        let t = Lpm6::with_grace(grace.clone());
        t.insert(ip("2001:db8::"), 32, 1);
        let mut pool = Pool::new(0);
        let locked = |r: &Lpm6Reader<'_>| {
            assert_eq!(r.lookup(ip("2001:db8::1")), 1);
            t.w.try_lock().is_err()
        };
        assert!(
            locked(&t.reader(&Context::new(&mut pool, 0, 0))),
            "no worker"
        );
        let worker = grace.register();
        let cx = Context::new(&mut pool, 0, 0).in_burst(&worker);
        assert!(!locked(&t.reader(&cx)), "a burst of the table's domain");
        let other = Arc::new(Grace::new()).register();
        let cx = Context::new(&mut pool, 0, 0).in_burst(&other);
        assert!(locked(&t.reader(&cx)), "a burst of another domain");
        assert!(locked(&t.exclusive()));
        assert!(t.w.try_lock().is_ok(), "dropped readers hold nothing");
    }

    /// One thread adds and removes long and short routes while another,
    /// registered in the table's grace domain, looks up all the time
    /// (quiescent between bursts of lookups, as a worker is): every answer
    /// is 0 or the value of a route that holds the address (each candidate
    /// has a value of its own), never another's, and no block it searches
    /// is freed under it.
    #[test]
    fn lookups_during_changes_see_only_routes_of_their_address() {
        use std::sync::atomic::AtomicBool;
        let base = ip("2001:db8::");
        // /8, /12, /16 (first level); in four /16s, /20 to /128 prefixes.
        let mut cands: Vec<(u128, u8)> = [8, 12, 16].map(|l| (base & mask6(l), l)).to_vec();
        for k in 0..4u128 {
            for len in [20u8, 24, 32, 40, 48, 56, 64, 80, 96, 112, 127, 128] {
                for n in [0u128, 3, 0xabcd] {
                    let p = (base | k << 112 | n << 64 | n) & mask6(len);
                    if !cands.contains(&(p, len)) {
                        cands.push((p, len));
                    }
                }
            }
        }
        let grace = Arc::new(Grace::new());
        let t = Lpm6::with_grace(grace.clone());
        let stop = AtomicBool::new(false);
        let holds = |v: u16, a: u128| {
            v == 0 || {
                let (p, l) = cands[usize::from(v) - 1];
                a & mask6(l) == p
            }
        };
        let addrs: Vec<u128> = cands
            .iter()
            .flat_map(|&(p, _)| [p, p | 1, p | 0xabcd << 64, p ^ 1 << 100])
            .collect();
        std::thread::scope(|s| {
            let me = grace.register();
            let reader = s.spawn(|| {
                let me = me;
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    me.quiescent();
                    // Lock-free, as a worker's burst: no quiescent point
                    // while `r` lives.
                    let r = t.reader_of(&me);
                    for &a in &addrs {
                        let v = r.lookup(a);
                        assert!(holds(v, a), "{a:#x} -> {v}: a route elsewhere");
                        n += 1;
                    }
                }
                n
            });
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for _ in 0..20_000 {
                let r = rng.next();
                let i = (r >> 20) as usize % cands.len();
                let (p, l) = cands[i];
                if r & 1 == 0 {
                    t.insert(p, l, i as u16 + 1);
                } else {
                    t.remove(p, l);
                }
            }
            stop.store(true, Relaxed);
            assert!(reader.join().unwrap() > 0);
        });
        let (_, freed) = t.retired();
        assert!(freed > 0, "blocks were reclaimed while the reader ran");
    }
}
