//! What `run` and a reload share: a config's ports opened, its run options.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use hpio_nf::config::{Config, PortConfig};
use hpio_nf::port::OpenPort;
use hpio_nf::runtime::RunOptions;

/// Opens port `p` for `workers` workers, and logs it.
pub(crate) fn open_port(p: &PortConfig, workers: usize) -> anyhow::Result<OpenPort> {
    let open = p.spec.open(&p.name, workers, p.rx_used, p.tx_used)?;
    log::info!(
        "port {}: driver {} ({}), {} receive queue(s)",
        p.name,
        open.driver,
        p.spec.describe(),
        open.rx.len()
    );
    Ok(open)
}

/// The run options of `config`, with live lines every `stats_interval`
/// seconds.
pub(crate) fn run_options(
    config: &Config,
    stats_interval: Option<f64>,
    stop: Arc<AtomicBool>,
) -> RunOptions {
    RunOptions {
        stats_interval: stats_interval
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64),
        ..config.runtime.run_options(stop)
    }
}
