//! Idle workers sleeping (`[runtime] idle = "sleep"`, the default) on a
//! live bridge between namespaces (`hpio-nf testbed up bridge`): frames
//! wake the worker (ping passes), control requests and a reload are
//! answered and SIGTERM stops it while it sleeps, and an idle NF uses
//! little CPU. With `idle = "spin"` the worker never sleeps.
//!
//! Needs root, `ip` and `ping` (testkit: skipped, or failed under
//! `HPIO_NF_REQUIRE_ALL=1`). The testbed has fixed names: the tests take a
//! lock, and a guard removes the testbed even when a test fails.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{ctl, testbed, LiveRun};
use serde_json::Value;
use testkit::Need;

static TESTBED: Mutex<()> = Mutex::new(());

/// Removes the bridge testbed on drop.
struct Testbed;

impl Drop for Testbed {
    fn drop(&mut self) {
        testbed("down", "bridge");
    }
}

fn bridge_up() -> Testbed {
    testbed("down", "bridge");
    testbed("up", "bridge");
    Testbed
}

/// Pings `dst` from `netns` until one answer comes (up to 20 tries), then
/// `count` more that must all be answered.
fn ping(netns: &str, dst: &str, count: u32, log: &dyn Fn() -> String) {
    let ok = |c: &str| {
        Command::new("ip")
            .args(["netns", "exec", netns, "ping", "-n", "-q", "-c", c])
            .args(["-i", "0.2", "-W", "3", dst])
            .stdout(Stdio::null())
            .status()
            .expect("run ping")
            .success()
    };
    assert!((0..20).any(|_| ok("1")), "no answer from {dst}:\n{}", log());
    assert!(ok(&count.to_string()), "pings to {dst} lost:\n{}", log());
}

/// CPU seconds process `pid` has used so far (utime + stime of
/// /proc/PID/stat, in USER_HZ = 100 ticks a second).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

/// `ctl ARGS`, asserted to succeed.
fn ctl_ok(socket: &Path, args: &[&str], run: &LiveRun) -> String {
    let out = ctl(socket, args);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        run.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn worker(report: &Value) -> &Value {
    &report["workers"][0]
}

#[test]
fn a_sleeping_bridge_forwards_answers_reloads_and_stops() {
    let needs = [Need::Root, Need::Command("ip"), Need::Command("ping")];
    if !testkit::require(
        "a_sleeping_bridge_forwards_answers_reloads_and_stops",
        &needs,
    ) {
        return;
    }
    let _lock = TESTBED.lock().unwrap_or_else(|e| e.into_inner());
    let _bed = bridge_up();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let fdb = format!(
        "elements.br.table_file={}",
        dir.path().join("fdb").display()
    );
    let args = [
        "--control".to_string(),
        socket.display().to_string(),
        "--set".to_string(),
        fdb,
    ];
    let mut run = LiveRun::start("configs/bridge.toml", &args, dir.path().join("nf.log"));
    let log = || std::fs::read_to_string(dir.path().join("nf.log")).unwrap_or_default();

    // Frames wake it: both ways through the bridge.
    ping("hpnf-h1", "10.0.0.2", 5, &log);
    ping("hpnf-h2", "10.0.0.1", 5, &log);

    // Idle: the NF's CPU time stays far below the wall time (a spinning
    // worker uses a whole core; a loaded machine gives it less, never more).
    let (cpu0, t0) = (cpu_secs(run.id()), Instant::now());
    thread::sleep(Duration::from_secs(3));
    let cpu = cpu_secs(run.id()) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    assert!(
        cpu < 0.25 * wall,
        "idle NF used {cpu:.2} s CPU in {wall:.2} s"
    );

    // Requests and a reload are answered while it sleeps.
    let stats = ctl_ok(&socket, &["stats"], &run);
    assert!(stats.contains("br"), "{stats}");
    ctl_ok(&socket, &["reload"], &run);
    ping("hpnf-h1", "10.0.0.2", 3, &log);

    let r = run.next_report();
    let w = worker(&r);
    assert!(w["sleeps"].as_u64().unwrap() > 0, "{w}");
    assert!(w["sleep_secs"].as_f64().unwrap() > 1.0, "{w}");
    // SIGTERM while asleep: a clean end.
    let last = run.stop();
    assert!(worker(&last)["finished"].as_bool().unwrap(), "{last}");
}

#[test]
fn a_spinning_bridge_never_sleeps() {
    let needs = [Need::Root, Need::Command("ip"), Need::Command("ping")];
    if !testkit::require("a_spinning_bridge_never_sleeps", &needs) {
        return;
    }
    let _lock = TESTBED.lock().unwrap_or_else(|e| e.into_inner());
    let _bed = bridge_up();
    let dir = tempfile::tempdir().unwrap();
    let fdb = format!(
        "elements.br.table_file={}",
        dir.path().join("fdb").display()
    );
    let args = ["--set", "runtime.idle=spin", "--set", &fdb].map(String::from);
    let mut run = LiveRun::start("configs/bridge.toml", &args, dir.path().join("nf.log"));
    let log = || std::fs::read_to_string(dir.path().join("nf.log")).unwrap_or_default();
    ping("hpnf-h1", "10.0.0.2", 3, &log);
    let last = run.stop();
    let w = worker(&last);
    assert_eq!(w["sleeps"].as_u64(), Some(0), "{w}");
    assert!(w["idle_polls"].as_u64().unwrap() > 0, "{w}");
}
