//! Dynamic plugins: element classes loaded from a shared library that a
//! config names (`plugins = ["libmy_elements.so"]`).
//!
//! A plugin is an ordinary crate of elements (the same code works as a
//! static dependency of a custom `hpio-nf` binary) built as a `cdylib`, with
//! one line that declares its entry point:
//!
//! ```
//! pub fn register(r: &mut hpio_nf::element::Registry) {
//!     // r.register(my_element::CLASS); for each class of the crate
//!     # let _ = r;
//! }
//!
//! hpio_nf::export_plugin!(register);
//! ```
//!
//! # What loading checks
//!
//! Rust has no stable ABI: a plugin shares the framework's types (`Registry`,
//! `Packet`, `Output`, trait objects) with the program that loads it, so both
//! must be built from the same framework source by the same compiler, or
//! their layouts may differ. [`export_plugin!`](crate::export_plugin) exports
//! a [`PluginDescriptor`], a plain C struct of bytes, under the symbol
//! `HPIO_NF_PLUGIN_<crate name>`. [`load`] reads only that descriptor first,
//! and refuses the library, before calling any of its Rust functions, unless
//! its framework build ([`FRAMEWORK_BUILD`]: version and a fingerprint of
//! the framework's source), compiler ([`RUSTC_VERSION`]) and panic strategy
//! are those of the loading program. Only then does it call the entry point
//! `hpio_nf_plugin_entry_<crate name>`, which registers the plugin's classes
//! into an empty registry; they join the caller's registry unless a name is
//! already taken. Symbol names carry the crate name (taken from the file
//! name, `lib<crate>.so`) so that several plugin crates can also be linked
//! statically into one binary.
//!
//! # What a plugin author must keep in mind
//!
//! - Build the plugin with the same compiler and against the same
//!   hpio-nf as the `hpio-nf` that loads it (best: in the same workspace or
//!   with the same `Cargo.lock`, since dependency versions are not checked),
//!   with `panic = "unwind"` (the default). Rebuild it whenever hpio-nf is
//!   rebuilt from changed source: the loader says so otherwise.
//! - A library is never unloaded: the classes' names, docs and code live in
//!   it for the rest of the process.
//! - Loading a library runs its initializers: load only trusted libraries.
//! - Do not set a `#[global_allocator]`: memory allocated in the plugin is
//!   freed by the host and the other way round, which is sound only while
//!   both use the system allocator (as `hpio-nf` does).
//! - Panics are caught at the element boundary (in `push`, `stats`, the
//!   class's `configure`, replica construction and `register`) by the
//!   plugin's own copy of the standard library, and reported by the host. A
//!   panic while an element is dropped aborts the process: keep `Drop`
//!   trivial.
//! - `log` macros work: the plugin's `log` output is forwarded to the
//!   host's logger.
//!
//! # Who may provide a plugin
//!
//! Running as root, [`load`] refuses a library that a user other than root
//! could change, or that lies in a directory such a user could write: see
//! [`trust`] (the config loader applies the same rule to config files).

pub mod trust;

use std::path::{Path, PathBuf};

use crate::element::{guard, Registry};
use crate::sys::dylib::{DescriptorAccepted, Library};
pub use crate::sys::plugin_abi::{PluginDescriptor, FRAMEWORK_BUILD, RUSTC_VERSION};

/// Proof that a library's descriptor matched this build; only [`check`]
/// makes one, and only with one may a library's entry point be called.
pub(crate) struct Compatible(());

/// The type of the entry point [`export_plugin!`](crate::export_plugin)
/// exports (the macro checks its function against it).
#[doc(hidden)]
pub type EntryFn = crate::sys::plugin_abi::EntryFn<Registry, Host>;

/// The entry point [`export_plugin!`](crate::export_plugin) exports takes
/// these: it is an [`EntryFn`].
impl DescriptorAccepted for Compatible {
    type Registry = Registry;
    type Host = Host;
}

/// What the loading program lends a plugin's entry point.
#[doc(hidden)]
pub struct Host {
    log: fn(usize, &str, &str),
    max_level: usize,
}

impl Host {
    /// The services of this program.
    fn current() -> Host {
        Host {
            log: host_log,
            max_level: log::max_level() as usize,
        }
    }
}

/// Logs a record forwarded by a plugin through this program's logger.
fn host_log(level: usize, target: &str, message: &str) {
    if let Some(level) = level_of(level) {
        log::log!(target: target, level, "{message}");
    }
}

fn level_of(n: usize) -> Option<log::Level> {
    Some(match n {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        5 => log::Level::Trace,
        _ => return None,
    })
}

