//! Dynamic plugins end to end: the plugin crates are built as shared
//! libraries with cargo (the commands of docs/plugins.md), and the `hpio-nf`
//! binary loads them from configs and runs them over pcap files.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::{drop_count, element, hpio_nf, root};
use testkit::frame::{Frame, Ip, TCP_ACK, TCP_SYN};
use testkit::pcap;

/// The plugin libraries, built once per test run with
/// `cargo build --release -p hpio-nf-syn-guard -p hpio-nf-test-plugin`.
fn plugins() -> &'static HashMap<String, PathBuf> {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "build",
                "--release",
                "-p",
                "hpio-nf-syn-guard",
                "-p",
                "hpio-nf-test-plugin",
                "--message-format=json-render-diagnostics",
            ])
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "building the plugins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut libs = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            for f in msg["filenames"].as_array().into_iter().flatten() {
                let f = f.as_str().unwrap_or_default();
                if f.ends_with(std::env::consts::DLL_SUFFIX) {
                    let name = msg["target"]["name"].as_str().unwrap().to_string();
                    libs.insert(name, PathBuf::from(f));
                }
            }
        }
        assert!(libs.contains_key("hpio_nf_syn_guard"), "{libs:?}");
        assert!(libs.contains_key("hpio_nf_test_plugin"), "{libs:?}");
        libs
    })
}

fn lib(name: &str) -> &'static Path {
    &plugins()[name]
}

/// `--set plugins=[...]` when the library is not where the shipped config
/// expects it (a non-default target directory); nothing otherwise.
fn syn_guard_override() -> Vec<String> {
    let expected = root().join("configs/plugins/../../target/release/libhpio_nf_syn_guard.so");
    let built = lib("hpio_nf_syn_guard");
    match (expected.canonicalize(), built.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => Vec::new(),
        _ => vec![format!("plugins=[{:?}]", built.display().to_string())],
    }
}

fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = hpio_nf();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hpio-nf")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const SERVER: [u8; 4] = [192, 0, 2, 80];

/// A TCP segment from `src`: a SYN, a SYN-ACK or an ACK with data.
fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, kind: &str) -> Vec<u8> {
    let (flags, payload): (_, &[u8]) = match kind {
        "syn" => (TCP_SYN, b""),
        "syn-ack" => (TCP_SYN | TCP_ACK, b""),
        _ => (TCP_ACK, b"GET / HTTP/1.1\r\n"),
    };
    Frame::tcp(Ip::v4(src, dst), sport, 443, flags)
        .macs(MAC_A, MAC_B)
        .seq(7, 8, 64240)
        .payload(payload)
        .build()
}

fn syn6(src: [u8; 16]) -> Vec<u8> {
    let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50];
    Frame::tcp(Ip::v6(src, dst), 50000, 443, TCP_SYN)
        .macs(MAC_A, MAC_B)
        .seq(7, 0, 64240)
        .build()
}

fn udp4(src: [u8; 4]) -> Vec<u8> {
    Frame::udp(Ip::v4(src, SERVER), 5353, 53)
        .macs(MAC_A, MAC_B)
        .payload(b"query")
        .build()
}

/// The traffic of the SYN-guard test: (time in ns, frame, bucket key of a
/// SYN's source or `None`). Times are multiples of 100 ms.
fn syn_guard_traffic() -> Vec<(u64, Vec<u8>, Option<String>)> {
    const MS: u64 = 1_000_000;
    let t0 = 1_000 * MS;
    let flooder = [198, 51, 100, 7];
    let client = [203, 0, 113, 5];
    let mut v = Vec::new();
    // A flood of 30 SYNs at once from one address, with other traffic mixed in.
    for i in 0..30u16 {
        v.push((
            t0,
            tcp4(flooder, SERVER, 1000 + i, "syn"),
            Some("flooder".into()),
        ));
        if i % 10 == 0 {
            v.push((t0, tcp4(SERVER, flooder, 443, "syn-ack"), None));
            v.push((t0, tcp4(client, SERVER, 40000, "ack"), None));
        }
    }
    // Then one SYN every 100 ms for 3 s: 5 per second get through.
    for i in 1..=30u64 {
        let t = t0 + i * 100 * MS;
        v.push((
            t,
            tcp4(flooder, SERVER, 2000 + i as u16, "syn"),
            Some("flooder".into()),
        ));
        if i % 5 == 0 {
            v.push((
                t,
                tcp4(client, SERVER, 40000 + i as u16, "syn"),
                Some("client".into()),
            ));
            v.push((t, udp4(flooder), None));
        }
    }
    // 15 SYNs from addresses of one IPv6 /64: one bucket.
    for i in 0..15u8 {
        let mut src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
        src[15] = i + 1;
        v.push((
            t0 + 5 * 100 * MS,
            syn6(src),
            Some("2001:db8:0:9::/64".into()),
        ));
    }
    v.sort_by_key(|(t, _, _)| *t);
    v
}

