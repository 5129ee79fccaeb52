//! Live tests of `hpio-nf pktgen` and `hpio-nf dump` over veth pairs.
//!
//! Each test makes its own network namespace and veth pair (names unique
//! to the test and the process), with one end in the namespace, and removes
//! them on drop, even when the test fails. The receiving tool runs inside
//! the namespace (`ip netns exec`), pktgen sends from the host end. IPv6 is
//! off on both ends, so the kernel sends nothing on the pair by itself, and
//! the frames pktgen sends (to a broadcast MAC, for an address nobody
//! holds) draw no reply: what the receiver counts is exactly what was sent.
//!
//! They need root (namespaces, AF_PACKET) and `ip`; the dump tests also
//! `tcpdump`. Without them they are skipped with a `SKIPPED:` line, or fail
//! under `HPIO_NF_REQUIRE_ALL=1` (testkit). The error tests need neither.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use common::{hpio_nf, root};
use testkit::net::{self, Netns, Veth};
use testkit::Need;

/// Skips the calling test (returns `true`) when it cannot run here: no
/// root, no `ip`, or (`tcpdump`) no tcpdump. Under `HPIO_NF_REQUIRE_ALL=1`
/// that is a failure instead (see the testkit crate).
fn skip(test: &str, tcpdump: bool) -> bool {
    let mut needs = vec![Need::Root, Need::Command("ip")];
    if tcpdump {
        needs.push(Need::Command("tcpdump"));
    }
    !testkit::require(test, &needs)
}

/// A namespace and a veth pair: `veth.a` stays here, `veth.b` lives in
/// `ns`. Both are deleted on drop (the pair first).
struct Pair {
    veth: Veth,
    ns: Netns,
}

impl Pair {
    /// A pair named after `tag` (at most 4 characters), both ends up.
    fn new(tag: &str) -> Pair {
        assert!(tag.len() <= 4);
        let ns = Netns::new(&net::unique("hnt", tag, ""));
        let veth = Veth::with_b_in(
            &net::unique("ht", tag, "a"),
            &net::unique("ht", tag, "b"),
            &ns,
        )
        .up();
        Pair { veth, ns }
    }

    /// `hpio-nf ARGS` inside the namespace.
    fn hpio_nf_in_ns(&self, args: &[&str]) -> Command {
        let mut c = self.ns.exec(&[env!("CARGO_BIN_EXE_hpio-nf")]);
        c.args(args).current_dir(root()).env("RUST_LOG", "warn");
        c
    }
}

/// A tool running in the background; killed on drop if still running.
struct Background {
    child: Child,
    stderr: Receiver<String>,
}

