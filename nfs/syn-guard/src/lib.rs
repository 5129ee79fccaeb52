//! A SYN-flood guard for hpio-nf: the `SynGuard` element, shipped as a plugin.
//!
//! `SynGuard` passes all traffic but rate-limits TCP connection attempts
//! (SYNs) per source address with a token bucket per source, kept in a
//! fixed-size table per worker. See `hpio-nf elements SynGuard` for its
//! manual.
//!
//! This crate is also the worked example of docs/plugins.md: it uses only
//! hpio-nf's public element API and builds both ways.
//!
//! - Static: a custom binary links the crate and calls [`register`]:
//!   `hpio_nf_cli::main_with(hpio_nf_syn_guard::register)` (see
//!   `examples/hpio-nf-syn-guard.rs`).
//! - Dynamic: `cargo build --release -p hpio-nf-syn-guard` also gives
//!   `target/release/libhpio_nf_syn_guard.so`, which a config loads with
//!   `plugins = ["path/to/libhpio_nf_syn_guard.so"]`
//!   (see configs/plugins/syn-guard.toml).
//!
//! ```text
//! let mut registry = hpio_nf::element::Registry::builtin();
//! hpio_nf_syn_guard::register(&mut registry);
//! ```
#![deny(unsafe_code)]

mod syn_guard;
mod table;

pub use syn_guard::CLASS;

use hpio_nf::element::Registry;

/// Registers this crate's element classes (`SynGuard`) in `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(CLASS);
}

// The entry point a dynamic build exports (`plugins = [...]` in a config).
hpio_nf::export_plugin!(register);

#[cfg(test)]
mod tests {
    // A doctest would link this crate's rlib next to a second copy of
    // hpio_nf (the crate is also a cdylib), so the example is tested here.
    #[test]
    fn register_adds_syn_guard() {
        let mut registry = hpio_nf::element::Registry::builtin();
        super::register(&mut registry);
        assert!(registry.get("SynGuard").is_some());
    }
}
