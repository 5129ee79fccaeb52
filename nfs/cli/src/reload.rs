//! Hot reload of a running config: SIGHUP (and the control socket's
//! `POST /reload`) re-read the config, check it, open the ports that are new
//! or changed, and swap the new graph in between bursts
//! ([`Controller::reload`]). A config with errors is reported with file and
//! line, and the running graph is left untouched.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hpio_nf::config::{Config, ConfigErrors, PortConfig};
use hpio_nf::element::Registry;
use hpio_nf::plugin::Plugin;
use hpio_nf::runtime::{Controller, PortPlan, ReloadError, ReloadSummary};

use crate::port_registry;
use crate::setup::{open_port, run_options};

/// Why a reload did not happen; the running graph is untouched (but for
/// [`ReloadFailure::Run`] after a worker timed out, see its text).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadFailure {
    /// The new config does not check (each error with file and line).
    #[error("{0}")]
    Config(ConfigErrors),
    /// A new or changed port could not be opened.
    #[error("{0}")]
    Port(String),
    /// The runtime refused it (a `[runtime]` change) or could not reach a worker.
    #[error("{0}")]
    Run(#[from] ReloadError),
}

/// What a reload needs, shared by the SIGHUP thread and the control socket.
#[derive(Clone)]
pub(crate) struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    controller: Controller,
    elements: Registry,
    /// The `--set` overrides of the command line, applied on every reload.
    set: Vec<String>,
    current: Mutex<Current>,
}

/// The running config and its file.
struct Current {
    path: PathBuf,
    config: Config,
    /// Plugins of configs replaced: kept loaded for the life of the process
    /// (a replica of a class of theirs may still be dropping on a worker).
    retired: Vec<Plugin>,
}

impl Reloader {
    /// A reloader for the run `controller` of `config`, read from `path`
    /// with the overrides `set`.
    pub(crate) fn new(
        controller: Controller,
        elements: &Registry,
        path: &Path,
        set: &[String],
        config: Config,
    ) -> Reloader {
        Reloader {
            inner: Arc::new(Inner {
                controller,
                elements: elements.clone(),
                set: set.to_vec(),
                current: Mutex::new(Current {
                    path: path.to_path_buf(),
                    config,
                    retired: Vec::new(),
                }),
            }),
        }
    }

    /// The interface of each port of the running config (`None`: pcap,
    /// generator), for the control socket's link state.
    pub(crate) fn interfaces(&self) -> Vec<(String, Option<String>)> {
        let current = self.lock();
        let ports = current.config.ports.iter();
        ports
            .map(|p| (p.name.clone(), p.spec.interface().map(str::to_string)))
            .collect()
    }

    /// The config file a reload without a path reads.
    pub(crate) fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.inner.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the config at `path` (the running one's file when `None`),
    /// checks it and swaps it in. Reloads run one at a time.
    pub(crate) fn reload(&self, path: Option<&Path>) -> Result<ReloadSummary, ReloadFailure> {
        let mut current = self.lock();
        let path = path.map_or_else(|| current.path.clone(), Path::to_path_buf);
        let inner = &self.inner;
        let new = Config::load(&path, &inner.elements, &port_registry(), &inner.set)
            .map_err(ReloadFailure::Config)?;
        let opts = run_options(&new, None, Arc::new(AtomicBool::new(false)));
        inner.controller.check_reload(&opts)?;
        let old_ports = &current.config.ports;
        let mut plan = Vec::with_capacity(new.ports.len());
        for p in &new.ports {
            match old_ports.iter().position(|o| same_port(o, p)) {
                Some(i) => plan.push(PortPlan::Keep(i)),
                None => {
                    let open = open_port(p, new.runtime.workers)
                        .map_err(|e| ReloadFailure::Port(format!("{e:#}")))?;
                    plan.push(PortPlan::Open(open));
                }
            }
        }
        let summary = inner.controller.reload(&new.graph, plan, &opts)?;
        let old = std::mem::replace(&mut current.config, new);
        current.retired.extend(old.plugins);
        current.path = path;
        Ok(summary)
    }
}

/// Whether the running port `old` can stay open for `new`: same name,
/// driver and parameters, and the graph uses the same sides of it.
fn same_port(old: &PortConfig, new: &PortConfig) -> bool {
    old.name == new.name
        && old.driver == new.driver
        && (old.rx_used, old.tx_used) == (new.rx_used, new.tx_used)
        && format!("{:?}", old.spec) == format!("{:?}", new.spec)
}

/// Reloads from `path` (the running config's file when `None`), logs the
/// outcome and returns it: what SIGHUP does, and what the control socket's
/// `POST /reload` (optional body: a config path) routes to.
pub(crate) fn reload_from(
    reloader: &Reloader,
    path: Option<&Path>,
) -> Result<ReloadSummary, ReloadFailure> {
    let shown = path.map_or_else(|| reloader.path(), Path::to_path_buf);
    log::info!("reloading {}", shown.display());
    // systemd waits for READY=1 after RELOADING=1, whatever the outcome.
    crate::notify::reloading();
    let r = reloader.reload(path);
    match &r {
        Ok(summary) => {
            let text = summary_text(&serde_json::to_value(summary).unwrap_or_default());
            log::info!("reloaded {}:\n{}", shown.display(), text.trim_end());
            crate::notify::ready(&format!("reloaded {}", shown.display()));
        }
        Err(e) => {
            log::error!(
                "reload of {} failed (the running graph is untouched):\n{e}",
                shown.display()
            );
            crate::notify::ready(&format!("reload of {} refused", shown.display()));
        }
    }
    r
}

/// A reload summary (the JSON of [`ReloadSummary`]) as text: one line
/// per list, `none` when empty.
pub(crate) fn summary_text(summary: &serde_json::Value) -> String {
    let mut out = String::new();
    for (key, label) in [
        ("kept_with_state", "elements kept with state"),
        ("kept", "elements kept"),
        ("added", "elements added"),
        ("removed", "elements removed"),
        ("ports_kept", "ports kept"),
        ("ports_reopened", "ports reopened"),
        ("ports_opened", "ports opened"),
        ("ports_closed", "ports closed"),
    ] {
        let names: Vec<&str> = summary[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let list = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        out += &format!("{label:<26}{list}\n");
    }
    out
}

/// Reloads on every SIGHUP until the returned handle is closed.
pub(crate) fn on_sighup(reloader: Reloader) -> anyhow::Result<signal_hook::iterator::Handle> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("hpio-nf-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                let _ = reload_from(&reloader, None);
            }
        })?;
    Ok(handle)
}
