//! Helpers shared by the command's integration tests.
#![allow(dead_code)]

pub mod live;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use testkit::frame::{Frame, Ip, TCP_ACK, TCP_SYN};

/// The workspace root (configs/ lives there).
pub fn root() -> PathBuf {
    testkit::workspace_root()
}

/// The `hpio-nf` binary under test.
pub fn hpio_nf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hpio-nf"));
    c.current_dir(root());
    c.env("RUST_LOG", "warn");
    c
}

/// Runs `hpio-nf run CONFIG --json` with overrides, asserts success and
/// returns the final report.
pub fn run_ok(config: &str, set: &[String]) -> serde_json::Value {
    let mut cmd = hpio_nf();
    cmd.arg("run").arg(config).arg("--json");
    for s in set {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.output().expect("run hpio-nf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hpio-nf run {config} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a JSON report");
    serde_json::from_str(last).expect("report is JSON")
}

/// The entry named `name` of list `list` (`elements`, `ports`) of a report.
fn entry<'a>(report: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {list} entry {name} in {report}"))
}

/// The value of pair `[name, value]` in list `list` of `entry` (its
/// `drops`, its `custom` counters), if there is one.
fn pair(entry: &serde_json::Value, list: &str, name: &str) -> Option<u64> {
    let pairs = entry[list].as_array().unwrap();
    let pair = pairs.iter().find(|p| p[0] == name)?;
    Some(pair[1].as_u64().unwrap())
}

/// The report entry of element `name`.
pub fn element<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    entry(report, "elements", name)
}

/// The report entry of port `name`.
pub fn port<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    entry(report, "ports", name)
}

/// Drops of `element` under `reason` (0 when absent).
pub fn drop_count(element: &serde_json::Value, reason: &str) -> u64 {
    pair(element, "drops", reason).unwrap_or(0)
}

/// Custom counter `name` of element `element` in a report.
pub fn counter(report: &serde_json::Value, element: &str, name: &str) -> u64 {
    pair(self::element(report, element), "custom", name)
        .unwrap_or_else(|| panic!("no counter {name} of {element} in {report}"))
}

/// An Ethernet/IPv4/TCP frame (SYN or ACK) with payload "hello".
#[allow(clippy::too_many_arguments)]
pub fn eth_ipv4_tcp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    sport: u16,
    dport: u16,
    syn: bool,
) -> Vec<u8> {
    let flags = if syn { TCP_SYN } else { TCP_ACK };
    Frame::tcp(Ip::v4(src, dst), sport, dport, flags)
        .macs(src_mac, dst_mac)
        .ttl(ttl)
        .seq(1000, 1, 64240)
        .payload(b"hello")
        .build()
}

/// `hpio-nf run CONFIG --json --stats-interval 1 ARGS` in the background:
/// its stdout lines (a JSON report a second, the final one last) gathered
/// as they come, its log (at `info`) in a file. Dropping it kills the process.
pub struct LiveRun {
    child: Option<Child>,
    reports: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
    /// When the process was started: no report's clock starts earlier.
    spawned: Instant,
}

/// How long after a call a report must have been made to count as its
/// next one: workers publish their counters every 100 ms.
const REPORT_FRESH: Duration = Duration::from_millis(250);

impl LiveRun {
    /// Starts the run, logging to `log`, and waits for its first report
    /// (the ports are open and the workers run).
    pub fn start(config: impl AsRef<OsStr>, args: &[String], log: PathBuf) -> LiveRun {
        let mut cmd = hpio_nf();
        cmd.env("RUST_LOG", "info")
            .arg("run")
            .arg(config)
            .args(["--json", "--stats-interval", "1"])
            .args(args);
        let file = std::fs::File::create(&log).unwrap();
        let spawned = Instant::now();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .expect("start hpio-nf run");
        let stdout = child.stdout.take().unwrap();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let lines = reports.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut run = LiveRun {
            child: Some(child),
            reports,
            log,
            spawned,
        };
        run.next_report();
        run
    }

    /// The process id of the running NF.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("the NF runs").id()
    }

    /// The run's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the next live report (at most a second away) and returns it.
    ///
    /// The report must have been made at least [`REPORT_FRESH`] after this
    /// call, so that its counters include everything before it: a report
    /// made earlier but collected late (a loaded machine) would not. The
    /// NF's `elapsed_secs` counts from after the spawn, so spawn time plus
    /// `elapsed_secs` is never later than when the report was made.
    pub fn next_report(&mut self) -> serde_json::Value {
        let mut seen = self.reports.lock().unwrap().len();
        let fresh_from = (self.spawned.elapsed() + REPORT_FRESH).as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let next = self.reports.lock().unwrap().get(seen).cloned();
            if let Some(line) = next {
                let report: serde_json::Value =
                    serde_json::from_str(&line).expect("report is JSON");
                match report["elapsed_secs"].as_f64() {
                    Some(made) if made < fresh_from => seen += 1,
                    _ => return report,
                }
                continue;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("hpio-nf run exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no report from hpio-nf:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the run with SIGTERM and returns its final report.
    pub fn stop(&mut self) -> serde_json::Value {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        assert!(status.success(), "hpio-nf run: {status}\n{}", self.log());
        // The reader thread sees EOF once the process is gone.
        thread::sleep(Duration::from_millis(200));
        let last = self.reports.lock().unwrap().last().cloned().unwrap();
        serde_json::from_str(&last).unwrap()
    }
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `hpio-nf ctl --socket SOCKET ARGS...`, run to its end.
pub fn ctl(socket: &Path, args: &[&str]) -> Output {
    hpio_nf()
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("run hpio-nf ctl")
}

/// `hpio-nf testbed ACTION TOPOLOGY`, which must succeed.
pub fn testbed(action: &str, topology: &str) {
    let out = hpio_nf()
        .args(["testbed", action, topology])
        .output()
        .expect("run hpio-nf testbed");
    assert!(
        out.status.success(),
        "hpio-nf testbed {action} {topology}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
