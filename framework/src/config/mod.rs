//! Config files: TOML in, a checked graph out.
