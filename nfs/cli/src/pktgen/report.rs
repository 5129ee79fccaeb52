//! What pktgen prints: a line per second while the threads run, and the
//! summary at the end, as text or JSON.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hpio_nf::port::{PortError, QueueStats};
use serde_json::json;

use super::{PktgenArgs, Running, PORT};
use crate::tool::{fmt_bps, fmt_pps, Live};

/// What a run did, per thread and in total.
pub(super) struct Report {
    mode: &'static str,
    what: String,
    driver: String,
    seconds: f64,
    threads: Vec<(usize, QueueStats)>,
    pub(super) error: Option<PortError>,
}

impl Report {
    fn total(&self) -> QueueStats {
        let mut t = QueueStats::default();
        for (_, s) in &self.threads {
            t += *s;
        }
        t
    }

    pub(super) fn print(&self, json: bool) {
        let secs = self.seconds.max(1e-9);
        let rate = |s: &QueueStats| (s.packets as f64 / secs, s.bytes as f64 * 8.0 / secs);
        let total = self.total();
        let (pps, bps) = rate(&total);
        if json {
            let threads: Vec<_> = self
                .threads
                .iter()
                .enumerate()
                .map(|(t, (core, s))| {
                    let (pps, bps) = rate(s);
                    json!({"thread": t, "core": core, "packets": s.packets, "bytes": s.bytes,
                           "drops": s.drops, "errors": s.errors, "pps": pps, "bps": bps})
                })
                .collect();
            let v = json!({"event": "summary", "mode": self.mode, "port": self.what,
                "driver": self.driver, "seconds": self.seconds, "packets": total.packets,
                "bytes": total.bytes, "drops": total.drops, "errors": total.errors,
                "pps": pps, "bps": bps, "threads": threads,
                "error": self.error.as_ref().map(|e| e.to_string())});
            println!("{v}");
            return;
        }
        let verb = if self.mode == "tx" {
            "sent"
        } else {
            "received"
        };
        let drops = if self.mode == "tx" {
            "dropped (device busy)"
        } else {
            "dropped by the port"
        };
        println!(
            "pktgen: {verb} {} packets ({} bytes) in {:.3} s on {} (driver {}): {}, {}; \
             {} {drops}, {} errors",
            total.packets,
            total.bytes,
            self.seconds,
            self.what,
            self.driver,
            fmt_pps(pps),
            fmt_bps(bps),
            total.drops,
            total.errors
        );
        if self.threads.len() > 1 {
            for (t, (core, s)) in self.threads.iter().enumerate() {
                let (pps, bps) = rate(s);
                println!(
                    "  thread {t} (core {core}): {} packets, {}, {}, {} {drops}, {} errors",
                    s.packets,
                    fmt_pps(pps),
                    fmt_bps(bps),
                    s.drops,
                    s.errors
                );
            }
        }
    }
}

/// Prints a line per second until every thread has finished (stopping them
/// at the `--duration`), then joins them.
pub(super) fn meter(run: Running, cores: &[usize], a: &PktgenArgs, stop: &AtomicBool) -> Report {
    let deadline = a.duration.map(|d| run.start + d);
    let mut prev: Vec<QueueStats> = vec![QueueStats::default(); run.live.len()];
    let mut prev_t = run.start;
    let mut tick = run.start + Duration::from_secs(1);
    while !run.live.iter().all(Live::done) {
        std::thread::sleep(Duration::from_millis(5));
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            stop.store(true, Ordering::Relaxed);
        }
        if now >= tick && !stop.load(Ordering::Relaxed) {
            let cur: Vec<QueueStats> = run.live.iter().map(Live::read).collect();
            let dt = (now - prev_t).as_secs_f64();
            let rates: Vec<(f64, f64)> = cur
                .iter()
                .zip(&prev)
                .map(|(c, p)| {
                    (
                        (c.packets - p.packets) as f64 / dt,
                        (c.bytes - p.bytes) as f64 * 8.0 / dt,
                    )
                })
                .collect();
            interval_line(&run, cores, (now - run.start).as_secs_f64(), &rates, a.json);
            (prev, prev_t) = (cur, now);
            while tick <= now {
                tick += Duration::from_secs(1);
            }
        }
    }
    let mut end = run.start;
    let mut error = None;
    for h in run.handles {
        match h.join() {
            Ok(Ok(t)) => end = end.max(t),
            Ok(Err(e)) => {
                end = end.max(Instant::now());
                error.get_or_insert(e);
            }
            Err(p) => {
                let msg = hpio_nf::runtime::panic_message(&*p);
                error.get_or_insert(PortError::other(PORT, format!("a thread panicked: {msg}")));
            }
        }
    }
    let threads = run
        .live
        .iter()
        .zip(cores)
        .map(|(l, &c)| (c, l.read()))
        .collect();
    Report {
        mode: run.mode,
        what: run.what,
        driver: run.driver,
        seconds: (end - run.start).as_secs_f64(),
        threads,
        error,
    }
}

fn interval_line(run: &Running, cores: &[usize], t: f64, rates: &[(f64, f64)], json: bool) {
    let (pps, bps) = rates
        .iter()
        .fold((0.0, 0.0), |(p, b), (x, y)| (p + x, b + y));
    if json {
        let threads: Vec<_> = rates
            .iter()
            .enumerate()
            .map(|(i, (p, b))| json!({"thread": i, "core": cores[i], "pps": p, "bps": b}))
            .collect();
        println!(
            "{}",
            json!({"event": "interval", "mode": run.mode, "time": t, "pps": pps, "bps": bps,
                   "threads": threads})
        );
        return;
    }
    let mut line = format!(
        "{t:7.2} s  {} {:>12} {:>15}",
        run.mode,
        fmt_pps(pps),
        fmt_bps(bps)
    );
    if rates.len() > 1 {
        let per: Vec<String> = rates
            .iter()
            .enumerate()
            .map(|(i, (p, _))| format!("t{i}@{} {}", cores[i], fmt_pps(*p)))
            .collect();
        line += &format!("  [{}]", per.join(", "));
    }
    println!("{line}");
}
