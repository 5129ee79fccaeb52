//! The mapping table of one Nat44 replica: a fixed array of mappings, two
//! open-addressed indexes over it (by internal and by external endpoint),
//! a bitmap of the external ports in use per protocol and address, and
//! lazy expiry. Everything is allocated when the replica is made; nothing
//! per packet. The mapping slots and the indexes lie on huge pages where
//! the kernel has them ([`HugeSlice`]): at the default size each is 2 MiB,
//! read at random, one TLB entry each instead of 512.

use crate::sys::memory::HugeSlice;

/// Protocol classes of a mapping (each has its own port space).
pub(super) const TCP: u8 = 0;
/// UDP.
pub(super) const UDP: u8 = 1;
/// ICMP queries (the identifier takes the port's place).
pub(super) const ICMP: u8 = 2;
/// Names of the protocol classes, by index.
pub(super) const PROTO_NAMES: [&str; 3] = ["tcp", "udp", "icmp"];

/// TCP state bits of a mapping: a packet went out, one came in, a FIN or
/// RST was seen. Established = out and in, no close.
pub(super) const SEEN_OUT: u8 = 1;
pub(super) const SEEN_IN: u8 = 2;
pub(super) const CLOSING: u8 = 4;

/// Slots a full table looks at for expired mappings before a new one is
/// refused as `table-full`.
const RECLAIM: usize = 1024;

/// How long a full table (or a full set of ports) refuses new mappings at
/// once after a reclaim that found none expired, before it looks again:
/// a flood of new flows then costs each packet a lookup, not a scan of
/// [`RECLAIM`] entries (which took a gateway from millions of packets per
/// second to 170,000). The incremental sweep frees expired mappings
/// meanwhile, and a mapping expires after seconds, not within this pause.
const RECLAIM_PAUSE_NS: u64 = 1_000_000;

/// Flags of a slot.
const LIVE: u8 = 1;
const STATIC: u8 = 2;

/// Idle timeouts in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeouts {
    pub tcp_established: u64,
    pub tcp_transitory: u64,
    pub udp: u64,
    pub icmp: u64,
}

/// One mapping: internal endpoint <-> external endpoint (32 bytes).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Mapping {
    /// Internal address (host order) and port or ICMP identifier.
    pub in_addr: u32,
    pub in_port: u16,
    /// External port or identifier, and the external address's index.
    pub ext_port: u16,
    pub ext_idx: u8,
    /// [`TCP`], [`UDP`] or [`ICMP`].
    pub proto: u8,
    /// TCP state bits ([`SEEN_OUT`], ...).
    pub tcp: u8,
    flags: u8,
    /// Checksum differences of a packet going out, internal to external
    /// endpoint: the IPv4 header's and the transport's
    /// ([`super::translate::deltas`]; TCP and UDP mappings).
    pub d_ip: u16,
    pub d_l4: u16,
    /// Time of the last packet (ns, the worker's clock).
    pub last: u64,
    /// Packets translated, both directions.
    pub packets: u64,
}

impl Mapping {
    /// Whether this is a static forward (never expires, never flushed).
    pub fn is_static(&self) -> bool {
        self.flags & STATIC != 0
    }

    /// A TCP mapping that has seen packets both ways and no FIN or RST.
    #[inline]
    pub fn established(&self) -> bool {
        self.proto == TCP && self.tcp & (SEEN_OUT | SEEN_IN | CLOSING) == SEEN_OUT | SEEN_IN
    }

    /// Its idle timeout under `t`.
    #[inline]
    pub fn timeout(&self, t: &Timeouts) -> u64 {
        match self.proto {
            TCP if self.established() => t.tcp_established,
            TCP => t.tcp_transitory,
            UDP => t.udp,
            _ => t.icmp,
        }
    }

    /// Whether it has been idle longer than its timeout at `now`.
    #[inline]
    pub fn expired(&self, t: &Timeouts, now: u64) -> bool {
        self.flags & STATIC == 0 && now.saturating_sub(self.last) > self.timeout(t)
    }
}

/// An endpoint as an index key: protocol class, address, port. Never 0.
#[inline]
pub(super) fn key(proto: u8, addr: u32, port: u16) -> u64 {
    ((proto as u64 + 1) << 48) | ((addr as u64) << 16) | port as u64
}

