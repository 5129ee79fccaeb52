//! `Firewall`: ordered allow/deny rules with connection tracking between an
//! inside and an outside network.

use std::sync::Arc;
use std::time::Duration;

use hpio_nf::element::{
    Choice, ClassInfo, ConfigCx, Configured, Context, DropReason, Element, ElementClass, HandlerCx,
    HandlerResult, Inputs, Need, Output, ParamError, ParamSpec, ParamType, Params, PortCount,
};
use hpio_nf::elements::classify::FlowKey;
use hpio_nf::packet::Batch;
use hpio_nf::packet::Packet;
use hpio_nf::wire::{FragKind, Headers, L3Kind, ParseStatus};

use crate::conntrack::{FlowTable, Timeouts, Track};
use crate::counts::*;
use crate::edit::{self, Kill};
use crate::frag::{header_end, FragKey, FragTable};
use crate::rules::{parse_rules, ConnState, Rule, Rules, Side, RULE_FIELDS};
use crate::tuple::{extract, Extract};
mod trace;

mod handlers;
mod handover;

/// Packets per flow-table slot the incremental sweep looks at (a slot is a
/// cache line; the sweep only keeps the `flows` count close to the truth,
/// since lookups and a full table remove expired flows on their own).
const PACKETS_PER_SWEPT_SLOT: usize = 4;

const DESCRIPTION: &str = "\
A stateful firewall between two sides, inside and outside: ordered allow and
deny rules in the Classify rule language, and connection tracking for TCP,
UDP and ICMP echo so that a rule can let in only the replies of flows that
were let out.

Input 0 takes packets from the inside (going out), input 1 packets from the
outside (coming in). Output 0 sends to the outside, output 1 to the inside:
a packet that passes leaves on the output of its input's number. Wire it
across two ports:

  lan -> [0]fw[0] -> wan
  wan -> [1]fw[1] -> lan

Rules. `rules` is an ordered list of inline tables; the first rule that
matches a packet decides, and a packet no rule matches is dropped as
`no-rule`. Each rule has:

  from     \"inside\", \"outside\" or \"any\" (default): the side (input) the
           packet arrives from
  match    the packets, in the Classify rule language: `any`, or terms
           joined by `and` such as `tcp and dst port 22`, `udp and src net
           10.0.0.0/8`, `icmp and icmp type echo-request`, `ip6`
           (`hpio-nf elements Classify` lists every term)
  state    \"new\", \"established\" or \"any\" (default)
  action   \"allow\" or \"deny\"
  name     optional name of the rule's hit counter

  rules = [
    { from = \"any\", match = \"any\", state = \"established\", action = \"allow\" },
    { from = \"inside\", match = \"tcp\", action = \"allow\" },
    { from = \"outside\", match = \"tcp and dst port 8080\", action = \"allow\" },
    { from = \"any\", match = \"any\", action = \"deny\", name = \"default deny\" },
  ]

A rule that an earlier `match = \"any\"` rule leaves nothing to match is a
configuration error, as is a match the Classify language rejects (the error
points at the offending term).

Connection tracking. A flow is the 5-tuple of a TCP or UDP packet (addresses,
ports, protocol) or, for ICMP and ICMPv6 echo, the addresses and the echo
identifier; both directions of a flow are one entry. A flow is created when
an `allow` rule passes a packet that opens one: a TCP SYN (without ACK, RST
or FIN), any UDP datagram, an echo request. The endpoint that sent it is the
originator. A packet's state for the rules is:

  established  it belongs to a flow that has seen a packet from the
               responder, or it is one (the first reply is established)
  new          it opens a flow, or belongs to one that has seen no reply yet
               (a retransmitted SYN, a second UDP datagram before an answer)
  neither      it is untracked (other IP protocols, ICMP other than echo,
               non-IP frames under `non_ip = \"rules\"`) or
               invalid (a TCP segment other than a SYN, or an echo reply,
               without a flow; an echo request from the responder's side):
               only rules with `state = \"any\"` match it

Only packets that pass update their flow: TCP follows the handshake (SYN,
SYN-ACK, ACK), the close (FIN from one side, from both, the last ACK) and
resets closely enough to pick the timeout of the state; sequence numbers
are not checked. A SYN on the ports of a connection in TIME_WAIT or CLOSE
opens a new one. A flow with no traffic for its state's timeout (see
`timeouts`) expires. ICMP errors (unreachable, time exceeded) are not
related to the flow they are about: they pass only through `state = \"any\"`
rules.

Flow table. Each worker has its own table of at most `max_flows` flows,
allocated when the worker starts (64 bytes per slot, at least two slots per
flow: 8 MiB per worker for the default 65536 flows); nothing is allocated
per packet. When it is full, a packet that would open a flow is dropped as
`table-full` (after a sweep of 64 slots for expired flows; after one that
freed nothing, at once for 1 ms, so that a flood of new flows costs a lookup
per packet, not a sweep); packets of existing flows still pass. Expired flows are removed when met by a lookup, by a sweep
of one slot per four packets, and when the table is full. With several workers,
both directions of a flow must reach the same worker: with the AF_PACKET
driver's fanout (a symmetric hash of the addresses and ports) that holds
when the inside and the outside port have the same number of receive
queues, so that queue q of each goes to the same worker.

Non-IP frames (ARP, LLDP, ...) follow `non_ip`: \"allow\" (default, so that
ARP works across a transparent firewall) passes them untracked, \"deny\"
drops them as `non-ip`, \"rules\" hands them to the rules (a match such as
`arp` or `ether type 0x88cc` selects them; they are neither new nor
established).

Malformed frames (headers cut short or inconsistent, an ICMP echo without
its identifier) are dropped as `malformed` before the rules.

Fragments. Only the first fragment of an IP datagram carries the transport
header, so only it goes through the rules, exactly as a whole packet would
(it is matched, counts its rule hit, opens or updates its flow). Its
verdict is remembered for the datagram -- same source, destination,
protocol, IPv4 identification or IPv6 Fragment header identification, and
input -- for `frag_timeout`, and the datagram's non-first fragments follow
it: they pass to the same output when it passed, and are dropped with its
reason (`denied`, `no-rule`, `table-full`, ...) when it was dropped. They
match no rule themselves (rule hit counters count first fragments), and
do not refresh their flow's timeout. Fragments are not reassembled: each
leaves as it came.

A non-first fragment that arrives before its first is held -- the packet
itself in its pool slot, not a copy -- and passed or dropped when the first
is decided, in the order held fragments came. At most `frag_hold` packets
are held per worker, and none while fewer than half of the worker's pool
slots are free (so holding cannot starve receive); a fragment that cannot
be held is dropped as `fragment`. A held fragment whose first has not come
within `frag_timeout` is dropped as `fragment` (`fragments expired`): that
is the fate of unsolicited fragments. Expiry is checked once per burst
that reaches the firewall (on either input), against the burst's time
(`[runtime] clock`); with no traffic at all, held fragments wait for the
next burst, and those still held when the run ends are dropped as
`fragment` (`fragments dropped at end`), so none is lost uncounted.

Dropped as `fragment` before anything else (RFC 1858 and 3128, counted
`fragments overlapping`): a first fragment too short for its whole
transport header (the TCP header with its options, UDP's 8 bytes, the ICMP
header), a TCP fragment at offset 8 or 16 (inside any TCP header), and a
fragment that starts inside the transport header of its datagram's first
fragment. Also dropped as `fragment`: a first fragment the rules allowed
but whose datagram finds no room in the fragment table (its rest could not
follow), a fragment that cannot be held. The fragment table holds
`frag_max` datagrams per worker (set-associative, 8 entries per bucket,
under 64 bytes per entry, allocated when the worker starts). An IPv6
atomic fragment (offset 0, M clear: RFC 6946) is a whole datagram.
Non-fragmented traffic pays one comparison per burst and one per packet
for all this.

Several workers. A worker sees only its own queues, so all fragments of a
datagram must reach the worker that sees its first. They do with the
AF_PACKET driver's hash fanout: Linux's symmetric flow hash reads no ports
from a fragment (first included), so every fragment of a datagram hashes
by addresses and protocol alone, to one queue (NICs' RSS generally hashes
fragments by addresses too). But the unfragmented packets of the same flow
hash with their ports and may land on another worker, whose flow table
then holds the flow: a reply that comes back fragmented may meet no flow
on its worker and be refused. Where UDP is fragmented in either direction
(DNS over EDNS0, IKE, NFS over UDP), run the firewall on one worker.
(`fanout_defrag` is no remedy: the kernel would hand over reassembled
datagrams, larger than the link's MTU.)";

static RULE: ParamType = ParamType::Table(RULE_FIELDS);

/// The fields of `timeouts`, with Linux-like defaults.
const TIMEOUT_FIELDS: &[ParamSpec] = &[
    ParamSpec {
        name: "tcp_syn",
        ty: ParamType::Duration,
        need: Need::Default("\"120s\""),
        doc: "TCP connection being opened (SYN sent, SYN-ACK seen)",
    },
    ParamSpec {
        name: "tcp_established",
        ty: ParamType::Duration,
        need: Need::Default("\"2h\""),
        doc: "TCP connection established (Linux keeps 5 days; 2 h suits a bounded table)",
    },
    ParamSpec {
        name: "tcp_fin",
        ty: ParamType::Duration,
        need: Need::Default("\"120s\""),
        doc: "TCP connection closing (FIN from one or both sides)",
    },
    ParamSpec {
        name: "tcp_time_wait",
        ty: ParamType::Duration,
        need: Need::Default("\"120s\""),
        doc: "TCP connection closed by FINs (TIME_WAIT)",
    },
    ParamSpec {
        name: "tcp_close",
        ty: ParamType::Duration,
        need: Need::Default("\"10s\""),
        doc: "TCP connection reset (RST)",
    },
    ParamSpec {
        name: "udp",
        ty: ParamType::Duration,
        need: Need::Default("\"30s\""),
        doc: "UDP flow that has seen packets in one direction only",
    },
    ParamSpec {
        name: "udp_stream",
        ty: ParamType::Duration,
        need: Need::Default("\"180s\""),
        doc: "UDP flow that has seen packets in both directions",
    },
    ParamSpec {
        name: "icmp",
        ty: ParamType::Duration,
        need: Need::Default("\"30s\""),
        doc: "ICMP echo flow",
    },
];

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "rules",
        ty: ParamType::List(&RULE),
        need: Need::Required,
        doc: "ordered rules `{ from, match, state, action, name }`; the first match decides",
    },
    ParamSpec {
        name: "non_ip",
        ty: ParamType::Choice(NonIp::NAMES),
        need: Need::Default("\"allow\""),
        doc: "non-IP frames (ARP): pass untracked, drop as `non-ip`, or go through the rules",
    },
    ParamSpec {
        name: "max_flows",
        ty: ParamType::Int {
            min: 1,
            max: 1 << 24,
        },
        need: Need::Default("65536"),
        doc: "most flows tracked per worker; new flows beyond it are dropped as `table-full`",
    },
    ParamSpec {
        name: "hash_seed",
        ty: ParamType::Int {
            min: 0,
            max: i64::MAX,
        },
        need: Need::Optional,
        doc: "seed of the flow table's hash; left out, each worker picks a random one (so senders \
              cannot aim flows at one slot); set it only to make runs reproducible",
    },
    ParamSpec {
        name: "frag_max",
        ty: ParamType::Int {
            min: 8,
            max: 1 << 20,
        },
        need: Need::Default("1024"),
        doc: "datagrams whose fragments are tracked at once per worker (entries under 64 bytes, \
              allocated at start); a fragment that finds no room is dropped as `fragment`",
    },
    ParamSpec {
        name: "frag_hold",
        ty: ParamType::Int { min: 0, max: 4096 },
        need: Need::Default("64"),
        doc: "most non-first fragments per worker held, in their pool slots, until the first \
              fragment of their datagram decides (0: such fragments are dropped as `fragment`)",
    },
    ParamSpec {
        name: "frag_timeout",
        ty: ParamType::Duration,
        need: Need::Default("\"30s\""),
        doc: "how long a datagram's fragments are tracked from its first fragment (or its \
              first held one); held fragments whose first has not come by then are dropped",
    },
    ParamSpec {
        name: "timeouts",
        ty: ParamType::Table(TIMEOUT_FIELDS),
        need: Need::Default("{}"),
        doc: "idle timeout of a flow by its state, e.g. `{ tcp_established = \"1h\", udp = \"20s\" }`",
    },
];

/// The `Firewall` element class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Firewall",
        summary:
            "stateful firewall: ordered allow/deny rules with TCP/UDP/ICMP connection tracking",
        description: DESCRIPTION,
        inputs: PortCount::Fixed(2),
        outputs: PortCount::Fixed(2),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: edit::HANDLERS,
        example: r#"[elements.fw]
class = "Firewall"
rules = [
  { from = "any", match = "any", state = "established", action = "allow" },
  { from = "inside", match = "tcp", action = "allow" },
  { from = "inside", match = "udp", action = "allow" },
  { from = "inside", match = "icmp and icmp type echo-request", action = "allow" },
  { from = "outside", match = "tcp and dst host 10.0.1.2 and dst port 8080", action = "allow" },
  { from = "any", match = "any", action = "deny", name = "default deny" },
]
max_flows = 65536
timeouts = { udp = "20s" }
"#,
        see_also: &["Classify"],
    },
    configure,
};

