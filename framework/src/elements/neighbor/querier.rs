//! The resolver shared by ArpQuerier and NdQuerier: a bounded neighbour
//! table, requests, learning, the per-burst sweep and the timer.

use std::hash::Hash;

use super::mac_string;
use super::table::{Limits, Table, Verdict};
use crate::element::{handler, Context, Element, HandlerCx, HandlerResult, Output};
use crate::packet::{Batch, Packet};
use crate::wire::{L3Kind, ParseStatus};

hpio_nf::drop_reasons! {
    pub(crate) DROP_REASONS = [
        /// The next hop is being resolved and already holds `hold` packets.
        pub(crate) HOLD_FULL = "hold-full",
        /// Every entry of the table is in use.
        pub(crate) TABLE_FULL = "table-full",
        /// The next hop did not answer `tries` requests (or the run ended).
        pub(crate) UNRESOLVED = "unresolved",
        /// Not a packet of the family (input 0) or not a neighbour message (input 1).
        pub(crate) WRONG_INPUT = "wrong-input",
    ]
}

hpio_nf::counters! {
    pub(crate) COUNTERS = [
        REQUESTS = "requests": "Requests (ARP requests, neighbour solicitations) sent",
        LEARNED = "learned": "Messages that resolved or refreshed an entry",
        NO_BUFFER = "no-buffer": "Requests not sent for want of a free packet",
    ]
}

/// Retries and expiry checks per burst.
const SWEEP: usize = 8;

/// What differs between ARP and neighbour discovery.
pub(crate) trait Protocol: Send + 'static {
    /// A next hop's address.
    type Key: Copy + Eq + Hash + Default + Send;
    /// Table column naming the address.
    const COLUMN: &'static str;
    /// The next hop of an outgoing packet, `None` when not of the family.
    fn next_hop(&self, pkt: &mut Packet) -> Option<Self::Key>;
    /// Writes a request for `key` into `frame` (at least 128 bytes); its length.
    fn request(&self, key: Self::Key, frame: &mut [u8]) -> usize;
    /// From an incoming neighbour message: (sender, its MAC, whether it
    /// was meant for us, so that an entry is made for it).
    fn learn(&self, frame: &[u8]) -> Option<(Self::Key, [u8; 6], bool)>;
    /// The router's Ethernet address.
    fn mac(&self) -> [u8; 6];
    /// How a key reads in the `table` handler.
    fn show(key: Self::Key) -> String;
}

/// Resolves next hops with protocol `P`.
pub(crate) struct Querier<P: Protocol> {
    proto: P,
    table: Table<P::Key>,
    /// Scratch space, allocated once: packets released or dropped together,
    /// next hops to ask again.
    released: Vec<Packet>,
    retry: Vec<P::Key>,
    requests: u64,
    learned: u64,
    no_buffer: u64,
}

impl<P: Protocol> Querier<P> {
    /// An empty querier.
    pub(crate) fn new(proto: P, limits: Limits) -> Querier<P> {
        Querier {
            proto,
            table: Table::new(limits),
            released: Vec::with_capacity(16 * limits.hold.max(1)),
            retry: Vec::with_capacity(SWEEP),
            requests: 0,
            learned: 0,
            no_buffer: 0,
        }
    }

    /// The querier with the static entries `pinned` (next hop, its address).
    pub(crate) fn with_static(mut self, pinned: &[(P::Key, [u8; 6])]) -> Querier<P> {
        for &(key, mac) in pinned {
            self.table.pin(key, mac);
        }
        self
    }

    /// Sends a request for `key` to output 0.
    fn request(&mut self, cx: &mut Context<'_>, key: P::Key, out: &mut Output) {
        let Some(mut p) = cx.alloc() else {
            self.no_buffer += 1;
            return;
        };
        if p.set_len(128).is_err() {
            cx.free(p);
            self.no_buffer += 1;
            return;
        }
        let n = self.proto.request(key, p.data_mut());
        let _ = p.set_len(n);
        p.invalidate_headers();
        self.requests += 1;
        out.push(0, p);
    }

    /// Writes the Ethernet addresses of `pkt` and sends it.
    #[inline]
    fn send(&self, mut pkt: Packet, mac: [u8; 6], out: &mut Output) {
        let d = pkt.data_mut();
        d[..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&self.proto.mac());
        out.push(0, pkt);
    }

