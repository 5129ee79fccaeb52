//! IPv4 longest-prefix match: DIR-24-8 (Gupta, Lin and McKeown, "Routing
//! lookups in hardware at memory access speeds", 1998), with the
//! depth bookkeeping that makes insertions and removals incremental, and
//! in front of it a compressed copy of its first level that a lookup reads
//! instead: 4 MiB rather than 32.
//!
//! `tbl24` has one 16-bit entry per /24: a value (bit 15 clear) or, when a
//! prefix longer than /24 lies in that /24, the index of a 256-entry group
//! in `tbl8` (bit 15 set). Values are `1..=MAX_VALUE`, 0 meaning no route.
//! Beside each entry the table keeps the length of the prefix that set it,
//! so that a change rewrites only the entries that prefix owns: an
//! insertion of a /len overwrites the entries of its range set by prefixes
//! of length <= len, a removal gives the entries set by it to the next
//! shorter prefix covering it. The routes themselves are kept by length,
//! for that search and for listing.
//!
//! # The first level in lines
//!
//! Read at random, 32 MiB of `tbl24` miss the caches and, on the hosts
//! measured, the TLB: a scattered read costs the core 6 to 8 ns more than
//! one within 4 MiB, even prefetched (docs/benchmarks.md, "How fast can a
//! 32 MiB table be read at random"). So lookups read a compressed copy of
//! `tbl24` instead: for each /16, a line of 64 bytes in `codes` (4 MiB in
//! all) with a 2-bit code per /24, and a palette word in `palettes` (8
//! bytes per /16, 512 KiB) whose slots 0 to 2 hold `tbl24` entries. Code
//! `s < 3` means "the entry in palette slot `s`", code 3 (`ESCAPE`) "read
//! `tbl24`". Both reads are prefetched and independent of each other. A
//! /16 whose 256 entries take more than 3 distinct values gives slots to
//! the most frequent and escapes the rest. Routers have few next hops, so
//! nearly all /16s fit: in the benchmark's 900,000 prefixes, all but those
//! where two or more /24s hold longer prefixes (each such /24's group
//! index is an entry of its own).
//!
//! Readers take no lock and check nothing: any line word they load, with
//! any palette word loaded after it, gives the right entry of some moment.
//! The writer keeps that true by never changing the entry of a slot that a
//! reader may still reach: it writes `tbl24`, then new entries into slots
//! no code names, then the palette word (`Release`), then the line's words
//! (`Release`: whoever loads a new code sees its slot's entry). A slot that
//! the new codes stop naming is given another entry only after a grace
//! period (see [`Grace`]) started once the codes were stored; until then a
//! /24 needing a slot escapes to `tbl24`, and the line is rewritten once it
//! has passed, by the next burst of a worker ([`Lpm4::retry`]) or the
//! writer's next change.
//!
//! # One table for all workers
//!
//! The workers read one table while the control plane changes it, with no
//! lock on their side: the entries they read (`codes`, `palettes`, `tbl24`, `tbl8`)
//! are atomics, loaded with `Acquire` or (a line's words, ordered by its
//! version) `Relaxed`; on x86-64 plain loads. They are stored by one
//! writer at a time. The writer's bookkeeping (depths, routes, free
//! groups) sits behind a `Mutex` only writers take. Publication order: a
//! new group is filled before the `tbl24` entry and the line naming it are
//! stored; whoever loads either sees the group's entries. `tbl8` has its
//! full capacity from the start (a mapping whose untouched pages cost
//! nothing), so it never moves under a reader.
//!
//! A group freed by a removal serves another /24 only once a grace period
//! started at its free has passed (see [`Grace`]): a reader that loaded
//! the old `tbl24` entry or line (the group's index) may still load from
//! the group until its next burst boundary, and if the group had been
//! rewritten for another /24 in between, its packet would take a route of
//! an unrelated prefix. Freed groups are reused oldest first once their
//! grace has passed; before that the writer takes a never-used group, and
//! when there is none (all 32768 have been used) the insertion is refused
//! ([`Lpm4Error::Quarantined`]) rather than waited for: IpLookup's
//! handlers run on worker 0, which would wait for itself. Memory safety
//! does not depend on it: the groups live as long as the table.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64};
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

