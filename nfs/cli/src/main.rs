//! The `hpio-nf` command: the command line of [`hpio_nf_cli`] with the
//! element classes of the NF crates shipped with hpio-nf.

use std::process::ExitCode;

use hpio_nf::element::Registry;

fn main() -> ExitCode {
    hpio_nf_cli::main_with(register)
}

/// Adds the element classes of the NF crates (the built-in classes are
/// always there).
fn register(r: &mut Registry) {
    hpio_nf_firewall::register(r);
    hpio_nf_bridge::register(r);
}
