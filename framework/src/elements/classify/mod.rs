//! `Classify`: sends each packet to the output of the first rule it matches.
//!
//! The rule language (`rule.rs`, `parse.rs`), the flow key (`key.rs`) and
//! the compiled matcher (`matcher.rs`) are public so that other elements (the
//! firewall) can reuse them: [`parse_rule`] / [`parse_match`] turn text into
//! a [`Match`], [`RuleSet::new`] compiles a list of matches, and
//! [`RuleSet::classify`] (or [`FlowKey::extract`] then
//! [`RuleSet::first_match`]) finds the first one a packet satisfies.

mod filter;
mod key;
mod matcher;
mod parse;
mod rule;
#[cfg(test)]
mod testutil;

pub use filter::Filter;
pub use key::{FlowKey, Needs};
pub use matcher::RuleSet;
pub use parse::{parse_match, parse_rule};
pub use rule::{Match, Rule, RuleError, MAX_OUTPUT};

use std::sync::Arc;

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, DropReason, Element, ElementClass, Inputs, Need,
    Output, ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::{Batch, Packet};
use crate::wire::{Headers, ParseStatus, IPPROTO_TCP};

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Drop reason: the packet matched no rule and `default` is not set.
        NO_MATCH = "no-match",
        /// Drop reason: the frame's headers did not parse and `malformed` is not set.
        MALFORMED = "malformed",
    ]
}

const OUTPUT_PARAM: ParamType = ParamType::Int {
    min: 0,
    max: MAX_OUTPUT as i64,
};

const DESCRIPTION: &str = "\
Sends each packet to the output named by the first rule it matches, in the
order the rules are listed.

Rules. Each item of `rules` is a string `\"<match> -> <output>\"`. <match> is
`any` (every well-formed packet) or one or more terms joined by `and`, all of
which must hold. Keywords are case-insensitive; numbers are decimal or 0x-hex.

  ip, ip4, ipv4              IPv4
  ip6, ipv6                  IPv6
  arp                        ARP (Ethernet type 0x0806)
  ether type T               Ethernet type T after any VLAN tags, e.g.
                             0x88cc (0x0800 means ip4, 0x86dd means ip6)
  vlan                       at least one VLAN tag (802.1Q or 802.1ad)
  vlan ID                    the outer tag's VLAN id is ID (0..4095)
  novlan                     no VLAN tag
  src net P, dst net P       source / destination address in prefix P,
                             e.g. 10.0.0.0/8 or 2001:db8::/32 (host bits
                             past the length are an error)
  src host A, dst host A     source / destination address is A
  tcp, udp                   IP protocol 6 / 17, over IPv4 or IPv6
  icmp                       ICMP over IPv4 (protocol 1)
  icmp6                      ICMPv6 over IPv6 (protocol 58)
  proto N                    IP protocol N (0..255), over IPv4 or IPv6; for
                             IPv6, the header after any extension headers
  src port R, dst port R     TCP or UDP port R: a number (80) or an
                             inclusive range (1024-65535)
  tcp flags F,F,...          TCP flags: each F is fin, syn, rst, psh, ack,
                             urg, ece or cwr (must be set) or !F (must be
                             clear), e.g. `tcp flags syn,!ack`
  icmp type T                ICMP type: a number or echo-reply,
                             unreachable, source-quench, redirect,
                             echo-request, router-advertisement,
                             router-solicitation, time-exceeded,
                             parameter-problem, timestamp, timestamp-reply
  icmp6 type T               ICMPv6 type: a number or unreachable,
                             packet-too-big, time-exceeded,
                             parameter-problem, echo-request, echo-reply,
                             router-solicitation, router-advertisement,
                             neighbor-solicitation, neighbor-advertisement,
                             redirect
  frag                       an IP fragment, first or not: IPv4 with MF set
                             or a fragment offset, IPv6 with a Fragment
                             header (an atomic one, offset 0 and M clear,
                             is a whole datagram: RFC 6946)
  first-frag                 the first fragment of a datagram (offset 0,
                             more fragments follow)

