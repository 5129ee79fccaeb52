//! A checked config put to work: its ports opened and its runtime settings
//! as run options. `hpio-nf run`, its reloads and every test that runs a
//! config to its end go through these, so the two cannot drift apart.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{Config, RuntimeConfig};
use crate::port::{OpenPort, PortError};
use crate::runtime::{self, Report, RunError, RunOptions};

impl RuntimeConfig {
    /// The run options these settings give, stopped by `stop`; no progress
    /// callbacks and no trace (callers that want them set them).
    pub fn run_options(&self, stop: Arc<AtomicBool>) -> RunOptions {
        RunOptions {
            workers: self.workers,
            cores: self.cores.clone(),
            burst: self.burst,
            pool: self.pool,
            max_frame: self.max_frame,
            clock: self.clock,
            on_panic: self.on_panic,
            idle: self.idle,
            stats_interval: None,
            stop,
            trace: None,
        }
    }
}

/// Why [`Config::run_to_end`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RunToEndError {
    /// A port did not open.
    #[error("port `{port}`: {error}")]
    Open {
        /// The port's name in the config.
        port: String,
        /// What went wrong.
        error: PortError,
    },
    /// The run failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl Config {
    /// Opens every port of the config for its workers, in config order.
    pub fn open_ports(&self) -> Result<Vec<OpenPort>, RunToEndError> {
        let workers = self.runtime.workers;
        self.ports
            .iter()
            .map(|p| {
                p.spec
                    .open(&p.name, workers, p.rx_used, p.tx_used)
                    .map_err(|error| RunToEndError::Open {
                        port: p.name.clone(),
                        error,
                    })
            })
            .collect()
    }

    /// Opens the ports and runs the config until every source has ended
    /// (pcap inputs at end of file, generators at their `count`), with its
    /// workers unpinned: golden tests run many of these side by side. Live
    /// ports never end: stop such a run through [`runtime::start`] instead.
    pub fn run_to_end(&self) -> Result<Report, RunToEndError> {
        let ports = self.open_ports()?;
        let opts = RunOptions {
            cores: Vec::new(),
            ..self.runtime.run_options(Arc::new(AtomicBool::new(false)))
        };
        Ok(runtime::run(&self.graph, ports, &opts, |_| {})?)
    }
}
