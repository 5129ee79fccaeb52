//! The socket ends of the live tests: one Python script (`sock.py`, its
//! commands listed at its top) that the tests write to a file and run in
//! their namespaces as `python3 FILE COMMAND ARGS`.

/// The script's text.
pub const SCRIPT: &str = include_str!("sock.py");
