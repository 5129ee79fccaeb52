//! Connection tracking: a fixed-capacity table of flows, one per worker.
//!
//! The table is an open-addressing hash table with linear probing, allocated
//! once when the worker's replica is built and never resized: at least twice
//! as many slots as `max_flows` (a power of two), one 64-byte slot (one
//! cache line) per flow. A flow's tuple is canonical (both directions of a
//! flow have the same one, see [`Tuple`]), so one lookup serves both
//! directions; the slot remembers which endpoint opened the flow.
//!
//! Lookups and inserts look at most [`MAX_PROBE`] slots from a tuple's home
//! slot, so no packet costs more than that whatever the traffic; the hash is
//! seeded per table at random, so a sender cannot aim many flows at one home
//! slot without knowing the seed. Removal shifts the following slots back
//! (no tombstones), which keeps every flow within [`MAX_PROBE`] of its home.
//!
//! Expired flows are removed when a lookup meets them, by an incremental
//! sweep of a few slots per burst, and, when the table is full, by a bounded
//! sweep of [`RECLAIM`] slots before a new flow is refused (one per
//! [`RECLAIM_PAUSE_NS`] while such sweeps find nothing, so that a flood of
//! new flows into a full table costs each packet a lookup, not a sweep).

use std::hash::BuildHasher;

use crate::tuple::{tcp_flags::*, Kind, Seen, Tuple};

/// Slots a lookup or an insert looks at, at most, from a tuple's home slot.
pub(crate) const MAX_PROBE: usize = 32;
/// Slots swept for expired flows when the table is full, before a new flow
/// is refused.
pub(crate) const RECLAIM: usize = 64;
/// After a full table's sweep freed nothing, new flows are refused at once
/// for this long. A flood of new flows into a full table spent most of its
/// time in those sweeps (perf: 56% of the worker); flows expire after
/// seconds, so none waits for this pause to be admitted in practice.
pub(crate) const RECLAIM_PAUSE_NS: u64 = 1_000_000;

/// How long a flow lives without traffic, by state, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// TCP: SYN sent, or SYN-ACK seen, not yet established.
    pub(crate) tcp_syn: u64,
    /// TCP: established.
    pub(crate) tcp_established: u64,
    /// TCP: a FIN seen (one or both directions), before the last ACK.
    pub(crate) tcp_fin: u64,
    /// TCP: both FINs and the last ACK seen.
    pub(crate) tcp_time_wait: u64,
    /// TCP: reset.
    pub(crate) tcp_close: u64,
    /// UDP: packets seen in one direction only.
    pub(crate) udp: u64,
    /// UDP: packets seen in both directions.
    pub(crate) udp_stream: u64,
    /// ICMP echo.
    pub(crate) icmp: u64,
}

/// The state of a flow (and `Empty` for a free slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    /// A free slot.
    Empty,
    /// TCP: the originator's SYN seen.
    SynSent,
    /// TCP: the responder's SYN-ACK seen.
    SynRecv,
    /// TCP: the originator's ACK of the SYN-ACK seen.
    Established,
    /// TCP: a FIN seen from one side.
    FinWait,
    /// TCP: FINs seen from both sides, the last ACK not yet.
    LastAck,
    /// TCP: FINs from both sides and an ACK after them.
    TimeWait,
    /// TCP: reset by either side.
    Close,
    /// UDP.
    Udp,
    /// ICMP echo.
    Icmp,
}

/// Flag bits of a slot.
mod flag {
    /// The originator is the tuple's endpoint `a`.
    pub const ORIG_IS_A: u8 = 0x01;
    /// A packet went from the responder to the originator.
    pub const REPLIED: u8 = 0x02;
    /// The originator sent a FIN.
    pub const FIN_ORIG: u8 = 0x04;
    /// The responder sent a FIN.
    pub const FIN_REPLY: u8 = 0x08;
}

/// One flow; one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    tuple: Tuple,
    /// When the flow expires, in the time of `Context::now`.
    expires: u64,
    /// The tuple's hash (its home slot is `hash & mask`).
    hash: u32,
    state: State,
    flags: u8,
    /// Bits 0..16 of the bytes of the flow's passed packets (the rest in
    /// `bytes_hi`: 48 bits in the cache line's last free bytes).
    bytes_lo: u16,
    /// Packets passed (both directions; stops at `u32::MAX`).
    packets: u32,
    /// Bits 16..48 of the bytes passed.
    bytes_hi: u32,
}

impl Slot {
    /// Bytes of the flow's passed packets (frames, both directions).
    fn bytes(&self) -> u64 {
        u64::from(self.bytes_hi) << 16 | u64::from(self.bytes_lo)
    }

