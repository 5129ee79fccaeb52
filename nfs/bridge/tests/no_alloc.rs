//! No heap allocation per packet in the bridge, proved with a counting
//! global allocator while frames that learn, refresh, move, expire, fill
//! the table, forward, flood (with copies) and get filtered flow through it.

use hpio_nf::config::Config;
use hpio_nf::element::{Context, Registry};
use hpio_nf::graph::Graph;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{PortRegistry, Recv};
use hpio_nf::testing::{allocations_here, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Three bridge ports. Port 0's 8 hosts (..:00:00-07) talk to 16 addresses
/// of which port 1 holds 8: half forwarded, half flooded (one copy each).
/// Port 1's hosts broadcast. Port 2's hosts (..:00:04-0b) overlap port 0's,
/// so addresses keep moving, and talk among themselves: filtered when the
/// destination is on port 2. 20 hosts for 16 entries: the table fills up.
/// The test's clock runs 1 us per frame and now and then jumps 5 ms, past
/// the 2 ms aging: entries expire, are swept and re-learned.
const GRAPH: &str = r#"
connections = [
  "g0 -> [0]br", "br[0] -> g0",
  "g1 -> [1]br", "br[1] -> g1",
  "g2 -> [2]br", "br[2] -> g2",
]
[ports.g0]
driver = "generator"
src_mac = "02:00:00:00:00:00"
src_mac_count = 8
dst_mac = "02:00:00:00:01:00"
dst_mac_count = 16
[ports.g1]
driver = "generator"
src_mac = "02:00:00:00:01:00"
src_mac_count = 8
dst_mac = "ff:ff:ff:ff:ff:ff"
[ports.g2]
driver = "generator"
src_mac = "02:00:00:00:00:04"
src_mac_count = 8
dst_mac = "02:00:00:00:00:04"
dst_mac_count = 8
[elements.br]
class = "Bridge"
ports = 3
max_entries = 16
aging = "2ms"
"#;

#[test]
fn bridge_pushes_100k_packets_without_allocating() {
    let mut registry = Registry::builtin();
    hpio_nf_bridge::register(&mut registry);
    let cfg = Config::parse_str(
        GRAPH,
        "no_alloc.toml",
        &registry,
        &PortRegistry::builtin(),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rx: Vec<_> = cfg
        .ports
        .iter()
        .map(|p| p.spec.open(&p.name, 1, true, false).unwrap().rx.remove(0))
        .collect();
    let mut graph = Graph::new(&cfg.graph, 0);
    let mut pool = Pool::new(1024);
    let mut batch = Batch::new();
    let mut now = 0u64;
    let mut run = |packets: u64, pool: &mut Pool, graph: &mut Graph| {
        let mut done = 0;
        let mut rounds = 0u64;
        while done < packets {
            rounds += 1;
            if rounds % 64 == 0 {
                // Every host silent for 5 ms: everything expires.
                now += 5_000_000;
            }
            for (port, q) in rx.iter_mut().enumerate() {
                let Recv::Got(n) = q.recv(pool, &mut batch, 32).unwrap() else {
                    panic!("endless generator ended")
                };
                done += n as u64;
                // 1 us per frame: entries expire and sweeps run.
                now += 1000 * n as u64;
                let mut cx = Context::new(pool, now, 0);
                graph.push_from_port(&mut cx, port, &mut batch);
            }
            for port in 0..graph.ports() {
                pool.free_batch(graph.tx_batch(port));
            }
        }
        done
    };
    run(10_000, &mut pool, &mut graph);
    let before = allocations_here();
    let pushed = run(100_000, &mut pool, &mut graph);
    let allocated = allocations_here() - before;
    assert!(pushed >= 100_000);
    assert_eq!(allocated, 0, "{allocated} allocations for {pushed} packets");
    assert_eq!(pool.available(), 1024, "every slot came back to the pool");
    // Every path was taken.
    let c = &graph.counters()[0];
    let get = |k: &str| c.custom.iter().find(|(n, _)| n == k).unwrap().1;
    for k in [
        "learned",
        "moves",
        "aged",
        "table-full",
        "port0.forwarded",
        "port0.flooded",
        "port1.flooded",
        "port2.filtered",
    ] {
        assert!(get(k) > 0, "{k} never counted: {:?}", c.custom);
    }
    assert!(get("entries") <= 16);
}