/// The host's logging function, in a plugin (set by its entry point).
static HOST_LOG: std::sync::OnceLock<fn(usize, &str, &str)> = std::sync::OnceLock::new();

/// A plugin's logger: forwards every record to the host.
struct ToHost;

impl log::Log for ToHost {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if let (true, Some(f)) = (self.enabled(r.metadata()), HOST_LOG.get()) {
            f(r.level() as usize, r.target(), &r.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// The body of a plugin's entry point (called through
/// [`export_plugin!`](crate::export_plugin), in the plugin): forwards the
/// plugin's log records to the host and runs `register`, catching a panic.
#[doc(hidden)]
pub fn __entry(
    registry: &mut Registry,
    host: &Host,
    register: fn(&mut Registry),
) -> Result<(), String> {
    forward_logs(host);
    run_register(registry, register)
}

/// Sends this copy of `log`'s records to the host (in a plugin only: in the
/// host itself this would loop).
fn forward_logs(host: &Host) {
    static TO_HOST: ToHost = ToHost;
    let _ = HOST_LOG.set(host.log);
    if log::set_logger(&TO_HOST).is_ok() {
        let max = [
            log::LevelFilter::Off,
            log::LevelFilter::Error,
            log::LevelFilter::Warn,
            log::LevelFilter::Info,
            log::LevelFilter::Debug,
            log::LevelFilter::Trace,
        ];
        let level = max.get(host.max_level).copied();
        log::set_max_level(level.unwrap_or(log::LevelFilter::Trace));
    }
}

/// Runs a plugin's `register`, catching a panic.
fn run_register(registry: &mut Registry, register: fn(&mut Registry)) -> Result<(), String> {
    guard::install_hook();
    guard::catch(|| register(registry))
}

/// Declares the crate a dynamic plugin whose classes `register` adds.
///
/// `register` is a `fn(&mut Registry)`, the same function a static build
/// calls. The macro exports the crate's [`PluginDescriptor`] and its entry
/// point under names that carry the crate's name, so plugin crates can still
/// be linked together into one static binary. Build the crate with
/// `crate-type = ["rlib", "cdylib"]` to get both forms.
///
/// ```
/// use hpio_nf::element::Registry;
///
/// pub fn register(r: &mut Registry) {
///     // r.register(my_element::CLASS);
/// }
///
/// hpio_nf::export_plugin!(register);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($register:path) => {
        /// This crate's plugin descriptor (read by `hpio_nf::plugin::load`).
        #[doc(hidden)]
        #[allow(unsafe_code)]
        #[unsafe(export_name = concat!("HPIO_NF_PLUGIN_", env!("CARGO_CRATE_NAME")))]
        pub static __HPIO_NF_PLUGIN_DESCRIPTOR: $crate::plugin::PluginDescriptor =
            $crate::plugin::PluginDescriptor::current();

        /// This crate's plugin entry point (called by `hpio_nf::plugin::load`).
        #[doc(hidden)]
        #[allow(unsafe_code)]
        #[unsafe(export_name = concat!("hpio_nf_plugin_entry_", env!("CARGO_CRATE_NAME")))]
        pub fn __hpio_nf_plugin_entry(
            registry: &mut $crate::element::Registry,
            host: &$crate::plugin::Host,
        ) -> ::core::result::Result<(), ::std::string::String> {
            $crate::plugin::__entry(registry, host, $register)
        }

        // The entry point has the type the loader calls it as.
        const _: $crate::plugin::EntryFn = __hpio_nf_plugin_entry;
    };
}

/// A loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugin {
    /// The library, as a canonical path.
    pub path: PathBuf,
    /// The crate it was built from.
    pub crate_name: String,
    /// The element classes it registered, sorted.
    pub classes: Vec<&'static str>,
}