    /// Counts a passed packet of `len` bytes.
    #[inline(always)]
    fn count(&mut self, len: u32) {
        self.packets = self.packets.saturating_add(1);
        // The low 16 bits and the carry into the high 32 (a frame is far
        // shorter than 4 GiB, so the sum fits a u64 without loss).
        let lo = u64::from(self.bytes_lo) + u64::from(len);
        self.bytes_lo = lo as u16;
        self.bytes_hi = self.bytes_hi.wrapping_add((lo >> 16) as u32);
    }
}

const EMPTY: Slot = Slot {
    tuple: Tuple {
        a: [0; 2],
        b: [0; 2],
        rest: 0,
    },
    expires: 0,
    hash: 0,
    state: State::Empty,
    flags: 0,
    bytes_lo: 0,
    packets: 0,
    bytes_hi: 0,
};

/// A flow as `ctl read FIREWALL flows` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowInfo {
    pub(crate) tuple: Tuple,
    /// The originator is the tuple's endpoint `a`.
    pub(crate) orig_is_a: bool,
    pub(crate) state: State,
    /// A packet came back from the responder.
    pub(crate) replied: bool,
    /// Nanoseconds since its last packet.
    pub(crate) idle: u64,
    /// Packets passed, both directions.
    pub(crate) packets: u32,
    /// Bytes passed, both directions.
    pub(crate) bytes: u64,
}

impl State {
    /// How `flows` names the state.
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Empty => "empty",
            State::SynSent => "syn-sent",
            State::SynRecv => "syn-recv",
            State::Established => "established",
            State::FinWait => "fin-wait",
            State::LastAck => "last-ack",
            State::TimeWait => "time-wait",
            State::Close => "close",
            State::Udp => "udp",
            State::Icmp => "icmp",
        }
    }
}

/// What a packet is to the table, before the rules decide on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    /// It belongs to the live flow in `slot`; `orig` when the originator sent it.
    Flow {
        /// The flow's slot.
        slot: usize,
        /// Sent by the flow's originator.
        orig: bool,
        /// The flow has seen a packet from its responder, or this is one.
        established: bool,
    },
    /// It opens a new flow (replacing the closed TCP connection in `reuse`,
    /// when a SYN reuses its ports).
    Start {
        /// Slot of a closed connection with the same tuple.
        reuse: Option<usize>,
        /// The tuple's hash.
        hash: u32,
    },
    /// It neither belongs to a flow nor can open one: a TCP segment other
    /// than a SYN, an echo reply, without a flow.
    Invalid,
}

/// The table is full: a new flow was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A worker's flows.
pub(crate) struct FlowTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// Occupied slots (expired flows included until they are removed).
    live: usize,
    /// Most occupied slots.
    max: usize,
    seed: u64,
    /// Next slot the incremental sweep looks at.
    cursor: usize,
    /// No reclaiming sweep before this time (see [`RECLAIM_PAUSE_NS`]).
    reclaim_after: u64,
    timeouts: Timeouts,
    /// Flows created.
    pub(crate) created: u64,
    /// Flows removed after their timeout.
    pub(crate) expired: u64,
}

impl FlowTable {
    /// A table for at most `max_flows` flows (at least 1), with a random hash seed.
    pub(crate) fn new(max_flows: usize, timeouts: Timeouts) -> FlowTable {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        FlowTable::with_seed(max_flows, timeouts, seed)
    }

    /// A table with a chosen hash seed (reproducible runs; tests force collisions with it).
    pub(crate) fn with_seed(max_flows: usize, timeouts: Timeouts, seed: u64) -> FlowTable {
        let max = max_flows.max(1);
        let len = (max * 2).next_power_of_two().max(MAX_PROBE);
        FlowTable {
            slots: vec![EMPTY; len].into_boxed_slice(),
            mask: len - 1,
            live: 0,
            max,
            seed,
            cursor: 0,
            reclaim_after: 0,
            timeouts,
            created: 0,
            expired: 0,
        }
    }