What terms imply: an address or prefix implies its IP version (an IPv4
prefix never matches an IPv6 packet, whatever its bytes); tcp, udp, proto,
frag and first-frag imply IP; icmp and `icmp type` imply IPv4, icmp6 and
`icmp6 type` imply IPv6; a port term implies a complete TCP or UDP header
(so it never matches ICMP, other protocols or non-first IP fragments);
`tcp flags` implies tcp; a type term implies a complete ICMP header.
`frag and first-frag` is `first-frag`. Repeating a kind
of term narrows it (`vlan and vlan 5`, `src net 10.0.0.0/8 and src net
10.1.0.0/16`, `dst port 1-100 and dst port 50-200`).

Terms that cannot hold together are a configuration error naming both
terms and the byte position of the second: `tcp and udp`, `ip4 and src
net 2001:db8::/32`, `ip6 and icmp`, `icmp and dst port 53`, `arp and
tcp`, `vlan 1 and vlan 2`, `novlan and vlan`, prefixes or port ranges
that do not overlap, `tcp flags syn,!syn`. There is no `or` and no `not`
(besides !flag): write one rule per alternative, and put exceptions
first, since the first match wins.

Malformed frames. A frame whose headers do not parse -- it ends inside the
Ethernet header or a VLAN tag, its IP header is cut short or inconsistent
(version, header length, total length beyond the frame), or its TCP, UDP
or ICMP header is cut short -- never reaches the rules, not even `any`: it
goes to output `malformed` when that is set, and is dropped as `malformed`
otherwise. A frame that parses but carries no transport header (a
non-first fragment, a protocol other than TCP/UDP/ICMP) is well-formed:
it matches protocol and address terms, but no port, flag or type term.

Fragments. A first fragment carries the transport header, so port, flag
and type terms test it as they would the whole datagram. A non-first
fragment has no transport header: it matches protocol, address, VLAN and
`frag` terms, never a port, flag or type term. So `udp and dst port 53`
catches the first fragment of a large DNS answer but not the rest; a
stateless rule list passes the rest with a rule such as `udp and frag`
after its port rules (or drops every fragment with `frag` first). The
Firewall element instead lets a non-first fragment through only when the
first fragment of its datagram was allowed.

Packets that match no rule go to output `default` when that is set, and
are dropped as `no-match` otherwise.

Notes. A packet's headers are parsed once (the parse is cached in the
packet for later elements) and reduced to a fixed-size flow key. The
rules are compiled into one 256-entry table per key byte that any rule
constrains, holding for each byte value the set of rules (up to 64 per
table) that accept it; a packet's candidates are the intersection of one
entry per constrained byte, so the cost does not grow with the number of
rules up to 64, and grows by one pass per further 64 rules. A rule set
that tests only the Ethernet type, VLAN and protocol (`ip4 -> 0`)
decides the common frame -- untagged IPv4 with a 20-byte header, not a
fragment, with a whole TCP or UDP header -- from an answer worked out at
configuration, without a parse or a key.";

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "rules",
        ty: ParamType::List(&ParamType::Str),
        need: Need::Required,
        doc: "rules \"<match> -> <output>\", tried in order; the first match wins",
    },
    ParamSpec {
        name: "default",
        ty: OUTPUT_PARAM,
        need: Need::Optional,
        doc: "output for packets that match no rule (left out: dropped as `no-match`)",
    },
    ParamSpec {
        name: "malformed",
        ty: OUTPUT_PARAM,
        need: Need::Optional,
        doc: "output for frames whose headers do not parse (left out: dropped as `malformed`)",
    },
];

hpio_nf::counters! {
    COUNTERS = [
        /// A pattern: the names of the per-rule counters (not reported under this name).
        #[allow(dead_code)]
        RULE_HITS = "rule N: RULE":
            "packets whose first matching rule is rule N (from 0), RULE as written",
        DEFAULT_HITS = "default":
            "packets that matched no rule (sent to `default`, or dropped as `no-match`)",
        MALFORMED_HITS = "malformed":
            "frames whose headers did not parse (sent to `malformed`, or dropped)",
    ]
}

/// The `Classify` element class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Classify",
        summary: "sends each packet to the output of the first rule it matches",
        description: DESCRIPTION,
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Configured(
            "N+1, outputs 0..=N, where N is the largest output number named by `rules`, \
             `default` or `malformed` (every one must be connected)",
        ),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: &[],
        example: r#"[elements.classify]
