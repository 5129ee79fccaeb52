//! What `ctl` shows: the live report with rates (made by the server), and
//! the text forms of answers (arrays of objects as aligned tables).

use std::fmt::Write as _;

use hpio_nf::runtime::Report;
use serde_json::{json, Map, Value};

/// `/stats`: the report `now` with per-second rates since `prev` (the
/// previous `/stats`; since the start for the first). Ports, elements,
/// workers and drops by reason are tables; `report` is the report itself.
pub(super) fn stats(now: &Report, prev: Option<&Report>) -> Value {
    let dt = now.elapsed_secs - prev.map_or(0.0, |p| p.elapsed_secs);
    let dt = if dt > 0.0 { dt } else { 1.0 };
    let rate = |new: u64, old: Option<u64>| -> f64 {
        // Whole numbers, but a tenth below 100/s (a ping a second).
        let d = new.saturating_sub(old.unwrap_or(0)) as f64 / dt;
        if d >= 100.0 {
            d.round()
        } else {
            (d * 10.0).round() / 10.0
        }
    };
    let old_port =
        |i: usize, name: &str| prev.and_then(|p| p.ports.get(i)).filter(|p| p.name == name);
    let ports: Vec<Value> = now
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let o = old_port(i, &p.name);
            json!({
                "port": p.name, "driver": p.driver,
                "rx_packets": p.rx.packets, "rx_pps": rate(p.rx.packets, o.map(|o| o.rx.packets)),
                "rx_bps": (8.0 * rate(p.rx.bytes, o.map(|o| o.rx.bytes))).round() as u64,
                "tx_packets": p.tx.packets, "tx_pps": rate(p.tx.packets, o.map(|o| o.tx.packets)),
                "tx_bps": (8.0 * rate(p.tx.bytes, o.map(|o| o.tx.bytes))).round() as u64,
                "drops": p.rx.drops + p.tx.drops,
            })
        })
        .collect();
    let elements: Vec<Value> = now
        .elements
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let o = prev
                .and_then(|p| p.elements.get(i))
                .filter(|o| o.name == e.name)
                .map(|o| &o.counters);
            let c = &e.counters;
            json!({
                "element": e.name, "class": e.class,
                "in": c.packets_in, "in_pps": rate(c.packets_in, o.map(|o| o.packets_in)),
                "out": c.packets_out, "out_pps": rate(c.packets_out, o.map(|o| o.packets_out)),
                "dropped": c.dropped(), "drop_pps": rate(c.dropped(), o.map(|o| o.dropped())),
            })
        })
        .collect();
    let workers: Vec<Value> = now
        .workers
        .iter()
        .map(|w| {
            let o = prev.and_then(|p| p.workers.get(w.index));
            let bursts = w.bursts.saturating_sub(o.map_or(0, |o| o.bursts));
            let idle = w.idle_polls.saturating_sub(o.map_or(0, |o| o.idle_polls));
            let busy = if bursts + idle > 0 {
                (1000.0 * bursts as f64 / (bursts + idle) as f64).round() / 10.0
            } else {
                0.0
            };
            json!({
                "worker": w.index, "core": w.core,
                "bursts": w.bursts, "bursts_per_sec": rate(w.bursts, o.map(|o| o.bursts)),
                "idle_polls_per_sec": rate(w.idle_polls, o.map(|o| o.idle_polls)),
                "busy_percent": busy, "pool_exhausted": w.pool_exhausted, "finished": w.finished,
            })
        })
        .collect();
    json!({
        "elapsed_secs": now.elapsed_secs,
        "interval_secs": dt,
        "ports": ports,
        "elements": elements,
        "workers": workers,
        "drops": drops(now, prev, &rate),
        "report": now,
    })
}

