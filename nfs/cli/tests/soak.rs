//! Soak with faults: the shipped bridge (configs/bridge.toml) and firewall
//! (configs/firewall.toml) run live between two network namespaces under
//! `hpio-nf pktgen` load while links flap (the NF's interfaces and their
//! peers), an interface the NF uses is deleted and re-created, the config is
//! reloaded (`hpio-nf ctl reload` and SIGHUP) and an element panics
//! (`PanicOnMark` from nfs/test-plugin, placed before the NF's element, on
//! frames carrying its mark). At the end every frame sent is accounted for:
//! received on the far side (`pktgen --rx`), or in a named drop counter of
//! a port, an element, the runtime or the kernel; the test asserts that the
//! books balance, within the tolerance docs/reliability.md explains
//! ("Soak with faults").
//!
//! `HPIO_NF_SOAK_SECS` sets the seconds of traffic per NF (default 20);
//! `make soak` runs it for 10 minutes each. The accounting table is
//! printed (run with `--nocapture` to see it).
//!
//! Needs root, `ip` and `python3`; otherwise it is skipped with a
//! `SKIPPED:` line, or fails under `HPIO_NF_REQUIRE_ALL=1` (testkit). Its
//! names (`soa-*`) are its own; guards remove them even when it fails. Run
//! it under the machine's network lock (`flock /tmp/hpnf-net.lock`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::net::{self, Netns, Veth};
use testkit::Need;

use common::{ctl, port, LiveRun};

/// Sends `COUNT` Ethernet/IPv4/UDP frames to port 9 carrying the panic mark
/// from interface eth0 (raw packet socket) and prints how many the kernel took.
const MARK_PY: &str = r#"
import socket, struct, sys
dst, src, count = bytes.fromhex(sys.argv[1].replace(":", "")), bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
payload = b"xxPANICxx"
udp = struct.pack("!HHHH", 4000, 9, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([10, 77, 0, 1]), bytes([10, 77, 0, 99]))
s = sum(struct.unpack("!10H", ip)); s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
ip = ip[:10] + struct.pack("!H", 0xffff - s) + ip[12:]
frame = dst + src + b"\x08\x00" + ip + udp
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); sock.bind(("eth0", 0))
sent = 0
for _ in range(count):
    try:
        sock.send(frame); sent += 1
    except OSError:
        pass
print(sent)
"#;

/// The name of the deletion fault.
const RECREATE: &str = "delete and re-create NF receive interface";

/// One NF's testbed: a config, its two ports' interfaces and the hosts behind them.
struct Topology {
    /// Shipped config.
    config: &'static str,
    /// Interface names in the shipped config, replaced by ours.
    shipped_ifs: [&'static str; 2],
    /// Our root-side interfaces (the NF's ports), sending side first.
    ifs: [&'static str; 2],
    /// Host namespaces behind them.
    ns: [&'static str; 2],
    /// The connection the traffic takes, as written in the config, and the
    /// same with `boom` (PanicOnMark) spliced in.
    splice: (&'static str, &'static str),
    /// Port names in the config: where the traffic enters and leaves.
    ports: [&'static str; 2],
}

const BRIDGE: Topology = Topology {
    config: "configs/bridge.toml",
    shipped_ifs: ["hpnf-br0", "hpnf-br1"],
    ifs: ["soa-br0", "soa-br1"],
    ns: ["soa-h1", "soa-h2"],
    splice: ("\"lan0 -> [0]br\"", "\"lan0 -> boom -> [0]br\""),
    ports: ["lan0", "lan1"],
};

const FIREWALL: Topology = Topology {
    config: "configs/firewall.toml",
    shipped_ifs: ["hpnf-fw-in", "hpnf-fw-out"],
    ifs: ["soa-fw-in", "soa-fw-out"],
    ns: ["soa-in", "soa-out"],
    splice: (
        "\"inside -> [0]fw[0] -> outside\"",
        "\"inside -> boom -> [0]fw[0] -> outside\"",
    ),
    ports: ["inside", "outside"],
};

/// Seconds of traffic per NF.
fn soak_secs() -> u64 {
    std::env::var("HPIO_NF_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// The test plugin's library, built on first use.
fn test_plugin() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .current_dir(common::root())
            .args(["build", "--release", "-p", "hpio-nf-test-plugin"])
            .args(["--message-format=json-render-diagnostics"])
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["target"]["name"] == "hpio_nf_test_plugin")
            .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f.as_str().map(PathBuf::from))
            .find(|f| f.extension().is_some_and(|e| e == "so"))
            .expect("the test plugin's library")
    })
}

/// The namespaces and veth pairs; drop removes them.
struct Net {
    /// Root-side veths (deleted first) and their namespaces.
    links: Vec<(Veth, Netns)>,
}

impl Net {
    fn new(t: &Topology) -> Net {
        let mut links = Vec::new();
        for i in 0..2 {
            let ns = Netns::new(t.ns[i]);
            let veth = Veth::with_b_in(t.ifs[i], "eth0", &ns).up();
            let addr = format!("10.77.0.{}/24", i + 1);
            ns.run(&["ip", "addr", "add", &addr, "dev", "eth0"]);
            links.push((veth, ns));
        }
        Net { links }
    }

