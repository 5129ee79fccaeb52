//! Hot reload over in-memory queues: state and counters carried over, ports
//! kept, closed and opened, refused changes, and no packet lost under
//! traffic across many reloads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::element::{ClassInfo, Configured, Context, Element, Inputs, Output};
use crate::graph::{NodeSpec, Target};
use crate::packet::{Batch, Pool};
use crate::port::{QueueStats, Recv, RxQueue, TxQueue};

/// A receive queue fed by the test; ends once `closed` is set and empty.
/// Sets `dropped` when dropped (its port was closed).
#[derive(Clone, Default)]
struct Feed {
    frames: Arc<Mutex<VecDeque<Vec<u8>>>>,
    closed: Arc<AtomicBool>,
    dropped: Arc<AtomicBool>,
}

impl Feed {
    fn send(&self, first: u8, n: usize) {
        let mut q = self.frames.lock().unwrap();
        q.extend((0..n).map(|_| vec![first; 60]));
    }

    fn queue(&self) -> Box<dyn RxQueue> {
        Box::new(FeedRx(self.clone(), QueueStats::default()))
    }
}

struct FeedRx(Feed, QueueStats);

impl RxQueue for FeedRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let mut q = self.0.frames.lock().unwrap();
        let mut n = 0;
        while n < max {
            let Some(mut p) = pool.alloc() else { break };
            let Some(f) = q.pop_front() else {
                pool.free(p);
                break;
            };
            p.set_frame(&f);
            batch.push(p);
            n += 1;
        }
        self.1.packets += n as u64;
        if n == 0 && self.0.closed.load(Ordering::Relaxed) {
            return Ok(Recv::Ended);
        }
        Ok(Recv::Got(n))
    }

    fn stats(&self) -> QueueStats {
        self.1
    }
}

impl Drop for FeedRx {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::Relaxed);
    }
}

/// Counts what it sends, by first byte; `finished` is set by `finish`.
#[derive(Clone, Default)]
struct Sink {
    sent: Arc<Mutex<Vec<u8>>>,
    finished: Arc<AtomicBool>,
}

impl Sink {
    fn count(&self, first: u8) -> usize {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|&&b| b == first)
            .count()
    }
}

impl TxQueue for Sink {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let mut sent = self.sent.lock().unwrap();
        sent.extend(batch.iter().map(|p| p.data()[0]));
        pool.free_batch(batch);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), PortError> {
        self.finished.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

/// Counts packets; hands its total over in a reload.
#[derive(Clone, Default)]
struct Keeper {
    total: u64,
}

impl Element for Keeper {
    fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
        self.total += batch.len() as u64;
        out.push_all(0, batch);
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report("total", self.total);
    }

    fn read(&self, _: &str, _: &crate::element::HandlerCx) -> crate::element::HandlerResult {
        Ok(serde_json::json!(self.total))
    }

    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(self.total))
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _: &mut Context<'_>) {
        if let Ok(t) = state.downcast::<u64>() {
            self.total += *t;
        }
    }
}

/// Holds each batch until the next one arrives (or the run ends), and
/// hands what it holds over in a reload.
#[derive(Default)]
struct Hold {
    held: Batch,
}

impl Element for Hold {
    fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
        out.push_all(0, &mut self.held);
        self.held.extend(batch.drain(..));
    }

    fn finish(&mut self, _: &mut Context<'_>, out: &mut Output) {
        out.push_all(0, &mut self.held);
    }

    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(std::mem::take(&mut self.held)))
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, _: &mut Context<'_>) {
        if let Ok(mut b) = state.downcast::<Batch>() {
            self.held.extend(b.drain(..));
        }
    }
}

const TOTAL: &[crate::element::HandlerSpec] = &[crate::element::HandlerSpec {
    name: "total",
    kind: crate::element::HandlerKind::Read,
    combine: crate::element::Combine::Sum,
    arg: "",
    doc: "packets counted",
}];

fn keeper(name: &str, class: &'static str, to: Target) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        class: ClassInfo {
            handlers: TOTAL,
            ..ClassInfo::bare(class)
        },
        configured: Configured::new(Inputs::Fixed(1), 1, |_| Box::new(Keeper::default())),
        outputs: vec![to],
    }
}

