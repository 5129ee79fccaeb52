//! Helpers shared by the command's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use etherparse::PacketBuilder;

/// The workspace root (configs/ lives there).
pub fn root() -> PathBuf {
    testkit::workspace_root()
}

/// The `hpio-nf` binary under test.
pub fn hpio_nf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hpio-nf"));
    c.current_dir(root());
    c.env("RUST_LOG", "warn");
    c
}

/// Runs `hpio-nf run CONFIG --json` with overrides, asserts success and
/// returns the final report.
pub fn run_ok(config: &str, set: &[String]) -> serde_json::Value {
    let mut cmd = hpio_nf();
    cmd.arg("run").arg(config).arg("--json");
    for s in set {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.output().expect("run hpio-nf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hpio-nf run {config} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a JSON report");
    serde_json::from_str(last).expect("report is JSON")
}

/// The report entry of element `name`.
pub fn element<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no element {name} in {report}"))
}

/// Drops of `element` under `reason` (0 when absent).
pub fn drop_count(element: &serde_json::Value, reason: &str) -> u64 {
    element["drops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d[0] == reason)
        .map_or(0, |d| d[1].as_u64().unwrap())
}

/// An Ethernet/IPv4/TCP frame (SYN or ACK) with payload "hello".
#[allow(clippy::too_many_arguments)]
pub fn eth_ipv4_tcp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    sport: u16,
    dport: u16,
    syn: bool,
) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src, dst, ttl)
        .tcp(sport, dport, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    b.write(&mut v, b"hello").unwrap();
    v
}
