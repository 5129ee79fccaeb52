//! The firewall allocates nothing per packet: a counting global allocator
//! watches 400,000 packets of opening, established, closing, denied and
//! expiring connections go through a graph with the firewall in it. The hash
//! seed is fixed so that the run, and so every count below, is reproducible.

use hpio_nf::config::Config;
use hpio_nf::element::{Context, Registry};
use hpio_nf::graph::Graph;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::PortRegistry;
use hpio_nf::testing::{allocations_here, CountingAlloc};
use testkit::frame::{fragments, tcp_flags, Frame, Ip};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Ports are only declared (never opened): the test feeds the graph itself.
const GRAPH: &str = r#"
connections = [
  "lan -> [0]fw[0] -> wan",
  "wan -> [1]fw[1] -> lan",
]
[ports.lan]
driver = "generator"
[ports.wan]
driver = "generator"
[elements.fw]
class = "Firewall"
max_flows = 200
hash_seed = 1
rules = [
  { from = "any", match = "any", state = "established", action = "allow" },
  { from = "inside", match = "tcp", state = "new", action = "allow" },
  { from = "outside", match = "tcp and dst port 22", action = "deny" },
  { from = "inside", match = "udp", state = "new", action = "allow" },
  { from = "any", match = "any", action = "deny" },
]
timeouts = { tcp_time_wait = "1s" }
frag_timeout = "1s"
frag_hold = 64
"#;

const IN: [u8; 4] = [10, 0, 1, 2];
const OUT: [u8; 4] = [10, 0, 1, 3];

fn tcp(inside: bool, port: u16, flags: &str) -> Vec<u8> {
    let (src, dst, sp, dp) = if inside {
        (IN, OUT, port, 80)
    } else {
        (OUT, IN, 80, port)
    };
    Frame::tcp(Ip::v4(src, dst), sp, dp, tcp_flags(flags))
        .macs([2; 6], [4; 6])
        .seq(1, 1, 1000)
        .payload(b"payload")
        .build()
}

/// The bursts of flow group `g`, in order, each with its input port (0:
/// inside, 1: outside): 8 connections open, talk and close (ending in
/// TIME_WAIT), and each draws a denied SSH attempt.
fn bursts(g: u16) -> Vec<(usize, Vec<Vec<u8>>)> {
    let ports: Vec<u16> = (0..8).map(|k| 10_000 + g * 8 + k).collect();
    let step = |inside: bool, flags: &str| -> Vec<Vec<u8>> {
        ports.iter().map(|&p| tcp(inside, p, flags)).collect()
    };
    let ssh = ports
        .iter()
        .map(|&p| {
            let mut f = tcp(false, p, "syn");
            f[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&22u16.to_be_bytes());
            f
        })
        .collect();
    vec![
        (0, step(true, "syn")),
        (1, step(false, "syn,ack")),
        (0, step(true, "ack")),
        (1, step(false, "ack")),
        (0, step(true, "fin,ack")),
        (1, step(false, "fin,ack")),
        (0, step(true, "ack")),
        (1, ssh),
    ]
}