    /// Rewrites, in place, the Ethernet addresses of the packets from the
    /// start of `batch` that go to the neighbour the last packet resolved
    /// to (a router's default gateway, usually), while it is usable; how
    /// many. The rest take [`Querier::route`].
    #[inline(always)]
    fn send_run(&self, batch: &mut Batch, now: u64) -> usize {
        let Some((key, mac)) = self.table.last_resolved(now) else {
            return 0;
        };
        let src = self.proto.mac();
        let mut n = 0;
        for pkt in batch.iter_mut() {
            if self.proto.next_hop(pkt) != Some(key) {
                break;
            }
            // The parse found the Ethernet header whole.
            let Some(eth) = pkt.data_mut().first_chunk_mut::<12>() else {
                break;
            };
            eth[..6].copy_from_slice(&mac);
            eth[6..].copy_from_slice(&src);
            n += 1;
        }
        n
    }

    fn route(&mut self, cx: &mut Context<'_>, mut pkt: Packet, out: &mut Output) {
        let Some(hop) = self.proto.next_hop(&mut pkt) else {
            out.drop(pkt, WRONG_INPUT);
            return;
        };
        match self.table.resolve(hop, pkt, cx.now()) {
            Verdict::Send(mac, pkt) => self.send(pkt, mac, out),
            Verdict::Held(true) => self.request(cx, hop, out),
            Verdict::Held(false) => {}
            Verdict::HoldFull(pkt) => out.drop(pkt, HOLD_FULL),
            Verdict::TableFull(pkt) => out.drop(pkt, TABLE_FULL),
        }
    }

    fn learn(&mut self, cx: &mut Context<'_>, pkt: Packet, out: &mut Output) {
        let Some((key, mac, for_us)) = self.proto.learn(pkt.data()) else {
            out.drop(pkt, WRONG_INPUT);
            return;
        };
        cx.free(pkt);
        let mut released = std::mem::take(&mut self.released);
        self.table.learn(key, mac, cx.now(), for_us, &mut released);
        self.learned += 1;
        for p in released.drain(..) {
            self.send(p, mac, out);
        }
        self.released = released;
    }

    /// Retries, gives up on and expires entries.
    fn sweep(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        if !self.table.sweep_due(cx.now()) {
            return;
        }
        let mut retry = std::mem::take(&mut self.retry);
        let mut dropped = std::mem::take(&mut self.released);
        self.table.sweep(SWEEP, cx.now(), &mut retry, &mut dropped);
        for hop in retry.drain(..) {
            self.request(cx, hop, out);
        }
        for p in dropped.drain(..) {
            out.drop(p, UNRESOLVED);
        }
        self.retry = retry;
        self.released = dropped;
    }
}

impl<P: Protocol> Element for Querier<P> {
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        self.sweep(cx, out);
        if input == 0 {
            let n = self.send_run(batch, cx.now());
            out.push_first(0, batch, n);
        }
        for pkt in batch.drain(..) {
            if input == 0 {
                self.route(cx, pkt, out);
            } else {
                self.learn(cx, pkt, out);
            }
        }
        if let Some(t) = self.table.next_due() {
            cx.wake_at(t);
        }
    }

    /// On time, without traffic: retries, gives up on unresolved
    /// neighbours (their held packets dropped as `unresolved`), frees
    /// expired entries; then asks for the next time work is due.
    fn timer(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        self.sweep(cx, out);
        self.table.age(cx.now());
        if let Some(t) = self.table.next_due() {
            cx.wake_at(t);
        }
    }

    fn finish(&mut self, _cx: &mut Context<'_>, out: &mut Output) {
        let mut held = Vec::new();
        self.table.drain_held(&mut held);
        for p in held {
            out.drop(p, UNRESOLVED);
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(REQUESTS, self.requests);
        report(LEARNED, self.learned);
        report(NO_BUFFER, self.no_buffer);
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        if name != "table" {
            return Err(handler::no_such_handler(name));
        }
        let rows: Vec<_> = self
            .table
            .entries()
            .map(|e| {
                let mut row = handler::json!({
                    "mac": e.mac.map_or("pending".to_string(), mac_string),
                    "age_ms": cx.now().saturating_sub(e.at) / 1_000_000,
                    "held": e.held.len(),
                });
                row[P::COLUMN] = P::show(e.key).into();
                row
            })
            .collect();
        Ok(rows.into())
    }
}

/// The bytes from the IP header of `pkt` on, when its parse found an IP
/// header of `kind` whole enough to read (the next hop's key comes from it).
#[inline(always)]
pub(super) fn ip_header(pkt: &mut Packet, kind: L3Kind) -> Option<&[u8]> {
    let h = pkt.headers();
    if h.l3 != kind
        || matches!(
            h.status,
            ParseStatus::L2Truncated | ParseStatus::L3Malformed
        )
    {
        return None;
    }
    let off = usize::from(h.l3_off);
    pkt.data().get(off..)
}