/// Which frames a token bucket of `burst` refilled at `rate` per second
/// per key lets through (plain f64 arithmetic; exact for these times).
fn token_bucket_model(
    traffic: &[(u64, Vec<u8>, Option<String>)],
    rate: f64,
    burst: f64,
) -> Vec<bool> {
    let mut buckets: HashMap<&str, (f64, u64)> = HashMap::new();
    traffic
        .iter()
        .map(|(t, _, key)| {
            let Some(key) = key else { return true };
            let (tokens, last) = buckets.entry(key).or_insert((burst, *t));
            *tokens = (*tokens + (t - *last) as f64 / 1e9 * rate).min(burst);
            *last = *t;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                true
            } else {
                false
            }
        })
        .collect()
}

#[test]
fn syn_guard_plugin_drops_the_flood_and_nothing_else() {
    let traffic = syn_guard_traffic();
    let verdicts = token_bucket_model(&traffic, 5.0, 10.0);
    let expected: Vec<Vec<u8>> = traffic
        .iter()
        .zip(&verdicts)
        .filter(|(_, pass)| **pass)
        .map(|((_, f, _), _)| f.clone())
        .collect();
    let dropped = verdicts.iter().filter(|p| !**p).count() as u64;
    let syns = traffic.iter().filter(|(_, _, k)| k.is_some()).count() as u64;
    assert!(
        dropped > 20 && (expected.len() as u64) > syns / 2,
        "a meaningful test"
    );

    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    let out = dir.path().join("out.pcap");
    let frames: Vec<pcap::Frame> = traffic
        .iter()
        .map(|(t, f, _)| pcap::Frame::new(*t, f.clone()))
        .collect();
    pcap::write(&inp, &frames);
    let mut args: Vec<String> = vec![
        "run".into(),
        "configs/plugins/syn-guard.toml".into(),
        "--json".into(),
    ];
    for s in syn_guard_override().into_iter().chain([
        format!("ports.in.input={}", inp.display()),
        format!("ports.out.output={}", out.display()),
        // One packet per burst, so that each SYN is timed by its own timestamp.
        "runtime.burst=1".into(),
    ]) {
        args.push("--set".into());
        args.push(s);
    }
    let res = run(&args, &[]);
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert_eq!(pcap::read_data(&out), expected);

    let report: serde_json::Value =
        serde_json::from_str(text(&res.stdout).lines().last().unwrap()).unwrap();
    let guard = element(&report, "guard");
    assert_eq!(guard["class"], "SynGuard");
    assert_eq!(drop_count(guard, "syn-flood"), dropped);
    let custom: HashMap<String, u64> = guard["custom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_string(), c[1].as_u64().unwrap()))
        .collect();
    assert_eq!(custom["syns"], syns);
    assert_eq!(custom["syns-passed"], syns - dropped);
    assert_eq!(custom["sources"], 3);
}

#[test]
fn check_and_elements_show_the_plugin_classes() {
    let mut args: Vec<String> = vec!["check".into(), "configs/plugins/syn-guard.toml".into()];
    for s in syn_guard_override() {
        args.push("--set".into());
        args.push(s);
    }
    let res = run(&args, &[("RUST_LOG", "debug")]);
    let stdout = text(&res.stdout);
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert!(
        stdout.contains("(hpio_nf_syn_guard): classes SynGuard"),
        "{stdout}"
    );
    // The plugin's `log` records reach hpio-nf's logger.
    let stderr = text(&res.stderr);
    assert!(stderr.contains("SynGuard: 5 SYN/s, burst 10"), "{stderr}");

    let res = run(
        &[
            "elements".into(),
            "--plugin".into(),
            lib("hpio_nf_syn_guard").display().to_string(),
            "SynGuard".into(),
        ],
        &[],
    );
    let stdout = text(&res.stdout);
    assert!(res.status.success(), "{}", text(&res.stderr));
    assert!(
        stdout.contains("SynGuard(rate?, burst?, table?, ipv4_prefix?, ipv6_prefix?)"),
        "{stdout}"
    );
    assert!(stdout.contains("syn-flood"), "{stdout}");
}

/// Writes a config named `name` in `dir` that loads `plugins` and runs
/// `in -> boom -> out` with `boom` configured by `boom` (TOML lines).
fn boom_config(dir: &Path, plugins: &[&Path], boom: &str) -> PathBuf {
    let list: Vec<String> = plugins
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let text = format!(
        "plugins = [{}]\nconnections = [\"in -> boom -> out\"]\n[runtime]\nburst = 1\n\
         [ports.in]\ndriver = \"pcap\"\ninput = {:?}\n\
         [ports.out]\ndriver = \"pcap\"\noutput = {:?}\n\
         [elements.boom]\nclass = \"PanicOnMark\"\n{boom}\n",
        list.join(", "),
        dir.join("in.pcap").display().to_string(),
        dir.join("out.pcap").display().to_string(),
    );
    let path = dir.join("boom.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Five frames, the second and fourth marked.
fn marked_frames() -> Vec<Vec<u8>> {
    (0..5u8)
        .map(|i| {
            let payload: &[u8] = if i % 2 == 1 {
                b"xxPANICxx"
            } else {
                b"harmless"
            };
            Frame::udp(Ip::v4([10, 0, 0, i], SERVER), 5000, 6000)
                .macs(MAC_A, MAC_B)
                .payload(payload)
                .build()
        })
        .collect()
}

#[test]
fn a_panic_inside_a_dynamic_plugin_is_caught_then_dropped_or_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let frames = marked_frames();
    pcap::write_data(&dir.path().join("in.pcap"), &frames, 1_000_000_000, 10_000);
    let config = boom_config(dir.path(), &[lib("hpio_nf_test_plugin")], "");
    let out = dir.path().join("out.pcap");

    // on_panic = "drop" (the default): the marked packets are dropped, counted, logged once.
    let res = run(
        &["run".into(), config.display().to_string(), "--json".into()],
        &[("RUST_LOG", "info")],
    );
    let stderr = text(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert_eq!(
        pcap::read_data(&out),
        vec![frames[0].clone(), frames[2].clone(), frames[4].clone()]
    );
    let report: serde_json::Value =
        serde_json::from_str(text(&res.stdout).lines().last().unwrap()).unwrap();
    let boom = element(&report, "boom");
    assert_eq!(drop_count(boom, "panic"), 2);
    assert_eq!(boom["packets_out"], 3);
    let logged: Vec<&str> = stderr.lines().filter(|l| l.contains("panicked")).collect();
    assert_eq!(logged.len(), 1, "one error per element: {stderr}");
    assert!(
        logged[0].contains("element `boom` (class PanicOnMark) panicked on worker 0: found the mark in a 51-byte frame (at nfs/test-plugin/src/lib.rs:"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("thread '"),
        "no default panic message: {stderr}"
    );
    assert!(
        stderr.contains("PanicOnMark: configured to panic in push"),
        "plugin logs: {stderr}"
    );

    // on_panic = "stop": the run ends with an error naming the element.
    let res = run(
        &[
            "run".into(),
            config.display().to_string(),
            "--set".into(),
            "runtime.on_panic=\"stop\"".into(),
        ],
        &[],
    );
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: element `boom` (class PanicOnMark) panicked on worker 0: found the mark"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("on_panic = \"stop\""), "{stderr}");
    assert_eq!(
        pcap::read_data(&out),
        vec![frames[0].clone()],
        "what passed before the panic"
    );

    // A panic in the plugin's configure is a config error at the element.
    let config = boom_config(
        dir.path(),
        &[lib("hpio_nf_test_plugin")],
        "panic_in = \"configure\"",
    );
    let res = run(&["check".into(), config.display().to_string()], &[]);
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("class `PanicOnMark` panicked while configuring this element (a bug in the class): asked to panic while configuring"),
        "{stderr}"
    );
    assert!(stderr.contains("boom.toml:11:1"), "{stderr}");

    // A panic building a replica: every batch of that element is dropped as `panic`.
    let config = boom_config(
        dir.path(),
        &[lib("hpio_nf_test_plugin")],
        "panic_in = \"replica\"",
    );
    let res = run(
        &["run".into(), config.display().to_string(), "--json".into()],
        &[],
    );
    assert!(res.status.success(), "{}", text(&res.stderr));
    let report: serde_json::Value =
        serde_json::from_str(text(&res.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(drop_count(element(&report, "boom"), "panic"), 5);
    assert!(text(&res.stderr).contains("building the replica for worker 0 panicked"));
}

#[test]
fn refused_plugins_are_reported_at_their_entry() {
    let dir = tempfile::tempdir().unwrap();
    pcap::write_data(
        &dir.path().join("in.pcap"),
        &marked_frames(),
        1_000_000_000,
        10_000,
    );
    // A plugin library under another name does not export the symbols the name calls for.
    let renamed = dir
        .path()
        .join(format!("libmy_guard{}", std::env::consts::DLL_SUFFIX));
    std::fs::copy(lib("hpio_nf_syn_guard"), &renamed).unwrap();
    let test_plugin = lib("hpio_nf_test_plugin");
    let config = boom_config(dir.path(), &[test_plugin, &renamed, test_plugin], "");
    let res = run(&["check".into(), config.display().to_string()], &[]);
    let stderr = text(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not an hpio-nf plugin: it does not export `HPIO_NF_PLUGIN_my_guard`"),
        "{stderr}"
    );
    let first = format!("{:?}", test_plugin.display().to_string());
    let col = |nth: usize| {
        let line = std::fs::read_to_string(&config)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        let mut at = 0;
        for _ in 0..nth {
            at += line[at..].find('"').unwrap() + 1;
            at += line[at..].find('"').unwrap() + 1;
        }
        at + line[at..].find('"').unwrap() + 1
    };
    assert!(
        stderr.contains(&format!("boom.toml:1:{}", col(1))),
        "the renamed entry: {stderr}"
    );
    assert!(
        stderr.contains(&format!("boom.toml:1:{}", col(2))),
        "the repeated entry: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "is listed twice (first at {}:1:{})",
            config.display(),
            col(0)
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&first[1..first.len() - 1]));
}

#[test]
fn the_tutorial_shows_the_code_that_is_built_and_tested() {
    let doc = std::fs::read_to_string(root().join("docs/plugins.md")).unwrap();
    let mut checked = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("<!-- excerpt: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "an excerpt of {path} must be a code block"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let block = block.join("\n");
        let file = std::fs::read_to_string(root().join(path)).unwrap();
        assert!(
            file.contains(&block),
            "docs/plugins.md shows code that is not in {path}:\n{block}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} excerpts found");
    // The commands the tutorial gives are the ones these tests run.
    assert!(doc.contains("cargo build --release -p hpio-nf-syn-guard"));
    assert!(doc.contains("hpio-nf run configs/plugins/syn-guard.toml"));
}

/// Running as root, hpio-nf loads no plugin and no config that another user
/// could change (docs/reliability.md), unless `--allow-unsafe-paths`.
#[test]
fn as_root_files_other_users_can_change_are_refused_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;
    if !testkit::require("unsafe_paths_are_refused_as_root", &[testkit::Need::Root]) {
        return;
    }
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let plugin = open.join("libhpio_nf_syn_guard.so");
    std::fs::copy(lib("hpio_nf_syn_guard"), &plugin).unwrap();
    let config = open.join("x.toml");
    std::fs::write(
        &config,
        "connections = [\"in -> out\"]\n[ports.in]\ndriver = \"pcap\"\ninput = \"in.pcap\"\n\
         [ports.out]\ndriver = \"pcap\"\noutput = \"out.pcap\"\n",
    )
    .unwrap();
    let open_dir = format!(
        "the directory `{}` is writable by others (mode 0777) and has no sticky bit",
        open.canonicalize().unwrap().display()
    );
    let args = |cmd: &[&str], allow: bool| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        if allow {
            v.push("--allow-unsafe-paths".into());
        }
        v
    };
    let plugin_s = plugin.display().to_string();
    let config_s = config.display().to_string();

    for cmd in [
        &["elements", "--plugin", &plugin_s, "SynGuard"][..],
        &["check", &config_s][..],
        &["run", &config_s][..],
    ] {
        let res = run(&args(cmd, false), &[]);
        let err = text(&res.stderr);
        assert!(!res.status.success(), "{cmd:?} was accepted");
        assert!(
            err.contains(&format!(
                "refusing `{}`: {open_dir}",
                cmd[cmd.len() - 1 - usize::from(cmd[0] == "elements")]
            )),
            "{cmd:?}: {err}"
        );
        assert!(err.contains("--allow-unsafe-paths"), "{err}");
    }
    let res = run(
        &args(&["elements", "--plugin", &plugin_s, "SynGuard"], true),
        &[],
    );
    assert!(res.status.success(), "{}", text(&res.stderr));
    let res = run(&args(&["check", &config_s], true), &[]);
    assert!(res.status.success(), "{}", text(&res.stderr));

    // The directory fixed, the file itself writable by others.
    chmod(&open, 0o755);
    chmod(&config, 0o666);
    let res = run(&args(&["check", &config_s], false), &[]);
    let err = text(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "refusing `{config_s}`: the file is writable by others (mode 0666)"
        )),
        "{err}"
    );
    chmod(&config, 0o644);
    let res = run(&args(&["check", &config_s], false), &[]);
    assert!(res.status.success(), "{}", text(&res.stderr));

    // A safe config naming a plugin that is not: the error is at the entry.
    chmod(&plugin, 0o646);
    std::fs::write(
        &config,
        format!("plugins = [{plugin_s:?}]\nconnections = [\"in -> SynGuard -> out\"]\n[ports.in]\ndriver = \"pcap\"\ninput = \"in.pcap\"\n\
         [ports.out]\ndriver = \"pcap\"\noutput = \"out.pcap\"\n"),
    )
    .unwrap();
    let res = run(&args(&["check", &config_s], false), &[]);
    let err = text(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "refusing `{plugin_s}`: the file is writable by others (mode 0646)"
        )),
        "{err}"
    );
}
