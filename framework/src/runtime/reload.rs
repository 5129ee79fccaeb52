//! Hot reload: a new checked graph swapped in between bursts on every
//! worker, keeping what can be kept.
//!
//! The caller (the CLI) has loaded and checked the new config and opened
//! the ports that are new or changed; [`Controller::reload`] then:
//!
//! 1. refuses what cannot change while running: any `[runtime]` option
//!    (workers, cores, burst, pool, max_frame, clock, on_panic), and a new
//!    port needing larger packet slots than the run's. The running graph is
//!    untouched.
//! 2. hands the new ports' queues out as [`start`](super::start) does
//!    (receive queue `q` to worker `q % workers`, transmit handle `w` to
//!    worker `w`);
//! 3. runs a job on every worker, between two bursts:
//!    - the worker builds its new replica, on its own thread as at the
//!      start of a run, so that the replica's allocations come from that
//!      thread's malloc arena and no two workers' replicas share a cache
//!      line (`tests_share` checks it after a reload too);
//!    - the elements of the old replica that have no successor (no element
//!      of the same name and class in the new graph) are finished, as at the
//!      end of a run: what they hold goes on through the old graph;
//!    - the packets waiting in the old replica's transmit batches are sent;
//!    - each element that keeps its name and class hands its state over
//!      (`old.take_state()` then `new.give_state(state, cx)`), and the
//!      runtime's counters for it (packets in and out, drops by reason)
//!      carry on, so that totals stay monotonic;
//!    - ports kept ([`PortPlan::Keep`]) keep their queues, re-indexed to the
//!      new port order; ports not kept are closed (transmit handles
//!      finished); the new ones' queues join the worker;
//!    - the new replica replaces the old one, which is dropped;
//! 4. replaces the report layout, so reports and handlers name the new
//!    graph, and answers with a [`ReloadSummary`].
//!
//! The report layout stays locked for the whole swap: reports and handler
//! requests made meanwhile wait for it.

use std::sync::{Arc, Mutex};

use super::control::{ControlError, Controller};
use super::report::{Layout, PortMeta};
use super::worker::{element_panicked, guarded, Worker, WorkerAccess};
use super::{split_port, Queue, RunOptions};
use crate::element::Context;
use crate::graph::{Carried, Graph, GraphSpec};
use crate::packet::Pool;
use crate::port::{OpenPort, RxQueue, TxQueue};

/// What becomes of one port of the new graph in a reload.
pub enum PortPlan {
    /// The port of that index in the running graph stays open as it is
    /// (same name and parameters): its queues stay with their workers.
    Keep(usize),
    /// A port opened for the new graph (new, or changed and reopened).
    Open(OpenPort),
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadSummary {
    /// Elements of the same name and class that handed their state over.
    pub kept_with_state: Vec<String>,
    /// Elements of the same name and class with no state to hand over
    /// (their counters carried on).
    pub kept: Vec<String>,
    /// New elements (or whose class changed).
    pub added: Vec<String>,
    /// Elements gone (or whose class changed).
    pub removed: Vec<String>,
    /// Ports that stayed open.
    pub ports_kept: Vec<String>,
    /// Ports whose parameters changed: closed and opened again.
    pub ports_reopened: Vec<String>,
    /// New ports.
    pub ports_opened: Vec<String>,
    /// Ports gone: flushed and closed.
    pub ports_closed: Vec<String>,
}

/// Why a reload was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config changes what a running graph cannot change.
    #[error(
        "{0}: this cannot change while running, restart needed (the running graph is untouched)"
    )]
    Restart(String),
    /// The request does not fit the run (a caller's mistake).
    #[error("{0}")]
    Invalid(String),
    /// The workers could not be reached (the run has ended, or one was stuck).
    #[error("{0}")]
    Control(#[from] ControlError),
}

/// A worker's part of a reload: its new queues.
struct Swap {
    /// (port, queue number, queue) in the new port order.
    rx: Vec<(usize, usize, Box<dyn RxQueue>)>,
    /// (port, handle) in the new port order.
    tx: Vec<(usize, Box<dyn TxQueue>)>,
}

/// What the swap job of every worker reads; each takes its own [`Swap`].
struct Plan {
    /// The new graph: each worker builds its replica of it.
    spec: GraphSpec,
    swaps: Vec<Mutex<Option<Swap>>>,
    /// New index of each old port (`None`: it closes).
    port_map: Vec<Option<usize>>,
    /// The new port names.
    names: Vec<String>,
}

impl Controller {
    /// Whether a config with options `opts` could be reloaded into this
    /// run: `Err` names the `[runtime]` options that differ (a caller checks
    /// this before opening the new config's ports).
    pub fn check_reload(&self, opts: &RunOptions) -> Result<(), ReloadError> {
        match runtime_changes(&self.shared.opts, opts) {
            Some(changed) => Err(ReloadError::Restart(changed)),
            None => Ok(()),
        }
    }