hpio_nf::choice! {
    /// What to do with non-IP frames (`non_ip`).
    enum NonIp {
        Allow = "allow",
        Deny = "deny",
        Rules = "rules",
    }
}

/// What every replica shares: the configuration (a rule edit gives the
/// replica its own copy).
#[derive(Clone)]
struct Shared {
    rules: Rules,
    /// The rules as configured, for `rules` and edits.
    rule_list: Vec<Rule>,
    timeouts: Timeouts,
    non_ip: NonIp,
    max_flows: usize,
    /// `None`: a random seed per replica.
    hash_seed: Option<u64>,
    frag_max: usize,
    frag_hold: usize,
    frag_timeout: u64,
}

/// The rules' decision on packet `$pkt` (parse `$h`, not a non-first
/// fragment) from `$side` at `$now`: written once, expanded in `push` for
/// whole packets -- where `$pass!()` and `$fail!(reason)` send or drop the
/// packet and go on to the next, the shape the compiler makes fastest --
/// and in [`Firewall::decide`] for first fragments, where they return the
/// verdict. Both must diverge; the expansion falls through when the packet
/// passes after its flow was updated or created.
macro_rules! decision {
    ($fw:ident, $h:expr, $pkt:expr, $side:expr, $now:expr, $pass:ident, $fail:ident) => {
        let shared = &*$fw.shared;
        let (seen, track, state) = if $h.l3 == L3Kind::Other {
            match shared.non_ip {
                NonIp::Allow => $pass!(),
                NonIp::Deny => $fail!(NON_IP),
                NonIp::Rules => (None, Track::Invalid, ConnState::Other),
            }
        } else {
            match extract(&$h, $pkt.data()) {
                Extract::Tracked(seen) => {
                    let track = $fw.table.track(&seen, $now);
                    let state = match track {
                        Track::Flow {
                            established: true, ..
                        } => ConnState::Established,
                        Track::Flow { .. } | Track::Start { .. } => ConnState::New,
                        Track::Invalid => ConnState::Other,
                    };
                    (Some(seen), track, state)
                }
                Extract::Untracked => (None, Track::Invalid, ConnState::Other),
                Extract::Malformed => $fail!(MALFORMED),
            }
        };
        let key = FlowKey::extract(&$h, $pkt.data());
        let Some(rule) = shared.rules.first($side, state, &key) else {
            $fail!(NO_RULE);
        };
        if let Some(hit) = $fw.hits.get_mut(rule) {
            *hit += 1;
        }
        if !shared.rules.allow.get(rule).copied().unwrap_or(false) {
            $fail!(DENIED);
        }
        if let Some(Err(_)) = seen.map(|s| $fw.table.pass(track, &s, $now, $pkt.len() as u32)) {
            $fail!(TABLE_FULL);
        }
    };
}

/// A worker's replica: the shared rules, its own flow table and counters.
struct Firewall {
    shared: Arc<Shared>,
    table: FlowTable,
    frags: FragTable,
    /// Hits per rule.
    hits: Box<[u64]>,
}

