//! `IpLookup`: longest-prefix-match routing of IPv4 and IPv6 packets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::element::{
    handler, ClassInfo, Combine, ConfigCx, Configured, Context, Element, ElementClass, HandlerCx,
    HandlerKind, HandlerResult, HandlerSpec, Inputs, Need, Output, ParamError, ParamSpec,
    ParamType, Params, PortCount,
};
use crate::elements::route::log::{route_key, RouteLog};
use crate::elements::route::lpm4::{Lpm4, Lpm4View, MAX_VALUE};
use crate::elements::route::lpm6::Lpm6;
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

Tables: IPv4 uses DIR-24-8 (one memory read per lookup, two under a prefix
longer than /24). All workers read one IPv4 table and one next-hop table,
shared by the element's replicas and changed while they read it, with no
lock on their side: up to 48 MiB of first level and depths once an IPv4
route exists, plus 512 bytes per /24 holding a prefix longer than /24,
whatever the number of workers (memory is taken as entries are written).
IPv6: a first level over the 65,536 /16 blocks holding the longest route of
16 bits or fewer, and below it a binary search on the prefix lengths present
in the block (Waldvogel's markers and precomputed best matches: one hash
probe per step, about 4 for a block with 8 lengths); a change rebuilds the
search entries of its own /16 block. Each worker holds its own copy of the
IPv6 table (about 36 MB per worker for 200,000 generated prefixes).

Run-time changes: the `add` and `remove` write handlers run once (on worker
0, between two of its bursts) and answer once. An IPv4 change rewrites the
shared table's entries the prefix owns (for a /8, 65536 of them), each
entry stored whole, so every worker sees it from its next lookup and none
stalls: a lookup finds the old or the new route, never another. An IPv6
change is made to worker 0's table and reaches every other worker's at the
start of its next burst (it rebuilds the search entries of the prefix's /16
block). A group of 256 entries freed by a removal waits 100 ms before it
serves another /24, so that a lookup that has just read its index cannot
find another prefix's route in it. A hot reload keeps the changes: a route added, replaced or removed at run
time survives unless the new configuration changes that same prefix (its
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

/// Where the packets of one next-hop value go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Hop {
    output: u16,
    via: Option<IpAddr>,
}

/// Slots of the next-hop table: one per table value `1..=MAX_VALUE`.
const HOPS: usize = MAX_VALUE as usize;

/// The next-hop table every replica reads: the slot of value `v` is
/// `v - 1`, written once (append-only) before any table entry holding `v`
/// is stored, so that whoever loads the entry (`Acquire`) sees the slot.
/// Full capacity from the start, on pages touched only as slots are used.
struct HopTable {
    /// Annotation words 2 (low half) and 3 (high half).
    words: AtomicArray<AtomicU64, HOPS>,
    outputs: AtomicArray<AtomicU16, HOPS>,
}

/// The next-hop table as the data path reads it.
#[derive(Clone, Copy)]
struct HopsView<'a> {
    words: &'a [AtomicU64; HOPS],
    outputs: &'a [AtomicU16; HOPS],
}

/// What the replicas of one configured IpLookup share.
struct Shared {
    /// The IPv4 table all workers read, created with the first IPv4 route.
    v4: OnceLock<Lpm4>,
    hops: HopTable,
    /// The writers' side.
    ctl: Mutex<Ctl>,
    /// The replicas' inboxes of IPv6 changes (see [`Inbox`]).
    inboxes: Mutex<Vec<Weak<Inbox>>>,
}

/// What only writers (handlers, configure, a reload) use.
struct Ctl {
    hop_ids: HashMap<Hop, u16>,
    /// The hop of each value, by value - 1.
    hop_list: Vec<Hop>,
    /// The configured routes and the run-time changes, for a hot reload.
    log: RouteLog,
    /// Whether a reload has replayed the old changes into the shared
    /// table (the first replica's `give_state` does; the others only
    /// replay into their own IPv6 tables).
    replayed: bool,
}

/// An IPv6 change: prefix, length, value (`None`: removed).
type V6Change = (u128, u8, Option<u16>);

