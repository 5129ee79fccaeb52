//! The live tests' harness: the testbed (`hpio-nf testbed`), the NF run
//! over it, commands in its namespaces (ping, the socket helper
//! `testkit::sock`) and their clean-up, shared by live.rs, gateway_live.rs,
//! control_live.rs and idle_live.rs.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use testkit::Need;

use super::{testbed, LiveRun};

/// Serializes the tests of one test binary: they share the testbed's names.
static TESTBED: Mutex<()> = Mutex::new(());

/// What every test over the testbed needs.
pub const NEEDS: [Need; 3] = [Need::Root, Need::Command("ip"), Need::Command("ping")];

/// Takes the testbed lock, or returns `None` (with a `SKIPPED:` line, or a
/// failure under `HPIO_NF_REQUIRE_ALL=1`: see the testkit crate) when test
/// `test` lacks one of [`NEEDS`] or `more`.
pub fn setup(test: &str, more: &[Need]) -> Option<MutexGuard<'static, ()>> {
    if !testkit::require(test, &[&NEEDS[..], more].concat()) {
        return None;
    }
    // A failed test poisons the lock; the next one still runs.
    Some(TESTBED.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `ip netns exec NETNS ARGS`, not started, standard input closed.
pub fn ns(netns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns]).args(args);
    c.stdin(Stdio::null());
    c
}

/// Whether `count` pings (0.2 s apart) from `netns` to `dst` are all
/// answered, each within `wait` seconds.
pub fn ping_ok(netns: &str, dst: &str, count: u32, wait: &str) -> bool {
    let count = count.to_string();
    let args = [
        "ping", "-n", "-q", "-c", &count, "-i", "0.2", "-W", wait, dst,
    ];
    ns(netns, &args)
        .stdout(Stdio::null())
        .status()
        .expect("run ping (install iputils-ping)")
        .success()
}

/// Pings `dst` from `netns` until one answer comes (ARP, learning and the
/// NF settling; up to 20 tries); `log` (the NF's) goes into the failure.
pub fn ping_until_answered(netns: &str, dst: &str, log: &dyn Fn() -> String) {
    assert!(
        (0..20).any(|_| ping_ok(netns, dst, 1, "1")),
        "no ping answer from {dst} in {netns}\nNF log:\n{}",
        log()
    );
}

/// [`ping_until_answered`], then `count` more pings that must all be
/// answered.
pub fn ping(netns: &str, dst: &str, count: u32, log: &dyn Fn() -> String) {
    ping_until_answered(netns, dst, log);
    assert!(
        ping_ok(netns, dst, count, "3"),
        "pings from {netns} to {dst} were lost\nNF log:\n{}",
        log()
    );
}

