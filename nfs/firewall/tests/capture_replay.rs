//! Golden test on a real two-sided capture: two network namespaces joined by
//! a veth pair talk (ping both ways, a UDP request and reply, a UDP datagram
//! to a closed port, a TCP transfer, refused connections both ways, a
//! connection to the firewall's service port), tcpdump records what each
//! side sends, and the two captures are replayed through the shipped
//! firewall (configs/firewall.toml's rules) as its inside and outside
//! inputs, with `clock = "packet"`.
//!
//! The fate of every frame (passed to the other side, or dropped, and by
//! which rule) is computed here, independently of the firewall, by a small
//! model of its documented policy and connection tracking, applied to the
//! frames in timestamp order. The firewall's outputs must be exactly the
//! frames the model passes, in order, and its rule counters and drops the
//! model's, for bursts of 1, 7 and 32 and with two workers. Read burst by burst instead
//! (`clock = "system"`), the same captures give other fates: the model
//! applied in that order agrees with the firewall again, and differs from
//! the timestamp order.
//!
//! Needs root, `ip`, `tcpdump`, `ethtool`, `ping` and `python3` (else it
//! skips, or fails under `HPIO_NF_REQUIRE_ALL=1`: see testkit). Namespace
//! and interface names are unique to the process; a guard removes them and
//! stops tcpdump even when the test fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etherparse::{Icmpv4Type, NetSlice, SlicedPacket, TransportSlice};
use hpio_nf::config::Config;
use hpio_nf::element::Registry;
use hpio_nf::port::PortRegistry;
use hpio_nf::runtime::{self, Report, RunOptions};
use testkit::net::{self, Netns, Veth};
use testkit::pcap;
use testkit::Need;

const INSIDE_IP: &str = "10.0.1.2";
const OUTSIDE_IP: &str = "10.0.1.3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Inside,
    Outside,
}
use Side::*;

/// Two namespaces joined by a veth pair; removed on drop, with every
/// process still running.
struct Net {
    dev: [String; 2],
    children: Vec<Child>,
    /// The pair, while its ends are not yet in the namespaces.
    _veth: Veth,
    ns: [Netns; 2],
}

impl Net {
    fn new() -> Net {
        let name = |side: &str| net::unique("hrp", "", side);
        let (di, dout) = (name("i"), name("o"));
        let net = Net {
            _veth: Veth::new(&di, &dout),
            ns: [Netns::new(&di), Netns::new(&dout)],
            dev: [di, dout],
            children: Vec::new(),
        };
        for (k, addr) in [(0, INSIDE_IP), (1, OUTSIDE_IP)] {
            let (ns, dev) = (net.ns[k].name(), &net.dev[k]);
            net::ip(&["link", "set", dev, "netns", ns]);
            // Every offload off, so that the captures hold wire frames with
            // their real checksums.
            net.exec(k, &["ip", "addr", "add", &format!("{addr}/24"), "dev", dev]);
            net.exec(k, &["ip", "link", "set", dev, "up"]);
            net.exec(
                k,
                &[
                    "ethtool", "-K", dev, "tx", "off", "rx", "off", "sg", "off", "tso", "off",
                    "gso", "off", "gro", "off",
                ],
            );
        }
        net
    }

    fn exec(&self, k: usize, args: &[&str]) -> String {
        self.ns[k].run(args)
    }

    fn spawn(&mut self, k: usize, args: &[&str]) -> usize {
        let child = self.ns[k]
            .exec(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
        self.children.push(child);
        self.children.len() - 1
    }

    /// Reads lines of child `c`'s `stderr` (or stdout) until one contains `what`.
    fn wait_line(&mut self, c: usize, stderr: bool, what: &str) {
        let child = &mut self.children[c];
        let mut r: Box<dyn BufRead> = if stderr {
            Box::new(BufReader::new(child.stderr.take().unwrap()))
        } else {
            Box::new(BufReader::new(child.stdout.take().unwrap()))
        };
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = r.read_line(&mut line).unwrap();
            assert!(n > 0, "no {what:?} line; got: {seen}");
            if line.contains(what) {
                return;
            }
            seen.push_str(&line);
        }
    }

