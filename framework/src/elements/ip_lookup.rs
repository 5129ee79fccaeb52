//! `IpLookup`: longest-prefix-match routing of IPv4 and IPv6 packets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU16, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::element::{
    handler, ClassInfo, Combine, ConfigCx, Configured, Context, Element, ElementClass, Grace,
    HandlerCx, HandlerKind, HandlerResult, HandlerSpec, Inputs, Need, Output, ParamError,
    ParamSpec, ParamType, Params, PortCount,
};
use crate::elements::route::log::{route_key, RouteLog};
use crate::elements::route::lpm4::{Lpm4, Lpm4View, MAX_VALUE};
use crate::elements::route::lpm6::{Lpm6, Lpm6Reader};
use crate::elements::route::{
    generate_v4, generate_v6, next_hop_words, parse_route, parse_route_prefix, Route, NEXT_HOP_ANNO,
};
use crate::packet::Batch;
use crate::sys::memory::AtomicArray;
use crate::wire::{Headers, L3Kind, ParseStatus};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// No route matches the destination (and `no_route` is not set).
        pub(crate) NO_ROUTE = "no-route",
        /// Neither IPv4 nor IPv6.
        NOT_IP = "not-ip",
        /// The IP header is cut short or inconsistent.
        MALFORMED = "malformed",
    ]
}

/// The `IpLookup` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "IpLookup",
        summary: "Routes IPv4 and IPv6 packets by longest-prefix match on the destination",
        description: "\
Looks up each packet's destination address in a route table and sends it to
the output of the longest matching prefix, with the route's next hop written
into annotation words 2 (and 3): for IPv4 the next hop's address (host byte
order), for IPv6 the interface identifier of its link-local address, both 0
for a route without `via` (the destination itself is on the link). The
neighbour resolvers (ArpQuerier, NdQuerier) read it from there.

Routes are strings `\"PREFIX -> OUTPUT [via ADDRESS]\"`: `\"10.0.0.0/8 -> 1\"`,
`\"0.0.0.0/0 -> 0 via 192.0.2.1\"`, `\"2001:db8::/32 -> 1 via fe80::1\"` (an IPv6
next hop must be link-local). A bare address is a host route; host bits past
the length are cleared; a prefix given twice keeps the last. `route_file`
names a file of such lines (`#` starts a comment) read at configure time.

Packets matching no route go to output `no_route` when it is set (into an
IcmpError, say, to send destination-unreachable), else they are dropped as
`no-route`. Frames that are not IP are dropped as `not-ip`, IP frames whose
header is cut short or inconsistent as `malformed`. A frame no element
before has parsed that is plain IPv4 (untagged, a 20-byte header, a total
length within the frame) is looked up without the full header parse.

Tables: IPv4 uses DIR-24-8 (an entry per /24, groups of 256 entries for the
/24s holding prefixes longer than /24) with a compressed copy of its first
level that lookups read: per /16, a 2-bit code per /24 naming one of 3
palette slots, 4.5 MiB in all instead of 32, so that scattered lookups stay
within the caches and the TLB (two reads issued together per lookup; a /16
with more than 3 distinct entries reads the rarest from the full level, as
does a /24 holding longer prefixes beside two others in its /16). All
workers read one IPv4 table and one next-hop table, shared by the element's
replicas and changed while they read it, with no lock on their side: up to
52.5 MiB of levels and depths once an IPv4 route exists, plus 512 bytes per
/24 holding a prefix longer than /24, whatever the number of workers
(memory is taken as entries are written).
IPv6: a first level over the 65,536 /16 blocks holding the longest route of
16 bits or fewer, and below it a binary search on the prefix lengths present
in the block (Waldvogel's markers and precomputed best matches: one hash
probe per step, about 4 for a block with 8 lengths); a change rebuilds the
search entries of its own /16 block. All workers read one IPv6 table too
(about 36 MB for 200,000 generated prefixes, whatever the number of
workers).

