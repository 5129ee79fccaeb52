//! `hpio-nf bench`: Mpps on pinned cores for the standard in-memory graphs.
//!
//! Each scenario is an ordinary config (configs/bench/*.toml, built into the
//! binary) whose generator port gets a packet count; the figure is packets
//! through the graph divided by the worker loop's own run time. With
//! `--workers N`, N workers run on cores `core..core+N` and each generator
//! port gets N queues (queue `w` goes to worker `w`), so every worker
//! generates and forwards its own share of the count; a worker's rate is its
//! share over its own run time, the total is all packets over the slowest
//! worker's run time.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hpio_nf::config::Config;

/// A benchmark graph.
struct Scenario {
    name: &'static str,
    what: &'static str,
    config: &'static str,
    file: &'static str,
    /// Its generator ports; the packet count is split over them.
    gens: &'static [&'static str],
    /// Overrides of its own, applied before the packet count's.
    extra: &'static [&'static str],
    /// A port every packet must leave by, or the run is refused (the
    /// figure would measure drops).
    sink: Option<&'static str>,
}

/// The generator port of the single-source scenarios.
const GEN: &[&str] = &["gen"];

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "discard",
        what: "generator -> Discard",
        config: include_str!("../../../configs/bench/discard.toml"),
        file: "configs/bench/discard.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "classify",
        what: "generator -> Classify (IPv4 vs other) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/classify.toml"),
        file: "configs/bench/classify.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "firewall",
        what: "generator -> Classify (20-rule firewall) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/firewall.toml"),
        file: "configs/bench/firewall.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "rewrite",
        what: "generator -> Rewrite (Ethernet src/dst) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/rewrite.toml"),
        file: "configs/bench/rewrite.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "nat44",
        what: "generator (65,536 UDP flows) -> Nat44 (source NAT, inside to outside) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/nat44.toml"),
        file: "configs/bench/nat44.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "lookup4",
        what: "generator (scattered destinations) -> IpLookup (900,000 IPv4 prefixes) -> Discard",
        config: include_str!("../../../configs/bench/lookup4.toml"),
        file: "configs/bench/lookup4.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "lookup4-cached",
        what: "lookup4 with destinations inside one /16: the same work, the table entries in the caches",
        config: include_str!("../../../configs/bench/lookup4.toml"),
        file: "configs/bench/lookup4.toml",
        gens: GEN,
        extra: LOOKUP4_CACHED,
        sink: None,
    },
    Scenario {
        name: "lookup6",
        what: "generator (scattered destinations) -> IpLookup (200,000 IPv6 prefixes) -> Discard",
        config: include_str!("../../../configs/bench/lookup6.toml"),
        file: "configs/bench/lookup6.toml",
        gens: GEN,
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "bridge",
        what: "2 generators (16 hosts each side) -> Bridge (2 ports, all learned) -> back out",
        config: include_str!("../../../configs/bench/bridge.toml"),
        file: "configs/bench/bridge.toml",
        gens: &["a", "b"],
        extra: &[],
        sink: None,
    },
    Scenario {
        name: "gateway",
        what: "generator (4,096 LAN endpoints, 65,536 flows) -> configs/gateway.toml, LAN -> WAN (Classify, IpLookup, DecIpTtl, Nat44, ArpQuerier, Policer) -> WAN port",
        config: include_str!("../../../configs/gateway.toml"),
        file: "configs/gateway.toml",
        gens: &["lan"],
        extra: GATEWAY,
        sink: Some("wan"),
    },
];

/// `hpio-nf bench lookup4-cached`: lookup4's table and graph, the
/// destinations scattered over the 65,536 addresses of 1.2.0.0/16 only, so
/// that the 256 `tbl24` entries they read stay in the caches. Against
/// lookup4 it shows what the table's misses cost.
const LOOKUP4_CACHED: &[&str] = &[
    "ports.gen.dst_ip=\"1.2.0.0\"",
    "ports.gen.dst_ip_count=65536",
    "ports.gen.dst_ip_step=40503",
];

/// `hpio-nf bench gateway`: the shipped gateway itself, its ports replaced
/// by generators. The LAN sends UDP from 64 hosts x 64 source ports (4,096
/// NAT mappings) to 16 servers behind the default route; the WAN sends
/// nothing and discards what reaches it. The WAN next hop is a static
/// neighbour (no ARP exchange in a benchmark) and the uplink's policer
/// marks red packets instead of dropping them, so that every packet
/// crosses the whole path at any rate (metering costs the same).
const GATEWAY: &[&str] = &[
    "ports.lan={ driver = \"generator\", size = 64, src_mac = \"02:00:00:00:01:02\", \
     dst_mac = \"02:00:00:00:01:01\", src_ip = \"192.168.1.2\", src_ip_count = 64, \
     src_port = 1024, src_port_count = 64, dst_ip = \"198.51.100.1\", dst_ip_count = 16, \
     dst_port = 53 }",
    "ports.wan={ driver = \"generator\", count = 0 }",
    "elements.arpq_wan.static=[{ ip = \"203.0.113.1\", mac = \"02:00:00:00:ff:01\" }]",
    "elements.pol.red=\"mark\"",
];

#[derive(serde::Serialize)]
struct Result {
    scenario: &'static str,
    graph: &'static str,
    packets: u64,
    seconds: f64,
    mpps: f64,
    /// Each worker's share, in worker order.
    workers: Vec<WorkerResult>,
}

