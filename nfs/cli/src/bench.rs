//! `hpio-nf bench`: Mpps on one pinned core for the standard in-memory graphs.
//!
//! Each scenario is an ordinary config (configs/bench/*.toml, built into the
//! binary) whose generator port gets a packet count; the figure is packets
//! through the graph divided by the worker loop's own run time.

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
    },
    Scenario {
        name: "classify",
        what: "generator -> Classify (IPv4 vs other) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/classify.toml"),
        file: "configs/bench/classify.toml",
        gens: GEN,
    },
    Scenario {
        name: "firewall",
        what: "generator -> Classify (20-rule firewall) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/firewall.toml"),
        file: "configs/bench/firewall.toml",
        gens: GEN,
    },
    Scenario {
        name: "rewrite",
        what: "generator -> Rewrite (Ethernet src/dst) -> Counter -> Discard",
        config: include_str!("../../../configs/bench/rewrite.toml"),
        file: "configs/bench/rewrite.toml",
        gens: GEN,
    },
    Scenario {
        name: "bridge",
        what: "2 generators (16 hosts each side) -> Bridge (2 ports, all learned) -> back out",
        config: include_str!("../../../configs/bench/bridge.toml"),
        file: "configs/bench/bridge.toml",
        gens: &["a", "b"],
    },
];

#[derive(serde::Serialize)]
struct Result {
    scenario: &'static str,
    graph: &'static str,
    packets: u64,
    seconds: f64,
    mpps: f64,
}

pub fn cmd_bench(
    registry: &hpio_nf::element::Registry,
    names: &[String],
    count: u64,
    runs: u32,
    core: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    for n in names {
        if !SCENARIOS.iter().any(|s| s.name == n) {
            let known: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
            anyhow::bail!("unknown scenario `{n}`; known: {}", known.join(", "));
        }
    }
    let chosen = SCENARIOS
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name));
    let mut results = Vec::new();
    if !json {
        println!(
            "one worker pinned to core {core}, 64-byte frames, {count} packets, best of {runs}"
        );
    }
    for s in chosen {
        let mut overrides = vec![format!("runtime.cores=[{core}]")];
        let n = s.gens.len() as u64;
        for (i, g) in s.gens.iter().enumerate() {
            let share = count / n + u64::from((i as u64) < count % n);
            overrides.push(format!("ports.{g}.count={share}"));
        }
        let config = Config::parse_str(
            s.config,
            s.file,
            registry,
            &crate::port_registry(),
            &overrides,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut best: Option<Result> = None;
        for _ in 0..runs.max(1) {
            let report =
                crate::run::run_config(&config, None, false, Arc::new(AtomicBool::new(false)))?;
            let packets: u64 = report.ports.iter().map(|p| p.rx.packets).sum();
            let seconds = report
                .workers
                .iter()
                .map(|w| w.run_secs)
                .fold(0.0, f64::max);
            if packets != count {
                anyhow::bail!("{}: generated {packets} packets, expected {count}", s.name);
            }
            let r = Result {
                scenario: s.name,
                graph: s.what,
                packets,
                seconds,
                mpps: packets as f64 / seconds / 1e6,
            };
            if best.as_ref().is_none_or(|b| r.mpps > b.mpps) {
                best = Some(r);
            }
        }
        let r = best.expect("at least one run");
        if !json {
            println!("{:<10} {:>8.2} Mpps  {}", r.scenario, r.mpps, r.graph);
        }
        results.push(r);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(ExitCode::SUCCESS)
}