Run-time changes: the `add` and `remove` write handlers run once (on worker
0, between two of its bursts) and answer once. An IPv4 change rewrites the
shared table's entries the prefix owns (for a /8, 65536 of them) and the
compressed lines of the /16s it changed, each word stored whole, so every
worker sees it from its next lookup and none stalls: a lookup finds the old
or the new route, never another (a palette slot takes a new entry only once
every worker has finished the burst in which it may have read the old). An IPv6
change builds the search tables of the prefix's /16 block anew and swaps
them in whole (a route of 16 bits or fewer rewrites the first-level values
it covers); the replaced tables are freed once every worker has finished
the burst it was in. A group of 256 entries freed by a removal serves another /24 only
after every worker has finished the burst it was in (a grace period:
workers mark each boundary between bursts, and a sleeping worker counts as
done), so that a lookup that has just read its index cannot find another
prefix's route in it (once all 32768 groups have been used, an `add`
needing a group is refused until then: try again). A hot reload keeps the
changes: a route added, replaced or removed at run time survives unless the new configuration changes that same prefix (its
route for the prefix, or its absence, differs from the old
configuration's); then the new configuration's word holds. A kept route
naming an output the new configuration no longer has is dropped. Each distinct (output, next hop) pair a route has ever
named keeps a slot of the next-hop table (at most 32767 over the element's
life; a route naming one more is refused).

Benchmarks: `generate_ipv4` and `generate_ipv6` add that many random
prefixes with an Internet-like length distribution (mostly /24, /48), spread
over the outputs other than `no_route`, from `seed` (docs/benchmarks.md).",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Param("outputs"),
        params: &[
            ParamSpec {
                name: "outputs",
                ty: ParamType::Int { min: 1, max: 4096 },
                need: Need::Required,
                doc: "Number of outputs (routes name outputs 0..outputs-1)",
            },
            ParamSpec {
                name: "routes",
                ty: ParamType::List(&ParamType::Str),
                need: Need::Default("[]"),
                doc: "Routes: \"PREFIX -> OUTPUT [via ADDRESS]\"",
            },
            ParamSpec {
                name: "route_file",
                ty: ParamType::Str,
                need: Need::Optional,
                doc: "A file of routes, one per line in the same syntax (# comments)",
            },
            ParamSpec {
                name: "no_route",
                ty: ParamType::U16,
                need: Need::Optional,
                doc: "Output for packets no route matches (else dropped as no-route)",
            },
            ParamSpec {
                name: "generate_ipv4",
                ty: ParamType::Int {
                    min: 0,
                    max: 4_000_000,
                },
                need: Need::Default("0"),
                doc: "Random IPv4 prefixes to add (benchmarks)",
            },
            ParamSpec {
                name: "generate_ipv6",
                ty: ParamType::Int {
                    min: 0,
                    max: 4_000_000,
                },
                need: Need::Default("0"),
                doc: "Random IPv6 prefixes to add (benchmarks)",
            },
            ParamSpec {
                name: "seed",
                ty: ParamType::UINT,
                need: Need::Default("1"),
                doc: "Seed of the generated prefixes",
            },
        ],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: HANDLERS,
        example: "\
[elements.rt]
class = \"IpLookup\"
outputs = 3
no_route = 2
routes = [
  \"192.168.1.0/24 -> 0\",
  \"0.0.0.0/0 -> 1 via 203.0.113.1\",
  \"fd00:1::/64 -> 0\",
  \"::/0 -> 1 via fe80::1\",
]",
        see_also: &["DecIpTtl", "ArpQuerier", "NdQuerier", "IcmpError"],
    },
    configure,
};

const HANDLERS: &[HandlerSpec] = &[
    HandlerSpec {
        name: "routes",
        kind: HandlerKind::Read,
        combine: Combine::Once,
        arg: "",
        doc: "The routes, shortest prefixes first (large with generated tables)",
    },
    HandlerSpec {
        name: "size",
        kind: HandlerKind::Read,
        combine: Combine::Once,
        arg: "",
        doc: "Numbers of IPv4 and IPv6 routes and of next hops",
    },
    HandlerSpec {
        name: "add",
        kind: HandlerKind::Write,
        combine: Combine::Once,
        arg: "PREFIX -> OUTPUT [via ADDRESS]",
        doc: "Adds a route, or replaces the route of the same prefix",
    },
    HandlerSpec {
        name: "remove",
        kind: HandlerKind::Write,
        combine: Combine::Once,
        arg: "PREFIX",
        doc: "Removes the route of exactly that prefix",
    },
];

