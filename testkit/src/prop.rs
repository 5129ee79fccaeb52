//! One configuration for every property test (proptest), so that CI runs a
//! fixed, seeded number of cases and a developer can run many more.
//!
//! ```no_run
//! use proptest::prelude::*;
//! proptest! {
//!     #![proptest_config(testkit::prop::config(512))]
//!     #[test]
//!     fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
//!         let _ = bytes.len();
//!     }
//! }
//! ```
//!
//! - `PROPTEST_CASES=N` runs N cases per property instead of the test's own
//!   count (`make fuzz` sets 100000).
//! - `PROPTEST_RNG_SEED=S` starts from seed S instead of [`SEED`]: the same
//!   seed gives the same cases, so a failure seen once is seen again.
//!
//! Failures are not written to `proptest-regressions/` files: whatever a
//! property test finds becomes a named regression test beside it.

use proptest::test_runner::{Config, RngSeed};

/// The seed CI runs with (override with `PROPTEST_RNG_SEED`).
pub const SEED: u64 = 0x0068_7069_6f2d_6e66;

/// Runs `ci_cases` cases (or `PROPTEST_CASES`) from a fixed seed (or
/// `PROPTEST_RNG_SEED`), shrinking failures for at most a few seconds.
pub fn config(ci_cases: u32) -> Config {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let cases = env("PROPTEST_CASES").map_or(ci_cases, |n| n.min(u32::MAX as u64) as u32);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(SEED)),
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..Config::default()
    }
}
