//! The control socket and `hpio-nf ctl`, without root: a run over an
//! endless generator serves a socket in a temporary directory; `ctl` (and
//! curl) ask it; the socket's claim rules (one live run per path, a stale
//! socket reclaimed, mode 0600, removed at exit) hold.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::ctl;
use serde_json::Value;
use testkit::Need;

/// An endless generator through a Counter and a Firewall, one worker.
const CONFIG: &str = r#"
connections = ["gen -> c", "c -> fw", "fw[0] -> discard", "fw[1] -> discard"]

[runtime]
workers = 1

[ports.gen]
driver = "generator"
size = 64
proto = "tcp"

[elements.c]
class = "Counter"

[elements.fw]
class = "Firewall"
rules = [
  { from = "inside", match = "tcp and dst port 80", action = "allow" },
  { match = "any", action = "deny", name = "default deny" },
]
"#;

/// A run serving its control socket; killed on drop.
struct Served {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts `hpio-nf run` over [`CONFIG`] with `--control` in a fresh
    /// directory and waits until the socket answers with counted packets
    /// (the workers publish their counters every 100 ms).
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gen.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let socket = dir.path().join("ctl.sock");
        let child = run(&config, &socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut served = Served {
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let counted = |out: Output| {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            out.status.success() && v["ports"][0]["rx_packets"].as_u64() > Some(0)
        };
        while !counted(served.ctl(&["stats", "--json"])) {
            if let Some(st) = served.child.try_wait().unwrap() {
                let out = served.child.stderr.take().map(read_all).unwrap_or_default();
                panic!("hpio-nf run exited ({st}): {out}");
            }
            assert!(Instant::now() < deadline, "the socket never answered");
            thread::sleep(Duration::from_millis(100));
        }
        served
    }

    fn ctl(&self, args: &[&str]) -> Output {
        ctl(&self.socket, args)
    }

    /// `ctl ARGS --json`, asserted to succeed, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ctl(&all);
        assert!(out.status.success(), "ctl {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("--json prints JSON")
    }

    /// `ctl ARGS` that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(!out.status.success(), "ctl {args:?} should fail");
        stderr(&out)
    }