impl Firewall {
    fn new(shared: Arc<Shared>) -> Firewall {
        Firewall {
            table: match shared.hash_seed {
                Some(seed) => FlowTable::with_seed(shared.max_flows, shared.timeouts, seed),
                None => FlowTable::new(shared.max_flows, shared.timeouts),
            },
            frags: FragTable::new(
                shared.frag_max,
                shared.frag_hold,
                shared.frag_timeout,
                shared.hash_seed.map(|s| s ^ 0xf4a6),
            ),
            hits: vec![0; shared.rules.len()].into_boxed_slice(),
            shared,
        }
    }

    /// The rules' verdict on a first fragment: `Ok` to pass it (its flow
    /// updated or created), or the drop reason.
    #[inline(never)]
    fn decide(
        &mut self,
        h: &Headers,
        pkt: &Packet,
        side: Side,
        now: u64,
    ) -> Result<(), DropReason> {
        macro_rules! pass {
            () => {
                return Ok(())
            };
        }
        macro_rules! fail {
            ($r:expr) => {
                return Err($r)
            };
        }
        decision!(self, h, pkt, side, now, pass, fail);
        Ok(())
    }

    /// A frame that did not parse, or a fragment: everything about it but
    /// the rules. A malformed frame is dropped (as `fragment` when it is a
    /// first fragment too short for its transport header, which could hide
    /// the ports from the rules: RFC 1858's tiny fragment); a later fragment
    /// follows its first's verdict, or waits for it; a first fragment goes
    /// through the rules ([`Firewall::decide`]) and its verdict is recorded
    /// for the rest ([`Firewall::first_decided`]).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn rare(
        &mut self,
        cx: &mut Context<'_>,
        h: &Headers,
        pkt: Packet,
        input: usize,
        side: Side,
        now: u64,
        out: &mut Output,
    ) {
        if h.status != ParseStatus::Ok {
            let reason = if h.frag != FragKind::None && h.status == ParseStatus::L4Truncated {
                self.frags.stats.overlapping += 1;
                FRAGMENT
            } else {
                MALFORMED
            };
            out.drop(pkt, reason);
            return;
        }
        if h.frag != FragKind::Later {
            let verdict = self.decide(h, &pkt, side, now);
            self.first_decided(h, pkt, input, now, verdict, out);
            return;
        }
        let frame = pkt.data();
        let Some((key, frag)) = h
            .fragment(frame)
            .and_then(|f| Some((FragKey::of(h, frame, &f, input as u8)?, f)))
        else {
            out.drop(pkt, MALFORMED);
            return;
        };
        // Never hold a packet when fewer than half the pool's slots are
        // free: the worker needs them to receive.
        let pool = cx.pool();
        let room = pool.available() * 2 >= pool.capacity();
        self.frags.later(&key, frag.offset, now, pkt, room, out);
    }

    /// A first fragment the rules decided on (`verdict`): records the
    /// verdict for the rest of its datagram, sends or drops it, then the
    /// fragments held for it.
    #[cold]
    #[inline(never)]
    fn first_decided(
        &mut self,
        h: &Headers,
        pkt: Packet,
        input: usize,
        now: u64,
        verdict: Result<(), DropReason>,
        out: &mut Output,
    ) {
        let frame = pkt.data();
        let Some((key, frag)) = h
            .fragment(frame)
            .and_then(|f| Some((FragKey::of(h, frame, &f, input as u8)?, f)))
        else {
            out.drop(pkt, MALFORMED);
            return;
        };
        let end = header_end(h, frame, &frag);
        match self
            .frags
            .first(&key, now, verdict.map(|()| input as u8), end)
        {
            Some(entry) => {
                match verdict {
                    Ok(()) => out.push(input, pkt),
                    Err(r) => out.drop(pkt, r),
                }
                self.frags.release(entry, out);
            }
            None => match verdict {
                // No room to let the rest follow: the datagram cannot be
                // completed, so its first fragment goes no further either.
                Ok(()) => out.drop(pkt, FRAGMENT),
                Err(r) => out.drop(pkt, r),
            },
        }
    }

    #[inline(always)]
    fn push_plain(
        &mut self,
        cx: &mut Context<'_>,
        input: usize,
        batch: &mut Batch,
        out: &mut Output,
    ) {
        let (side, port) = if input == 0 {
            (Side::Inside, 0)
        } else {
            (Side::Outside, 1)
        };
        let now = cx.now();
        self.table
            .sweep(now, batch.len().div_ceil(PACKETS_PER_SWEPT_SLOT));
        if self.frags.due(now) {
            self.frags.expire(now, out);
        }
        for mut pkt in batch.drain(..) {
            let h = pkt.headers();
            // One test for both rare cases: a frame that did not parse, a fragment.
            if (h.status != ParseStatus::Ok) | (h.frag != FragKind::None) {
                self.rare(cx, &h, pkt, input, side, now, out);
                continue;
            }
            macro_rules! pass {
                () => {{
                    out.push(port, pkt);
                    continue;
                }};
            }
            macro_rules! fail {
                ($r:expr) => {{
                    out.drop(pkt, $r);
                    continue;
                }};
            }
            decision!(self, h, pkt, side, now, pass, fail);
            out.push(port, pkt);
        }
    }
}

impl Element for Firewall {
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        if cx.tracing() {
            return self.push_traced(cx, input, batch, out);
        }
        self.push_plain(cx, input, batch, out)
    }

    fn finish(&mut self, _cx: &mut Context<'_>, out: &mut Output) {
        self.frags.finish(out);
    }

    /// Hot reload: see [`handover`].
    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(self.hand_over())
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, cx: &mut Context<'_>) {
        self.take_over(state, cx);
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        for (name, hits) in self.shared.rules.names.iter().zip(self.hits.iter()) {
            report(name, *hits);
        }
        let f = &self.frags.stats;
        report(FLOWS, self.table.len() as u64);
        report(FLOWS_CREATED, self.table.created);
        report(FLOWS_EXPIRED, self.table.expired);
        report(FRAGMENTS_PASSED, f.passed);
        report(FRAGMENTS_HELD, f.held);
        report(FRAGMENTS_RELEASED, f.released);
        report(FRAGMENTS_EXPIRED, f.expired);
        report(FRAGMENTS_DENIED, f.denied);
        report(FRAGMENTS_OVERLAPPING, f.overlapping);
        report(FRAGMENTS_TABLE_FULL, f.full);
        report(FRAGMENTS_DROPPED_AT_END, f.at_end);
        report(FRAGMENTS_HELD_NOW, self.frags.held_now() as u64);
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        self.read_handler(name, cx)
    }

    fn write(&mut self, name: &str, arg: &str, _cx: &HandlerCx) -> HandlerResult {
        self.write_handler(name, arg)
    }
}

