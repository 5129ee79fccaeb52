//! `Policer`: token-bucket metering per class of traffic (RFC 2697 srTCM,
//! RFC 2698 trTCM), colour-blind or colour-aware, marking or dropping.

use crate::element::{
    Choice, ClassInfo, Combine, ConfigCx, Configured, Context, Element, ElementClass, HandlerCx,
    HandlerKind, HandlerResult, HandlerSpec, Inputs, Need, Output, ParamError, ParamSpec,
    ParamType, Params, PortCount,
};
use crate::packet::Batch;
use serde_json::json;

/// Index of the annotation word holding a packet's colour
/// ([`GREEN`], [`YELLOW`], [`RED`]); the words are listed in
/// [`crate::packet::anno`].
pub const COLOR_ANNO: usize = crate::packet::anno::COLOR;
/// Colour values written to [`COLOR_ANNO`] (RFC 2697/2698's three colours).
pub const GREEN: u32 = 0;
/// Over the committed rate or burst, within the excess or peak one.
pub const YELLOW: u32 = 1;
/// Over the excess burst (srTCM) or the peak rate (trTCM).
pub const RED: u32 = 2;

/// Token units per unit of traffic: tokens are counted in billionths of a
/// bit (or packet), so that a rate per second times nanoseconds is tokens.
const NANO: u64 = 1_000_000_000;
/// Largest rate accepted, per second (1 Tbit/s, or 10^12 packets/s).
const MAX_RATE: f64 = 1e12;
/// Largest burst accepted: 1 GB (or 10^9 packets), so that a full bucket
/// in nano-bits fits 64 bits.
const MAX_BURST: i64 = 1_000_000_000;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// Metered red, under `red = "drop"`.
        RED_DROP = "red",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        GREEN_PKTS = "green": "packets metered green (all classes)",
        YELLOW_PKTS = "yellow": "packets metered yellow",
        RED_PKTS = "red": "packets metered red (dropped under `red = \"drop\"`)",
    ]
}

hpio_nf::choice! {
    /// Which meter (`mode`).
    enum Mode {
        SrTcm = "srtcm",
        TrTcm = "trtcm",
    }
}

hpio_nf::choice! {
    /// What rates and bursts count (`unit`).
    enum Unit {
        Bits = "bits",
        Packets = "packets",
    }
}

hpio_nf::choice! {
    /// What happens to red packets (`red`).
    enum RedAction {
        Drop = "drop",
        Mark = "mark",
    }
}

const DESCRIPTION: &str = "\
Meters traffic with token buckets, one meter per class of traffic, and
colours each packet green, yellow or red: RFC 2697's single-rate
three-colour marker (`mode = \"srtcm\"`: a committed rate CIR with a
committed burst CBS, and an excess burst EBS filled by what overflows CBS)
or RFC 2698's two-rate one (`\"trtcm\"`: CIR with CBS, and a peak rate PIR
with a peak burst PBS). Rates count bits (the frame's bytes, Ethernet
header included, without FCS and preamble) or packets (`unit`); bursts
count bytes or packets.

Each entry of `classes` is a class with its own meter, and input i meters
with class i: put a Classify in front to sort traffic into classes, and
wire each of its outputs to an input. A packet leaves on the output of its
input's number:

  cls[0] -> [0]pol[0] -> wan     # class 0: voice
  cls[1] -> [1]pol[1] -> wan     # class 1: everything else

The colour is written to annotation word 1 (0 green, 1 yellow, 2 red;
word 0 is Paint's colour), where an element further on (or a second,
colour-aware Policer) can read it. Red packets are dropped as `red` under
`red = \"drop\"` (the default), or pass marked under `red = \"mark\"`.

Colour-blind (the default) meters every packet as it comes;
`color_aware = true` reads the colour already in word 1 (packets never
coloured are green) and never makes a packet greener: RFC 2697/2698's
colour-aware mode.

Buckets start full. They are refilled once per batch, from the time of the
burst (`cx.now()`), so a meter costs no clock read per packet. With
several workers each has its own meters, each with 1/W of the rates (the
bursts stay whole), so the totals are right when traffic spreads evenly
over the workers; for an exact rate, police on one worker.

