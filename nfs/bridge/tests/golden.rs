//! Golden tests: bridge configs run over pcap files by the runtime, their
//! output pcaps compared frame by frame with frames the test builds itself
//! with etherparse.
//!
//! Most tests feed the bridge from one "trunk" capture whose frames carry
//! an 802.1Q tag naming the bridge port they arrive on (VLAN 100 + i): a
//! Classify splits them, Rewrite removes the tag, and each bridge output
//! goes to its own pcap file. With `burst = 1` every frame crosses the whole
//! graph before the next one, so the order of arrival across bridge ports
//! is exactly the capture's; with `clock = "packet"` the bridge's clock is
//! the capture's timestamps, which makes aging deterministic.

use hpio_nf::config::Config;
use hpio_nf::element::Registry;
use hpio_nf::port::PortRegistry;
use hpio_nf::runtime::Report;
use testkit::frame::{tag, Frame, Ip};
use testkit::pcap;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0d];
const BCAST: [u8; 6] = [0xff; 6];
const MCAST: [u8; 6] = [0x33, 0x33, 0, 0, 0, 0x01];
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn registry() -> Registry {
    let mut r = Registry::builtin();
    hpio_nf_bridge::register(&mut r);
    r
}

/// A UDP/IPv4 frame from `src` to `dst`; `n` goes in the payload and the
/// IP addresses so that every frame of a test is distinct.
fn frame(src: [u8; 6], dst: [u8; 6], n: u8) -> Vec<u8> {
    Frame::udp(
        Ip::v4([10, 0, 0, src[5]], [10, 0, 0, dst[5]]),
        4000 + u16::from(n),
        9,
    )
    .macs(src, dst)
    .payload(&[n; 18])
    .build()
}

/// Runs `config` to the end.
fn run(config: &Config) -> Report {
    config.run_to_end().unwrap_or_else(|e| panic!("{e}"))
}

/// What a bridge run produced.
struct Outcome {
    /// Frames sent out of each bridge port, in order.
    out: Vec<Vec<Vec<u8>>>,
    report: Report,
    dir: tempfile::TempDir,
}

impl Outcome {
    /// A custom counter of the bridge.
    fn counter(&self, name: &str) -> u64 {
        let br = self
            .report
            .elements
            .iter()
            .find(|e| e.name == "br")
            .unwrap();
        br.counters
            .custom
            .iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no counter {name}: {:?}", br.counters.custom))
            .1
    }

    /// Drops of the bridge under `reason`.
    fn drops(&self, reason: &str) -> u64 {
        let br = self
            .report
            .elements
            .iter()
            .find(|e| e.name == "br")
            .unwrap();
        br.counters
            .drops
            .iter()
            .find(|(k, _)| k == reason)
            .map_or(0, |d| d.1)
    }

    fn table_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("br.fdb")).unwrap()
    }
}

