//! IP fragments: non-first fragments follow the verdict on their datagram's
//! first fragment (the only one with ports for the rules to test).
//!
//! A datagram is known by its source, destination, protocol, IPv4
//! identification or IPv6 Fragment header identification, and the side it
//! arrives from ([`FragKey`]). When the first fragment has been decided, the
//! table remembers the verdict for `frag_timeout`; a later fragment then
//! passes to the same output, or is dropped with the first's reason. A later
//! fragment that arrives before its first is held (the packet itself, in its
//! pool slot: no copy) until the first decides, or dropped as `fragment`
//! when the datagram's entry expires.
//!
//! Everything is bounded and allocated when the worker's replica is built: a
//! set-associative table of [`WAYS`]-entry buckets (no probing, no resize)
//! and a list of at most `frag_hold` held packets. Expiry needs no timer: each
//! burst compares its time with the earliest expiry of a held packet (one
//! comparison per burst), and entries with no held packet simply stop
//! matching once expired and are reused.

use std::hash::BuildHasher;

use hpio_nf::element::{DropReason, Output};
use hpio_nf::packet::Packet;
use hpio_nf::wire::{Fragment, Headers, Ipv4Packet, Ipv6Packet, L3Kind, TcpPacket, UdpPacket};
use hpio_nf::wire::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

// The fragments this module refuses are dropped as `fragment`.
use crate::counts::FRAGMENT;

/// Entries per bucket: a datagram's entry lives in the bucket of its hash.
pub(crate) const WAYS: usize = 8;

/// Bytes of a TCP header without options: a later TCP fragment that starts
/// inside them could rewrite the ports or flags the rules saw (RFC 1858).
const TCP_MIN_HEADER: u16 = 20;

/// A datagram: whose fragments belong together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FragKey {
    src: [u64; 2],
    dst: [u64; 2],
    id: u32,
    proto: u8,
    v6: bool,
    /// The input the fragments arrive on.
    side: u8,
}

impl FragKey {
    /// The datagram of the fragment `frag` of the IP packet in `frame`
    /// (parse `h`), arriving on input `side`. `None` if the addresses are not
    /// in the frame (never for a parse with status `Ok`).
    pub(crate) fn of(h: &Headers, frame: &[u8], frag: &Fragment, side: u8) -> Option<FragKey> {
        let l3 = h.l3_off as usize;
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w[8 - b.len()..].copy_from_slice(b);
            u64::from_be_bytes(w)
        };
        let (src, dst, v6) = match h.l3 {
            L3Kind::Ipv4 => {
                let a = *Ipv4Packet::at(frame, l3)?.addrs_bytes();
                ([0, word(&a[..4])], [0, word(&a[4..])], false)
            }
            L3Kind::Ipv6 => {
                let a = *Ipv6Packet::at(frame, l3)?.addrs_bytes();
                let (s, d) = (&a[..16], &a[16..]);
                (
                    [word(&s[..8]), word(&s[8..])],
                    [word(&d[..8]), word(&d[8..])],
                    true,
                )
            }
            L3Kind::Other => return None,
        };
        Some(FragKey {
            src,
            dst,
            id: frag.id,
            proto: frag.proto,
            v6,
            side,
        })
    }
}

/// Where the transport header of a first fragment ends, in bytes from the
/// start of the datagram's fragmentable part: a later fragment that starts
/// before it overlaps the header the rules looked at.
pub(crate) fn header_end(h: &Headers, frame: &[u8], frag: &Fragment) -> u16 {
    let l4 = h.l4_off as usize;
    let len = match h.l4_proto {
        _ if !h.has_l4 => 0,
        IPPROTO_TCP => TcpPacket::at(frame, l4).map_or(TCP_MIN_HEADER, |t| t.header_len() as u16),
        IPPROTO_UDP => UdpPacket::<&[u8]>::LEN as u16,
        // Type, code, checksum and the echo identifier and sequence.
        IPPROTO_ICMP | IPPROTO_ICMPV6 => 8,
        _ => 0,
    };
    (h.l4_off.saturating_sub(frag.data_off)).saturating_add(len)
}

