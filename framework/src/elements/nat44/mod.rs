//! `Nat44`: source NAT (masquerade) for IPv4 with endpoint-independent
//! mapping, ICMP error translation and static port forwards.

mod frag;
mod handlers;
mod icmp;
mod params;
mod table;
mod translate;

use std::sync::Arc;

use self::frag::{Datagram, Frags, Translation};
use self::params::{configure, PARAMS};
use self::table::{key, Table, Timeouts, CLOSING, SEEN_IN, SEEN_OUT, TCP, UDP};
use self::translate::{rewrite, rewrite_addr, rewrite_kept, End};
use crate::element::{
    ClassInfo, Context, Element, ElementClass, HandlerCx, HandlerResult, Output, PortCount,
};
use crate::packet::{Batch, Packet};
use crate::wire::napt;
use crate::wire::{be16, tcp_flags, FragKind, Headers, Ipv4Packet, L3Kind, ParseStatus};
use crate::wire::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// From outside, with no mapping (unsolicited), or an ICMP error
        /// about a flow with none.
        NO_MAPPING = "no-mapping",
        /// No mapping slot or external port left for a new mapping.
        TABLE_FULL = "table-full",
        /// From outside, for an external port another worker owns.
        OTHER_WORKER = "other-worker",
        /// A later IPv4 fragment (no ports to translate by) whose first
        /// fragment was not seen in the last 15 s on this input (it came
        /// first, was lost or dropped, or its memory was taken by a newer
        /// datagram).
        FRAGMENT = "fragment",
        /// Headers cut short or inconsistent.
        MALFORMED = "malformed",
        /// An IP protocol other than TCP, UDP, ICMP, or an ICMP type
        /// that is neither a query nor an error.
        UNSUPPORTED = "unsupported",
        /// Not IPv4, under `non_ipv4 = "drop"`.
        NON_IPV4 = "non-ipv4",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        MAPPINGS = "mappings": "mappings live now (static forwards included)",
        CREATED = "mappings-created": "dynamic mappings made",
        EXPIRED = "mappings-expired": "mappings removed after their idle timeout",
        ICMP_ERRORS = "icmp-errors": "ICMP errors translated (both ways)",
        FRAGMENTS = "fragments-translated": "later IPv4 fragments translated like their first",
        HAIRPINNED = "hairpinned": "inside packets to an external endpoint sent back inside",
        PASSED_NON_IPV4 = "passed-non-ipv4": "frames other than IPv4 passed unchanged",
    ]
}

hpio_nf::choice! {
    /// What to do with frames other than IPv4 (`non_ipv4`).
    enum NonIpv4 {
        Pass = "pass",
        Drop = "drop",
    }
}

hpio_nf::choice! {
    /// The protocol of a static forward.
    enum FwdProto {
        Tcp = "tcp",
        Udp = "udp",
    }
}

/// Packets whose lookups [`Nat44::outbound`] overlaps.
const GROUP: usize = 32;

/// Packets per mapping slot the incremental expiry sweep looks at.
const PACKETS_PER_SWEPT_SLOT: usize = 4;

const DESCRIPTION: &str = include_str!("doc.txt");

/// The `Nat44` element class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Nat44",
        summary: "source NAT for IPv4 (masquerade, RFC 4787 endpoint-independent mapping) \
                  with ICMP error translation and static port forwards",
        description: DESCRIPTION,
        inputs: PortCount::Fixed(2),
        outputs: PortCount::Fixed(2),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: handlers::HANDLERS,
        example: r#"[elements.nat]
class = "Nat44"
external = ["192.0.2.1"]
ports = "1024-65535"
max_mappings = 65536
timeouts = { udp = "2m" }
forwards = [{ proto = "tcp", port = 8080, to = "10.0.1.2:80" }]
"#,
        see_also: &["Firewall", "Policer"],
    },
    configure,
};

/// A static forward, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Forward {
    proto: u8,
    ext_idx: u8,
    ext_port: u16,
    addr: u32,
    port: u16,
}