class = "Classify"
rules = [
    "arp -> 0",
    "tcp and src net 10.0.0.0/8 and dst port 22 -> 0",
    "tcp flags syn,!ack and dst port 1-1023 -> 1",
    "icmp type echo-request -> 0",
    "udp and dst port 53 -> 0",
]
default = 1
malformed = 1
"#,
        see_also: &["Counter", "Discard"],
    },
    configure,
};

/// Where the packets of one slot (a rule, the default, malformed) go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Out(usize),
    Drop(DropReason),
}

/// One rule's (or the default's, or malformed's) destination and hit count.
#[derive(Debug, Clone, Copy)]
struct Slot {
    target: Target,
    hits: u64,
}

/// A configured replica: the compiled rules and, per slot, where packets go.
#[derive(Clone)]
struct Classify {
    rules: RuleSet,
    /// Rules `0..n`, then the default (`n`), then malformed (`n + 1`).
    slots: Vec<Slot>,
    /// Counter names, one per slot.
    names: Arc<[String]>,
    /// The slots of uncached common frames over UDP and TCP, when the rules
    /// allow deciding them without a parse ([`RuleSet::common_answers`]).
    common: Option<[u32; 2]>,
}

impl Classify {
    /// The slot of `pkt`: its first matching rule, the default, or malformed.
    #[inline(always)]
    fn decide(&self, pkt: &mut Packet) -> usize {
        match &self.common {
            Some(common) => decide_common(&self.rules, common, pkt) as usize,
            None => decide_parsed(&self.rules, pkt),
        }
    }

    /// Decides packets from the start of `batch` for as long as they go to
    /// one slot: (that slot, how many). The choice between the common-frame
    /// shortcut and the general matcher is made once for the batch.
    #[inline(always)]
    fn run_of(&self, batch: &mut Batch) -> (usize, usize) {
        match self.common {
            Some([udp, tcp]) if udp == tcp => run_with::<ONE_ANSWER>(&self.rules, [udp; 2], batch),
            Some(common) => run_with::<BY_PROTO>(&self.rules, common, batch),
            None => run_with::<GENERAL>(&self.rules, [0; 2], batch),
        }
    }

    /// A traced batch (checked once per batch, out of the hot path): each
    /// packet's deciding rule as a trace note.
    #[cold]
    #[inline(never)]
    fn push_traced(&mut self, cx: &mut Context<'_>, batch: &mut Batch, out: &mut Output) {
        for mut pkt in batch.drain(..) {
            let slot = self.decide(&mut pkt);
            cx.trace_note(|| self.names.get(slot).cloned().unwrap_or_default());
            self.send(pkt, slot, out);
        }
    }

    /// Sends `pkt` where its slot says, and counts it.
    #[inline(always)]
    fn send(&mut self, pkt: Packet, slot: usize, out: &mut Output) {
        let Some(s) = self.slots.get_mut(slot) else {
            out.drop(pkt, MALFORMED);
            return;
        };
        s.hits += 1;
        match s.target {
            Target::Out(o) => out.push(o, pkt),
            Target::Drop(reason) => out.drop(pkt, reason),
        }
    }
}

impl Element for Classify {
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        if cx.tracing() {
            return self.push_traced(cx, batch, out);
        }
        // A batch that all goes one way (the common case) moves whole,
        // without a push per packet.
        let n = batch.len();
        if n == 0 {
            return;
        }
        let (first, run) = self.run_of(batch);
        if run == n {
            if let Some(Slot {
                target: Target::Out(o),
                hits,
            }) = self.slots.get_mut(first)
            {
                *hits += n as u64;
                out.push_all(*o, batch);
                return;
            }
        }
        // Mixed (or dropped): packet by packet. Deciding again is cheap
        // (the parse is cached) and gives the same slot.
        for (i, mut pkt) in batch.drain(..).enumerate() {
            let slot = if i < run {
                first
            } else {
                self.decide(&mut pkt)
            };
            self.send(pkt, slot, out);
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        for (name, s) in self.names.iter().zip(&self.slots) {
            report(name, s.hits);
        }
    }
}

/// The slot of `pkt` by the general path: parse (cached in the packet),
/// key, matcher.
#[inline(always)]
fn decide_parsed(rules: &RuleSet, pkt: &mut Packet) -> usize {
    let h = pkt.headers();
    let default = rules.len();
    if h.status == ParseStatus::Ok {
        rules.classify(&h, pkt.data()).unwrap_or(default)
    } else {
        default + 1
    }
}

