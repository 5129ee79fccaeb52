//! `hpio-nf ctl` against the shipped bridge and firewall running between
//! real namespaces (`hpio-nf testbed`): the bridge's table and flush, the
//! firewall's flows, a rule added and deleted while traffic runs, a flow
//! killed.
//!
//! Needs root, `ip`, `ping` and `python3` (testkit: skipped, or failed
//! under `HPIO_NF_REQUIRE_ALL=1`). The testbed has fixed names: the tests
//! take a lock and run one at a time, and a guard removes the testbed and
//! stops what they started even when a test fails.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::MutexGuard;
use std::thread;
use std::time::{Duration, Instant};

use common::ctl;
use common::live::{self, mac_of, ns, ping_ok, ping_until_answered, Live};
use serde_json::Value;
use testkit::Need;

fn setup(test: &str) -> Option<MutexGuard<'static, ()>> {
    live::setup(test, &[Need::Command("python3")])
}

/// The NF's control socket, in the test's temporary directory.
const SOCKET: &str = "ctl.sock";

/// Builds the testbed `topology` and runs `config` on it serving the
/// control socket; returns once the socket answers.
fn start(topology: &'static str, config: &str) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let args = vec![
        "--control".to_string(),
        dir.path().join(SOCKET).display().to_string(),
    ];
    let live = Live::start_args(dir, topology, config, args);
    eventually(
        || format!("no socket: {}", live.log()),
        || ctl(&live.socket(), &["stats"]).status.success(),
    );
    live
}

impl Live {
    fn socket(&self) -> PathBuf {
        self.dir.path().join(SOCKET)
    }