impl Background {
    /// Starts `cmd` and waits until it prints a line containing `ready`
    /// on stderr (it has opened its port).
    fn start(mut cmd: Command, ready: &str) -> Background {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hpio-nf");
        let (tx, rx) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let bg = Background { child, stderr: rx };
        let mut seen = Vec::new();
        loop {
            match bg.stderr.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains(ready) => break,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no `{ready}` line; stderr so far: {seen:?}"),
            }
        }
        bg
    }

    /// Waits for the tool to end: its status, stdout and the rest of stderr.
    fn finish(mut self) -> (bool, String, String) {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut out, &mut stdout).unwrap();
        }
        let ok = self.child.wait().unwrap().success();
        let stderr: Vec<String> = self.stderr.iter().collect();
        (ok, stdout, stderr.join("\n"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd`, asserts success, returns stdout.
fn run_ok(cmd: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run");
    let (out, err) = (
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr),
    );
    assert!(status.success(), "{cmd:?} failed:\n{err}\n{out}");
    out.into_owned()
}

/// The `"event": "summary"` object of pktgen's JSON output.
fn summary(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"))
}

/// `pktgen ARGS --json` on the host end of `pair`; returns its summary.
fn send(pair: &Pair, args: &[&str]) -> serde_json::Value {
    let s = summary(&run_ok(
        hpio_nf()
            .args(["pktgen", "-i", &pair.veth.a, "--json"])
            .args(args),
    ));
    assert_eq!(s["mode"], "tx");
    assert_eq!(s["drops"], 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
    s
}

#[test]
fn pktgen_rx_counts_exactly_what_pktgen_sent() {
    if skip("pktgen_rx_counts_exactly_what_pktgen_sent", false) {
        return;
    }
    let pair = Pair::new("cnt");
    let rx = Background::start(
        pair.hpio_nf_in_ns(&[
            "pktgen",
            "--rx",
            "-i",
            &pair.veth.b,
            "--duration",
            "3s",
            "--json",
        ]),
        "pktgen: counting frames",
    );
    // 2000 frames at 20 kpps (20 every millisecond).
    let tx = send(
        &pair,
        &["-n", "2000", "-b", "20", "--interval", "1ms", "-l", "100"],
    );
    assert_eq!(tx["packets"], 2000);
    assert_eq!(tx["bytes"], 200_000);
    assert_eq!(tx["driver"], "af_packet", "auto picks af_packet here");
    assert!(
        tx["seconds"].as_f64().unwrap() > 0.09,
        "the interval paces the batches: {tx}"
    );
    let (ok, out, err) = rx.finish();
    assert!(ok, "{err}");
    let s = summary(&out);
    assert_eq!(s["mode"], "rx");
    assert_eq!(s["packets"], 2000, "{s}");
    assert_eq!(s["bytes"], 200_000);
    assert_eq!(s["drops"], 0);
    // One line a second before the summary.
    let intervals = out
        .lines()
        .filter(|l| l.contains("\"event\":\"interval\""))
        .count();
    assert!((2..=3).contains(&intervals), "{out}");
}

#[test]
fn pktgen_threads_split_the_count_and_rx_threads_share_queues() {
    if skip(
        "pktgen_threads_split_the_count_and_rx_threads_share_queues",
        false,
    ) {
        return;
    }
    let pair = Pair::new("thr");
    // Two receive threads, each with one queue of a fanout group.
    let rx = Background::start(
        pair.hpio_nf_in_ns(&[
            "pktgen",
            "--rx",
            "-i",
            &pair.veth.b,
            "-t",
            "2",
            "--cores",
            "0,0",
            "--duration",
            "3s",
            "--json",
            "--filter",
            "udp and dst port 9",
        ]),
        "pktgen: counting frames",
    );
    // Odd count, two threads, 64 flows (source ports).
    let tx = send(
        &pair,
        &[
            "-n",
            "1001",
            "-t",
            "2",
            "--cores",
            "0,0",
            "-b",
            "8",
            "--interval",
            "1ms",
            "--src-port",
            "2000-2063",
        ],
    );
    assert_eq!(tx["packets"], 1001);
    let per: Vec<u64> = tx["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["packets"].as_u64().unwrap())
        .collect();
    assert_eq!(per, [501, 500]);
    let (ok, out, err) = rx.finish();
    assert!(ok, "{err}");
    let s = summary(&out);
    assert_eq!(s["packets"], 1001, "{s}");
    assert_eq!(s["threads"].as_array().unwrap().len(), 2);
}

/// `tcpdump -nn -e -r FILE` lines.
fn tcpdump(file: &std::path::Path) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(file)
        .output()
        .expect("run tcpdump");
    assert!(
        out.status.success(),
        "tcpdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn dump_writes_what_pktgen_sent_and_tcpdump_reads_it() {
    if skip("dump_writes_what_pktgen_sent_and_tcpdump_reads_it", true) {
        return;
    }
    let pair = Pair::new("dmp");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cap.pcap");
    let dump = Background::start(
        pair.hpio_nf_in_ns(&[
            "dump",
            "-i",
            &pair.veth.b,
            "-w",
            file.to_str().unwrap(),
            "-c",
            "50",
            "--duration",
            "10s",
        ]),
        "dump: capturing",
    );
    send(
        &pair,
        &[
            "-n",
            "50",
            "-b",
            "5",
            "--interval",
            "1ms",
            "-S",
            "02:11:22:33:44:55",
            "-D",
            "02:66:77:88:99:aa",
            "-s",
            "10.7.0.1",
            "-d",
            "10.7.0.2",
            "--src-port",
            "3000-3004",
            "--dst-port",
            "53",
            "-l",
            "100",
        ],
    );
    let (ok, _, err) = dump.finish();
    assert!(ok, "{err}");
    assert!(
        err.contains("dump: 50 frame(s) captured, 50 written to"),
        "{err}"
    );
    let lines = tcpdump(&file);
    assert_eq!(lines.len(), 50, "{lines:#?}");
    let mut ports: BTreeMap<u16, usize> = BTreeMap::new();
    for l in &lines {
        // 12:00:00.000000 02:11:22:33:44:55 > 02:66:77:88:99:aa, ethertype IPv4 (0x0800),
        // length 100: 10.7.0.1.3000 > 10.7.0.2.53: 58 ...
        assert!(
            l.contains("02:11:22:33:44:55 > 02:66:77:88:99:aa, ethertype IPv4"),
            "{l}"
        );
        assert!(l.contains("length 100: 10.7.0.1."), "{l}");
        assert!(l.contains(" > 10.7.0.2.53: "), "{l}");
        let sport = l
            .split("10.7.0.1.")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no source port in {l}"));
        *ports.entry(sport).or_default() += 1;
    }
    assert_eq!(
        ports,
        (3000..3005).map(|p| (p, 10)).collect::<BTreeMap<_, _>>()
    );
}

#[test]
fn dump_filter_keeps_only_matching_frames() {
    if skip("dump_filter_keeps_only_matching_frames", true) {
        return;
    }
    let pair = Pair::new("flt");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v6.pcap");
    // Printed summaries, filter as words after the options.
    let printed = Background::start(
        pair.hpio_nf_in_ns(&[
            "dump",
            "-i",
            &pair.veth.b,
            "--duration",
            "3s",
            "ip6",
            "and",
            "udp",
            "and",
            "src",
            "port",
            "4001",
        ]),
        "dump: capturing",
    );
    // The same filter with --filter, into a file.
    let written = Background::start(
        pair.hpio_nf_in_ns(&[
            "dump",
            "-i",
            &pair.veth.b,
            "--duration",
            "3s",
            "-w",
            file.to_str().unwrap(),
            "--filter",
            "ip6 and udp and src port 4001",
        ]),
        "dump: capturing",
    );
    let ports = ["--src-port", "4000-4003", "-b", "4", "--interval", "1ms"];
    send(&pair, &[&["-n", "20"][..], &ports[..]].concat());
    send(&pair, &[&["-n", "20", "-6"][..], &ports[..]].concat());

    let (ok, out, err) = printed.finish();
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for l in &lines {
        // 1700000000.123456 62 bytes aa:.. > ff:.. IPv6 [fd00::1]:4001 > [fd00::2]:9 UDP
        assert!(
            l.contains(" 62 bytes ") && l.contains("IPv6 [fd00::1]:4001 > [fd00::2]:9 UDP"),
            "{l}"
        );
        let ts: f64 = l.split(' ').next().unwrap().parse().unwrap();
        assert!(ts > 1e9, "seconds since the epoch: {l}");
    }
    assert!(
        err.contains("dump: 5 frame(s) captured, 35 not matching the filter"),
        "{err}"
    );

    let (ok, _, err) = written.finish();
    assert!(ok, "{err}");
    let lines = tcpdump(&file);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("fd00::1.4001 > fd00::2.9: UDP")),
        "{lines:#?}"
    );
}

/// Runs `hpio-nf ARGS`, expects failure, returns stderr.
fn fails(args: &[&str]) -> String {
    let out = hpio_nf().args(args).output().expect("run hpio-nf");
    assert!(!out.status.success(), "hpio-nf {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).trim_end().to_string()
}

#[test]
fn errors_are_one_clear_line() {
    // A missing interface, on either tool and either side.
    for args in [
        &["pktgen", "-i", "hpnf-nosuch0", "-n", "1"][..],
        &["pktgen", "--rx", "-i", "hpnf-nosuch0"][..],
        &["dump", "-i", "hpnf-nosuch0", "-c", "1"][..],
    ] {
        let err = fails(args);
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(
            err.starts_with("error: port `") && err.contains("no interface `hpnf-nosuch0`"),
            "{err}"
        );
    }
    // No interface at all.
    let err = fails(&["pktgen", "-n", "1"]);
    assert!(!err.contains('\n'), "one line: {err}");
    assert_eq!(
        err,
        "error: no interface: give one with -i IFNAME (driver `auto` needs it)"
    );
    // A driver parameter that does not exist, and one of the wrong type.
    let err = fails(&["dump", "-i", "lo", "--param", "queus=2"]);
    assert!(!err.contains('\n') && err.contains("queus"), "{err}");
    let err = fails(&["pktgen", "--rx", "-i", "lo", "--param", "queues=many"]);
    assert!(!err.contains('\n') && err.contains("queues"), "{err}");
    // A bad filter points at the word.
    let err = fails(&["dump", "-i", "lo", "--filter", "tcp and dst prot 80"]);
    assert!(err.starts_with("error: --filter: "), "{err}");
    assert!(err.contains("prot"), "{err}");
}

