//! The runtime over in-memory queues: element panics, the timestamp merge
//! of replays, and port faults.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::element::{Configured, Context, Element, Inputs, Output};
use crate::graph::{NodeSpec, Target};
use crate::packet::{Batch, Pool};
use crate::port::{QueueStats, Recv, RxQueue, TxQueue};

/// Hands out `frames`, at most `max` per call, then ends.
struct MemRx {
    frames: std::vec::IntoIter<Vec<u8>>,
    stats: QueueStats,
}

impl RxQueue for MemRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let mut n = 0;
        while n < max {
            let Some(f) = self.frames.next() else { break };
            let mut p = pool.alloc().expect("pool large enough");
            p.set_frame(&f);
            batch.push(p);
            n += 1;
        }
        self.stats.packets += n as u64;
        Ok(if n == 0 { Recv::Ended } else { Recv::Got(n) })
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

/// Keeps the frames it is given.
struct MemTx(Arc<Mutex<Vec<Vec<u8>>>>);

impl TxQueue for MemTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        self.0
            .lock()
            .unwrap()
            .extend(batch.iter().map(|p| p.data().to_vec()));
        pool.free_batch(batch);
        Ok(())
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

/// Forwards every packet; panics on a frame whose first byte is 0xff.
#[derive(Clone)]
struct Touchy;

impl Element for Touchy {
    fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
        for p in batch.drain(..) {
            if p.data()[0] == 0xff {
                panic!("marked packet {}", p.data()[1]);
            }
            out.push(0, p);
        }
    }
}

fn touchy_graph() -> GraphSpec {
    GraphSpec {
        nodes: vec![NodeSpec {
            name: "touchy".into(),
            class: crate::element::ClassInfo::bare("Touchy"),
            configured: Configured::cloning(Inputs::Fixed(1), 1, Touchy),
            outputs: vec![Target::Port(1)],
        }],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    }
}

/// An in-memory port with these queues.
fn mem_port(rx: Vec<Box<dyn RxQueue>>, tx: Vec<Box<dyn TxQueue>>) -> OpenPort {
    OpenPort {
        rx,
        tx,
        driver: "mem".into(),
        driver_stats: None,
        max_frame: crate::packet::DEFAULT_MAX_FRAME,
    }
}

/// Runs the touchy graph over `frames` with `on_panic`, one packet per burst.
fn run_touchy(frames: Vec<Vec<u8>>, on_panic: OnPanic) -> (Result<Report, RunError>, Vec<Vec<u8>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let rx = MemRx {
        frames: frames.into_iter(),
        stats: QueueStats::default(),
    };
    let ports = vec![
        mem_port(vec![Box::new(rx)], vec![]),
        mem_port(vec![], vec![Box::new(MemTx(sent.clone()))]),
    ];
    let opts = RunOptions {
        burst: 1,
        pool: 64,
        on_panic,
        ..RunOptions::default()
    };
    let r = run(&touchy_graph(), ports, &opts, |_| {});
    let sent = sent.lock().unwrap().clone();
    (r, sent)
}

fn frames() -> Vec<Vec<u8>> {
    vec![
        vec![1; 60],
        vec![0xff, 1, 0, 0],
        vec![2; 60],
        vec![0xff, 2, 0, 0],
        vec![3; 60],
    ]
}

#[test]
fn on_panic_drop_drops_the_batch_counts_it_and_keeps_going() {
    let (r, sent) = run_touchy(frames(), OnPanic::Drop);
    let report = r.expect("the run goes on");
    let firsts: Vec<u8> = sent.iter().map(|f| f[0]).collect();
    assert_eq!(firsts, [1, 2, 3], "only the marked packets are missing");
    let e = &report.elements[0].counters;
    assert_eq!((e.packets_in, e.packets_out), (5, 3));
    assert_eq!(e.drops, vec![("panic".to_string(), 2)]);
}