/// What became of a datagram's first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not seen yet: later fragments wait.
    Pending,
    /// Passed to this output: later fragments follow it.
    Pass(u8),
    /// Dropped with this reason: later fragments are dropped with it too.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: FragKey,
    /// When the entry stops matching, in the time of `Context::now`.
    expires: u64,
    verdict: Verdict,
    /// Later fragments starting before this byte overlap the first's
    /// transport header.
    header_end: u16,
    /// Packets held for this entry.
    held: u16,
    used: bool,
}

const FREE: Entry = Entry {
    key: FragKey {
        src: [0; 2],
        dst: [0; 2],
        id: 0,
        proto: 0,
        v6: false,
        side: 0,
    },
    expires: 0,
    verdict: Verdict::Pending,
    header_end: 0,
    held: 0,
    used: false,
};

/// A later fragment waiting for its first.
struct Held {
    pkt: Packet,
    entry: u32,
    /// Its offset in the datagram, in bytes.
    offset: u16,
    expires: u64,
}

/// The fragment counters of one replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FragStats {
    /// Non-first fragments passed (with their first, or released after it).
    pub(crate) passed: u64,
    /// Non-first fragments held because they came before their first.
    pub(crate) held: u64,
    /// Held fragments passed once their first was allowed.
    pub(crate) released: u64,
    /// Held fragments dropped because their first did not come in time.
    pub(crate) expired: u64,
    /// Non-first fragments dropped because their first was dropped.
    pub(crate) denied: u64,
    /// Tiny or overlapping fragments dropped (RFC 1858).
    pub(crate) overlapping: u64,
    /// Fragments dropped because the table or the hold was full.
    pub(crate) full: u64,
    /// Held fragments dropped at the end of the run.
    pub(crate) at_end: u64,
}

/// A worker's fragment state.
pub(crate) struct FragTable {
    entries: Box<[Entry]>,
    /// Buckets - 1 (a power of two minus one).
    mask: usize,
    held: Vec<Held>,
    hold_max: usize,
    /// No held packet expires before this.
    next_expiry: u64,
    timeout: u64,
    seed: u64,
    pub(crate) stats: FragStats,
}

