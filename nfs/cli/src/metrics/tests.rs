use std::collections::BTreeMap;

use hpio_nf::graph::ElementCounters;
use hpio_nf::runtime::{ElementReport, PortReport, WorkerReport};

use super::*;

fn report(packets_in: u64) -> Report {
    Report {
        elapsed_secs: 2.5,
        max_frame: 2048,
        ports: vec![PortReport {
            name: "left".into(),
            driver: "pcap".into(),
            rx_queues: 1,
            rx: QueueStats {
                packets: 7,
                bytes: 700,
                drops: 4,
                oversize: 1,
                truncated_capture: 2,
                ..QueueStats::default()
            },
            tx: QueueStats::default(),
            driver_stats: BTreeMap::from([("rx_kernel_drops".to_string(), 3)]),
        }],
        elements: vec![ElementReport {
            name: "fw".into(),
            class: "Classify".into(),
            counters: ElementCounters {
                packets_in,
                packets_out: 6,
                drops: vec![("no-match".into(), 1)],
                custom: vec![("rule_0".into(), 5)],
            },
        }],
        workers: vec![WorkerReport {
            index: 0,
            core: None,
            bursts: 9,
            idle_polls: 11,
            pool_exhausted: 0,
            finished: false,
            run_secs: 2.0,
            busy_secs: 0.5,
            idle_secs: 1.5,
            sleeps: 0,
            sleep_secs: 0.0,
            cpu_secs: 0.0,
        }],
    }
}

/// The value of the sample line starting with `series ` in `text`.
fn value(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{series} ")))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_report_becomes_openmetrics_families_with_help_type_and_labels() {
    let text = encode(&report(7), &mut Monotonic::default()).unwrap();
    for (series, v) in [
        ("hpio_nf_uptime_seconds", 2.5),
        (r#"hpio_nf_port_info{port="left",driver="pcap"}"#, 1.0),
        (r#"hpio_nf_port_rx_packets_total{port="left"}"#, 7.0),
        (r#"hpio_nf_port_rx_bytes_total{port="left"}"#, 700.0),
        (
            r#"hpio_nf_port_rx_drops_total{port="left",reason="oversize"}"#,
            1.0,
        ),
        (
            r#"hpio_nf_port_rx_drops_total{port="left",reason="truncated_capture"}"#,
            2.0,
        ),
        (
            r#"hpio_nf_port_rx_drops_total{port="left",reason="other"}"#,
            1.0,
        ),
        (
            r#"hpio_nf_port_driver_total{port="left",counter="rx_kernel_drops"}"#,
            3.0,
        ),
        (
            r#"hpio_nf_element_info{element="fw",class="Classify"}"#,
            1.0,
        ),
        (r#"hpio_nf_element_packets_in_total{element="fw"}"#, 7.0),
        (r#"hpio_nf_element_packets_out_total{element="fw"}"#, 6.0),
        (
            r#"hpio_nf_element_drops_total{element="fw",reason="no-match"}"#,
            1.0,
        ),
        (r#"hpio_nf_element_stat{element="fw",stat="rule_0"}"#, 5.0),
        (r#"hpio_nf_worker_busy_seconds_total{worker="0"}"#, 0.5),
        (r#"hpio_nf_worker_idle_seconds_total{worker="0"}"#, 1.5),
        (r#"hpio_nf_worker_bursts_total{worker="0"}"#, 9.0),
        (r#"hpio_nf_worker_idle_polls_total{worker="0"}"#, 11.0),
    ] {
        assert_eq!(value(&text, series), v, "{series}");
    }
    assert!(text.contains("# HELP hpio_nf_port_rx_packets Packets received.\n"));
    assert!(text.contains("# TYPE hpio_nf_port_rx_packets counter\n"));
    assert!(text.contains("# TYPE hpio_nf_uptime_seconds gauge\n"));
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn a_counter_that_goes_down_keeps_growing_from_where_it_was() {
    let mut series = Monotonic::default();
    let key = r#"hpio_nf_element_packets_in_total{element="fw"}"#;
    assert_eq!(
        value(&encode(&report(100), &mut series).unwrap(), key),
        100.0
    );
    // A reload replaced `fw`: its count restarted and is 5 by now.
    assert_eq!(value(&encode(&report(5), &mut series).unwrap(), key), 105.0);
    assert_eq!(value(&encode(&report(9), &mut series).unwrap(), key), 109.0);
    assert_eq!(value(&encode(&report(2), &mut series).unwrap(), key), 111.0);
    // Other series are untouched.
    let text = encode(&report(3), &mut series).unwrap();
    assert_eq!(
        value(&text, r#"hpio_nf_port_rx_packets_total{port="left"}"#),
        7.0
    );
    let mut f = Monotonic::default();
    assert_eq!(f.float("x".into(), 2.0), 2.0);
    assert_eq!(f.float("x".into(), 0.5), 2.5);
}

#[test]
fn metrics_addresses_default_to_localhost() {
    assert_eq!(parse_addr("9464").unwrap().to_string(), "127.0.0.1:9464");
    assert_eq!(parse_addr("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
    assert_eq!(parse_addr("[::1]:9464").unwrap().to_string(), "[::1]:9464");
    let e = parse_addr("localhost:x").unwrap_err();
    assert!(e.contains("`localhost:x`"), "{e}");
    assert!(parse_addr("70000").is_err());
}

#[test]
fn the_classic_format_names_counter_families_by_their_samples() {
    let om = encode(&report(7), &mut Monotonic::default()).unwrap();
    let text = classic(&om);
    assert!(text.contains("# HELP hpio_nf_port_rx_packets_total Packets received.\n"));
    assert!(text.contains("# TYPE hpio_nf_port_rx_packets_total counter\n"));
    assert!(text.contains("# TYPE hpio_nf_uptime_seconds gauge\n"));
    assert!(!text.contains("# EOF"), "{text}");
    // The samples are the same, line for line.
    let samples = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    assert_eq!(samples(&om), samples(&text));
}

#[test]
fn label_values_are_escaped() {
    let mut r = report(1);
    r.elements[0].name = "a\"b\\c\nd".into();
    let text = encode(&r, &mut Monotonic::default()).unwrap();
    assert!(
        text.contains(r#"hpio_nf_element_packets_in_total{element="a\"b\\c\nd"} 1"#),
        "{text}"
    );
}