/// Runs an `ports`-port bridge with the extra parameters `params` over
/// `events`: (time ns, bridge port, frame), in arrival order.
fn bridge(ports: usize, params: &str, events: &[(u64, usize, Vec<u8>)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let trunk = dir.path().join("trunk.pcap");
    let records: Vec<pcap::Frame> = events
        .iter()
        .map(|(t, p, f)| pcap::Frame::new(*t, tag(f, 0x8100, 100 + *p as u16)))
        .collect();
    pcap::write(&trunk, &records);
    let mut conns = vec!["trunk -> split".to_string()];
    let mut rules = Vec::new();
    let mut tables = String::new();
    for i in 0..ports {
        conns.push(format!("split[{i}] -> untag{i} -> [{i}]br"));
        conns.push(format!("br[{i}] -> out{i}"));
        rules.push(format!("\"vlan {} -> {i}\"", 100 + i));
        tables += &format!(
            "[ports.out{i}]\ndriver = \"pcap\"\noutput = \"{}\"\n\
             [elements.untag{i}]\nclass = \"Rewrite\"\nvlan_pop = true\n",
            dir.path().join(format!("out{i}.pcap")).display()
        );
    }
    conns.push(format!("split[{ports}] -> discard"));
    let text = format!(
        "connections = [{}]\n\
         [runtime]\nworkers = 1\nburst = 1\nclock = \"packet\"\n\
         [ports.trunk]\ndriver = \"pcap\"\ninput = \"{}\"\n\
         {tables}\
         [elements.split]\nclass = \"Classify\"\nrules = [{}]\ndefault = {ports}\n\
         [elements.discard]\nclass = \"Discard\"\n\
         [elements.br]\nclass = \"Bridge\"\nports = {ports}\ntable_file = \"{}\"\n{params}\n",
        conns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", "),
        trunk.display(),
        rules.join(", "),
        dir.path().join("br.fdb").display(),
    );
    let config = Config::parse_str(
        &text,
        "bridge-test.toml",
        &registry(),
        &PortRegistry::builtin(),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let report = run(&config);
    let split = report.elements.iter().find(|e| e.name == "split").unwrap();
    assert_eq!(split.counters.packets_in, events.len() as u64);
    let out = (0..ports)
        .map(|i| pcap::read_data(&dir.path().join(format!("out{i}.pcap"))))
        .collect();
    Outcome { out, report, dir }
}

#[test]
fn learning_flooding_and_no_flooding_once_learned() {
    let ev = |p: usize, f: Vec<u8>| (S, p, f);
    let events = vec![
        ev(0, frame(A, B, 1)),     // B unknown: flooded to 1 and 2
        ev(1, frame(B, A, 2)),     // A learned on 0: to 0 only
        ev(0, frame(A, B, 3)),     // B learned on 1: to 1 only
        ev(2, frame(C, BCAST, 4)), // broadcast: to 0 and 1
        ev(2, frame(C, MCAST, 5)), // multicast: to 0 and 1
        ev(0, frame(A, C, 6)),     // C learned on 2: to 2 only
        ev(1, frame(B, D, 7)),     // D never seen: to 0 and 2
        ev(2, frame(C, A, 8)),     // to 0 only
        ev(1, frame(B, BCAST, 9)), // broadcast from a known host: still flooded
    ];
    let o = bridge(3, "", &events);
    assert_eq!(
        o.out[0],
        [
            frame(B, A, 2),
            frame(C, BCAST, 4),
            frame(C, MCAST, 5),
            frame(B, D, 7),
            frame(C, A, 8),
            frame(B, BCAST, 9),
        ]
    );
    assert_eq!(
        o.out[1],
        [
            frame(A, B, 1),
            frame(A, B, 3),
            frame(C, BCAST, 4),
            frame(C, MCAST, 5)
        ]
    );
    assert_eq!(
        o.out[2],
        [
            frame(A, B, 1),
            frame(A, C, 6),
            frame(B, D, 7),
            frame(B, BCAST, 9)
        ]
    );
    assert_eq!(o.counter("entries"), 3);
    assert_eq!(o.counter("learned"), 3);
    assert_eq!(o.counter("moves"), 0);
    assert_eq!(o.counter("table-full"), 0);
    let per_port = |p: usize| {
        ["rx", "tx", "forwarded", "flooded", "filtered"].map(|k| o.counter(&format!("port{p}.{k}")))
    };
    assert_eq!(per_port(0), [3, 6, 2, 1, 0]);
    assert_eq!(per_port(1), [3, 4, 1, 2, 0]);
    assert_eq!(per_port(2), [3, 4, 1, 2, 0]);
    let br = o.report.elements.iter().find(|e| e.name == "br").unwrap();
    assert_eq!(br.counters.packets_in, 9);
    assert_eq!(br.counters.packets_out, 14);
    assert_eq!(br.counters.dropped(), 0);
}

#[test]
fn never_sends_a_frame_back_out_of_its_ingress_port() {
    let events = vec![
        (S, 0, frame(A, BCAST, 1)), // A on 0
        (S, 0, frame(B, BCAST, 2)), // B on 0 too (same segment)
        (S, 0, frame(A, B, 3)),     // filtered: B is on the segment it came from
        (S, 0, frame(B, A, 4)),     // filtered
        (S, 1, frame(C, A, 5)),     // to 0
        (S, 0, frame(A, C, 6)),     // to 1
    ];
    let o = bridge(2, "", &events);
    assert_eq!(o.out[0], [frame(C, A, 5)]);
    assert_eq!(
        o.out[1],
        [frame(A, BCAST, 1), frame(B, BCAST, 2), frame(A, C, 6)]
    );
    assert_eq!(o.drops("filtered"), 2);
    assert_eq!(o.counter("port0.filtered"), 2);
    assert_eq!(o.counter("port1.filtered"), 0);
}

#[test]
fn a_host_silent_longer_than_aging_is_flooded_to_again() {
    let events = vec![
        (0, 1, frame(B, A, 1)),                // B on 1 at t=0 (A unknown: flooded)
        (5 * S, 0, frame(A, B, 2)),            // B known: to 1 only
        (9 * S + 999 * MS, 0, frame(A, B, 3)), // 9.999 s after B spoke: still known
        (10 * S, 0, frame(A, B, 4)),           // 10 s: B expired, flooded
        (16 * S, 0, frame(A, B, 5)),           // still flooded
        (16 * S + MS, 1, frame(B, A, 6)),      // B speaks: A known (t=16 s): to 0
        (17 * S, 0, frame(A, B, 7)),           // B known again: to 1 only
        (40 * S, 2, frame(C, A, 8)),           // A silent 24 s: flooded
    ];
    let o = bridge(3, "aging = \"10s\"", &events);
    assert_eq!(o.out[0], [frame(B, A, 1), frame(B, A, 6), frame(C, A, 8)]);
    assert_eq!(
        o.out[1],
        [
            frame(A, B, 2),
            frame(A, B, 3),
            frame(A, B, 4),
            frame(A, B, 5),
            frame(A, B, 7),
            frame(C, A, 8)
        ]
    );
    assert_eq!(o.out[2], [frame(B, A, 1), frame(A, B, 4), frame(A, B, 5)]);
    // Sweeps run every aging/4 = 2.5 s: the one at 16 s reclaims B (so B
    // is learned anew at 16.001 s), the one at 40 s reclaims A and B.
    assert_eq!(o.counter("aged"), 3);
    assert_eq!(o.counter("learned"), 4, "B, A, B again, C");
    assert_eq!(o.counter("entries"), 1);
    // At 40 s only C is live: the table file lists it alone.
    let table = o.table_file();
    let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows, ["02:00:00:00:00:0c 2 0.000"], "{table}");
}

