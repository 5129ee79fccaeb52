//! Helpers shared by the workspace's tests (a dev-dependency only, never
//! published): what a test needs from the machine, and where things are;
//! test frames ([`frame`]), pcap files ([`pcap`]), network namespaces and
//! veth pairs that clean up after themselves ([`net`]) and a seeded
//! generator ([`rng`]).
//!
//! # Prerequisites and the no-skip switch
//!
//! A test that needs root, a command or a file calls [`require`] first:
//!
//! ```no_run
//! # fn t() {
//! use testkit::Need;
//! if !testkit::require("dump_filter", &[Need::Root, Need::Command("ip"), Need::Command("tcpdump")]) {
//!     return;
//! }
//! // ... the test proper
//! # }
//! ```
//!
//! When something is missing the test is skipped: `require` returns `false`
//! and prints `SKIPPED: <test>: needs <what>` on the process's standard
//! error (not captured by the test harness, so it shows in every run). If
//! [`SKIP_LOG_ENV`] names a file, the same line is appended to it, so that a
//! build script can count the skips (`make test` prints the count).
//!
//! With [`REQUIRE_ALL_ENV`]` = 1` (CI and `make test` set it) a missing
//! prerequisite is a failure instead: `require` panics with the same
//! text, so a green run means that every test really ran.

#![deny(unsafe_code)]

pub mod frame;
pub mod net;
pub mod pcap;
pub mod prop;
pub mod rng;
pub mod sock;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Set to `1` to turn every skip into a failure.
pub const REQUIRE_ALL_ENV: &str = "HPIO_NF_REQUIRE_ALL";

/// A file to which every skip appends its `SKIPPED: ...` line.
pub const SKIP_LOG_ENV: &str = "HPIO_NF_SKIP_LOG";

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Running as root (effective uid 0).
    Root,
    /// A program on `PATH` (e.g. `ip`, `tcpdump`).
    Command(&'static str),
    /// An existing file or directory.
    Path(&'static str),
}

impl Need {
    /// Whether the machine has it.
    pub fn present(&self) -> bool {
        match self {
            Need::Root => is_root(),
            Need::Command(c) => on_path(c).is_some(),
            Need::Path(p) => Path::new(p).exists(),
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Root => f.write_str("root"),
            Need::Command(c) => write!(f, "the `{c}` command"),
            Need::Path(p) => write!(f, "`{p}`"),
        }
    }
}

/// What to do when a prerequisite is missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Fail instead of skipping.
    pub require_all: bool,
    /// Where to append skip lines.
    pub skip_log: Option<PathBuf>,
}

impl Policy {
    /// The policy the environment sets ([`REQUIRE_ALL_ENV`], [`SKIP_LOG_ENV`]).
    pub fn from_env() -> Policy {
        Policy {
            require_all: std::env::var(REQUIRE_ALL_ENV).is_ok_and(|v| v.trim() == "1"),
            skip_log: std::env::var_os(SKIP_LOG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    /// `true` when every one of `needs` is present. Otherwise the test
    /// `test` is skipped (`false`, with a `SKIPPED:` line) or, under
    /// `require_all`, fails (a panic naming what is missing).
    pub fn require(&self, test: &str, needs: &[Need]) -> bool {
        let missing: Vec<String> = needs
            .iter()
            .filter(|n| !n.present())
            .map(|n| n.to_string())
            .collect();
        self.decide(test, &missing)
    }

    /// [`Policy::require`] with what is missing already known (for
    /// prerequisites this crate cannot check, e.g. a kernel feature).
    pub fn decide(&self, test: &str, missing: &[String]) -> bool {
        if missing.is_empty() {
            return true;
        }
        let why = format!("needs {}", missing.join(", "));
        if self.require_all {
            panic!(
                "{test}: cannot run: {why} ({REQUIRE_ALL_ENV}=1 turns this skip into a failure; \
                 install what is missing or run as root)"
            );
        }
        let line = format!("SKIPPED: {test}: {why}\n");
        // Straight to the process's stderr: the harness captures only
        // `print!`/`eprint!`, so this line shows in every run.
        let _ = std::io::stderr().write_all(line.as_bytes());
        if let Some(log) = &self.skip_log {
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = appended {
                panic!(
                    "{test}: cannot append to {SKIP_LOG_ENV} file `{}`: {e}",
                    log.display()
                );
            }
        }
        false
    }
}

/// [`Policy::require`] under the environment's policy: `true` when the test
/// can run; `false` (skip) or a panic (under [`REQUIRE_ALL_ENV`]) otherwise.
pub fn require(test: &str, needs: &[Need]) -> bool {
    Policy::from_env().require(test, needs)
}

/// Whether this process runs as root: its *effective* uid is 0 (what the
/// kernel checks for namespaces, raw sockets and device files).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_uid(&s))
        == Some(0)
}

/// The effective uid from the text of `/proc/self/status` (its `Uid:` line
/// holds the real, effective, saved and filesystem uids).
fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
}

/// The full path of program `name` on `PATH`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The workspace root (where `Cargo.toml`, `configs/` and `docs/` are).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("testkit lives in the workspace")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISSING: Need = Need::Command("hpio-nf-testkit-no-such-program");