    /// Starts tcpdump on side `k`'s interface, recording what it sends.
    fn capture(&mut self, k: usize, file: &Path) -> usize {
        let dev = self.dev[k].clone();
        let c = self.spawn(
            k,
            &[
                "tcpdump",
                "-i",
                &dev,
                "-Q",
                "out",
                "-U",
                // Each frame is handed over at once: libpcap's default block
                // timeout would leave the last second's frames unwritten at
                // SIGTERM.
                "--immediate-mode",
                "-n",
                "-Z",
                "root",
                "--time-stamp-precision=nano",
                "-w",
                &file.display().to_string(),
            ],
        );
        self.wait_line(c, true, "listening on");
        c
    }

    /// Stops child `c` with SIGTERM and waits for it.
    fn stop(&mut self, c: usize) {
        let pid = self.children[c].id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.children[c].try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child {pid} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The socket helper. `serve`: a UDP answerer on 5353 and a TCP sink on
/// 5001 (answers `ok` after EOF), then exits. `udp HOST PORT`: one
/// request, waits up to 1 s for a reply. `tcp HOST PORT BYTES`: connects,
/// sends, reads the answer; prints `refused` when refused.
const SOCK_PY: &str = r#"
import socket, sys
cmd = sys.argv[1]
if cmd == "serve":
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5353))
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", 5001)); t.listen(1); t.settimeout(20); u.settimeout(20)
    print("ready", flush=True)
    d, a = u.recvfrom(2048); u.sendto(b"reply to " + d, a)
    c, _ = t.accept(); c.settimeout(20); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    c.sendall(b"ok %d" % n); c.close()
elif cmd == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.sendto(b"request", (sys.argv[2], int(sys.argv[3])))
    try:
        print(s.recv(2048).decode())
    except (socket.timeout, ConnectionRefusedError):
        print("no reply")
