//! `Counter`: counts packets and bytes passing through and measures their rate.

use crate::element::{
    handler, ClassInfo, Combine, ConfigCx, Configured, Context, Element, ElementClass, HandlerCx,
    HandlerKind, HandlerResult, HandlerSpec, Inputs, Need, Output, ParamError, ParamSpec,
    ParamType, Params, PortCount,
};
use crate::packet::Batch;

const NS_PER_SEC: u128 = 1_000_000_000;

hpio_nf::counters! {
    COUNTERS = [
        PACKETS = "packets": "Packets counted",
        BYTES = "bytes": "Frame bytes counted",
        PPS = "pps": "Packets per second over the last completed window",
        BPS = "bps": "Frame bits per second over the last completed window",
    ]
}

/// The `Counter` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Counter",
        summary: "Counts packets and bytes passing through and measures their rate",
        description: "\
Passes every packet to output 0 unchanged, counting packets and frame bytes
(the bytes of the Ethernet frame as held in the buffer, without the FCS) and
measuring the rate over a sliding measurement window.

Rates: the first batch opens a window of length `window`. The first batch that
arrives after the window has ended closes it: `pps` and `bps` become the
packets and bits counted since the window opened divided by the time that
actually elapsed (so an idle gap lowers the rate instead of being ignored), and
a new window opens. The clock is read once per burst (the runtime's time, which
is the packet clock when a capture is replayed), never per packet.

Notes: rates are updated only when packets arrive; after traffic stops they
keep the value of the last completed window. Each worker runs its own replica;
the reported counters (and rates) are the sums over workers.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[ParamSpec {
            name: "window",
            ty: ParamType::Duration,
            need: Need::Default("\"1s\""),
            doc: "Length of the window over which `pps` and `bps` are measured (> 0)",
        }],
        drop_reasons: &[],
        counters: COUNTERS,
        handlers: HANDLERS,
        example: "\
[elements.count]
class = \"Counter\"
window = \"500ms\"",
        see_also: &["Print", "Discard"],
    },
    configure,
};

const HANDLERS: &[HandlerSpec] = &[
    HandlerSpec {
        name: "count",
        kind: HandlerKind::Read,
        combine: Combine::Sum,
        arg: "",
        doc: "Packets counted (since the start or the last `reset`)",
    },
    HandlerSpec {
        name: "byte_count",
        kind: HandlerKind::Read,
        combine: Combine::Sum,
        arg: "",
        doc: "Frame bytes counted",
    },
    HandlerSpec {
        name: "rate",
        kind: HandlerKind::Read,
        combine: Combine::Sum,
        arg: "",
        doc: "`pps` and `bps` of the last completed window",
    },
    HandlerSpec {
        name: "reset",
        kind: HandlerKind::Write,
        combine: Combine::Same,
        arg: "",
        doc: "Sets the counts and rates to zero and opens a new window",
    },
];

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let window = p.duration("window")?;
    let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    if window_ns == 0 {
        return Err(ParamError::new("window", "must be longer than zero"));
    }
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        1,
        Counter::new(window_ns),
    ))
}

/// Counts packets and bytes and measures their rate over a window.
#[derive(Debug, Clone)]
pub struct Counter {
    window_ns: u64,
    packets: u64,
    bytes: u64,
    /// Whether a window is open (no batch seen yet when false).
    started: bool,
    /// Opening time of the current window.
    win_start: u64,
    /// `packets` and `bytes` when the current window opened.
    win_packets: u64,
    win_bytes: u64,
    pps: u64,
    bps: u64,
}

impl Counter {
    /// A counter measuring rates over windows of `window_ns` nanoseconds.
    pub fn new(window_ns: u64) -> Counter {
        Counter {
            window_ns: window_ns.max(1),
            packets: 0,
            bytes: 0,
            started: false,
            win_start: 0,
            win_packets: 0,
            win_bytes: 0,
            pps: 0,
            bps: 0,
        }
    }

    /// Closes the current window at `now` if it has ended, and opens the next.
    #[inline]
    fn tick(&mut self, now: u64) {
        if !self.started {
            self.started = true;
            self.open(now);
            return;
        }
        let elapsed = now.saturating_sub(self.win_start);
        if elapsed < self.window_ns {
            return;
        }
        let per_sec = |n: u64| (n as u128 * NS_PER_SEC / elapsed as u128) as u64;
        self.pps = per_sec(self.packets - self.win_packets);
        self.bps = per_sec(self.bytes - self.win_bytes).saturating_mul(8);
        self.open(now);
    }

    fn open(&mut self, now: u64) {
        self.win_start = now;
        self.win_packets = self.packets;
        self.win_bytes = self.bytes;
    }
}

