//! `hpio-nf run`: a config's ports opened, its graph run until the sources
//! end or a signal arrives, and the counters printed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hpio_nf::config::Config;
use hpio_nf::element::Registry;
use hpio_nf::runtime::{self, RunOptions};

use crate::{control, load};

/// Arguments of `hpio-nf run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The config file (TOML).
    pub config: PathBuf,
    /// Override a config value: `ports.left.input=x.pcap`, `runtime.workers=2`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print a line of rates every SECONDS while running.
    #[arg(long, value_name = "SECONDS")]
    pub stats_interval: Option<f64>,
    /// Print the final counters (and live lines) as JSON, one object per line.
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus/OpenMetrics metrics at http://ADDR:PORT/metrics
    /// (ADDR 127.0.0.1 when only a port is given).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = crate::metrics::parse_addr)]
    pub metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub control: control::ControlArgs,
    #[command(flatten)]
    pub trust: crate::TrustArgs,
}

/// `hpio-nf run CONFIG`: opens the ports, runs the graph until its sources
/// end or a signal stops it, and prints the final counters.
pub(crate) fn cmd_run(elements: &Registry, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let Some(config) = load(elements, &args.config, &args.set) else {
        return Ok(ExitCode::from(2));
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    // The socket is claimed before the ports open: a second instance is
    // refused before it touches them.
    let endless = config.ports.iter().any(|p| p.rx_used && p.spec.endless());
    let listener = args.control.listener(&args.config, endless)?;
    // Bound before the ports open too: a busy address stops the run early.
    let metrics = args.metrics.map(crate::metrics::bind).transpose()?;
    let running = start_config(&config, args.stats_interval, stop)?;
    // Services that reach into the run (control socket, metrics) start here,
    // each with `running.controller()`.
    let interfaces = config
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.spec.interface().map(str::to_string)))
        .collect();
    let service = listener
        .map(|l| control::Service::start(l, running.controller(), interfaces))
        .transpose()?;
    let _metrics = metrics.map(|m| m.serve(running.controller())).transpose()?;
    crate::notify::ready(&format!("running {}", args.config.display()));
    let _status = crate::notify::StatusUpdates::start(running.controller());
    let report = running.wait(live_printer(args.json));
    crate::notify::stopping();
    if let Some(s) = service {
        s.stop();
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the config's ports and runs it to its end; `bench` uses it.
pub(crate) fn run_config(
    config: &Config,
    stats_interval: Option<f64>,
    json: bool,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<runtime::Report> {
    let running = start_config(config, stats_interval, stop)?;
    Ok(running.wait(live_printer(json))?)
}

/// Opens the config's ports and starts its workers.
pub(crate) fn start_config(
    config: &Config,
    stats_interval: Option<f64>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<runtime::Running> {
    let rt = &config.runtime;
    let mut ports = Vec::new();
    for p in &config.ports {
        let open = p.spec.open(&p.name, rt.workers, p.rx_used, p.tx_used)?;
        log::info!(
            "port {}: driver {} ({}), {} receive queue(s)",
            p.name,
            open.driver,
            p.spec.describe(),
            open.rx.len()
        );
        ports.push(open);
    }
    let opts = RunOptions {
        workers: rt.workers,
        cores: rt.cores.clone(),
        burst: rt.burst,
        pool: rt.pool,
        max_frame: rt.max_frame,
        clock: rt.clock,
        on_panic: rt.on_panic,
        stats_interval: stats_interval
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64),
        stop,
    };
    Ok(runtime::start(&config.graph, ports, &opts)?)
}

/// What prints the live lines: rates on stderr, or each report as a JSON
/// line on stdout.
fn live_printer(json: bool) -> impl FnMut(&runtime::Report) {
    let mut prev: Option<runtime::Report> = None;
    move |r| {
        if json {
            if let Ok(line) = serde_json::to_string(r) {
                println!("{line}");
            }
        } else {
            eprintln!("{}", r.live_line(prev.as_ref()));
        }
        prev = Some(r.clone());
    }
}