/// Routes packets by longest-prefix match. The replicas share the route
/// tables and the next-hop table (`shared`).
pub struct IpLookup {
    outputs: usize,
    no_route: Option<usize>,
    shared: Arc<Shared>,
    /// Configuring: the tables build what lookups read (IPv4 lines, IPv6
    /// search tables) once at the end.
    loading: bool,
}

fn configure(p: &Params, cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let outputs = p.usize("outputs")?;
    let no_route = match p.get("no_route") {
        Some(_) => Some(p.usize("no_route")?),
        None => None,
    };
    if no_route.is_some_and(|o| o >= outputs) {
        return Err(ParamError::new(
            "no_route",
            format!("must be below outputs ({outputs})"),
        ));
    }
    let mut t = IpLookup::with_grace(outputs, no_route, cx.grace.clone());
    t.loading = true;
    for (i, s) in p.str_list("routes")?.into_iter().enumerate() {
        let r = parse_route(s, outputs).map_err(|e| ParamError::item("routes", i, e))?;
        t.add(r).map_err(|e| ParamError::item("routes", i, e))?;
    }
    if p.get("route_file").is_some() {
        let path = p.str("route_file")?;
        t.add_file(path)
            .map_err(|e| ParamError::new("route_file", e))?;
    }
    let seed = p.int("seed")? as u64;
    let gen_outputs: Vec<u16> = (0..outputs as u16)
        .filter(|&o| Some(usize::from(o)) != no_route)
        .collect();
    let n4 = p.usize("generate_ipv4")?;
    let n6 = p.usize("generate_ipv6")?;
    if (n4 > 0 || n6 > 0) && gen_outputs.is_empty() {
        return Err(ParamError::new(
            "generate_ipv4",
            "needs an output other than no_route",
        ));
    }
    let out = |i: usize| gen_outputs[i % gen_outputs.len().max(1)];
    for (i, (a, len)) in generate_v4(n4, seed).into_iter().enumerate() {
        let r = Route {
            prefix: IpAddr::V4(a.into()),
            len,
            output: out(i),
            via: None,
        };
        t.add(r).map_err(|e| ParamError::new("generate_ipv4", e))?;
    }
    for (i, (a, len)) in generate_v6(n6, seed).into_iter().enumerate() {
        let r = Route {
            prefix: IpAddr::V6(a.into()),
            len,
            output: out(i),
            via: None,
        };
        t.add(r).map_err(|e| ParamError::new("generate_ipv6", e))?;
    }
    t.loading = false;
    if let Some(v4) = t.shared.v4.get() {
        v4.flush();
    }
    if let Some(v6) = t.shared.v6.get() {
        v6.flush();
    }
    Ok(Configured::cloning(Inputs::Fixed(1), outputs, t))
}

/// Marks that stand, in the table values and then in the destinations of
/// a chunk, for the packets IpLookup drops: a frame that is not IP, a
/// malformed IP header, no route (destinations only). Never a table value
/// (those are at most `MAX_VALUE`) nor an output (at most 4096).
const DROP_NOT_IP: u16 = u16::MAX;
const DROP_MALFORMED: u16 = u16::MAX - 1;
const DROP_NO_ROUTE: u16 = u16::MAX - 2;
/// Value of an IPv4 packet whose destination waits, prefetched, for its
/// lookup (values only, so it may share `DROP_NO_ROUTE`'s number).
const V_IPV4: u16 = u16::MAX - 2;
/// Value of an IPv6 packet whose destination's block waits, prefetched,
/// for its lookup (`dst` holds the header's offset in its low 16 bits and
/// the destination's block, its first 16 bits, in the high 16 then).
const V_IPV6: u16 = u16::MAX - 3;
/// Packets handled per round of the pipeline (a burst of up to 256 is one
/// round; the arrays of values and destinations are on the stack).
const CHUNK: usize = 256;
/// How many packets ahead of its lookup a packet is classified and its
/// IPv4 line word and palette prefetched, so that they arrive while the
/// packets before it are routed. Measured on this machine when lookups
/// read the 32 MiB `tbl24` (docs/benchmarks.md): 16 beat 8 and 32, and
/// beat classifying a whole chunk before routing any (32 or 256 at a
/// time), which issued the prefetches faster than the memory system took
/// them.
const AHEAD: usize = 16;