fn hold(name: &str, to: Target) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        class: ClassInfo::bare("Hold"),
        configured: Configured::new(Inputs::Fixed(1), 1, |_| Box::new(Hold::default())),
        outputs: vec![to],
    }
}

fn rx_port(queues: Vec<Box<dyn RxQueue>>) -> OpenPort {
    OpenPort {
        rx: queues,
        tx: vec![],
        driver: "mem".into(),
        driver_stats: None,
        max_frame: crate::packet::DEFAULT_MAX_FRAME,
    }
}

fn tx_port(sinks: &[Sink]) -> OpenPort {
    OpenPort {
        rx: vec![],
        tx: sinks
            .iter()
            .map(|s| Box::new(s.clone()) as Box<dyn TxQueue>)
            .collect(),
        driver: "mem".into(),
        driver_stats: None,
        max_frame: crate::packet::DEFAULT_MAX_FRAME,
    }
}

fn opts(workers: usize) -> RunOptions {
    RunOptions {
        workers,
        burst: 8,
        pool: 256,
        ..RunOptions::default()
    }
}

fn element<'a>(r: &'a Report, name: &str) -> &'a crate::graph::ElementCounters {
    &r.elements.iter().find(|e| e.name == name).unwrap().counters
}

fn custom(r: &Report, name: &str, key: &str) -> u64 {
    let c = element(r, name).custom.iter().find(|(k, _)| k == key);
    c.map_or(0, |(_, v)| *v)
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

const EL: fn(usize) -> Target = |node| Target::Element { node, input: 0 };

#[test]
fn state_and_counters_carry_over_for_the_same_name_and_class_only() {
    // in -> keep -> swap -> out
    let spec = |swap_class| GraphSpec {
        nodes: vec![
            keeper("keep", "Keeper", EL(1)),
            keeper("swap", swap_class, Target::Port(1)),
        ],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(EL(0)), None],
    };
    let (feed, sink) = (Feed::default(), Sink::default());
    let ports = vec![
        rx_port(vec![feed.queue()]),
        tx_port(std::slice::from_ref(&sink)),
    ];
    let running = start(&spec("Keeper"), ports, &opts(1)).unwrap();
    let c = running.controller();
    feed.send(1, 10);
    wait_for("10 sent", || sink.count(1) == 10);
    let plan = vec![PortPlan::Keep(0), PortPlan::Keep(1)];
    let summary = c.reload(&spec("Other"), plan, &opts(1)).unwrap();
    assert_eq!(summary.kept_with_state, ["keep"]);
    assert_eq!(summary.added, ["swap"], "a changed class starts afresh");
    assert_eq!(summary.removed, ["swap"]);
    assert_eq!(summary.ports_kept, ["in", "out"]);
    feed.send(2, 5);
    wait_for("5 more sent", || sink.count(2) == 5);
    feed.closed.store(true, Ordering::Relaxed);
    let r = running.wait(|_| {}).unwrap();
    assert_eq!(custom(&r, "keep", "total"), 15, "the state was handed over");
    assert_eq!(element(&r, "keep").packets_in, 15, "counters are monotonic");
    assert_eq!(element(&r, "keep").packets_out, 15);
    assert_eq!(custom(&r, "swap", "total"), 5, "no state across classes");
    assert_eq!(element(&r, "swap").packets_in, 5);
    assert_eq!(r.ports[0].rx.packets, 15, "the kept queue kept its counts");
}