Handler `classes` gives each class's green, yellow and red packets and
bytes, summed over the workers.";

const CLASS_FIELDS: &[ParamSpec] = &[
    ParamSpec {
        name: "name",
        ty: ParamType::Str,
        need: Need::Optional,
        doc: "name in `classes` (default: its index)",
    },
    ParamSpec {
        name: "cir",
        ty: ParamType::Str,
        need: Need::Required,
        doc: "committed rate per second, with an optional k, M or G (10^3, 10^6, 10^9): \"20M\"",
    },
    ParamSpec {
        name: "cbs",
        ty: ParamType::Int {
            min: 1,
            max: MAX_BURST,
        },
        need: Need::Required,
        doc: "committed burst, bytes (or packets)",
    },
    ParamSpec {
        name: "ebs",
        ty: ParamType::Int {
            min: 0,
            max: MAX_BURST,
        },
        need: Need::Default("0"),
        doc: "srTCM: excess burst, bytes (or packets); 0 makes yellow impossible",
    },
    ParamSpec {
        name: "pir",
        ty: ParamType::Str,
        need: Need::Optional,
        doc: "trTCM (required there): peak rate per second, at least `cir`",
    },
    ParamSpec {
        name: "pbs",
        ty: ParamType::Int {
            min: 1,
            max: MAX_BURST,
        },
        need: Need::Optional,
        doc: "trTCM (required there): peak burst, bytes (or packets)",
    },
];

static CLASS_TABLE: ParamType = ParamType::Table(CLASS_FIELDS);

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "classes",
        ty: ParamType::List(&CLASS_TABLE),
        need: Need::Required,
        doc: "one meter per class `{ name, cir, cbs, ebs }` (srTCM) or `{ name, cir, cbs, pir, \
              pbs }` (trTCM); input i meters with class i",
    },
    ParamSpec {
        name: "mode",
        ty: ParamType::Choice(Mode::NAMES),
        need: Need::Default("\"srtcm\""),
        doc: "RFC 2697 single-rate or RFC 2698 two-rate three-colour marker",
    },
    ParamSpec {
        name: "unit",
        ty: ParamType::Choice(Unit::NAMES),
        need: Need::Default("\"bits\""),
        doc: "rates in bits per second and bursts in bytes, or both in packets",
    },
    ParamSpec {
        name: "red",
        ty: ParamType::Choice(RedAction::NAMES),
        need: Need::Default("\"drop\""),
        doc: "red packets: drop (counted `red`) or pass with their colour",
    },
    ParamSpec {
        name: "color_aware",
        ty: ParamType::Bool,
        need: Need::Default("false"),
        doc: "take the colour already in annotation word 1 into account (never greener)",
    },
];

const HANDLERS: &[HandlerSpec] = &[HandlerSpec {
    name: "classes",
    kind: HandlerKind::Read,
    combine: Combine::Sum,
    arg: "",
    doc: "Per class (by name): `green`, `yellow`, `red` packets and `*_bytes`",
}];

/// The `Policer` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Policer",
        summary: "token-bucket policer per class (RFC 2697 srTCM / RFC 2698 trTCM): colour \
                  annotation or drop",
        description: DESCRIPTION,
        inputs: PortCount::Configured("one per entry of `classes`"),
        outputs: PortCount::Configured("one per entry of `classes`"),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: HANDLERS,
        example: r#"[elements.pol]
class = "Policer"
mode = "trtcm"
classes = [
  { name = "voice", cir = "2M", cbs = 4000, pir = "4M", pbs = 8000 },
  { name = "bulk", cir = "50M", cbs = 100000, pir = "80M", pbs = 200000 },
]
red = "drop"
"#,
        see_also: &["Classify", "Paint"],
    },
    configure,
};

