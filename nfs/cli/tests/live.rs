//! End-to-end tests with real traffic: `hpio-nf testbed` builds network
//! namespaces joined by veth pairs, `hpio-nf run` runs the shipped bridge
//! and firewall configs over AF_PACKET between them, and the namespaces'
//! own stacks (ping, python3 sockets) talk through the NF.
//!
//! Needs root, `ip` (iproute2), `ping` (iputils-ping), `ethtool` and `python3`;
//! without them the tests print a `SKIPPED:` line and pass without running,
//! or fail under `HPIO_NF_REQUIRE_ALL=1` (testkit). The testbed
//! has fixed names (those the configs use), so the tests take a lock and
//! run one at a time; a guard removes the testbed and stops every process
//! it started even when a test fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::MutexGuard;
use std::thread;
use std::time::{Duration, Instant};

use common::live::{self, assert_transfer_intact, mac_of, ns, ping_ok, Live};
use common::{counter, port, testbed};
use serde_json::Value;
use testkit::Need;

/// Takes the testbed lock, or returns `None` when test `test` cannot run
/// here (see [`live::setup`]).
fn setup(test: &str) -> Option<MutexGuard<'static, ()>> {
    live::setup(test, &[Need::Command("python3"), Need::Command("ethtool")])
}

/// The `(mac, port)` entries of a bridge table file.
fn table(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

/// The bridge table's file, in the test's temporary directory (never a
/// device: the table is renamed over it).
const FDB: &str = "bridge.fdb";

/// Starts the shipped bridge between `hpnf-h1` and `hpnf-h2` with both
/// ports on `driver` (`None`: the config's own), its table written to
/// [`FDB`] in the test's temporary directory.
fn start_bridge(driver: Option<&str>) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let mut set = vec![format!(
        "elements.br.table_file={}",
        dir.path().join(FDB).display()
    )];
    for port in ["lan0", "lan1"] {
        set.extend(driver.map(|d| format!("ports.{port}.driver={d}")));
    }
    Live::start_in(dir, "bridge", "configs/bridge.toml", &set)
}

/// Starts the shipped firewall between `hpnf-in` and `hpnf-out` with both
/// ports on `driver` (`None`: the config's own).
fn start_firewall(driver: Option<&str>) -> Live {
    let set: Vec<String> = ["inside", "outside"]
        .iter()
        .filter_map(|port| driver.map(|d| format!("ports.{port}.driver={d}")))
        .collect();
    Live::start("firewall", "configs/firewall.toml", &set)
}

fn bridge_flooded(r: &Value) -> u64 {
    counter(r, "br", "port0.flooded") + counter(r, "br", "port1.flooded")
}

fn bridge_forwarded(r: &Value) -> u64 {
    counter(r, "br", "port0.forwarded") + counter(r, "br", "port1.forwarded")
}