/// The slot of `pkt` for a rule set with common answers (`common`: the
/// slots of common UDP and TCP frames): a frame not parsed yet that is
/// common needs only [`Headers::common_proto`]; any other takes the
/// general path.
#[inline(always)]
fn decide_common(rules: &RuleSet, common: &[u32; 2], pkt: &mut Packet) -> u32 {
    if !pkt.headers_cached() {
        if let Some(proto) = Headers::common_proto(pkt.data()) {
            return common[usize::from(proto == IPPROTO_TCP)];
        }
    }
    decide_parsed(rules, pkt) as u32
}

/// [`run_with`] modes: every packet by [`decide_parsed`]; common frames
/// by their protocol ([`decide_common`]); common frames all to one slot.
const GENERAL: u8 = 0;
const BY_PROTO: u8 = 1;
const ONE_ANSWER: u8 = 2;

/// The slot of the first packet of `batch`, and how many packets from the
/// start go to that slot (0 for an empty batch), deciding as `MODE` says
/// with the common frames' slots `common`.
#[inline(always)]
fn run_with<const MODE: u8>(
    rules: &RuleSet,
    common: [u32; 2],
    batch: &mut Batch,
) -> (usize, usize) {
    let mut pkts = batch.iter_mut();
    let Some(pkt) = pkts.next() else {
        return (0, 0);
    };
    let first = decide_as::<MODE>(rules, &common, pkt);
    let mut run = 1;
    for pkt in pkts {
        if decide_as::<MODE>(rules, &common, pkt) != first {
            break;
        }
        run += 1;
    }
    (first as usize, run)
}

/// The slot of `pkt` as [`run_with`]'s `MODE` decides it.
#[inline(always)]
fn decide_as<const MODE: u8>(rules: &RuleSet, common: &[u32; 2], pkt: &mut Packet) -> u32 {
    match MODE {
        GENERAL => decide_parsed(rules, pkt) as u32,
        BY_PROTO => decide_common(rules, common, pkt),
        _ => {
            if !pkt.headers_cached() && Headers::common_proto(pkt.data()).is_some() {
                common[0]
            } else {
                decide_parsed(rules, pkt) as u32
            }
        }
    }
}

fn optional_output(p: &Params, name: &str) -> Result<Option<usize>, ParamError> {
    match p.get(name) {
        None => Ok(None),
        Some(_) => match p.usize(name)? {
            o if o <= MAX_OUTPUT => Ok(Some(o)),
            o => Err(ParamError::new(
                name,
                format!("output {o} is too large (at most {MAX_OUTPUT})"),
            )),
        },
    }
}

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    if p.get("rules").is_none() {
        return Err(ParamError::new("rules", "missing (required)"));
    }
    let texts = p.str_list("rules")?;
    if texts.is_empty() {
        return Err(ParamError::new(
            "rules",
            "needs at least one rule (`\"any -> 0\"` passes every well-formed packet)",
        ));
    }
    let rules = texts
        .iter()
        .enumerate()
        .map(|(i, t)| parse_rule(t).map_err(|e| ParamError::item("rules", i, e.to_string())))
        .collect::<Result<Vec<Rule>, ParamError>>()?;
    let default = optional_output(p, "default")?;
    let malformed = optional_output(p, "malformed")?;
    let outputs = 1 + rules
        .iter()
        .map(|r| r.output)
        .chain(default)
        .chain(malformed)
        .max()
        .unwrap_or(0);

    let mut slots: Vec<Slot> = rules
        .iter()
        .map(|r| Slot {
            target: Target::Out(r.output),
            hits: 0,
        })
        .collect();
    slots.push(Slot {
        target: default.map_or(Target::Drop(NO_MATCH), Target::Out),
        hits: 0,
    });
    slots.push(Slot {
        target: malformed.map_or(Target::Drop(MALFORMED), Target::Out),
        hits: 0,
    });
    let mut names: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "rule {i}: {}",
                t.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    names.push(DEFAULT_HITS.into());
    names.push(MALFORMED_HITS.into());

    let rules = RuleSet::new(rules.iter().map(|r| &r.pattern));
    let default = rules.len();
    let common = rules
        .common_answers()
        .map(|a| a.map(|r| r.unwrap_or(default) as u32));
    let element = Classify {
        rules,
        slots,
        names: names.into(),
        common,
    };
    Ok(Configured::cloning(Inputs::Fixed(1), outputs, element))
}