/// What one worker did in a run.
#[derive(serde::Serialize)]
struct WorkerResult {
    worker: usize,
    core: Option<usize>,
    packets: u64,
    seconds: f64,
    mpps: f64,
    /// CPU seconds its thread used, and its Mpps per CPU second: the rate
    /// it reaches while it runs, whatever else shares its core.
    cpu_secs: f64,
    mpps_cpu: f64,
}

/// Packets a generator queue sends: its share of `count` over `queues`
/// (the generator's own split).
fn share(count: u64, q: usize, queues: usize) -> u64 {
    count / queues as u64 + u64::from((q as u64) < count % queues as u64)
}

/// How a scenario is run: packets, runs, the first core and the workers.
pub struct BenchOpts {
    pub count: u64,
    pub runs: u32,
    pub core: usize,
    pub workers: usize,
    pub json: bool,
}

/// The overrides that give scenario `s` its packet count and `workers`
/// pinned workers from core `core` on, with one generator queue each.
fn overrides(s: &Scenario, o: &BenchOpts) -> Vec<String> {
    let cores: Vec<String> = (o.core..o.core + o.workers)
        .map(|c| c.to_string())
        .collect();
    let mut v: Vec<String> = s.extra.iter().map(|x| x.to_string()).collect();
    v.push(format!("runtime.cores=[{}]", cores.join(",")));
    v.push(format!("runtime.workers={}", o.workers));
    let n = s.gens.len();
    for (i, g) in s.gens.iter().enumerate() {
        v.push(format!("ports.{g}.count={}", share(o.count, i, n)));
        v.push(format!("ports.{g}.queues={}", o.workers));
    }
    v
}

/// The result of one run of `s` from its report.
fn result(
    s: &Scenario,
    o: &BenchOpts,
    report: &hpio_nf::runtime::Report,
) -> anyhow::Result<Result> {
    let packets: u64 = report.ports.iter().map(|p| p.rx.packets).sum();
    if packets != o.count {
        anyhow::bail!(
            "{}: generated {packets} packets, expected {}",
            s.name,
            o.count
        );
    }
    if let Some(sink) = s.sink {
        let sent: u64 = report
            .ports
            .iter()
            .filter(|p| p.name == sink)
            .map(|p| p.tx.packets)
            .sum();
        if sent != o.count {
            anyhow::bail!(
                "{}: {sent} of {} packets left by port `{sink}` (the rest were dropped or \
                 went elsewhere: see `hpio-nf run {}`)",
                s.name,
                o.count,
                s.file
            );
        }
    }
    let n = s.gens.len();
    let workers: Vec<WorkerResult> = report
        .workers
        .iter()
        .map(|w| {
            // Worker w serves queue w of every generator port.
            let packets = (0..n)
                .map(|i| share(share(o.count, i, n), w.index, o.workers))
                .sum();
            WorkerResult {
                worker: w.index,
                core: w.core,
                packets,
                seconds: w.run_secs,
                mpps: packets as f64 / w.run_secs / 1e6,
                cpu_secs: w.cpu_secs,
                mpps_cpu: packets as f64 / w.cpu_secs / 1e6,
            }
        })
        .collect();
    let seconds = workers.iter().map(|w| w.seconds).fold(0.0, f64::max);
    Ok(Result {
        scenario: s.name,
        graph: s.what,
        packets,
        seconds,
        mpps: packets as f64 / seconds / 1e6,
        workers,
    })
}

pub fn cmd_bench(
    registry: &hpio_nf::element::Registry,
    names: &[String],
    o: &BenchOpts,
) -> anyhow::Result<ExitCode> {
    for n in names {
        if !SCENARIOS.iter().any(|s| s.name == n) {
            let known: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
            anyhow::bail!("unknown scenario `{n}`; known: {}", known.join(", "));
        }
    }
    if o.workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    let chosen = SCENARIOS
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name));
    let mut results = Vec::new();
    if !o.json {
        let who = match o.workers {
            1 => format!("one worker pinned to core {}", o.core),
            n => format!(
                "{n} workers pinned to cores {}..={}",
                o.core,
                o.core + n - 1
            ),
        };
        let (count, runs) = (o.count, o.runs);
        println!("{who}, 64-byte frames, {count} packets, best of {runs}");
    }
    for s in chosen {
        let config = Config::parse_str(
            s.config,
            s.file,
            registry,
            &crate::port_registry(),
            &overrides(s, o),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut best: Option<Result> = None;
        for _ in 0..o.runs.max(1) {
            let report =
                crate::run::run_config(&config, None, false, Arc::new(AtomicBool::new(false)))?;
            let r = result(s, o, &report)?;
            if best.as_ref().is_none_or(|b| r.mpps > b.mpps) {
                best = Some(r);
            }
        }
        let r = best.expect("at least one run");
        if !o.json {
            print!("{:<14} {:>8.2} Mpps", r.scenario, r.mpps);
            if r.workers.len() > 1 {
                let each: Vec<String> =
                    r.workers.iter().map(|w| format!("{:.2}", w.mpps)).collect();
                print!("  (per worker: {})", each.join(", "));
            }
            let cpu: Vec<String> = r
                .workers
                .iter()
                .map(|w| format!("{:.2}", w.mpps_cpu))
                .collect();
            print!("  [per CPU second: {}]", cpu.join(", "));
            println!("  {}", r.graph);
        }
        results.push(r);
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
}