    /// Swaps `spec` in for the running graph, between bursts on every
    /// worker (see the [module documentation](self)). `ports` says, for
    /// each port of `spec` in order, whether it is kept or newly opened;
    /// running ports that no [`PortPlan::Keep`] names are closed. `opts`
    /// are the new config's options: if they differ from the run's, the
    /// reload is refused.
    pub fn reload(
        &self,
        spec: &GraphSpec,
        ports: Vec<PortPlan>,
        opts: &RunOptions,
    ) -> Result<ReloadSummary, ReloadError> {
        self.check_reload(opts)?;
        let shared = &self.shared;
        // A worker that has ended (its sources ended) would miss the swap.
        for (w, snap) in shared.snapshots.iter().enumerate() {
            if snap.lock().map_or(true, |s| s.finished) {
                return Err(ControlError::NotRunning(w).into());
            }
        }
        let mut layout = shared.layout.lock().unwrap_or_else(|e| e.into_inner());
        check_plan(spec, &ports, layout.ports.len(), shared)?;
        let workers = self.workers();
        let mut swaps: Vec<Swap> = (0..workers)
            .map(|_| Swap {
                rx: Vec::new(),
                tx: Vec::new(),
            })
            .collect();
        let old_names: Vec<String> = layout.ports.iter().map(|m| m.0.clone()).collect();
        let mut old_meta: Vec<Option<PortMeta>> = std::mem::take(&mut layout.ports)
            .into_iter()
            .map(Some)
            .collect();
        let mut summary = ReloadSummary::default();
        let mut port_map = vec![None; old_meta.len()];
        let mut new_meta = Vec::with_capacity(ports.len());
        for (p, plan) in ports.into_iter().enumerate() {
            let name = &spec.ports[p];
            match plan {
                PortPlan::Keep(old) => {
                    port_map[old] = Some(p);
                    // `check_plan` saw that each old port is kept once.
                    new_meta.extend(old_meta[old].take());
                    summary.ports_kept.push(name.clone());
                }
                PortPlan::Open(open) => {
                    new_meta.push(split_port(name, open, workers, |w, q| match q {
                        Queue::Rx(q, rx) => swaps[w].rx.push((p, q, rx)),
                        Queue::Tx(tx) => swaps[w].tx.push((p, tx)),
                    }));
                    match old_names.contains(name) {
                        true => summary.ports_reopened.push(name.clone()),
                        false => summary.ports_opened.push(name.clone()),
                    }
                }
            }
        }
        for (old, name) in old_names.iter().enumerate() {
            if port_map[old].is_none() && !summary.ports_reopened.contains(name) {
                summary.ports_closed.push(name.clone());
            }
        }
        let plan = Arc::new(Plan {
            spec: spec.clone(),
            swaps: swaps.into_iter().map(|s| Mutex::new(Some(s))).collect(),
            port_map,
            names: spec.ports.clone(),
        });
        let answers = self.on_each_worker(move |a| swap_in(a, &plan));
        // The jobs are queued (a worker that was slow takes its own later):
        // from now on the new graph is what the run is.
        let old_nodes = std::mem::replace(&mut *layout, Layout::new(spec, new_meta)).nodes;
        let answers = answers?;
        elements_summary(&mut summary, spec, old_nodes, &answers);
        Ok(summary)
    }
}

/// Lists in `summary` what became of each element, from the workers'
/// answers (`answers[w][i]`: element `i` of `spec` on worker `w`) and the
/// old graph's elements.
fn elements_summary(
    summary: &mut ReloadSummary,
    spec: &GraphSpec,
    old_nodes: Vec<(String, crate::element::ClassInfo)>,
    answers: &[Vec<Carried>],
) {
    for (i, node) in spec.nodes.iter().enumerate() {
        let of = |c| answers.iter().any(|a| a.get(i) == Some(&c));
        let list = if of(Carried::State) {
            &mut summary.kept_with_state
        } else if of(Carried::Counters) {
            &mut summary.kept
        } else {
            &mut summary.added
        };
        list.push(node.name.clone());
    }
    for (name, class) in old_nodes {
        let same = |n: &crate::graph::NodeSpec| n.name == name && n.class.name == class.name;
        if !spec.nodes.iter().any(same) {
            summary.removed.push(name);
        }
    }
}

