//! Config files: TOML in, a checked graph out.
//!
//! ```toml
//! connections = ["left -> cls", "cls[0] -> right", "cls[1] -> discard"]
//! [runtime]
//! workers = 1
//! [ports.left]
//! driver = "pcap"
//! input = "in.pcap"
//! [ports.right]
//! driver = "pcap"
//! output = "out.pcap"
//! [elements.cls]
//! class = "Classify"
//! rules = ["ip4 -> 0"]
//! default = 1
//! ```
//!
//! A top-level `plugins = ["../target/release/libmy_elements.so"]` loads
//! element classes from plugin libraries first (see [`crate::plugin`]).
//!
//! [`Config::load`] reads such a file, applies `dotted.key=value`
//! overrides, checks every parameter against its element class or port
//! driver, resolves the connections and checks the graph (every output
//! connected once, every element fed, no cycles) before anything is opened.
//! Every problem found is reported with file, line and column
//! ([`ConfigErrors`]); independent problems are reported together.

mod connection;
mod display;
mod edge;
mod load;
mod loader;
mod run;
mod source;
mod tree;
mod values;
mod wiring;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;
#[cfg(test)]
mod tests_plugins;
#[cfg(test)]
mod tests_wiring;

use std::path::Path;

use crate::element::{Choice, Configured, Need, ParamSpec, ParamType, Registry};
use crate::graph::GraphSpec;
use crate::port::{PortRegistry, PortSpec};

pub use crate::runtime::{Clock, Idle, OnPanic};
pub use edge::parse_edge;
pub use run::RunToEndError;
pub use source::{ConfigError, ConfigErrors};

/// The `[runtime]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Number of worker threads.
    pub workers: usize,
    /// Core each worker is pinned to (one per worker).
    pub cores: Vec<usize>,
    /// Packets per receive call.
    pub burst: usize,
    /// Packet slots per worker.
    pub pool: usize,
    /// Bytes of frame a packet slot holds; `None`: derived from the ports.
    pub max_frame: Option<usize>,
    /// Time source for elements.
    pub clock: Clock,
    /// What to do when an element panics.
    pub on_panic: OnPanic,
    /// What a worker does when its queues are empty.
    pub idle: Idle,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            workers: 1,
            cores: vec![0],
            burst: 32,
            pool: 4096,
            max_frame: None,
            clock: Clock::System,
            on_panic: OnPanic::Drop,
            idle: Idle::Sleep,
        }
    }
}

/// The keys of `[runtime]`, declared like element parameters (they are
/// checked the same way and documented from here).
pub const RUNTIME_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "workers",
        ty: ParamType::Int { min: 1, max: 1024 },
        need: Need::Default("1"),
        doc: "number of worker threads, each running a replica of the graph",
    },
    ParamSpec {
        name: "cores",
        ty: ParamType::List(&ParamType::Int {
            min: 0,
            max: 65535,
        }),
        need: Need::Optional,
        doc: "core to pin each worker to, one per worker (default: 0, 1, ...)",
    },
    ParamSpec {
        name: "burst",
        ty: ParamType::Int { min: 1, max: 256 },
        need: Need::Default("32"),
        doc: "packets per receive call",
    },
    ParamSpec {
        name: "pool",
        ty: ParamType::Int {
            min: 2,
            max: 1 << 24,
        },
        need: Need::Default("4096"),
        doc: "packet slots per worker (at least twice `burst`)",
    },
    ParamSpec {
        name: "max_frame",
        ty: ParamType::Int {
            min: crate::packet::DEFAULT_MAX_FRAME as i64,
            max: crate::packet::MAX_FRAME_LIMIT as i64,
        },
        need: Need::Optional,
        doc: "bytes of frame each packet slot holds; frames longer than this are dropped and \
              counted `oversize` by the port that receives them (default: the largest frame \
              the ports deliver, interface MTU + 22 rounded up to 64, 9216 for a pcap input, \
              the generator's size; at least 2048)",
    },
    ParamSpec {
        name: "clock",
        ty: ParamType::Choice(Clock::NAMES),
        need: Need::Default("\"system\""),
        doc: "time given to elements: `system` (monotonic) or `packet` (last received packet's timestamp; pcap inputs are then replayed merged in timestamp order)",
    },
    ParamSpec {
        name: "on_panic",
        ty: ParamType::Choice(OnPanic::NAMES),
        need: Need::Default("\"drop\""),
        doc: "after an element panicked (its batch is dropped and counted as `panic` either way): `drop` logs the first panic of each element and keeps running, `stop` stops the run with an error naming the element",
    },
    ParamSpec {
        name: "idle",
        ty: ParamType::Choice(Idle::NAMES),
        need: Need::Default("\"sleep\""),
        doc: "what a worker does when its queues are empty: `sleep` spins briefly, then sleeps in poll(2) on its receive queues (af_packet, hpio) until frames or a control request arrive; `spin` keeps polling (spin, yield, 50 us naps: the lowest latency, a busy core per worker). Queues that cannot be waited on (generator, pcap) always spin",
    },
];

