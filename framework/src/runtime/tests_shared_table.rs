//! IpLookup with two workers: one route table that a write handler changes
//! once for both, and that a hot reload carries over.

use super::*;
use crate::config::Config;
use crate::element::HandlerCx;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
connections = ["gen -> rt", "rt[0] -> discard", "rt[1] -> discard"]

[runtime]
workers = 2

[ports.gen]
driver = "generator"
size = 64
count = 4000000000
queues = 2
dst_ip = "10.0.0.0"
dst_ip_count = 65536

[elements.rt]
class = "IpLookup"
outputs = 2
routes = ["0.0.0.0/0 -> 1", "2001:db8::/32 -> 1"]

[elements.discard]
class = "Discard"
"#;

/// What element `rt`'s read handler `name` answers on each worker's own
/// replica (not through the controller, which asks worker 0 alone).
fn on_each(ctl: &Controller, name: &'static str) -> Vec<serde_json::Value> {
    ctl.on_each_worker(move |a| {
        let i = a.graph.names().position(|n| n == "rt").unwrap();
        let cx = HandlerCx::new(a.now_ns, a.worker.index());
        a.graph.element(i).read(name, &cx).unwrap()
    })
    .unwrap()
}

/// Waits until every worker's replica answers `want` to `size`'s field
/// `field` (IPv6 changes reach worker 1 at its next burst).
fn wait_size(ctl: &Controller, field: &str, want: u64) {
    let t = Instant::now();
    loop {
        let got: Vec<_> = on_each(ctl, "size")
            .iter()
            .map(|s| s[field].as_u64())
            .collect();
        if got.iter().all(|&n| n == Some(want)) {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{field}: {got:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_route_written_once_reaches_both_workers_and_survives_a_reload() {
    let parse = || {
        Config::parse_str(
            CONFIG,
            "shared-table.toml",
            &crate::element::Registry::builtin(),
            &crate::port::PortRegistry::builtin(),
            &[],
        )
        .unwrap()
    };
    let c = parse();
    let opts = RunOptions {
        workers: 2,
        pool: 256,
        ..RunOptions::default()
    };
    let running = start(&c.graph, c.open_ports().unwrap(), &opts).unwrap();
    let ctl = running.controller();
    // One answer (a Same handler on two replicas would answer twice, and a
    // second insertion of the same route would answer the same anyway).
    let a = ctl
        .write("rt", "add", "198.51.100.0/24 -> 0 via 192.0.2.7")
        .unwrap();
    assert_eq!(a, "198.51.100.0/24 -> 0 via 192.0.2.7");
    ctl.write("rt", "add", "fd00:1::/64 -> 0").unwrap();
    ctl.write("rt", "remove", "0.0.0.0/0").unwrap();
    // A second removal fails: the first took the route from the one table.
    let e = ctl.write("rt", "remove", "0.0.0.0/0").unwrap_err();
    assert!(e.to_string().contains("no route"), "{e}");
    wait_size(&ctl, "ipv6", 2);
    let want = serde_json::json!([
        "198.51.100.0/24 -> 0 via 192.0.2.7",
        "2001:db8::/32 -> 1",
        "fd00:1::/64 -> 0"
    ]);
    for (w, routes) in on_each(&ctl, "routes").into_iter().enumerate() {
        assert_eq!(routes, want, "worker {w}");
    }
    assert_eq!(ctl.read("rt", "routes").unwrap(), want);

    // The reload (of the config parsed again, as `hpio-nf` does) builds
    // new replicas around a new shared table and replays the run-time
    // changes into it once, and into each worker's IPv6 table.
    let c2 = parse();
    let keep = (0..c2.ports.len()).map(PortPlan::Keep).collect();
    ctl.reload(&c2.graph, keep, &opts).unwrap();
    for (w, routes) in on_each(&ctl, "routes").into_iter().enumerate() {
        assert_eq!(routes, want, "worker {w} after the reload");
    }
    let size = on_each(&ctl, "size");
    assert_eq!(size[0], size[1]);
    assert_eq!(size[0]["next_hops"], 3, "{size:?}");
    ctl.stop();
    let report = running.wait(|_| {}).unwrap();
    let rt = report.elements.iter().find(|e| e.name == "rt").unwrap();
    assert!(
        rt.counters.packets_in > 0,
        "the workers routed traffic meanwhile"
    );
}