#[test]
fn on_panic_stop_ends_the_run_with_an_error_naming_the_element() {
    let (r, sent) = run_touchy(frames(), OnPanic::Stop);
    let e = r.expect_err("the run stops");
    match &e {
        RunError::ElementPanic {
            worker,
            element,
            class,
            message,
        } => {
            assert_eq!(
                (*worker, element.as_str(), class.as_str()),
                (0, "touchy", "Touchy")
            );
            assert!(message.starts_with("marked packet 1 (at "), "{message}");
        }
        other => panic!("{other}"),
    }
    let text = e.to_string();
    assert!(
        text.starts_with("element `touchy` (class Touchy) panicked on worker 0: marked packet 1"),
        "{text}"
    );
    assert!(text.contains("on_panic = \"stop\""), "{text}");
    assert_eq!(
        sent,
        vec![vec![1u8; 60]],
        "what passed before the panic was still sent"
    );
}

/// One port per recording of `inputs` (replays or not), and a last port
/// whose frames sent go to `sent`.
fn replay_ports(
    inputs: &[Vec<(u64, Vec<u8>)>],
    replay: bool,
    sent: &Arc<Mutex<Vec<Vec<u8>>>>,
) -> Vec<OpenPort> {
    let mut ports: Vec<OpenPort> = inputs
        .iter()
        .map(|frames| {
            let rx = ReplayRx {
                frames: frames.clone().into_iter(),
                replay,
            };
            mem_port(vec![Box::new(rx)], vec![])
        })
        .collect();
    ports.push(mem_port(vec![], vec![Box::new(MemTx(sent.clone()))]));
    ports
}

/// A recording: hands out `(timestamp, frame)` pairs, at most `max` per
/// call, then ends; a replay queue when `replay` is set.
struct ReplayRx {
    frames: std::vec::IntoIter<(u64, Vec<u8>)>,
    replay: bool,
}

impl RxQueue for ReplayRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let mut n = 0;
        while n < max {
            let Some(mut p) = pool.alloc() else { break };
            let Some((ts, f)) = self.frames.next() else {
                pool.free(p);
                break;
            };
            p.set_frame(&f);
            p.set_timestamp(ts);
            batch.push(p);
            n += 1;
        }
        if n == 0 && self.frames.len() == 0 {
            return Ok(Recv::Ended);
        }
        Ok(Recv::Got(n))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }

    fn replay(&self) -> bool {
        self.replay
    }
}

/// `in0 -> out`, `in1 -> out`, `in2 -> out`: what comes out shows the order
/// the runtime read the inputs in.
fn merge_graph() -> GraphSpec {
    GraphSpec {
        nodes: vec![],
        ports: vec!["in0".into(), "in1".into(), "in2".into(), "out".into()],
        sources: vec![
            Some(Target::Port(3)),
            Some(Target::Port(3)),
            Some(Target::Port(3)),
            None,
        ],
    }
}

/// Input `k`'s frames at `times`: byte 0 is `k`, byte 1 the frame's index.
fn recording(k: u8, times: &[u64]) -> Vec<(u64, Vec<u8>)> {
    times
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, vec![k, i as u8, 0, 0]))
        .collect()
}

/// Runs the three `inputs` into one output; returns `(input, index)` of
/// each frame sent, in order.
fn run_merge(
    inputs: &[Vec<(u64, Vec<u8>)>],
    clock: Clock,
    burst: usize,
    pool: usize,
) -> Vec<(u8, u8)> {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let ports = replay_ports(inputs, true, &sent);
    let opts = RunOptions {
        burst,
        pool,
        clock,
        ..RunOptions::default()
    };
    run(&merge_graph(), ports, &opts, |_| {}).unwrap();
    let sent = sent.lock().unwrap();
    sent.iter().map(|f| (f[0], f[1])).collect()
}