    /// Slots in the table.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Occupied slots (flows, including expired ones not yet removed).
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The hash of `t` under this table's seed.
    #[inline(always)]
    pub(crate) fn hash(&self, t: &Tuple) -> u32 {
        let mut h = self.seed;
        for w in t.words() {
            h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (h ^ (h >> 32)) as u32
    }

    /// Finds the flow of `seen` at time `now` and says what the packet is to it.
    /// An expired flow met on the way is removed.
    #[inline(always)]
    pub(crate) fn track(&mut self, seen: &Seen, now: u64) -> Track {
        let hash = self.hash(&seen.tuple);
        let Some(slot) = self.find(&seen.tuple, hash, now) else {
            return if seen.kind.starts_flow() {
                Track::Start { reuse: None, hash }
            } else {
                Track::Invalid
            };
        };
        let s = &self.slots[slot];
        let orig = seen.forward == (s.flags & flag::ORIG_IS_A != 0);
        match seen.kind {
            // A new SYN on the ports of a finished connection opens a new one.
            Kind::Tcp(_)
                if seen.kind.starts_flow() && matches!(s.state, State::TimeWait | State::Close) =>
            {
                return Track::Start {
                    reuse: Some(slot),
                    hash,
                };
            }
            // Requests go one way, replies the other.
            Kind::EchoRequest if !orig => return Track::Invalid,
            Kind::EchoReply if orig => return Track::Invalid,
            _ => {}
        }
        Track::Flow {
            slot,
            orig,
            established: !orig || s.flags & flag::REPLIED != 0,
        }
    }

    /// Records that a packet of `len` bytes the rules passed went through:
    /// updates its flow or creates one. `Err(Full)` when a new flow does not fit.
    #[inline(always)]
    pub(crate) fn pass(
        &mut self,
        track: Track,
        seen: &Seen,
        now: u64,
        len: u32,
    ) -> Result<(), Full> {
        match track {
            Track::Invalid => Ok(()),
            Track::Flow { slot, orig, .. } => {
                self.update(slot, seen.kind, orig, now);
                self.slots[slot].count(len);
                Ok(())
            }
            Track::Start { reuse, hash } => {
                let slot = match reuse {
                    Some(slot) => slot,
                    None => self.insert_slot(hash, now)?,
                };
                self.created += 1;
                let state = match seen.kind {
                    Kind::Tcp(_) => State::SynSent,
                    Kind::Udp => State::Udp,
                    Kind::EchoRequest | Kind::EchoReply => State::Icmp,
                };
                self.slots[slot] = Slot {
                    tuple: seen.tuple,
                    expires: now.saturating_add(self.timeout(state, 0)),
                    hash,
                    state,
                    flags: if seen.forward { flag::ORIG_IS_A } else { 0 },
                    ..EMPTY
                };
                self.slots[slot].count(len);
                Ok(())
            }
        }
    }

    /// Looks at the next `n` slots of the incremental sweep and removes the
    /// flows that have expired by `now`. A slot whose flow was removed is
    /// looked at again (a later flow may have shifted into it), so the cost
    /// is `n` slots plus one per flow removed.
    pub(crate) fn sweep(&mut self, now: u64, n: usize) {
        let mut seen = 0;
        while seen < n.min(self.slots.len()) {
            let s = &self.slots[self.cursor];
            if s.state != State::Empty && s.expires <= now {
                self.remove(self.cursor);
                self.expired += 1;
            } else {
                self.cursor = (self.cursor + 1) & self.mask;
                seen += 1;
            }
        }
    }

    /// The flows not expired at `now`, in slot order.
    pub(crate) fn flows(&self, now: u64) -> impl Iterator<Item = FlowInfo> + '_ {
        self.slots
            .iter()
            .filter(move |s| s.state != State::Empty && s.expires > now)
            .map(move |s| FlowInfo {
                tuple: s.tuple,
                orig_is_a: s.flags & flag::ORIG_IS_A != 0,
                state: s.state,
                replied: s.flags & flag::REPLIED != 0,
                idle: self
                    .timeout(s.state, s.flags)
                    .saturating_sub(s.expires.saturating_sub(now)),
                packets: s.packets,
                bytes: s.bytes(),
            })
    }

    /// Removes the flow of `tuple` (either direction); whether there was one.
    pub(crate) fn kill(&mut self, tuple: &Tuple) -> bool {
        let hash = self.hash(tuple);
        let home = hash as usize & self.mask;
        for d in 0..MAX_PROBE {
            let i = (home + d) & self.mask;
            let s = &self.slots[i];
            if s.state == State::Empty {
                return false;
            }
            if s.hash == hash && s.tuple == *tuple {
                self.remove(i);
                return true;
            }
        }
        false
    }