impl IpLookup {
    /// Classifies `pkt`: for IPv4 (with an IPv4 table `v4`), its
    /// destination into `dst`, its table entry prefetched, and `V_IPV4`;
    /// else its table value (or `DROP_NOT_IP`, `DROP_MALFORMED`).
    #[inline(always)]
    fn value(
        &self,
        v4: Option<Lpm4View<'_>>,
        v6: Option<&Lpm6Reader<'_>>,
        pkt: &mut crate::packet::Packet,
        dst: &mut u32,
    ) -> u16 {
        // The plain IPv4 frame gives its destination without the parse
        // (which the next element that needs it does, or none does); every
        // other frame is parsed (or its cached parse read) as before.
        // `plain_ipv4_dst` gives an address only for frames the parse finds
        // IPv4, neither truncated nor malformed, and reads the same bytes a
        // cached parse was made from, so it holds with or without one.
        if let Some(t) = v4 {
            if let Some(d) = Headers::plain_ipv4_dst(pkt.data()) {
                *dst = d;
                t.prefetch(d);
                return V_IPV4;
            }
        }
        match v6 {
            Some(_) => self.value_parsed(v4, v6, pkt, dst),
            // No IPv6 table: the rest (frames other than plain IPv4) out of
            // line, so that the loop routing plain IPv4 frames keeps its
            // registers to itself (lookup4: 2.2 instructions per packet
            // fewer by callgrind).
            None => self.value_parsed_apart(v4, pkt, dst),
        }
    }

    /// [`IpLookup::value_parsed`] without an IPv6 table, compiled apart.
    #[inline(never)]
    fn value_parsed_apart(
        &self,
        v4: Option<Lpm4View<'_>>,
        pkt: &mut crate::packet::Packet,
        dst: &mut u32,
    ) -> u16 {
        self.value_parsed(v4, None, pkt, dst)
    }

    /// [`IpLookup::value`] of a frame that is not plain IPv4 (or with no
    /// IPv4 table): from its parse.
    #[inline(always)]
    fn value_parsed(
        &self,
        v4: Option<Lpm4View<'_>>,
        v6: Option<&Lpm6Reader<'_>>,
        pkt: &mut crate::packet::Packet,
        dst: &mut u32,
    ) -> u16 {
        let h = pkt.headers();
        if h.l3 == L3Kind::Other {
            return DROP_NOT_IP;
        }
        if matches!(
            h.status,
            ParseStatus::L2Truncated | ParseStatus::L3Malformed
        ) {
            return DROP_MALFORMED;
        }
        let off = usize::from(h.l3_off);
        if h.l3 == L3Kind::Ipv4 {
            if let Some(t) = v4 {
                let d = pkt.data();
                // The parse checked the IPv4 header (20 bytes at least).
                match d.get(off + 16..off + 20) {
                    Some(&[a, b, c, e]) => {
                        *dst = u32::from_be_bytes([a, b, c, e]);
                        t.prefetch(*dst);
                        return V_IPV4;
                    }
                    _ => return DROP_MALFORMED,
                }
            }
        }
        if let (L3Kind::Ipv6, Some(t)) = (h.l3, v6) {
            // The parse checked the IPv6 header (40 bytes): the
            // destination's block is prefetched, looked up `AHEAD` later.
            if let Some(d) = pkt.data().get(off + 24..off + 40) {
                let mut a = [0u8; 16];
                a.copy_from_slice(d);
                t.prefetch(u128::from_be_bytes(a));
                // The offset (under 64 KiB) and the block, for the
                // prefetch's second stage.
                *dst = off as u32 & 0xffff | u32::from(a[0]) << 24 | u32::from(a[1]) << 16;
                return V_IPV6;
            }
        }
        self.lookup(v6, h.l3, pkt.data(), off)
    }