fn merge_inputs() -> Vec<Vec<(u64, Vec<u8>)>> {
    vec![
        // Runs of several packets, a tie with input 1 at 50 and with input 2 at 90.
        recording(
            0,
            &[
                10, 11, 12, 13, 50, 51, 90, 200, 201, 202, 203, 204, 205, 206, 207,
            ],
        ),
        recording(
            1,
            &[
                5, 20, 21, 50, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 100,
            ],
        ),
        recording(2, &[1, 90, 300]),
    ]
}

/// The expected order: by timestamp, equal timestamps in port order.
fn merged_order(inputs: &[Vec<(u64, Vec<u8>)>]) -> Vec<(u8, u8)> {
    let mut all: Vec<(u64, u8, u8)> = inputs
        .iter()
        .enumerate()
        .flat_map(|(k, fr)| fr.iter().map(move |(t, f)| (*t, k as u8, f[1])))
        .collect();
    all.sort();
    all.into_iter().map(|(_, k, i)| (k, i)).collect()
}

#[test]
fn packet_clock_merges_replays_by_timestamp_for_every_burst_and_pool() {
    let inputs = merge_inputs();
    let want = merged_order(&inputs);
    assert_eq!(want.len(), 34);
    for burst in [1, 2, 3, 7, 32, 256] {
        for pool in [2, 8, 64, 4096] {
            let got = run_merge(&inputs, Clock::Packet, burst, pool);
            assert_eq!(got, want, "burst {burst}, pool {pool}");
        }
    }
    // Ties: input 0 before input 1 at 50, input 1's 90-less run cut by input 2's 90.
    let at50: Vec<_> = want
        .iter()
        .filter(|&&(k, i)| (k, i) == (0, 4) || (k, i) == (1, 3))
        .collect();
    assert_eq!(at50, [&(0, 4), &(1, 3)]);
}

#[test]
fn system_clock_reads_inputs_burst_by_burst() {
    let inputs = merge_inputs();
    let got = run_merge(&inputs, Clock::System, 32, 4096);
    // Each input's whole file in one burst, in port order.
    let want: Vec<(u8, u8)> = inputs
        .iter()
        .enumerate()
        .flat_map(|(k, fr)| (0..fr.len()).map(move |i| (k as u8, i as u8)))
        .collect();
    assert_eq!(got, want);
    assert_ne!(got, merged_order(&inputs));
}

#[test]
fn queues_that_are_not_replays_are_not_merged() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let inputs = merge_inputs();
    let ports = replay_ports(&inputs, false, &sent);
    let opts = RunOptions {
        burst: 256,
        clock: Clock::Packet,
        ..RunOptions::default()
    };
    run(&merge_graph(), ports, &opts, |_| {}).unwrap();
    let firsts: Vec<u8> = sent.lock().unwrap().iter().map(|f| f[0]).collect();
    assert!(firsts.windows(2).all(|w| w[0] <= w[1]), "{firsts:?}");
}

/// Never ends: one small frame per call.
struct Endless;

