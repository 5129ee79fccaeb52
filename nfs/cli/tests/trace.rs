//! `hpio-nf run CONFIG --trace N` over pcap inputs: each traced packet's
//! path, the rule that decided (Classify, Firewall) and the drop reason.

mod common;

use common::{eth_ipv4_tcp, hpio_nf};
use testkit::frame::{Frame, Ip};
use testkit::pcap;

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 1, 3];
const INSIDE: [u8; 4] = [10, 0, 1, 2];
const OUTSIDE: [u8; 4] = [10, 0, 1, 3];

const CONFIG: &str = r#"
connections = [
  "inside -> acl",
  "acl[0] -> [0]fw[0] -> outside",
  "acl[1] -> junk",
  "back -> [1]fw[1] -> lan",
]

[runtime]
clock = "packet"

[ports.inside]
driver = "pcap"
input = "inside.pcap"

[ports.back]
driver = "pcap"
input = "back.pcap"

[ports.outside]
driver = "pcap"
output = "outside.pcap"

[ports.lan]
driver = "pcap"
output = "lan.pcap"

[elements.acl]
class = "Classify"
rules = ["udp and dst port 53 -> 1", "tcp -> 0"]
default = 0

[elements.junk]
class = "Discard"

[elements.fw]
class = "Firewall"
rules = [
  { match = "any", state = "established", action = "allow", name = "replies" },
  { from = "inside", match = "tcp", action = "allow", name = "out tcp" },
  { from = "inside", match = "any", action = "deny", name = "inside deny" },
  { from = "outside", match = "any", action = "deny" },
]
"#;

fn udp(dport: u16) -> Vec<u8> {
    Frame::udp(Ip::v4(INSIDE, OUTSIDE), 5000, dport)
        .macs(IN_MAC, OUT_MAC)
        .payload(b"query")
        .build()
}

fn ping() -> Vec<u8> {
    Frame::echo(Ip::v4(INSIDE, OUTSIDE), 7, 1)
        .macs(IN_MAC, OUT_MAC)
        .payload(b"ping")
        .build()
}

/// The config in a temporary folder with its inputs: a TCP SYN out, a DNS
/// query (Classify sends it to `junk`), a ping (the firewall denies it).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.toml"), CONFIG).unwrap();
    let syn = eth_ipv4_tcp(IN_MAC, OUT_MAC, INSIDE, OUTSIDE, 64, 40000, 80, true);
    let frames = [syn, udp(53), ping()];
    pcap::write_data(
        &dir.path().join("inside.pcap"),
        &frames,
        1_000_000_000,
        1_000,
    );
    pcap::write_data(&dir.path().join("back.pcap"), &[], 1_000_000_000, 1_000);
    dir
}

fn run(dir: &tempfile::TempDir, extra: &[&str]) -> std::process::Output {
    let out = hpio_nf()
        .current_dir(dir.path())
        .args(["run", "fw.toml", "--no-control"])
        .args(extra)
        .output()
        .expect("runs hpio-nf");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn trace_shows_each_packets_path_rule_and_drop_reason() {
    let dir = setup();
    let out = run(&dir, &["--trace", "5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("trace: 3 of 5 packet(s) followed"), "{text}");
    // The SYN: Classify rule 1, the firewall's "out tcp", out on `outside`.
    let syn = "packet 1: received on inside (worker 0, t=1.000000 s): 59 bytes";
    assert!(text.contains(syn), "{text}");
    let syn_path = "  [0]acl (Classify)\n      rule 1: tcp -> 0\n    -> output 0 -> fw\n  \
                    [0]fw (Firewall)\n      rule 1 \"out tcp\": allow from inside: tcp\n    \
                    -> output 0 -> outside\n  sent on outside\n";
    assert!(text.contains(syn_path), "{text}");
    // The DNS query: Classify rule 0 sends it to junk.
    let dns = "      rule 0: udp and dst port 53 -> 1\n    -> output 1 -> junk\n  [0]junk (Discard)\n    -> consumed by junk\n";
    assert!(text.contains(dns), "{text}");
    // The ping: Classify's default, then denied by the firewall's rule 2.
    let denied = "      default\n    -> output 0 -> fw\n  [0]fw (Firewall)\n      \
                  rule 2 \"inside deny\": deny from inside: any\n    -> dropped: denied\n";
    assert!(text.contains(denied), "{text}");
}

#[test]
fn trace_filter_selects_and_json_has_the_records() {
    let dir = setup();
    let out = run(&dir, &["--trace", "1", "--trace-filter", "icmp", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let traces = report["traces"].as_array().expect("traces in the report");
    assert_eq!(traces.len(), 1, "{report}");
    let hops = traces[0]["hops"].as_array().unwrap();
    assert_eq!(hops[1]["element"], "fw");
    assert_eq!(hops[1]["dropped"], serde_json::json!(["denied"]));
    assert_eq!(
        hops[1]["notes"][0],
        "rule 2 \"inside deny\": deny from inside: any"
    );
    assert_eq!(hops[0]["notes"][0], "default");
    // A bad filter is refused with the place of the fault.
    let bad = hpio_nf()
        .current_dir(dir.path())
        .args([
            "run",
            "fw.toml",
            "--no-control",
            "--trace",
            "1",
            "--trace-filter",
            "icmp and dst prot 1",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--trace-filter: ") && err.contains("icmp and dst prot 1\n"),
        "{err}"
    );
}