    /// Where the packet of table value `v` (or `V_IPV4` with destination
    /// `dst`) goes: its output, or `DROP_NOT_IP`, `DROP_MALFORMED`,
    /// `DROP_NO_ROUTE`; with a route, its next hop goes into `pkt`'s
    /// annotation.
    #[inline(always)]
    fn dest(
        &self,
        v4: Option<Lpm4View<'_>>,
        v6: Option<&Lpm6Reader<'_>>,
        hops: HopsView<'_>,
        pkt: &mut crate::packet::Packet,
        v: u16,
        dst: u32,
    ) -> u16 {
        // `v4` and `v6` are known at each call site: an IPv4-only table
        // has no IPv6 test here.
        let v = match (v4, v6) {
            (Some(t), _) if v == V_IPV4 => t.lookup(dst),
            (_, Some(r)) if v == V_IPV6 => {
                // `value` found the 16 bytes at `dst + 24` there.
                let off = (dst & 0xffff) as usize;
                match pkt.data().get(off + 24..off + 40) {
                    Some(d) => r.lookup(u128::from_be_bytes(d.try_into().unwrap_or([0; 16]))),
                    None => DROP_MALFORMED,
                }
            }
            _ => v,
        };
        // Relaxed: the slot was written before the entry holding `v` was
        // stored (Release) and loaded (Acquire).
        let i = usize::from(v).wrapping_sub(1);
        match (hops.words.get(i), hops.outputs.get(i)) {
            (Some(words), Some(output)) => {
                let w = words.load(Relaxed);
                pkt.anno_mut()[NEXT_HOP_ANNO..NEXT_HOP_ANNO + 2]
                    .copy_from_slice(&[w as u32, (w >> 32) as u32]);
                output.load(Relaxed)
            }
            _ if v == DROP_NOT_IP || v == DROP_MALFORMED => v,
            _ => self.no_route.map_or(DROP_NO_ROUTE, |o| o as u16),
        }
    }

    /// The destinations of the `pkts` (at most `CHUNK`) into `vals`,
    /// software-pipelined: packet `i + AHEAD` is classified (for IPv4, its
    /// table entry prefetched) while packet `i` is looked up, so that each
    /// entry has the work of `AHEAD` packets' time to arrive and the misses
    /// overlap, spread over the burst instead of all issued at once.
    /// Called with `v4` known at each call site, so that the loop has no
    /// test of it per packet.
    #[inline(always)]
    fn route_chunk(
        &self,
        v4: Option<Lpm4View<'_>>,
        v6: Option<&Lpm6Reader<'_>>,
        hops: HopsView<'_>,
        pkts: &mut [crate::packet::Packet],
        vals: &mut [u16],
    ) {
        let n = pkts.len();
        let mut dsts = [0u32; CHUNK];
        // All three the same length, so that no index below needs a check.
        let (vals, dsts) = (&mut vals[..n], &mut dsts[..n]);
        let ahead = n.min(AHEAD);
        for i in 0..ahead {
            vals[i] = self.value(v4, v6, &mut pkts[i], &mut dsts[i]);
        }
        for i in ahead..n {
            vals[i] = self.value(v4, v6, &mut pkts[i], &mut dsts[i]);
            if let Some(r) = v6 {
                // Half way: the block's first-level entry has arrived;
                // its header and slot bytes start loading.
                let k = i - AHEAD / 2;
                if vals[k] == V_IPV6 {
                    r.prefetch_block((dsts[k] >> 16) as u16);
                }
            }
            let j = i - AHEAD;
            vals[j] = self.dest(v4, v6, hops, &mut pkts[j], vals[j], dsts[j]);
        }
        for j in n - ahead..n {
            vals[j] = self.dest(v4, v6, hops, &mut pkts[j], vals[j], dsts[j]);
        }
    }
}

impl IpLookup {
    /// Routes the burst with tables `v4` and `v6`, known at each call site
    /// (see `push`).
    #[inline(always)]
    fn push_with(
        &self,
        v4: Option<Lpm4View<'_>>,
        v6: Option<&Lpm6Reader<'_>>,
        hops: HopsView<'_>,
        batch: &mut Batch,
        out: &mut Output,
    ) {
        let mut vals = [0u16; CHUNK];
        while !batch.is_empty() {
            let n = batch.len().min(CHUNK);
            let vals = &mut vals[..n];
            self.route_chunk(v4, v6, hops, &mut batch[..n], vals);
            // All to one output (a default route, the gateway's LAN side):
            // moved in one copy.
            let first = vals[0];
            if usize::from(first) < self.outputs && vals.iter().all(|&d| d == first) {
                out.push_first(usize::from(first), batch, n);
                continue;
            }
            out.scatter(batch, vals, |d| match d {
                DROP_NOT_IP => NOT_IP,
                DROP_MALFORMED => MALFORMED,
                _ => NO_ROUTE,
            });
        }
    }
}