impl RxQueue for Endless {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, _: usize) -> Result<Recv, PortError> {
        if let Some(mut p) = pool.alloc() {
            p.set_frame(&[1; 60]);
            batch.push(p);
            return Ok(Recv::Got(1));
        }
        Ok(Recv::Got(0))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

/// Fails on its fourth call: with an error, or a panic.
struct Failing {
    calls: u32,
    panic: bool,
}

impl RxQueue for Failing {
    fn recv(&mut self, _: &mut Pool, _: &mut Batch, _: usize) -> Result<Recv, PortError> {
        self.calls += 1;
        std::thread::sleep(Duration::from_millis(20));
        if self.calls < 4 {
            return Ok(Recv::Got(0));
        }
        if self.panic {
            panic!("rigged receive panic");
        }
        Err(PortError::other("flaky", "rigged receive error"))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

/// Fails when it is given packets to send.
struct FailingTx;

impl TxQueue for FailingTx {
    fn send(&mut self, _: &mut Pool, _: &mut Batch) -> Result<(), PortError> {
        panic!("rigged transmit panic");
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

/// Two workers: `endless` (worker 0, never ends) and `flaky` (its queue on
/// worker 1) into `sink`; returns the run's result and how long it took.
fn run_fault(
    flaky_rx: Box<dyn RxQueue>,
    tx1: Box<dyn TxQueue>,
) -> (Result<Report, RunError>, Duration) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let graph = GraphSpec {
        nodes: vec![],
        ports: vec!["endless".into(), "flaky".into(), "sink".into()],
        sources: vec![Some(Target::Port(2)), Some(Target::Port(2)), None],
    };
    let ports = vec![
        mem_port(vec![Box::new(Endless)], vec![]),
        // Queue 1 goes to worker 1; queue 0 never ends, like `endless`.
        mem_port(vec![Box::new(Endless), flaky_rx], vec![]),
        mem_port(vec![], vec![Box::new(MemTx(sent.clone())), tx1]),
    ];
    let opts = RunOptions {
        workers: 2,
        burst: 4,
        pool: 64,
        ..RunOptions::default()
    };
    let t = Instant::now();
    let r = run(&graph, ports, &opts, |_| {});
    (r, t.elapsed())
}

#[test]
fn a_port_error_on_one_worker_stops_every_worker_with_the_error() {
    let (r, took) = run_fault(
        Box::new(Failing {
            calls: 0,
            panic: false,
        }),
        Box::new(MemTx(Arc::new(Mutex::new(Vec::new())))),
    );
    let e = r.expect_err("the run stops");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(matches!(e, RunError::Port { worker: 1, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "port `flaky`: rigged receive error (worker 1; the run stopped)"
    );
}

#[test]
fn a_port_driver_panic_on_one_worker_stops_every_worker_with_the_error() {
    let (r, took) = run_fault(
        Box::new(Failing {
            calls: 0,
            panic: true,
        }),
        Box::new(MemTx(Arc::new(Mutex::new(Vec::new())))),
    );
    let e = r.expect_err("the run stops");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "port `flaky`: the driver panicked on receive in worker 1: rigged receive panic"
        ),
        "{text}"
    );
    assert!(text.ends_with("(worker 1; the run stopped)"), "{text}");

    // A transmit handle that panics (worker 1's side of `sink`).
    let (r, took) = run_fault(Box::new(Endless), Box::new(FailingTx));
    let text = r.expect_err("the run stops").to_string();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        text.starts_with(
            "port `sink`: the driver panicked on transmit in worker 1: rigged transmit panic"
        ),
        "{text}"
    );
}

#[test]
fn two_pcap_inputs_replay_in_timestamp_order() {
    use crate::port::pcap::tests::{read_all, spec, udp_frame, write_through_port, TempPath};
    // Input 0 at even microseconds, input 1 at odd ones, two runs of five
    // in a row, and one tie (input 0 first).
    let t = |us: u64| 1_700_000_000_000_000_000 + us * 1000;
    let times: [Vec<u64>; 2] = [
        vec![0, 2, 4, 6, 8, 10, 30, 31, 32, 33, 34, 50],
        vec![1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 50],
    ];
    let files = [TempPath::new("pcap"), TempPath::new("pcap")];
    for (k, f) in files.iter().enumerate() {
        let frames: Vec<(u64, Vec<u8>)> = times[k]
            .iter()
            .enumerate()
            .map(|(i, &us)| (t(us), udp_frame(100 * k as u16 + i as u16, 10)))
            .collect();
        write_through_port(&f.s(), &frames);
    }
    let mut want: Vec<(u64, usize, usize)> = (0..2)
        .flat_map(|k| times[k].iter().enumerate().map(move |(i, &us)| (us, k, i)))
        .collect();
    want.sort();
    let want: Vec<u16> = want
        .iter()
        .map(|&(_, k, i)| 1000 + 100 * k as u16 + i as u16)
        .collect();
    for burst in [1, 7, 32] {
        let out = TempPath::new("pcap");
        let ports = vec![
            spec(Some(&files[0].s()), None)
                .open("in0", 1, true, false)
                .unwrap(),
            spec(Some(&files[1].s()), None)
                .open("in1", 1, true, false)
                .unwrap(),
            spec(None, Some(&out.s()))
                .open("out", 1, false, true)
                .unwrap(),
        ];
        let graph = GraphSpec {
            nodes: vec![],
            ports: vec!["in0".into(), "in1".into(), "out".into()],
            sources: vec![Some(Target::Port(2)), Some(Target::Port(2)), None],
        };
        let opts = RunOptions {
            burst,
            clock: Clock::Packet,
            ..RunOptions::default()
        };
        run(&graph, ports, &opts, |_| {}).unwrap();
        // The UDP source port (bytes 34..36) tells the frames apart.
        let got: Vec<u16> = read_all(&out.s())
            .unwrap()
            .iter()
            .map(|p| u16::from_be_bytes([p.data()[34], p.data()[35]]))
            .collect();
        assert_eq!(got, want, "burst {burst}");
    }
}

/// Keeps the first `keep` packets it is given (until dropped), forwards the rest.
struct Hoard {
    keep: usize,
    kept: Vec<crate::packet::Packet>,
}

impl Clone for Hoard {
    fn clone(&self) -> Hoard {
        Hoard {
            keep: self.keep,
            kept: Vec::new(),
        }
    }
}

impl Element for Hoard {
    fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
        for p in batch.drain(..) {
            if self.kept.len() < self.keep {
                self.kept.push(p);
            } else {
                out.push(0, p);
            }
        }
    }
}

#[test]
fn an_element_holding_most_of_the_pool_does_not_stall_the_merge() {
    // Pool of 8 for three inputs read one packet ahead each: with 6 slots
    // held by the element, an input cannot read its next packet; the merge
    // goes on (order no longer guaranteed) instead of waiting forever.
    let inputs = merge_inputs();
    let total: usize = inputs.iter().map(|i| i.len()).sum();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let ports = replay_ports(&inputs, true, &sent);
    let hoard = Target::Element { node: 0, input: 0 };
    let graph = GraphSpec {
        nodes: vec![NodeSpec {
            name: "hoard".into(),
            class: crate::element::ClassInfo::bare("Hoard"),
            configured: Configured::cloning(
                Inputs::Fixed(1),
                1,
                Hoard {
                    keep: 6,
                    kept: Vec::new(),
                },
            ),
            outputs: vec![Target::Port(3)],
        }],
        ports: vec!["in0".into(), "in1".into(), "in2".into(), "out".into()],
        sources: vec![Some(hoard), Some(hoard), Some(hoard), None],
    };
    let opts = RunOptions {
        burst: 1,
        pool: 8,
        clock: Clock::Packet,
        ..RunOptions::default()
    };
    let t = Instant::now();
    run(&graph, ports, &opts, |_| {}).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(sent.lock().unwrap().len(), total - 6);
}

/// Hands out a packet and finds nothing, turn about (`idle_ms` on each
/// call that finds nothing), `calls` times, then ends.
struct Paced {
    calls: u32,
    idle_ms: u64,
}

/// Takes `.0` ms per batch sent: the work of a busy pass (the loop reads
/// its clock once a pass received packets, so the time a receive call
/// takes before it finds some counts as idle).
struct SlowTx(u64, Arc<Mutex<Vec<Vec<u8>>>>);

impl TxQueue for SlowTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        std::thread::sleep(Duration::from_millis(self.0));
        MemTx(self.1.clone()).send(pool, batch)
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

impl RxQueue for Paced {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, _: usize) -> Result<Recv, PortError> {
        if self.calls == 0 {
            return Ok(Recv::Ended);
        }
        self.calls -= 1;
        if self.calls % 2 == 1 {
            let mut p = pool.alloc().expect("pool large enough");
            p.set_frame(&[1; 60]);
            batch.push(p);
            return Ok(Recv::Got(1));
        }
        std::thread::sleep(Duration::from_millis(self.idle_ms));
        Ok(Recv::Got(0))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

#[test]
fn workers_split_their_loop_time_into_busy_and_idle_passes() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let graph = GraphSpec {
        nodes: vec![],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Port(1)), None],
    };
    // 6 packets taking 30 ms each to send, 6 empty polls taking 10 ms each.
    let paced = Paced {
        calls: 12,
        idle_ms: 10,
    };
    let ports = vec![
        mem_port(vec![Box::new(paced)], vec![]),
        mem_port(vec![], vec![Box::new(SlowTx(30, sent.clone()))]),
    ];
    let report = run(&graph, ports, &RunOptions::default(), |_| {}).unwrap();
    assert_eq!(sent.lock().unwrap().len(), 6);
    let w = &report.workers[0];
    assert!(w.busy_secs >= 0.180, "{w:?}");
    assert!(w.idle_secs >= 0.060 && w.idle_secs < w.busy_secs, "{w:?}");
    // The two add up to the loop's run time.
    assert!(
        (w.busy_secs + w.idle_secs - w.run_secs).abs() < 0.02,
        "{w:?}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["workers"][0]["busy_secs"].as_f64().unwrap() >= 0.180);
    assert!(report.to_string().contains("worker 0: busy 0."), "{report}");
}

/// Holds each packet for [`STAMP_HOLD`] ns of worker time; its timer sends
/// it on with the time of the release in bytes 2..10, `finish` with
/// `u64::MAX` there.
#[derive(Default)]
struct Stamp {
    held: Vec<(u64, crate::packet::Packet)>,
}

const STAMP_HOLD: u64 = 1_000_000_000;

impl Element for Stamp {
    fn push(&mut self, cx: &mut Context<'_>, _: usize, batch: &mut Batch, _: &mut Output) {
        let at = cx.now() + STAMP_HOLD;
        self.held.extend(batch.drain(..).map(|p| (at, p)));
        cx.wake_at(at);
    }