#[test]
fn bridge_ping_tcp_learning_and_flooding() {
    let Some(_lock) = setup("bridge_ping_tcp_learning_and_flooding") else {
        return;
    };
    let mut live = start_bridge(None);
    let fdb = live.dir.path().join(FDB);
    let before = live.next_report();

    // Ping both ways. The first ARP request is a broadcast: flooded.
    live.ping("hpnf-h1", "10.0.0.2", 5);
    live.ping("hpnf-h2", "10.0.0.1", 5);

    // Learning: h1 behind bridge port 0 (hpnf-br0), h2 behind port 1.
    let (h1, h2) = (mac_of("hpnf-h1"), mac_of("hpnf-h2"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = table(&fdb);
        if t.contains(&(h1.clone(), 0)) && t.contains(&(h2.clone(), 1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "table {} lacks {h1} on 0 / {h2} on 1: {t:?}",
            fdb.display()
        );
        thread::sleep(Duration::from_millis(200));
    }
    let learned = live.next_report();
    assert!(
        bridge_flooded(&learned) > bridge_flooded(&before),
        "the first ARP request should have been flooded: {learned}"
    );
    assert!(counter(&learned, "br", "learned") >= 2);

    // 10 MiB over TCP, intact; once both hosts are learned, unicast
    // traffic is forwarded and nothing is flooded (a stray ARP broadcast
    // at most).
    live.tcp_transfer("hpnf-h2", "hpnf-h1", "10.0.0.2", 5001, 10 << 20);
    let after = live.next_report();
    let forwarded = bridge_forwarded(&after) - bridge_forwarded(&learned);
    let flooded = bridge_flooded(&after) - bridge_flooded(&learned);
    assert!(
        forwarded > 1000,
        "the transfer was not forwarded: {forwarded}"
    );
    assert!(
        flooded <= 4,
        "{flooded} frames flooded while {forwarded} were forwarded to learned hosts"
    );

    let last = live.stop();
    assert_eq!(counter(&last, "br", "table-full"), 0);
    assert_eq!(counter(&last, "br", "table-file-errors"), 0);
}

#[test]
fn firewall_policy_and_conntrack() {
    let Some(_lock) = setup("firewall_policy_and_conntrack") else {
        return;
    };
    let mut live = start_firewall(None);

    // Inside may ping out; the replies are established.
    live.ping("hpnf-in", "10.0.1.3", 3);

    // The allowed service: outside -> 10.0.1.2:8080, 1 MiB, intact, and
    // the server's answer comes back.
    let r0 = live.next_report();
    live.tcp_transfer("hpnf-in", "hpnf-out", "10.0.1.2", 8080, 1 << 20);
    let r1 = live.next_report();
    assert!(
        counter(&r1, "fw", "outside to service") > counter(&r0, "fw", "outside to service"),
        "the SYN to 8080 should hit `outside to service`: {r1}"
    );

    // A flow the inside opens: its replies pass (data both ways).
    live.tcp_transfer("hpnf-out", "hpnf-in", "10.0.1.3", 9000, 1 << 20);
    let r2 = live.next_report();
    assert!(counter(&r2, "fw", "inside tcp") > counter(&r1, "fw", "inside tcp"));
    assert!(counter(&r2, "fw", "established") > counter(&r1, "fw", "established") + 100);

    // A denied port: the SYN is dropped, so the connection times out
    // (without the firewall the inside host would refuse it: no listener).
    let probe = live.py("hpnf-out", &["probe", "10.0.1.2", "22", "3"]);
    assert_eq!(probe, "timeout");

    // Unsolicited UDP from outside: dropped (never arrives) and counted
    // on `outside default deny`.
    let r3 = live.next_report();
    let recv = live.py_background("hpnf-in", &["udp-recv", "5555", "3"]);
    thread::sleep(Duration::from_millis(500));
    live.py("hpnf-out", &["udp-send", "10.0.1.2", "5555", "10"]);
    let got = live.wait_helper(recv);
    assert_eq!(got.lines().last(), Some("0"), "unsolicited UDP got through");
    let r4 = live.next_report();
    let denied =
        counter(&r4, "fw", "outside default deny") - counter(&r3, "fw", "outside default deny");
    assert!(
        denied >= 10,
        "outside default deny counted {denied}, sent 10"
    );
    assert_eq!(
        counter(&r4, "fw", "inside udp"),
        counter(&r3, "fw", "inside udp")
    );

    // The final report (SIGTERM) has them too; the SYNs to port 22 and
    // the datagrams are `denied` drops.
    let last = live.stop();
    assert!(
        counter(&last, "fw", "outside default deny") >= counter(&r4, "fw", "outside default deny")
    );
    assert!(common::drop_count(common::element(&last, "fw"), "denied") >= 11);
}

/// Asserts that segmentation offload is on in the testbed's namespaces (as
/// Linux leaves it), so their TCP sends reach the NF as super-frames.
fn assert_offloads_on(namespaces: &[&str]) {
    for netns in namespaces {
        let out = ns(netns, &["ethtool", "-k", "eth0"])
            .output()
            .expect("run ethtool (install ethtool)");
        let k = String::from_utf8_lossy(&out.stdout);
        for feature in [
            "tcp-segmentation-offload: on",
            "generic-segmentation-offload: on",
        ] {
            assert!(k.contains(feature), "{netns}: {feature} expected:\n{k}");
        }
    }
}

/// Asserts that the af_packet ports of `report` cut super-frames into
/// segments (on `receiver`, which the bulk data entered by, at least one
/// per 64 KiB sent) and counted none truncated, oversize or uncuttable.
fn assert_super_frames_cut(report: &Value, ports: &[&str], receiver: &str, bytes: u64) {
    for name in ports {
        let p = port(report, name);
        assert_eq!(p["driver"], "af_packet", "{report}");
        let d = &p["driver_stats"];
        for k in [
            "rx_truncated",
            "rx_gso_bad_type",
            "rx_gso_malformed",
            "rx_gso_oversize",
            "rx_gso_no_slots",
        ] {
            assert_eq!(d[k], 0, "port {name}: {k}\n{report}");
        }
        // The slot-size counter of the port statistics, where there is one.
        for side in ["rx", "tx"] {
            if let Some(n) = p[side].get("oversize") {
                assert_eq!(n, 0, "port {name}: {side} oversize\n{report}");
            }
        }
        assert_eq!(p["rx"]["errors"], 0, "port {name}\n{report}");
    }
    let d = &port(report, receiver)["driver_stats"];
    let frames = d["rx_gso_frames"].as_u64().unwrap();
    let segments = d["rx_gso_segments"].as_u64().unwrap();
    assert!(
        frames > 0 && segments >= bytes / 1448 / 2,
        "port {receiver}: {frames} super-frames cut into {segments} segments \
         for {bytes} bytes: the offload path did not run\n{report}"
    );
}

/// 10 MiB over TCP through the bridge with the hosts' offloads on (the
/// testbed leaves them on): the data leaves h1 as 64 KiB super-frames, the
/// af_packet driver cuts them, and h2 gets every byte (SHA-256 checked at
/// both ends).
#[test]
fn bridge_passes_tcp_with_offloads_on() {
    let Some(_lock) = setup("bridge_passes_tcp_with_offloads_on") else {
        return;
    };
    let mut live = start_bridge(Some("af_packet"));
    assert_offloads_on(&["hpnf-h1", "hpnf-h2"]);
    live.ping("hpnf-h1", "10.0.0.2", 2);
    let bytes = 10 << 20;
    live.tcp_transfer("hpnf-h2", "hpnf-h1", "10.0.0.2", 5001, bytes);
    let last = live.stop();
    assert_super_frames_cut(&last, &["lan0", "lan1"], "lan0", bytes);
}

/// 10 MiB over TCP each way through the firewall with offloads on: to the
/// allowed service and on a flow the inside opens. Every segment is checked
/// by the firewall (a super-frame cut short would break the stream).
#[test]
fn firewall_passes_tcp_with_offloads_on() {
    let Some(_lock) = setup("firewall_passes_tcp_with_offloads_on") else {
        return;
    };
    let mut live = start_firewall(Some("af_packet"));
    assert_offloads_on(&["hpnf-in", "hpnf-out"]);
    live.ping("hpnf-in", "10.0.1.3", 2);
    let bytes = 10 << 20;
    live.tcp_transfer("hpnf-in", "hpnf-out", "10.0.1.2", 8080, bytes);
    let r = live.next_report();
    assert_super_frames_cut(&r, &["inside", "outside"], "outside", bytes);
    live.tcp_transfer("hpnf-out", "hpnf-in", "10.0.1.3", 9000, bytes);
    let last = live.stop();
    assert_super_frames_cut(&last, &["inside", "outside"], "inside", bytes);
}

/// `ip link show IFNAME` (root namespace): names the XDP program attached
/// (`prog/xdp` native, `prog/xdpgeneric` generic), if any.
fn link_show(ifname: &str) -> String {
    let out = Command::new("ip")
        .args(["link", "show", ifname])
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits up to 5 s for `ifname` to have no XDP program.
fn assert_no_xdp(ifname: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while link_show(ifname).contains("xdp") {
        assert!(
            Instant::now() < deadline,
            "an XDP program stayed on {ifname}:\n{}",
            link_show(ifname)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Packets counter `side` (`rx`/`tx`) of port `name`.
fn packets(report: &Value, name: &str, side: &str) -> u64 {
    port(report, name)[side]["packets"].as_u64().unwrap()
}

/// The bridge over AF_XDP (native XDP on the root-side veth ends, copy
/// mode): ping both ways, 10 MiB over TCP intact (SHA-256), and every frame
/// accounted for: what one port received the other sent, nothing dropped.
/// The hosts' TCP segments arrive with partial checksums (veth offload),
/// which the driver finishes. The program is gone once the NF stops.
#[test]
fn bridge_over_af_xdp_ping_tcp_exact_counts() {
    let Some(_lock) = setup("bridge_over_af_xdp_ping_tcp_exact_counts") else {
        return;
    };
    let mut live = start_bridge(Some("af_xdp"));
    for ifname in ["hpnf-br0", "hpnf-br1"] {
        assert!(
            link_show(ifname).contains("prog/xdp "),
            "{}",
            link_show(ifname)
        );
    }
    live.ping("hpnf-h1", "10.0.0.2", 5);
    live.ping("hpnf-h2", "10.0.0.1", 5);
    live.tcp_transfer("hpnf-h2", "hpnf-h1", "10.0.0.2", 5001, 10 << 20);
    let last = live.stop();
    for (a, b) in [("lan0", "lan1"), ("lan1", "lan0")] {
        let p = port(&last, a);
        assert_eq!(p["driver"], "af_xdp", "{last}");
        assert_eq!(p["driver_stats"]["xdp_native"], 1, "{last}");
        for side in ["rx", "tx"] {
            assert_eq!(p[side]["drops"], 0, "port {a} {side}\n{last}");
        }
        assert_eq!(p["driver_stats"]["rx_kernel_drops"], 0, "{last}");
        assert_eq!(
            packets(&last, a, "rx"),
            packets(&last, b, "tx"),
            "every frame {a} received went out of {b}\n{last}"
        );
    }
    assert!(packets(&last, "lan0", "rx") > (10 << 20) / 1500, "{last}");
    let fixed = port(&last, "lan0")["driver_stats"]["rx_csum_completed"]
        .as_u64()
        .unwrap();
    assert!(fixed > 1000, "partial checksums finished: {fixed}\n{last}");
    for ifname in ["hpnf-br0", "hpnf-br1"] {
        assert_no_xdp(ifname);
    }
}

/// The firewall over AF_XDP: the allowed service gets 1 MiB intact, the
/// denied port times out.
#[test]
fn firewall_over_af_xdp() {
    let Some(_lock) = setup("firewall_over_af_xdp") else {
        return;
    };
    let mut live = start_firewall(Some("af_xdp"));
    live.ping("hpnf-in", "10.0.1.3", 3);
    live.tcp_transfer("hpnf-in", "hpnf-out", "10.0.1.2", 8080, 1 << 20);
    let probe = live.py("hpnf-out", &["probe", "10.0.1.2", "22", "3"]);
    assert_eq!(probe, "timeout");
    let last = live.stop();
    assert_eq!(port(&last, "inside")["driver"], "af_xdp", "{last}");
}

/// An NF killed with SIGKILL (no destructor runs) leaves no XDP program on
/// its interfaces: the BPF link dies with the process's descriptors. The
/// interfaces then work for the next NF.
#[test]
fn af_xdp_program_goes_with_a_killed_nf() {
    let Some(_lock) = setup("af_xdp_program_goes_with_a_killed_nf") else {
        return;
    };
    let mut live = start_bridge(Some("af_xdp"));
    live.ping("hpnf-h1", "10.0.0.2", 1);
    for ifname in ["hpnf-br0", "hpnf-br1"] {
        assert!(
            link_show(ifname).contains("prog/xdp "),
            "{}",
            link_show(ifname)
        );
    }
    let pid = live.pid().to_string();
    let st = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(st.success());
    for ifname in ["hpnf-br0", "hpnf-br1"] {
        assert_no_xdp(ifname);
    }
    drop(live.nf.take());
    // A new NF attaches again and forwards.
    live.start_nf("nf2.log");
    live.ping("hpnf-h2", "10.0.0.1", 2);
}

#[test]
fn testbed_is_idempotent() {
    let Some(_lock) = setup("testbed_is_idempotent") else {
        return;
    };
    for _ in 0..2 {
        testbed("up", "all");
    }
    let ifnames = [
        "hpnf-br0",
        "hpnf-br1",
        "hpnf-fw-in",
        "hpnf-fw-out",
        "hpnf-gw-lan",
        "hpnf-gw-wan",
    ];
    for ifname in ifnames {
        assert!(
            Path::new("/sys/class/net").join(ifname).exists(),
            "{ifname}"
        );
    }
    assert_eq!(mac_of("hpnf-h1").len(), 17);
    for _ in 0..2 {
        testbed("down", "all");
    }
    for ifname in ifnames {
        assert!(
            !Path::new("/sys/class/net").join(ifname).exists(),
            "{ifname}"
        );
    }
    for ns in [
        "hpnf-h1", "hpnf-h2", "hpnf-in", "hpnf-out", "hpnf-lan", "hpnf-wan",
    ] {
        assert!(!Path::new("/var/run/netns").join(ns).exists(), "{ns}");
    }
}

impl Live {
    /// Sends SIGHUP to the NF (a reload) and waits for its outcome in the
    /// log: returns the log lines from `reloading` on.
    fn reload(&mut self) -> String {
        let before = self.log().matches("reloading ").count();
        let pid = self.pid().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let from = log.match_indices("reloading ").nth(before).map(|(i, _)| i);
            if let Some(tail) = from.map(|i| &log[i..]) {
                if tail.contains("reloaded ") || tail.contains("failed (the running graph") {
                    return tail.to_string();
                }
            }
            assert!(Instant::now() < deadline, "no reload outcome:\n{log}");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The firewall reloaded with new rules while a slow 16 MiB TCP transfer
/// runs through it: the transfer completes intact (its flow was handed
/// over), the flow counters go on, and the new rules apply at once (pings
/// and a new connection to port 9001 are now dropped). Then a broken
/// config: the error is logged with file and line and nothing changes.
#[test]
fn firewall_reload_keeps_flows_and_applies_new_rules_at_once() {
    let test = "firewall_reload_keeps_flows_and_applies_new_rules_at_once";
    let Some(_lock) = setup(test) else {
        return;
    };
    if !testkit::require(test, &[Need::Command("tc")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("firewall.toml");
    let original = std::fs::read_to_string(common::root().join("configs/firewall.toml")).unwrap();
    std::fs::write(&config, &original).unwrap();
    let mut live = Live::start("firewall", config.to_str().unwrap(), &[]);
    live.ping("hpnf-in", "10.0.1.3", 2);
    // Before: no listener on 9001, so the outside host refuses.
    let probe = live.py("hpnf-in", &["probe", "10.0.1.3", "9001", "3"]);
    assert_eq!(probe, "refused");

    // 16 MiB at 40 Mbit/s: about 3.5 s in flight.
    let tbf = "tc qdisc add dev eth0 root tbf rate 40mbit burst 64kb latency 500ms";
    let out = ns("hpnf-in", &tbf.split(' ').collect::<Vec<_>>())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = 16u64 << 20;
    let server = live.py_background("hpnf-out", &["server", "9000"]);
    thread::sleep(Duration::from_millis(300));
    let args = ["client", "10.0.1.3", "9000", &bytes.to_string()];
    let client = live.py_background("hpnf-in", &args);
    thread::sleep(Duration::from_millis(1200));
    let before = live.next_report();
    assert!(counter(&before, "fw", "flows") >= 1);

    // New rules on top: no ICMP from the inside, no new connection to 9001.
    let deny = r#"rules = [
  { from = "inside", match = "icmp", action = "deny", name = "no ping" },
  { from = "inside", match = "tcp and dst port 9001", action = "deny", name = "no 9001" },"#;
    std::fs::write(&config, original.replacen("rules = [", deny, 1)).unwrap();
    let outcome = live.reload();
    assert!(
        outcome.contains("elements kept with state  fw")
            && outcome.contains("ports kept                inside, outside"),
        "{outcome}"
    );
    assert!(
        live.helpers[client]
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none(),
        "the transfer should still be running during the reload"
    );
    // The new rules at once.
    assert!(
        !ping_ok("hpnf-in", "10.0.1.3", 1, "1"),
        "ping passed after the reload"
    );
    let probe = live.py("hpnf-in", &["probe", "10.0.1.3", "9001", "2"]);
    assert_eq!(probe, "timeout", "a new connection to 9001 passed");

    // The transfer completes intact.
    let out = live.wait_helper(client);
    live.wait_helper(server);
    assert_transfer_intact(&out, bytes);
    let after = live.next_report();
    for c in ["flows created", "established", "inside tcp"] {
        assert!(
            counter(&after, "fw", c) >= counter(&before, "fw", c),
            "`{c}` went back: {before} -> {after}"
        );
    }
    assert!(counter(&after, "fw", "established") > counter(&before, "fw", "established"));
    assert!(counter(&after, "fw", "no ping") >= 1);
    assert!(counter(&after, "fw", "no 9001") >= 1);
    let fw_in = |r: &Value| common::element(r, "fw")["packets_in"].as_u64().unwrap();
    assert!(
        fw_in(&after) > fw_in(&before),
        "element counters are monotonic"
    );

    // A broken config: logged with file and line; the run goes on as it was.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replacen("max_flows = 65536", "max_flows = \"many\"", 1),
    )
    .unwrap();
    let outcome = live.reload();
    let line = good
        .lines()
        .position(|l| l.starts_with("max_flows"))
        .unwrap()
        + 1;
    let at = format!("firewall.toml:{line}:");
    assert!(
        outcome.contains("failed (the running graph is untouched)"),
        "{outcome}"
    );
    assert!(outcome.contains(&at), "no {at} in: {outcome}");
    live.tcp_transfer("hpnf-out", "hpnf-in", "10.0.1.3", 9002, 1 << 20);
    assert!(
        !ping_ok("hpnf-in", "10.0.1.3", 1, "1"),
        "the new rules still apply"
    );
    let last = live.stop();
    assert!(counter(&last, "fw", "flows created") >= counter(&after, "fw", "flows created"));
}
