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
use std::sync::MutexGuard;
use std::thread;
use std::time::{Duration, Instant};

use common::ctl;
use common::live::{self, Live};
use serde_json::Value;

/// The control socket, in the test's temporary directory.
const SOCKET: &str = "ctl.sock";

/// Takes the testbed lock (`None`: test `test` cannot run here), builds
/// the bridge testbed and runs the shipped bridge on it with overrides
/// `set`, serving [`SOCKET`] if `control`; its table file and socket are in
/// the test's temporary directory.
fn start_bridge(
    test: &str,
    control: bool,
    set: &[&str],
) -> Option<(MutexGuard<'static, ()>, Live)> {
    let lock = live::setup(test, &[])?;
    let dir = tempfile::tempdir().unwrap();
    let mut args = Vec::new();
    if control {
        let socket = dir.path().join(SOCKET).display().to_string();
        args.extend(["--control".to_string(), socket]);
    }
    let fdb = dir.path().join("fdb");
    let fdb = format!("elements.br.table_file={}", fdb.display());
    for s in set.iter().copied().chain([fdb.as_str()]) {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    let live = Live::start_args(dir, "bridge", "configs/bridge.toml", args);
    Some((lock, live))
}

/// CPU seconds process `pid` has used so far (utime + stime of
/// /proc/PID/stat, in USER_HZ = 100 ticks a second).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

/// `ctl ARGS`, asserted to succeed.
fn ctl_ok(socket: &Path, args: &[&str], live: &Live) -> String {
    let out = ctl(socket, args);
    assert!(
        out.status.success(),
        "ctl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        live.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn worker(report: &Value) -> &Value {
    &report["workers"][0]
}

#[test]
fn a_sleeping_bridge_forwards_answers_reloads_and_stops() {
    let test = "a_sleeping_bridge_forwards_answers_reloads_and_stops";
    let Some((_lock, mut live)) = start_bridge(test, true, &[]) else {
        return;
    };
    let socket = live.dir.path().join(SOCKET);

    // Frames wake it: both ways through the bridge.
    live.ping("hpnf-h1", "10.0.0.2", 5);
    live.ping("hpnf-h2", "10.0.0.1", 5);

    // Idle: the NF's CPU time stays far below the wall time (a spinning
    // worker uses a whole core; a loaded machine gives it less, never more).
    let (cpu0, t0) = (cpu_secs(live.pid()), Instant::now());
    thread::sleep(Duration::from_secs(3));
    let cpu = cpu_secs(live.pid()) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    assert!(
        cpu < 0.25 * wall,
        "idle NF used {cpu:.2} s CPU in {wall:.2} s"
    );

    // Requests and a reload are answered while it sleeps.
    let stats = ctl_ok(&socket, &["stats"], &live);
    assert!(stats.contains("br"), "{stats}");
    ctl_ok(&socket, &["reload"], &live);
    live.ping("hpnf-h1", "10.0.0.2", 3);

    let r = live.next_report();
    let w = worker(&r);
    assert!(w["sleeps"].as_u64().unwrap() > 0, "{w}");
    assert!(w["sleep_secs"].as_f64().unwrap() > 1.0, "{w}");
    // SIGTERM while asleep: a clean end.
    let last = live.stop();
    assert!(worker(&last)["finished"].as_bool().unwrap(), "{last}");
}

#[test]
fn a_spinning_bridge_never_sleeps() {
    let test = "a_spinning_bridge_never_sleeps";
    let Some((_lock, mut live)) = start_bridge(test, false, &["runtime.idle=spin"]) else {
        return;
    };
    live.ping("hpnf-h1", "10.0.0.2", 3);
    let last = live.stop();
    let w = worker(&last);
    assert_eq!(w["sleeps"].as_u64(), Some(0), "{w}");
    assert!(w["idle_polls"].as_u64().unwrap() > 0, "{w}");
}