/// IPv6 changes waiting for one replica: each replica keeps its own IPv6
/// table; the replica a write runs on changes its own and posts the change
/// to the others, which apply it at the start of their next burst.
#[derive(Default)]
struct Inbox {
    pending: AtomicBool,
    changes: Mutex<Vec<V6Change>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn hops(&self) -> HopsView<'_> {
        HopsView {
            words: &self.hops.words,
            outputs: &self.hops.outputs,
        }
    }

    /// The table value of `hop`, interned: a new one's slot is written here,
    /// before the value is stored into any table.
    fn hop_id(&self, ctl: &mut Ctl, hop: Hop) -> Result<u16, String> {
        if let Some(&id) = ctl.hop_ids.get(&hop) {
            return Ok(id);
        }
        let i = ctl.hop_list.len();
        if i >= HOPS {
            return Err(format!("too many distinct next hops (at most {MAX_VALUE})"));
        }
        let [lo, hi] = next_hop_words(hop.via);
        self.hops.words[i].store(u64::from(lo) | u64::from(hi) << 32, Relaxed);
        self.hops.outputs[i].store(hop.output, Relaxed);
        ctl.hop_list.push(hop);
        let id = ctl.hop_list.len() as u16;
        ctl.hop_ids.insert(hop, id);
        Ok(id)
    }
}

/// Routes packets by longest-prefix match. The replicas share the IPv4
/// table and the next-hop table (`shared`); each keeps its own IPv6 table.
pub struct IpLookup {
    outputs: usize,
    no_route: Option<usize>,
    shared: Arc<Shared>,
    /// Created with the first route of the family.
    v6: Option<Box<Lpm6>>,
    /// This replica's IPv6 changes made elsewhere (none for the configured
    /// original, which is only cloned).
    inbox: Option<Arc<Inbox>>,
    /// Configuring: the IPv6 table builds its search structure once at the end.
    loading: bool,
}

/// A replica: the same shared tables, a copy of the IPv6 table and an
/// inbox of its own for the IPv6 changes made from now on.
impl Clone for IpLookup {
    fn clone(&self) -> IpLookup {
        let inbox = Arc::new(Inbox::default());
        let mut boxes = lock(&self.shared.inboxes);
        boxes.retain(|b| b.strong_count() > 0);
        boxes.push(Arc::downgrade(&inbox));
        drop(boxes);
        IpLookup {
            outputs: self.outputs,
            no_route: self.no_route,
            shared: Arc::clone(&self.shared),
            v6: self.v6.clone(),
            inbox: Some(inbox),
            loading: self.loading,
        }
    }
}

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
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
    let mut t = IpLookup::new(outputs, no_route);
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
    if let Some(v6) = &mut t.v6 {
        v6.flush();
    }
    Ok(Configured::cloning(Inputs::Fixed(1), outputs, t))
}

impl IpLookup {
    /// An empty table with `outputs` outputs.
    pub fn new(outputs: usize, no_route: Option<usize>) -> IpLookup {
        IpLookup {
            outputs,
            no_route,
            shared: Arc::new(Shared {
                v4: OnceLock::new(),
                hops: HopTable {
                    words: AtomicArray::zeroed(),
                    outputs: AtomicArray::zeroed(),
                },
                ctl: Mutex::new(Ctl {
                    hop_ids: HashMap::new(),
                    hop_list: Vec::new(),
                    log: RouteLog::default(),
                    replayed: false,
                }),
                inboxes: Mutex::new(Vec::new()),
            }),
            v6: None,
            inbox: None,
            loading: false,
        }
    }

    /// Adds `r`, replacing the route of the same prefix.
    pub fn add(&mut self, r: Route) -> Result<(), String> {
        let shared = Arc::clone(&self.shared);
        let mut ctl = lock(&shared.ctl);
        self.add_locked(&mut ctl, r, true, true)
    }

    /// Adds `r` with the writers' lock held: to the shared IPv4 table when
    /// `v4` (else not at all), to this replica's IPv6 table, posting the
    /// change to the other replicas when `post`.
    fn add_locked(&mut self, ctl: &mut Ctl, r: Route, v4: bool, post: bool) -> Result<(), String> {
        let hop = Hop {
            output: r.output,
            via: r.via,
        };
        let id = self.shared.hop_id(ctl, hop)?;
        if self.loading {
            ctl.log.configure(&r);
        }
        match r.prefix {
            IpAddr::V4(a) if v4 => {
                let t = self.shared.v4.get_or_init(Lpm4::new);
                t.insert(u32::from(a), r.len, id)
                    .map_err(|e| e.to_string())?;
            }
            IpAddr::V4(_) => {}
            IpAddr::V6(a) => {
                self.change_v6((u128::from(a), r.len, Some(id)), post);
            }
        }
        Ok(())
    }