/// An open-addressed index (linear probing, backward-shift deletion) from
/// endpoint keys to slot numbers, at most half full. Key and slot lie
/// together (16 bytes, four to a cache line): a lookup touches one line.
#[derive(Clone)]
struct Index {
    entries: HugeSlice<(u64, u32)>,
    shift: u32,
    seed: u64,
}

impl Index {
    fn new(entries: usize, seed: u64) -> Index {
        let cap = (entries * 2).next_power_of_two().max(16);
        Index {
            entries: HugeSlice::new(cap, (0, 0)),
            shift: 64 - cap.trailing_zeros(),
            seed,
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        ((key ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Loads the line where `key`'s search starts without waiting for it:
    /// done for every packet of a batch before any lookup, the loads
    /// overlap instead of each lookup waiting for memory in turn.
    #[inline(always)]
    fn touch(&self, key: u64) {
        std::hint::black_box(self.entries[self.home(key)].0);
    }

    #[inline]
    fn find(&self, key: u64) -> Option<u32> {
        let mask = self.entries.len() - 1;
        let mut i = self.home(key);
        loop {
            let (k, slot) = self.entries[i];
            if k == key {
                return Some(slot);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `key` (absent; the table keeps the index at most half full).
    fn insert(&mut self, key: u64, slot: u32) {
        let mask = self.entries.len() - 1;
        let mut i = self.home(key);
        while self.entries[i].0 != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i] = (key, slot);
    }

    fn remove(&mut self, key: u64) {
        let mask = self.entries.len() - 1;
        let mut i = self.home(key);
        while self.entries[i].0 != key {
            if self.entries[i].0 == 0 {
                return;
            }
            i = (i + 1) & mask;
        }
        // Backward shift: move later members of the run into the hole.
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let k = self.entries[j].0;
            if k == 0 {
                break;
            }
            let h = self.home(k);
            // Whether `h` lies cyclically in (i, j]: then k stays.
            let stays = if i <= j {
                i < h && h <= j
            } else {
                i < h || h <= j
            };
            if !stays {
                self.entries[i] = self.entries[j];
                i = j;
            }
        }
        self.entries[i] = (0, 0);
    }
}

/// The external ports (or identifiers) this replica owns for one protocol
/// class and external address: `first..first + len`, a bit each.
#[derive(Clone)]
struct Ports {
    used: Box<[u64]>,
    /// Where the next search starts.
    cursor: usize,
    free: usize,
    /// No reclaim before this time (see [`RECLAIM_PAUSE_NS`]).
    reclaim_after: u64,
}

impl Ports {
    fn new(len: usize, start: usize) -> Ports {
        let mut used = vec![0u64; len.div_ceil(64)].into_boxed_slice();
        // Bits past the end are taken for good.
        for b in len..used.len() * 64 {
            used[b / 64] |= 1 << (b % 64);
        }
        Ports {
            used,
            cursor: start % len.max(1),
            free: len,
            reclaim_after: 0,
        }
    }

    fn take(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if self.used[w] & b != 0 {
            return false;
        }
        self.used[w] |= b;
        self.free -= 1;
        true
    }

    fn put(&mut self, i: usize) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if self.used[w] & b != 0 {
            self.used[w] &= !b;
            self.free += 1;
        }
    }

    /// The next free port index from the cursor on, taken.
    fn next(&mut self) -> Option<usize> {
        if self.free == 0 {
            return None;
        }
        let n = self.used.len();
        let start = self.cursor / 64;
        for k in 0..=n {
            let w = (start + k) % n;
            let word = self.used[w];
            if word != u64::MAX {
                let i = w * 64 + word.trailing_ones() as usize;
                self.take(i);
                self.cursor = i + 1;
                return Some(i);
            }
        }
        None
    }
}

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// Every mapping slot is in use.
    Slots,
    /// The external address's ports of this protocol are all in use.
    Ports,
}

/// A replica's mappings.
#[derive(Clone)]
pub(super) struct Table {
    slots: HugeSlice<Mapping>,
    /// Free slot numbers (a stack).
    free: Vec<u32>,
    inside: Index,
    outside: Index,
    /// Per protocol class, then external address.
    ports: Vec<Ports>,
    /// External addresses (host order).
    pub externals: Box<[u32]>,
    /// The first port this replica owns and how many.
    pub port_first: u16,
    pub port_len: usize,
    pub timeouts: Timeouts,
    /// Sweep position.
    hand: usize,
    /// No reclaim of slots before this time (see [`RECLAIM_PAUSE_NS`]).
    reclaim_after: u64,
    /// Mappings live (static ones included).
    pub live: usize,
    pub created: u64,
    pub expired: u64,
    /// Mappings removed so far: while it has not changed, a slot looked up
    /// earlier still holds the mapping it held then.
    pub removals: u64,
}

impl Table {
    /// A table of `max` dynamic mappings plus `statics` static ones, over
    /// external addresses `externals` and ports `port_first..+port_len`.
    pub fn new(
        max: usize,
        statics: usize,
        externals: &[u32],
        (port_first, port_len): (u16, usize),
        timeouts: Timeouts,
        seed: u64,
    ) -> Table {
        let n = max + statics;
        let ports = (0..3 * externals.len())
            .map(|i| Ports::new(port_len, (seed as usize).wrapping_add(i * 977)))
            .collect();
        Table {
            slots: HugeSlice::new(n, Mapping::default()),
            free: (0..n as u32).rev().collect(),
            inside: Index::new(n, seed),
            outside: Index::new(n, seed.rotate_left(29) ^ 0x5bd1_e995),
            ports,
            externals: externals.into(),
            port_first,
            port_len,
            timeouts,
            hand: 0,
            reclaim_after: 0,
            live: 0,
            created: 0,
            expired: 0,
            removals: 0,
        }
    }

    /// Slots in the table (live or not).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub fn get(&self, slot: u32) -> &Mapping {
        &self.slots[slot as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut Mapping {
        &mut self.slots[slot as usize]
    }

    /// The mapping of internal endpoint `key` ([`key`]).
    #[inline]
    pub fn find_inside(&self, key: u64) -> Option<u32> {
        self.inside.find(key)
    }

    /// Starts loading what [`Table::find_inside`] of `key` will read.
    #[inline(always)]
    pub fn touch_inside(&self, key: u64) {
        self.inside.touch(key);
    }

    /// Starts loading mapping `slot`.
    #[inline(always)]
    pub fn touch(&self, slot: u32) {
        std::hint::black_box(self.slots[slot as usize].last);
    }

    /// The mapping of external endpoint `key`.
    #[inline]
    pub fn find_outside(&self, key: u64) -> Option<u32> {
        self.outside.find(key)
    }

    /// The external address of `m`.
    #[inline]
    pub fn ext_addr(&self, m: &Mapping) -> u32 {
        self.externals[m.ext_idx as usize]
    }

    /// Whether external port `port` is one this replica hands out.
    pub fn owns_port(&self, port: u16) -> bool {
        (port.wrapping_sub(self.port_first) as usize) < self.port_len
    }

    /// A new mapping for internal endpoint (`proto`, `addr`, `port`) at
    /// `now`: the external address is chosen by the internal address
    /// (RFC 4787's paired pooling), the port is the internal one when this
    /// replica owns it and it is free (port preservation), else the next
    /// free one. A full table is first swept for expired mappings.
    pub fn create(&mut self, proto: u8, addr: u32, port: u16, now: u64) -> Result<u32, Full> {
        let ext_idx = (addr.wrapping_mul(0x9e37_79b1) >> 16) as usize % self.externals.len();
        let pi = proto as usize * self.externals.len() + ext_idx;
        if self.free.is_empty() {
            self.reclaim(now);
        }
        if self.ports[pi].free == 0 {
            self.reclaim_port(proto, ext_idx, now);
        }
        if self.free.is_empty() {
            return Err(Full::Slots);
        }
        let want = port.wrapping_sub(self.port_first) as usize;
        let off = if want < self.port_len && self.ports[pi].take(want) {
            want
        } else {
            self.ports[pi].next().ok_or(Full::Ports)?
        };
        let ext_port = self.port_first.wrapping_add(off as u16);
        let slot = self.free.pop().expect("checked above");
        self.install(slot, proto, addr, port, ext_idx as u8, ext_port, LIVE, now);
        self.created += 1;
        Ok(slot)
    }

    /// A static forward, installed at start: never expires nor flushed.
    /// Returns false when its internal or external endpoint is taken.
    pub fn add_static(
        &mut self,
        proto: u8,
        addr: u32,
        port: u16,
        ext_idx: u8,
        ext_port: u16,
    ) -> bool {
        let ext = self.externals[ext_idx as usize];
        if self.find_inside(key(proto, addr, port)).is_some()
            || self.find_outside(key(proto, ext, ext_port)).is_some()
        {
            return false;
        }
        let Some(slot) = self.free.pop() else {
            return false;
        };
        if self.owns_port(ext_port) {
            let pi = proto as usize * self.externals.len() + ext_idx as usize;
            self.ports[pi].take(ext_port.wrapping_sub(self.port_first) as usize);
        }
        self.install(slot, proto, addr, port, ext_idx, ext_port, LIVE | STATIC, 0);
        true
    }

    /// Puts back a mapping handed over by a replaced replica, with its
    /// external port, when its address and port are still this replica's
    /// and free. Returns whether it was kept.
    pub fn restore(&mut self, m: &Mapping, ext_addr: u32) -> bool {
        let Some(ext_idx) = self.externals.iter().position(|&a| a == ext_addr) else {
            return false;
        };
        if !self.owns_port(m.ext_port)
            || self.free.is_empty()
            || self
                .find_inside(key(m.proto, m.in_addr, m.in_port))
                .is_some()
        {
            return false;
        }
        let pi = m.proto as usize * self.externals.len() + ext_idx;
        if !self.ports[pi].take(m.ext_port.wrapping_sub(self.port_first) as usize) {
            return false;
        }
        let slot = self.free.pop().expect("checked above");
        self.install(
            slot,
            m.proto,
            m.in_addr,
            m.in_port,
            ext_idx as u8,
            m.ext_port,
            LIVE,
            m.last,
        );
        let s = &mut self.slots[slot as usize];
        (s.tcp, s.packets) = (m.tcp, m.packets);
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn install(
        &mut self,
        slot: u32,
        proto: u8,
        addr: u32,
        port: u16,
        ext_idx: u8,
        ext_port: u16,
        flags: u8,
        now: u64,
    ) {
        let ext = self.externals[ext_idx as usize];
        let (d_ip, d_l4) = super::translate::deltas(addr, port, ext, ext_port);
        self.slots[slot as usize] = Mapping {
            in_addr: addr,
            in_port: port,
            ext_port,
            ext_idx,
            proto,
            tcp: 0,
            flags,
            d_ip,
            d_l4,
            last: now,
            packets: 0,
        };
        self.inside.insert(key(proto, addr, port), slot);
        self.outside.insert(key(proto, ext, ext_port), slot);
        self.live += 1;
    }

    /// Removes the mapping in `slot` and frees its port.
    pub fn remove(&mut self, slot: u32) {
        let m = self.slots[slot as usize];
        if m.flags & LIVE == 0 {
            return;
        }
        let ext = self.externals[m.ext_idx as usize];
        self.inside.remove(key(m.proto, m.in_addr, m.in_port));
        self.outside.remove(key(m.proto, ext, m.ext_port));
        if self.owns_port(m.ext_port) {
            let pi = m.proto as usize * self.externals.len() + m.ext_idx as usize;
            self.ports[pi].put(m.ext_port.wrapping_sub(self.port_first) as usize);
        }
        self.slots[slot as usize].flags = 0;
        self.free.push(slot);
        self.live -= 1;
        self.removals += 1;
    }

    /// Looks at the next `n` slots and removes the expired mappings.
    pub fn sweep(&mut self, now: u64, n: usize) {
        let len = self.slots.len();
        for _ in 0..n.min(len) {
            self.hand = if self.hand + 1 >= len {
                0
            } else {
                self.hand + 1
            };
            let m = &self.slots[self.hand];
            if m.flags & LIVE != 0 && m.expired(&self.timeouts, now) {
                self.remove(self.hand as u32);
                self.expired += 1;
            }
        }
    }

    /// A full table's sweep before giving up: at most [`RECLAIM`] slots,
    /// so that a packet meeting a full table costs a bounded time; none
    /// for [`RECLAIM_PAUSE_NS`] after one that freed nothing.
    fn reclaim(&mut self, now: u64) {
        if now < self.reclaim_after {
            return;
        }
        self.sweep(now, RECLAIM);
        if self.free.is_empty() {
            self.reclaim_after = now.saturating_add(RECLAIM_PAUSE_NS);
        }
    }

    /// When every port of (`proto`, external address `ext_idx`) is taken:
    /// looks at the mappings of up to [`RECLAIM`] of them, from the port
    /// search's cursor on, and removes the first that has expired. One
    /// that finds none moves the cursor past the ports it looked at (the
    /// next looks at others) and pauses reclaims for [`RECLAIM_PAUSE_NS`].
    fn reclaim_port(&mut self, proto: u8, ext_idx: usize, now: u64) {
        let pi = proto as usize * self.externals.len() + ext_idx;
        if now < self.ports[pi].reclaim_after {
            return;
        }
        let ext = self.externals[ext_idx];
        let start = self.ports[pi].cursor;
        let looked = RECLAIM.min(self.port_len);
        for k in 0..looked {
            let off = (start + k) % self.port_len;
            let port = self.port_first.wrapping_add(off as u16);
            let Some(slot) = self.outside.find(key(proto, ext, port)) else {
                continue;
            };
            if self.slots[slot as usize].expired(&self.timeouts, now) {
                self.remove(slot);
                self.expired += 1;
                self.ports[pi].cursor = off;
                return;
            }
        }
        let ports = &mut self.ports[pi];
        ports.cursor = (start + looked) % self.port_len.max(1);
        ports.reclaim_after = now.saturating_add(RECLAIM_PAUSE_NS);
    }

    /// Removes every dynamic mapping; returns how many.
    pub fn flush(&mut self) -> usize {
        let mut n = 0;
        for slot in 0..self.slots.len() {
            let m = &self.slots[slot];
            if m.flags & LIVE != 0 && !m.is_static() {
                self.remove(slot as u32);
                n += 1;
            }
        }
        n
    }

    /// The live mappings, static ones included.
    pub fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.slots.iter().filter(|m| m.flags & LIVE != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        tcp_established: 1000,
        tcp_transitory: 100,
        udp: 50,
        icmp: 10,
    };

    #[test]
    fn index_survives_removals_in_the_middle_of_runs() {
        let mut ix = Index::new(64, 7);
        let keys: Vec<u64> = (0..64).map(|i| key(UDP, 0x0a00_0001, i)).collect();
        for (i, k) in keys.iter().enumerate() {
            ix.insert(*k, i as u32);
        }
        for k in keys.iter().step_by(3) {
            ix.remove(*k);
        }
        for (i, k) in keys.iter().enumerate() {
            let want = (i % 3 != 0).then_some(i as u32);
            assert_eq!(ix.find(*k), want, "key {i}");
        }
    }

    #[test]
    fn ports_run_out_and_come_back() {
        let mut t = Table::new(10, 0, &[1], (2000, 4), T, 1);
        let slots: Vec<u32> = (0..4)
            .map(|i| t.create(UDP, 9, 100 + i, 0).unwrap())
            .collect();
        assert_eq!(t.create(UDP, 9, 200, 0), Err(Full::Ports));
        // Another protocol has its own ports.
        assert!(t.create(TCP, 9, 200, 0).is_ok());
        t.remove(slots[2]);
        let s = t.create(UDP, 9, 200, 0).unwrap();
        assert_eq!(t.get(s).ext_port, t.get(slots[2]).ext_port);
        // An expired mapping gives its port up when the ports run out (the
        // reclaim at time 0 found none: the next waits out the pause).
        let later = RECLAIM_PAUSE_NS + 51;
        let s = t.create(UDP, 9, 300, later).unwrap();
        assert!(t.owns_port(t.get(s).ext_port));
        assert_eq!(t.expired, 1);
        assert!(t.create(UDP, 9, 301, later).is_ok());
        assert_eq!(t.expired, 2);
    }

    #[test]
    fn a_full_table_refuses_at_once_after_a_fruitless_reclaim_then_looks_further() {
        // 2048 slots: 1..=1024 (the first reclaim's sweep) hold TCP
        // mappings, alive at time 60; the rest UDP ones, expired by then.
        let mut t = Table::new(2048, 0, &[1], (1024, 4096), T, 1);
        for i in 0..2048u16 {
            let proto = if i <= 1024 { TCP } else { UDP };
            assert_eq!(t.create(proto, 9, 1024 + i, 0), Ok(u32::from(i)));
        }
        assert_eq!(t.create(UDP, 8, 1, 60), Err(Full::Slots));
        assert_eq!((t.hand, t.expired), (1024, 0));
        // Within the pause: refused without a look.
        assert_eq!(t.create(UDP, 8, 1, 61), Err(Full::Slots));
        assert_eq!(t.hand, 1024);
        // After it: the sweep goes on from where it stopped.
        assert!(t.create(UDP, 8, 1, 60 + RECLAIM_PAUSE_NS).is_ok());
        assert_eq!(t.expired, 1024);
    }

    #[test]
    fn full_ports_refuse_at_once_after_a_fruitless_reclaim_then_look_further() {
        // 2048 UDP ports, each its internal port's: those of the 1024 from
        // the port cursor on alive at time 1000, the others expired.
        let mut t = Table::new(4096, 0, &[1], (1024, 2048), T, 1);
        let pi = usize::from(UDP);
        let start = t.ports[pi].cursor;
        let near = |off: usize| (off + 2048 - start) % 2048 < 1024;
        for off in 0..2048 {
            let now = if near(off) { 1000 } else { 0 };
            let s = t.create(UDP, 9, 1024 + off as u16, now).unwrap();
            assert_eq!(usize::from(t.get(s).ext_port), 1024 + off);
        }
        assert_eq!(t.create(UDP, 8, 1, 1000), Err(Full::Ports));
        assert_eq!(t.ports[pi].cursor, (start + 1024) % 2048);
        assert_eq!(t.create(UDP, 8, 1, 1001), Err(Full::Ports));
        assert_eq!(t.ports[pi].cursor, (start + 1024) % 2048);
        // After the pause, the first port past the ones looked at.
        let s = t.create(UDP, 8, 1, 1000 + RECLAIM_PAUSE_NS).unwrap();
        assert_eq!(usize::from(t.get(s).ext_port), 1024 + (start + 1024) % 2048);
    }

    #[test]
    fn a_free_internal_port_is_preserved() {
        let mut t = Table::new(10, 0, &[1], (1000, 100), T, 1);
        let s = t.create(TCP, 9, 1050, 0).unwrap();
        assert_eq!(t.get(s).ext_port, 1050);
        let s = t.create(TCP, 8, 1050, 0).unwrap();
        assert_ne!(t.get(s).ext_port, 1050);
        let s = t.create(TCP, 8, 80, 0).unwrap();
        assert!(t.owns_port(t.get(s).ext_port));
    }

    #[test]
    fn a_mapping_takes_32_bytes_and_the_slots_lie_on_huge_pages() {
        assert_eq!(std::mem::size_of::<Mapping>(), 32);
        let t = Table::new(65536, 0, &[1], (1024, 64512), T, 1);
        assert!(t.slots.huge_aligned() && t.inside.entries.huge_aligned());
    }

    #[test]
    fn precomputed_checksum_differences_match_a_fresh_computation() {
        let mut t = Table::new(10, 0, &[0xc000_0201], (1024, 100), T, 1);
        let slot = t.create(UDP, 0x0a00_0102, 5000, 0).unwrap();
        let m = *t.get(slot);
        let sum = |w: &[u16]| {
            let s: u32 = w.iter().map(|&x| x as u32).sum();
            let s = (s & 0xffff) + (s >> 16);
            ((s & 0xffff) + (s >> 16)) as u16
        };
        // A sum over the old words plus the difference is the sum over
        // the new words (one's complement: 0 and 0xffff are one number).
        let (old, new) = ([0x0a00, 0x0102, 5000], [0xc000, 0x0201, m.ext_port]);
        let got = sum(&[sum(&old[..2]), m.d_ip]);
        assert_eq!(got % 0xffff, sum(&new[..2]) % 0xffff);
        let got = sum(&[sum(&old), m.d_l4]);
        assert_eq!(got % 0xffff, sum(&new) % 0xffff);
    }

    #[test]
    fn tcp_timeout_follows_its_state() {
        let mut m = Mapping {
            proto: TCP,
            tcp: SEEN_OUT,
            flags: LIVE,
            ..Mapping::default()
        };
        assert_eq!(m.timeout(&T), 100);
        m.tcp |= SEEN_IN;
        assert_eq!(m.timeout(&T), 1000);
        m.tcp |= CLOSING;
        assert_eq!(m.timeout(&T), 100);
        assert!(m.expired(&T, 101) && !m.expired(&T, 100));
        m.flags |= STATIC;
        assert!(!m.expired(&T, 1 << 40));
    }
}