/// Why a library was not loaded as a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The file is missing or the system loader refused it.
    #[error("cannot load plugin `{path}`: {message}")]
    Open {
        /// The library.
        path: String,
        /// What the system said.
        message: String,
    },
    /// The file name does not say which crate it was built from.
    #[error("plugin `{path}`: cannot tell the crate name from the file name; keep the name cargo gives the library (lib<crate>.so)")]
    Name {
        /// The library.
        path: String,
    },
    /// The library exports no descriptor: not an hpio-nf plugin.
    #[error("`{path}` is not an hpio-nf plugin: it does not export `{symbol}` (a plugin declares itself with `hpio_nf::export_plugin!(register)`, and keeps the file name cargo gives it)")]
    NotAPlugin {
        /// The library.
        path: String,
        /// The symbol looked for.
        symbol: String,
    },
    /// The symbol is there but holds no plugin descriptor.
    #[error("`{path}` exports `{symbol}`, but not as an hpio-nf plugin descriptor")]
    BadDescriptor {
        /// The library.
        path: String,
        /// The symbol.
        symbol: String,
    },
    /// The descriptor has a layout this framework does not read.
    #[error("plugin `{path}` was built against an hpio-nf whose plugin descriptor this one cannot read (layout {layout}); rebuild it against this hpio-nf ({FRAMEWORK_BUILD})")]
    Layout {
        /// The library.
        path: String,
        /// The layout version found.
        layout: u32,
    },
    /// Built against another framework build.
    #[error("plugin `{path}` was built against hpio-nf {plugin}, but this program uses hpio-nf {host}; rebuild the plugin against the same hpio-nf")]
    Framework {
        /// The library.
        path: String,
        /// Its framework build.
        plugin: String,
        /// Ours.
        host: String,
    },
    /// Built by another compiler.
    #[error("plugin `{path}` was built by {plugin}, but this program was built by {host}; rebuild the plugin with the same compiler")]
    Compiler {
        /// The library.
        path: String,
        /// Its compiler.
        plugin: String,
        /// Ours.
        host: String,
    },
    /// Built with another panic strategy.
    #[error("plugin `{path}` was built with panic = \"{plugin}\", but this program with panic = \"{host}\"; build both the same way (\"unwind\" lets hpio-nf catch a panicking element)")]
    PanicStrategy {
        /// The library.
        path: String,
        /// Its strategy.
        plugin: &'static str,
        /// Ours.
        host: &'static str,
    },
    /// The entry point is missing.
    #[error("plugin `{path}` has a descriptor but does not export its entry point `{symbol}`")]
    NoEntry {
        /// The library.
        path: String,
        /// The symbol looked for.
        symbol: String,
    },
    /// Running as root, the library is one another user could change.
    #[error("cannot load plugin: {0}")]
    Unsafe(#[from] trust::UnsafePath),
    /// The plugin's `register` panicked.
    #[error("plugin `{path}`: its register function panicked: {message}")]
    Panicked {
        /// The library.
        path: String,
        /// The panic's message.
        message: String,
    },
    /// A class name is already taken.
    #[error("plugin `{path}` defines element class `{class}`, which is already defined (built in, or by another plugin)")]
    Duplicate {
        /// The library.
        path: String,
        /// The class.
        class: String,
    },
}

/// The crate name a library file was built from: `libfoo_bar.so` gives
/// `foo_bar` (`foo_bar.dll` on Windows).
pub fn crate_name_of(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = file.split('.').next()?;
    let name = if cfg!(windows) {
        stem
    } else {
        stem.strip_prefix("lib")?
    };
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then(|| name.to_string())
}

/// The descriptor's and the entry point's symbols for crate `name`.
pub fn symbols(name: &str) -> (String, String) {
    (
        format!("HPIO_NF_PLUGIN_{name}"),
        format!("hpio_nf_plugin_entry_{name}"),
    )
}

/// Checks a descriptor against this build.
pub(crate) fn check(path: &str, d: &PluginDescriptor) -> Result<Compatible, PluginError> {
    let host = PluginDescriptor::current();
    if d.framework != host.framework {
        return Err(PluginError::Framework {
            path: path.into(),
            plugin: d.framework(),
            host: host.framework(),
        });
    }
    if d.rustc != host.rustc {
        return Err(PluginError::Compiler {
            path: path.into(),
            plugin: d.rustc(),
            host: host.rustc(),
        });
    }
    if d.flags != host.flags {
        let name = |u: bool| if u { "unwind" } else { "abort" };
        return Err(PluginError::PanicStrategy {
            path: path.into(),
            plugin: name(d.unwinds()),
            host: name(host.unwinds()),
        });
    }
    Ok(Compatible(()))
}

