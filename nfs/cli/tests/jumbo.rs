//! Frames of any size through `hpio-nf run`: a Bridge over pcap ports fed
//! jumbo frames, GSO-sized frames and records cut by a snap length. No frame
//! may come out cut short; what does not fit is dropped and counted with its
//! own reason, in the table and in `--json`.

mod common;

use std::path::{Path, PathBuf};

use common::hpio_nf;
use testkit::frame::{Frame, Ip};
use testkit::pcap;

const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// A UDP/IPv4 frame of exactly `len` bytes from A to B (flooded by the
/// bridge: B is never learned), built and checked by etherparse.
fn frame(len: usize, n: u8) -> Vec<u8> {
    let v = Frame::udp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 4000 + u16::from(n), 9)
        .macs(A, B)
        .payload(&vec![n; len - 42])
        .build();
    assert_eq!(v.len(), len);
    assert!(etherparse::SlicedPacket::from_ethernet(&v)
        .unwrap()
        .transport
        .is_some());
    v
}

/// One pcap record: (bytes captured, original length).
type Rec = (Vec<u8>, u32);

/// Writes records as they are (incl_len = captured bytes, orig_len as
/// given), 1 µs apart.
fn write(path: &Path, recs: &[Rec]) {
    let frames: Vec<pcap::Frame> = recs
        .iter()
        .enumerate()
        .map(|(i, (data, orig_len))| pcap::Frame {
            ts_ns: 1_000_000_000 + i as u64 * 1_000,
            data: data.clone(),
            orig_len: *orig_len,
        })
        .collect();
    pcap::write(path, &frames);
}

/// Every record of `path` as (data, orig_len), through pcap-file.
fn read(path: &Path) -> Vec<Rec> {
    pcap::read(path)
        .into_iter()
        .map(|f| (f.data, f.orig_len))
        .collect()
}

/// A two-port Bridge over pcap ports: `lan0` replays `input`, everything
/// flooded to `lan1` lands in its output file.
struct Setup {
    _dir: tempfile::TempDir,
    config: PathBuf,
    out: PathBuf,
}

fn setup(recs: &[Rec]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let empty = dir.path().join("empty.pcap");
    let out = dir.path().join("out.pcap");
    write(&input, recs);
    write(&empty, &[]);
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "connections = [\"lan0 -> [0]br\", \"br[0] -> lan0\", \"lan1 -> [1]br\", \"br[1] -> lan1\"]\n\
             [ports.lan0]\ndriver = \"pcap\"\ninput = \"{}\"\noutput = \"{}\"\n\
             [ports.lan1]\ndriver = \"pcap\"\ninput = \"{}\"\noutput = \"{}\"\n\
             [elements.br]\nclass = \"Bridge\"\nports = 2\n",
            input.display(),
            dir.path().join("back.pcap").display(),
            empty.display(),
            out.display()
        ),
    )
    .unwrap();
    Setup {
        _dir: dir,
        config,
        out,
    }
}

/// `hpio-nf run CONFIG [--json] --set ...`: (stdout, last line as JSON when `json`).
fn run(config: &Path, json: bool, set: &[&str]) -> (String, serde_json::Value) {
    let mut cmd = hpio_nf();
    cmd.arg("run").arg(config);
    if json {
        cmd.arg("--json");
    }
    for s in set {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = if json {
        serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
    } else {
        serde_json::Value::Null
    };
    (stdout, v)
}

/// The records fed to every run: a jumbo frame (9,216 bytes), a GSO-sized
/// frame (16,450), a 200-byte frame captured with a 100-byte snap length,
/// and small frames between them.
fn records() -> (Vec<Rec>, [Vec<u8>; 5]) {
    let jumbo = frame(9216, 1);
    let gso = frame(16450, 2);
    let cut = frame(200, 3);
    let (s1, s2) = (frame(60, 4), frame(1514, 5));
    let recs = vec![
        (jumbo.clone(), 9216),
        (s1.clone(), 60),
        (gso.clone(), 16450),
        (cut[..100].to_vec(), 200),
        (s2.clone(), 1514),
    ];
    (recs, [jumbo, gso, cut, s1, s2])
}

#[test]
fn jumbo_frames_pass_whole_and_bigger_ones_are_counted_oversize() {
    let (recs, [jumbo, _gso, _cut, s1, s2]) = records();
    let s = setup(&recs);
    let (_, report) = run(&s.config, true, &[]);
    // Flooded to lan1: the jumbo frame whole, the small ones; nothing cut.
    let got = read(&s.out);
    assert_eq!(
        got,
        vec![(jumbo, 9216), (s1, 60), (s2, 1514)],
        "every frame whole, incl_len = orig_len"
    );
    // The report says why the others are missing, in --json.
    assert_eq!(report["max_frame"], 9216, "{report}");
    let rx = &report["ports"][0]["rx"];
    assert_eq!(rx["packets"], 3, "{rx}");
    assert_eq!(rx["oversize"], 1, "{rx}");
    assert_eq!(rx["truncated_capture"], 1, "{rx}");
    assert_eq!(rx["drops"], 2, "drops include both reasons: {rx}");
    let tx = &report["ports"][1]["tx"];
    assert_eq!(
        (tx["packets"].as_u64(), tx["oversize"].as_u64()),
        (Some(3), Some(0))
    );
    // And in the table.
    let (table, _) = run(&s.config, false, &[]);
    assert!(table.contains("rx dropped oversize: 1"), "{table}");
    assert!(table.contains("rx dropped truncated-capture: 1"), "{table}");
    assert!(
        table.contains("frames up to 9216 bytes per slot"),
        "{table}"
    );
}

#[test]
fn max_frame_65535_passes_gso_sized_frames_and_truncated_pass_keeps_cut_records() {
    let (recs, [jumbo, gso, cut, s1, s2]) = records();
    let s = setup(&recs);
    let (_, report) = run(
        &s.config,
        true,
        &["runtime.max_frame=65535", "ports.lan0.truncated=\"pass\""],
    );
    assert_eq!(report["max_frame"], 65535);
    let got = read(&s.out);
    assert_eq!(
        got,
        vec![
            (jumbo, 9216),
            (s1, 60),
            (gso, 16450),
            // Passed as captured: the output keeps both lengths.
            (cut[..100].to_vec(), 200),
            (s2, 1514),
        ]
    );
    let rx = &report["ports"][0]["rx"];
    assert_eq!(
        (rx["oversize"].as_u64(), rx["truncated_capture"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(rx["drops"], 0);
}

#[test]
fn max_frame_below_a_frame_drops_it_and_the_setting_is_checked() {
    let (recs, [_, _, _, s1, s2]) = records();
    let s = setup(&recs);
    let (_, report) = run(&s.config, true, &["runtime.max_frame=2048"]);
    assert_eq!(read(&s.out), vec![(s1, 60), (s2, 1514)]);
    assert_eq!(report["ports"][0]["rx"]["oversize"], 2);
    // Out of range: a config error naming the key.
    let out = hpio_nf()
        .arg("check")
        .arg(&s.config)
        .args(["--set", "runtime.max_frame=100000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_frame"), "{err}");
}