/// One class's meter: two buckets, in nano-units.
#[derive(Debug, Clone)]
struct Meter {
    name: String,
    /// Committed rate and the second bucket's rate (srTCM: the same CIR,
    /// trTCM: PIR), in nano-units per nanosecond (= units per second).
    cir: u64,
    rate2: u64,
    /// Bucket depths and levels: C (committed), then E (excess) or P (peak).
    c_cap: u64,
    e_cap: u64,
    tc: u64,
    te: u64,
    last: u64,
    /// Packets and bytes per colour.
    packets: [u64; 3],
    bytes: [u64; 3],
}

impl Meter {
    /// Adds the tokens of the time since the last refill.
    #[inline]
    fn refill(&mut self, mode: Mode, now: u64) {
        let dt = now.saturating_sub(self.last) as u128;
        self.last = self.last.max(now);
        let add = |level: u64, rate: u64, cap: u64| -> (u64, u128) {
            let sum = level as u128 + rate as u128 * dt;
            (sum.min(cap as u128) as u64, sum.saturating_sub(cap as u128))
        };
        match mode {
            Mode::SrTcm => {
                let (tc, over) = add(self.tc, self.cir, self.c_cap);
                self.tc = tc;
                self.te = (self.te as u128 + over).min(self.e_cap as u128) as u64;
            }
            Mode::TrTcm => {
                self.tc = add(self.tc, self.cir, self.c_cap).0;
                self.te = add(self.te, self.rate2, self.e_cap).0;
            }
        }
    }

    /// The colour of a packet costing `b` nano-units, pre-coloured `pre`
    /// (green when colour-blind); takes its tokens.
    #[inline]
    fn color(&mut self, mode: Mode, b: u64, pre: u32) -> u32 {
        match mode {
            Mode::SrTcm => {
                if pre == GREEN && self.tc >= b {
                    self.tc -= b;
                    GREEN
                } else if pre != RED && self.te >= b {
                    self.te -= b;
                    YELLOW
                } else {
                    RED
                }
            }
            Mode::TrTcm => {
                if pre == RED || self.te < b {
                    RED
                } else if pre == YELLOW || self.tc < b {
                    self.te -= b;
                    YELLOW
                } else {
                    self.te -= b;
                    self.tc -= b;
                    GREEN
                }
            }
        }
    }
}

/// A worker's replica.
#[derive(Debug, Clone)]
struct Policer {
    mode: Mode,
    bits: bool,
    drop_red: bool,
    aware: bool,
    meters: Vec<Meter>,
}

impl Element for Policer {
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        let (mode, bits, drop_red, aware) = (self.mode, self.bits, self.drop_red, self.aware);
        let Some(m) = self.meters.get_mut(input) else {
            out.push_all(input, batch);
            return;
        };
        m.refill(mode, cx.now());
        // Colour in place; the batch moves on whole unless a packet is to
        // be dropped.
        let mut red = false;
        for pkt in batch.iter_mut() {
            let len = pkt.len() as u64;
            let cost = if bits { len * 8 * NANO } else { NANO };
            let anno = &mut pkt.anno_mut()[COLOR_ANNO];
            let pre = if aware { (*anno).min(RED) } else { GREEN };
            let c = m.color(mode, cost, pre);
            *anno = c;
            m.packets[c as usize] += 1;
            m.bytes[c as usize] += len;
            red |= c == RED;
        }
        if !(red && drop_red) {
            return out.push_all(input, batch);
        }
        for pkt in batch.drain(..) {
            if pkt.anno()[COLOR_ANNO] == RED {
                out.drop(pkt, RED_DROP);
            } else {
                out.push(input, pkt);
            }
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        for (i, name) in [GREEN_PKTS, YELLOW_PKTS, RED_PKTS].into_iter().enumerate() {
            report(name, self.meters.iter().map(|m| m.packets[i]).sum());
        }
    }

    fn read(&self, name: &str, _cx: &HandlerCx) -> HandlerResult {
        if name != "classes" {
            return Err(crate::element::handler::no_such_handler(name));
        }
        let mut o = serde_json::Map::new();
        for m in &self.meters {
            let [g, y, r] = m.packets;
            let [gb, yb, rb] = m.bytes;
            let row = json!({ "green": g, "yellow": y, "red": r,
                "green_bytes": gb, "yellow_bytes": yb, "red_bytes": rb });
            o.insert(m.name.clone(), row);
        }
        Ok(serde_json::Value::Object(o))
    }