/// Loads the plugin at `path` and adds its classes to `into`.
///
/// The library stays loaded for the rest of the process, whether it is
/// accepted or not. On error `into` is unchanged.
pub fn load(path: &Path, into: &mut Registry) -> Result<Plugin, PluginError> {
    let shown = path.display().to_string();
    let canonical = std::fs::canonicalize(path).map_err(|e| PluginError::Open {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let canonical = trust::check(&canonical).map_err(|e| trust::UnsafePath {
        path: path.to_path_buf(),
        ..e
    })?;
    let crate_name = crate_name_of(&canonical).ok_or(PluginError::Name {
        path: shown.clone(),
    })?;
    let (desc_symbol, entry_symbol) = symbols(&crate_name);
    let lib = Library::open(&canonical).map_err(|message| PluginError::Open {
        path: shown.clone(),
        message,
    })?;
    let desc = match lib.descriptor(&desc_symbol) {
        None => {
            return Err(PluginError::NotAPlugin {
                path: shown,
                symbol: desc_symbol,
            })
        }
        Some(Err(header)) if !header.has_magic() => {
            return Err(PluginError::BadDescriptor {
                path: shown,
                symbol: desc_symbol,
            })
        }
        Some(Err(header)) => {
            return Err(PluginError::Layout {
                path: shown,
                layout: header.layout,
            })
        }
        Some(Ok(d)) => d,
    };
    let proof = check(&shown, &desc)?;
    let mut theirs = Registry::empty();
    match lib.call_entry(&entry_symbol, &proof, &mut theirs, &Host::current()) {
        None => {
            return Err(PluginError::NoEntry {
                path: shown,
                symbol: entry_symbol,
            })
        }
        Some(Err(message)) => {
            return Err(PluginError::Panicked {
                path: shown,
                message,
            })
        }
        Some(Ok(())) => {}
    }
    let classes = into
        .absorb(theirs)
        .map_err(|class| PluginError::Duplicate {
            path: shown,
            class: class.to_string(),
        })?;
    Ok(Plugin {
        path: canonical,
        crate_name,
        classes,
    })
}

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::plugin_abi::{padded, FLAG_UNWIND};

    #[test]
    fn this_build_is_accepted() {
        assert!(check("x", &PluginDescriptor::current()).is_ok());
    }

    #[test]
    fn a_different_build_is_refused_with_both_versions_named() {
        let mut d = PluginDescriptor::current();
        d.framework = padded("0.0.9+src.0000000000000000");
        let e = check("libx.so", &d).err().unwrap().to_string();
        assert!(e.contains("hpio-nf 0.0.9+src.0000000000000000"), "{e}");
        assert!(e.contains(FRAMEWORK_BUILD), "{e}");
        let mut d = PluginDescriptor::current();
        d.rustc = padded("rustc 1.0.0 (a59807616 2015-05-15)");
        let e = check("libx.so", &d).err().unwrap().to_string();
        assert!(e.contains("built by rustc 1.0.0"), "{e}");
        assert!(e.contains("same compiler"), "{e}");
        let mut d = PluginDescriptor::current();
        d.flags ^= FLAG_UNWIND;
        let e = check("libx.so", &d).err().unwrap().to_string();
        assert!(e.contains("panic ="), "{e}");
    }

    #[test]
    fn crate_names_come_from_cargo_file_names() {
        let n = |s: &str| crate_name_of(Path::new(s));
        assert_eq!(
            n("/a/b/libhpio_nf_syn_guard.so").as_deref(),
            Some("hpio_nf_syn_guard")
        );
        assert_eq!(n("libfoo.so.1").as_deref(), Some("foo"));
        assert_eq!(n("foo.so"), None);
        assert_eq!(n("lib.so"), None);
        assert_eq!(n("libfoo-bar.so"), None);
        assert_eq!(symbols("foo").0, "HPIO_NF_PLUGIN_foo");
    }

    #[test]
    fn missing_and_non_library_files_are_refused_clearly() {
        let mut r = Registry::builtin();
        let before = r.classes().count();
        let e = load(Path::new("/nonexistent/libnothing.so"), &mut r).unwrap_err();
        assert!(matches!(e, PluginError::Open { .. }), "{e}");
        assert!(e.to_string().contains("No such file"), "{e}");
        let dir = std::env::temp_dir().join(format!("hpio-nf-plugin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("libnotes.so");
        std::fs::write(&text, "not a library\n").unwrap();
        let e = load(&text, &mut r).unwrap_err();
        assert!(matches!(e, PluginError::Open { .. }), "{e}");
        let odd = dir.join("notes.txt");
        std::fs::write(&odd, "x").unwrap();
        assert!(matches!(load(&odd, &mut r), Err(PluginError::Name { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.classes().count(), before);
    }

    #[test]
    fn register_runs_with_a_panic_caught() {
        use crate::element::ElementClass;
        const NOTHING: ElementClass = ElementClass {
            info: crate::element::ClassInfo::bare("Nothing"),
            configure: |_, _| unreachable!(),
        };
        fn good(r: &mut Registry) {
            r.register(NOTHING);
        }
        fn bad(_: &mut Registry) {
            panic!("cannot register");
        }
        let mut r = Registry::empty();
        assert_eq!(run_register(&mut r, good), Ok(()));
        assert!(r.get("Nothing").is_some());
        let e = run_register(&mut r, bad).unwrap_err();
        assert!(e.starts_with("cannot register (at "), "{e}");
        assert_eq!(level_of(2), Some(log::Level::Warn));
        assert_eq!(level_of(0), None);
        assert!(Host::current().max_level <= 5);
    }
}