    /// Removes every flow; how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.live;
        self.slots.fill(EMPTY);
        self.live = 0;
        n
    }

    /// The state of the flow of `tuple`, if the table holds it (tests).
    #[cfg(test)]
    pub(crate) fn state_of(&self, tuple: &Tuple) -> Option<State> {
        let hash = self.hash(tuple);
        let home = hash as usize & self.mask;
        (0..MAX_PROBE)
            .map(|d| &self.slots[(home + d) & self.mask])
            .take_while(|s| s.state != State::Empty)
            .find(|s| s.hash == hash && s.tuple == *tuple)
            .map(|s| s.state)
    }

    /// The slot of the live flow of `tuple`.
    #[inline(always)]
    fn find(&mut self, tuple: &Tuple, hash: u32, now: u64) -> Option<usize> {
        let home = hash as usize & self.mask;
        for d in 0..MAX_PROBE {
            let i = (home + d) & self.mask;
            let s = &self.slots[i];
            if s.state == State::Empty {
                return None;
            }
            if s.hash == hash && s.tuple == *tuple {
                if s.expires <= now {
                    self.remove(i);
                    self.expired += 1;
                    return None;
                }
                return Some(i);
            }
        }
        None
    }

    /// A free slot for a flow whose tuple hashes to `hash` (and is not in the
    /// table), reclaiming expired flows when the table is full.
    fn insert_slot(&mut self, hash: u32, now: u64) -> Result<usize, Full> {
        if self.live >= self.max {
            if now < self.reclaim_after {
                return Err(Full);
            }
            self.sweep(now, RECLAIM);
            if self.live >= self.max {
                self.reclaim_after = now.saturating_add(RECLAIM_PAUSE_NS);
                return Err(Full);
            }
        }
        let home = hash as usize & self.mask;
        for d in 0..MAX_PROBE {
            let i = (home + d) & self.mask;
            if self.slots[i].state == State::Empty {
                self.live += 1;
                return Ok(i);
            }
        }
        Err(Full)
    }

    /// Hot reload: the flows of `old` (the replaced replica's table) move
    /// into this one, with their states and expiry times; this table's
    /// timeouts (the new config's) apply from each flow's next packet. With
    /// the same size, and the same hash seed or none pinned (`pinned`), the
    /// slots move as they are; otherwise each live flow is placed again.
    /// The flows that do not fit (a smaller `max_flows`) count as expired.
    pub(crate) fn take_over(&mut self, old: FlowTable, pinned: bool, now: u64) {
        let same_seed = old.seed == self.seed || !pinned;
        if old.max == self.max && old.slots.len() == self.slots.len() && same_seed {
            *self = FlowTable {
                timeouts: self.timeouts,
                ..old
            };
            return;
        }
        let mut lost = 0;
        let live = old.slots.iter().filter(|s| s.state != State::Empty);
        for s in live.filter(|s| s.expires > now) {
            let hash = self.hash(&s.tuple);
            match self.insert_slot(hash, now) {
                Ok(i) => self.slots[i] = Slot { hash, ..*s },
                Err(Full) => lost += 1,
            }
        }
        self.created = old.created;
        self.expired = old.expired + lost;
    }

    /// Frees slot `i`, shifting back the flows after it that may move closer
    /// to their home slot, so that lookups never need tombstones.
    fn remove(&mut self, mut i: usize) {
        self.live -= 1;
        loop {
            self.slots[i].state = State::Empty;
            let mut j = i;
            loop {
                j = (j + 1) & self.mask;
                let s = &self.slots[j];
                if s.state == State::Empty {
                    return;
                }
                let home = s.hash as usize & self.mask;
                // The flow at j may fill i when i lies between its home and j.
                if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(i) & self.mask) {
                    break;
                }
            }
            self.slots[i] = self.slots[j];
            i = j;
        }
    }

    /// Advances the flow in `slot` for a packet of kind `kind` sent by the
    /// originator (`orig`) or the responder, and pushes its expiry.
    #[inline(always)]
    fn update(&mut self, slot: usize, kind: Kind, orig: bool, now: u64) {
        let timeouts = &self.timeouts;
        let s = &mut self.slots[slot];
        if !orig {
            s.flags |= flag::REPLIED;
        }
        if let Kind::Tcp(f) = kind {
            let (state, flags) = tcp_next(s.state, s.flags, f, orig);
            s.state = state;
            s.flags = flags;
        }
        s.expires = now.saturating_add(timeout_of(timeouts, s.state, s.flags));
    }

    fn timeout(&self, state: State, flags: u8) -> u64 {
        timeout_of(&self.timeouts, state, flags)
    }
}

/// How long a flow in `state` with `flags` lives without traffic.
fn timeout_of(t: &Timeouts, state: State, flags: u8) -> u64 {
    match state {
        State::Empty => 0,
        State::SynSent | State::SynRecv => t.tcp_syn,
        State::Established => t.tcp_established,
        State::FinWait | State::LastAck => t.tcp_fin,
        State::TimeWait => t.tcp_time_wait,
        State::Close => t.tcp_close,
        State::Udp if flags & flag::REPLIED != 0 => t.udp_stream,
        State::Udp => t.udp,
        State::Icmp => t.icmp,
    }
}