/// The MAC address of `eth0` in `netns`.
pub fn mac_of(netns: &str) -> String {
    let out = ns(netns, &["cat", "/sys/class/net/eth0/address"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Checks the output of the socket helper's `client` (`sent sha received
/// sha peer mss`) after sending `bytes`: the server got exactly them.
/// Returns the source address the server saw.
pub fn assert_transfer_intact(out: &str, bytes: u64) -> String {
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 6, "client output: {out}");
    assert_eq!(f[0], bytes.to_string());
    assert_eq!((f[2], f[3]), (f[0], f[1]), "the bytes arrived changed");
    f[4].to_string()
}

/// Everything a test set up: the testbed, the NF, background helpers, a
/// temporary directory. Dropping it stops the processes and removes the
/// testbed, also when the test panics.
pub struct Live {
    topology: &'static str,
    /// The NF (`hpio-nf run --json --stats-interval 1`).
    pub nf: Option<LiveRun>,
    /// Processes started in the namespaces ([`Live::py_background`]).
    pub helpers: Vec<Option<Child>>,
    /// The test's temporary directory.
    pub dir: tempfile::TempDir,
    script: PathBuf,
    /// The NF's config and arguments (for [`Live::start_nf`]).
    config: String,
    args: Vec<String>,
}

impl Live {
    /// Builds the testbed `topology` (from scratch) and starts
    /// `hpio-nf run CONFIG --json --stats-interval 1` with overrides.
    pub fn start(topology: &'static str, config: &str, set: &[String]) -> Live {
        Live::start_in(tempfile::tempdir().unwrap(), topology, config, set)
    }

    /// [`Live::start`] with `dir` as the test's temporary directory (the
    /// overrides may name files in it).
    pub fn start_in(
        dir: tempfile::TempDir,
        topology: &'static str,
        config: &str,
        set: &[String],
    ) -> Live {
        let args = set
            .iter()
            .flat_map(|s| ["--set".into(), s.clone()])
            .collect();
        Live::start_args(dir, topology, config, args)
    }

    /// [`Live::start_in`] with the NF's arguments after the config as they
    /// are (`--set`, `--control` ...).
    pub fn start_args(
        dir: tempfile::TempDir,
        topology: &'static str,
        config: &str,
        args: Vec<String>,
    ) -> Live {
        let script = dir.path().join("sock.py");
        std::fs::write(&script, testkit::sock::SCRIPT).unwrap();
        testbed("down", topology);
        let mut live = Live {
            topology,
            nf: None,
            helpers: Vec::new(),
            dir,
            script,
            config: config.to_string(),
            args,
        };
        testbed("up", topology);
        live.start_nf("nf.log");
        live
    }

    /// Starts the NF (again), logging to `log` in the temporary directory.
    pub fn start_nf(&mut self, log: &str) {
        let log = self.dir.path().join(log);
        self.nf = Some(LiveRun::start(&self.config, &self.args, log));
    }

    /// The process id of the running NF.
    pub fn pid(&self) -> u32 {
        self.nf.as_ref().expect("the NF runs").id()
    }

    /// The NF's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nf.log")).unwrap_or_default()
    }

    /// Waits for the next live report (at most a second away) and returns it.
    pub fn next_report(&mut self) -> Value {
        self.nf.as_mut().unwrap().next_report()
    }

    /// Stops the NF with SIGTERM and returns its final report.
    pub fn stop(&mut self) -> Value {
        self.nf.take().unwrap().stop()
    }

    /// Runs `args` in `netns`, asserts success, returns its output.
    pub fn run(&self, netns: &str, args: &[&str]) -> String {
        let out = ns(netns, args).output().expect("run in namespace");
        assert!(
            out.status.success(),
            "{args:?} in {netns}: {}{}\nNF log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Runs the socket helper in `netns` and returns its output.
    pub fn py(&self, netns: &str, args: &[&str]) -> String {
        let script = self.script.to_str().unwrap();
        self.run(netns, &[&["python3", script][..], args].concat())
    }

    /// Starts the socket helper in `netns` in the background; returns its
    /// number for [`Live::wait_helper`].
    pub fn py_background(&mut self, netns: &str, args: &[&str]) -> usize {
        let script = self.script.to_str().unwrap();
        let child = ns(netns, &["python3", script])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3");
        self.helpers.push(Some(child));
        self.helpers.len() - 1
    }

    /// Waits for background helper `i` and returns its output.
    pub fn wait_helper(&mut self, i: usize) -> String {
        let child = self.helpers[i].take().expect("helper waited for once");
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "background python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// [`ping`] with the NF's log in its failures.
    pub fn ping(&self, netns: &str, dst: &str, count: u32) {
        ping(netns, dst, count, &|| self.log());
    }

    /// Sends `bytes` random bytes over TCP from `client_ns` to a server in
    /// `server_ns` on `addr:port` and asserts that the server received
    /// exactly them (length and SHA-256, reported back over the same
    /// connection, so replies pass too). Returns the source address the
    /// server saw.
    pub fn tcp_transfer(
        &mut self,
        server_ns: &str,
        client_ns: &str,
        addr: &str,
        port: u16,
        bytes: u64,
    ) -> String {
        let port = port.to_string();
        let server = self.py_background(server_ns, &["server", &port]);
        let out = self.py(client_ns, &["client", addr, &port, &bytes.to_string()]);
        self.wait_helper(server);
        assert_transfer_intact(&out, bytes)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        drop(self.nf.take());
        for c in self.helpers.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Removing the namespaces also ends what still runs in them.
        testbed("down", self.topology);
    }
}