#[test]
fn pktgen_and_dump_work_on_files_too() {
    // The tools take any driver: pcap files stand in for interfaces.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sent.pcap");
    let out = run_ok(hpio_nf().args([
        "pktgen",
        "--driver",
        "pcap",
        "--param",
        &format!("output={}", file.display()),
        "-n",
        "12",
        "-s",
        "10.0.0.1-10.0.0.3",
        "--json",
    ]));
    assert_eq!(summary(&out)["packets"], 12);
    let dumped = run_ok(hpio_nf().args([
        "dump",
        "--driver",
        "pcap",
        "--param",
        &format!("input={}", file.display()),
        "src host 10.0.0.2",
    ]));
    assert_eq!(dumped.lines().count(), 4, "{dumped}");
    let counted = summary(&run_ok(hpio_nf().args([
        "pktgen",
        "--rx",
        "--driver",
        "pcap",
        "--param",
        &format!("input={}", file.display()),
        "--json",
    ])));
    assert_eq!(counted["packets"], 12);
    assert_eq!(counted["bytes"], 12 * 60);
}

/// `hpio-nf run CONFIG` on the host with ports `a` and `b` on `a` and `b`,
/// started once both ports are open; stopped (SIGTERM) by [`Forwarder::stop`]
/// or killed on drop.
struct Forwarder(Background);

