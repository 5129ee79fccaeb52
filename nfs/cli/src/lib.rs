//! The `hpio-nf` command as a library: run, check and benchmark
//! network-function graphs, and list the element classes they are made of.
//!
//! The `hpio-nf` binary is [`main_with`] plus the NF crates shipped with
//! hpio-nf. A binary with more element classes (static plugins) is the
//! same few lines with its own crates:
//!
//! ```no_run
//! use std::process::ExitCode;
//! use hpio_nf::element::Registry;
//!
//! fn register(r: &mut Registry) {
//!     // my_elements::register(r);
//!     # let _ = r;
//! }
//!
//! fn main() -> ExitCode {
//!     hpio_nf_cli::main_with(register)
//! }
//! ```

mod bench;
mod control;
mod dump;
mod manual;
mod metrics;
mod notify;
mod observe;
mod pktgen;
mod reload;
mod run;
mod setup;
mod testbed;
mod tool;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hpio_nf::config::Config;
use hpio_nf::element::Registry;
use hpio_nf::port::PortRegistry;

/// hpio-nf: Click-like network functions over batched packet I/O.
#[derive(Parser)]
#[command(name = "hpio-nf", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a config until its sources end or SIGINT/SIGTERM arrives (SIGHUP reloads it).
    Run(run::RunArgs),
    /// Validate a config and print the resolved graph; touches no port.
    Check {
        /// The config file (TOML).
        config: PathBuf,
        /// Override a config value, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// List element classes, or show one class's manual page.
    Elements {
        /// Class to show in full.
        name: Option<String>,
        /// Load the element classes of this plugin library first (repeatable).
        #[arg(long = "plugin", value_name = "LIBRARY")]
        plugins: Vec<PathBuf>,
        /// Print the whole manual as Markdown (docs/elements.md is made this way).
        #[arg(long)]
        markdown: bool,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Measure Mpps on one core for the standard in-memory graphs.
    Bench {
        /// Scenarios to run (default: all): discard, classify, firewall, rewrite, nat44,
        /// lookup4, lookup4-cached, lookup6, bridge, gateway.
        scenarios: Vec<String>,
        /// Packets per scenario.
        #[arg(long, default_value_t = 50_000_000)]
        count: u64,
        /// Runs per scenario; the best is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Core to pin the (first) worker to.
        #[arg(long, default_value_t = 0)]
        core: usize,
        /// Workers, pinned to cores CORE.. in turn, each generating and
        /// forwarding its own share of the packets.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Print results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send UDP test traffic on a port, or count what arrives (--rx).
    Pktgen(pktgen::PktgenArgs),
    /// Capture frames arriving on a port to a pcap file or the terminal.
    Dump(dump::DumpArgs),
    /// Create or remove the namespaces and veth pairs the shipped configs use.
    Testbed(testbed::TestbedArgs),
    /// Ask a running `hpio-nf run` over its control socket (docs/control.md).
    Ctl(control::CtlArgs),
}

/// Whether files other users can change may be loaded as root.
#[derive(clap::Args, Clone, Copy, Default)]
pub(crate) struct TrustArgs {
    /// Running as root, load plugins and configs even from files or
    /// directories that other users can change (development only;
    /// docs/reliability.md).
    #[arg(long)]
    pub allow_unsafe_paths: bool,
}

impl Command {
    /// The trust options of the commands that load configs or plugins.
    fn trust(&self) -> TrustArgs {
        match self {
            Command::Run(a) => a.trust,
            Command::Check { trust, .. } | Command::Elements { trust, .. } => *trust,
            _ => TrustArgs::default(),
        }
    }
}

/// Runs the `hpio-nf` command line of this process with the built-in
/// element classes plus those `register` adds, and returns the exit code:
/// 0 on success, 1 when a run fails (a port error, an element panic with
/// `on_panic = "stop"`), 2 for an invalid command line or config.
pub fn main_with(register: impl FnOnce(&mut Registry)) -> ExitCode {
    run_with(std::env::args_os(), register)
}

/// [`main_with`] over explicit arguments (the first is the program name),
/// for tests and programs that build their command line themselves.
pub fn run_with<I, T>(args: I, register: impl FnOnce(&mut Registry)) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // A second call in the same process keeps the first logger.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .try_init();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.command.trust().allow_unsafe_paths {
        hpio_nf::plugin::trust::allow_unsafe_paths(true);
    }
    let mut elements = Registry::builtin();
    register(&mut elements);
    let result = match cli.command {
        Command::Run(a) => run::cmd_run(&elements, &a),
        Command::Check { config, set, .. } => cmd_check(&elements, &config, &set),
        Command::Elements {
            name,
            plugins,
            markdown,
            ..
        } => load_plugins(&mut elements, &plugins)
            .and_then(|()| manual::cmd_elements(&elements, name, markdown)),
        Command::Bench {
            scenarios,
            count,
            runs,
            core,
            workers,
            json,
        } => bench::cmd_bench(
            &elements,
            &scenarios,
            &bench::BenchOpts {
                count,
                runs,
                core,
                workers,
                json,
            },
        ),
        Command::Pktgen(a) => pktgen::cmd_pktgen(&a),
        Command::Dump(a) => dump::cmd_dump(&a),
        Command::Testbed(a) => testbed::cmd_testbed(&a),
        Command::Ctl(a) => control::cmd_ctl(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Adds the classes of plugin libraries given on the command line.
fn load_plugins(elements: &mut Registry, plugins: &[PathBuf]) -> anyhow::Result<()> {
    for p in plugins {
        hpio_nf::plugin::load(p, elements)?;
    }
    Ok(())
}

/// The port drivers this binary knows.
pub(crate) fn port_registry() -> PortRegistry {
    PortRegistry::builtin()
}

/// Loads a config; on errors prints them all and returns `None`.
pub(crate) fn load(elements: &Registry, path: &std::path::Path, set: &[String]) -> Option<Config> {
    match Config::load(path, elements, &port_registry(), set) {
        Ok(c) => Some(c),
        Err(errors) => {
            eprintln!("{errors}");
            None
        }
    }
}

fn cmd_check(
    elements: &Registry,
    path: &std::path::Path,
    set: &[String],
) -> anyhow::Result<ExitCode> {
    let Some(config) = load(elements, path, set) else {
        return Ok(ExitCode::from(2));
    };
    print!("{config}");
    println!("ok: {} is valid", path.display());
    Ok(ExitCode::SUCCESS)
}