    fn ns(&self, i: usize) -> &Netns {
        &self.links[i].1
    }

    /// Host `i`'s MAC address.
    fn mac(&self, i: usize) -> String {
        self.ns(i)
            .run(&["cat", "/sys/class/net/eth0/address"])
            .trim()
            .to_string()
    }

    /// Re-creates root-side interface `i` (deleting it takes the host's
    /// end too), as `Net::new` made it.
    fn recreate(&self, t: &Topology, i: usize) {
        net::ip(&["link", "del", t.ifs[i]]);
        let ns = self.ns(i).name();
        net::ip(&[
            "link", "add", t.ifs[i], "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", t.ifs[i]),
            "1",
        );
        let addr = format!("10.77.0.{}/24", i + 1);
        self.ns(i).run(&["ip", "addr", "add", &addr, "dev", "eth0"]);
        self.ns(i).run(&["ip", "link", "set", "eth0", "up"]);
        net::ip(&["link", "set", t.ifs[i], "up"]);
        net::wait_up(t.ifs[i]);
    }
}

/// Kernel counters of the four interfaces (`/sys/class/net/IF/statistics`),
/// summed over the lives of a re-created pair (a new interface counts from 0).
#[derive(Default)]
struct Tally {
    /// (pair, root side?, counter) -> value at the last reading.
    base: BTreeMap<(usize, bool, &'static str), u64>,
    /// ... and what the interfaces gone before counted.
    sum: BTreeMap<(usize, bool, &'static str), u64>,
}

const KCOUNTERS: [&str; 4] = ["rx_packets", "tx_packets", "rx_dropped", "tx_dropped"];

impl Tally {
    fn read(net: &Net, t: &Topology, i: usize, root: bool, name: &str) -> u64 {
        match root {
            true => kstat(None, t.ifs[i], name),
            false => kstat(Some(net.ns(i)), "eth0", name),
        }
    }

    fn start(net: &Net, t: &Topology) -> Tally {
        let mut k = Tally::default();
        for i in 0..2 {
            for root in [true, false] {
                for c in KCOUNTERS {
                    k.base.insert((i, root, c), Tally::read(net, t, i, root, c));
                }
            }
        }
        k
    }

    /// Adds what pair `i` (or every pair) counted since the last reading;
    /// `gone`: the pair is about to be deleted (its successor starts at 0).
    fn settle(&mut self, net: &Net, t: &Topology, pair: Option<usize>, gone: bool) {
        for ((i, root, c), base) in self.base.iter_mut() {
            if pair.is_none_or(|p| p == *i) {
                let now = Tally::read(net, t, *i, *root, c);
                *self.sum.entry((*i, *root, *c)).or_default() += now.saturating_sub(*base);
                *base = if gone { 0 } else { now };
            }
        }
    }

    fn get(&self, i: usize, root: bool, c: &str) -> u64 {
        self.sum
            .iter()
            .find(|(k, _)| **k == (i, root, c))
            .map_or(0, |(_, v)| *v)
    }
}

/// `ip [-n NS] link set IF down`, a pause, then `up`.
fn flap(ns: Option<&str>, ifname: &str) {
    for state in ["down", "up"] {
        match ns {
            Some(ns) => net::ip(&["-n", ns, "link", "set", ifname, state]),
            None => net::ip(&["link", "set", ifname, state]),
        }
        sleep(Duration::from_millis(300));
    }
}

/// The config under test: the shipped one on our interfaces, with the
/// test plugin's `PanicOnMark` spliced in before the NF's element, and a
/// comment that changes with `generation` (so that a reload has a new file).
fn write_config(t: &Topology, path: &Path, generation: u32) {
    let mut text = std::fs::read_to_string(common::root().join(t.config)).unwrap();
    for (from, to) in t.shipped_ifs.iter().zip(t.ifs) {
        text = text.replace(&format!("\"{from}\""), &format!("\"{to}\""));
    }
    assert!(
        text.contains(t.splice.0),
        "{} changed: update soak.rs",
        t.config
    );
    text = text.replace(t.splice.0, t.splice.1);
    text = text.replace("/tmp/hpio-nf-bridge.fdb", "/tmp/soa-bridge.fdb");
    // AF_PACKET follows a deleted and re-created interface; an AF_XDP socket
    // (what `auto` picks on veth) cannot, and ends the run with a clear error.
    text = text.replace("driver = \"auto\"", "driver = \"af_packet\"");
    let head = format!(
        "# soak generation {generation}\nplugins = [{:?}]\n",
        test_plugin().display().to_string()
    );
    let tail = "\n[elements.boom]\nclass = \"PanicOnMark\"\nmark = \"PANIC\"\n";
    std::fs::write(path, format!("{head}{text}{tail}")).unwrap();
}

/// A kernel counter of interface `ifname` (in `ns`, or here).
fn kstat(ns: Option<&Netns>, ifname: &str, name: &str) -> u64 {
    let path = format!("/sys/class/net/{ifname}/statistics/{name}");
    let text = match ns {
        Some(ns) => ns.run(&["cat", &path]),
        None => std::fs::read_to_string(&path).unwrap_or_default(),
    };
    text.trim().parse().unwrap_or(0)
}

/// Starts `hpio-nf pktgen ARGS --json` in `ns`.
fn pktgen(ns: &Netns, args: &[&str]) -> Child {
    let bin = env!("CARGO_BIN_EXE_hpio-nf");
    let mut cmd = ns.exec(&[
        bin,
        "pktgen",
        "-i",
        "eth0",
        "--driver",
        "af_packet",
        "--json",
    ]);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pktgen")
}

/// The summary line of a finished pktgen.
fn summary(child: Child) -> Value {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"summary\""))
        .unwrap_or_else(|| {
            panic!(
                "no pktgen summary: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// What one fault step did, for the table.
#[derive(Default)]
struct Faults {
    done: BTreeMap<&'static str, u64>,
    marked_sent: u64,
    tally: Tally,
}

/// Runs fault `step` (of a fixed cycle) against the running NF.
fn fault(
    step: usize,
    t: &Topology,
    net: &Net,
    nf: &LiveRun,
    cfg: &Path,
    sock: &Path,
    f: &mut Faults,
) {
    let name = match step % 8 {
        0 => {
            flap(None, t.ifs[0]);
            "flap NF receive interface"
        }
        1 => {
            flap(None, t.ifs[1]);
            "flap NF transmit interface"
        }
        2 => {
            flap(Some(net.ns(0).name()), "eth0");
            "flap sender's interface"
        }
        3 => {
            flap(Some(net.ns(1).name()), "eth0");
            "flap receiver's interface"
        }
        4 => {
            let generation = f.done.get("ctl reload").copied().unwrap_or(0) as u32 + 1;
            write_config(t, cfg, generation);
            let out = ctl(sock, &["reload"]);
            assert!(
                out.status.success(),
                "ctl reload: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            "ctl reload"
        }
        5 => {
            let status = Command::new("kill")
                .args(["-HUP", &nf.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            "SIGHUP reload"
        }
        6 => {
            let (dst, src) = (net.mac(1), net.mac(0));
            let out = net.ns(0).run(&["python3", "-c", MARK_PY, &dst, &src, "3"]);
            f.marked_sent += out.trim().parse::<u64>().unwrap();
            "frames with the panic mark"
        }
        _ => {
            // Down first: no frame is in flight when the counters are read.
            net::ip(&["link", "set", t.ifs[0], "down"]);
            sleep(Duration::from_millis(50));
            f.tally.settle(net, t, Some(0), true);
            net.recreate(t, 0);
            RECREATE
        }
    };
    *f.done.entry(name).or_default() += 1;
}

/// Soaks one NF and asserts the accounting balances.
fn soak(test: &str, t: &Topology) {
    let needs = [Need::Root, Need::Command("ip"), Need::Command("python3")];
    if !testkit::require(test, &needs) {
        return;
    }
    let secs = soak_secs();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("soak.toml");
    write_config(t, &cfg, 0);
    let net = Net::new(t);
    let sock = dir.path().join("nf.sock");
    let args = vec!["--control".to_string(), sock.display().to_string()];
    let mut nf = LiveRun::start(&cfg, &args, dir.path().join("nf.log"));
    let mut f = Faults {
        tally: Tally::start(&net, t),
        ..Faults::default()
    };
    let rx = pktgen(net.ns(1), &["--rx", "--filter", "udp and dst port 9"]);
    sleep(Duration::from_millis(500));
    let (mac, duration) = (net.mac(1), format!("{secs}s"));
    let tx = pktgen(
        net.ns(0),
        &[
            "-D",
            &mac,
            "-s",
            "10.77.0.1",
            "-d",
            "10.77.0.99",
            "--src-port",
            "1024-65535",
            "-b",
            "16",
            "--interval",
            "1ms",
            "--duration",
            &duration,
        ],
    );
    let end = Instant::now() + Duration::from_secs(secs);
    let mut step = 0;
    while Instant::now() + Duration::from_secs(2) < end {
        sleep(Duration::from_millis(700));
        fault(step, t, &net, &nf, &cfg, &sock, &mut f);
        step += 1;
    }
    let sent = summary(tx);
    // Let the NF and the far host drain their queues, then stop them.
    sleep(Duration::from_secs(1));
    let report = nf.stop();
    sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &rx.id().to_string()])
        .status()
        .unwrap();
    let received = summary(rx);
    let log = nf.log();
    drop(nf);
    f.tally.settle(&net, t, None, false);
    let books = Books::new(t, &sent, &received, &report, &f);
    println!("{}", books.table(test, secs, &f));
    books.assert_balanced(&report, &log);
    drop(net);
}

/// The accounting of one soak.
struct Books {
    /// Frames the sender's kernel took (pktgen's and the marked ones).
    sent: u64,
    /// Where each frame ended: (where, counter, frames).
    rows: Vec<(String, String, i64)>,
    /// The frames counted at each hop on the way: (where, counter, frames).
    hops: Vec<(String, String, u64)>,
    /// Frames the kernel may lose without a count: at most this many.
    tolerance: u64,
    /// Frames that reached the NF's interface while no socket of the NF was
    /// bound to it, at most this many.
    unbound_limit: u64,
}

impl Books {
    fn new(t: &Topology, sent: &Value, received: &Value, report: &Value, f: &Faults) -> Books {
        let (inp, out) = (port(report, t.ports[0]), port(report, t.ports[1]));
        let k = &f.tally;
        let sent = u(&sent["packets"]) + f.marked_sent;
        let (p0, p1) = (
            format!("NF port {}", t.ports[0]),
            format!("NF port {}", t.ports[1]),
        );
        let (if0, if1) = (
            format!("kernel {}", t.ifs[0]),
            format!("kernel {}", t.ifs[1]),
        );
        let hops = vec![
            (
                "near host".into(),
                "pktgen packets + marked frames".into(),
                sent,
            ),
            (
                "kernel near eth0".into(),
                "tx_packets".into(),
                k.get(0, false, "tx_packets"),
            ),
            (
                if0.clone(),
                "rx_packets".into(),
                k.get(0, true, "rx_packets"),
            ),
            (p0.clone(), "rx.packets".into(), u(&inp["rx"]["packets"])),
            (p1.clone(), "tx.packets".into(), u(&out["tx"]["packets"])),
            (if1, "tx_packets".into(), k.get(1, true, "tx_packets")),
            (
                "kernel far eth0".into(),
                "rx_packets".into(),
                k.get(1, false, "rx_packets"),
            ),
            (
                "far host".into(),
                "pktgen --rx packets".into(),
                u(&received["packets"]),
            ),
        ];
        let mut rows: Vec<(String, String, i64)> = Vec::new();
        let mut row = |w: &str, c: &str, n: u64| rows.push((w.into(), c.into(), n as i64));
        row("far host", "pktgen --rx packets", u(&received["packets"]));
        row(
            "far host",
            "pktgen --rx drops (its socket)",
            u(&received["drops"]),
        );
        row(&p0, "rx.drops", u(&inp["rx"]["drops"]));
        for el in report["elements"].as_array().unwrap() {
            for d in el["drops"].as_array().into_iter().flatten() {
                let name = format!("NF element {}", el["name"].as_str().unwrap());
                row(
                    &name,
                    &format!("drops `{}`", d[0].as_str().unwrap()),
                    u(&d[1]),
                );
            }
        }
        row(&p1, "tx.drops", u(&out["tx"]["drops"]));
        // Frames from the far side (none are expected: the traffic goes to
        // an address no host has, so no ICMP error comes back) that an
        // element dropped are not the sender's: taken out of the element rows.
        let back = u(&out["rx"]["packets"]) as i64
            - u(&inp["tx"]["packets"]) as i64
            - u(&inp["tx"]["drops"]) as i64;
        rows.push((
            p1.clone(),
            "frames from the far side dropped in elements (minus)".into(),
            -back,
        ));
        // Frames the NF's interface received while no socket of the NF was
        // bound to it (after a re-creation, until the port's watch re-binds):
        // counted by the kernel as received, never seen by the NF.
        let seen = u(&inp["rx"]["packets"]) + u(&inp["rx"]["drops"]);
        let unbound = k.get(0, true, "rx_packets") as i64 - seen as i64;
        rows.push((if0, "rx_packets - NF rx (no socket bound)".into(), unbound));
        // Per deletion, one batch of the sender in flight between reading
        // the counters and the deletion; per link going down, one batch
        // queued on the way to a socket that unhooks (see docs/reliability.md).
        let events: u64 = f.done.values().sum();
        let recreated = f.done.get(RECREATE).copied().unwrap_or(0);
        Books {
            sent,
            rows,
            hops,
            tolerance: 16 * events,
            // The watch looks every 100 ms; 16 frames a millisecond, 300 ms.
            unbound_limit: recreated * 16 * 300,
        }
    }

    fn accounted(&self) -> i64 {
        self.rows.iter().map(|r| r.2).sum()
    }

    fn table(&self, test: &str, secs: u64, f: &Faults) -> String {
        let mut s = format!("{test}: {secs} s of traffic; faults:");
        for (k, n) in &f.done {
            s += &format!(" {k} x{n};");
        }
        s += "\n\nOn the way:\n\n| where | counter | frames |\n|---|---|---:|\n";
        for (w, c, n) in &self.hops {
            s += &format!("| {w} | {c} | {n} |\n");
        }
        s += "\nWhere each frame ended:\n\n| where | counter | frames |\n|---|---|---:|\n";
        for (w, c, n) in &self.rows {
            s += &format!("| {w} | {c} | {n} |\n");
        }
        let diff = self.sent as i64 - self.accounted();
        s += &format!(
            "| | **sent ({}) - accounted** (tolerance {}) | {diff} |\n",
            self.sent, self.tolerance
        );
        s
    }

    fn assert_balanced(&self, report: &Value, log: &str) {
        let diff = self.sent as i64 - self.accounted();
        let unbound = self.rows.last().unwrap().2;
        assert!(
            diff >= 0 && diff as u64 <= self.tolerance && (0..=self.unbound_limit as i64).contains(&unbound),
            "sent {} but accounted {} (tolerance {}, unbound {unbound} of at most {}): {:?}\n{report}\n{log}",
            self.sent,
            self.accounted(),
            self.tolerance,
            self.unbound_limit,
            self.rows
        );
    }
}

#[test]
fn bridge_soak_with_faults_accounts_for_every_frame() {
    soak("bridge_soak_with_faults_accounts_for_every_frame", &BRIDGE);
}

#[test]
fn firewall_soak_with_faults_accounts_for_every_frame() {
    soak(
        "firewall_soak_with_faults_accounts_for_every_frame",
        &FIREWALL,
    );
}