/// The `[runtime]` options that differ between `old` and `new`, if any
/// (none of them can change while running).
fn runtime_changes(old: &RunOptions, new: &RunOptions) -> Option<String> {
    let mut changed = Vec::new();
    let mut check = |key: &str, a: String, b: String| {
        if a != b {
            changed.push(format!("{key} ({a} -> {b})"));
        }
    };
    check("workers", old.workers.to_string(), new.workers.to_string());
    check(
        "cores",
        format!("{:?}", old.cores),
        format!("{:?}", new.cores),
    );
    check("burst", old.burst.to_string(), new.burst.to_string());
    check("pool", old.pool.to_string(), new.pool.to_string());
    let frame = |m: Option<usize>| m.map_or("unset".into(), |m| m.to_string());
    check("max_frame", frame(old.max_frame), frame(new.max_frame));
    check(
        "clock",
        format!("{:?}", old.clock),
        format!("{:?}", new.clock),
    );
    let on_panic = |p| format!("{p:?}").to_lowercase();
    check("on_panic", on_panic(old.on_panic), on_panic(new.on_panic));
    (!changed.is_empty()).then(|| format!("[runtime] {}", changed.join(", ")))
}

/// Checks that `ports` fits `spec` and the run (`old_ports` running ports).
fn check_plan(
    spec: &GraphSpec,
    ports: &[PortPlan],
    old_ports: usize,
    shared: &super::control::Shared,
) -> Result<(), ReloadError> {
    if ports.len() != spec.ports.len() {
        return Err(ReloadError::Invalid(format!(
            "{} ports planned for a graph of {}",
            ports.len(),
            spec.ports.len()
        )));
    }
    let mut kept = vec![false; old_ports];
    for (p, plan) in ports.iter().enumerate() {
        let name = &spec.ports[p];
        match plan {
            PortPlan::Keep(old) => match kept.get_mut(*old) {
                Some(k) if !*k => *k = true,
                _ => {
                    return Err(ReloadError::Invalid(format!(
                        "port `{name}`: running port {old} cannot be kept (there are \
                         {old_ports}, each kept once)"
                    )))
                }
            },
            PortPlan::Open(open) => {
                if shared.opts.max_frame.is_none() && open.max_frame > shared.max_frame {
                    return Err(ReloadError::Restart(format!(
                        "port `{name}` carries frames of up to {} bytes, the run's packet \
                         slots hold {} ([runtime] max_frame raises them)",
                        open.max_frame, shared.max_frame
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The reload job of one worker: see the [module documentation](self).
/// Returns what became of each element of the new graph.
fn swap_in(a: &mut WorkerAccess<'_>, plan: &Plan) -> Vec<Carried> {
    let WorkerAccess {
        worker,
        graph: old,
        pool,
        now_ns,
    } = a;
    let w = worker.index;
    let taken = plan.swaps[w]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(Swap { rx, tx }) = taken else {
        return Vec::new();
    };
    let mut graph = Graph::new(&plan.spec, w);
    old.finish_leaving(&mut Context::new(pool, *now_ns, w), &graph);
    while let Some(p) = old.take_panic() {
        if let Err(e) = element_panicked(worker.on_panic, w, p) {
            worker.fault.get_or_insert(e);
        }
    }
    if let Err(e) = worker.flush(old, pool) {
        let e = worker.port_error(e);
        worker.fault.get_or_insert(e);
    }
    let carried = graph.take_over(old, &mut Context::new(pool, *now_ns, w));
    move_ports(worker, pool, plan, rx, tx);
    **old = graph;
    worker.publish(old, pool, false);
    carried
}

/// Re-indexes the worker's kept queues to the new port order, closes those
/// of ports not kept and adds the new ones.
fn move_ports(
    worker: &mut Worker,
    pool: &mut Pool,
    plan: &Plan,
    rx: Vec<(usize, usize, Box<dyn RxQueue>)>,
    tx: Vec<(usize, Box<dyn TxQueue>)>,
) {
    let map = &plan.port_map;
    for slots in [&mut worker.rx, &mut worker.merged] {
        slots.retain_mut(|s| match map[s.port] {
            Some(n) => {
                s.port = n;
                true
            }
            None => {
                pool.free_batch(&mut s.pending);
                false
            }
        });
    }
    let fresh = (0..plan.names.len()).map(|_| None).collect();
    let old_tx = std::mem::replace(&mut worker.tx, fresh);
    for (p, t) in old_tx.into_iter().enumerate() {
        let Some(mut t) = t else { continue };
        match map[p] {
            Some(n) => worker.tx[n] = Some(t),
            None => {
                if let Err(e) = guarded(&worker.names[p], worker.index, "finish", || t.finish()) {
                    log::warn!("closing port {}: {e}", worker.names[p]);
                }
            }
        }
    }
    worker.names = plan.names.clone();
    for (p, q, queue) in rx {
        worker.add_rx(p, q, queue);
    }
    // The merge breaks ties in port order.
    worker.merged.sort_by_key(|s| s.port);
    for (p, queue) in tx {
        worker.set_tx(p, queue);
    }
}
