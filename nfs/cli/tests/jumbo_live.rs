//! Jumbo frames (MTU 9000) through the Bridge over AF_PACKET, live: two
//! network namespaces joined through veth pairs of MTU 9000 to a bridge
//! run by `hpio-nf run`. A 9000-byte ping that must not be fragmented
//! (`ping -M do -s 8972`) and a TCP transfer with 9000-byte segments pass;
//! nothing is counted oversize. Then one side's MTU drops to 1500 while the
//! bridge runs: the jumbo ping is counted `oversize` on that port's
//! transmit side instead of vanishing as an error.
//!
//! Needs root, `ip`, `ethtool`, `ping` and `python3`; otherwise it is
//! skipped with a `SKIPPED:` line, or fails under `HPIO_NF_REQUIRE_ALL=1`
//! (testkit). Its names (`hpjm-*`) are its own; a guard
//! removes them even when the test fails. Run it under the machine's
//! network lock (`flock /tmp/hpnf-net.lock`) like the other live tests.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use testkit::net::{self, Netns, Veth};
use testkit::Need;

const NS: [&str; 2] = ["hpjm-h1", "hpjm-h2"];
const ROOT_IF: [&str; 2] = ["hpjm-br0", "hpjm-br1"];
const ADDR: [&str; 2] = ["10.9.0.1", "10.9.0.2"];

/// The two namespaces and veth pairs, all at MTU 9000, offloads off (so
/// the stacks hand the veths wire-sized frames: see docs/config.md). Drop
/// removes them.
struct Fixture {
    /// The bridge (stopped first: fields drop in order).
    nf: Option<common::LiveRun>,
    dir: tempfile::TempDir,
    /// Each root-side veth (deleted first) and its namespace.
    links: Vec<(Veth, Netns)>,
}

