//! `hpio-nf ctl tap` and `ctl trace` on a running config: a generator's
//! packets through a Classify, tapped into `tcpdump -r -` and traced.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hpio_nf;

/// An endless generator cycling over destination ports 1000..=1003; the
/// Classify sends port 1001 to `cnt` (output 1), the rest to `discard`.
const CONFIG: &str = r#"
connections = ["gen -> cls", "cls[0] -> discard", "cls[1] -> cnt -> discard"]

[ports.gen]
driver = "generator"
dst_ip = "10.9.0.2"
dst_port = 1000
dst_port_count = 4

[elements.cls]
class = "Classify"
rules = ["udp and dst port 1001 -> 1"]
default = 0

[elements.cnt]
class = "Counter"

[elements.discard]
class = "Discard"
"#;

/// A run serving its control socket; stopped when dropped.
struct Run {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn start() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gen.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let socket = dir.path().join("gen.sock");
        let child = hpio_nf()
            .arg("run")
            .arg(&config)
            .arg("--control")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("starts hpio-nf run");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no control socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Run {
            child,
            socket,
            _dir: dir,
        }
    }

    fn ctl(&self) -> Command {
        let mut c = hpio_nf();
        c.arg("ctl").arg("--socket").arg(&self.socket);
        c
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn ctl_tap_streams_an_edge_into_tcpdump() {
    if !testkit::require(
        "ctl_tap_streams_an_edge_into_tcpdump",
        &[
            testkit::Need::Command("tcpdump"),
            testkit::Need::Command("sh"),
        ],
    ) {
        return;
    }
    let run = Run::start();
    let hpio = env!("CARGO_BIN_EXE_hpio-nf");
    let sock = run.socket.display();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{hpio}' ctl --socket '{sock}' tap 'cls[1]' -c 5 -w - | tcpdump -nn -r - 2>&1"
        ))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("runs the pipe");
    let shown = text(&out.stdout);
    let lines: Vec<&str> = shown.lines().filter(|l| l.contains(" IP ")).collect();
    assert_eq!(lines.len(), 5, "five packets read by tcpdump:\n{shown}");
    assert!(
        lines.iter().all(|l| l.contains("> 10.9.0.2.1001: UDP")),
        "only the edge's packets:\n{shown}"
    );
    // The count of copies and lost copies comes on standard error.
    let out = run
        .ctl()
        .args([
            "tap",
            "-c",
            "3",
            "--filter",
            "udp and dst port 1002",
            "cls[0] -> discard",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.lines().all(|l| l.contains(":1002 UDP")), "{lines}");
    let err = text(&out.stderr);
    assert!(
        err.contains("tap cls[0] -> discard: ") && err.contains(" lost"),
        "{err}"
    );
    // An edge that does not exist is named.
    let out = run.ctl().args(["tap", "cls[0] -> cnt"]).output().unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("`cls[0]` goes to `discard`, not to `cnt`"),
        "{err}"
    );
}

#[test]
fn ctl_trace_follows_the_next_packets() {
    let run = Run::start();
    let out = run
        .ctl()
        .args(["trace", "-c", "2", "udp", "and", "dst", "port", "1001"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("trace: 2 of 2 packet(s) followed\n"),
        "{shown}"
    );
    let path = "  [0]cls (Classify)\n      rule 0: udp and dst port 1001 -> 1\n    \
                -> output 1 -> cnt\n  [0]cnt (Counter)\n    -> output 0 -> discard\n  \
                [0]discard (Discard)\n    -> consumed by discard\n";
    assert_eq!(shown.matches(path).count(), 2, "{shown}");
    let out = run
        .ctl()
        .args(["--json", "trace", "--wait", "1", "tcp"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["asked"], 1);
    assert_eq!(v["traces"], serde_json::json!([]), "no TCP within the wait");
}