/// Every drop counter by place and reason, with its rate since `prev`.
fn drops(now: &Report, prev: Option<&Report>, rate: &dyn Fn(u64, Option<u64>) -> f64) -> Value {
    let mut rows = Vec::new();
    let mut add = |at: &str, reason: &str, n: u64, old: Option<u64>| {
        if n > 0 {
            rows.push(json!({"at": at, "reason": reason, "count": n, "per_sec": rate(n, old)}));
        }
    };
    for (i, e) in now.elements.iter().enumerate() {
        let old = prev
            .and_then(|p| p.elements.get(i))
            .filter(|o| o.name == e.name);
        for (reason, n) in &e.counters.drops {
            let was = old.and_then(|o| o.counters.drops.iter().find(|(r, _)| r == reason));
            add(&e.name, reason, *n, was.map(|(_, n)| *n));
        }
    }
    for (i, p) in now.ports.iter().enumerate() {
        let old = prev
            .and_then(|r| r.ports.get(i))
            .filter(|o| o.name == p.name);
        for (side, q, o) in [
            ("rx", &p.rx, old.map(|o| &o.rx)),
            ("tx", &p.tx, old.map(|o| &o.tx)),
        ] {
            let at = format!("{} {side}", p.name);
            add(&at, "oversize", q.oversize, o.map(|o| o.oversize));
            add(
                &at,
                "truncated-capture",
                q.truncated_capture,
                o.map(|o| o.truncated_capture),
            );
            let other = q.drops - q.oversize - q.truncated_capture;
            let was = o.map(|o| o.drops - o.oversize - o.truncated_capture);
            add(&at, "queue", other, was);
        }
    }
    Value::Array(rows)
}

/// The text form of an answer: tables for arrays of objects, `key: value`
/// lines for objects (nested tables under a heading), the value otherwise.
pub(super) fn text(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Array(rows) if is_table(rows) => out += &table(rows),
        Value::Array(items) => {
            for v in items {
                out += &scalar(v);
                out.push('\n');
            }
        }
        Value::Object(m) => object(&mut out, m),
        v => {
            out += &scalar(v);
            out.push('\n');
        }
    }
    out
}

/// `key: value` lines; arrays of objects and objects as sections.
fn object(out: &mut String, m: &Map<String, Value>) {
    let width = m.keys().map(|k| k.len()).max().unwrap_or(0);
    for (k, v) in m {
        match v {
            Value::Array(rows) if rows.is_empty() => {
                let _ = writeln!(out, "{k:<width$}  (none)");
            }
            Value::Array(rows) if is_table(rows) => {
                let _ = writeln!(out, "\n{k}:");
                out.push_str(&indent(&table(rows)));
            }
            Value::Object(inner) if !inner.is_empty() => {
                let _ = writeln!(out, "{k}:");
                let mut sub = String::new();
                object(&mut sub, inner);
                out.push_str(&indent(&sub));
            }
            v => {
                let _ = writeln!(out, "{k:<width$}  {}", scalar(v));
            }
        }
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

fn is_table(rows: &[Value]) -> bool {
    rows.iter().all(Value::is_object)
}

/// An aligned table of `rows` (objects): one column per key, in the order
/// keys first appear; numbers right-aligned.
pub(super) fn table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let mut cols: Vec<&str> = Vec::new();
    for r in rows {
        for k in r.as_object().into_iter().flat_map(|m| m.keys()) {
            if !cols.contains(&k.as_str()) {
                cols.push(k);
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| r.get(c).map(scalar).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].len()).fold(c.len(), usize::max))
        .collect();
    let numeric: Vec<bool> = (0..cols.len())
        .map(|i| {
            rows.iter()
                .all(|r| r.get(cols[i]).is_none_or(Value::is_number))
        })
        .collect();
    let line = |fields: &[String]| {
        let parts: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| match numeric[i] {
                true => format!("{f:>w$}", w = widths[i]),
                false => format!("{f:<w$}", w = widths[i]),
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let head: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
    let mut out = line(&head);
    for r in &cells {
        out += &line(r);
    }
    out
}

/// A value on one line: strings bare, `-` for null, JSON otherwise.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(scalar).collect::<Vec<_>>().join(", ")
        }
        v => v.to_string(),
    }
}