/// The TCP state machine: the state and flags of a connection after a
/// segment with flags `f` from the originator (`orig`) or the responder.
///
/// It follows the handshake and the close closely enough to pick timeouts
/// (sequence numbers are not checked): SYN_SENT -> SYN_RECV on the
/// responder's SYN-ACK -> ESTABLISHED on the originator's ACK; a FIN from one
/// side -> FIN_WAIT, from both -> LAST_ACK, an ACK after both -> TIME_WAIT;
/// a RST from either side -> CLOSE.
pub(crate) fn tcp_next(state: State, flags: u8, f: u8, orig: bool) -> (State, u8) {
    if f & RST != 0 {
        return (State::Close, flags);
    }
    let mut state = state;
    let mut flags = flags;
    if f & SYN != 0 {
        if f & ACK != 0 && !orig && state == State::SynSent {
            state = State::SynRecv;
        }
        return (state, flags);
    }
    if f & ACK != 0 && orig && state == State::SynRecv {
        state = State::Established;
    }
    if f & FIN != 0 {
        flags |= if orig {
            flag::FIN_ORIG
        } else {
            flag::FIN_REPLY
        };
        let both = flags & (flag::FIN_ORIG | flag::FIN_REPLY) == flag::FIN_ORIG | flag::FIN_REPLY;
        if matches!(
            state,
            State::SynSent | State::SynRecv | State::Established | State::FinWait
        ) {
            state = if both { State::LastAck } else { State::FinWait };
        }
    } else if f & ACK != 0 && state == State::LastAck {
        state = State::TimeWait;
    }
    (state, flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuple::Tuple;

    const S: u64 = 1_000_000_000;

    fn timeouts() -> Timeouts {
        Timeouts {
            tcp_syn: 120 * S,
            tcp_established: 7200 * S,
            tcp_fin: 120 * S,
            tcp_time_wait: 120 * S,
            tcp_close: 10 * S,
            udp: 30 * S,
            udp_stream: 180 * S,
            icmp: 30 * S,
        }
    }

    /// A packet of flow `n` (distinct ports), from the originator side
    /// (`forward`) or back.
    fn pkt(n: u16, forward: bool, kind: Kind) -> Seen {
        let (src, dst) = ([0, 0x0a00_0102], [0, 0x0a00_0103]);
        let (sp, dp) = (10_000 + n, 80);
        let proto = match kind {
            Kind::Tcp(_) => 6,
            Kind::Udp => 17,
            _ => 1,
        };
        let (tuple, fwd) = if forward {
            Tuple::new(src, sp, dst, dp, proto, false)
        } else {
            Tuple::new(dst, dp, src, sp, proto, false)
        };
        Seen {
            tuple,
            forward: fwd,
            kind,
        }
    }

    /// Tracks and passes `seen`; returns what it was.
    fn go(t: &mut FlowTable, seen: Seen, now: u64) -> Track {
        let track = t.track(&seen, now);
        t.pass(track, &seen, now, 60).expect("fits");
        track
    }

    fn is_est(tr: Track) -> bool {
        matches!(
            tr,
            Track::Flow {
                established: true,
                ..
            }
        )
    }

    #[test]
    fn slots_are_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        let t = FlowTable::new(1000, timeouts());
        assert_eq!(t.capacity(), 2048);
    }

    #[test]
    fn flows_count_packets_and_bytes_and_can_be_killed() {
        let mut t = FlowTable::new(16, timeouts());
        let syn = pkt(1, true, Kind::Tcp(SYN));
        go(&mut t, syn, 0);
        go(&mut t, pkt(1, false, Kind::Tcp(SYN | ACK)), S);
        let tr = t.track(&pkt(1, true, Kind::Tcp(ACK)), 2 * S);
        t.pass(tr, &pkt(1, true, Kind::Tcp(ACK)), 2 * S, 70_000)
            .unwrap();
        go(&mut t, pkt(2, true, Kind::Udp), 2 * S);
        let flows: Vec<FlowInfo> = t.flows(3 * S).collect();
        assert_eq!(flows.len(), 2);
        let f = flows.iter().find(|f| f.tuple == syn.tuple).unwrap();
        assert_eq!((f.packets, f.bytes), (3, 70_120));
        assert_eq!((f.state, f.replied), (State::Established, true));
        assert_eq!(f.idle, S);
        // 48-bit byte counts carry across the split.
        let mut slot = EMPTY;
        slot.count(u32::MAX);
        slot.count(u32::MAX);
        assert_eq!(slot.bytes(), 2 * u64::from(u32::MAX));
        // Killed from either direction's tuple; then a non-SYN is invalid.
        let back = pkt(1, false, Kind::Tcp(ACK));
        assert!(t.kill(&back.tuple));
        assert!(!t.kill(&back.tuple));
        assert_eq!(t.track(&back, 3 * S), Track::Invalid);
        assert_eq!(t.len(), 1);
        assert_eq!(t.clear(), 1);
        assert_eq!(t.flows(3 * S).count(), 0);
    }

    #[test]
    fn tcp_handshake_data_and_close() {
        let mut t = FlowTable::new(16, timeouts());
        let syn = pkt(1, true, Kind::Tcp(SYN));
        assert!(matches!(
            go(&mut t, syn, 0),
            Track::Start { reuse: None, .. }
        ));
        assert_eq!(t.state_of(&syn.tuple), Some(State::SynSent));
        // A retransmitted SYN is still new (no reply yet).
        assert!(matches!(
            go(&mut t, syn, S),
            Track::Flow {
                orig: true,
                established: false,
                ..
            }
        ));
        assert!(is_est(go(
            &mut t,
            pkt(1, false, Kind::Tcp(SYN | ACK)),
            2 * S
        )));
        assert_eq!(t.state_of(&syn.tuple), Some(State::SynRecv));
        assert!(is_est(go(&mut t, pkt(1, true, Kind::Tcp(ACK)), 3 * S)));
        assert_eq!(t.state_of(&syn.tuple), Some(State::Established));
        go(&mut t, pkt(1, true, Kind::Tcp(FIN | ACK)), 4 * S);
        assert_eq!(t.state_of(&syn.tuple), Some(State::FinWait));
        go(&mut t, pkt(1, false, Kind::Tcp(FIN | ACK)), 5 * S);
        assert_eq!(t.state_of(&syn.tuple), Some(State::LastAck));
        go(&mut t, pkt(1, true, Kind::Tcp(ACK)), 6 * S);
        assert_eq!(t.state_of(&syn.tuple), Some(State::TimeWait));
        // Time-wait lasts tcp_time_wait, not tcp_established.
        assert!(is_est(t.track(&pkt(1, false, Kind::Tcp(ACK)), 125 * S)));
        assert_eq!(
            t.track(&pkt(1, false, Kind::Tcp(ACK)), 126 * S),
            Track::Invalid
        );
        assert_eq!((t.len(), t.created, t.expired), (0, 1, 1));
    }

    #[test]
    fn a_new_syn_reopens_a_closed_connection() {
        let mut t = FlowTable::new(16, timeouts());
        let syn = pkt(2, true, Kind::Tcp(SYN));
        go(&mut t, syn, 0);
        go(&mut t, pkt(2, false, Kind::Tcp(RST | ACK)), S);
        assert_eq!(t.state_of(&syn.tuple), Some(State::Close));
        // The reset flow lives tcp_close (10s): a stray ACK within it is tracked.
        assert!(matches!(
            t.track(&pkt(2, true, Kind::Tcp(ACK)), 5 * S),
            Track::Flow { .. }
        ));
        // A SYN (from either side) starts over in the same slot.
        let tr = go(&mut t, pkt(2, false, Kind::Tcp(SYN)), 6 * S);
        assert!(matches!(tr, Track::Start { reuse: Some(_), .. }));
        assert_eq!(t.state_of(&syn.tuple), Some(State::SynSent));
        assert_eq!((t.len(), t.created), (1, 2));
        // The responder is now the old originator: its SYN-ACK... comes from `true`.
        assert!(is_est(go(
            &mut t,
            pkt(2, true, Kind::Tcp(SYN | ACK)),
            7 * S
        )));
        assert_eq!(t.state_of(&syn.tuple), Some(State::SynRecv));
        // A close by RST expires after tcp_close.
        go(&mut t, pkt(2, true, Kind::Tcp(RST)), 8 * S);
        assert_eq!(
            t.track(&pkt(2, true, Kind::Tcp(ACK)), 18 * S),
            Track::Invalid
        );
    }

    #[test]
    fn only_flow_openers_start_flows() {
        let mut t = FlowTable::new(16, timeouts());
        for k in [
            Kind::Tcp(ACK),
            Kind::Tcp(SYN | ACK),
            Kind::Tcp(FIN),
            Kind::Tcp(SYN | RST),
            Kind::EchoReply,
        ] {
            assert_eq!(t.track(&pkt(3, true, k), 0), Track::Invalid, "{k:?}");
        }
        assert!(matches!(
            t.track(&pkt(3, true, Kind::Udp), 0),
            Track::Start { .. }
        ));
        assert!(matches!(
            t.track(&pkt(3, true, Kind::EchoRequest), 0),
            Track::Start { .. }
        ));
        assert_eq!(t.len(), 0, "tracking alone creates nothing");
    }

    #[test]
    fn udp_and_icmp_timeouts() {
        let mut t = FlowTable::new(16, timeouts());
        let q = pkt(4, true, Kind::Udp);
        go(&mut t, q, 0);
        // Unreplied: 30 s.
        assert_eq!(
            t.track(&pkt(4, false, Kind::Udp), 30 * S),
            Track::Start {
                reuse: None,
                hash: t.hash(&q.tuple)
            },
            "expired: the answer would open a flow of its own"
        );
        go(&mut t, q, 40 * S);
        assert!(is_est(go(&mut t, pkt(4, false, Kind::Udp), 41 * S)));
        // Replied: 180 s, and the originator's packets are established too.
        assert!(is_est(t.track(&q, 220 * S)));
        assert!(is_est(t.track(&q, 221 * S - 1)));
        assert!(matches!(t.track(&q, 221 * S), Track::Start { .. }));

        let ping = pkt(5, true, Kind::EchoRequest);
        go(&mut t, ping, 0);
        // A request from the other side is not a reply.
        assert_eq!(
            t.track(&pkt(5, false, Kind::EchoRequest), S),
            Track::Invalid
        );
        assert!(is_est(go(&mut t, pkt(5, false, Kind::EchoReply), S)));
        assert_eq!(t.track(&pkt(5, true, Kind::EchoReply), S), Track::Invalid);
        assert!(is_est(t.track(&pkt(5, false, Kind::EchoReply), 31 * S - 1)));
        assert_eq!(
            t.track(&pkt(5, false, Kind::EchoReply), 31 * S),
            Track::Invalid
        );
    }

    #[test]
    fn full_table_refuses_then_reclaims_expired_flows() {
        let mut t = FlowTable::new(4, timeouts());
        for n in 0..4 {
            go(&mut t, pkt(n, true, Kind::Udp), 0);
        }
        let fifth = pkt(9, true, Kind::Udp);
        let tr = t.track(&fifth, S);
        assert_eq!(t.pass(tr, &fifth, S, 60), Err(Full));
        assert_eq!(t.len(), 4);
        // Existing flows still pass while full.
        assert!(is_est(go(&mut t, pkt(0, false, Kind::Udp), S)));
        // Once the others expire, the full-table sweep makes room.
        let tr = t.track(&fifth, 31 * S);
        assert_eq!(t.pass(tr, &fifth, 31 * S, 60), Ok(()));
        assert_eq!(t.len(), 2, "flow 0 (replied) and the new one");
        assert_eq!(t.expired, 3);
    }

    #[test]
    fn a_full_table_refuses_at_once_for_a_pause_after_a_fruitless_sweep() {
        let mut t = FlowTable::new(4, timeouts());
        for n in 0..4 {
            go(&mut t, pkt(n, true, Kind::Udp), 0);
        }
        // All four alive (30 s): the sweep frees nothing, the flow is refused.
        let fifth = pkt(9, true, Kind::Udp);
        let early = 30 * S - 1;
        let tr = t.track(&fifth, early);
        assert_eq!(t.pass(tr, &fifth, early, 60), Err(Full));
        // Expired now, but within the pause: refused without a sweep.
        let tr = t.track(&fifth, 30 * S);
        assert_eq!(t.pass(tr, &fifth, 30 * S, 60), Err(Full));
        assert_eq!((t.len(), t.expired), (4, 0));
        // After it, the sweep makes room.
        let later = early + RECLAIM_PAUSE_NS;
        let tr = t.track(&fifth, later);
        assert_eq!(t.pass(tr, &fifth, later, 60), Ok(()));
        assert_eq!((t.len(), t.expired), (1, 4));
    }

    #[test]
    fn collisions_probe_and_removal_keeps_every_flow_reachable() {
        // Many flows in a small table: clusters, and wrap-around at the end.
        let mut t = FlowTable::with_seed(24, timeouts(), 0);
        let flows: Vec<Seen> = (0..24).map(|n| pkt(n, n % 2 == 0, Kind::Udp)).collect();
        for (i, f) in flows.iter().enumerate() {
            go(&mut t, *f, i as u64);
        }
        assert_eq!(t.len(), 24);
        // Remove every third, then check that the others are all still found.
        for (i, f) in flows.iter().enumerate() {
            if i % 3 == 0 {
                let s = t.find(&f.tuple, t.hash(&f.tuple), 0).unwrap();
                t.remove(s);
            }
        }
        for (i, f) in flows.iter().enumerate() {
            assert_eq!(
                t.state_of(&f.tuple).is_some(),
                i % 3 != 0,
                "flow {i} after removals"
            );
        }
        // Every remaining flow sits within MAX_PROBE of its home.
        for (i, s) in t.slots.iter().enumerate() {
            if s.state != State::Empty {
                let home = s.hash as usize & t.mask;
                assert!((i.wrapping_sub(home) & t.mask) < MAX_PROBE);
            }
        }
    }

    #[test]
    fn removal_shifts_back_across_the_end_of_the_table() {
        let mut t = FlowTable::with_seed(16, timeouts(), 1);
        assert_eq!(t.mask, 31);
        let mk = |home: usize, tag: u64| Slot {
            hash: home as u32,
            state: State::Udp,
            expires: u64::MAX,
            tuple: Tuple {
                rest: tag,
                ..Tuple::default()
            },
            ..EMPTY
        };
        // A cluster from 28 to 1: tags 1..=6, homes 28, 29 (at its home), 28, 30, 31, 0.
        let cluster = [
            (28, 28, 1),
            (29, 29, 2),
            (30, 28, 3),
            (31, 30, 4),
            (0, 31, 5),
            (1, 0, 6),
        ];
        for (at, home, tag) in cluster {
            t.slots[at] = mk(home, tag);
        }
        t.live = 6;
        t.remove(28);
        let tag = |i: usize| (t.slots[i].state != State::Empty).then_some(t.slots[i].tuple.rest);
        // 3 moves to 28; 2 stays at its home; 4, 5 and 6 move back one each.
        assert_eq!(
            [28, 29, 30, 31, 0, 1].map(tag),
            [Some(3), Some(2), Some(4), Some(5), Some(6), None]
        );
        assert_eq!(t.live, 5);
    }

    #[test]
    fn probe_limit_refuses_rather_than_scanning() {
        // A table whose every tuple hashes home to slot 0 cannot exist with a
        // good hash, so fill a probe window by hand.
        let mut t = FlowTable::with_seed(1000, timeouts(), 7);
        let seen = pkt(1, true, Kind::Udp);
        let hash = t.hash(&seen.tuple);
        let home = hash as usize & t.mask;
        for d in 0..MAX_PROBE {
            let i = (home + d) & t.mask;
            t.slots[i] = Slot {
                hash: (hash as usize & !t.mask | i) as u32,
                state: State::Udp,
                expires: u64::MAX,
                ..EMPTY
            };
            t.live += 1;
        }
        let tr = t.track(&seen, 0);
        assert!(matches!(tr, Track::Start { .. }));
        assert_eq!(t.pass(tr, &seen, 0, 60), Err(Full));
    }

    #[test]
    fn sweep_removes_expired_flows_incrementally() {
        let mut t = FlowTable::new(100, timeouts());
        for n in 0..100 {
            go(&mut t, pkt(n, true, Kind::EchoRequest), 0);
        }
        t.sweep(29 * S, t.capacity());
        assert_eq!(t.len(), 100);
        t.sweep(30 * S, t.capacity() / 2);
        let half = t.len();
        assert!(half < 100 && half > 0, "{half}");
        t.sweep(30 * S, t.capacity() / 2);
        assert_eq!((t.len(), t.expired), (0, 100));
    }

    #[test]
    fn tcp_state_machine_edges() {
        use State::*;
        // RST from anywhere closes.
        for s in [SynSent, SynRecv, Established, FinWait, LastAck, TimeWait] {
            assert_eq!(tcp_next(s, 0, RST | ACK, false).0, Close);
        }
        // The originator's SYN-ACK does not advance SYN_SENT.
        assert_eq!(tcp_next(SynSent, 0, SYN | ACK, true).0, SynSent);
        // An ACK+FIN from the originator right after the SYN-ACK: established, then closing.
        let (s, f) = tcp_next(SynRecv, 0, ACK | FIN, true);
        assert_eq!((s, f & flag::FIN_ORIG), (FinWait, flag::FIN_ORIG));
        // A second FIN from the same side is not both.
        assert_eq!(tcp_next(FinWait, f, ACK | FIN, true).0, FinWait);
        let (s, f) = tcp_next(FinWait, f, FIN | ACK, false);
        assert_eq!(s, LastAck);
        assert_eq!(tcp_next(s, f, ACK, false).0, TimeWait);
        // Data in established stays established.
        assert_eq!(tcp_next(Established, 0, ACK, false).0, Established);
    }
}