/// A checked port: its driver's configuration and which sides the graph uses.
#[derive(Debug)]
pub struct PortConfig {
    /// Port name (its index is its position in [`Config::ports`]).
    pub name: String,
    /// Driver name.
    pub driver: String,
    /// The configured (not yet opened) port.
    pub spec: Box<dyn PortSpec>,
    /// Whether a connection reads from it.
    pub rx_used: bool,
    /// Whether anything transmits to it.
    pub tx_used: bool,
}

/// A checked config, ready to run.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from.
    pub path: String,
    /// Runtime settings.
    pub runtime: RuntimeConfig,
    /// Ports in config order (the port index space of [`GraphSpec`]).
    pub ports: Vec<PortConfig>,
    /// The checked element graph.
    pub graph: GraphSpec,
    /// Number of graph nodes declared in `[elements]`; the nodes after them
    /// are implicit (the shared `discard`).
    pub declared_nodes: usize,
    /// The plugins loaded for it (`plugins = [...]`), in config order.
    pub plugins: Vec<crate::plugin::Plugin>,
}

impl Config {
    /// Reads and checks the config at `path`, with `overrides`
    /// (`dotted.key=value`) applied on top of the file.
    ///
    /// The plugin libraries the config lists under `plugins` (paths relative
    /// to the config's directory) are loaded first, and their classes join a
    /// copy of `elements` for this config; see [`crate::plugin`].
    pub fn load(
        path: &Path,
        elements: &Registry,
        ports: &PortRegistry,
        overrides: &[String],
    ) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        // Running as root: only a file no other user can change (and read
        // from where it was checked, should a link change meanwhile).
        let real = crate::plugin::trust::check(path)
            .map_err(|e| ConfigError::whole_file(&name, format!("cannot read the config: {e}")))?;
        let text = std::fs::read_to_string(real)
            .map_err(|e| ConfigError::whole_file(&name, format!("cannot read the config: {e}")))?;
        Config::parse_str(&text, &name, elements, ports, overrides)
    }

    /// Checks the config text `text`, named `file_name` in messages
    /// (relative plugin paths are taken from the directory part of
    /// `file_name`, or the current directory).
    pub fn parse_str(
        text: &str,
        file_name: &str,
        elements: &Registry,
        ports: &PortRegistry,
        overrides: &[String],
    ) -> Result<Config, ConfigErrors> {
        load::load(text, file_name, elements, ports, overrides)
    }

    /// [`Config::parse_str`] with the built-in element classes and port
    /// drivers and no overrides (tests and embedders that add no plugins).
    pub fn parse_builtin(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
        let (elements, ports) = (Registry::builtin(), PortRegistry::builtin());
        Config::parse_str(text, file_name, &elements, &ports, &[])
    }
}

/// Type-checks and configures one element from a TOML snippet: either the
/// body of an `[elements.X]` table or the whole table (with or without its
/// `class` key, which must then name `class`). `ports` are the port names a
/// `PortRef` parameter may use. For tests and for checking the example of
/// every class.
pub fn configure_element(
    elements: &Registry,
    ports: &[String],
    class: &str,
    table_toml: &str,
) -> Result<Configured, ConfigErrors> {
    load::configure_snippet(elements, ports, class, table_toml)
}