/// The text of `ctl stats`: the tables without the raw report.
pub(super) fn stats_text(v: &Value) -> String {
    let mut out = format!(
        "run time {:.1} s; rates over the last {:.1} s\n",
        v["elapsed_secs"].as_f64().unwrap_or(0.0),
        v["interval_secs"].as_f64().unwrap_or(0.0)
    );
    for part in ["ports", "elements", "workers", "drops"] {
        let rows = v[part].as_array().cloned().unwrap_or_default();
        let _ = write!(out, "\n{part}:\n{}", indent(&table(&rows)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(secs: f64, rx: u64, oversize: u64, bursts: u64, idle: u64) -> Report {
        use hpio_nf::port::QueueStats;
        use hpio_nf::runtime::{PortReport, WorkerReport};
        Report {
            elapsed_secs: secs,
            max_frame: 2048,
            ports: vec![PortReport {
                name: "in".into(),
                driver: "pcap".into(),
                rx_queues: 1,
                rx: QueueStats {
                    packets: rx,
                    bytes: rx * 100,
                    drops: oversize,
                    oversize,
                    ..QueueStats::default()
                },
                tx: QueueStats::default(),
                driver_stats: Default::default(),
            }],
            elements: vec![],
            workers: vec![WorkerReport {
                index: 0,
                core: Some(1),
                bursts,
                idle_polls: idle,
                pool_exhausted: 0,
                finished: false,
                run_secs: secs,
                busy_secs: 0.0,
                idle_secs: secs,
                sleeps: 0,
                sleep_secs: 0.0,
                cpu_secs: 0.0,
            }],
        }
    }

    #[test]
    fn rates_are_since_the_previous_sample_or_the_start() {
        let first = report(2.0, 1000, 4, 10, 30);
        let s = stats(&first, None);
        assert_eq!(s["interval_secs"], 2.0);
        assert_eq!(s["ports"][0]["rx_pps"], 500.0);
        assert_eq!(s["ports"][0]["rx_bps"], 400_000);
        assert_eq!(s["workers"][0]["busy_percent"], 25.0);
        assert_eq!(
            s["drops"],
            json!([{"at": "in rx", "reason": "oversize", "count": 4, "per_sec": 2.0}])
        );
        let s = stats(&report(6.0, 1400, 4, 30, 30), Some(&first));
        assert_eq!(s["interval_secs"], 4.0);
        assert_eq!(s["ports"][0]["rx_pps"], 100.0);
        assert_eq!(s["ports"][0]["rx_packets"], 1400);
        assert_eq!(s["workers"][0]["busy_percent"], 100.0);
        assert_eq!(s["drops"][0]["per_sec"], 0.0);
        assert_eq!(s["report"]["ports"][0]["name"], "in");
        let text = stats_text(&s);
        assert!(
            text.starts_with("run time 6.0 s; rates over the last 4.0 s\n"),
            "{text}"
        );
        assert!(text.contains("\nelements:\n  (none)\n"), "{text}");
    }

    #[test]
    fn arrays_of_objects_are_aligned_tables() {
        let rows = json!([
            {"mac": "02:00:00:00:00:01", "port": 0, "age": 1.5},
            {"mac": "02:00:00:00:00:02", "port": 12, "age": 0.25, "note": "x"},
        ]);
        let t = text(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "mac                port   age  note");
        assert_eq!(lines[1], "02:00:00:00:00:01     0   1.5");
        assert_eq!(lines[2], "02:00:00:00:00:02    12  0.25  x");
        assert_eq!(text(&json!([])), "(none)\n");
    }

    #[test]
    fn objects_are_key_value_lines_with_tables_as_sections() {
        let t = text(&json!({"count": 3, "rules": [{"index": 0, "rule": "tcp"}], "name": "a"}));
        assert!(t.contains("count  3\n"), "{t}");
        assert!(t.contains("\nrules:\n  index  rule\n      0  tcp\n"), "{t}");
        assert!(t.contains("name   a\n"), "{t}");
    }
}