    /// SIGTERM, and the run's exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

fn run(config: &Path, socket: &Path) -> Command {
    let mut c = common::hpio_nf();
    c.arg("run").arg(config).arg("--control").arg(socket);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn stats_elements_ports_and_handlers_round_trip() {
    let run = Served::start();
    let mode = std::fs::metadata(&run.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");

    let stats = run.json(&["stats"]);
    assert_eq!(stats["ports"][0]["port"], "gen");
    assert!(stats["ports"][0]["rx_packets"].as_u64().unwrap() > 0);
    assert!(stats["interval_secs"].as_f64().unwrap() > 0.0);
    assert_eq!(stats["workers"].as_array().unwrap().len(), 1);
    assert_eq!(stats["elements"][1]["element"], "fw");
    assert!(stats["drops"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["at"] == "fw" && d["reason"] == "denied"));
    let text = stdout(&run.ctl(&["stats"]));
    for part in ["ports:", "elements:", "workers:", "drops:", "rx_pps"] {
        assert!(text.contains(part), "{part} in\n{text}");
    }

    let elements = run.json(&["elements"]);
    assert_eq!(elements[0]["name"], "c");
    assert_eq!(elements[0]["class"], "Counter");
    let names: Vec<&str> = elements[0]["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"count") && names.contains(&"reset"));

    let ports = run.json(&["ports"]);
    assert_eq!(ports[0]["name"], "gen");
    assert_eq!(ports[0]["operstate"], "n/a");
    let port = run.json(&["port", "gen"]);
    assert!(port["rx"]["packets"].as_u64().unwrap() > 0);
    assert!(run
        .fails(&["port", "nope"])
        .contains("no port `nope` (ports: gen)"));

    // Counter: the count grows; reset brings it back near zero.
    let n = run.json(&["read", "c", "count"]).as_u64().unwrap();
    assert!(n > 0);
    assert_eq!(stdout(&run.ctl(&["write", "c", "reset"])), "ok\n");
    assert_eq!(
        stdout(&run.ctl(&["show", "discard"])),
        "(`discard` has no read handlers)\n"
    );
    let shown = run.json(&["show", "c"]);
    assert!(shown["count"].as_u64().unwrap() < n, "{shown}");

    // The firewall's rules, edited while it runs.
    let rules = run.json(&["read", "fw", "rules"]);
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules}");
    let list = run.json(&[
        "write",
        "fw",
        "add",
        r#"{ match = "udp", action = "deny" }"#,
    ]);
    assert_eq!(list[0]["match"], "udp");
    let rules = run.json(&["read", "fw", "rules"]);
    assert_eq!(rules.as_array().unwrap().len(), 3, "{rules}");
    run.json(&["write", "fw", "delete", "2"]);
    assert_eq!(
        run.json(&["read", "fw", "rules"]),
        run.json(&["read", "fw", "rules"])
    );
    let e = run.fails(&["write", "fw", "add", "0 -> 1 tcp and dst port eighty allow"]);
    assert!(e.contains("fw.add:"), "{e}");
    let e = run.fails(&["write", "fw", "delete", "9"]);
    assert!(e.contains("fw.delete:"), "{e}");

    // Errors: a non-zero exit and the server's message.
    let e = run.fails(&["read", "cc", "count"]);
    assert!(e.contains("no element `cc` (did you mean `c`?)"), "{e}");
    let e = run.fails(&["read", "c", "nope"]);
    assert!(
        e.contains("has no read handler `nope`; it has: count"),
        "{e}"
    );
    let e = run.fails(&["show", "zzzzzz"]);
    assert!(
        e.contains("no element `zzzzzz` (elements: c, fw, discard)"),
        "{e}"
    );

    let status = run.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn curl_speaks_to_the_socket() {
    if !testkit::require("curl_speaks_to_the_socket", &[Need::Command("curl")]) {
        return;
    }
    let run = Served::start();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "--unix-socket"])
            .arg(&run.socket)
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).expect("curl gets JSON")
    };
    assert!(curl(&["http://localhost/stats"])["ports"][0]["rx_packets"].as_u64() > Some(0));
    assert!(curl(&["http://localhost/elements/c/count"]).as_u64() > Some(0));
    let w = curl(&["-d", "", "http://localhost/elements/c/reset"]);
    assert!(w.is_number() || w.is_object() || w.is_null(), "{w}");
    let e = curl(&["http://localhost/elements/nope"]);
    assert!(
        e["error"].as_str().unwrap().contains("no element `nope`"),
        "{e}"
    );
    let e = curl(&["http://localhost/nothing"]);
    assert!(e["error"].as_str().unwrap().contains("no route"), "{e}");
}

#[test]
fn a_second_run_is_refused_a_stale_socket_reclaimed_and_the_socket_removed_at_exit() {
    let first = Served::start();
    let config = first.socket.with_file_name("gen.toml");
    let out = run(&config, &first.socket).output().unwrap();
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("another hpio-nf serves"), "{e}");
    // The first still answers.
    assert!(first.ctl(&["stats"]).status.success());
    let socket = first.socket.clone();
    let dir = socket.parent().unwrap().to_path_buf();
    let keep = tempfile::tempdir().unwrap();
    std::fs::copy(&config, keep.path().join("gen.toml")).unwrap();
    assert!(first.stop().success());
    assert!(!socket.exists(), "the socket is removed at exit");
    drop(dir);

    // A socket nobody answers on (its run was killed): reclaimed.
    let stale = keep.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut child = run(&keep.path().join("gen.toml"), &stale)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ctl(&stale, &["stats"]).status.success() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run refused a stale socket"
        );
        assert!(
            Instant::now() < deadline,
            "the reclaimed socket never answered"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn ctl_without_a_run_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = ctl(&dir.path().join("none.sock"), &["stats"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is `hpio-nf run` serving it?"),
        "{}",
        stderr(&out)
    );
}