impl Element for IpLookup {
    /// Routes the burst a chunk at a time (see `route_chunk`), then moves
    /// each chunk to its outputs in one pass.
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        let hops = self.shared.hops();
        if let Some(t) = self.shared.v4.get() {
            // Lines that a change left escaping /24s to `tbl24` until a grace
            // period passed: rewritten as soon as it has, by whichever
            // worker routes packets (if none does, no lookup is slowed).
            if t.has_retries() {
                t.retry();
            }
        }
        // Lock-free in a worker's burst; elsewhere (a test driving the
        // element) holding the IPv6 writer lock until the push returns.
        let v6 = self.shared.v6.get().map(|t| t.reader(cx));
        // The tables are chosen once per burst, outside the loops: the
        // reader is not live in them (an IPv4-only table's loops are as
        // they were before there was one).
        match (self.shared.v4.get(), v6.as_ref()) {
            (Some(t), None) => self.push_with(Some(t.view()), None, hops, batch, out),
            (None, None) => self.push_with(None, None, hops, batch, out),
            (Some(t), Some(r)) => self.push_with(Some(t.view()), Some(r), hops, batch, out),
            (None, Some(r)) => self.push_with(None, Some(r), hops, batch, out),
        }
    }

    fn read(&self, name: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "routes" => Ok(self.routes().iter().map(|r| r.to_string()).collect()),
            "size" => Ok(handler::json!({
                "ipv4": self.shared.v4.get().map_or(0, |t| t.len()),
                "ipv6": self.shared.v6.get().map_or(0, |t| t.len()),
                "next_hops": lock(&self.shared.ctl).hop_list.len(),
            })),
            _ => Err(handler::no_such_handler(name)),
        }
    }

    fn write(&mut self, name: &str, arg: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "add" => {
                let r = parse_route(arg, self.outputs)?;
                self.add(r)?;
                let key = route_key(r.prefix, r.len);
                lock(&self.shared.ctl)
                    .log
                    .change(key, Some((r.output, r.via)));
                Ok(r.to_string().into())
            }
            "remove" => {
                let (prefix, len) = parse_route_prefix(arg)?;
                if self.remove(prefix, len) {
                    lock(&self.shared.ctl)
                        .log
                        .change(route_key(prefix, len), None);
                    Ok(format!("removed {prefix}/{len}").into())
                } else {
                    Err(format!("no route for {prefix}/{len}"))
                }
            }
            _ => Err(handler::no_such_handler(name)),
        }
    }

    /// Hot reload: the run-time route changes (see the class description),
    /// the same from every replica (they share them).
    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(lock(&self.shared.ctl).log.clone()))
    }

    /// Replays the old replicas' run-time changes whose prefixes the new
    /// configuration routes as the old one did; a route naming an output the
    /// new configuration no longer has, or one next hop too many, is dropped.
    /// Every replica gets the state; the first one replays the changes into
    /// the shared tables and the log (exactly once), the others do nothing.
    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _cx: &mut Context<'_>) {
        let Ok(old) = state.downcast::<RouteLog>() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let mut ctl = lock(&shared.ctl);
        if std::mem::replace(&mut ctl.replayed, true) {
            return;
        }
        for ((prefix, len), change) in ctl.log.carried(&old) {
            let kept = match change {
                Some((output, via)) => {
                    let r = Route {
                        prefix,
                        len,
                        output,
                        via,
                    };
                    usize::from(output) < self.outputs && self.add_locked(&mut ctl, r).is_ok()
                }
                None => {
                    match prefix {
                        IpAddr::V4(a) => {
                            if let Some(t) = shared.v4.get() {
                                t.remove(a.into(), len);
                            }
                        }
                        IpAddr::V6(a) => {
                            if let Some(t) = shared.v6.get() {
                                t.remove(a.into(), len);
                            }
                        }
                    }
                    true
                }
            };
            if kept {
                ctl.log.change((prefix, len), change);
            }
        }
    }
}

#[path = "ip_lookup_tables.rs"]
mod tables;
use tables::{lock, HopsView, Shared};

#[cfg(test)]
#[path = "tests_ip_lookup.rs"]
mod tests;