    fn timer(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        let now = cx.now();
        while self.held.first().is_some_and(|&(at, _)| at <= now) {
            let mut p = self.held.remove(0).1;
            p.data_mut()[2..10].copy_from_slice(&now.to_be_bytes());
            out.push(0, p);
        }
        if let Some(&(at, _)) = self.held.first() {
            cx.wake_at(at);
        }
    }

    fn finish(&mut self, _: &mut Context<'_>, out: &mut Output) {
        for (_, mut p) in self.held.drain(..) {
            p.data_mut()[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
            out.push(0, p);
        }
    }
}

#[test]
fn under_packet_time_timers_run_as_the_replay_time_passes() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let frame = |i: u8| vec![i; 10];
    let inputs = vec![vec![
        (0, frame(0)),
        (500_000_000, frame(1)),
        (5_000_000_000, frame(2)),
    ]];
    let ports = replay_ports(&inputs, true, &sent);
    let spec = GraphSpec {
        nodes: vec![NodeSpec {
            name: "stamp".into(),
            class: crate::element::ClassInfo::bare("Stamp"),
            configured: Configured::new(Inputs::Fixed(1), 1, |_| Box::new(Stamp::default()))
                .with_timer(),
            outputs: vec![Target::Port(1)],
        }],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    };
    let opts = RunOptions {
        burst: 1,
        clock: Clock::Packet,
        ..RunOptions::default()
    };
    run(&spec, ports, &opts, |_| {}).unwrap();
    let got: Vec<(u8, u64)> = sent
        .lock()
        .unwrap()
        .iter()
        .map(|f| (f[0], u64::from_be_bytes(f[2..10].try_into().unwrap())))
        .collect();
    // Packets 0 and 1 were due at 1 s and 1.5 s: released when the replay's
    // time reached 5 s, not before (nor at the system clock's time); packet
    // 2, due at 6 s, only at the end.
    assert_eq!(got, [(0, 5_000_000_000), (1, 5_000_000_000), (2, u64::MAX)]);
}
