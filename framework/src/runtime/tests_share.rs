//! Two workers share no cache line they write: each worker's replica of
//! the graph, its queues and their bookkeeping sit on lines of their own
//! (a line written by two cores bounces between them on every burst). The
//! replicas are built on the workers' own threads (`spawn_workers`, and the
//! reload's job), so their allocations come from separate malloc arenas:
//! checked at the start of a run and after a reload.

use super::*;
use crate::config::Config;

const LINE: usize = 64;

/// The cache lines of `ranges`.
fn lines(ranges: &[(usize, usize)]) -> std::collections::BTreeSet<usize> {
    ranges
        .iter()
        .filter(|(_, len)| *len > 0)
        .flat_map(|&(a, len)| a / LINE..=(a + len - 1) / LINE)
        .collect()
}

/// The ranges worker `a` writes per burst: its graph's, its receive
/// queues', the table of its receive slots and its grace-period slot.
fn hot(a: &mut super::worker::WorkerAccess<'_>) -> Vec<(usize, usize)> {
    let mut r = a.graph.hot_ranges();
    // Its slot in the grace-period domain, stored every pass.
    r.push(a.worker.grace.hot_range());
    let rx = &a.worker.rx;
    r.push((rx.as_ptr() as usize, std::mem::size_of_val(&rx[..])));
    for slot in rx {
        let q: &dyn crate::port::RxQueue = &*slot.rx;
        r.push((
            q as *const _ as *const u8 as usize,
            std::mem::size_of_val(q),
        ));
    }
    r
}

fn check(config: &str, gens: &[&str]) {
    let text = std::fs::read_to_string(testkit::workspace_root().join(config)).unwrap();
    let mut o = vec!["runtime.workers=2".to_string()];
    o.extend(gens.iter().map(|g| format!("ports.{g}.queues=2")));
    let c = Config::parse_str(
        &text,
        config,
        &crate::element::Registry::builtin(),
        &crate::port::PortRegistry::builtin(),
        &o,
    )
    .unwrap_or_else(|e| panic!("{config}: {e}"));
    let ports = c.open_ports().unwrap();
    let opts = RunOptions {
        workers: 2,
        pool: 256,
        ..RunOptions::default()
    };
    let running = start(&c.graph, ports, &opts).unwrap();
    let ctl = running.controller();
    let at_start = ctl.on_each_worker(hot).unwrap();
    let keep = (0..c.ports.len()).map(PortPlan::Keep).collect();
    ctl.reload(&c.graph, keep, &opts).unwrap();
    let reloaded = ctl.on_each_worker(hot).unwrap();
    ctl.stop();
    running.wait(|_| {}).unwrap();
    assert_apart(config, "at the start", &at_start);
    assert_apart(config, "after a reload", &reloaded);
}

/// Asserts that the ranges `hot[0]` and `hot[1]` of the two workers share no line.
fn assert_apart(config: &str, when: &str, hot: &[Vec<(usize, usize)>]) {
    let (a, b) = (lines(&hot[0]), lines(&hot[1]));
    let shared: Vec<_> = a.intersection(&b).collect();
    assert!(
        shared.is_empty(),
        "{config}, {when}: workers 0 and 1 both write lines {shared:x?}\n0: {:x?}\n1: {:x?}",
        hot[0],
        hot[1]
    );
}

#[test]
fn two_workers_write_no_common_cache_line() {
    // (The bridge scenario's Bridge class lives in the nfs crate.) Heap
    // layouts vary from run to run: a few runs of each. With the replicas
    // built on the starting thread, one run in two had a shared line (a
    // worker's output batches next to the other's drop counts). With a
    // reload's replicas built on the controlling thread, the first run
    // failed after the reload (discard: a line both replicas wrote).
    for _ in 0..3 {
        for s in ["firewall", "rewrite", "classify", "discard"] {
            check(&format!("configs/bench/{s}.toml"), &["gen"]);
        }
    }
}