elif cmd == "tcp":
    try:
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
    except ConnectionRefusedError:
        print("refused"); sys.exit(0)
    c.sendall(bytes(range(256)) * (int(sys.argv[4]) // 256)); c.shutdown(socket.SHUT_WR)
    a = b""
    while True:
        d = c.recv(4096)
        if not d: break
        a += d
    print(a.decode())
"#;

/// Records the traffic; returns the inside and the outside capture.
fn make_captures(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("sock.py");
    std::fs::write(&script, SOCK_PY).unwrap();
    let script = script.display().to_string();
    let caps = (dir.join("inside.pcap"), dir.join("outside.pcap"));
    let mut net = Net::new();
    let ci = net.capture(0, &caps.0);
    let co = net.capture(1, &caps.1);
    let server = net.spawn(1, &["python3", &script, "serve"]);
    net.wait_line(server, false, "ready");

    // Inside -> outside: allowed, replies pass.
    net.exec(0, &["ping", "-c", "2", "-i", "0.2", "-W", "1", OUTSIDE_IP]);
    let r = net.exec(0, &["python3", &script, "udp", OUTSIDE_IP, "5353"]);
    assert_eq!(r.trim(), "reply to request");
    let r = net.exec(
        0,
        &["python3", &script, "tcp", OUTSIDE_IP, "5001", "102400"],
    );
    assert_eq!(r.trim(), "ok 102400");
    // Refused by the outside host: the SYN passes, its RST too.
    let r = net.exec(0, &["python3", &script, "tcp", OUTSIDE_IP, "9", "0"]);
    assert_eq!(r.trim(), "refused");
    // A datagram to a closed port: the ICMP error is not let in.
    let r = net.exec(0, &["python3", &script, "udp", OUTSIDE_IP, "9999"]);
    assert_eq!(r.trim(), "no reply");
    // Outside -> inside: the service port is let in (nothing listens: RST
    // back), another port is not, nor a ping.
    let r = net.exec(1, &["python3", &script, "tcp", INSIDE_IP, "8080", "0"]);
    assert_eq!(r.trim(), "refused");
    let r = net.exec(1, &["python3", &script, "tcp", INSIDE_IP, "22", "0"]);
    assert_eq!(r.trim(), "refused");
    net.exec(1, &["ping", "-c", "1", "-W", "1", INSIDE_IP]);

    std::thread::sleep(Duration::from_millis(300));
    net.stop(ci);
    net.stop(co);
    drop(net);
    caps
}

/// The frames of a capture with their timestamps (ns).
fn read_capture(path: &Path) -> Vec<(u64, Vec<u8>)> {
    pcap::read(path)
        .into_iter()
        .map(|f| {
            assert_eq!(f.data.len(), f.orig_len as usize, "a cut frame");
            (f.ts_ns, f.data)
        })
        .collect()
}

/// What the model needs to know about a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    NonIp,
    Tcp {
        flow: (Vec<u8>, Vec<u8>),
        syn_only: bool,
        dst: [u8; 4],
        dport: u16,
    },
    Udp {
        flow: (Vec<u8>, Vec<u8>),
    },
    Echo {
        flow: (Vec<u8>, Vec<u8>),
        request: bool,
    },
    /// Other ICMP (errors): untracked.
    OtherIcmp,
}

/// One endpoint as bytes: address, then port or echo identifier.
fn ep(addr: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = addr.to_vec();
    v.extend_from_slice(&port.to_be_bytes());
    v
}

fn kind(frame: &[u8]) -> Kind {
    let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
    let ip = match &p.net {
        Some(NetSlice::Ipv4(ip)) => ip.header(),
        Some(NetSlice::Ipv6(_)) => panic!("IPv6 is off in the namespaces"),
        _ => return Kind::NonIp,
    };
    let (src, dst) = (ip.source(), ip.destination());
    match p.transport.expect("a transport header") {
        TransportSlice::Tcp(t) => Kind::Tcp {
            flow: (ep(src, t.source_port()), ep(dst, t.destination_port())),
            syn_only: t.syn() && !t.ack() && !t.rst() && !t.fin(),
            dst,
            dport: t.destination_port(),
        },
        TransportSlice::Udp(u) => Kind::Udp {
            flow: (ep(src, u.source_port()), ep(dst, u.destination_port())),
        },
        TransportSlice::Icmpv4(i) => match i.icmp_type() {
            Icmpv4Type::EchoRequest(h) => Kind::Echo {
                flow: (ep(src, h.id), ep(dst, h.id)),
                request: true,
            },
            Icmpv4Type::EchoReply(h) => Kind::Echo {
                flow: (ep(src, h.id), ep(dst, h.id)),
                request: false,
            },
            _ => Kind::OtherIcmp,
        },
        other => panic!("unexpected transport {other:?}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Established,
    Other,
}

/// configs/firewall.toml's rules as the model reads them: name, side,
/// state required (None: any), and the match.
type Match = fn(&Kind) -> bool;
const RULES: &[(&str, Option<Side>, Option<State>, Match)] = &[
    ("established", None, Some(State::Established), |_| true),
    ("inside tcp", Some(Inside), Some(State::New), |k| {
        matches!(k, Kind::Tcp { .. })
    }),
    ("inside udp", Some(Inside), Some(State::New), |k| {
        matches!(k, Kind::Udp { .. })
    }),
    ("inside ping", Some(Inside), Some(State::New), |k| {
        matches!(k, Kind::Echo { request: true, .. })
    }),
    ("inside ping6", Some(Inside), Some(State::New), |_| false),
    ("outside to service", Some(Outside), Some(State::New), |k| {
        matches!(
            k,
            Kind::Tcp {
                dst: [10, 0, 1, 2],
                dport: 8080,
                ..
            }
        )
    }),
    ("ndp solicit", None, None, |_| false),
    ("ndp advert", None, None, |_| false),
    ("ipv6 link-local multicast", None, None, |_| false),
    ("inside default deny", Some(Inside), None, |_| true),
    ("outside default deny", Some(Outside), None, |_| true),
];

/// The model's verdict on one frame: the rule that decided (None: non-IP,
/// passed untouched) and whether it passes.
type Fate = (Option<&'static str>, bool);

/// The firewall's documented policy over `frames`, in the given order.
fn model(frames: &[(Side, &[u8])]) -> Vec<Fate> {
    // Flow (originator endpoint, responder endpoint) -> established.
    let mut flows: BTreeMap<(Vec<u8>, Vec<u8>), bool> = BTreeMap::new();
    let mut fates = Vec::new();
    for &(side, frame) in frames {
        let k = kind(frame);
        let (flow, opens) = match &k {
            Kind::NonIp => {
                fates.push((None, true));
                continue;
            }
            Kind::OtherIcmp => (None, false),
            Kind::Tcp { flow, syn_only, .. } => (Some(flow.clone()), *syn_only),
            Kind::Udp { flow } => (Some(flow.clone()), true),
            Kind::Echo { flow, request } => (Some(flow.clone()), *request),
        };
        // (key as stored: originator first, sent by the responder, established)
        let tracked = flow.as_ref().and_then(|(a, b)| {
            if let Some(est) = flows.get(&(a.clone(), b.clone())) {
                Some(((a.clone(), b.clone()), false, *est))
            } else {
                flows
                    .get(&(b.clone(), a.clone()))
                    .map(|est| ((b.clone(), a.clone()), true, *est))
            }
        });
        // An echo request from the responder's side, or a reply (or a TCP
        // segment other than a SYN) without a flow, is invalid.
        let state = match (&flow, &tracked) {
            (None, _) => State::Other,
            (Some(_), Some((_, from_responder, est))) => {
                if matches!(k, Kind::Echo { request: true, .. }) && *from_responder {
                    State::Other
                } else if *est || *from_responder {
                    State::Established
                } else {
                    State::New
                }
            }
            (Some(_), None) if opens => State::New,
            (Some(_), None) => State::Other,
        };
        let (name, allow) = RULES
            .iter()
            .find(|(_, from, st, m)| {
                from.is_none_or(|f| f == side) && st.is_none_or(|s| s == state) && m(&k)
            })
            .map(|(name, ..)| (*name, !name.contains("deny")))
            .expect("a rule matches every frame");
        if allow {
            match tracked {
                Some((key, true, _)) => {
                    flows.insert(key, true);
                }
                Some(_) => {}
                None => {
                    if let Some(f) = flow {
                        flows.insert(f, false);
                    }
                }
            }
        }
        fates.push((Some(name), allow));
    }
    fates
}

/// The firewall's outputs and counters after one replay.
struct Outcome {
    to_outside: Vec<Vec<u8>>,
    to_inside: Vec<Vec<u8>>,
    hits: BTreeMap<String, u64>,
    drops: BTreeMap<String, u64>,
}

/// Replays the captures through configs/firewall.toml's firewall.
fn replay(
    dir: &Path,
    caps: &(PathBuf, PathBuf),
    clock: &str,
    burst: usize,
    workers: usize,
) -> Outcome {
    let shipped =
        std::fs::read_to_string(testkit::workspace_root().join("configs/firewall.toml")).unwrap();
    let (head, rest) = shipped.split_once("[ports.inside]").unwrap();
    let (_, fw) = rest.split_once("[elements.fw]").unwrap();
    let (to_in, to_out) = (dir.join("to-inside.pcap"), dir.join("to-outside.pcap"));
    let text = format!(
        "{head}[runtime]\nclock = \"{clock}\"\nburst = {burst}\n\n\
         [ports.inside]\ndriver = \"pcap\"\ninput = '{}'\noutput = '{}'\n\n\
         [ports.outside]\ndriver = \"pcap\"\ninput = '{}'\noutput = '{}'\n\n\
         [elements.fw]{fw}",
        caps.0.display(),
        to_in.display(),
        caps.1.display(),
        to_out.display()
    );
    let mut registry = Registry::builtin();
    hpio_nf_firewall::register(&mut registry);
    let config = Config::parse_str(
        &text,
        "replay.toml",
        &registry,
        &PortRegistry::builtin(),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ports = config
        .ports
        .iter()
        .map(|p| p.spec.open(&p.name, workers, p.rx_used, p.tx_used).unwrap())
        .collect();
    let opts = RunOptions {
        workers,
        burst: config.runtime.burst,
        clock: config.runtime.clock,
        ..RunOptions::default()
    };
    let report: Report = runtime::run(&config.graph, ports, &opts, |_| {}).unwrap();
    let fw = report.elements.iter().find(|e| e.name == "fw").unwrap();
    let frames = |p: &Path| read_capture(p).into_iter().map(|(_, f)| f).collect();
    Outcome {
        to_outside: frames(&to_out),
        to_inside: frames(&to_in),
        hits: fw
            .counters
            .custom
            .iter()
            // The rules' counters (not flows or fragments).
            .filter(|(k, _)| RULES.iter().any(|r| r.0 == k))
            .cloned()
            .collect(),
        drops: fw.counters.drops.iter().cloned().collect(),
    }
}

/// Checks `out` against the model's `fates` of `order`.
fn check(out: &Outcome, order: &[(Side, &[u8])], fates: &[Fate], what: &str) {
    let passed = |side: Side| -> Vec<Vec<u8>> {
        order
            .iter()
            .zip(fates)
            .filter(|((s, _), (_, pass))| *s == side && *pass)
            .map(|((_, f), _)| f.to_vec())
            .collect()
    };
    assert_eq!(
        out.to_outside,
        passed(Inside),
        "{what}: frames sent to the outside"
    );
    assert_eq!(
        out.to_inside,
        passed(Outside),
        "{what}: frames sent to the inside"
    );
    let mut hits: BTreeMap<String, u64> = RULES.iter().map(|r| (r.0.to_string(), 0)).collect();
    let mut denied = 0;
    for (rule, pass) in fates {
        if let Some(r) = rule {
            *hits.get_mut(*r).unwrap() += 1;
            denied += u64::from(!pass);
        }
    }
    assert_eq!(out.hits, hits, "{what}: rule counters");
    let drops: BTreeMap<String, u64> = out
        .drops
        .iter()
        .filter(|d| *d.1 > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let want: BTreeMap<String, u64> = [("denied".to_string(), denied)]
        .into_iter()
        .filter(|d| d.1 > 0)
        .collect();
    assert_eq!(drops, want, "{what}: drops by reason");
}

#[test]
fn a_two_sided_capture_replays_through_the_firewall_as_it_happened() {
    let needs = [
        Need::Root,
        Need::Command("ip"),
        Need::Command("tcpdump"),
        Need::Command("ethtool"),
        Need::Command("ping"),
        Need::Command("python3"),
    ];
    if !testkit::require(
        "a_two_sided_capture_replays_through_the_firewall_as_it_happened",
        &needs,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let caps = make_captures(dir.path());
    let inside = read_capture(&caps.0);
    let outside = read_capture(&caps.1);

    // As it happened: by timestamp, inside first on a tie (port order).
    let mut timed: Vec<(u64, Side, &[u8])> = inside
        .iter()
        .map(|(t, f)| (*t, Inside, &f[..]))
        .chain(outside.iter().map(|(t, f)| (*t, Outside, &f[..])))
        .collect();
    timed.sort_by_key(|&(t, s, _)| (t, s));
    let order: Vec<(Side, &[u8])> = timed.iter().map(|&(_, s, f)| (s, f)).collect();
    let fates = model(&order);

    // The traffic is what it should be: every rule but the IPv6 ones hit.
    let mut hits: BTreeMap<&str, u64> = BTreeMap::new();
    for (rule, _) in &fates {
        *hits.entry(rule.unwrap_or("non-ip")).or_default() += 1;
    }
    for rule in [
        "non-ip",
        "established",
        "inside tcp",
        "inside udp",
        "inside ping",
        "outside to service",
        "inside default deny",
        "outside default deny",
    ] {
        assert!(hits.contains_key(rule), "no frame for {rule}: {hits:?}");
    }
    assert!(hits["established"] > 20, "{hits:?}");
    eprintln!(
        "{} inside and {} outside frames; by rule: {hits:?}",
        inside.len(),
        outside.len()
    );
    // The model's reading of the capture: what the hosts saw.
    let denied: Vec<&str> = fates
        .iter()
        .filter(|f| !f.1)
        .map(|f| f.0.unwrap())
        .collect();
    assert_eq!(
        denied
            .iter()
            .filter(|r| **r == "outside default deny")
            .count(),
        3,
        "SYN to port 22, ping request, ICMP port unreachable: {denied:?}"
    );

    // Any burst; with two workers both pcap inputs are on worker 0.
    for (burst, workers) in [(1, 1), (7, 1), (32, 1), (7, 2)] {
        let out = replay(dir.path(), &caps, "packet", burst, workers);
        let what = format!("clock packet, burst {burst}, {workers} worker(s)");
        check(&out, &order, &fates, &what);
    }

    // Burst by burst: 32 inside frames, 32 outside frames, and so on.
    let mut bursts: Vec<(Side, &[u8])> = Vec::new();
    for i in (0..inside.len().max(outside.len())).step_by(32) {
        for (side, cap) in [(Inside, &inside), (Outside, &outside)] {
            bursts.extend(cap.iter().skip(i).take(32).map(|(_, f)| (side, &f[..])));
        }
    }
    let counts = |f: &[Fate]| {
        let mut m: BTreeMap<(Option<&str>, bool), usize> = BTreeMap::new();
        for x in f {
            *m.entry(*x).or_default() += 1;
        }
        m
    };
    let burst_fates = model(&bursts);
    let out = replay(dir.path(), &caps, "system", 32, 1);
    check(&out, &bursts, &burst_fates, "clock system, burst 32");
    eprintln!("burst by burst: {:?}", counts(&burst_fates));
    assert_ne!(
        counts(&burst_fates),
        counts(&fates),
        "read burst by burst, replies come before their requests"
    );
}
