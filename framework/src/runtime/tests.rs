//! The runtime over in-memory queues: what happens after an element panics.

use std::sync::{Arc, Mutex};

use super::*;
use crate::element::{ClassInfo, Configured, Context, Element, Inputs, Output};
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
            class: ClassInfo {
                name: "Touchy",
                summary: "",
                description: "",
                params: &[],
                drop_reasons: &[],
                counters: &[],
                example: "",
                see_also: &[],
            },
            configured: Configured::cloning(Inputs::Fixed(1), 1, Touchy),
            outputs: vec![Target::Port(1)],
        }],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    }
}

/// Runs the touchy graph over `frames` with `on_panic`, one packet per burst.
fn run_touchy(frames: Vec<Vec<u8>>, on_panic: OnPanic) -> (Result<Report, RunError>, Vec<Vec<u8>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let ports = vec![
        OpenPort {
            rx: vec![Box::new(MemRx {
                frames: frames.into_iter(),
                stats: QueueStats::default(),
            })],
            tx: vec![],
            driver: "mem".into(),
            driver_stats: None,
            max_frame: crate::packet::DEFAULT_MAX_FRAME,
        },
        OpenPort {
            rx: vec![],
            tx: vec![Box::new(MemTx(sent.clone()))],
            driver: "mem".into(),
            driver_stats: None,
            max_frame: crate::packet::DEFAULT_MAX_FRAME,
        },
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