#[test]
fn kept_ports_keep_their_queues_removed_ones_close_and_new_ones_are_read() {
    // Before: a -> out, b -> out. After: c -> out, a -> out (b closed).
    let (a, b, c) = (Feed::default(), Feed::default(), Feed::default());
    let (out, b_tx) = (Sink::default(), Sink::default());
    let before = GraphSpec {
        nodes: vec![],
        ports: vec!["a".into(), "b".into(), "out".into()],
        sources: vec![Some(Target::Port(2)), Some(Target::Port(2)), None],
    };
    let mut b_port = rx_port(vec![b.queue()]);
    b_port.tx = vec![Box::new(b_tx.clone())];
    let ports = vec![
        rx_port(vec![a.queue()]),
        b_port,
        tx_port(std::slice::from_ref(&out)),
    ];
    let running = start(&before, ports, &opts(1)).unwrap();
    let ctl = running.controller();
    a.send(1, 3);
    b.send(2, 4);
    wait_for("a and b sent", || out.count(1) == 3 && out.count(2) == 4);
    let after = GraphSpec {
        nodes: vec![keeper("k", "Keeper", Target::Port(2))],
        ports: vec!["c".into(), "a".into(), "out".into()],
        sources: vec![Some(EL(0)), Some(Target::Port(2)), None],
    };
    let plan = vec![
        PortPlan::Open(rx_port(vec![c.queue()])),
        PortPlan::Keep(0),
        PortPlan::Keep(2),
    ];
    let summary = ctl.reload(&after, plan, &opts(1)).unwrap();
    assert_eq!(summary.ports_kept, ["a", "out"]);
    assert_eq!(summary.ports_opened, ["c"]);
    assert_eq!(summary.ports_closed, ["b"]);
    assert_eq!(summary.added, ["k"]);
    assert!(b.dropped.load(Ordering::Relaxed), "b's queue is closed");
    assert!(b_tx.finished.load(Ordering::Relaxed), "b's tx is finished");
    assert!(!a.dropped.load(Ordering::Relaxed), "a's queue stays open");
    assert!(!out.finished.load(Ordering::Relaxed));
    let names: Vec<String> = ctl.report().ports.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["c", "a", "out"], "the report has the new layout");
    a.send(1, 2);
    c.send(3, 6);
    wait_for("a and c sent", || out.count(1) == 5 && out.count(3) == 6);
    for f in [&a, &c] {
        f.closed.store(true, Ordering::Relaxed);
    }
    let r = running.wait(|_| {}).unwrap();
    assert_eq!((r.ports[0].rx.packets, r.ports[1].rx.packets), (6, 5));
    assert_eq!(custom(&r, "k", "total"), 6);
    assert!(out.finished.load(Ordering::Relaxed));
}

#[test]
fn a_refused_reload_leaves_the_run_untouched() {
    let spec = GraphSpec {
        nodes: vec![keeper("keep", "Keeper", Target::Port(1))],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(EL(0)), None],
    };
    let (feed, sink) = (Feed::default(), Sink::default());
    let ports = vec![
        rx_port(vec![feed.queue()]),
        tx_port(std::slice::from_ref(&sink)),
    ];
    let running = start(&spec, ports, &opts(1)).unwrap();
    let c = running.controller();
    feed.send(1, 4);
    wait_for("4 sent", || sink.count(1) == 4);
    let other = GraphSpec {
        nodes: vec![keeper("other", "Keeper", Target::Port(1))],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(EL(0)), None],
    };
    let keep = || vec![PortPlan::Keep(0), PortPlan::Keep(1)];
    let e = c.reload(&other, keep(), &opts(2)).unwrap_err().to_string();
    assert!(e.contains("[runtime] workers (1 -> 2)"), "{e}");
    assert!(e.contains("restart needed"), "{e}");
    let twice = vec![PortPlan::Keep(0), PortPlan::Keep(0)];
    let e = c.reload(&other, twice, &opts(1)).unwrap_err().to_string();
    assert!(e.contains("running port 0 cannot be kept"), "{e}");
    let mut big = rx_port(vec![]);
    big.max_frame = 9216;
    let e = c
        .reload(
            &other,
            vec![PortPlan::Open(big), PortPlan::Keep(1)],
            &opts(1),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("frames of up to 9216 bytes"), "{e}");
    assert!(!feed.dropped.load(Ordering::Relaxed), "no port was closed");
    let names: Vec<String> = c.elements().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["keep"], "the graph is the old one");
    feed.send(2, 3);
    wait_for("3 more sent", || sink.count(2) == 3);
    feed.closed.store(true, Ordering::Relaxed);
    let r = running.wait(|_| {}).unwrap();
    assert_eq!(custom(&r, "keep", "total"), 7);
}

/// Makes `total` frames, `burst` at a time, then has nothing (never ends).
struct Gen {
    left: u64,
    made: Arc<AtomicU64>,
}

