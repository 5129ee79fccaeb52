//! The command line: check, elements, the generated manual, run's reports.

mod common;

use common::{hpio_nf, root};
use hpio_nf::config::configure_element;
use hpio_nf::element::Registry;

#[test]
fn check_accepts_every_shipped_config() {
    let mut seen = 0;
    for dir in ["configs", "configs/bench"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let out = hpio_nf().arg("check").arg(&path).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "found only {seen} configs");
}

#[test]
fn check_reports_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "connections = [\"in -> c -> out\"]\n\
         [ports.in]\ndriver = \"pcap\"\ninput = \"x.pcap\"\n\
         [ports.out]\ndriver = \"pcap\"\noutput = \"y.pcap\"\n\
         [elements.c]\nclass = \"Countr\"\n",
    )
    .unwrap();
    let out = hpio_nf().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:9:9"), "{err}");
    assert!(err.contains("did you mean `Counter`"), "{err}");
}

#[test]
fn run_reports_a_missing_input_file_clearly() {
    let out = hpio_nf()
        .args(["run", "configs/filter.toml", "--set"])
        .arg("ports.in.input=/nonexistent/trace.pcap")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/trace.pcap"), "{err}");
    assert!(err.contains("`in`"), "names the port: {err}");
}

#[test]
fn elements_lists_and_explains_classes() {
    let out = hpio_nf().arg("elements").output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    for class in [
        "Classify", "Rewrite", "Counter", "Forward", "Discard", "Tee",
    ] {
        assert!(list.contains(class), "{class} missing from\n{list}");
    }
    let out = hpio_nf().args(["elements", "Tee"]).output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains("outputs"), "{page}");
    let out = hpio_nf().args(["elements", "Tea"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `Tee`"));
}

#[test]
fn docs_elements_md_is_up_to_date() {
    let out = hpio_nf().args(["elements", "--markdown"]).output().unwrap();
    let generated = String::from_utf8(out.stdout).unwrap();
    let on_disk = std::fs::read_to_string(root().join("docs/elements.md")).unwrap_or_default();
    assert!(
        generated == on_disk,
        "docs/elements.md is stale: run `cargo run --release -- elements --markdown > docs/elements.md`"
    );
}

#[test]
fn every_class_example_configures() {
    let registry = Registry::builtin();
    let ports: Vec<String> = ["eth0", "eth1", "in", "out"].map(String::from).to_vec();
    for class in registry.classes() {
        if let Err(e) = configure_element(&registry, &ports, class.info.name, class.info.example) {
            panic!(
                "example of {}:\n{}\n{e}",
                class.info.name, class.info.example
            );
        }
    }
}

#[test]
fn json_report_counts_match_the_traffic() {
    let report = common::run_ok(
        "configs/bench/classify.toml",
        &["ports.gen.count=1000".to_string()],
    );
    assert_eq!(report["ports"][0]["rx"]["packets"], 1000);
    let cnt = common::element(&report, "cnt");
    assert_eq!(cnt["packets_in"], 1000);
    assert_eq!(cnt["packets_out"], 1000);
}

#[test]
fn sigterm_and_sigint_stop_an_endless_run_cleanly() {
    for signal in ["-TERM", "-INT"] {
        let child = hpio_nf()
            .args(["run", "configs/bench/discard.toml", "--set"])
            .arg("ports.gen.count=1000000000000")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        let status = std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{signal}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("run time"),
            "{signal}: final report missing: {stdout}"
        );
        assert!(stdout.contains("discard"), "{stdout}");
    }
}

#[test]
fn a_failing_output_stops_an_endless_run_on_every_worker() {
    // Two workers on an endless generator, writing to a file that refuses
    // every write: the run must end, promptly, with the port's error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.toml");
    std::fs::write(
        &path,
        "connections = [\"gen -> out\"]\n\
         [runtime]\nworkers = 2\ncores = [0, 1]\n\
         [ports.gen]\ndriver = \"generator\"\nqueues = 2\n\
         [ports.out]\ndriver = \"pcap\"\noutput = \"/dev/full\"\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let out = hpio_nf().arg("run").arg(&path).output().unwrap();
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert!(
        stderr.contains("port `out`: cannot write output file `/dev/full`")
            && stderr.contains("(worker "),
        "{stderr}"
    );
}

/// `bench gateway` runs the shipped gateway config with generator ports,
/// and every packet crosses it to the WAN port (the bench refuses a run
/// where some did not).
#[test]
fn bench_gateway_sends_every_packet_through_to_the_wan() {
    bench_runs_every_packet("gateway");
}

/// `bench SCENARIO` of 20,000 packets succeeds and reports all of them.
fn bench_runs_every_packet(scenario: &str) {
    let out = hpio_nf()
        .args([
            "bench", scenario, "--count", "20000", "--runs", "1", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["scenario"], scenario);
    assert_eq!(v[0]["packets"], 20_000);
}

/// `bench lookup4-cached` is lookup4 with its overrides (destinations in
/// one /16): they parse, and every packet is generated and routed.
#[test]
fn bench_lookup4_cached_runs_with_its_overrides() {
    bench_runs_every_packet("lookup4-cached");
}

/// `bench --workers 2` runs every worker on its own share and reports each
/// worker and the total; the packets of the workers add up to the count.
#[test]
fn bench_workers_report_each_worker_and_the_total() {
    let out = hpio_nf()
        .args(["bench", "classify", "bridge", "--count", "200001"])
        .args(["--runs", "1", "--workers", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v.as_array().expect("a list of results");
    assert_eq!(results.len(), 2);
    for r in results {
        assert_eq!(r["packets"], 200_001);
        let workers = r["workers"].as_array().expect("per-worker results");
        assert_eq!(workers.len(), 2, "{r}");
        let sum: u64 = workers.iter().map(|w| w["packets"].as_u64().unwrap()).sum();
        assert_eq!(sum, 200_001, "{r}");
        for (i, w) in workers.iter().enumerate() {
            assert_eq!(w["worker"], i);
            assert!(w["mpps"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    let out = hpio_nf()
        .args(["bench", "discard", "--workers", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers must be at least 1"));
}