    /// `ctl ARGS --json`, asserted to succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = ctl(&self.socket(), &all);
        assert!(
            out.status.success(),
            "ctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs python3 `script` in `netns` in the background.
    fn background(&mut self, netns: &str, script: &str) {
        let child = ns(netns, &["python3", "-c", script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.helpers.push(Some(child));
    }
}

/// Polls `f` for up to 20 s; `what` says what was awaited and what was seen.
fn eventually(what: impl Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "{}", what());
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ctl_reads_and_flushes_the_bridge_table() {
    let Some(_lock) = setup("ctl_reads_and_flushes_the_bridge_table") else {
        return;
    };
    let live = start("bridge", "configs/bridge.toml");
    ping_until_answered("hpnf-h1", "10.0.0.2", &|| live.log());
    let (h1, h2) = (mac_of("hpnf-h1"), mac_of("hpnf-h2"));
    let table = live.json(&["read", "br", "table"]);
    let has = |mac: &str, port: u64| {
        table
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["mac"] == mac && r["port"] == port && r["age"].as_f64() < Some(60.0))
    };
    assert!(has(&h1, 0) && has(&h2, 1), "{h1} on 0, {h2} on 1: {table}");
    let ports = live.json(&["ports"]);
    assert_eq!(ports[0]["interface"], "hpnf-br0");
    assert_eq!(ports[0]["operstate"], "up", "{ports}");
    assert_eq!(ports[0]["carrier"], "up", "{ports}");

    let flushed = live.json(&["write", "br", "flush"]);
    assert!(flushed["removed"].as_u64() >= Some(2), "{flushed}");
    let table = live.json(&["read", "br", "table"]);
    assert!(
        table.as_array().unwrap().len() <= 2,
        "only what arrived since the flush: {table}"
    );
    // Traffic relearns them.
    ping_until_answered("hpnf-h2", "10.0.0.1", &|| live.log());
    eventually(
        || "relearned".into(),
        || {
            live.json(&["read", "br", "table"])
                .as_array()
                .unwrap()
                .len()
                == 2
        },
    );
}

#[test]
fn ctl_shows_flows_edits_rules_and_kills_flows_of_the_firewall() {
    let Some(_lock) = setup("ctl_shows_flows_edits_rules_and_kills_flows_of_the_firewall") else {
        return;
    };
    let mut live = start("firewall", "configs/firewall.toml");
    ping_until_answered("hpnf-in", "10.0.1.3", &|| live.log());

    // A connection refused (no server yet) leaves a closed flow to the
    // server's address and port, as a slow server start may: the flows
    // below are told apart by their whole tuple.
    let refused = ns(
        "hpnf-in",
        &[
            "python3",
            "-c",
            "import socket\n\
             try: socket.create_connection(('10.0.1.3', 9000), timeout=5)\n\
             except ConnectionRefusedError: print('refused')",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&refused.stdout).trim(), "refused");

    // A TCP connection from the inside, held open.
    live.background(
        "hpnf-out",
        "import socket, time\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', 9000)); s.listen(1); c, _ = s.accept()\n\
         while c.recv(65536): pass\n",
    );
    live.background(
        "hpnf-in",
        "import socket, time\n\
         for _ in range(100):\n\
         \x20   try:\n\
         \x20       c = socket.create_connection(('10.0.1.3', 9000), timeout=5); break\n\
         \x20   except OSError: time.sleep(0.2)\n\
         c.sendall(b'x' * 100000); time.sleep(60)\n",
    );
    // The client too may have been refused while the server came up
    // (slowly, under load): each refused attempt leaves a closed flow to
    // 10.0.1.3:9000 from another source port for `tcp_close` (10 s). The
    // flow is known by its whole tuple, that of the connection that got
    // through.
    let flows_to_server = |live: &Live| {
        let flows = live.json(&["read", "fw", "flows"]);
        let to_server = |f: &&Value| f["proto"] == "tcp" && f["dst"] == "10.0.1.3:9000";
        flows
            .as_array()
            .unwrap()
            .iter()
            .filter(to_server)
            .cloned()
            .collect::<Vec<_>>()
    };
    let what = || {
        format!(
            "no established TCP flow to 10.0.1.3:9000 with its packets: {}\n{}",
            live.json(&["read", "fw", "flows"]),
            live.log()
        )
    };
    let carrying = |f: &Value| {
        f["state"] == "established"
            && f["packets"].as_u64() > Some(10)
            && f["bytes"].as_u64() > Some(100_000)
    };
    eventually(what, || flows_to_server(&live).iter().any(carrying));
    let f = flows_to_server(&live).into_iter().find(carrying).unwrap();
    let flow = |live: &Live| {
        flows_to_server(live)
            .into_iter()
            .find(|g| g["src"] == f["src"])
    };

    // A rule denying ICMP, first: pings fail at once; deleting it restores them.
    let rule = r#"{ from = "inside", match = "icmp", action = "deny", name = "no ping" }"#;
    let rules = live.json(&["write", "fw", "add", rule]);
    assert_eq!(rules[0]["name"], "no ping");
    assert!(
        !ping_ok("hpnf-in", "10.0.1.3", 2, "1"),
        "pings pass a deny rule"
    );
    live.json(&["write", "fw", "delete", "0"]);
    assert!(
        ping_ok("hpnf-in", "10.0.1.3", 3, "2"),
        "pings fail after the delete"
    );
    let rules = live.json(&["read", "fw", "rules"]);
    assert_eq!(rules[0]["name"], "established", "{rules}");

    // Kill the connection's flow: it is gone from the table. (Its packets
    // after the kill cannot bring it back: only a SYN opens a TCP flow, and
    // a segment of a killed connection is refused as invalid.)
    let spec = format!(
        "tcp {} {}",
        f["src"].as_str().unwrap(),
        f["dst"].as_str().unwrap()
    );
    let killed = live.json(&["write", "fw", "kill", &spec]);
    assert_eq!(killed["killed"], 1, "{killed}");
    assert!(
        flow(&live).is_none(),
        "the flow is still listed: {:?}",
        flows_to_server(&live)
    );
    let again = live.json(&["write", "fw", "kill", &spec]);
    assert_eq!(again["killed"], 0);
}