impl Element for Counter {
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        self.tick(cx.now());
        let bytes: usize = batch.iter().map(|p| p.len()).sum();
        self.packets += batch.len() as u64;
        self.bytes += bytes as u64;
        out.push_all(0, batch);
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(PACKETS, self.packets);
        report(BYTES, self.bytes);
        report(PPS, self.pps);
        report(BPS, self.bps);
    }

    /// Hot reload: the totals and the open window carry over.
    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(self.clone()))
    }

    /// Keeps the new `window`, takes everything else from the old replica.
    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _cx: &mut Context<'_>) {
        if let Ok(old) = state.downcast::<Counter>() {
            *self = Counter {
                window_ns: self.window_ns,
                ..*old
            };
        }
    }

    fn read(&self, name: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "count" => Ok(self.packets.into()),
            "byte_count" => Ok(self.bytes.into()),
            "rate" => Ok(serde_json::json!({ "pps": self.pps, "bps": self.bps })),
            _ => Err(handler::no_such_handler(name)),
        }
    }

    fn write(&mut self, name: &str, _arg: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "reset" => {
                *self = Counter::new(self.window_ns);
                Ok(serde_json::Value::Null)
            }
            _ => Err(handler::no_such_handler(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    fn batch(n: usize, len: usize) -> Batch {
        (0..n)
            .map(|_| Packet::from_bytes(&vec![0u8; len]))
            .collect()
    }

    fn stats(c: &Counter) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        c.stats(&mut |k, n| v.push((k.to_string(), n)));
        v
    }

    fn stat(c: &Counter, name: &str) -> u64 {
        stats(c).into_iter().find(|(k, _)| k == name).unwrap().1
    }

    fn run(c: &mut Counter, pool: &mut Pool, now: u64, mut b: Batch) -> Output {
        let mut cx = Context::new(pool, now, 0);
        let mut out = Output::new(1, 0);
        c.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        out
    }

    #[test]
    fn passes_everything_and_counts_frame_bytes() {
        let mut pool = Pool::new(0);
        let mut c = Counter::new(SEC);
        let out = run(&mut c, &mut pool, 0, batch(3, 60));
        assert_eq!(out.batch(0).len(), 3);
        let out = run(&mut c, &mut pool, 10, batch(2, 1514));
        assert_eq!(out.batch(0).len(), 2);
        assert_eq!(stat(&c, "packets"), 5);
        assert_eq!(stat(&c, "bytes"), 3 * 60 + 2 * 1514);
        assert_eq!(
            stats(&c)
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["packets", "bytes", "pps", "bps"]
        );
    }

    #[test]
    fn rate_is_measured_per_completed_window() {
        let mut pool = Pool::new(0);
        let mut c = Counter::new(SEC);
        // Window 1 opens at t=5s: 100 + 100 packets of 100 bytes.
        run(&mut c, &mut pool, 5 * SEC, batch(100, 100));
        run(&mut c, &mut pool, 5 * SEC + SEC / 2, batch(100, 100));
        assert_eq!(stat(&c, "pps"), 0, "no window completed yet");
        // t=6s closes window 1 (before counting this batch).
        run(&mut c, &mut pool, 6 * SEC, batch(50, 100));
        assert_eq!(stat(&c, "pps"), 200);
        assert_eq!(stat(&c, "bps"), 200 * 100 * 8);
        // Window 2 [6s, ..): 50 packets so far; still inside at 6.9s.
        run(&mut c, &mut pool, 6 * SEC + 9 * SEC / 10, batch(50, 100));
        assert_eq!(stat(&c, "pps"), 200);
        // An idle gap: closed at 8s, 100 packets over 2 s.
        run(&mut c, &mut pool, 8 * SEC, batch(1, 100));
        assert_eq!(stat(&c, "pps"), 50);
        assert_eq!(stat(&c, "bps"), 50 * 100 * 8);
        assert_eq!(stat(&c, "packets"), 301);
    }

    #[test]
    fn a_reload_carries_the_totals_and_keeps_the_new_window() {
        let mut pool = Pool::new(0);
        let mut old = Counter::new(SEC);
        run(&mut old, &mut pool, 0, batch(3, 100));
        let mut new = Counter::new(2 * SEC);
        let state = old.take_state().expect("a counter has state");
        new.give_state(state, &mut Context::new(&mut pool, 0, 0));
        run(&mut new, &mut pool, SEC, batch(2, 100));
        assert_eq!(stat(&new, "packets"), 5);
        assert_eq!(stat(&new, "bytes"), 500);
        assert_eq!(new.window_ns, 2 * SEC, "the new window applies");
        assert_eq!(stat(&new, "pps"), 0, "1 s is inside the new 2 s window");
    }

    #[test]
    fn handlers_read_the_counts_and_reset_them() {
        let mut pool = Pool::new(0);
        let mut c = Counter::new(SEC);
        run(&mut c, &mut pool, 0, batch(100, 100));
        run(&mut c, &mut pool, SEC, batch(1, 100));
        let cx = HandlerCx::new(SEC, 0);
        assert_eq!(c.read("count", &cx), Ok(101.into()));
        assert_eq!(c.read("byte_count", &cx), Ok(10100.into()));
        assert_eq!(
            c.read("rate", &cx),
            Ok(serde_json::json!({"pps": 100, "bps": 80000}))
        );
        assert!(c.read("reset", &cx).is_err());
        assert_eq!(c.write("reset", "", &cx), Ok(serde_json::Value::Null));
        assert_eq!(c.read("count", &cx), Ok(0.into()));
        assert_eq!(
            c.read("rate", &cx),
            Ok(serde_json::json!({"pps": 0, "bps": 0}))
        );
        assert_eq!(stat(&c, "bytes"), 0);
        // Every handler the class declares answers.
        for h in HANDLERS {
            let r = match h.kind {
                HandlerKind::Read => c.read(h.name, &cx),
                HandlerKind::Write => c.write(h.name, "", &cx),
            };
            assert!(r.is_ok(), "{}", h.name);
        }
    }

    #[test]
    fn a_clock_going_backwards_does_not_panic() {
        let mut pool = Pool::new(0);
        let mut c = Counter::new(SEC);
        run(&mut c, &mut pool, 10 * SEC, batch(1, 60));
        run(&mut c, &mut pool, SEC, batch(1, 60));
        assert_eq!(stat(&c, "packets"), 2);
    }

    #[test]
    fn configure_checks_the_window() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("window", Value::Duration(Duration::from_millis(250)));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 1));
        p.set("window", Value::Duration(Duration::ZERO));
        let e = (CLASS.configure)(&p, &cx).unwrap_err();
        assert_eq!(e.param, "window");
    }
}