    /// Applies an IPv6 change to this replica's table and, when `post`,
    /// sends it to the other replicas; whether there was a route to remove.
    fn change_v6(&mut self, (prefix, len, value): V6Change, post: bool) -> bool {
        let done = match value {
            Some(v) => {
                let loading = self.loading;
                let t = self.v6.get_or_insert_with(|| {
                    let mut t = Box::new(Lpm6::new());
                    if loading {
                        t.defer();
                    }
                    t
                });
                t.insert(prefix, len, v);
                true
            }
            None => self
                .v6
                .as_mut()
                .and_then(|t| t.remove(prefix, len))
                .is_some(),
        };
        if post && done {
            let mut boxes = lock(&self.shared.inboxes);
            boxes.retain(|b| b.strong_count() > 0);
            for b in boxes.iter().filter_map(Weak::upgrade) {
                if self
                    .inbox
                    .as_ref()
                    .is_some_and(|mine| Arc::ptr_eq(mine, &b))
                {
                    continue;
                }
                lock(&b.changes).push((prefix, len, value));
                b.pending.store(true, Release);
            }
        }
        done
    }

    /// Applies the IPv6 changes other replicas posted (the first thing a
    /// burst does when there are some).
    #[cold]
    #[inline(never)]
    fn take_v6_changes(&mut self) {
        let Some(inbox) = self.inbox.clone() else {
            return;
        };
        if !inbox.pending.swap(false, Acquire) {
            return;
        }
        let changes = std::mem::take(&mut *lock(&inbox.changes));
        for c in changes {
            self.change_v6(c, false);
        }
    }

    /// Removes the route of `prefix/len`; whether there was one.
    pub fn remove(&mut self, prefix: IpAddr, len: u8) -> bool {
        match prefix {
            IpAddr::V4(a) => self
                .shared
                .v4
                .get()
                .and_then(|t| t.remove(a.into(), len))
                .is_some(),
            IpAddr::V6(a) => self.change_v6((a.into(), len, None), true),
        }
    }