/// A timeout field in nanoseconds; zero is refused.
fn timeout(t: &Params, name: &str) -> Result<u64, ParamError> {
    let d = t
        .duration(name)
        .map_err(|e| ParamError::nested("timeouts", None, e))?;
    if d < Duration::from_millis(1) {
        return Err(ParamError::nested(
            "timeouts",
            None,
            ParamError::new(name, "must be at least 1ms"),
        ));
    }
    Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let rules = parse_rules(p)?;
    let non_ip = p.choice::<NonIp>("non_ip")?;
    let max_flows = p.usize("max_flows")?;
    if max_flows == 0 || max_flows > 1 << 24 {
        return Err(ParamError::new("max_flows", "expected 1..=16777216"));
    }
    let hash_seed = match p.get("hash_seed") {
        Some(_) => Some(p.int("hash_seed")? as u64),
        None => None,
    };
    let t = p.table("timeouts")?;
    let timeouts = Timeouts {
        tcp_syn: timeout(t, "tcp_syn")?,
        tcp_established: timeout(t, "tcp_established")?,
        tcp_fin: timeout(t, "tcp_fin")?,
        tcp_time_wait: timeout(t, "tcp_time_wait")?,
        tcp_close: timeout(t, "tcp_close")?,
        udp: timeout(t, "udp")?,
        udp_stream: timeout(t, "udp_stream")?,
        icmp: timeout(t, "icmp")?,
    };
    let frag_timeout = p.duration("frag_timeout")?;
    if frag_timeout < Duration::from_millis(1) {
        return Err(ParamError::new("frag_timeout", "must be at least 1ms"));
    }
    let shared = Arc::new(Shared {
        rules: Rules::new(&rules),
        rule_list: rules,
        timeouts,
        non_ip,
        max_flows,
        hash_seed,
        frag_max: p.usize("frag_max")?,
        frag_hold: p.usize("frag_hold")?,
        frag_timeout: u64::try_from(frag_timeout.as_nanos()).unwrap_or(u64::MAX),
    });
    Ok(Configured::new(Inputs::Fixed(2), 2, move |_worker| {
        Box::new(Firewall::new(shared.clone()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{SlicedPacket, TransportSlice};
    use hpio_nf::config::{configure_element, ConfigErrors};
    use hpio_nf::element::Registry;
    use hpio_nf::packet::{Packet, Pool};
    use testkit::frame::{fragments, tcp_flags, Frame, Ip, ARP_REQUEST, TCP_SYN};

    const S: u64 = 1_000_000_000;
    const IN_HOST: [u8; 4] = [10, 0, 1, 2];
    const OUT_HOST: [u8; 4] = [192, 0, 2, 7];
    const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];

    const RULES: &str = r#"
rules = [
  { from = "outside", match = "tcp and dst port 22", action = "deny", name = "no ssh" },
  { match = "any", state = "established", action = "allow", name = "replies" },
  { from = "inside", match = "tcp", action = "allow", name = "out tcp" },
  { from = "inside", match = "udp", action = "allow", name = "out udp" },
  { from = "inside", match = "icmp and icmp type echo-request", action = "allow", name = "out ping" },
  { from = "outside", match = "tcp and dst host 10.0.1.2 and dst port 8080", action = "allow", name = "web" },
  { from = "outside", match = "any", action = "deny", name = "in deny" },
]
"#;

    fn registry() -> Registry {
        let mut r = Registry::empty();
        crate::register(&mut r);
        r
    }

    fn configure_toml(body: &str) -> Result<Configured, ConfigErrors> {
        configure_element(&registry(), &[], "Firewall", body)
    }

    /// A replica of a firewall configured from `body`, and its outputs.
    struct Fw {
        e: Box<dyn Element>,
        out: Output,
        pool: Pool,
    }

    impl Fw {
        fn new(body: &str) -> Fw {
            let c = configure_toml(body).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(2), 2));
            Fw {
                e: c.instantiate(0),
                out: Output::new(2, CLASS.info.drop_reasons.len()),
                pool: Pool::new(4),
            }
        }

        /// Pushes `frames` into input `input` at time `now`; returns how many
        /// came out of the matching output.
        fn push(&mut self, input: usize, now: u64, frames: &[Vec<u8>]) -> usize {
            let mut cx = Context::new(&mut self.pool, now, 0);
            let mut batch: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
            self.e.push(&mut cx, input, &mut batch, &mut self.out);
            assert!(batch.is_empty(), "every packet is handled");
            self.out.take(input).len()
        }

        fn counter(&self, name: &str) -> u64 {
            let mut v = None;
            self.e.stats(&mut |k, n| {
                if k == name {
                    v = Some(n)
                }
            });
            v.unwrap_or_else(|| panic!("no counter {name}"))
        }

        fn drops(&self, reason: DropReason) -> u64 {
            self.out.drops(reason)
        }
    }

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: &str) -> Vec<u8> {
        let (sm, dm) = if src == IN_HOST {
            (IN_MAC, OUT_MAC)
        } else {
            (OUT_MAC, IN_MAC)
        };
        let v = Frame::tcp(Ip::v4(src, dst), sport, dport, tcp_flags(flags))
            .macs(sm, dm)
            .seq(100, 1, 1000)
            .build();
        // What we built is what we meant.
        let p = SlicedPacket::from_ethernet(&v).unwrap();
        let Some(TransportSlice::Tcp(t)) = &p.transport else {
            panic!("etherparse sees TCP")
        };
        assert_eq!(t.syn(), flags.contains("syn"));
        drop(p);
        v
    }

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        Frame::udp(Ip::v4(src, dst), sport, dport)
            .macs(IN_MAC, OUT_MAC)
            .payload(b"data")
            .build()
    }

    fn echo(src: [u8; 4], dst: [u8; 4], request: bool, id: u16) -> Vec<u8> {
        Frame::echo(Ip::v4(src, dst), id, 1)
            .reply(!request)
            .macs(IN_MAC, OUT_MAC)
            .payload(b"ping")
            .build()
    }

    fn arp() -> Vec<u8> {
        let (sender, target) = ((IN_MAC, [10, 0, 1, 2]), ([0; 6], [10, 0, 1, 3]));
        Frame::arp(ARP_REQUEST, sender, target).pad(60).build()
    }

    #[test]
    fn example_configures_and_blocks_unsolicited_traffic() {
        let c = configure_element(&registry(), &[], "Firewall", CLASS.info.example)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut fw = Fw {
            e: c.instantiate(0),
            out: Output::new(2, CLASS.info.drop_reasons.len()),
            pool: Pool::new(4),
        };
        assert_eq!(fw.push(1, 0, &[tcp(OUT_HOST, 5, IN_HOST, 22, "syn")]), 0);
        assert_eq!(fw.counter("default deny"), 1);
        assert_eq!(fw.push(1, 0, &[tcp(OUT_HOST, 5, IN_HOST, 8080, "syn")]), 1);
        assert_eq!(fw.push(0, 0, &[udp(IN_HOST, 5000, OUT_HOST, 53)]), 1);
        assert_eq!(fw.push(1, 0, &[udp(OUT_HOST, 53, IN_HOST, 5000)]), 1);
    }

    #[test]
    fn tcp_replies_pass_only_for_inside_connections() {
        let mut fw = Fw::new(RULES);
        // Unsolicited SYN-ACK and ACK from outside: invalid, denied on `in deny`.
        assert_eq!(
            fw.push(1, 0, &[tcp(OUT_HOST, 80, IN_HOST, 40000, "syn,ack")]),
            0
        );
        assert_eq!(
            fw.push(1, 0, &[tcp(OUT_HOST, 80, IN_HOST, 40000, "ack")]),
            0
        );
        assert_eq!(fw.counter("in deny"), 2);
        // The inside opens the connection; the same packets now pass.
        assert_eq!(
            fw.push(0, S, &[tcp(IN_HOST, 40000, OUT_HOST, 80, "syn")]),
            1
        );
        assert_eq!(fw.counter("out tcp"), 1);
        assert_eq!(
            fw.push(1, S, &[tcp(OUT_HOST, 80, IN_HOST, 40000, "syn,ack")]),
            1
        );
        assert_eq!(
            fw.push(0, S, &[tcp(IN_HOST, 40000, OUT_HOST, 80, "ack")]),
            1
        );
        assert_eq!(
            fw.push(1, S, &[tcp(OUT_HOST, 80, IN_HOST, 40000, "ack")]),
            1
        );
        assert_eq!(fw.counter("replies"), 3);
        assert_eq!(fw.counter("in deny"), 2);
        // Outside SSH is denied even to a host with an open connection.
        assert_eq!(fw.push(1, S, &[tcp(OUT_HOST, 80, IN_HOST, 22, "syn")]), 0);
        assert_eq!(fw.counter("no ssh"), 1);
        assert_eq!(fw.drops(DENIED), 3);
        assert_eq!((fw.counter("flows"), fw.counter("flows created")), (1, 1));
        // A mid-stream ACK from the inside passes (rule `out tcp`) but opens no flow.
        assert_eq!(
            fw.push(0, S, &[tcp(IN_HOST, 41000, OUT_HOST, 80, "ack")]),
            1
        );
        assert_eq!(
            fw.push(1, S, &[tcp(OUT_HOST, 80, IN_HOST, 41000, "ack")]),
            0
        );
        assert_eq!(fw.counter("flows"), 1);
    }

    #[test]
    fn allowed_service_and_its_replies() {
        let mut fw = Fw::new(RULES);
        assert_eq!(
            fw.push(1, 0, &[tcp(OUT_HOST, 3333, IN_HOST, 8080, "syn")]),
            1
        );
        assert_eq!(fw.counter("web"), 1);
        // The server's answer is established (and `out tcp` would pass it anyway).
        assert_eq!(
            fw.push(0, 0, &[tcp(IN_HOST, 8080, OUT_HOST, 3333, "syn,ack")]),
            1
        );
        assert_eq!(fw.counter("replies"), 1);
        // The service port on another host is not open.
        assert_eq!(
            fw.push(1, 0, &[tcp(OUT_HOST, 3333, [10, 0, 1, 9], 8080, "syn")]),
            0
        );
        assert_eq!(fw.counter("in deny"), 1);
    }

    #[test]
    fn udp_and_ping_replies_and_their_timeouts() {
        let mut fw = Fw::new(&format!(
            "{RULES}\ntimeouts = {{ udp = \"5s\", icmp = \"2s\" }}"
        ));
        assert_eq!(fw.push(0, 0, &[udp(IN_HOST, 5000, OUT_HOST, 53)]), 1);
        assert_eq!(fw.push(1, 4 * S, &[udp(OUT_HOST, 53, IN_HOST, 5000)]), 1);
        // The answer made it a stream: 180 s default, not 5 s.
        assert_eq!(fw.push(1, 100 * S, &[udp(OUT_HOST, 53, IN_HOST, 5000)]), 1);
        assert_eq!(fw.push(1, 281 * S, &[udp(OUT_HOST, 53, IN_HOST, 5000)]), 0);
        // Unanswered, a UDP flow lasts `udp`.
        assert_eq!(fw.push(0, 0, &[udp(IN_HOST, 6000, OUT_HOST, 53)]), 1);
        assert_eq!(fw.push(1, 5 * S, &[udp(OUT_HOST, 53, IN_HOST, 6000)]), 0);
        // Ping: the reply passes within `icmp`, not after; a reply with another id never.
        assert_eq!(fw.push(0, 0, &[echo(IN_HOST, OUT_HOST, true, 9)]), 1);
        assert_eq!(fw.push(1, S, &[echo(OUT_HOST, IN_HOST, false, 10)]), 0);
        assert_eq!(fw.push(1, S, &[echo(OUT_HOST, IN_HOST, false, 9)]), 1);
        assert_eq!(fw.push(1, 3 * S, &[echo(OUT_HOST, IN_HOST, false, 9)]), 0);
        // Pings from outside are denied.
        assert_eq!(fw.push(1, 3 * S, &[echo(OUT_HOST, IN_HOST, true, 9)]), 0);
        assert_eq!(fw.counter("in deny"), 5);
        assert_eq!(fw.counter("flows expired"), 3);
    }

    #[test]
    fn full_table_refuses_new_flows_but_not_existing_ones() {
        let mut fw = Fw::new(&format!("{RULES}\nmax_flows = 2"));
        let opens: Vec<Vec<u8>> = (0..3)
            .map(|i| udp(IN_HOST, 7000 + i, OUT_HOST, 53))
            .collect();
        assert_eq!(fw.push(0, 0, &opens), 2);
        assert_eq!(fw.drops(TABLE_FULL), 1);
        assert_eq!(fw.counter("out udp"), 3, "the rule matched all three");
        assert_eq!(fw.push(1, 0, &[udp(OUT_HOST, 53, IN_HOST, 7001)]), 1);
        assert_eq!(fw.push(1, 0, &[udp(OUT_HOST, 53, IN_HOST, 7002)]), 0);
        // After the first flow expires there is room again.
        assert_eq!(fw.push(0, 31 * S, &[opens[2].clone()]), 1);
        assert_eq!(fw.drops(TABLE_FULL), 1);
    }

    #[test]
    fn non_ip_policy_and_malformed_frames() {
        let mut fw = Fw::new(RULES);
        assert_eq!(fw.push(1, 0, &[arp()]), 1, "non_ip = allow by default");
        let mut fw = Fw::new(&format!("{RULES}\nnon_ip = \"deny\""));
        assert_eq!(fw.push(0, 0, &[arp()]), 0);
        assert_eq!(fw.drops(NON_IP), 1);
        let rules = r#"
non_ip = "rules"
rules = [
  { from = "inside", match = "arp", action = "allow" },
  { from = "inside", match = "any", state = "established", action = "allow" },
]"#;
        let mut fw = Fw::new(rules);
        assert_eq!(fw.push(0, 0, &[arp()]), 1);
        assert_eq!(fw.push(1, 0, &[arp()]), 0);
        assert_eq!(fw.drops(NO_RULE), 1);
        let mut cut = tcp(IN_HOST, 1, OUT_HOST, 2, "syn");
        cut.truncate(14 + 20 + 8);
        let mut short_echo = echo(IN_HOST, OUT_HOST, true, 1);
        short_echo.truncate(14 + 20 + 4);
        short_echo[16..18].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(fw.push(0, 0, &[cut, short_echo, vec![0; 10]]), 0);
        assert_eq!(fw.drops(MALFORMED), 3);
    }

    #[test]
    fn untracked_protocols_need_a_stateless_rule() {
        // GRE from the inside: allowed by a state-any rule, but creates no flow.
        let gre = Frame::raw(Ip::v4(IN_HOST, OUT_HOST), 47)
            .macs(IN_MAC, OUT_MAC)
            .payload(&[0; 4])
            .build();
        let body = r#"rules = [
  { from = "inside", match = "proto 47", state = "new", action = "allow" },
  { from = "inside", match = "proto 47", action = "allow", name = "gre" },
]"#;
        let mut fw = Fw::new(body);
        assert_eq!(fw.push(0, 0, &[gre]), 1);
        assert_eq!(fw.counter("gre"), 1);
        assert_eq!(fw.counter("flows"), 0);
    }

    #[test]
    fn replicas_have_their_own_tables() {
        let c = configure_toml(RULES).unwrap();
        let mut a = c.instantiate(0);
        let mut b = c.instantiate(1);
        let mut out = Output::new(2, 5);
        let mut pool = Pool::new(4);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut batch: Batch =
            std::iter::once(Packet::from_bytes(&udp(IN_HOST, 1, OUT_HOST, 2))).collect();
        a.push(&mut cx, 0, &mut batch, &mut out);
        let mut reply: Batch =
            std::iter::once(Packet::from_bytes(&udp(OUT_HOST, 2, IN_HOST, 1))).collect();
        b.push(&mut cx, 1, &mut reply, &mut out);
        assert_eq!(out.take(1).len(), 0, "worker 1 never saw the flow");
        let mut reply: Batch =
            std::iter::once(Packet::from_bytes(&udp(OUT_HOST, 2, IN_HOST, 1))).collect();
        a.push(&mut cx, 1, &mut reply, &mut out);
        assert_eq!(out.take(1).len(), 1);
    }

    /// The config errors a user sees: rendered with line and column.
    fn config_error(body: &str) -> String {
        configure_toml(body).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn config_errors_point_at_the_rule_field_and_term() {
        let e = config_error(
            "rules = [\n  { from = \"inside\", match = \"tcp and dst prot 22\", action = \"allow\" },\n]",
        );
        assert!(
            e.contains("invalid `match` in item 0 of `rules`: at byte 12: "),
            "{e}"
        );
        // Line 2, at `prot`: column 3 + `{ from = "inside", match = "` + `tcp and dst `.
        assert!(e.contains("<snippet>:2:43"), "{e}");
        let e = config_error("rules = [{ from = \"inside\", mach = \"tcp\", action = \"allow\" }]");
        assert!(
            e.contains("unknown key `mach` in item 0 of `rules` (did you mean `match`?)"),
            "{e}"
        );
        let e = config_error("rules = [{ match = \"tcp\", action = \"pass\" }]");
        assert!(e.contains("invalid value for `action` in item 0 of `rules`: expected one of \"allow\", \"deny\""), "{e}");
        let e = config_error("rules = [{ match = \"tcp\" }]");
        assert!(
            e.contains("missing required key `action` in item 0 of `rules`"),
            "{e}"
        );
        let e = config_error("rules = [\"allow from inside: tcp\"]");
        assert!(
            e.contains("expected a table with keys from, match, state, action, name"),
            "{e}"
        );
        let e = config_error(&format!("{RULES}\ntimeouts = {{ udp = \"0s\" }}"));
        assert!(
            e.contains("invalid `udp` in `timeouts`: must be at least 1ms"),
            "{e}"
        );
        let e = config_error(&format!("{RULES}\ntimeouts = {{ tcp = \"1s\" }}"));
        assert!(e.contains("unknown key `tcp` in `timeouts`"), "{e}");
        let e = config_error(&format!("{RULES}\nmax_flows = 0"));
        assert!(e.contains("invalid value for `max_flows`"), "{e}");
        let e = config_error(&format!("{RULES}\nhash_seed = -1"));
        assert!(e.contains("invalid value for `hash_seed`"), "{e}");
        let e = config_error("rules = []");
        assert!(e.contains("at least one rule"), "{e}");
        let e = config_error(
            "rules = [\n  { match = \"any\", action = \"deny\" },\n  { match = \"tcp\", action = \"allow\" },\n]",
        );
        assert!(
            e.contains("invalid item 1 of `rules`: this rule can never match: rule 0"),
            "{e}"
        );
        assert!(e.contains("<snippet>:3:3"), "{e}");
    }

    /// An inside UDP datagram of `len` data bytes (`v6`: over IPv6).
    fn big_udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, len: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        Frame::udp(Ip::v4(src, dst), sport, dport)
            .macs(IN_MAC, OUT_MAC)
            .payload(&data)
            .build()
    }

    fn big_udp6(src: u8, sport: u16, dst: u8, dport: u16, len: usize) -> Vec<u8> {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        Frame::udp(Ip::v6([src; 16], [dst; 16]), sport, dport)
            .macs(IN_MAC, OUT_MAC)
            .payload(&data)
            .build()
    }

    fn big_echo(src: [u8; 4], dst: [u8; 4], request: bool, id: u16, len: usize) -> Vec<u8> {
        Frame::echo(Ip::v4(src, dst), id, 1)
            .reply(!request)
            .macs(IN_MAC, OUT_MAC)
            .payload(&vec![0x5a; len])
            .build()
    }

    impl Fw {
        /// Pushes `frames` into `input` at `now`; returns the frames that
        /// came out of the matching output, in order.
        fn run(&mut self, input: usize, now: u64, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
            let mut cx = Context::new(&mut self.pool, now, 0);
            let mut batch: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
            self.e.push(&mut cx, input, &mut batch, &mut self.out);
            assert!(batch.is_empty(), "every packet is handled");
            self.out
                .take(input)
                .iter()
                .map(|p| p.data().to_vec())
                .collect()
        }

        fn finish(&mut self) {
            let mut cx = Context::new(&mut self.pool, 0, 0);
            self.e.finish(&mut cx, &mut self.out);
        }
    }

    const FRAGMENT_DROP: DropReason = FRAGMENT;

    #[test]
    fn fragmented_udp_passes_both_ways_with_its_first_fragment() {
        let mut fw = Fw::new(RULES);
        // The reported case: 3000 bytes of UDP from the inside, three fragments.
        let out = fragments(&big_udp(IN_HOST, 5000, OUT_HOST, 4500, 3000), 1480, 7);
        assert_eq!(out.len(), 3);
        assert_eq!(
            fw.run(0, 0, &out),
            out,
            "all three, byte for byte, in order"
        );
        assert_eq!(
            fw.counter("out udp"),
            1,
            "the rules see the first fragment only"
        );
        assert_eq!(fw.counter("fragments passed"), 2);
        // The answer, fragmented too, is established.
        let back = fragments(&big_udp(OUT_HOST, 4500, IN_HOST, 5000, 2500), 1024, 99);
        assert_eq!(back.len(), 3);
        assert_eq!(fw.run(1, S, &back), back);
        assert_eq!(fw.counter("replies"), 1);
        assert_eq!(fw.counter("fragments passed"), 4);
        assert_eq!(fw.counter("in deny"), 0);
        // An unsolicited fragmented datagram from outside: the first is denied, the rest with it.
        let unsolicited = fragments(&big_udp(OUT_HOST, 4500, IN_HOST, 5001, 3000), 1480, 8);
        assert!(fw.run(1, S, &unsolicited).is_empty());
        assert_eq!(fw.counter("in deny"), 1);
        assert_eq!(fw.counter("fragments denied"), 2);
        assert_eq!(fw.drops(DENIED), 3);
        assert_eq!(fw.drops(FRAGMENT_DROP), 0);
    }

    #[test]
    fn fragmented_pings_and_their_replies() {
        let mut fw = Fw::new(RULES);
        let req = fragments(&big_echo(IN_HOST, OUT_HOST, true, 3, 4000), 1480, 1);
        assert_eq!(req.len(), 3);
        assert_eq!(fw.run(0, 0, &req), req);
        let rep = fragments(&big_echo(OUT_HOST, IN_HOST, false, 3, 4000), 1480, 2);
        assert_eq!(fw.run(1, 0, &rep), rep);
        assert_eq!((fw.counter("out ping"), fw.counter("replies")), (1, 1));
        // A fragmented ping from outside is denied, all of it.
        let inbound = fragments(&big_echo(OUT_HOST, IN_HOST, true, 4, 4000), 1480, 3);
        assert!(fw.run(1, 0, &inbound).is_empty());
        assert_eq!(fw.drops(DENIED), 3);
        assert_eq!(fw.counter("fragments passed"), 4);
    }

    #[test]
    fn fragments_before_their_first_wait_for_it() {
        let mut fw = Fw::new(RULES);
        let f = fragments(&big_udp(IN_HOST, 5000, OUT_HOST, 53, 4000), 1480, 11);
        assert_eq!(f.len(), 3);
        // Last, then middle: held.
        assert!(fw.run(0, 0, &[f[2].clone()]).is_empty());
        assert!(fw.run(0, S, &[f[1].clone()]).is_empty());
        assert_eq!(
            (
                fw.counter("fragments held"),
                fw.counter("fragments held now")
            ),
            (2, 2)
        );
        // The first: allowed, then both held ones follow it.
        let out = fw.run(0, 2 * S, &[f[0].clone()]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], f[0], "the first goes first");
        assert!(out.contains(&f[1]) && out.contains(&f[2]));
        assert_eq!(fw.counter("fragments released"), 2);
        assert_eq!(fw.counter("fragments held now"), 0);
        // In one burst, in reverse order.
        let g = fragments(&big_udp(IN_HOST, 5001, OUT_HOST, 53, 4000), 1480, 12);
        let rev: Vec<Vec<u8>> = g.iter().rev().cloned().collect();
        let out = fw.run(0, 3 * S, &rev);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], g[0]);
        // Held before a first that is denied: dropped with the first's reason.
        let h = fragments(&big_udp(OUT_HOST, 53, IN_HOST, 7777, 3000), 1480, 13);
        assert!(fw
            .run(1, 4 * S, &[h[1].clone(), h[2].clone(), h[0].clone()])
            .is_empty());
        assert_eq!(fw.drops(DENIED), 3);
        assert_eq!(fw.counter("fragments denied"), 2);
        assert_eq!(fw.drops(FRAGMENT_DROP), 0);
    }

    #[test]
    fn unsolicited_fragments_expire_and_are_counted() {
        let mut fw = Fw::new(&format!("{RULES}\nfrag_timeout = \"5s\""));
        let f = fragments(&big_udp(OUT_HOST, 53, IN_HOST, 5000, 3000), 1480, 21);
        // Later fragments whose first never comes.
        assert!(fw.run(1, 0, &f[1..]).is_empty());
        assert_eq!(fw.counter("fragments held now"), 2);
        // Still held just before the timeout; dropped at it (on the next burst).
        assert!(fw.run(0, 5 * S - 1, &[]).is_empty());
        assert_eq!(fw.counter("fragments held now"), 2);
        assert!(fw.run(0, 5 * S, &[]).is_empty());
        assert_eq!(fw.counter("fragments expired"), 2);
        assert_eq!(fw.drops(FRAGMENT_DROP), 2);
        assert_eq!(fw.counter("fragments held now"), 0);
        // A first fragment allowed long ago lets no late fragment through.
        let g = fragments(&big_udp(IN_HOST, 6000, OUT_HOST, 53, 3000), 1480, 22);
        assert_eq!(fw.run(0, 10 * S, &g[..2]).len(), 2);
        assert!(
            fw.run(0, 16 * S, &g[2..]).is_empty(),
            "held: its entry expired"
        );
        fw.finish();
        assert_eq!(fw.counter("fragments dropped at end"), 1);
        assert_eq!(fw.drops(FRAGMENT_DROP), 3);
    }

    #[test]
    fn tiny_and_overlapping_tcp_fragments_are_dropped() {
        let mut fw = Fw::new(RULES);
        let syn = Frame::tcp(Ip::v4(IN_HOST, OUT_HOST), 40000, 80, TCP_SYN)
            .macs(IN_MAC, OUT_MAC)
            .payload(&[0; 64])
            .build();
        // The first fragment holds 8 bytes of TCP: no flags for the rules to see.
        let tiny = fragments(&syn, 8, 31);
        assert!(fw.run(0, 0, &tiny[..1]).is_empty());
        assert_eq!(fw.drops(FRAGMENT_DROP), 1);
        assert_eq!(fw.drops(MALFORMED), 0);
        // A later fragment at offset 8 (inside any TCP header): RFC 1858's overlap.
        assert!(fw.run(0, 0, &tiny[1..2]).is_empty());
        assert_eq!(fw.drops(FRAGMENT_DROP), 2);
        assert_eq!(fw.counter("fragments overlapping"), 2);
        // A first fragment with the whole header passes; a forged fragment
        // overlapping its 32-byte header (offset 24) does not, the rest does.
        // MSS 1460, NOP, window scale 7, SACK permitted, end.
        let mss_ws_sack = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0];
        let opts = Frame::tcp(Ip::v4(IN_HOST, OUT_HOST), 40001, 80, TCP_SYN)
            .macs(IN_MAC, OUT_MAC)
            .tcp_options(&mss_ws_sack)
            .payload(&[1; 64])
            .build();
        assert_eq!(opts[14 + 20 + 12] >> 4, 8, "a 32-byte TCP header");
        let f = fragments(&opts, 40, 32);
        // The second fragment's bytes, said to be at offset 24 instead of 40.
        let forged = Frame::raw(Ip::v4(IN_HOST, OUT_HOST), 6)
            .macs(IN_MAC, OUT_MAC)
            .ident(32)
            .fragment(3, true)
            .payload(&f[1][34..])
            .build();
        assert_eq!((forged.len(), &forged[..20]), (f[1].len(), &f[1][..20]));
        let out = fw.run(0, 0, &[f[0].clone(), forged, f[1].clone(), f[2].clone()]);
        assert_eq!(out, vec![f[0].clone(), f[1].clone(), f[2].clone()]);
        assert_eq!(fw.counter("fragments overlapping"), 3);
    }

    #[test]
    fn ipv6_fragments_follow_their_first() {
        let body = r#"rules = [
  { match = "any", state = "established", action = "allow", name = "replies" },
  { from = "inside", match = "ip6 and udp and dst port 4500", action = "allow", name = "ike" },
  { match = "any", action = "deny", name = "deny" },
]"#;
        let mut fw = Fw::new(body);
        let out6 = fragments(&big_udp6(1, 500, 2, 4500, 3000), 1232, 0xdead_beef);
        assert_eq!(out6.len(), 3);
        // Out of order: the last one first.
        let order = [out6[2].clone(), out6[0].clone(), out6[1].clone()];
        let got = fw.run(0, 0, &order);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].clone(), got[1].clone()),
            (out6[0].clone(), out6[2].clone())
        );
        assert_eq!(got[2], out6[1]);
        let back = fragments(&big_udp6(2, 4500, 1, 500, 2000), 1232, 5);
        assert_eq!(fw.run(1, 0, &back), back);
        // Another port is denied, with all its fragments.
        let other = fragments(&big_udp6(1, 500, 2, 4501, 3000), 1232, 6);
        assert!(fw.run(0, 0, &other).is_empty());
        assert_eq!(fw.drops(DENIED), 3);
        assert_eq!(fw.counter("fragments passed"), 2 + 1);
    }

    #[test]
    fn holding_is_bounded_by_frag_hold_and_the_pool() {
        let mut fw = Fw::new(&format!("{RULES}\nfrag_hold = 2"));
        let later: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                fragments(
                    &big_udp(IN_HOST, 100 + i, OUT_HOST, 53, 2000),
                    1480,
                    i as u32,
                )[1]
                .clone()
            })
            .collect();
        assert!(fw.run(0, 0, &later).is_empty());
        assert_eq!(fw.counter("fragments held now"), 2);
        assert_eq!(fw.counter("fragments table full"), 1);
        assert_eq!(fw.drops(FRAGMENT_DROP), 1);
        // frag_hold = 0: nothing waits.
        let mut fw = Fw::new(&format!("{RULES}\nfrag_hold = 0"));
        assert!(fw.run(0, 0, &later[..1]).is_empty());
        assert_eq!(fw.drops(FRAGMENT_DROP), 1);
        // A pool more than half in use: nothing waits either.
        let mut fw = Fw::new(RULES);
        let taken: Vec<Packet> = (0..3).map(|_| fw.pool.alloc().unwrap()).collect();
        assert!(fw.run(0, 0, &later[..1]).is_empty());
        assert_eq!(fw.counter("fragments held now"), 0);
        assert_eq!(fw.drops(FRAGMENT_DROP), 1);
        drop(taken);
    }

    #[test]
    fn classify_terms_work_in_firewall_rules() {
        // A policy that refuses fragments outright.
        let body = r#"rules = [
  { match = "frag", action = "deny", name = "no fragments" },
  { from = "inside", match = "udp", action = "allow", name = "out" },
]"#;
        let mut fw = Fw::new(body);
        let f = fragments(&big_udp(IN_HOST, 1, OUT_HOST, 2, 3000), 1480, 1);
        assert!(fw.run(0, 0, &f).is_empty());
        assert_eq!(
            fw.counter("no fragments"),
            1,
            "the first; the rest follow it"
        );
        assert_eq!(fw.drops(DENIED), 3);
        assert_eq!(fw.run(0, 0, &[udp(IN_HOST, 1, OUT_HOST, 2)]).len(), 1);
    }

    /// Nanoseconds per packet for established UDP flows through the shipped
    /// policy's shape. Run with `cargo test --release -p hpio-nf-firewall
    /// --lib bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_established_flows() {
        let c = configure_toml(RULES).unwrap();
        let mut e = c.instantiate(0);
        let mut out = Output::new(2, CLASS.info.drop_reasons.len());
        let mut pool = Pool::new(1);
        let frames: Vec<Vec<u8>> = (0..32)
            .map(|i| udp(IN_HOST, 1000 + i, OUT_HOST, 53))
            .collect();
        let mut batch: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        for reparse in [false, true] {
            let mut best = f64::MAX;
            for _ in 0..300 {
                let rounds = 200;
                let t = std::time::Instant::now();
                for _ in 0..rounds {
                    if reparse {
                        for pkt in batch.iter_mut() {
                            pkt.invalidate_headers();
                        }
                    }
                    let mut cx = Context::new(&mut pool, 0, 0);
                    e.push(&mut cx, 0, &mut batch, &mut out);
                    batch = out.take(0);
                }
                let ns = t.elapsed().as_nanos() as f64 / (rounds * frames.len()) as f64;
                best = best.min(ns);
            }
            let parse = if reparse { "included" } else { "cached" };
            println!("firewall, 7 rules, 32 established flows, parse {parse}: {best:.1} ns/packet");
        }
        assert_eq!(batch.len(), frames.len());
    }

    /// Hands `old`'s state over to a replica configured from `body`, as a reload does.
    fn reloaded(old: &mut Fw, body: &str) -> Fw {
        let mut new = Fw::new(body);
        let state = old.e.take_state().expect("a firewall has state");
        new.e
            .give_state(state, &mut Context::new(&mut new.pool, 0, 0));
        new
    }

    #[test]
    fn a_reload_keeps_flows_and_held_fragments_and_applies_the_new_rules_at_once() {
        let mut old = Fw::new(RULES);
        let syn = tcp(IN_HOST, 5000, OUT_HOST, 443, "syn");
        let reply = tcp(OUT_HOST, 443, IN_HOST, 5000, "syn,ack");
        assert_eq!(old.push(0, S, std::slice::from_ref(&syn)), 1);
        assert_eq!(old.push(1, S, std::slice::from_ref(&reply)), 1);
        // A fragment held, waiting for its first.
        let f = fragments(&big_udp(IN_HOST, 5001, OUT_HOST, 53, 3000), 1480, 31);
        assert!(old.run(0, S, &[f[1].clone()]).is_empty());
        // New rules: no new connection to port 443 from inside.
        let deny = r#"{ from = "inside", match = "tcp and dst port 443", action = "deny", name = "no 443" },
  { from = "inside", match = "tcp", action = "allow", name = "out tcp" },"#;
        let rules = RULES.replace(
            r#"{ from = "inside", match = "tcp", action = "allow", name = "out tcp" },"#,
            deny,
        );
        let mut new = reloaded(&mut old, &rules);
        assert_eq!(new.counter("flows"), 1, "the flow is kept");
        assert_eq!(new.counter("flows created"), 1);
        assert_eq!(new.counter("out tcp"), 1, "hits carry over by rule name");
        assert_eq!(new.counter("fragments held now"), 1);
        // The established connection goes on both ways...
        let ack = tcp(IN_HOST, 5000, OUT_HOST, 443, "ack");
        assert_eq!(new.push(0, 2 * S, std::slice::from_ref(&ack)), 1);
        assert_eq!(new.push(1, 2 * S, std::slice::from_ref(&reply)), 1);
        // ...while a new one to port 443 is denied at once.
        assert_eq!(
            new.push(0, 2 * S, &[tcp(IN_HOST, 5002, OUT_HOST, 443, "syn")]),
            0
        );
        assert_eq!(new.counter("no 443"), 1);
        // The held fragment follows its first.
        assert_eq!(new.run(0, 2 * S, &[f[0].clone()]).len(), 2);
        // A smaller table, pinned seed: the flows are placed again.
        let pinned = format!("{rules}\nmax_flows = 8\nhash_seed = 7");
        let mut smaller = reloaded(&mut new, &pinned);
        assert_eq!(smaller.counter("flows"), 2, "the TCP and the UDP flow");
        assert_eq!(smaller.push(1, 3 * S, std::slice::from_ref(&reply)), 1);
        // Without the hand-over the reply would be refused.
        let mut fresh = Fw::new(&rules);
        assert_eq!(fresh.push(1, 2 * S, &[reply]), 0);
    }

    #[test]
    fn handlers_show_flows_and_edit_rules_while_running() {
        use serde_json::json;
        let mut fw = Fw::new(RULES);
        let cx = HandlerCx::new(3 * S, 0);
        // A connection from the inside: SYN, SYN-ACK, ACK.
        assert_eq!(fw.push(0, S, &[tcp(IN_HOST, 4000, OUT_HOST, 80, "syn")]), 1);
        assert_eq!(
            fw.push(1, S, &[tcp(OUT_HOST, 80, IN_HOST, 4000, "syn,ack")]),
            1
        );
        assert_eq!(
            fw.push(0, 2 * S, &[tcp(IN_HOST, 4000, OUT_HOST, 80, "ack")]),
            1
        );
        let flows = fw.e.read("flows", &cx).unwrap();
        assert_eq!(flows.as_array().unwrap().len(), 1, "{flows}");
        let f = &flows[0];
        assert_eq!(
            (&f["proto"], &f["src"], &f["dst"], &f["state"]),
            (
                &json!("tcp"),
                &json!("10.0.1.2:4000"),
                &json!("192.0.2.7:80"),
                &json!("established")
            )
        );
        assert_eq!(
            (f["packets"].as_u64(), f["age"].as_f64()),
            (Some(3), Some(1.0))
        );
        assert_eq!(f["bytes"].as_u64(), Some(3 * 54));

        // The rule list, as configured.
        let rules = fw.e.read("rules", &cx).unwrap();
        assert_eq!(rules.as_array().unwrap().len(), 7);
        assert_eq!(rules[0]["match"], "tcp and dst port 22");
        assert_eq!(rules[1]["state"], "established");

        // A deny rule added first stops the flow at once; deleting it restores it.
        let add = r#"{ from = "inside", match = "tcp and dst port 80", action = "deny" }"#;
        let list = fw.e.write("add", add, &cx).unwrap();
        assert_eq!(
            list[0]["name"],
            "rule 0: deny from inside: tcp and dst port 80"
        );
        assert_eq!(list[1]["name"], "no ssh", "named rules keep their name");
        assert_eq!(
            fw.push(0, 3 * S, &[tcp(IN_HOST, 4000, OUT_HOST, 80, "ack")]),
            0
        );
        assert_eq!(
            fw.counter("rule 0: deny from inside: tcp and dst port 80"),
            1
        );
        assert_eq!(fw.counter("replies"), 2, "hits stay with their rule");
        fw.e.write("delete", "0", &cx).unwrap();
        assert_eq!(
            fw.push(0, 3 * S, &[tcp(IN_HOST, 4000, OUT_HOST, 80, "ack")]),
            1
        );
        // Replace: port 22 from outside is now allowed (no listener: it passes).
        let web = r#"{ from = "outside", match = "tcp and dst port 22", action = "allow", name = "ssh" }"#;
        fw.e.write("replace", &format!("0 {web}"), &cx).unwrap();
        assert_eq!(
            fw.push(1, 3 * S, &[tcp(OUT_HOST, 5000, IN_HOST, 22, "syn")]),
            1
        );
        assert_eq!(fw.e.read("rules", &cx).unwrap()[0]["name"], "ssh");

        // Bad edits say what is wrong and change nothing.
        let before = fw.e.read("rules", &cx).unwrap();
        for (h, arg, want) in [
            (
                "add",
                "{ match = \"tcp and dst port eighty\", action = \"deny\" }",
                "field `match`",
            ),
            (
                "add",
                "{ match = \"tcp\", action = \"drop\" }",
                "field `action`: expected one of allow, deny",
            ),
            (
                "add",
                "{ match = \"tcp\", action = \"deny\", port = \"1\" }",
                "unknown field `port`",
            ),
            ("add", "{ match = \"tcp\" }", "field `action` is missing"),
            ("add", "tcp deny", "expected a rule as in the config"),
            (
                "add",
                "99 { match = \"tcp\", action = \"deny\" }",
                "no rule 99",
            ),
            (
                "add",
                "{ match = \"any\", action = \"deny\" }",
                "rule 1: this rule can never match",
            ),
            ("delete", "7", "no rule 7: there are 7 (0..=6)"),
            ("delete", "x", "expected a rule INDEX"),
            (
                "replace",
                "{ match = \"tcp\", action = \"deny\" }",
                "expected a rule INDEX first",
            ),
            (
                "replace",
                "1 { match = \"tcp\", action = \"deny\", name = \"ssh\" }",
                "already has the counter name",
            ),
            ("kill", "tcp 1.2.3.4 5.6.7.8", "expected ADDRESS:PORT"),
            (
                "kill",
                "sctp 1.2.3.4:1 5.6.7.8:2",
                "expected `PROTO SRC DST`",
            ),
        ] {
            let e = fw.e.write(h, arg, &cx).unwrap_err();
            assert!(e.contains(want), "{h} {arg}: {e}");
        }
        assert_eq!(fw.e.read("rules", &cx).unwrap(), before);

        // Kill, either direction; then the flow's packets are no longer established.
        let k = fw.e.write("kill", "tcp 192.0.2.7:80 10.0.1.2:4000", &cx);
        assert_eq!(k, Ok(json!({"killed": 1})));
        assert_eq!(
            fw.e.write("kill", "tcp 10.0.1.2:4000 192.0.2.7:80", &cx),
            Ok(json!({"killed": 0}))
        );
        assert_eq!(
            fw.e.read("flows", &cx).unwrap().as_array().unwrap().len(),
            1,
            "the ssh SYN"
        );
        assert_eq!(fw.e.write("kill", "all", &cx), Ok(json!({"killed": 1})));
        assert_eq!(fw.e.read("flows", &cx), Ok(json!([])));
        // An ICMP echo flow is shown with its id and killed by it.
        let ping = Frame::echo(Ip::v4(IN_HOST, OUT_HOST), 77, 1)
            .macs(IN_MAC, OUT_MAC)
            .payload(b"hi")
            .build();
        assert_eq!(fw.push(0, 3 * S, &[ping]), 1);
        let f = fw.e.read("flows", &cx).unwrap();
        assert_eq!((&f[0]["proto"], &f[0]["id"]), (&json!("icmp"), &json!(77)));
        let k = fw.e.write("kill", "icmp 192.0.2.7 10.0.1.2 77", &cx);
        assert_eq!(k, Ok(json!({"killed": 1})));
        // Every declared handler is answered.
        for h in CLASS.info.handlers {
            let r = match h.kind {
                hpio_nf::element::HandlerKind::Read => fw.e.read(h.name, &cx),
                hpio_nf::element::HandlerKind::Write => fw.e.write(h.name, "", &cx),
            };
            assert!(
                r.is_ok() || !r.unwrap_err().contains("no handler"),
                "{}",
                h.name
            );
        }
    }
}