#[test]
fn firewall_pushes_100k_packets_without_allocating() {
    let mut registry = Registry::builtin();
    hpio_nf_firewall::register(&mut registry);
    let cfg = Config::parse_str(GRAPH, "fw.toml", &registry, &PortRegistry::builtin(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut graph = Graph::new(&cfg.graph, 0);
    let mut pool = Pool::new(1024);
    // 64 flow groups: more flows than the table holds, so flows expire,
    // get reclaimed and are created again.
    let traffic: Vec<Vec<(usize, Vec<Vec<u8>>)>> = (0..64).map(bursts).collect();
    let mut batch = Batch::new();
    let mut now = 0u64;
    let mut run = |rounds: usize, graph: &mut Graph, pool: &mut Pool| {
        let mut pushed = 0u64;
        for _ in 0..rounds {
            for group in &traffic {
                now += 50_000_000; // 50 ms per group: 3.2 s per round
                for (port, frames) in group {
                    let port = *port;
                    for f in frames {
                        let mut p = pool.alloc().expect("a free slot");
                        p.set_frame(f);
                        batch.push(p);
                    }
                    pushed += batch.len() as u64;
                    let mut cx = Context::new(pool, now, 0);
                    graph.push_from_port(&mut cx, port, &mut batch);
                    for tx in 0..graph.ports() {
                        let mut sent = std::mem::take(graph.tx_batch(tx));
                        pool.free_batch(&mut sent);
                        *graph.tx_batch(tx) = sent;
                    }
                }
            }
        }
        pushed
    };
    // Warm up: the first use of every path may size its buffers once.
    run(2, &mut graph, &mut pool);
    let before = allocations_here();
    let pushed = run(100, &mut graph, &mut pool);
    let allocated = allocations_here() - before;
    assert!(pushed >= 100_000, "{pushed}");
    assert_eq!(allocated, 0, "{allocated} allocations for {pushed} packets");
    // The firewall did the work: flows came and went, SSH was denied.
    let fw = &graph.counters()[0];
    let custom = |name: &str| {
        fw.custom
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    };
    let connections = 102 * 64 * 8;
    assert_eq!(custom("flows created"), connections, "{fw:?}");
    assert!(custom("flows expired") >= connections - 200, "{fw:?}");
    assert_eq!(
        fw.drops,
        vec![("denied".to_string(), connections)],
        "one SSH attempt each"
    );
    assert_eq!(fw.packets_out, 7 * connections, "{fw:?}");
    assert_eq!(pool.available(), 1024, "every slot came back to the pool");
}

fn udp(inside: bool, port: u16, len: usize) -> Vec<u8> {
    let (src, dst, sp, dp) = if inside {
        (IN, OUT, port, 53)
    } else {
        (OUT, IN, 53, port)
    };
    Frame::udp(Ip::v4(src, dst), sp, dp)
        .macs([2; 6], [4; 6])
        .payload(&vec![7; len])
        .build()
}

/// Fragments take their own path (held, released, expired, denied) and it
/// allocates nothing either: datagrams of three fragments out and back, the
/// last fragment first, plus orphan fragments that wait and expire.
#[test]
fn fragments_are_held_released_and_expired_without_allocating() {
    let mut registry = Registry::builtin();
    hpio_nf_firewall::register(&mut registry);
    let cfg = Config::parse_str(GRAPH, "fw.toml", &registry, &PortRegistry::builtin(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut graph = Graph::new(&cfg.graph, 0);
    let mut pool = Pool::new(1024);
    // Per group: 4 datagrams out (fragments last, first, middle), their
    // answers, and 2 orphan fragments from outside.
    let groups: Vec<Vec<(usize, Vec<Vec<u8>>)>> = (0..32u16)
        .map(|g| {
            let mut out_b = Vec::new();
            let mut back_b = Vec::new();
            let mut orphans = Vec::new();
            for k in 0..4u16 {
                let port = 20_000 + g * 4 + k;
                let f = fragments(&udp(true, port, 3000), 1480, port as u32);
                out_b.extend([f[2].clone(), f[0].clone(), f[1].clone()]);
                back_b.extend(fragments(&udp(false, port, 2000), 1480, port as u32));
            }
            let o = fragments(&udp(false, 9, 3000), 1480, 40_000 + g as u32);
            orphans.extend([o[1].clone(), o[2].clone()]);
            vec![(0, out_b), (1, back_b), (1, orphans)]
        })
        .collect();
    let mut batch = Batch::new();
    let mut now = 0u64;
    let mut run = |rounds: usize, graph: &mut Graph, pool: &mut Pool| {
        let mut pushed = 0u64;
        for _ in 0..rounds {
            for group in &groups {
                now += 100_000_000;
                for (port, frames) in group {
                    for f in frames {
                        let mut p = pool.alloc().expect("a free slot");
                        p.set_frame(f);
                        batch.push(p);
                    }
                    pushed += batch.len() as u64;
                    let mut cx = Context::new(pool, now, 0);
                    graph.push_from_port(&mut cx, *port, &mut batch);
                    for tx in 0..graph.ports() {
                        let mut sent = std::mem::take(graph.tx_batch(tx));
                        pool.free_batch(&mut sent);
                        *graph.tx_batch(tx) = sent;
                    }
                }
            }
        }
        pushed
    };
    run(2, &mut graph, &mut pool);
    let before = allocations_here();
    let pushed = run(40, &mut graph, &mut pool);
    let allocated = allocations_here() - before;
    assert!(pushed >= 20_000, "{pushed}");
    assert_eq!(allocated, 0, "{allocated} allocations for {pushed} packets");
    let fw = &graph.counters()[0];
    let custom = |name: &str| {
        fw.custom
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| *v)
    };
    let datagrams = 42 * 32 * 4;
    // Only the last fragment of each comes before its first.
    assert_eq!(custom("fragments released"), datagrams, "{fw:?}");
    assert_eq!(
        custom("fragments passed"),
        2 * datagrams + datagrams,
        "{fw:?}"
    );
    assert!(custom("fragments expired") >= 2 * (42 * 32 - 10), "{fw:?}");
    // The last orphans are still held; the end of the run drops them.
    let held = custom("fragments held now");
    let mut cx = Context::new(&mut pool, now, 0);
    graph.finish(&mut cx);
    let fw = &graph.counters()[0];
    let at_end = fw
        .custom
        .iter()
        .find(|(k, _)| k == "fragments dropped at end")
        .map_or(0, |(_, v)| *v);
    assert_eq!(at_end, held);
    assert_eq!(pool.available(), 1024, "every slot came back to the pool");
}
