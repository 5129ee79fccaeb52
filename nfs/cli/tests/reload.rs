//! Hot reload through the command line: `hpio-nf ctl reload [CONFIG]` on
//! the control socket and SIGHUP, over an endless in-memory generator (no
//! root needed).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::ctl;
use serde_json::Value;

const BASE: &str = r#"connections = ["g -> count -> g"]

[ports.g]
driver = "generator"
size = 64

[elements.count]
class = "Counter"
"#;

/// `BASE` with a second counter after the first.
fn two_counters() -> String {
    BASE.replace("count -> g\"", "count -> c2 -> g\"") + "\n[elements.c2]\nclass = \"Counter\"\n"
}

/// A run of `config` serving its control socket `sock`; killed when dropped.
struct Run {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Run {
    fn start(config: &Path, sock: &Path) -> Run {
        let log = config.with_extension("log");
        let child = common::hpio_nf()
            .env("RUST_LOG", "info")
            .arg("run")
            .arg(config)
            .arg("--json")
            .arg("--control")
            .arg(sock)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start hpio-nf run");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "no control socket");
            thread::sleep(Duration::from_millis(20));
        }
        Run {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Stops the run (SIGTERM) and returns its final report.
    fn stop(mut self) -> Value {
        self.signal("-TERM");
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        assert!(out.status.success(), "{}", self.log());
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn packets_in(report: &Value, element: &str) -> u64 {
    common::element(report, element)["packets_in"]
        .as_u64()
        .unwrap()
}

#[test]
fn ctl_reload_swaps_the_graph_keeping_state_and_refuses_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    let (config, other, sock) = (
        dir.path().join("gen.toml"),
        dir.path().join("two.toml"),
        dir.path().join("gen.sock"),
    );
    std::fs::write(&config, BASE).unwrap();
    std::fs::write(&other, two_counters()).unwrap();
    let run = Run::start(&config, &sock);
    thread::sleep(Duration::from_millis(300));

    // Another config: count keeps its state, c2 is new.
    let out = ctl(&sock, &["reload", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("elements kept with state  count"),
        "{summary}"
    );
    assert!(
        summary.contains("elements added            c2"),
        "{summary}"
    );
    assert!(summary.contains("ports kept                g"), "{summary}");
    let out = ctl(&sock, &["elements"]);
    assert!(
        text(&out.stdout).contains("c2"),
        "the control socket sees c2"
    );

    // Broken: the error names the file and line; nothing changes.
    std::fs::write(&other, two_counters() + "window = \n").unwrap();
    let out = ctl(&sock, &["--json", "reload"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("two.toml:12:"), "{err}");
    assert!(err.contains("the running graph is untouched"), "{err}");
    // A change of [runtime] is refused: restart needed.
    std::fs::write(&other, two_counters() + "[runtime]\nworkers = 2\n").unwrap();
    let out = ctl(&sock, &["reload"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("workers (1 -> 2)") && err.contains("restart needed"),
        "{err}"
    );

    // SIGHUP re-reads the run's config file: back to one counter.
    std::fs::write(&other, BASE).unwrap();
    run.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.log().contains("elements removed          c2") {
        assert!(
            Instant::now() < deadline,
            "no SIGHUP reload:\n{}",
            run.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let report = run.stop();
    let names: Vec<&str> = report["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["count"]);
    // count's totals ran through every reload: it saw every packet sent.
    let sent = report["ports"][0]["tx"]["packets"].as_u64().unwrap();
    assert_eq!(packets_in(&report, "count"), sent);
    let custom = &common::element(&report, "count")["custom"];
    assert_eq!(custom[0][0], "packets");
    assert_eq!(
        custom[0][1].as_u64().unwrap(),
        sent,
        "Counter kept its total"
    );
}
