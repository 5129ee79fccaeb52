//! Resource bounds: the memory of a run is set by its configuration (pool,
//! tables, rings) and does not grow under a flood of new flows, new MAC
//! addresses or fragments. Each test floods the element of a shipped
//! config (its `[elements.*]` tables as shipped) from in-memory `generator`
//! ports, with a new source address, port or fragment key in every packet,
//! samples the run's resident memory (`VmRSS` of /proc/PID/status) twice a
//! second, and asserts that after the warm-up (the first third of the flood,
//! by which the tables are full) it grows by no more than [`SLACK_KIB`].
//!
//! `HPIO_NF_FLOOD_SECS` sets the flood's length (default 9 s; `make soak`
//! runs 60). The samples are printed (`--nocapture`); docs/reliability.md
//! ("Resource bounds") has the 60-second figures.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Growth allowed after the warm-up: allocator noise, not a leak (a leak
/// of even one byte per packet would pass this within a second at the
/// flood's rate of millions of packets per second).
const SLACK_KIB: u64 = 512;

fn flood_secs() -> u64 {
    std::env::var("HPIO_NF_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9)
}

/// The `[elements.*]` tables of a shipped config (the end of the file).
fn shipped_elements(config: &str) -> String {
    let text = std::fs::read_to_string(common::root().join(config)).unwrap();
    let at = text.find("\n[elements.").expect("an [elements.*] table");
    text[at..].to_string()
}

/// A generator port table: endless with `params`, or a sink (`count = 0`).
fn generator(name: &str, params: Option<&str>) -> String {
    match params {
        Some(p) => format!("[ports.{name}]\ndriver = \"generator\"\n{p}\n"),
        None => format!("[ports.{name}]\ndriver = \"generator\"\ncount = 0\n"),
    }
}

/// The bridge of configs/bridge.toml, port 0 flooded with frames from a
/// new source MAC each (2^32 of them, to a fixed unknown destination).
fn bridge_config(dir: &std::path::Path) -> String {
    let flood = "src_mac = \"02:00:00:00:00:00\"\nsrc_mac_count = 4294967295\n\
                 dst_mac = \"02:ff:00:00:00:01\"";
    let fdb = dir.join("bridge.fdb").display().to_string();
    format!(
        "connections = [\"lan0 -> [0]br\", \"br[0] -> lan0\", \"lan1 -> [1]br\", \"br[1] -> lan1\"]\n\
         [runtime]\nworkers = 1\n{}{}{}",
        generator("lan0", Some(flood)),
        generator("lan1", None),
        shipped_elements("configs/bridge.toml").replace("/tmp/hpio-nf-bridge.fdb", &fdb)
    )
}

/// The firewall of configs/firewall.toml, flooded from the inside with
/// `params` (new 5-tuples, or fragments of new datagrams).
fn firewall_config(params: &str) -> String {
    format!(
        "connections = [\"inside -> [0]fw[0] -> outside\", \"outside -> [1]fw[1] -> inside\"]\n\
         [runtime]\nworkers = 1\n{}{}{}",
        generator("inside", Some(params)),
        generator("outside", None),
        shipped_elements("configs/firewall.toml")
    )
}

/// The gateway of configs/gateway.toml as shipped, its LAN port flooded with
/// `params` and its WAN port a sink (which answers no ARP request or
/// neighbour solicitation: every next hop stays unresolved).
fn gateway_config(params: &str) -> String {
    let shipped = std::fs::read_to_string(common::root().join("configs/gateway.toml")).unwrap();
    let ports = "[ports.lan]\ndriver = \"auto\"\ninterface = \"hpnf-gw-lan\"\n\n\
                 [ports.wan]\ndriver = \"auto\"\ninterface = \"hpnf-gw-wan\"\n";
    assert!(
        shipped.contains(ports),
        "configs/gateway.toml's ports changed"
    );
    let flood = format!(
        "{}\n{}",
        generator("lan", Some(params)),
        generator("wan", None)
    );
    shipped.replace(ports, &flood)
}

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Runs `config` for the flood's length, sampling RSS twice a second;
/// returns the samples (seconds, KiB) and the final report.
fn flood(config: &str) -> (Vec<(f64, u64)>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.toml");
    std::fs::write(&path, config).unwrap();
    // The clock starts at the run's first live report: its ports are open
    // and its workers run (a loaded machine may take seconds to get there).
    let args = ["--no-control".to_string()];
    let mut run = common::LiveRun::start(&path, &args, dir.path().join("run.log"));
    let pid = run.id();
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(flood_secs()) {
        sleep(Duration::from_millis(500));
        samples.push((start.elapsed().as_secs_f64(), rss_kib(pid)));
    }
    let report = run.stop();
    (samples, report)
}

/// A custom counter of element `name` in `report`.
fn custom(report: &Value, name: &str, counter: &str) -> u64 {
    let el = common::element(report, name);
    el["custom"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == counter)
        .and_then(|c| c[1].as_u64())
        .unwrap_or_else(|| panic!("no counter `{counter}` in {el}"))
}

/// Prints the samples (and the counters of `element`, the one flooded) and
/// asserts the RSS is flat after the warm-up.
fn assert_flat(what: &str, element: &str, samples: &[(f64, u64)], report: &Value) {
    let warm = samples.len() / 3;
    let (t0, base) = samples[warm.max(1) - 1];
    let peak = samples[warm..].iter().map(|s| s.1).max().unwrap();
    let packets: u64 = report["ports"][0]["rx"]["packets"].as_u64().unwrap();
    let line: Vec<String> = samples
        .iter()
        .map(|(t, k)| format!("{t:.1}s {k}"))
        .collect();
    let el = common::element(report, element);
    let shown = [
        "entries",
        "table-full",
        "flows",
        "flows created",
        "flows expired",
    ];
    let counters: Vec<String> = el["custom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap(), &c[1]))
        .filter(|(n, _)| shown.contains(n) || n.starts_with("fragments"))
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    let (min, max) = (
        samples.iter().map(|s| s.1).min(),
        samples.iter().map(|s| s.1).max(),
    );
    println!(
        "{what}: {packets} packets; VmRSS KiB after warm-up ({t0:.1} s): {base}, peak after: \
         {peak} (+{}); min {min:?}, max {max:?}\n  {}: drops {}; {}\n  samples: {}",
        peak - base.min(peak),
        el["name"],
        el["drops"],
        counters.join(", "),
        line.join(", ")
    );
    assert!(
        peak <= base + SLACK_KIB,
        "{what}: RSS grew from {base} KiB at {t0:.1} s to {peak} KiB: {line:?}"
    );
}

#[test]
fn bridge_memory_is_flat_under_a_flood_of_new_macs() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, report) = flood(&bridge_config(dir.path()));
    // The table filled (4096 entries as shipped) and the rest were refused, counted.
    assert_eq!(custom(&report, "br", "entries"), 4096, "{report}");
    assert!(custom(&report, "br", "table-full") > 0, "{report}");
    assert_flat("bridge, new source MACs", "br", &samples, &report);
}