#[cfg(test)]
mod tests {
    use super::testutil::{frame, Net, Spec, Tp};
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};

    fn params(rules: &[&str], default: Option<i64>, malformed: Option<i64>) -> Params {
        let mut p = Params::new();
        let list = rules.iter().map(|r| Value::Str(r.to_string())).collect();
        p.set("rules", Value::List(list));
        if let Some(d) = default {
            p.set("default", Value::Int(d));
        }
        if let Some(m) = malformed {
            p.set("malformed", Value::Int(m));
        }
        p
    }

    fn cx() -> ConfigCx<'static> {
        ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        }
    }

    fn build(p: &Params) -> (Configured, Box<dyn Element>) {
        let c = configure(p, &cx()).unwrap_or_else(|e| panic!("{e}"));
        let e = c.instantiate(0);
        (c, e)
    }

    /// Runs `frames` through a fresh element; returns the outputs and the counters.
    fn run(p: &Params, frames: &[Vec<u8>]) -> (Output, Vec<(String, u64)>) {
        let (c, mut e) = build(p);
        let mut out = Output::new(c.outputs, CLASS.info.drop_reasons.len());
        let mut pool = Pool::new(4);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut batch: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        e.push(&mut cx, 0, &mut batch, &mut out);
        assert!(batch.is_empty(), "every packet is handled");
        let mut stats = Vec::new();
        e.stats(&mut |k, v| stats.push((k.to_string(), v)));
        (out, stats)
    }

    fn frames_of(out: &Output, port: usize) -> Vec<Vec<u8>> {
        out.batch(port).iter().map(|p| p.data().to_vec()).collect()
    }

    fn tcp(dst_port: u16, flags: u8) -> Vec<u8> {
        frame(&Spec {
            vlan: vec![],
            net: Net::V4([10, 0, 0, 1], [192, 168, 0, 1]),
            tp: Tp::Tcp(40000, dst_port, flags),
        })
    }

    fn udp6(dst_port: u16) -> Vec<u8> {
        frame(&Spec {
            vlan: vec![],
            net: Net::V6(
                [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            ),
            tp: Tp::Udp(5353, dst_port),
        })
    }

    /// A frame's VLAN tag and TCP header, for truncation tests.
    fn tcp_vlan() -> Vec<u8> {
        frame(&Spec {
            vlan: vec![42],
            net: Net::V4([10, 0, 0, 1], [10, 0, 0, 2]),
            tp: Tp::Tcp(1234, 80, 0x12),
        })
    }

    /// Rules that test only the EtherType and protocol take the
    /// common-frame shortcut: common frames (TCP and UDP over untagged
    /// IPv4) go where the general path sends them, and every other frame
    /// (IPv6, ARP, tagged, fragments, damaged) still takes
    /// the general path, in mixed batches and in batches all one way.
    #[test]
    fn shallow_rules_decide_common_frames_as_the_general_path() {
        let p = params(&["ip6 -> 1", "udp -> 2", "ip4 -> 0"], Some(3), Some(4));
        let udp4 = frame(&Spec {
            vlan: vec![],
            net: Net::V4([10, 0, 0, 1], [10, 0, 0, 2]),
            tp: Tp::Udp(1, 2),
        });
        let frag = super::testutil::kit(&Spec {
            vlan: vec![],
            net: Net::V4([10, 0, 0, 1], [192, 168, 0, 1]),
            tp: Tp::Tcp(40000, 80, 0x10),
        })
        .fragment(0, true)
        .build();
        let mut short = tcp(80, 0x10);
        short.truncate(40);
        let arp = frame(&Spec {
            vlan: vec![],
            net: Net::Arp,
            tp: Tp::None,
        });
        let frames = [tcp(80, 0x10), udp4, udp6(53), tcp_vlan(), frag, short, arp];
        let want = [0, 2, 1, 0, 0, 4, 3];
        let (out, _) = run(&p, &frames);
        for (f, &o) in frames.iter().zip(&want) {
            assert!(frames_of(&out, o).contains(f), "{f:02x?} to {o}");
        }
        for (f, &o) in frames.iter().zip(&want) {
            let (out, stats) = run(&p, &vec![f.clone(); 40]);
            assert_eq!(frames_of(&out, o).len(), 40, "{f:02x?} to {o}");
            assert_eq!(stats.iter().map(|s| s.1).sum::<u64>(), 40);
        }
    }

    #[test]
    fn example_loads_via_configure() {
        let table: toml::Table = CLASS.info.example.parse().expect("example is TOML");
        let (name, body) = table["elements"]
            .as_table()
            .and_then(|t| t.iter().next())
            .expect("an [elements.NAME] table");
        assert_eq!(name, "classify");
        let mut p = Params::new();
        for (k, v) in body.as_table().expect("a table") {
            if k == "class" {
                assert_eq!(v.as_str(), Some(CLASS.info.name));
                continue;
            }
            let spec = PARAMS.iter().find(|s| s.name == k).expect("declared param");
            let value = match v {
                toml::Value::Integer(i) => Value::Int(*i),
                toml::Value::Array(a) => Value::List(
                    a.iter()
                        .map(|s| Value::Str(s.as_str().expect("string").to_string()))
                        .collect(),
                ),
                other => panic!("unexpected {other:?}"),
            };
            p.set(spec.name, value);
        }
        let c = configure(&p, &cx()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.outputs, 2);
        assert_eq!(c.inputs, Inputs::Fixed(1));
        // And it does what it says: SSH from 10/8 passes, a bare SYN to 80 goes to 1.
        let ssh = frame(&Spec {
            vlan: vec![],
            net: Net::V4([10, 9, 9, 9], [1; 4]),
            tp: Tp::Tcp(5000, 22, 0x10),
        });
        let (out, _) = run(&p, &[ssh, tcp(80, 0x02), tcp(80, 0x10)]);
        assert_eq!((out.batch(0).len(), out.batch(1).len()), (1, 2));
    }

    #[test]
    fn outputs_are_one_more_than_the_largest_named() {
        let n = |p: &Params| configure(p, &cx()).unwrap().outputs;
        assert_eq!(n(&params(&["tcp -> 0"], None, None)), 1);
        assert_eq!(n(&params(&["tcp -> 3", "udp -> 1"], None, None)), 4);
        assert_eq!(n(&params(&["tcp -> 0"], Some(5), None)), 6);
        assert_eq!(n(&params(&["tcp -> 0"], Some(1), Some(7))), 8);
    }

    #[test]
    fn bad_rules_are_reported_with_item_and_position() {
        let e = configure(
            &params(&["tcp -> 0", "udp and dst prot 53 -> 1"], None, None),
            &cx(),
        )
        .unwrap_err();
        assert_eq!((e.param.as_str(), e.index), ("rules", Some(1)));
        assert!(e.message.starts_with("at byte 12: "), "{e}");
        assert!(e.to_string().contains("item 1"), "{e}");
        let e = configure(&params(&[], None, None), &cx()).unwrap_err();
        assert!(e.message.contains("at least one rule"), "{e}");
        let e = configure(&Params::new(), &cx()).unwrap_err();
        assert_eq!(e.param, "rules");
        let mut p = params(&["tcp -> 0"], None, None);
        p.set(
            "rules",
            Value::List(vec![Value::Str("tcp -> 0".into()), Value::Int(3)]),
        );
        assert_eq!(configure(&p, &cx()).unwrap_err().index, Some(1));
        let e = configure(&params(&["tcp -> 0"], Some(256), None), &cx()).unwrap_err();
        assert_eq!(e.param, "default");
        let e = configure(&params(&["tcp -> 0"], None, Some(-1)), &cx()).unwrap_err();
        assert_eq!(e.param, "malformed");
    }

    #[test]
    fn first_match_wins_then_default() {
        let p = params(
            &[
                "tcp and dst port 22 -> 2",
                "tcp flags syn,!ack -> 1",
                "tcp -> 0",
                "ip6 and udp and dst port 53 -> 3",
            ],
            Some(4),
            None,
        );
        let frames = [
            tcp(22, 0x02),
            tcp(80, 0x02),
            tcp(80, 0x12),
            udp6(53),
            udp6(54),
        ];
        let (out, stats) = run(&p, &frames);
        assert_eq!(
            frames_of(&out, 2),
            vec![frames[0].clone()],
            "port 22 before syn"
        );
        assert_eq!(frames_of(&out, 1), vec![frames[1].clone()]);
        assert_eq!(frames_of(&out, 0), vec![frames[2].clone()]);
        assert_eq!(frames_of(&out, 3), vec![frames[3].clone()]);
        assert_eq!(frames_of(&out, 4), vec![frames[4].clone()]);
        assert_eq!(
            stats,
            vec![
                ("rule 0: tcp and dst port 22 -> 2".to_string(), 1),
                ("rule 1: tcp flags syn,!ack -> 1".to_string(), 1),
                ("rule 2: tcp -> 0".to_string(), 1),
                ("rule 3: ip6 and udp and dst port 53 -> 3".to_string(), 1),
                ("default".to_string(), 1),
                ("malformed".to_string(), 0),
            ]
        );
    }

    #[test]
    fn no_match_is_dropped_when_no_default() {
        let p = params(&["udp -> 0"], None, None);
        let arp = frame(&Spec {
            vlan: vec![],
            net: Net::Arp,
            tp: Tp::None,
        });
        let (out, stats) = run(&p, &[tcp(80, 0), udp6(53), arp]);
        assert_eq!(out.batch(0).len(), 1);
        assert_eq!(out.drops(NO_MATCH), 2);
        assert_eq!(out.drops(MALFORMED), 0);
        assert_eq!(stats[1], ("default".to_string(), 2));
    }

    /// Batches that all go one way move whole; mixed batches go packet by
    /// packet, whatever their length. All keep order and
    /// count alike.
    #[test]
    fn whole_mixed_and_long_batches_agree() {
        let p = params(&["tcp and dst port 22 -> 1", "tcp -> 0"], None, None);
        for n in [1, 2, 63, 64, 65, 130] {
            let same: Vec<Vec<u8>> = (0..n).map(|i| tcp(80 + (i % 7) as u16, 0x10)).collect();
            let (out, stats) = run(&p, &same);
            assert_eq!(frames_of(&out, 0), same, "{n} packets one way");
            assert!(out.batch(1).is_empty());
            assert_eq!(stats[1], ("rule 1: tcp -> 0".to_string(), n as u64));

            let mixed: Vec<Vec<u8>> = (0..n)
                .map(|i| tcp(if i % 3 == 1 { 22 } else { 80 }, 0x10))
                .collect();
            let (out, stats) = run(&p, &mixed);
            let to = |port: u16| -> Vec<Vec<u8>> {
                mixed
                    .iter()
                    .filter(|f| f[37] == port as u8)
                    .cloned()
                    .collect()
            };
            assert_eq!(frames_of(&out, 0), to(80), "{n} packets mixed");
            assert_eq!(frames_of(&out, 1), to(22), "{n} packets mixed");
            assert_eq!(stats[0].1 + stats[1].1, n as u64);

            // All to a drop: counted under its reason, nothing sent.
            let udp: Vec<Vec<u8>> = (0..n).map(|_| udp6(53)).collect();
            let (out, stats) = run(&p, &udp);
            assert!(out.batch(0).is_empty() && out.batch(1).is_empty());
            assert_eq!(out.drops(NO_MATCH), n as u64);
            assert_eq!(stats[2], ("default".to_string(), n as u64));
        }
    }

    #[test]
    fn every_truncation_takes_the_malformed_path() {
        let f = tcp_vlan();
        let cuts: Vec<Vec<u8>> = (0..f.len()).map(|n| f[..n].to_vec()).collect();
        // With a `malformed` output: every cut frame lands there, even with `any`.
        let p = params(&["vlan 42 and tcp -> 0", "any -> 1"], None, Some(2));
        let (out, stats) = run(&p, &cuts);
        assert_eq!(out.batch(2).len(), f.len());
        assert_eq!(stats[3], ("malformed".to_string(), f.len() as u64));
        // Without: every cut frame is dropped as malformed.
        let p = params(&["any -> 0"], Some(0), None);
        let (out, _) = run(&p, &cuts);
        assert_eq!(out.batch(0).len(), 0);
        assert_eq!(out.drops(MALFORMED), f.len() as u64);
        // The whole frame is well-formed and matches.
        let (out, _) = run(
            &params(&["vlan 42 and tcp and dst port 80 -> 0"], None, None),
            &[f],
        );
        assert_eq!(out.batch(0).len(), 1);
    }

    #[test]
    fn l2_only_frames_and_bad_ip_headers() {
        // A short (padded) ARP frame is well-formed: L2 terms apply.
        let arp = frame(&Spec {
            vlan: vec![7],
            net: Net::Arp,
            tp: Tp::None,
        });
        // An IPv4 header length below 20 is malformed.
        let mut bad_ihl = tcp(80, 0);
        bad_ihl[14] = 0x44;
        // An IPv6 payload length beyond the frame is malformed.
        let mut long6 = udp6(53);
        long6[18] = 0xff;
        // A TCP data offset beyond the segment is a truncated L4 header.
        let mut bad_doff = tcp(80, 0);
        bad_doff[14 + 20 + 12] = 0xf0;
        let p = params(&["arp and vlan 7 -> 0", "any -> 1"], None, Some(2));
        let (out, _) = run(&p, &[arp.clone(), bad_ihl, long6, bad_doff]);
        assert_eq!(frames_of(&out, 0), vec![arp]);
        assert_eq!(out.batch(1).len(), 0);
        assert_eq!(out.batch(2).len(), 3);
    }

    #[test]
    fn replicas_count_independently() {
        let (c, _) = build(&params(&["any -> 0"], None, None));
        let mut a = c.instantiate(0);
        let b = c.instantiate(1);
        let mut out = Output::new(1, 2);
        let mut pool = Pool::new(1);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut batch: Batch = std::iter::once(Packet::from_bytes(&tcp(1, 0))).collect();
        a.push(&mut cx, 0, &mut batch, &mut out);
        let count = |e: &dyn Element| {
            let mut n = 0;
            e.stats(&mut |k, v| n += if k.starts_with("rule 0") { v } else { 0 });
            n
        };
        assert_eq!((count(&*a), count(&*b)), (1, 0));
    }

    /// The benchmark's shape: 20 firewall rules (prefixes, ports, protocols)
    /// that the traffic passes through to the default. Run with
    /// `cargo test --release -p hpio-nf --lib classify::tests::bench -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_twenty_rule_firewall() {
        let mut rules: Vec<String> = Vec::new();
        for i in 0..6 {
            rules.push(format!(
                "src net 10.{i}.0.0/16 and tcp and dst port {} -> 1",
                1000 + i
            ));
        }
        for i in 0..6 {
            rules.push(format!(
                "dst net 192.168.{i}.0/24 and udp and dst port 5000-6000 -> 1"
            ));
        }
        for i in 0..4 {
            rules.push(format!("ip6 and src net 2001:db8:{i}::/48 and tcp -> 1"));
        }
        rules.push("icmp type echo-request -> 1".into());
        rules.push("proto 47 -> 1".into());
        rules.push("tcp flags syn,!ack and dst port 1-1023 -> 1".into());
        rules.push("ip4 and src net 172.16.0.0/12 -> 1".into());
        let texts: Vec<&str> = rules.iter().map(String::as_str).collect();
        let p = params(&texts, Some(0), Some(1));
        let (c, mut e) = build(&p);
        let mut out = Output::new(c.outputs, 2);
        let mut pool = Pool::new(1);
        let mut cx = Context::new(&mut pool, 0, 0);
        let flows: Vec<Vec<u8>> = (0..32)
            .map(|i| {
                frame(&Spec {
                    vlan: vec![],
                    net: Net::V4([10, 100, 0, i], [192, 168, 100, 1]),
                    tp: Tp::Udp(1000 + i as u16, 53),
                })
            })
            .collect();
        let mut batch: Batch = flows.iter().map(|f| Packet::from_bytes(f)).collect();
        // The machine is shared: report the best of many short trials.
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
                    e.push(&mut cx, 0, &mut batch, &mut out);
                    batch = out.take(0);
                }
                let ns = t.elapsed().as_nanos() as f64 / (rounds * flows.len()) as f64;
                best = best.min(ns);
            }
            let parse = if reparse { "included" } else { "cached" };
            println!("classify, 20 rules, parse {parse}: {best:.1} ns/packet");
        }
        assert_eq!(batch.len(), flows.len());
    }
}
