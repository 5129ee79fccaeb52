//! Taps and traces through the Controller on a running graph of two workers.

use std::time::Duration;

use super::*;
use crate::config::parse_edge;
use crate::element::{ClassInfo, Configured, Context, Element, Inputs, Output};
use crate::graph::{Hop, NodeSpec, Target};
use crate::packet::{Batch, Pool};
use crate::port::{QueueStats, Recv, RxQueue, TxQueue};

/// Endless: 4 frames per call, the first byte its worker, then a counter.
struct Endless(u8, u32);

impl RxQueue for Endless {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, _: usize) -> Result<Recv, PortError> {
        for _ in 0..4 {
            let Some(mut p) = pool.alloc() else { break };
            self.1 += 1;
            let mut f = [0u8; 60];
            f[0] = self.0;
            f[1..5].copy_from_slice(&self.1.to_be_bytes());
            p.set_frame(&f);
            batch.push(p);
        }
        std::thread::sleep(Duration::from_micros(200));
        Ok(Recv::Got(batch.len()))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

struct Sink;

impl TxQueue for Sink {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        pool.free_batch(batch);
        Ok(())
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }
}

#[derive(Clone)]
struct Fwd;

impl Element for Fwd {
    fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
        out.push_all(0, batch);
    }
}

fn running() -> Running {
    let spec = GraphSpec {
        nodes: vec![NodeSpec {
            name: "fwd".into(),
            class: ClassInfo::bare("Fwd"),
            configured: Configured::cloning(Inputs::Fixed(1), 1, Fwd),
            outputs: vec![Target::Port(1)],
        }],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    };
    let port = |rx: Vec<Box<dyn RxQueue>>, tx: Vec<Box<dyn TxQueue>>| OpenPort {
        rx,
        tx,
        driver: "mem".into(),
        driver_stats: None,
        max_frame: crate::packet::DEFAULT_MAX_FRAME,
    };
    let ins: Vec<Box<dyn RxQueue>> = (0..2).map(|w| Box::new(Endless(w, 0)) as _).collect();
    let outs: Vec<Box<dyn TxQueue>> = (0..2).map(|_| Box::new(Sink) as _).collect();
    let opts = RunOptions {
        workers: 2,
        pool: 256,
        ..RunOptions::default()
    };
    start(&spec, vec![port(ins, vec![]), port(vec![], outs)], &opts).expect("starts")
}

/// Whether any worker's replica still watches (a tap or a trace).
fn watched(c: &Controller) -> bool {
    c.on_each_worker(|a| a.graph.is_watched())
        .unwrap()
        .into_iter()
        .any(|w| w)
}

#[test]
fn a_tap_on_every_worker_ends_at_its_count_and_goes_with_its_handle() {
    let running = running();
    let c = running.controller();
    let mut tap = c
        .tap(&parse_edge("fwd[0]").unwrap(), None, Some(10), 64)
        .unwrap();
    assert_eq!(tap.edge(), "fwd[0] -> out");
    let mut copies = Vec::new();
    loop {
        match tap.next(Duration::from_secs(5)) {
            TapNext::Copy(copy) => copies.push(copy),
            TapNext::Idle => panic!("no copy within 5 s"),
            TapNext::Done => break,
        }
    }
    assert_eq!(copies.len(), 10);
    assert!(copies.iter().all(|c| c.data.len() == 60 && c.data[0] < 2));
    drop(tap);
    assert!(!watched(&c), "removed from every worker");
    // A trace: each packet's hops, from whichever worker.
    let mut trace = c.trace(3, None).unwrap();
    let records = trace.collect(Some(Duration::from_secs(5)));
    assert_eq!(
        records.iter().map(|r| r.packet).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for r in &records {
        assert_eq!(r.port, "in");
        assert!(
            matches!(&r.hops[..], [Hop::Element { element, .. }, Hop::Sent { port }]
            if element == "fwd" && port == "out")
        );
    }
    // Bad edges are refused with what is wrong; nothing stays installed.
    let e = c
        .tap(&parse_edge("fwd[1]").unwrap(), None, None, 8)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "element `fwd` has no output 1 (it has 1: 0..=0)"
    );
    drop(trace);
    assert!(!watched(&c));
    c.stop();
    running.wait(|_| {}).unwrap();
    let e = c
        .tap(&parse_edge("in").unwrap(), None, None, 8)
        .err()
        .unwrap();
    assert!(matches!(e, ControlError::NotRunning(_)), "{e}");
}
