//! The shipped NF configs (configs/*.toml, configs/bench/*.toml, their
//! ports turned into pcap ports) fed a capture of malformed frames (runts,
//! lying IPv4 and IPv6 lengths, looping extension chains, TCP data offsets
//! past the end, 8 VLAN tags) and frames of exactly the slot size (9,216
//! bytes, a pcap run's default) and one byte more: every run ends well,
//! every port accounts for each record (received or a counted drop, the
//! one byte more as `oversize`), and every element for each packet (in =
//! out + drops; no `panic`).

mod common;

use common::{hpio_nf, root};

/// The frames: malformed ones, then one filling a slot, then one byte more.
fn frames() -> Vec<Vec<u8>> {
    let eth = |et: [u8; 2]| {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend(et);
        f
    };
    let v4 = |ihl: u8, total: u16, proto: u8, len: usize| {
        let mut f = eth([8, 0]);
        f.extend([0x40 | ihl, 0]);
        f.extend(total.to_be_bytes());
        f.extend([0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.resize(len.max(f.len()), 0);
        f
    };
    let v6 = |next: u8, plen: u16, rest: &[u8]| {
        let mut f = eth([0x86, 0xdd]);
        f.extend([0x60, 0, 0, 0]);
        f.extend(plen.to_be_bytes());
        f.extend([next, 64]);
        f.extend([0u8; 32]);
        f.extend_from_slice(rest);
        f
    };
    let mut doff = v4(5, 40, 6, 54);
    doff[46] = 0xf0;
    let mut vlan8 = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for _ in 0..8 {
        vlan8.extend([0x81, 0, 0, 5]);
    }
    vlan8.extend(&v4(5, 28, 17, 42)[12..]);
    let looping: Vec<u8> = (0..20).flat_map(|_| [60, 0, 1, 4, 0, 0, 0, 0]).collect();
    let full = |len: usize| {
        let mut f = v4(5, (len - 14) as u16, 17, len);
        f[34..38].copy_from_slice(&[0, 9, 0, 10]);
        f[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
        f
    };
    vec![
        vec![],
        vec![0xff; 13],
        v4(15, 60, 6, 40),
        v4(2, 40, 6, 60),
        v4(5, 1500, 17, 60),
        doff,
        v6(60, 160, &looping),
        v6(0, 48, &[6, 255, 1, 4, 0, 0, 0, 0]),
        v6(17, 900, &[0; 8]),
        vlan8,
        full(9216),
        full(9217),
    ]
}

/// `text` with each `[ports.X]` table replaced by a pcap port reading
/// `input` and writing into `out_dir`.
fn to_pcap(text: &str, input: &str, out_dir: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[ports.").and_then(|r| r.strip_suffix(']')) {
            out += &format!(
                "{t}\ndriver = \"pcap\"\ninput = \"{input}\"\noutput = \"{out_dir}/{name}.pcap\"\n"
            );
            skipping = true;
        } else if t.starts_with('[') {
            skipping = false;
            out += line;
            out += "\n";
        } else if !skipping {
            out += line;
            out += "\n";
        }
    }
    out
}

#[test]
fn shipped_configs_account_for_malformed_frames() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pcap");
    let frames = frames();
    testkit::pcap::write_data(&input, &frames, 1_000_000_000, 1000);
    let mut ran = 0;
    for sub in ["configs", "configs/bench"] {
        for e in std::fs::read_dir(root().join(sub)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("plugins") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let conf = dir.path().join(&name);
            let out_dir = dir.path().join(format!("out-{name}"));
            std::fs::create_dir_all(&out_dir).unwrap();
            let pcap_conf = to_pcap(
                &text,
                &input.display().to_string(),
                &out_dir.display().to_string(),
            );
            std::fs::write(&conf, &pcap_conf).unwrap();
            let out = hpio_nf()
                .arg("run")
                .arg(&conf)
                .arg("--json")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{name}: {}\n{pcap_conf}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value =
                serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
            for p in report["ports"].as_array().unwrap() {
                if p["rx_queues"] == 0 {
                    continue;
                }
                let rx = &p["rx"];
                assert_eq!(
                    rx["packets"].as_u64().unwrap() + rx["drops"].as_u64().unwrap(),
                    frames.len() as u64,
                    "{name}: port {}: {rx}",
                    p["name"]
                );
                assert_eq!(rx["oversize"], 1, "{name}: the 9,217-byte frame: {rx}");
            }
            for el in report["elements"].as_array().unwrap() {
                let n = |k: &str| el[k].as_u64().unwrap();
                let drops: u64 = el["drops"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d[1].as_u64().unwrap())
                    .sum();
                assert!(
                    el["drops"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|d| d[0] != "panic"),
                    "{name}: {el}"
                );
                let custom = |k: &str| {
                    let c = el["custom"].as_array().unwrap().iter();
                    c.filter(|c| c[0] == k)
                        .map(|c| c[1].as_u64().unwrap())
                        .sum::<u64>()
                };
                match el["class"].as_str().unwrap() {
                    "Discard" => assert_eq!(n("packets_out") + drops, 0, "{name}: {el}"),
                    // Requests and solicitations are packets of their own.
                    "ArpQuerier" | "NdQuerier" => assert_eq!(
                        n("packets_in") + custom("requests"),
                        n("packets_out") + drops,
                        "{name}: {el}"
                    ),
                    // A fragmented packet leaves as its fragments.
                    "DecIpTtl" => assert_eq!(
                        n("packets_in") + custom("fragments") - custom("fragmented"),
                        n("packets_out") + drops,
                        "{name}: {el}"
                    ),
                    "Tee" => assert!(n("packets_out") + drops >= n("packets_in"), "{name}: {el}"),
                    _ => assert_eq!(n("packets_in"), n("packets_out") + drops, "{name}: {el}"),
                }
            }
            ran += 1;
        }
    }
    assert!(ran >= 12, "only {ran} configs ran");
}
