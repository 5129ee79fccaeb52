//! No heap allocation per packet in steady state, proved with a counting
//! global allocator while packets flow through a graph.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hpio_nf::config::Config;
use hpio_nf::element::{Context, Registry};
use hpio_nf::graph::Graph;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{PortRegistry, Recv};
use hpio_nf::runtime::{self, RunOptions};
use hpio_nf::testing::{allocations_here, allocations_total, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Tests in this file measure a process-wide counter: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A graph that exercises parsing, classification, rewriting with checksum
/// updates, copying (Tee), counting, source NAT, policing and dropping with
/// reasons.
const GRAPH: &str = r#"
connections = [
  "gen -> cls",
  "cls[0] -> tee",
  "tee[0] -> cnt -> [0]snat[0] -> pol -> discard",
  "snat[1] -> discard",
  "tee[1] -> nat -> swap -> discard",
  "cls[1] -> discard",
]
[runtime]
burst = 32
pool = 1024
[ports.gen]
driver = "generator"
proto = "tcp"
src_ip_count = 300
dst_port_count = 7
[elements.cls]
class = "Classify"
rules = ["tcp and dst port 9 -> 1", "ip4 -> 0"]
default = 1
[elements.tee]
class = "Tee"
[elements.cnt]
class = "Counter"
[elements.nat]
class = "Rewrite"
ip_src = "192.0.2.1"
src_port = 40000
dec_ttl = true
[elements.snat]
class = "Nat44"
external = ["192.0.2.1"]
max_mappings = 4096
hash_seed = 1
[elements.pol]
class = "Policer"
mode = "trtcm"
classes = [{ cir = "1M", cbs = 3000, pir = "2M", pbs = 6000 }]
[elements.swap]
class = "EtherMirror"
ip = true
"#;

/// A router cutting packets into fragments: 1400-byte first fragments
/// (MF set, DF clear) through a DecIpTtl of MTU 576, three pieces each.
const FRAGMENTING: &str = r#"
connections = ["gen -> ttl", "ttl[0] -> discard", "ttl[1] -> discard", "ttl[2] -> discard"]
[ports.gen]
driver = "generator"
proto = "udp"
size = 1400
fragment = "first"
[elements.ttl]
class = "DecIpTtl"
mtu = 576
"#;

fn config(count: Option<u64>) -> Config {
    config_of(GRAPH, count)
}

fn config_of(graph: &str, count: Option<u64>) -> Config {
    let overrides: Vec<String> = count
        .map(|c| format!("ports.gen.count={c}"))
        .into_iter()
        .collect();
    Config::parse_str(
        graph,
        "no_alloc.toml",
        &Registry::builtin(),
        &PortRegistry::builtin(),
        &overrides,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Pushes 100,000 packets of `cfg`'s generator through its graph after a
/// warm-up, asserts that this thread allocated nothing meanwhile and that
/// every slot came back, and returns the graph and how many were pushed.
fn push_100k(cfg: &Config) -> (Graph, u64) {
    let mut open = cfg.ports[0].spec.open("gen", 1, true, false).unwrap();
    let mut rx = open.rx.remove(0);
    let mut graph = Graph::new(&cfg.graph, 0);
    let mut pool = Pool::new(1024);
    let mut batch = Batch::new();
    let mut run = |packets: u64, pool: &mut Pool, graph: &mut Graph| {
        let mut done = 0;
        while done < packets {
            let Recv::Got(n) = rx.recv(pool, &mut batch, 32).unwrap() else {
                panic!("endless generator ended")
            };
            done += n as u64;
            let mut cx = Context::new(pool, done, 0);
            graph.push_from_port(&mut cx, 0, &mut batch);
        }
        done
    };
    // Warm up: first use of every code path may size its buffers once.
    run(10_000, &mut pool, &mut graph);
    // The graph runs on this thread: count this thread's allocations only.
    let before = allocations_here();
    let pushed = run(100_000, &mut pool, &mut graph);
    let allocated = allocations_here() - before;
    assert!(pushed >= 100_000);
    assert_eq!(allocated, 0, "{allocated} allocations for {pushed} packets");
    assert_eq!(pool.available(), 1024, "every slot came back to the pool");
    (graph, pushed)
}

#[test]
fn graph_pushes_100k_packets_without_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (graph, pushed) = push_100k(&config(None));
    // The graph really did the work: counters prove every stage saw packets.
    let counters = graph.counters();
    let total_in: u64 = counters.iter().map(|c| c.packets_in).sum();
    assert!(
        total_in > 3 * pushed,
        "every packet crossed several elements"
    );
}

#[test]
fn fragmenting_allocates_nothing_but_pool_slots() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (graph, pushed) = push_100k(&config_of(FRAGMENTING, None));
    let counters = graph.counters();
    let ttl = counters
        .iter()
        .find(|c| c.custom.iter().any(|(n, _)| n == "fragments"))
        .unwrap();
    let fragments = ttl.custom.iter().find(|(n, _)| n == "fragments").unwrap().1;
    assert!(ttl.packets_in > pushed);
    assert_eq!(fragments, 3 * ttl.packets_in, "every packet cut in three");
    assert_eq!(ttl.packets_out, fragments);
    assert!(counters.iter().all(|c| c.dropped() == 0));
}

#[test]
fn runtime_allocations_do_not_grow_with_packets() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let measure = |count: u64| {
        let cfg = config(Some(count));
        let ports = vec![cfg.ports[0].spec.open("gen", 1, true, false).unwrap()];
        let opts = RunOptions {
            stop: Arc::new(AtomicBool::new(false)),
            ..RunOptions::default()
        };
        let before = allocations_total();
        let report = runtime::run(&cfg.graph, ports, &opts, |_| {}).unwrap();
        let allocated = allocations_total() - before;
        assert_eq!(report.ports[0].rx.packets, count);
        allocated
    };
    let small = measure(100_000);
    let large = measure(1_000_000);
    // 900,000 more packets; allowance for the few-per-second counter snapshots.
    assert!(
        large < small + 5_000,
        "allocations grew with packets: {small} for 100k, {large} for 1M"
    );
}
