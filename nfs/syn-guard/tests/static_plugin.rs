//! SynGuard linked statically into a custom `hpio-nf` (what
//! examples/hpio-nf-syn-guard.rs builds), run in-process over pcap files.

use std::process::ExitCode;

use testkit::frame::{Frame, Ip, TCP_SYN};
use testkit::pcap;

fn syn(src: [u8; 4], sport: u16) -> Vec<u8> {
    Frame::tcp(Ip::v4(src, [192, 0, 2, 80]), sport, 443, TCP_SYN)
        .seq(1, 0, 64240)
        .build()
}

/// The exit code's text (`ExitCode` has no `PartialEq`).
fn code(c: ExitCode) -> String {
    format!("{c:?}")
}

#[test]
fn a_custom_binary_knows_syn_guard_without_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let inp = dir.path().join("in.pcap");
    let out = dir.path().join("out.pcap");
    // 15 SYNs from one source and 1 from another, all at the same time.
    let mut frames: Vec<Vec<u8>> = (0..15).map(|i| syn([198, 51, 100, 1], 1000 + i)).collect();
    frames.push(syn([203, 0, 113, 9], 5000));
    pcap::write_data(&inp, &frames, 1_000_000_000, 0);
    let config = testkit::workspace_root().join("configs/plugins/syn-guard.toml");
    let args = [
        "hpio-nf-syn-guard".to_string(),
        "run".into(),
        config.display().to_string(),
        // The class is built in: load no library.
        "--set".into(),
        "plugins=[]".into(),
        "--set".into(),
        format!("ports.in.input={}", inp.display()),
        "--set".into(),
        format!("ports.out.output={}", out.display()),
    ];
    let c = hpio_nf_cli::run_with(args.clone(), hpio_nf_syn_guard::register);
    assert_eq!(code(c), code(ExitCode::SUCCESS));
    // burst = 10 in the config: 10 of the first source's SYNs, and the other source's.
    let mut expected = frames[..10].to_vec();
    expected.push(frames[15].clone());
    assert_eq!(pcap::read_data(&out), expected);

    // Without the class, the same config is rejected (exit code 2).
    let c = hpio_nf_cli::run_with(args, |_| {});
    assert_eq!(code(c), code(ExitCode::from(2)));
}