impl FragTable {
    /// A table for about `max` datagrams (rounded up to whole buckets), holding
    /// at most `hold` packets, entries living `timeout` ns; `seed` of `None`
    /// picks a random hash seed.
    pub(crate) fn new(max: usize, hold: usize, timeout: u64, seed: Option<u64>) -> FragTable {
        let buckets = max.div_ceil(WAYS).max(1).next_power_of_two();
        let seed = seed
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0xf4a6_u64));
        FragTable {
            entries: vec![FREE; buckets * WAYS].into_boxed_slice(),
            mask: buckets - 1,
            held: Vec::with_capacity(hold),
            hold_max: hold,
            next_expiry: u64::MAX,
            timeout,
            seed,
            stats: FragStats::default(),
        }
    }

    /// Datagram entries in the table.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Packets held now.
    pub(crate) fn held_now(&self) -> usize {
        self.held.len()
    }

    fn bucket(&self, k: &FragKey) -> usize {
        let mut h = self.seed;
        for w in [
            k.src[0],
            k.src[1],
            k.dst[0],
            k.dst[1],
            (k.id as u64) << 32 | (k.proto as u64) << 16 | (k.v6 as u64) << 8 | k.side as u64,
        ] {
            h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        (h as usize & self.mask) * WAYS
    }

    /// The live entry of `k`.
    fn find(&self, k: &FragKey, now: u64) -> Option<usize> {
        let b = self.bucket(k);
        (b..b + WAYS).find(|&i| {
            let e = &self.entries[i];
            e.used && e.expires > now && e.key == *k
        })
    }

    /// A fresh entry for `k` (which has none), or `None` when its bucket is
    /// full of live entries.
    fn insert(&mut self, k: &FragKey, now: u64) -> Option<usize> {
        let b = self.bucket(k);
        let i = (b..b + WAYS).find(|&i| {
            let e = &self.entries[i];
            !e.used || (e.expires <= now && e.held == 0)
        })?;
        self.entries[i] = Entry {
            key: *k,
            expires: now.saturating_add(self.timeout),
            ..FREE
        };
        self.entries[i].used = true;
        Some(i)
    }

    /// True when a held packet may have expired by `now` (one comparison:
    /// the firewall asks once per burst).
    #[inline(always)]
    pub(crate) fn due(&self, now: u64) -> bool {
        now >= self.next_expiry
    }

    /// Drops the held packets that have expired by `now` as `fragment`.
    #[cold]
    pub(crate) fn expire(&mut self, now: u64, out: &mut Output) {
        let mut next = u64::MAX;
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].expires <= now {
                let h = self.held.remove(i);
                self.entries[h.entry as usize].held -= 1;
                self.stats.expired += 1;
                out.drop(h.pkt, FRAGMENT);
            } else {
                next = next.min(self.held[i].expires);
                i += 1;
            }
        }
        self.next_expiry = next;
    }

    /// Records the verdict on the first fragment of datagram `k`:
    /// `Ok(output)` passed, `Err(reason)` dropped. Returns the entry, whose
    /// held fragments [`FragTable::release`] then hands on; `None` when the
    /// table has no room (the caller drops the first: its datagram could not
    /// be completed).
    pub(crate) fn first(
        &mut self,
        k: &FragKey,
        now: u64,
        verdict: Result<u8, DropReason>,
        header_end: u16,
    ) -> Option<usize> {
        let i = match self.find(k, now) {
            Some(i) => i,
            None => match self.insert(k, now) {
                Some(i) => i,
                None => {
                    self.stats.full += 1;
                    return None;
                }
            },
        };
        let e = &mut self.entries[i];
        e.verdict = match verdict {
            Ok(port) => Verdict::Pass(port),
            Err(r) => Verdict::Drop(r),
        };
        e.header_end = header_end;
        e.expires = e.expires.max(now.saturating_add(self.timeout));
        Some(i)
    }

    /// Hands on the fragments held for entry `i` after its first was
    /// decided, in the order they came.
    pub(crate) fn release(&mut self, i: usize, out: &mut Output) {
        let mut j = 0;
        while self.entries[i].held > 0 && j < self.held.len() {
            if self.held[j].entry as usize != i {
                j += 1;
                continue;
            }
            let h = self.held.remove(j);
            let e = &mut self.entries[i];
            e.held -= 1;
            let (verdict, end) = (e.verdict, e.header_end);
            self.follow(verdict, end, h.offset, h.pkt, out, true);
        }
    }

    /// Passes or drops a later fragment at `offset` by its first's verdict.
    fn follow(
        &mut self,
        verdict: Verdict,
        header_end: u16,
        offset: u16,
        pkt: Packet,
        out: &mut Output,
        was_held: bool,
    ) {
        match verdict {
            Verdict::Pass(_) if offset < header_end => {
                self.stats.overlapping += 1;
                out.drop(pkt, FRAGMENT);
            }
            Verdict::Pass(port) => {
                self.stats.passed += 1;
                self.stats.released += was_held as u64;
                out.push(port as usize, pkt);
            }
            Verdict::Drop(r) => {
                self.stats.denied += 1;
                out.drop(pkt, r);
            }
            Verdict::Pending => unreachable!("only decided entries are followed"),
        }
    }

    /// A non-first fragment of datagram `k`, at byte `offset`: passes or
    /// drops it by its first's verdict, or holds it until the first comes.
    /// `room` is false when the worker's pool is too empty to hold packets.
    pub(crate) fn later(
        &mut self,
        k: &FragKey,
        offset: u16,
        now: u64,
        pkt: Packet,
        room: bool,
        out: &mut Output,
    ) {
        if k.proto == IPPROTO_TCP && offset < TCP_MIN_HEADER {
            // Offset 1 or 2 (8, 16 bytes): inside any TCP header (RFC 1858, 3128).
            self.stats.overlapping += 1;
            out.drop(pkt, FRAGMENT);
            return;
        }
        if let Some(i) = self.find(k, now) {
            let e = self.entries[i];
            if e.verdict != Verdict::Pending {
                self.follow(e.verdict, e.header_end, offset, pkt, out, false);
                return;
            }
            self.hold(i, offset, pkt, room, out);
            return;
        }
        if self.held.len() >= self.hold_max || !room {
            self.stats.full += 1;
            out.drop(pkt, FRAGMENT);
            return;
        }
        match self.insert(k, now) {
            Some(i) => self.hold(i, offset, pkt, room, out),
            None => {
                self.stats.full += 1;
                out.drop(pkt, FRAGMENT);
            }
        }
    }

    fn hold(&mut self, i: usize, offset: u16, pkt: Packet, room: bool, out: &mut Output) {
        if self.held.len() >= self.hold_max || !room {
            self.stats.full += 1;
            out.drop(pkt, FRAGMENT);
            return;
        }
        let expires = self.entries[i].expires;
        self.entries[i].held += 1;
        self.held.push(Held {
            pkt,
            entry: i as u32,
            offset,
            expires,
        });
        self.stats.held += 1;
        self.next_expiry = self.next_expiry.min(expires);
    }

    /// Drops every held packet as `fragment` (the end of the run).
    pub(crate) fn finish(&mut self, out: &mut Output) {
        for h in self.held.drain(..) {
            self.entries[h.entry as usize].held -= 1;
            self.stats.at_end += 1;
            out.drop(h.pkt, FRAGMENT);
        }
        self.next_expiry = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    use crate::counts::DENIED;

    fn key(n: u32) -> FragKey {
        FragKey {
            src: [0, 0x0a00_0102],
            dst: [0, 0x0a00_0103],
            id: n,
            proto: IPPROTO_UDP,
            v6: false,
            side: 0,
        }
    }

    /// A packet whose first byte tags it, to follow it through.
    fn pkt(tag: u8) -> Packet {
        Packet::from_bytes(&[tag; 60])
    }

    fn out() -> Output {
        Output::new(2, 6)
    }

    fn tags(out: &mut Output, port: usize) -> Vec<u8> {
        out.take(port).iter().map(|p| p.data()[0]).collect()
    }

    #[test]
    fn entries_stay_small_and_the_table_is_sized_at_start() {
        assert!(std::mem::size_of::<Entry>() <= 64);
        let t = FragTable::new(1000, 64, S, Some(1));
        assert_eq!(t.capacity(), 1024);
        assert_eq!(t.held.capacity(), 64);
        assert_eq!(FragTable::new(1, 0, S, Some(1)).capacity(), WAYS);
    }

    #[test]
    fn verdicts_are_followed_and_held_packets_released() {
        let mut t = FragTable::new(64, 8, 10 * S, Some(3));
        let mut o = out();
        // Datagram 1: first passes to output 1; a later fragment follows.
        let e = t.first(&key(1), 0, Ok(1), 8).unwrap();
        t.release(e, &mut o);
        t.later(&key(1), 1480, S, pkt(1), true, &mut o);
        assert_eq!(tags(&mut o, 1), [1]);
        // Datagram 2: two later fragments wait, then the first is denied.
        t.later(&key(2), 1480, 0, pkt(2), true, &mut o);
        t.later(&key(2), 2960, 0, pkt(3), true, &mut o);
        assert_eq!(t.held_now(), 2);
        let e = t.first(&key(2), S, Err(DENIED), 8).unwrap();
        t.release(e, &mut o);
        assert_eq!((t.held_now(), o.drops(DENIED)), (0, 2));
        // Datagram 3: held, then allowed: released to output 0.
        t.later(&key(3), 1480, 0, pkt(4), true, &mut o);
        let e = t.first(&key(3), S, Ok(0), 8).unwrap();
        t.release(e, &mut o);
        assert_eq!(tags(&mut o, 0), [4]);
        let s = t.stats;
        assert_eq!((s.passed, s.held, s.released, s.denied), (2, 3, 1, 2));
        // Another side is another datagram.
        let mut other = key(1);
        other.side = 1;
        t.later(&other, 1480, S, pkt(5), true, &mut o);
        assert_eq!(t.held_now(), 1);
    }

    #[test]
    fn entries_and_held_packets_expire() {
        let mut t = FragTable::new(64, 8, 10 * S, Some(4));
        let mut o = out();
        t.later(&key(1), 8, 0, pkt(1), true, &mut o);
        t.later(&key(2), 8, 3 * S, pkt(2), true, &mut o);
        assert!(!t.due(10 * S - 1));
        assert!(t.due(10 * S));
        t.expire(10 * S, &mut o);
        assert_eq!((t.held_now(), t.stats.expired), (1, 1));
        assert!(!t.due(13 * S - 1) && t.due(13 * S));
        t.expire(13 * S, &mut o);
        assert_eq!((t.held_now(), t.stats.expired), (0, 2));
        assert_eq!(o.drops(FRAGMENT), 2);
        assert!(!t.due(u64::MAX - 1));
        // A verdict lasts the timeout from the first fragment, not longer.
        t.first(&key(3), 20 * S, Ok(0), 8).unwrap();
        t.later(&key(3), 8, 30 * S - 1, pkt(3), true, &mut o);
        assert_eq!(tags(&mut o, 0), [3]);
        t.later(&key(3), 16, 30 * S, pkt(4), true, &mut o);
        assert_eq!(
            t.held_now(),
            1,
            "expired: held as a datagram whose first is unknown"
        );
    }

    #[test]
    fn a_full_bucket_or_hold_refuses_and_counts() {
        // One bucket: WAYS datagrams at most.
        let mut t = FragTable::new(1, 64, 10 * S, Some(5));
        let mut o = out();
        for n in 0..WAYS as u32 {
            assert!(t.first(&key(n), 0, Ok(0), 8).is_some());
        }
        assert!(t.first(&key(99), 0, Ok(0), 8).is_none());
        t.later(&key(98), 8, 0, pkt(1), true, &mut o);
        assert_eq!((t.stats.full, o.drops(FRAGMENT)), (2, 1));
        // Once they expire, the slots are reused.
        assert!(t.first(&key(99), 10 * S, Ok(0), 8).is_some());
        // The hold.
        let mut t = FragTable::new(64, 2, S, Some(6));
        for n in 0..3 {
            t.later(&key(n), 8, 0, pkt(n as u8), true, &mut o);
        }
        assert_eq!((t.held_now(), t.stats.full), (2, 1));
        t.later(&key(7), 8, 0, pkt(7), false, &mut o);
        assert_eq!((t.held_now(), t.stats.full), (2, 2), "no room in the pool");
        t.finish(&mut o);
        assert_eq!((t.held_now(), t.stats.at_end), (0, 2));
    }

    /// Random traffic over a small table: every packet is accounted for
    /// (passed, dropped or held), the hold never passes its bound, each
    /// entry's count of held packets is right, and nothing is left after
    /// `finish`.
    #[test]
    fn random_traffic_keeps_every_packet_accounted_and_the_bounds() {
        let mut rng = testkit::rng::Rng::new(0x1234_5678_9abc_def1);
        let mut next = || rng.next_u64();
        let hold = 16;
        let mut t = FragTable::new(16, hold, 5 * S, Some(7));
        let mut o = out();
        let (mut pushed, mut now, mut out_count) = (0u64, 0u64, 0u64);
        for _ in 0..20_000 {
            now += next() % (S / 4);
            if t.due(now) {
                t.expire(now, &mut o);
            }
            let k = key((next() % 40) as u32);
            match next() % 3 {
                0 => {
                    let v = if next() % 4 == 0 { Err(DENIED) } else { Ok(0) };
                    let end = if next() % 2 == 0 { 8 } else { 24 };
                    if let Some(e) = t.first(&k, now, v, end) {
                        t.release(e, &mut o);
                    }
                }
                _ => {
                    pushed += 1;
                    let off = (1 + next() % 4) as u16 * 8;
                    t.later(&k, off, now, pkt(0), next() % 10 != 0, &mut o);
                }
            }
            assert!(t.held_now() <= hold);
            let per_entry: usize = t.entries.iter().map(|e| e.held as usize).sum();
            assert_eq!(per_entry, t.held_now());
            out_count += o.take(0).len() as u64;
        }
        let s = t.stats;
        assert_eq!(out_count, s.passed);
        let dropped = o.drops(FRAGMENT) + o.drops(DENIED);
        assert_eq!(s.passed + dropped + t.held_now() as u64, pushed);
        assert!(
            s.held > 100 && s.expired > 10 && s.released > 10 && s.full > 10,
            "{s:?}"
        );
        t.finish(&mut o);
        assert_eq!(t.held_now(), 0);
        assert!(t.entries.iter().all(|e| e.held == 0));
        assert_eq!(s.passed + o.drops(FRAGMENT) + o.drops(DENIED), pushed);
    }
}