/// `tbl24` entries per line: a line covers a /16.
const LINE_ENTRIES: usize = 256;
/// 64-bit words per line (one cache line), of 32 2-bit codes each.
const LINE_WORDS: usize = 8;
/// Lines: one per /16.
const LINES: usize = TBL24_LEN / LINE_ENTRIES;
/// Palette slots of a line; code `SLOTS` escapes to `tbl24`.
const SLOTS: usize = 3;
const ESCAPE: u64 = SLOTS as u64;

/// A DIR-24-8 table mapping IPv4 prefixes to values `1..=MAX_VALUE`,
/// shared: looked up through `&self` by any number of threads while
/// [`Lpm4::insert`] and [`Lpm4::remove`] (also `&self`) change it.
pub struct Lpm4 {
    /// The compressed `tbl24` that lookups read (module documentation):
    /// a 2-bit code per /24 (4 MiB, 2 MiB aligned, so that two huge pages
    /// hold it) and a palette word per /16.
    codes: AtomicArray<AtomicU64, { LINES * LINE_WORDS }>,
    palettes: AtomicArray<AtomicU64, LINES>,
    /// A fixed-size array, so that indexing it with a 24-bit number needs
    /// no bounds check; 2 MiB aligned, so that all of it is on huge pages.
    tbl24: AtomicArray<AtomicU16, TBL24_LEN>,
    /// Every group there may be: a 15-bit group and an 8-bit address byte
    /// index it with no bounds check, and it never moves.
    tbl8: AtomicArray<AtomicU16, TBL8_LEN>,
    /// The writer's side; readers never take it.
    w: Mutex<Writer>,
    /// Whether the writer's `retry` list holds a line (see
    /// [`Lpm4::retry`]).
    retrying: AtomicBool,
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
    /// Palette slots (line, slot) no code names any more, and the grace
    /// started when the last code naming each was overwritten.
    unnamed: HashMap<(usize, usize), GraceToken>,
    /// Lines that escaped a /24 because a slot's grace had not passed, with
    /// a grace started after: rewritten at the first retry or change after
    /// it has passed. Oldest first.
    retry: VecDeque<(usize, GraceToken)>,
    /// While loading ([`Lpm4::defer`]): the lines to rewrite at
    /// [`Lpm4::flush`], one bit each.
    dirty: Option<Vec<u64>>,
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
    codes: &'a [AtomicU64; LINES * LINE_WORDS],
    palettes: &'a [AtomicU64; LINES],
    tbl24: &'a [AtomicU16; TBL24_LEN],
    tbl8: &'a [AtomicU16; TBL8_LEN],
}

impl Lpm4View<'_> {
    /// As [`Lpm4::prefetch`].
    #[inline(always)]
    pub fn prefetch(self, addr: u32) {
        crate::sys::memory::prefetch(&self.codes[(addr >> 13) as usize]);
        crate::sys::memory::prefetch(&self.palettes[(addr >> 16) as usize]);
    }

    /// As [`Lpm4::lookup`]: the `tbl24` entry from the code of `addr`'s
    /// /24 and its /16's palette (or from `tbl24`, for an escaped /24),
    /// then the group's entry if it names one. `Acquire` loads: what the
    /// writer stored before publishing a word (a code's palette slot, a
    /// group's entries, a value's next-hop slot) is seen by whoever loads
    /// it; on x86-64 ordinary loads.
    #[inline(always)]
    pub fn lookup(self, addr: u32) -> u16 {
        // Word `addr >> 13` of the codes holds those of 32 /24s.
        let code = (self.codes[(addr >> 13) as usize].load(Acquire) >> ((addr >> 7) & 62)) & 3;
        let e = if code != ESCAPE {
            (self.palettes[(addr >> 16) as usize].load(Acquire) >> (code * 16)) as u16
        } else {
            self.tbl24[(addr >> 8) as usize].load(Acquire)
        };
        if e & GROUP == 0 {
            e
        } else {
            let at = (usize::from(e & !GROUP) << 8) | (addr & 0xff) as usize;
            self.tbl8[at].load(Acquire)
        }
    }
}

impl Lpm4 {
    /// An empty table: 52.5 MiB of address space for the lines, `tbl24`
    /// and its depths, 24 MiB for the groups, backed by memory as entries
    /// are written. Its readers are the runtime's workers
    /// ([`Grace::global`]).
    pub fn new() -> Lpm4 {
        Lpm4::with_grace(Grace::global())
    }