impl Forwarder {
    fn start(config: &str, a: &str, b: &str) -> Forwarder {
        let mut cmd = hpio_nf();
        cmd.args(["run", config, "--json", "--set"])
            .arg(format!("ports.a.interface={a}"))
            .arg("--set")
            .arg(format!("ports.b.interface={b}"))
            .env("RUST_LOG", "info");
        Forwarder(Background::start(cmd, "port b: driver"))
    }

    /// Stops the run and returns its final report.
    fn stop(self) -> serde_json::Value {
        let pid = self.0.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let (ok, out, err) = self.0.finish();
        assert!(ok, "{err}");
        serde_json::from_str(out.lines().last().expect("a report")).expect("JSON report")
    }
}

/// Packets port `port` of a run report received (`side` "rx") or sent ("tx").
fn port_count(report: &serde_json::Value, port: &str, side: &str) -> u64 {
    report["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| p[side]["packets"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no port {port} in {report}"))
}

/// `pktgen --rx` on the namespace end of `pair` for `secs`.
fn counter(pair: &Pair, secs: &str) -> Background {
    Background::start(
        pair.hpio_nf_in_ns(&[
            "pktgen",
            "--rx",
            "-i",
            &pair.veth.b,
            "--duration",
            secs,
            "--json",
        ]),
        "pktgen: counting frames",
    )
}

/// The packets a [`counter`] counted.
fn counted(rx: Background) -> u64 {
    let (ok, out, err) = rx.finish();
    assert!(ok, "{err}");
    summary(&out)["packets"].as_u64().unwrap()
}

/// `pktgen -n COUNT` from the namespace end of `pair`.
fn send_from_ns(pair: &Pair, count: u64) {
    let s = summary(&run_ok(&mut pair.hpio_nf_in_ns(&[
        "pktgen",
        "-i",
        &pair.veth.b,
        "--json",
        "-n",
        &count.to_string(),
        "-b",
        "10",
        "--interval",
        "1ms",
    ])));
    assert_eq!(s["packets"], count);
    assert_eq!(s["drops"], 0);
}

#[test]
fn pipe_forwards_a_to_b_only() {
    if skip("pipe_forwards_a_to_b_only", false) {
        return;
    }
    let (left, right) = (Pair::new("pia"), Pair::new("pib"));
    let pipe = Forwarder::start("configs/pipe.toml", &left.veth.a, &right.veth.a);
    let (rx_left, rx_right) = (counter(&left, "3s"), counter(&right, "3s"));
    send_from_ns(&left, 700);
    send_from_ns(&right, 300);
    assert_eq!(counted(rx_right), 700, "a -> b");
    assert_eq!(counted(rx_left), 0, "nothing from b to a");
    let report = pipe.stop();
    assert_eq!(port_count(&report, "a", "rx"), 700, "{report}");
    assert_eq!(port_count(&report, "b", "tx"), 700, "{report}");
    assert_eq!(port_count(&report, "a", "tx"), 0, "{report}");
}

#[test]
fn hub_forwards_both_ways() {
    if skip("hub_forwards_both_ways", false) {
        return;
    }
    let (left, right) = (Pair::new("hua"), Pair::new("hub"));
    let hub = Forwarder::start("configs/hub.toml", &left.veth.a, &right.veth.a);
    let (rx_left, rx_right) = (counter(&left, "3s"), counter(&right, "3s"));
    send_from_ns(&left, 400);
    send_from_ns(&right, 250);
    assert_eq!(counted(rx_right), 400, "a -> b");
    assert_eq!(counted(rx_left), 250, "b -> a");
    let report = hub.stop();
    assert_eq!(port_count(&report, "a", "tx"), 250, "{report}");
    assert_eq!(port_count(&report, "b", "tx"), 400, "{report}");
}
