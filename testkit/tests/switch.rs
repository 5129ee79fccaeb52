//! The switch end to end: a test binary whose test lacks a prerequisite,
//! run as `cargo test` runs it, passes with a `SKIPPED:` line, and fails
//! under `HPIO_NF_REQUIRE_ALL=1`.

use std::process::Command;

use testkit::{Need, REQUIRE_ALL_ENV, SKIP_LOG_ENV};

/// Run by the test below in a child process; does nothing when run directly.
#[test]
#[ignore = "helper: run by require_all_fails_a_test_that_would_skip"]
fn helper_needs_something_missing() {
    if std::env::var_os("TESTKIT_HELPER").is_none() {
        return;
    }
    if !testkit::require(
        "helper_needs_something_missing",
        &[Need::Root, Need::Command("hpio-nf-testkit-no-such-program")],
    ) {
        return;
    }
    panic!("ran without its prerequisite");
}

fn run_helper(require_all: &str, log: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_needs_something_missing",
            "--ignored",
            "--test-threads=1",
        ])
        .env("TESTKIT_HELPER", "1")
        .env(REQUIRE_ALL_ENV, require_all)
        .env(SKIP_LOG_ENV, log)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn require_all_fails_a_test_that_would_skip() {
    let log = std::env::temp_dir().join(format!("testkit-switch-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);

    let (ok, stdout, stderr) = run_helper("0", &log);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    let line = "SKIPPED: helper_needs_something_missing: needs ";
    assert!(stderr.contains(line), "{stderr}");
    assert!(std::fs::read_to_string(&log).unwrap().starts_with(line));
    std::fs::remove_file(&log).unwrap();

    let (ok, stdout, stderr) = run_helper("1", &log);
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(
        stdout.contains("helper_needs_something_missing: cannot run: needs ")
            && stdout.contains("the `hpio-nf-testkit-no-such-program` command"),
        "{stdout}"
    );
    assert!(!log.exists(), "a failure is not counted as a skip");
}