#[test]
fn a_full_table_counts_what_it_could_not_learn() {
    let events = vec![
        (S, 0, frame(A, BCAST, 1)),
        (S, 1, frame(B, BCAST, 2)),
        (S, 2, frame(C, BCAST, 3)), // table full: C not learned
        (S, 2, frame(C, A, 4)),     // A known: to 0; C still not learned
        (S, 0, frame(A, C, 5)),     // C unknown: flooded to 1 and 2
        (S, 1, frame(B, A, 6)),     // known hosts keep working: to 0
    ];
    let o = bridge(3, "max_entries = 2", &events);
    assert_eq!(
        o.out[0],
        [
            frame(B, BCAST, 2),
            frame(C, BCAST, 3),
            frame(C, A, 4),
            frame(B, A, 6)
        ]
    );
    assert_eq!(
        o.out[1],
        [frame(A, BCAST, 1), frame(C, BCAST, 3), frame(A, C, 5)]
    );
    assert_eq!(
        o.out[2],
        [frame(A, BCAST, 1), frame(B, BCAST, 2), frame(A, C, 5)]
    );
    assert_eq!(o.counter("table-full"), 2);
    assert_eq!(o.counter("entries"), 2);
    assert_eq!(o.counter("learned"), 2);
}

#[test]
fn a_mac_that_moves_is_followed_and_counted() {
    let events = vec![
        (S, 0, frame(A, BCAST, 1)), // A on 0
        (S, 1, frame(B, A, 2)),     // to 0
        (S, 2, frame(A, BCAST, 3)), // A moves to 2
        (S, 1, frame(B, A, 4)),     // to 2 now
        (S, 0, frame(D, A, 5)),     // to 2
    ];
    let o = bridge(3, "", &events);
    assert_eq!(o.out[0], [frame(B, A, 2), frame(A, BCAST, 3)]);
    assert_eq!(o.out[1], [frame(A, BCAST, 1), frame(A, BCAST, 3)]);
    assert_eq!(
        o.out[2],
        [frame(A, BCAST, 1), frame(B, A, 4), frame(D, A, 5)]
    );
    assert_eq!(o.counter("moves"), 1);
    assert_eq!(o.counter("entries"), 3);
    let table = o.table_file();
    assert!(table.contains("02:00:00:00:00:0a 2 0.000"), "{table}");
}