    /// Hot reload: counts carry over for classes of the same name (the
    /// buckets start full with the new rates).
    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        let counts: Vec<(String, [u64; 3], [u64; 3])> = self
            .meters
            .iter()
            .map(|m| (m.name.clone(), m.packets, m.bytes))
            .collect();
        Some(Box::new(counts))
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _cx: &mut Context<'_>) {
        let Ok(counts) = state.downcast::<Vec<(String, [u64; 3], [u64; 3])>>() else {
            return;
        };
        for (name, packets, bytes) in *counts {
            if let Some(m) = self.meters.iter_mut().find(|m| m.name == name) {
                (m.packets, m.bytes) = (packets, bytes);
            }
        }
    }
}

/// A rate: a number with an optional k, M or G, per second.
fn parse_rate(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'G' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    let v = v * mul;
    (v.is_finite() && v > 0.0 && v <= MAX_RATE).then_some(v)
}

/// One class's meter from its table (`i`: its index), for a replica
/// metering 1/`workers` of the rates.
fn meter(
    t: &Params,
    i: usize,
    mode: Mode,
    unit: Unit,
    workers: usize,
) -> Result<Meter, ParamError> {
    let err = |e| ParamError::nested("classes", Some(i), e);
    let rate = |field: &str| -> Result<u64, ParamError> {
        let s = t.str(field).map_err(err)?;
        let v = parse_rate(s).ok_or_else(|| {
            let msg = format!("expected a rate such as \"10M\" (up to 1T per second), found {s:?}");
            err(ParamError::new(field, msg))
        })?;
        // Nano-units per nanosecond are units per second.
        Ok((v / workers as f64).round().max(1.0) as u64)
    };
    // Bursts in nano-bits (bytes * 8) or nano-packets.
    let per = if unit == Unit::Bits { 8 * NANO } else { NANO };
    let burst =
        |field: &str| -> Result<u64, ParamError> { Ok(t.int(field).map_err(err)? as u64 * per) };
    let name = match t.get("name") {
        Some(_) => t.str("name").map_err(err)?.to_string(),
        None => i.to_string(),
    };
    let cir = rate("cir")?;
    let c_cap = burst("cbs")?;
    let (rate2, e_cap) = match mode {
        Mode::SrTcm => {
            if t.get("pir").is_some() || t.get("pbs").is_some() {
                let msg = "`pir` and `pbs` are for mode = \"trtcm\"; srTCM takes `ebs`";
                return Err(err(ParamError::new("pir", msg)));
            }
            (cir, burst("ebs")?)
        }
        Mode::TrTcm => {
            for f in ["pir", "pbs"] {
                if t.get(f).is_none() {
                    return Err(err(ParamError::new(f, "required with mode = \"trtcm\"")));
                }
            }
            let pir = rate("pir")?;
            if pir < cir {
                return Err(err(ParamError::new("pir", "must be at least `cir`")));
            }
            (pir, burst("pbs")?)
        }
    };
    Ok(Meter {
        name,
        cir,
        rate2,
        c_cap,
        e_cap,
        tc: c_cap,
        te: e_cap,
        last: 0,
        packets: [0; 3],
        bytes: [0; 3],
    })
}