/// The configuration every replica shares.
#[derive(Debug, Clone)]
struct Shared {
    externals: Vec<u32>,
    ports: (u16, u16),
    max: usize,
    timeouts: Timeouts,
    forwards: Vec<Forward>,
    non_ipv4: NonIpv4,
    seed: Option<u64>,
    workers: usize,
}

impl Shared {
    /// The ports worker `w` hands out: its share of the range.
    fn slice(&self, w: usize) -> (u16, usize) {
        let len = (self.ports.1 - self.ports.0) as usize + 1;
        let workers = self.workers.max(1);
        let (a, b) = (len * w / workers, len * (w + 1) / workers);
        (self.ports.0 + a as u16, b - a)
    }
}

/// A worker's replica.
struct Nat44 {
    shared: Arc<Shared>,
    table: Table,
    frags: Frags,
    /// The lowest external address and the span up to the highest: a
    /// quick test of whether a destination may be external.
    ext_lo: u32,
    ext_span: u32,
    icmp_errors: u64,
    hairpinned: u64,
    passed_non_ipv4: u64,
}

impl Nat44 {
    fn new(shared: Arc<Shared>, worker: usize) -> Nat44 {
        let seed = shared.seed.unwrap_or_else(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(worker)
        });
        let mut table = Table::new(
            shared.max,
            shared.forwards.len(),
            &shared.externals,
            shared.slice(worker),
            shared.timeouts,
            seed,
        );
        for f in &shared.forwards {
            table.add_static(f.proto, f.addr, f.port, f.ext_idx, f.ext_port);
        }
        let ext_lo = shared.externals.iter().copied().min().unwrap_or(0);
        let ext_hi = shared.externals.iter().copied().max().unwrap_or(0);
        Nat44 {
            shared,
            table,
            frags: Frags::new(),
            ext_lo,
            ext_span: ext_hi - ext_lo,
            icmp_errors: 0,
            hairpinned: 0,
            passed_non_ipv4: 0,
        }
    }

    /// Inside to outside: the source becomes the mapping's external
    /// endpoint. In groups of [`GROUP`] packets: their keys first (loading
    /// their index lines), then their lookups (loading their mappings),
    /// then the translations, so that the memory accesses of a group
    /// overlap rather than each packet waiting for its own.
    #[inline(always)]
    fn outbound(&mut self, batch: &mut Batch, now: u64, out: &mut Output) {
        while !batch.is_empty() {
            let n = batch.len().min(GROUP);
            let (mut keys, mut dsts) = ([0u64; GROUP], [0u32; GROUP]);
            for ((k, d), pkt) in keys.iter_mut().zip(&mut dsts).zip(batch.iter_mut()) {
                (*k, *d) = out_key(pkt);
                if *k != 0 {
                    self.table.touch_inside(*k);
                }
            }
            let mut slots = [u32::MAX; GROUP];
            for (s, &k) in slots.iter_mut().zip(&keys[..n]) {
                if let Some(found) = (k != 0).then(|| self.table.find_inside(k)).flatten() {
                    self.table.touch(found);
                    *s = found;
                }
            }
            for (i, pkt) in batch.drain(..n).enumerate() {
                if self.translate_out(pkt, (keys[i], dsts[i]), slots[i], now, out) {
                    // A mapping made for this packet may have taken the
                    // place of one looked up for a later one (an expired
                    // one reclaimed): those look again.
                    slots[i + 1..].fill(u32::MAX);
                }
            }
        }
    }

    /// One packet of [`Nat44::outbound`]: `k` its key (0: not plain TCP or
    /// UDP) and `dst` its destination address, `slot` its mapping as looked
    /// up (`u32::MAX`: none). Returns whether mappings were removed to make
    /// a new one.
    #[inline(always)]
    fn translate_out(
        &mut self,
        mut pkt: Packet,
        (k, dst): (u64, u32),
        slot: u32,
        now: u64,
        out: &mut Output,
    ) -> bool {
        let h = pkt.headers();
        let removals = self.table.removals;
        if k == 0 {
            self.rare(&h, pkt, 0, now, out);
            return self.table.removals != removals;
        }
        let slot = match slot {
            s if s != u32::MAX => s,
            _ => match self.table.find_inside(k) {
                Some(s) => s,
                None => match self.table.create(key_class(k), key_addr(k), k as u16, now) {
                    Ok(s) => s,
                    Err(_) => {
                        out.drop(pkt, TABLE_FULL);
                        return self.table.removals != removals;
                    }
                },
            },
        };
        let (l3, l4) = (h.l3_off as usize, h.l4_off as usize);
        let f = pkt.data_mut();
        let m = self.table.get_mut(slot);
        m.last = now;
        m.packets += 1;
        if m.proto == TCP {
            m.tcp = tcp_out(m.tcp, tcp_flags_of(f, l4));
        }
        let (idx, eport, d) = (m.ext_idx, m.ext_port, (m.d_ip, m.d_l4));
        let ext = self.table.externals[idx as usize];
        rewrite_kept(f, (l3, l4), h.l4_proto, End::Src, (ext, eport), d);
        // One test on the common path for the two rare cases: a
        // destination that may be external (hairpinning) or a first
        // fragment (remembered for the later ones).
        if (dst.wrapping_sub(self.ext_lo) <= self.ext_span) | (h.frag == FragKind::First) {
            self.out_rare(&h, pkt, (key_addr(k), dst), now, out);
        } else {
            out.push(0, pkt);
        }
        self.table.removals != removals
    }

    /// The end of [`Nat44::translate_out`] for a packet, its source
    /// translated, that may be hairpinned or is a first fragment (`orig`:
    /// its source and destination before).
    #[cold]
    #[inline(never)]
    fn out_rare(
        &mut self,
        h: &Headers,
        mut pkt: Packet,
        orig: (u32, u32),
        now: u64,
        out: &mut Output,
    ) {
        let (l3, l4) = (h.l3_off as usize, h.l4_off as usize);
        let f = pkt.data_mut();
        let mut output = 0;
        if self.is_external(orig.1) {
            if let Err(r) = self.hairpin(f, l3, l4, h.l4_proto, now) {
                out.drop(pkt, r);
                return;
            }
            output = 1;
        }
        if h.frag == FragKind::First {
            self.first_fragment(0, f, l3, orig, output, now);
        }
        out.push(output, pkt);
    }

    /// Whether `addr` is one of the external addresses.
    #[inline(always)]
    fn is_external(&self, addr: u32) -> bool {
        addr.wrapping_sub(self.ext_lo) <= self.ext_span && self.table.externals.contains(&addr)
    }

    /// Hairpinning (RFC 4787 REQ-9): a TCP or UDP packet from inside to an
    /// external endpoint, its source already translated, gets the
    /// destination of that endpoint's mapping (a dynamic one or a static
    /// forward) and goes back inside; with no mapping it is dropped as
    /// `no-mapping`, as it would be coming from outside.
    #[cold]
    #[inline(never)]
    fn hairpin(
        &mut self,
        f: &mut [u8],
        l3: usize,
        l4: usize,
        proto: u8,
        now: u64,
    ) -> Result<(), crate::element::DropReason> {
        let class = if proto == IPPROTO_TCP { TCP } else { UDP };
        let dst: u32 = Ipv4Packet::new_unchecked(&f[l3..]).dst_addr().into();
        let dport = be16(f, l4 + napt::DST_PORT);
        let slot = self
            .live_outside(key(class, dst, dport), now)
            .ok_or(NO_MAPPING)?;
        let m = self.table.get_mut(slot);
        (m.last, m.packets) = (now, m.packets + 1);
        if class == TCP {
            m.tcp = tcp_in(m.tcp, tcp_flags_of(f, l4));
        }
        let (addr, port) = (m.in_addr, m.in_port);
        rewrite(f, l3, l4, proto, End::Dst, addr, port, true);
        self.hairpinned += 1;
        Ok(())
    }

    /// Remembers how the first fragment of a datagram from `input` was
    /// translated (`orig`: its source and destination before; the frame
    /// holds them after), for its later fragments.
    #[cold]
    #[inline(never)]
    fn first_fragment(
        &mut self,
        input: usize,
        f: &[u8],
        l3: usize,
        (src, dst): (u32, u32),
        output: usize,
        now: u64,
    ) {
        let after = Datagram::of(f, l3);
        let to = Translation {
            src: after.src,
            dst: after.dst,
            output: output as u8,
        };
        self.frags
            .remember(input, Datagram { src, dst, ..after }, to, now);
    }

    /// A later fragment (no transport header) from `input`: translated as
    /// its datagram's first fragment was, to that one's output.
    fn later_fragment(
        &mut self,
        f: &mut [u8],
        l3: usize,
        input: usize,
        now: u64,
    ) -> Result<usize, crate::element::DropReason> {
        let d = Datagram::of(f, l3);
        let to = self.frags.recall(input, &d, now).ok_or(FRAGMENT)?;
        if to.src != d.src {
            rewrite_addr(f, l3, End::Src, to.src);
        }
        if to.dst != d.dst {
            rewrite_addr(f, l3, End::Dst, to.dst);
        }
        self.frags.translated += 1;
        Ok(to.output as usize)
    }

    /// Outside to inside: the destination becomes the mapping's internal endpoint.
    #[inline(always)]
    fn inbound(&mut self, batch: &mut Batch, now: u64, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            let h = pkt.headers();
            let class = match h.l4_proto {
                IPPROTO_TCP => TCP,
                IPPROTO_UDP => UDP,
                _ => u8::MAX,
            };
            if (h.l3 != L3Kind::Ipv4) | (h.status != ParseStatus::Ok) | (h.frag == FragKind::Later)
                || class == u8::MAX
            {
                self.rare(&h, pkt, 1, now, out);
                continue;
            }
            let (l3, l4) = (h.l3_off as usize, h.l4_off as usize);
            let f = pkt.data_mut();
            let dst: u32 = Ipv4Packet::new_unchecked(&f[l3..]).dst_addr().into();
            let dport = be16(f, l4 + napt::DST_PORT);
            let Some(slot) = self.live_outside(key(class, dst, dport), now) else {
                let reason = self.miss_reason(dport);
                out.drop(pkt, reason);
                continue;
            };
            let m = self.table.get_mut(slot);
            m.last = now;
            m.packets += 1;
            if class == TCP {
                m.tcp = tcp_in(m.tcp, tcp_flags_of(f, l4));
            }
            let (addr, port) = (m.in_addr, m.in_port);
            rewrite(f, l3, l4, h.l4_proto, End::Dst, addr, port, true);
            if h.frag == FragKind::First {
                let src = Ipv4Packet::new_unchecked(&f[l3..]).src_addr().into();
                self.first_fragment(1, f, l3, (src, dst), 1, now);
            }
            out.push(1, pkt);
        }
    }

    /// The live mapping of external endpoint `k`: an expired one met here
    /// is removed.
    #[inline]
    fn live_outside(&mut self, k: u64, now: u64) -> Option<u32> {
        let slot = self.table.find_outside(k)?;
        if self.table.get(slot).expired(&self.table.timeouts, now) {
            self.table.remove(slot);
            self.table.expired += 1;
            return None;
        }
        Some(slot)
    }

    /// Why an outside packet to external port `port` found no mapping.
    #[cold]
    fn miss_reason(&self, port: u16) -> crate::element::DropReason {
        let (first, last) = self.shared.ports;
        if (first..=last).contains(&port) && !self.table.owns_port(port) {
            OTHER_WORKER
        } else {
            NO_MAPPING
        }
    }

    /// Everything but plain TCP and UDP over IPv4: other frames, fragments,
    /// malformed headers, ICMP.
    #[cold]
    #[inline(never)]
    fn rare(&mut self, h: &Headers, mut pkt: Packet, input: usize, now: u64, out: &mut Output) {
        if h.l3 != L3Kind::Ipv4 {
            match self.shared.non_ipv4 {
                NonIpv4::Pass => {
                    self.passed_non_ipv4 += 1;
                    out.push(input, pkt);
                }
                NonIpv4::Drop => out.drop(pkt, NON_IPV4),
            }
            return;
        }
        let (l3, f) = (h.l3_off as usize, pkt.data_mut());
        let verdict = if h.status != ParseStatus::Ok {
            Err(MALFORMED)
        } else if h.frag == FragKind::Later {
            self.later_fragment(f, l3, input, now)
        } else if h.l4_proto == IPPROTO_ICMP {
            let before = Datagram::of(f, l3);
            self.icmp(h, f, input, now).inspect(|&output| {
                if h.frag == FragKind::First {
                    self.first_fragment(input, f, l3, (before.src, before.dst), output, now);
                }
            })
        } else {
            Err(UNSUPPORTED)
        };
        match verdict {
            Ok(output) => out.push(output, pkt),
            Err(r) => out.drop(pkt, r),
        }
    }
}