impl RxQueue for Gen {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        // About 100k packets per second: the reloads run while they flow.
        std::thread::sleep(Duration::from_micros(50));
        let mut n = 0;
        while n < max && self.left > 0 {
            let Some(mut p) = pool.alloc() else { break };
            p.set_frame(&[7; 60]);
            batch.push(p);
            self.left -= 1;
            n += 1;
        }
        self.made.fetch_add(n as u64, Ordering::Relaxed);
        Ok(Recv::Got(n))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

#[test]
fn no_packet_is_lost_across_many_reloads_under_traffic() {
    const PER_QUEUE: u64 = 100_000;
    const RELOADS: usize = 40;
    // in -> hold -> keep -> out; every other config adds `extra` after keep.
    let spec = |extra: bool| GraphSpec {
        nodes: if extra {
            vec![
                hold("hold", EL(1)),
                keeper("keep", "Keeper", EL(2)),
                keeper("extra", "Keeper", Target::Port(1)),
            ]
        } else {
            vec![
                hold("hold", EL(1)),
                keeper("keep", "Keeper", Target::Port(1)),
            ]
        },
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(EL(0)), None],
    };
    let made = Arc::new(AtomicU64::new(0));
    let gen = || {
        Box::new(Gen {
            left: PER_QUEUE,
            made: made.clone(),
        }) as Box<dyn RxQueue>
    };
    let sinks = [Sink::default(), Sink::default()];
    let ports = vec![rx_port(vec![gen(), gen()]), tx_port(&sinks)];
    let running = start(&spec(false), ports, &opts(2)).unwrap();
    let c = running.controller();
    let sent = || sinks.iter().map(|s| s.count(7)).sum::<usize>() as u64;
    let mut last_in = 0;
    for i in 0..RELOADS {
        let plan = vec![PortPlan::Keep(0), PortPlan::Keep(1)];
        let s = c.reload(&spec(i % 2 == 0), plan, &opts(2)).unwrap();
        assert_eq!(s.kept_with_state, ["hold", "keep"]);
        let r = c.report();
        let now_in = element(&r, "keep").packets_in;
        assert!(now_in >= last_in, "counters are monotonic");
        last_in = now_in;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        made.load(Ordering::Relaxed) < 2 * PER_QUEUE,
        "the reloads ran while packets were still flowing"
    );
    wait_for("every packet made", || {
        made.load(Ordering::Relaxed) == 2 * PER_QUEUE
    });
    c.stop();
    let r = running.wait(|_| {}).unwrap();
    assert_eq!(sent(), 2 * PER_QUEUE, "every packet made was sent");
    assert_eq!(element(&r, "keep").packets_in, 2 * PER_QUEUE);
    assert_eq!(custom(&r, "keep", "total"), 2 * PER_QUEUE);
    assert_eq!(element(&r, "hold").dropped(), 0);
}

#[test]
fn handler_requests_find_their_element_across_reloads() {
    // `keep` is element 0, then element 1 (after `first`), and back.
    let spec = |first: bool| GraphSpec {
        nodes: if first {
            vec![
                keeper("first", "Keeper", EL(1)),
                keeper("keep", "Keeper", Target::Port(1)),
            ]
        } else {
            vec![keeper("keep", "Keeper", Target::Port(1))]
        },
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(EL(0)), None],
    };
    let (feed, sink) = (Feed::default(), Sink::default());
    let ports = vec![
        rx_port(vec![feed.queue()]),
        tx_port(std::slice::from_ref(&sink)),
    ];
    let running = start(&spec(false), ports, &opts(1)).unwrap();
    let c = running.controller();
    feed.send(1, 5);
    wait_for("5 sent", || sink.count(1) == 5);
    // A request is sent with the index the element had; a reload queued
    // before it moves the element: the job finds it by name.
    let moved = crate::graph::Graph::new(&spec(true), 0);
    assert_eq!(Controller::at("keep", 0)(&moved), Ok(1));
    assert_eq!(Controller::at("first", 0)(&moved), Ok(0));
    let e = Controller::at("gone", 0)(&moved).unwrap_err();
    assert!(e.contains("the config was reloaded"), "{e}");
    c.reload(
        &spec(true),
        vec![PortPlan::Keep(0), PortPlan::Keep(1)],
        &opts(1),
    )
    .unwrap();
    assert_eq!(c.read("keep", "total").unwrap(), serde_json::json!(5));
    assert_eq!(c.read("first", "total").unwrap(), serde_json::json!(0));
    feed.closed.store(true, Ordering::Relaxed);
    let r = running.wait(|_| {}).expect("the run ends cleanly");
    assert_eq!(custom(&r, "keep", "total"), 5);
}