impl Fixture {
    fn new() -> Fixture {
        let mut fx = Fixture {
            nf: None,
            dir: tempfile::tempdir().unwrap(),
            links: Vec::new(),
        };
        for i in 0..2 {
            let ns = Netns::new(NS[i]);
            let veth = Veth::with_b_in(ROOT_IF[i], "eth0", &ns).mtu(9000).up();
            ns.run(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", ADDR[i]),
                "dev",
                "eth0",
            ]);
            let off = ["tso", "off", "gso", "off", "gro", "off"];
            ns.run(&[&["ethtool", "-K", "eth0"][..], &off].concat());
            net::run(Command::new("ethtool").args(["-K", ROOT_IF[i]]).args(off));
            fx.links.push((veth, ns));
        }
        fx
    }

    /// Namespace `NS[i]`.
    fn ns(&self, i: usize) -> &Netns {
        &self.links[i].1
    }

    /// Starts the bridge over AF_PACKET on the two root-side veths,
    /// receiving with `rx_mode`.
    fn start_bridge(&mut self, rx_mode: &str) {
        drop(self.nf.take());
        let config = self.dir.path().join("bridge.toml");
        std::fs::write(
            &config,
            format!(
                "connections = [\"lan0 -> [0]br\", \"br[0] -> lan0\", \"lan1 -> [1]br\", \"br[1] -> lan1\"]\n\
                 [ports.lan0]\ndriver = \"af_packet\"\ninterface = \"{}\"\nrx_mode = \"{rx_mode}\"\n\
                 [ports.lan1]\ndriver = \"af_packet\"\ninterface = \"{}\"\nrx_mode = \"{rx_mode}\"\n\
                 [elements.br]\nclass = \"Bridge\"\nports = 2\n",
                ROOT_IF[0], ROOT_IF[1]
            ),
        )
        .unwrap();
        let log = self.dir.path().join("nf.log");
        self.nf = Some(common::LiveRun::start(&config, &[], log));
    }

    fn log(&self) -> String {
        self.nf.as_ref().map(|nf| nf.log()).unwrap_or_default()
    }

    fn next_report(&mut self) -> Value {
        self.nf.as_mut().unwrap().next_report()
    }

    /// `ping -M do -s SIZE` from h1 to h2: `count` answers wanted.
    fn ping(&self, size: usize, count: u32) -> bool {
        self.ns(0)
            .exec(&[
                "ping",
                "-n",
                "-q",
                "-M",
                "do",
                "-s",
                &size.to_string(),
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "2",
                ADDR[1],
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

fn port(r: &Value, i: usize) -> &Value {
    &r["ports"][i]
}

#[test]
fn jumbo_ping_and_tcp_through_the_bridge_at_mtu_9000() {
    let needs = [Need::Root, Need::Command("ip"), Need::Command("ethtool")];
    let tools = [Need::Command("ping"), Need::Command("python3")];
    if !testkit::require(
        "jumbo_ping_and_tcp_through_the_bridge_at_mtu_9000",
        &[&needs[..], &tools].concat(),
    ) {
        return;
    }
    let mut fx = Fixture::new();
    // Every receive mode takes 9014-byte frames whole, both ways.
    for mode in ["mmsg", "tpacket_v3"] {
        fx.start_bridge(mode);
        assert!(
            (0..20).any(|_| fx.ping(56, 1)),
            "{mode}: no ping answer\n{}",
            fx.log()
        );
        assert!(fx.ping(8972, 3), "{mode}: jumbo pings lost\n{}", fx.log());
        let r = fx.next_report();
        assert_eq!(port(&r, 0)["rx"]["oversize"], 0, "{mode}: {r}");
    }
    fx.start_bridge("tpacket_v2");
    let first = fx.next_report();
    // The slots hold the interfaces' largest frame: 9000 + 22, rounded up.
    assert_eq!(first["max_frame"], 9024, "{first}");

    // Small pings first (ARP, learning), then 9000-byte IP packets that
    // must cross unfragmented (DF set): 9014-byte frames both ways.
    assert!(
        (0..20).any(|_| fx.ping(56, 1)),
        "no ping answer\n{}",
        fx.log()
    );
    assert!(fx.ping(8972, 5), "jumbo pings lost\n{}", fx.log());

    // TCP with MTU 9000: the MSS is 8948, the bytes arrive intact.
    let script = fx.dir.path().join("sock.py");
    std::fs::write(&script, testkit::sock::SCRIPT).unwrap();
    let script = script.to_str().unwrap().to_string();
    let mut server = fx
        .ns(1)
        .exec(&["python3", &script, "server", "5001"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let bytes = 10u64 << 20;
    let out = fx
        .ns(0)
        .exec(&[
            "python3",
            &script,
            "client",
            ADDR[1],
            "5001",
            &bytes.to_string(),
        ])
        .output()
        .unwrap();
    let _ = server.wait();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 6, "client: {out}\n{}", fx.log());
    assert_eq!(f[0], bytes.to_string());
    assert_eq!((f[2], f[3]), (f[0], f[1]), "the bytes arrived changed");
    // The client sets no MSS, so with MTU 9000 its segments carry 8,948 bytes.
    assert_eq!(f[5], "8948", "TCP segments of MTU 9000");

    let r = fx.next_report();
    for i in 0..2 {
        let p = port(&r, i);
        for side in ["rx", "tx"] {
            assert_eq!(p[side]["oversize"], 0, "{side} of {}: {r}", p["name"]);
        }
        // Jumbo frames crossed: more bytes than 2048 per frame on average
        // in the transfer's direction.
        assert!(p["rx"]["packets"].as_u64().unwrap() > 0);
    }
    let (rx0, tx1) = (&port(&r, 0)["rx"], &port(&r, 1)["tx"]);
    let avg = rx0["bytes"].as_u64().unwrap() / rx0["packets"].as_u64().unwrap();
    assert!(avg > 4000, "average frame {avg} bytes: {r}");
    assert!(tx1["bytes"].as_u64().unwrap() >= bytes, "{r}");

    // h2's side of the bridge drops to MTU 1500: the bridge can no longer
    // send the jumbo echo requests there. They are counted oversize on
    // lan1's transmit side, not as errors.
    net::ip(&["link", "set", ROOT_IF[1], "mtu", "1500"]);
    assert!(!fx.ping(8972, 3), "a 9014-byte frame crossed a 1500 MTU");
    let r = fx.next_report();
    let tx = &port(&r, 1)["tx"];
    assert!(tx["oversize"].as_u64().unwrap() >= 3, "{r}");
    assert!(
        tx["drops"].as_u64().unwrap() >= tx["oversize"].as_u64().unwrap(),
        "{r}"
    );
}