/// The key of a plain TCP or UDP packet over IPv4 going out (its source
/// endpoint) and its destination address, or 0 for any other packet.
#[inline(always)]
fn out_key(pkt: &mut Packet) -> (u64, u32) {
    let h = pkt.headers();
    let class = match h.l4_proto {
        IPPROTO_TCP => TCP,
        IPPROTO_UDP => UDP,
        _ => return (0, 0),
    };
    if (h.l3 != L3Kind::Ipv4) | (h.status != ParseStatus::Ok) | (h.frag == FragKind::Later) {
        return (0, 0);
    }
    let f = pkt.data();
    let ip = Ipv4Packet::new_unchecked(&f[h.l3_off as usize..]);
    let (src, dst): (u32, u32) = (ip.src_addr().into(), ip.dst_addr().into());
    let sport = be16(f, h.l4_off as usize + napt::SRC_PORT);
    (key(class, src, sport), dst)
}

/// The protocol class and address of a [`key`].
#[inline(always)]
fn key_class(k: u64) -> u8 {
    ((k >> 48) - 1) as u8
}

#[inline(always)]
fn key_addr(k: u64) -> u32 {
    (k >> 16) as u32
}

/// The TCP flags byte of the segment at `l4`.
#[inline(always)]
fn tcp_flags_of(f: &[u8], l4: usize) -> u8 {
    crate::wire::TcpPacket::new_unchecked(&f[l4..]).flags()
}