#[test]
fn the_table_file_shows_what_was_learned() {
    let events = vec![
        (S, 0, frame(A, BCAST, 1)),
        (S + 250 * MS, 1, frame(B, A, 2)),
        (3 * S, 3, frame(D, A, 3)),
    ];
    let o = bridge(4, "max_entries = 100\naging = \"1m\"", &events);
    assert_eq!(
        o.table_file(),
        "# hpio-nf Bridge MAC table: worker 0, 3 entries (max 100), aging 60s\n\
         # mac port age\n\
         02:00:00:00:00:0a 0 2.000\n\
         02:00:00:00:00:0b 1 1.750\n\
         02:00:00:00:00:0d 3 0.000\n"
    );
    assert!(!o.dir.path().join("br.fdb.tmp").exists());
}

#[test]
fn the_reserved_and_the_invalid_are_dropped_with_reasons() {
    let events = vec![
        (S, 0, frame(A, [0x01, 0x80, 0xc2, 0, 0, 0x00], 1)), // STP: never forwarded
        (S, 1, frame(MCAST, B, 2)),                          // multicast source
        (S, 1, frame(B, A, 3)),                              // A learned from the BPDU
    ];
    let o = bridge(2, "", &events);
    assert_eq!(o.out[0], [frame(B, A, 3)]);
    assert!(o.out[1].is_empty());
    assert_eq!(o.drops("reserved"), 1);
    assert_eq!(o.drops("invalid-source"), 1);
}

#[test]
fn the_shipped_config_is_valid() {
    let config = Config::load(
        &testkit::workspace_root().join("configs/bridge.toml"),
        &registry(),
        &PortRegistry::builtin(),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.graph.ports, ["lan0", "lan1"]);
}

#[test]
fn the_shipped_config_bridges_its_two_ports() {
    // configs/bridge.toml with its interfaces swapped for pcap files.
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(testkit::workspace_root().join("configs/bridge.toml")).unwrap();
    let mut text = text.clone();
    for i in 0..2 {
        let live = format!("driver = \"auto\"\ninterface = \"hpnf-br{i}\"");
        assert!(text.contains(&live), "configs/bridge.toml names hpnf-br{i}");
        let input = dir.path().join(format!("in{i}.pcap"));
        let output = dir.path().join(format!("out{i}.pcap"));
        text = text.replace(
            &live,
            &format!(
                "driver = \"pcap\"\ninput = \"{}\"\noutput = \"{}\"",
                input.display(),
                output.display()
            ),
        );
    }
    // lan0's whole capture is read before lan1's (burst 32): A speaks first.
    pcap::write(
        &dir.path().join("in0.pcap"),
        &[
            pcap::Frame::new(S, frame(A, B, 1)),
            pcap::Frame::new(S, frame(A, BCAST, 2)),
        ],
    );
    pcap::write(
        &dir.path().join("in1.pcap"),
        &[
            pcap::Frame::new(S, frame(B, A, 3)),
            pcap::Frame::new(S, frame(B, A, 4)),
        ],
    );
    let fdb = dir.path().join("fdb");
    let config = Config::parse_str(
        &text,
        "bridge.toml",
        &registry(),
        &PortRegistry::builtin(),
        &[format!("elements.br.table_file={}", fdb.display())],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    run(&config);
    assert_eq!(
        pcap::read_data(&dir.path().join("out1.pcap")),
        [frame(A, B, 1), frame(A, BCAST, 2)]
    );
    assert_eq!(
        pcap::read_data(&dir.path().join("out0.pcap")),
        [frame(B, A, 3), frame(B, A, 4)]
    );
    let table = std::fs::read_to_string(&fdb).unwrap();
    assert!(table.contains("02:00:00:00:00:0a 0 "), "{table}");
    assert!(table.contains("02:00:00:00:00:0b 1 "), "{table}");
}