fn configure(p: &Params, cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let mode = p.choice::<Mode>("mode")?;
    let unit = p.choice::<Unit>("unit")?;
    let classes = p.table_list("classes")?;
    if classes.is_empty() {
        return Err(ParamError::new("classes", "expected at least one class"));
    }
    let workers = cx.workers.max(1);
    let meters = classes
        .iter()
        .enumerate()
        .map(|(i, t)| meter(t, i, mode, unit, workers))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, m) in meters.iter().enumerate() {
        if meters[..i].iter().any(|o| o.name == m.name) {
            return Err(ParamError::item(
                "classes",
                i,
                format!("a second class named {:?}", m.name),
            ));
        }
    }
    let n = meters.len();
    let policer = Policer {
        mode,
        bits: unit == Unit::Bits,
        drop_red: p.choice::<RedAction>("red")? == RedAction::Drop,
        aware: p.bool("color_aware")?,
        meters,
    };
    Ok(Configured::cloning(Inputs::Fixed(n), n, policer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Registry;
    use crate::packet::{Packet, Pool};

    const MS: u64 = 1_000_000;

    fn policer(body: &str) -> Box<dyn Element> {
        crate::config::configure_element(&Registry::builtin(), &[], "Policer", body)
            .unwrap_or_else(|e| panic!("{e}"))
            .instantiate(0)
    }

    /// Colours of `sizes` (frame bytes, pre-coloured `pre`) pushed on
    /// `input` at `now`; `None` for a dropped packet.
    fn meter_at(
        e: &mut dyn Element,
        input: usize,
        sizes: &[(usize, u32)],
        now: u64,
    ) -> Vec<Option<u32>> {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, now, 0);
        let mut out = Output::new(2, DROP_REASONS.len());
        let mut b: Batch = sizes
            .iter()
            .enumerate()
            .map(|(i, &(n, pre))| {
                let mut p = Packet::from_bytes(&vec![0; n]);
                p.anno_mut()[COLOR_ANNO] = pre;
                p.anno_mut()[3] = i as u32;
                p
            })
            .collect();
        e.push(&mut cx, input, &mut b, &mut out);
        let passed = out.take(input);
        (0..sizes.len())
            .map(|i| {
                passed
                    .iter()
                    .find(|p| p.anno()[3] == i as u32)
                    .map(|p| p.anno()[COLOR_ANNO])
            })
            .collect()
    }

    fn sizes(n: usize, len: usize) -> Vec<(usize, u32)> {
        vec![(len, GREEN); n]
    }

    const G: Option<u32> = Some(GREEN);
    const Y: Option<u32> = Some(YELLOW);
    const R: Option<u32> = Some(RED);

    #[test]
    fn srtcm_fills_the_excess_bucket_with_what_overflows() {
        // 8000 bit/s = 1000 bytes/s; CBS 1000, EBS 1000 bytes.
        let mut e = policer("classes = [{ cir = \"8k\", cbs = 1000, ebs = 1000 }]\nred = \"mark\"");
        let got = meter_at(&mut *e, 0, &sizes(5, 500), 0);
        assert_eq!(got, [G, G, Y, Y, R]);
        // Half a second: 500 bytes into C.
        assert_eq!(meter_at(&mut *e, 0, &sizes(2, 500), 500 * MS), [G, R]);
        // Three seconds: C full (1000), the rest fills E (1000).
        let got = meter_at(&mut *e, 0, &sizes(5, 500), 3500 * MS);
        assert_eq!(got, [G, G, Y, Y, R]);
    }

    #[test]
    fn trtcm_meters_against_peak_then_committed_rate() {
        let mut e = policer(
            "mode = \"trtcm\"\nred = \"mark\"\n\
             classes = [{ cir = \"8k\", cbs = 500, pir = \"16k\", pbs = 1000 }]",
        );
        assert_eq!(meter_at(&mut *e, 0, &sizes(3, 500), 0), [G, Y, R]);
        // 250 ms: P gets 500 bytes, C 250: yellow.
        assert_eq!(meter_at(&mut *e, 0, &sizes(2, 500), 250 * MS), [Y, R]);
    }

    #[test]
    fn red_packets_are_dropped_and_counted_and_packets_can_be_the_unit() {
        let mut e = policer("unit = \"packets\"\nclasses = [{ cir = \"10\", cbs = 2 }]");
        assert_eq!(meter_at(&mut *e, 0, &sizes(4, 1500), 0), [G, G, None, None]);
        // 100 ms at 10 packets/s: one more token.
        assert_eq!(meter_at(&mut *e, 0, &sizes(2, 60), 100 * MS), [G, None]);
        let mut s = Vec::new();
        e.stats(&mut |n, v| s.push((n.to_string(), v)));
        assert_eq!(
            s,
            [("green".into(), 3), ("yellow".into(), 0), ("red".into(), 3)]
        );
        let h = e.read("classes", &HandlerCx::new(0, 0)).unwrap();
        assert_eq!(h["0"]["red"], 3);
        assert_eq!(h["0"]["green_bytes"], 1500 * 2 + 60);
    }

    #[test]
    fn color_aware_never_makes_a_packet_greener() {
        let body = "color_aware = true\nred = \"mark\"\nclasses = [{ cir = \"8k\", cbs = 1000, ebs = 1000 }]";
        let mut e = policer(body);
        let got = meter_at(&mut *e, 0, &[(100, YELLOW), (100, RED), (100, GREEN)], 0);
        assert_eq!(got, [Y, R, G]);
        // Colour-blind ignores what is there.
        let mut e = policer("red = \"mark\"\nclasses = [{ cir = \"8k\", cbs = 1000 }]");
        assert_eq!(meter_at(&mut *e, 0, &[(100, RED)], 0), [G]);
    }

    #[test]
    fn each_class_has_its_own_meter_and_output() {
        let mut e = policer(
            "unit = \"packets\"\nclasses = [{ name = \"voice\", cir = \"1\", cbs = 1 }, \
             { name = \"bulk\", cir = \"1\", cbs = 3 }]",
        );
        assert_eq!(meter_at(&mut *e, 0, &sizes(2, 60), 0), [G, None]);
        assert_eq!(meter_at(&mut *e, 1, &sizes(4, 60), 0), [G, G, G, None]);
        let h = e.read("classes", &HandlerCx::new(0, 0)).unwrap();
        assert_eq!(
            (h["voice"]["green"].as_u64(), h["bulk"]["green"].as_u64()),
            (Some(1), Some(3))
        );
        // A reload keeps the counts by class name.
        let state = e.take_state().unwrap();
        let mut new =
            policer("unit = \"packets\"\nclasses = [{ name = \"bulk\", cir = \"5\", cbs = 5 }]");
        let mut pool = Pool::new(0);
        new.give_state(state, &mut Context::new(&mut pool, 0, 0));
        let h = new.read("classes", &HandlerCx::new(0, 0)).unwrap();
        assert_eq!(h["bulk"]["red"], 1);
    }

    #[test]
    fn the_time_going_back_adds_no_tokens() {
        let mut e = policer("unit = \"packets\"\nclasses = [{ cir = \"10\", cbs = 1 }]");
        assert_eq!(meter_at(&mut *e, 0, &sizes(1, 60), 1000 * MS), [G]);
        assert_eq!(meter_at(&mut *e, 0, &sizes(1, 60), 0), [None]);
        assert_eq!(meter_at(&mut *e, 0, &sizes(1, 60), 1000 * MS), [None]);
        assert_eq!(meter_at(&mut *e, 0, &sizes(1, 60), 1100 * MS), [G]);
    }

    #[test]
    fn bad_classes_are_refused_with_where() {
        let err = |body: &str| {
            crate::config::configure_element(&Registry::builtin(), &[], "Policer", body)
                .unwrap_err()
                .to_string()
        };
        let e = err("classes = [{ cir = \"fast\", cbs = 1 }]");
        assert!(e.contains("expected a rate"), "{e}");
        let e = err("mode = \"trtcm\"\nclasses = [{ cir = \"1M\", cbs = 1 }]");
        assert!(e.contains("required with mode"), "{e}");
        let e =
            err("mode = \"trtcm\"\nclasses = [{ cir = \"2M\", cbs = 1, pir = \"1M\", pbs = 1 }]");
        assert!(e.contains("at least `cir`"), "{e}");
        let e = err("classes = [{ name = \"a\", cir = \"1M\", cbs = 1 }, { name = \"a\", cir = \"1M\", cbs = 1 }]");
        assert!(e.contains("second class"), "{e}");
        assert!(err("classes = []").contains("at least one"));
    }

    #[test]
    fn rates_take_suffixes() {
        assert_eq!(parse_rate("20M"), Some(20e6));
        assert_eq!(parse_rate("1.5G"), Some(1.5e9));
        assert_eq!(parse_rate("64k"), Some(64e3));
        assert_eq!(parse_rate("0"), None);
        assert_eq!(parse_rate("2T"), None);
    }
}