    /// An empty table whose readers are the participants of `grace`.
    pub fn with_grace(grace: Arc<Grace>) -> Lpm4 {
        Lpm4 {
            codes: AtomicArray::zeroed(),
            palettes: AtomicArray::zeroed(),
            tbl24: AtomicArray::zeroed(),
            tbl8: AtomicArray::zeroed(),
            w: Mutex::new(Writer {
                depth24: vec![0; TBL24_LEN],
                depth8: Vec::new(),
                groups: 0,
                free: VecDeque::new(),
                unnamed: HashMap::new(),
                retry: VecDeque::new(),
                dirty: None,
                grace,
                routes: vec![HashMap::new(); 33],
            }),
            retrying: AtomicBool::new(false),
        }
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A writer that panicked left no entry half-published (each store
        // is whole); carry on with its bookkeeping.
        self.w.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts loading the code word and the palette of `addr` into the
    /// caches without waiting for them. A burst looks up faster when every
    /// address's are prefetched first and [`Lpm4::lookup`] runs afterwards:
    /// the lines (4.5 MiB) miss the nearer caches, and the misses then
    /// overlap.
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
            codes: &self.codes,
            palettes: &self.palettes,
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
        self.retry_lines(w);
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
        self.retry_lines(w);
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
            let end = start + (1usize << (24 - len));
            // The line whose entries changed, rewritten once its last is.
            let mut changed = None;
            for i in start..end {
                let e = self.tbl24[i].load(Relaxed);
                if e & GROUP != 0 {
                    let g = usize::from(e & !GROUP) * GROUP_LEN;
                    self.fill_group(w, g..g + GROUP_LEN, value, depth, &owned);
                } else if owned(w.depth24[i]) {
                    self.tbl24[i].store(value, Release);
                    w.depth24[i] = depth;
                    if e != value && changed != Some(i / LINE_ENTRIES) {
                        if let Some(n) = changed {
                            self.publish_line(w, n);
                        }
                        changed = Some(i / LINE_ENTRIES);
                    }
                }
            }
            if let Some(n) = changed {
                self.publish_line(w, n);
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
        self.publish_line(w, i / LINE_ENTRIES);
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
        self.publish_line(w, i / LINE_ENTRIES);
        w.depth24[i] = w.depth8[at];
        // After the store that unpublished it.
        let t = w.grace.start();
        w.free.push_back((g, t));
    }

    /// Defers rewriting the lines of changed /16s until [`Lpm4::flush`],
    /// so that loading many routes rewrites each line once. Lookups under
    /// the routes of changed /16s are wrong until then.
    pub fn defer(&self) {
        self.writer()
            .dirty
            .get_or_insert_with(|| vec![0; LINES / 64]);
    }

    /// Rewrites the lines changed since [`Lpm4::defer`]; lookups are exact
    /// again.
    pub fn flush(&self) {
        let w = &mut *self.writer();
        let Some(dirty) = w.dirty.take() else {
            return;
        };
        for (k, &bits) in dirty.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                self.publish_line(w, k * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
    }

    /// Rewrites line `n` and its palette from its /16's `tbl24` entries
    /// (module documentation), or marks it to be while deferring. Only the
    /// writer calls it.
    fn publish_line(&self, w: &mut Writer, n: usize) {
        if let Some(dirty) = &mut w.dirty {
            dirty[n / 64] |= 1 << (n % 64);
            return;
        }
        if self.write_line(w, n) {
            // A slot that the codes just stopped naming is free once a
            // grace passes: at once if no worker reads (configuring).
            let t = w.grace.start();
            // Once in the list: its grace passing retries it, and a retry
            // still waiting queues it again.
            if (!w.grace.passed(&t) || self.write_line(w, n))
                && !w.retry.iter().any(|&(m, _)| m == n)
            {
                let t = w.grace.start();
                w.retry.push_back((n, t));
                self.retrying.store(true, Relaxed);
            }
        }
    }

    /// Rewrites line `n` and its palette; whether an entry that should
    /// have a slot escaped because none was free yet.
    fn write_line(&self, w: &mut Writer, n: usize) -> bool {
        let tbl24 = &self.tbl24[n * LINE_ENTRIES..(n + 1) * LINE_ENTRIES];
        let entries: [u16; LINE_ENTRIES] = std::array::from_fn(|j| tbl24[j].load(Relaxed));
        let line = &self.codes[n * LINE_WORDS..(n + 1) * LINE_WORDS];
        let old: [u64; LINE_WORDS] = std::array::from_fn(|k| line[k].load(Relaxed));
        let was_named = named(&old);
        let palette = self.palettes[n].load(Relaxed);
        let mut slots: [u16; SLOTS] = std::array::from_fn(|s| (palette >> (16 * s)) as u16);
        let counts = most_frequent_first(&entries);
        // The entries that get slots; the rest escape.
        let top = &counts[..counts.len().min(SLOTS)];
        let mut taken = [false; SLOTS];
        // An entry already in a slot keeps it, the slot the codes name if
        // two hold it (readers there read it already; the slot is no
        // longer unnamed).
        for &e in top {
            let holding = (0..SLOTS).filter(|&s| slots[s] == e && !taken[s]);
            if let Some(s) = holding.max_by_key(|&s| was_named[s]) {
                taken[s] = true;
                w.unnamed.remove(&(n, s));
            }
        }
        // Slots for new entries: named by no code now, nor by any code a
        // reader may still hold (the grace since they were overwritten).
        let free: Vec<usize> = (0..SLOTS)
            .filter(|&s| {
                !taken[s]
                    && !was_named[s]
                    && w.unnamed.get(&(n, s)).is_none_or(|t| w.grace.passed(t))
            })
            .collect();
        let mut free = free.into_iter();
        let mut waited = false;
        for &e in top {
            if (0..SLOTS).any(|s| taken[s] && slots[s] == e) {
                continue;
            }
            let Some(s) = free.next() else {
                // Escaped until a slot's grace has passed.
                waited = true;
                break;
            };
            slots[s] = e;
            taken[s] = true;
            w.unnamed.remove(&(n, s));
        }
        let code_of = |e: u16| {
            (0..SLOTS)
                .find(|&s| taken[s] && slots[s] == e)
                .map_or(ESCAPE, |s| s as u64)
        };
        let codes: [u64; LINE_WORDS] = if counts.len() == 1 {
            [code_of(counts[0]) * 0x5555_5555_5555_5555; LINE_WORDS]
        } else {
            let mut codes = [0u64; LINE_WORDS];
            for (j, &e) in entries.iter().enumerate() {
                codes[j / 32] |= code_of(e) << ((j % 32) * 2);
            }
            codes
        };
        let palette = slots
            .iter()
            .enumerate()
            .fold(0u64, |p, (s, &e)| p | u64::from(e) << (16 * s));
        // Release: whoever loads a code naming a new slot (below) sees it.
        self.palettes[n].store(palette, Release);
        for (k, (&new, &was)) in codes.iter().zip(&old).enumerate() {
            if new != was {
                line[k].store(new, Release);
            }
        }
        let now_named = named(&codes);
        for s in 0..SLOTS {
            if was_named[s] && !now_named[s] {
                let t = w.grace.start();
                w.unnamed.insert((n, s), t);
            }
        }
        waited
    }

    /// Rewrites the lines that escaped /24s while a slot's grace was open,
    /// once it has passed.
    fn retry_lines(&self, w: &mut Writer) {
        while let Some(&(n, t)) = w.retry.front() {
            if !w.grace.passed(&t) {
                break;
            }
            w.retry.pop_front();
            self.publish_line(w, n);
        }
        self.retrying.store(!w.retry.is_empty(), Relaxed);
    }

    /// Whether a line waits for a grace period to give an escaped /24 a
    /// palette slot: one load, for a worker to check once per burst.
    #[inline]
    pub fn has_retries(&self) -> bool {
        self.retrying.load(Relaxed)
    }

    /// The /24s whose lookups read `tbl24` (code `ESCAPE`).
    #[cfg(test)]
    pub(crate) fn escaped(&self) -> usize {
        self.codes
            .iter()
            .map(|w| {
                let w = w.load(Relaxed);
                (w & (w >> 1) & 0x5555_5555_5555_5555).count_ones() as usize
            })
            .sum()
    }

    /// Rewrites the lines waiting for a grace period that has passed, unless
    /// a writer holds the table (then a later call does): for a worker
    /// between lookups, so that no /24 escapes to `tbl24` for longer than
    /// a burst or so after the last change, changes or not.
    pub fn retry(&self) {
        if let Ok(mut w) = self.w.try_lock() {
            self.retry_lines(&mut w);
        }
    }
}

/// Which codes `line` holds: `named[s]` for code `s`.
fn named(line: &[u64; LINE_WORDS]) -> [bool; SLOTS + 1] {
    const LOW: u64 = 0x5555_5555_5555_5555;
    std::array::from_fn(|s| {
        line.iter().any(|&w| {
            // A 2-bit field of `x` is 0 where the code is `s`.
            let x = w ^ (LOW * s as u64);
            (x | x >> 1) & LOW != LOW
        })
    })
}

/// The distinct values of `entries`, the most frequent first (ties: the
/// smaller value first).
fn most_frequent_first(entries: &[u16; LINE_ENTRIES]) -> Vec<u16> {
    if entries.iter().all(|&e| e == entries[0]) {
        return vec![entries[0]];
    }
    let mut counts: Vec<(u16, u32)> = Vec::with_capacity(8);
    for &e in entries {
        match counts.iter_mut().find(|c| c.0 == e) {
            Some(c) => c.1 += 1,
            None => counts.push((e, 1)),
        }
        if counts.len() > 8 {
            // Many distinct values (/24s holding longer prefixes): count
            // them sorted instead of searching.
            let mut sorted = *entries;
            sorted.sort_unstable();
            counts.clear();
            for e in sorted {
                match counts.last_mut() {
                    Some(c) if c.0 == e => c.1 += 1,
                    _ => counts.push((e, 1)),
                }
            }
            break;
        }
    }
    counts.sort_by_key(|&(e, c)| (std::cmp::Reverse(c), e));
    counts.into_iter().map(|(e, _)| e).collect()
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
        assert!(t.tbl24.huge_aligned() && t.tbl8.huge_aligned() && t.codes.huge_aligned());
        assert_eq!((t.tbl24.len(), t.lookup(ip("10.1.2.3"))), (TBL24_LEN, 3));
    }

    #[test]
    fn named_and_most_frequent_first() {
        let mut line = [0u64; LINE_WORDS];
        assert_eq!(named(&line), [true, false, false, false]);
        line[5] = 2 << 14;
        assert_eq!(named(&line), [true, false, true, false]);
        line = [u64::MAX; LINE_WORDS];
        assert_eq!(named(&line), [false, false, false, true]);
        let mut e = [7u16; LINE_ENTRIES];
        assert_eq!(most_frequent_first(&e), [7]);
        e[3] = 9;
        e[200..].fill(1);
        assert_eq!(most_frequent_first(&e), [7, 1, 9]);
        // More distinct values than the short count holds.
        for (j, x) in e.iter_mut().enumerate().skip(100).take(20) {
            *x = 1000 + j as u16;
        }
        let m = most_frequent_first(&e);
        assert_eq!((m.len(), &m[..3]), (23, &[7, 1, 9][..]));
    }

    /// A /16 of up to 3 distinct entries is looked up from its line alone;
    /// with more, the most frequent 3 are, and the rest read `tbl24`. A
    /// /16 under one route (here, a default route) takes one slot.
    #[test]
    fn lines_hold_the_three_most_frequent_entries_of_their_16() {
        let t = Lpm4::with_grace(Arc::new(Grace::new()));
        t.insert(0, 0, 9).unwrap();
        assert_eq!(t.escaped(), 0);
        t.insert(ip("10.1.0.0"), 17, 1).unwrap();
        t.insert(ip("10.1.128.0"), 24, 2).unwrap();
        assert_eq!(t.escaped(), 0);
        // A fourth entry: the /24s of the rarest read `tbl24`.
        t.insert(ip("10.1.200.0"), 23, 3).unwrap();
        assert_eq!(t.escaped(), 1, "the /24 of 10.1.128.0/24 (2) is the rarest");
        for (a, v) in [
            ("10.1.5.5", 1),
            ("10.1.128.7", 2),
            ("10.1.201.1", 3),
            ("10.1.130.1", 9),
            ("10.2.0.1", 9),
        ] {
            assert_eq!(t.lookup(ip(a)), v, "{a}");
        }
        // Removing one gives the escaped entry a slot.
        t.remove(ip("10.1.200.0"), 23).unwrap();
        assert_eq!(t.escaped(), 0);
        assert_eq!(t.lookup(ip("10.1.128.7")), 2);
        // A /24 holding longer prefixes is an entry of its own (a group).
        t.insert(ip("10.1.7.1"), 32, 4).unwrap();
        assert_eq!((t.escaped(), t.lookup(ip("10.1.7.1"))), (1, 4));
        assert_eq!(t.lookup(ip("10.1.7.2")), 1);
    }

    /// A slot whose entry no code names any more takes another entry only
    /// once a grace period started after the codes changed has passed: a
    /// reader may have loaded a code naming it just before. Meanwhile the
    /// /24s needing a slot read `tbl24` (the right entry, more slowly), and
    /// the line is rewritten at the first change after the grace.
    #[test]
    fn a_palette_slot_takes_another_entry_only_after_a_grace_period() {
        let grace = Arc::new(Grace::new());
        let reader = grace.register();
        let t = Lpm4::with_grace(grace.clone());
        let slot_of = |a: u32| {
            let code = (t.codes[(a >> 13) as usize].load(Relaxed) >> ((a >> 7) & 62)) & 3;
            code as usize
        };
        let a = ip("10.1.2.3");
        // Empty: every code names slot 0 (entry 0, no route).
        t.insert(ip("10.1.0.0"), 16, 1).unwrap();
        let first = slot_of(a);
        assert_ne!(first, 0, "slot 0 is named by the codes of the empty line");
        t.insert(ip("10.1.0.0"), 16, 2).unwrap();
        let second = slot_of(a);
        assert!(second != first && second != 0 && second < SLOTS);
        // Slots 0 and `first` are unnamed but their graces are open: the
        // third entry escapes.
        t.insert(ip("10.1.0.0"), 16, 3).unwrap();
        assert_eq!((slot_of(a), t.lookup(a)), (ESCAPE as usize, 3));
        assert_eq!(t.lookup(ip("10.1.255.255")), 3);
        // Once the reader has passed a quiescent point, a retry (a worker's
        // next burst) or the next change rewrites the line: entry 3 takes a
        // freed slot.
        assert!(t.has_retries());
        t.retry();
        assert_eq!(slot_of(a), ESCAPE as usize, "retried before the grace");
        reader.quiescent();
        t.retry();
        let third = slot_of(a);
        assert!(third < SLOTS && third != second, "slot {third}");
        assert_eq!((t.escaped(), t.lookup(a), t.has_retries()), (0, 3, false));
        // New entries take the freed slots until none is left; then the
        // line waits again, and the next change (to another /16) rewrites
        // it once the grace has passed.
        let mut v = 4;
        while slot_of(a) != ESCAPE as usize {
            assert!(v < 4 + SLOTS as u16, "entry {v}: no escape");
            t.insert(ip("10.1.0.0"), 16, v).unwrap();
            v += 1;
        }
        assert!(t.has_retries());
        reader.quiescent();
        t.insert(ip("10.9.0.0"), 16, 99).unwrap();
        assert!(slot_of(a) < SLOTS && !t.has_retries());
        assert_eq!((t.escaped(), t.lookup(a)), (0, v - 1));
    }

    /// The benchmark's table (900,000 generated prefixes over two values
    /// and a default route): nearly every /24 is looked up from its line.
    #[test]
    fn a_generated_internet_table_escapes_few_24s() {
        let t = Lpm4::with_grace(Arc::new(Grace::new()));
        t.defer();
        t.insert(0, 0, 3).unwrap();
        for (i, (a, len)) in crate::elements::route::generate_v4(900_000, 1)
            .into_iter()
            .enumerate()
        {
            t.insert(a, len, 1 + (i % 2) as u16).unwrap();
        }
        t.flush();
        let esc = t.escaped();
        assert!(esc < TBL24_LEN / 5000, "{esc} of {TBL24_LEN} /24s escape");
        let mut x = 1u32;
        for _ in 0..100_000 {
            x = x.wrapping_mul(2_654_435_761).wrapping_add(12_345);
            let e = t.tbl24[(x >> 8) as usize].load(Relaxed);
            let want = if e & GROUP == 0 {
                e
            } else {
                t.tbl8[(usize::from(e & !GROUP) << 8) | (x & 0xff) as usize].load(Relaxed)
            };
            assert_eq!(t.lookup(x), want, "{x:#x}");
        }
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
