//! What the source-reading tests (layering.rs, sizes.rs) share: walking the
//! workspace's Rust files and telling test files apart.

use std::fs;
use std::path::{Path, PathBuf};

/// Rust files under `dir`, sorted.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Test-only files: `tests.rs`, `tests_*.rs`, `testutil.rs` and anything in a `tests/` folder.
pub fn is_test_file(rel: &Path) -> bool {
    let name = rel.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    name == "tests"
        || name.starts_with("tests_")
        || name == "testutil"
        || rel.components().any(|c| c.as_os_str() == "tests")
}