#[test]
fn firewall_memory_is_flat_under_a_flood_of_new_flows() {
    let params = "src_ip = \"10.0.1.2\"\ndst_ip = \"10.0.1.3\"\nsrc_ip_count = 65536\n\
                  src_port = 1\nsrc_port_count = 65535";
    let (samples, report) = flood(&firewall_config(params));
    assert!(
        common::drop_count(common::element(&report, "fw"), "table-full") > 0,
        "{report}"
    );
    assert_flat("firewall, new UDP 5-tuples", "fw", &samples, &report);
}

#[test]
fn firewall_memory_is_flat_under_a_flood_of_fragments() {
    for which in ["first", "later"] {
        let params = format!(
            "src_ip = \"10.0.1.2\"\ndst_ip = \"10.0.1.3\"\nsrc_ip_count = 16777216\n\
             fragment = \"{which}\""
        );
        let (samples, report) = flood(&firewall_config(&params));
        assert!(
            common::drop_count(common::element(&report, "fw"), "fragment") > 0,
            "{report}"
        );
        assert_flat(
            &format!("firewall, {which} fragments of new datagrams"),
            "fw",
            &samples,
            &report,
        );
    }
}

#[test]
fn gateway_memory_is_flat_under_a_flood_of_new_flows() {
    // 200 LAN hosts x 64,511 source ports to one Internet server: a new
    // NAT mapping per packet until its 65,536 are taken.
    let params = "src_ip = \"192.168.1.2\"\nsrc_ip_count = 200\nsrc_port = 1024\n\
                  src_port_count = 64511\ndst_ip = \"198.51.100.10\"";
    let (samples, report) = flood(&gateway_config(params));
    let nat = common::element(&report, "nat");
    assert!(common::drop_count(nat, "table-full") > 0, "{nat}");
    // The WAN next hop never answers: what reaches the querier waits, a
    // bounded few, and the rest is dropped and counted.
    let arpq = common::element(&report, "arpq_wan");
    assert!(common::drop_count(arpq, "unresolved") > 0, "{arpq}");
    assert_flat("gateway, new IPv4 flows", "nat", &samples, &report);
}

#[test]
fn gateway_memory_is_flat_under_a_flood_to_new_ipv6_neighbours() {
    // Neighbour-cache exhaustion (RFC 6583): every packet to another
    // address of the on-link WAN /64, each one a neighbour to solicit.
    let params = "src_ip = \"2001:db8:1::2\"\ndst_ip = \"2001:db8:ff::1000\"\n\
                  dst_ip_count = 4294967295";
    let (samples, report) = flood(&gateway_config(params));
    // The firewall keeps its 65,536 flows, the querier its 1,024 neighbours.
    let fw = common::element(&report, "fw");
    assert!(common::drop_count(fw, "table-full") > 0, "{fw}");
    let ndq = common::element(&report, "ndq_wan");
    assert!(common::drop_count(ndq, "table-full") > 0, "{ndq}");
    assert_flat(
        "gateway, new on-link IPv6 neighbours",
        "ndq_wan",
        &samples,
        &report,
    );
}

#[test]
fn router_memory_is_flat_under_a_flood_to_new_ipv4_neighbours() {
    // IpLookup and ArpQuerier as a router's last hop: every packet to
    // another address of an on-link /8 where nothing answers.
    let config = format!(
        "connections = [\"lan -> rt\", \"rt[0] -> arpq -> wan\", \"rt[1] -> wan\", \
         \"replies -> [1]arpq\"]\n[runtime]\nworkers = 1\n{}{}{}\
         [elements.rt]\nclass = \"IpLookup\"\noutputs = 2\nroutes = [\"10.0.0.0/8 -> 0\"]\n\
         [elements.arpq]\nclass = \"ArpQuerier\"\nipv4 = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n",
        generator(
            "lan",
            Some("src_ip = \"10.1.0.1\"\ndst_ip = \"10.2.0.0\"\ndst_ip_count = 16000000")
        ),
        generator("replies", None),
        generator("wan", None),
    );
    let (samples, report) = flood(&config);
    let arpq = common::element(&report, "arpq");
    assert!(common::drop_count(arpq, "table-full") > 0, "{arpq}");
    assert_flat(
        "router, new on-link IPv4 neighbours",
        "arpq",
        &samples,
        &report,
    );
}
