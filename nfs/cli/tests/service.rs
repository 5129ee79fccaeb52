//! Running as a service: `--metrics` scraped by promtool and by a real
//! Prometheus server, readiness notification to systemd, and the unit file.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{hpio_nf, root};
use testkit::Need;

/// An endless generator through Classify and Counter into Discard, one
/// worker (so that one snapshot holds every counter at one instant).
const CONFIG: &str = r#"
connections = ["gen -> fw", "fw[0] -> cnt", "fw[1] -> discard", "cnt -> discard"]

[runtime]
workers = 1

[ports.gen]
driver = "generator"

[elements.fw]
class = "Classify"
rules = ["udp -> 0"]
default = 1

[elements.cnt]
class = "Counter"
"#;

/// A child process killed (SIGKILL) if the test ends before it does.
struct Proc(Option<Child>);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// SIGTERM, then the exit status and standard output.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let out = self.0.take().unwrap().wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over a plain TCP connection (HTTP/1.0): status, headers, body.
fn http_get(port: u16, path: &str, accept: Option<&str>) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{accept}\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// Retries `http_get` until it answers 200 (or 20 s pass).
fn get_ok(port: u16, path: &str, accept: Option<&str>) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match http_get(port, path, accept) {
            Ok((200, head, body)) => return (head, body),
            r if Instant::now() > deadline => panic!("GET {path} on port {port}: {r:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The value of the sample `series` (name and labels) in exposition text.
fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{series} ")))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Writes the config into `dir` and starts `hpio-nf run` on it with `args`.
fn start_run(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Proc {
    let cfg = dir.join("gen.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let mut cmd = hpio_nf();
    // No control socket: the tests run side by side on configs of one name.
    cmd.arg("run").arg(&cfg).arg("--no-control").args(args);
    cmd.stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(Some(cmd.spawn().unwrap()))
}

fn final_report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON")
}

#[test]
fn metrics_pass_promtool_and_agree_with_the_report() {
    if !testkit::require(
        "metrics_promtool",
        &[Need::Command("promtool"), Need::Command("kill")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let run = start_run(dir.path(), &["--metrics", &addr, "--json"], &[]);
    // Let the counters move, then scrape as promtool's users do (no Accept).
    get_ok(port, "/metrics", None);
    std::thread::sleep(Duration::from_millis(300));
    let (head, text) = get_ok(port, "/metrics", None);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = promtool.wait_with_output().unwrap();
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    // One worker, one snapshot: the counters agree with each other.
    let rx = sample(&text, r#"hpio_nf_port_rx_packets_total{port="gen"}"#);
    assert!(rx > 0.0);
    assert_eq!(
        rx * 64.0,
        sample(&text, r#"hpio_nf_port_rx_bytes_total{port="gen"}"#)
    );
    for el in ["fw", "cnt", "discard"] {
        let series = format!(r#"hpio_nf_element_packets_in_total{{element="{el}"}}"#);
        assert_eq!(sample(&text, &series), rx, "{series}");
    }
    assert_eq!(
        sample(
            &text,
            r#"hpio_nf_element_stat{element="cnt",stat="packets"}"#
        ),
        rx
    );
    let busy = sample(&text, r#"hpio_nf_worker_busy_seconds_total{worker="0"}"#);
    assert!(busy > 0.0);
    // What Prometheus asks for: OpenMetrics, the same samples.
    let (head, om) = get_ok(
        port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    );
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE hpio_nf_port_rx_packets counter\n"));
    assert!(sample(&om, r#"hpio_nf_port_rx_packets_total{port="gen"}"#) >= rx);
    // Other paths: 404.
    let (status, _, _) = http_get(port, "/", None).unwrap();
    assert_eq!(status, 404);
    // The final report counts at least what was scraped, and the metrics
    // server went away with the run.
    let (status, stdout) = run.terminate();
    assert!(status.success(), "{status:?}");
    let report = final_report(&stdout);
    assert!(report["ports"][0]["rx"]["packets"].as_f64().unwrap() >= rx);
    assert!(report["workers"][0]["busy_secs"].as_f64().unwrap() >= busy);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn metrics_on_a_busy_address_stop_the_run_before_it_starts() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = hpio_nf()
        .args(["run", "configs/filter.toml", "--metrics", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    let out = hpio_nf()
        .args(["run", "configs/filter.toml", "--metrics", "localhost:x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ADDR:PORT"));
}

/// Percent-encodes a PromQL query for a URL.
fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asks Prometheus for `query` until it has a sample (or 30 s pass).
fn prom_query(port: u16, query: &str) -> f64 {
    let path = format!("/api/v1/query?query={}", url_encode(query));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _, body)) = http_get(port, &path, None) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            if let Some(s) = v["data"]["result"][0]["value"][1].as_str() {
                return s.parse().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "Prometheus has no `{query}`");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_prometheus_server_scrapes_a_running_hpio_nf() {
    if !testkit::require(
        "metrics_prometheus",
        &[Need::Command("prometheus"), Need::Command("kill")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (metrics, prom) = (free_port(), free_port());
    let run = start_run(
        dir.path(),
        &["--metrics", &format!("127.0.0.1:{metrics}"), "--json"],
        &[],
    );
    let yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: hpio-nf\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n"
        ),
    )
    .unwrap();
    let server = Proc(Some(
        Command::new("prometheus")
            .arg(format!("--config.file={}", yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let rx = prom_query(
        prom,
        r#"hpio_nf_port_rx_packets_total{port="gen",job="hpio-nf"}"#,
    );
    assert!(rx > 0.0, "{rx}");
    // One scrape holds one snapshot: the graph's first element saw exactly
    // what the port received.
    let diff = prom_query(
        prom,
        r#"hpio_nf_port_rx_packets_total{port="gen"} - ignoring(port, element) hpio_nf_element_packets_in_total{element="fw"}"#,
    );
    assert_eq!(diff, 0.0);
    assert_eq!(prom_query(prom, r#"up{job="hpio-nf"}"#), 1.0);
    assert!(prom_query(prom, r#"hpio_nf_worker_busy_seconds_total{worker="0"}"#) > 0.0);
    drop(server);
    let (status, stdout) = run.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        final_report(&stdout)["ports"][0]["rx"]["packets"]
            .as_f64()
            .unwrap()
            >= rx
    );
}

/// Reads datagrams from `sock` until one contains `what` (10 s at most).
fn wait_for(sock: &UnixDatagram, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "no {what} arrived");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == what) {
                return msg;
            }
        }
    }
}

#[test]
fn the_run_tells_systemd_it_is_ready_and_stopping() {
    if !testkit::require("sd_notify", &[Need::Command("kill")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let run = start_run(dir.path(), &["--json"], &[("NOTIFY_SOCKET", &path)]);
    let ready = wait_for(&sock, "READY=1");
    assert!(ready.contains("STATUS=running "), "{ready}");
    std::thread::sleep(Duration::from_millis(300));
    let (status, stdout) = run.terminate();
    wait_for(&sock, "STOPPING=1");
    assert!(status.success(), "{status:?}");
    // The run was up: its workers had packets.
    assert!(
        final_report(&stdout)["ports"][0]["rx"]["packets"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    if !testkit::require("systemd_unit", &[Need::Command("systemd-analyze")]) {
        return;
    }
    // verify checks that ExecStart's binary exists: a copy of the unit runs
    // the binary under test, under an instance name as systemctl would.
    let unit = std::fs::read_to_string(root().join("packaging/hpio-nf@.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/hpio-nf run /etc/hpio-nf/%i.toml"));
    assert!(unit.contains("Type=notify"));
    let unit = unit.replace("/usr/local/bin/hpio-nf", env!("CARGO_BIN_EXE_hpio-nf"));
    let dir = tempfile::tempdir().unwrap();
    for name in ["hpio-nf@.service", "hpio-nf@demo.service"] {
        let path = dir.path().join(name);
        std::fs::write(&path, &unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{name}: {said}"
        );
    }
}