    fn temp_log(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("testkit-{tag}-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn a_missing_prerequisite_skips_and_is_logged() {
        let log = temp_log("skip");
        let policy = Policy {
            require_all: false,
            skip_log: Some(log.clone()),
        };
        assert!(!policy.require("fake_test", &[Need::Path("/"), MISSING]));
        assert!(!policy.require("other_test", &[Need::Path("/no/such/file/here")]));
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "SKIPPED: fake_test: needs the `hpio-nf-testkit-no-such-program` command\n\
             SKIPPED: other_test: needs `/no/such/file/here`\n"
        );
        std::fs::remove_file(&log).unwrap();
    }

    #[test]
    fn require_all_turns_a_skip_into_a_failure_naming_what_is_missing() {
        let log = temp_log("fail");
        let policy = Policy {
            require_all: true,
            skip_log: Some(log.clone()),
        };
        let r = std::panic::catch_unwind(|| policy.require("fake_test", &[MISSING]));
        let msg = match r {
            Ok(ran) => panic!("no failure (returned {ran})"),
            Err(p) => p.downcast_ref::<String>().cloned().unwrap(),
        };
        assert!(
            msg.starts_with(
                "fake_test: cannot run: needs the `hpio-nf-testkit-no-such-program` command (HPIO_NF_REQUIRE_ALL=1"
            ),
            "{msg}"
        );
        assert!(!log.exists(), "a failure is not a skip");
    }

    #[test]
    fn nothing_missing_runs_under_either_policy() {
        for require_all in [false, true] {
            let policy = Policy {
                require_all,
                skip_log: None,
            };
            assert!(policy.require("t", &[Need::Path("/"), Need::Command("sh")]));
            assert!(policy.require("t", &[]));
        }
    }

    #[test]
    fn the_environment_sets_the_policy() {
        // Read-only: the environment of this process is whatever the run set.
        let p = Policy::from_env();
        assert_eq!(
            p.require_all,
            std::env::var(REQUIRE_ALL_ENV).is_ok_and(|v| v.trim() == "1")
        );
    }

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        let status = "Uid:\t0\t1000\t1000\t1000\n";
        assert_eq!(effective_uid(status), Some(1000));
        assert_eq!(effective_uid("Name: x\n"), None);
        // This process, against `id -u` (the effective uid).
        let out = std::process::Command::new("id").arg("-u").output().unwrap();
        let id: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(is_root(), id == 0);
    }

    #[test]
    fn workspace_root_and_path_lookup() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file());
        assert!(root.join("configs").is_dir());
        assert!(on_path("sh").is_some());
        assert!(on_path("hpio-nf-testkit-no-such-program").is_none());
    }
}
