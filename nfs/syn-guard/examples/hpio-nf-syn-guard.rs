//! `hpio-nf` with `SynGuard` built in: a static plugin. This is the whole
//! program; it has every command and option of `hpio-nf`, and knows the
//! `SynGuard` class without any `plugins = [...]` in its configs.
//!
//! ```sh
//! cargo run --release -p hpio-nf-syn-guard --example hpio-nf-syn-guard -- elements SynGuard
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    hpio_nf_cli::main_with(hpio_nf_syn_guard::register)
}