    fn add_file(&mut self, path: &str) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            parse_route(line, self.outputs)
                .and_then(|r| self.add(r))
                .map_err(|e| format!("{path}:{}: {e}", n + 1))?;
        }
        Ok(())
    }

    /// Every route, shortest prefixes first (IPv4, then IPv6).
    pub fn routes(&self) -> Vec<Route> {
        let ctl = lock(&self.shared.ctl);
        let route = |prefix: IpAddr, len: u8, v: u16| {
            let h = ctl.hop_list[usize::from(v) - 1];
            Route {
                prefix,
                len,
                output: h.output,
                via: h.via,
            }
        };
        let mut out: Vec<Route> = Vec::new();
        if let Some(t) = self.shared.v4.get() {
            out.extend(
                t.routes()
                    .into_iter()
                    .map(|(p, l, v)| route(IpAddr::V4(p.into()), l, v)),
            );
        }
        if let Some(t) = &self.v6 {
            out.extend(
                t.routes()
                    .map(|(p, l, v)| route(IpAddr::V6(p.into()), l, v)),
            );
        }
        out.sort_by_key(|r| (r.prefix.is_ipv6(), r.len, r.prefix));
        out
    }

    /// The table value for the destination of the IP packet at `l3` in `data`.
    #[inline(always)]
    fn lookup(&self, l3: L3Kind, data: &[u8], off: usize) -> u16 {
        match l3 {
            L3Kind::Ipv4 => match self.shared.v4.get() {
                Some(t) => {
                    let d = &data[off + 16..off + 20];
                    t.lookup(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
                }
                None => 0,
            },
            _ => match &self.v6 {
                Some(t) => {
                    let mut d = [0u8; 16];
                    d.copy_from_slice(&data[off + 24..off + 40]);
                    t.lookup(u128::from_be_bytes(d))
                }
                None => 0,
            },
        }
    }
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
/// Packets handled per round of the pipeline (a burst of up to 256 is one
/// round; the arrays of values and destinations are on the stack).
const CHUNK: usize = 256;
/// How many packets ahead of its lookup a packet is classified and its
/// `tbl24` entry prefetched. With the table missing the caches (32 MiB,
/// one DRAM access per scattered destination) the entry then arrives
/// while the 16 packets before it are routed. Measured on this machine
/// (docs/benchmarks.md): 16 beat 8 and 32, and beat classifying a whole
/// chunk before routing any (32 or 256 at a time), which issued the
/// prefetches faster than the memory system took them.
const AHEAD: usize = 16;

impl IpLookup {
    /// Classifies `pkt`: for IPv4 (with an IPv4 table `v4`), its
    /// destination into `dst`, its table entry prefetched, and `V_IPV4`;
    /// else its table value (or `DROP_NOT_IP`, `DROP_MALFORMED`).
    #[inline(always)]
    fn value(
        &self,
        v4: Option<Lpm4View<'_>>,
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
        self.lookup(h.l3, pkt.data(), off)
    }

    /// Where the packet of table value `v` (or `V_IPV4` with destination
    /// `dst`) goes: its output, or `DROP_NOT_IP`, `DROP_MALFORMED`,
    /// `DROP_NO_ROUTE`; with a route, its next hop goes into `pkt`'s
    /// annotation.
    #[inline(always)]
    fn dest(
        &self,
        v4: Option<Lpm4View<'_>>,
        hops: HopsView<'_>,
        pkt: &mut crate::packet::Packet,
        v: u16,
        dst: u32,
    ) -> u16 {
        let v = match v4 {
            Some(t) if v == V_IPV4 => t.lookup(dst),
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
            vals[i] = self.value(v4, &mut pkts[i], &mut dsts[i]);
        }
        for i in ahead..n {
            vals[i] = self.value(v4, &mut pkts[i], &mut dsts[i]);
            let j = i - AHEAD;
            vals[j] = self.dest(v4, hops, &mut pkts[j], vals[j], dsts[j]);
        }
        for j in n - ahead..n {
            vals[j] = self.dest(v4, hops, &mut pkts[j], vals[j], dsts[j]);
        }
    }
}

impl Element for IpLookup {
    /// Routes the burst a chunk at a time (see `route_chunk`), then moves
    /// each chunk to its outputs in one pass.
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        if self.inbox.as_ref().is_some_and(|b| b.pending.load(Relaxed)) {
            self.take_v6_changes();
        }
        let mut vals = [0u16; CHUNK];
        let hops = self.shared.hops();
        while !batch.is_empty() {
            let n = batch.len().min(CHUNK);
            let vals = &mut vals[..n];
            match self.shared.v4.get() {
                Some(t) => self.route_chunk(Some(t.view()), hops, &mut batch[..n], vals),
                None => self.route_chunk(None, hops, &mut batch[..n], vals),
            }
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

    fn read(&self, name: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "routes" => Ok(self.routes().iter().map(|r| r.to_string()).collect()),
            "size" => Ok(handler::json!({
                "ipv4": self.shared.v4.get().map_or(0, |t| t.len()),
                "ipv6": self.v6.as_ref().map_or(0, |t| t.len()),
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
    /// the shared table and the log, every one into its own IPv6 table.
    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _cx: &mut Context<'_>) {
        let Ok(old) = state.downcast::<RouteLog>() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let mut ctl = lock(&shared.ctl);
        let first = !std::mem::replace(&mut ctl.replayed, true);
        for ((prefix, len), change) in ctl.log.carried(&old) {
            if !first && prefix.is_ipv4() {
                continue;
            }
            let kept = match change {
                Some((output, via)) => {
                    let r = Route {
                        prefix,
                        len,
                        output,
                        via,
                    };
                    usize::from(output) < self.outputs
                        && self.add_locked(&mut ctl, r, first, false).is_ok()
                }
                None => {
                    match prefix {
                        IpAddr::V4(a) => {
                            if let Some(t) = shared.v4.get() {
                                t.remove(a.into(), len);
                            }
                        }
                        IpAddr::V6(a) => {
                            self.change_v6((a.into(), len, None), false);
                        }
                    }
                    true
                }
            };
            if kept && first {
                ctl.log.change((prefix, len), change);
            }
        }
    }
}

#[cfg(test)]
#[path = "tests_ip_lookup.rs"]
mod tests;