/// TCP state after an outgoing segment with `flags`: a SYN starts over.
#[inline(always)]
fn tcp_out(state: u8, flags: u8) -> u8 {
    use tcp_flags::{ACK, FIN, RST, SYN};
    if flags & (SYN | ACK) == SYN {
        return SEEN_OUT;
    }
    state | SEEN_OUT | if flags & (FIN | RST) != 0 { CLOSING } else { 0 }
}

/// TCP state after an incoming segment with `flags`.
#[inline(always)]
fn tcp_in(state: u8, flags: u8) -> u8 {
    use tcp_flags::{ACK, FIN, RST, SYN};
    if flags & (SYN | ACK) == SYN {
        return SEEN_IN;
    }
    state | SEEN_IN | if flags & (FIN | RST) != 0 { CLOSING } else { 0 }
}

impl Element for Nat44 {
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        let now = cx.now();
        self.table
            .sweep(now, batch.len().div_ceil(PACKETS_PER_SWEPT_SLOT));
        if input == 0 {
            self.outbound(batch, now, out)
        } else {
            self.inbound(batch, now, out)
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(MAPPINGS, self.table.live as u64);
        report(CREATED, self.table.created);
        report(EXPIRED, self.table.expired);
        report(ICMP_ERRORS, self.icmp_errors);
        report(FRAGMENTS, self.frags.translated);
        report(HAIRPINNED, self.hairpinned);
        report(PASSED_NON_IPV4, self.passed_non_ipv4);
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        self.read_handler(name, cx)
    }

    fn write(&mut self, name: &str, arg: &str, _cx: &HandlerCx) -> HandlerResult {
        self.write_handler(name, arg)
    }

    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(self.hand_over())
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _cx: &mut Context<'_>) {
        self.take_over(state);
    }
}

#[cfg(test)]
mod tests;
