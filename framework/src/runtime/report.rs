//! Run reports: per-port, per-element and per-worker counters, as a table or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::worker::Snapshot;
use crate::element::ClassInfo;
use crate::graph::{ElementCounters, GraphSpec};
use crate::port::QueueStats;

/// Counters of one port, summed over workers and queues.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortReport {
    /// Port name.
    pub name: String,
    /// Driver serving it.
    pub driver: String,
    /// Receive queues opened.
    pub rx_queues: usize,
    /// Received.
    pub rx: QueueStats,
    /// Transmitted.
    pub tx: QueueStats,
    /// Counters the driver reads from the system.
    pub driver_stats: BTreeMap<String, u64>,
}

/// Counters of one element, summed over workers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ElementReport {
    /// Element name.
    pub name: String,
    /// Class name.
    pub class: String,
    /// The counters.
    #[serde(flatten)]
    pub counters: ElementCounters,
}

/// What one worker did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerReport {
    /// Worker index.
    pub index: usize,
    /// Core it was pinned to.
    pub core: Option<usize>,
    /// Bursts received.
    pub bursts: u64,
    /// Passes over its queues that found nothing.
    pub idle_polls: u64,
    /// Times its pool had no free slot.
    pub pool_exhausted: u64,
    /// It has stopped.
    pub finished: bool,
    /// Seconds its loop ran (so far).
    pub run_secs: f64,
    /// Seconds of loop passes that received packets (so far).
    pub busy_secs: f64,
    /// Seconds of loop passes that found nothing: polling, yielding,
    /// sleeping (so far).
    pub idle_secs: f64,
    /// Times it slept in `poll` until frames arrived (`[runtime] idle =
    /// "sleep"`).
    pub sleeps: u64,
    /// Seconds of `idle_secs` spent in those sleeps.
    pub sleep_secs: f64,
    /// CPU seconds its thread used in its loop (so far): `run_secs` less
    /// the time it slept or other threads had its core.
    pub cpu_secs: f64,
}

/// Counters of a run, so far or at its end.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Seconds since the run started.
    pub elapsed_secs: f64,
    /// Bytes of frame each packet slot holds in this run.
    pub max_frame: usize,
    /// Per port, in config order.
    pub ports: Vec<PortReport>,
    /// Per element, in config order.
    pub elements: Vec<ElementReport>,
    /// Per worker.
    pub workers: Vec<WorkerReport>,
}

pub(super) type PortMeta = (
    String,
    String,
    Option<Box<dyn Fn() -> BTreeMap<String, u64> + Send>>,
    usize,
);

/// What a report names: the ports (with what the report reads of their
/// drivers) and the elements, in config order.
pub(crate) struct Layout {
    pub ports: Vec<PortMeta>,
    pub nodes: Vec<(String, ClassInfo)>,
}

impl Layout {
    pub fn new(spec: &GraphSpec, ports: Vec<PortMeta>) -> Layout {
        Layout {
            ports,
            nodes: spec
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.class))
                .collect(),
        }
    }
}

impl Report {
    pub(crate) fn collect(
        layout: &Layout,
        snaps: &[Arc<Mutex<Snapshot>>],
        elapsed: Duration,
        max_frame: usize,
    ) -> Report {
        let snaps: Vec<Snapshot> = snaps
            .iter()
            .map(|s| s.lock().map(|s| s.clone()).unwrap_or_default())
            .collect();
        let ports = layout
            .ports
            .iter()
            .enumerate()
            .map(|(p, (name, driver, stats, rx_queues))| {
                let mut rx = QueueStats::default();
                let mut tx = QueueStats::default();
                for s in &snaps {
                    rx += s.rx.get(p).copied().unwrap_or_default();
                    tx += s.tx.get(p).copied().unwrap_or_default();
                }
                PortReport {
                    name: name.clone(),
                    driver: driver.clone(),
                    rx_queues: *rx_queues,
                    rx,
                    tx,
                    driver_stats: stats.as_ref().map(|f| f()).unwrap_or_default(),
                }
            })
            .collect();
        let elements = layout
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (name, class))| {
                let mut counters = ElementCounters::default();
                for s in &snaps {
                    if let Some(c) = s.elements.get(i) {
                        counters.merge(c);
                    }
                }
                ElementReport {
                    name: name.clone(),
                    class: class.name.to_string(),
                    counters,
                }
            })
            .collect();
        let workers = snaps
            .iter()
            .enumerate()
            .map(|(index, s)| WorkerReport {
                index,
                core: s.core,
                bursts: s.bursts,
                idle_polls: s.idle_polls,
                pool_exhausted: s.pool_exhausted,
                finished: s.finished,
                run_secs: s.run_secs,
                busy_secs: s.busy_secs,
                idle_secs: s.idle_secs,
                sleeps: s.sleeps,
                sleep_secs: s.sleep_secs,
                cpu_secs: s.cpu_secs,
            })
            .collect();
        Report {
            elapsed_secs: elapsed.as_secs_f64(),
            max_frame,
            ports,
            elements,
            workers,
        }
    }

    /// One line of rates since `prev` (or since the start): per port rx/tx pps.
    pub fn live_line(&self, prev: Option<&Report>) -> String {
        let dt = self.elapsed_secs - prev.map_or(0.0, |p| p.elapsed_secs);
        let dt = if dt > 0.0 { dt } else { 1.0 };
        let mut parts = vec![format!("[{:7.1}s]", self.elapsed_secs)];
        for (i, p) in self.ports.iter().enumerate() {
            let (prx, ptx) = prev
                .and_then(|r| r.ports.get(i))
                .map_or((0, 0), |q| (q.rx.packets, q.tx.packets));
            let rx = (p.rx.packets - prx.min(p.rx.packets)) as f64 / dt;
            let tx = (p.tx.packets - ptx.min(p.tx.packets)) as f64 / dt;
            parts.push(format!(
                "{}: rx {} tx {}",
                p.name,
                human_rate(rx),
                human_rate(tx)
            ));
        }
        let dropped: u64 = self.elements.iter().map(|e| e.counters.dropped()).sum();
        parts.push(format!("dropped {dropped}"));
        let oversize: u64 = self
            .ports
            .iter()
            .map(|p| p.rx.oversize + p.tx.oversize)
            .sum();
        if oversize > 0 {
            parts.push(format!("oversize {oversize}"));
        }
        let cut: u64 = self.ports.iter().map(|p| p.rx.truncated_capture).sum();
        if cut > 0 {
            parts.push(format!("truncated-capture {cut}"));
        }
        parts.join("  ")
    }
}

/// `1.23 Mpps` style.
fn human_rate(pps: f64) -> String {
    if pps >= 1e6 {
        format!("{:.2} Mpps", pps / 1e6)
    } else if pps >= 1e3 {
        format!("{:.1} kpps", pps / 1e3)
    } else {
        format!("{pps:.0} pps")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run time {:.3} s, frames up to {} bytes per slot",
            self.elapsed_secs, self.max_frame
        )?;
        writeln!(
            f,
            "{:<16} {:<10} {:>12} {:>14} {:>12} {:>14} {:>10}",
            "port", "driver", "rx packets", "rx bytes", "tx packets", "tx bytes", "drops"
        )?;
        for p in &self.ports {
            writeln!(
                f,
                "{:<16} {:<10} {:>12} {:>14} {:>12} {:>14} {:>10}",
                p.name,
                p.driver,
                p.rx.packets,
                p.rx.bytes,
                p.tx.packets,
                p.tx.bytes,
                p.rx.drops + p.tx.drops
            )?;
            for (side, q) in [("rx", &p.rx), ("tx", &p.tx)] {
                for (reason, n) in [
                    ("oversize", q.oversize),
                    ("truncated-capture", q.truncated_capture),
                ] {
                    if n > 0 {
                        writeln!(f, "{:<16}   {side} dropped {reason}: {n}", "")?;
                    }
                }
            }
            for (k, v) in &p.driver_stats {
                writeln!(f, "{:<16}   {k}: {v}", "")?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<16} {:<14} {:>12} {:>12} {:>10}",
            "element", "class", "in", "out", "dropped"
        )?;
        for e in &self.elements {
            let c = &e.counters;
            writeln!(
                f,
                "{:<16} {:<14} {:>12} {:>12} {:>10}",
                e.name,
                e.class,
                c.packets_in,
                c.packets_out,
                c.dropped()
            )?;
            for (r, n) in &c.drops {
                writeln!(f, "{:<16}   dropped {r}: {n}", "")?;
            }
            for (k, v) in &c.custom {
                writeln!(f, "{:<16}   {k}: {v}", "")?;
            }
        }
        self.fmt_workers(f)
    }
}

impl Report {
    /// The table's last part: busy and idle time per worker, pool exhaustion.
    fn fmt_workers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.workers.is_empty() {
            writeln!(f)?;
        }
        for w in &self.workers {
            let total = w.busy_secs + w.idle_secs;
            let share = if total > 0.0 {
                w.busy_secs / total
            } else {
                0.0
            };
            write!(
                f,
                "worker {}: busy {:.3} s, idle {:.3} s ({:.0}% busy), {} bursts, {} idle polls",
                w.index,
                w.busy_secs,
                w.idle_secs,
                share * 100.0,
                w.bursts,
                w.idle_polls
            )?;
            if w.sleeps > 0 {
                write!(f, ", slept {:.3} s ({} sleeps)", w.sleep_secs, w.sleeps)?;
            }
            writeln!(f)?;
        }
        let exhausted: u64 = self.workers.iter().map(|w| w.pool_exhausted).sum();
        if exhausted > 0 {
            writeln!(
                f,
                "\npool exhausted {exhausted} times (raise [runtime] pool)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT};
    use crate::port::OpenPort;
    use crate::runtime::slot_frame;

    fn port(max_frame: usize) -> OpenPort {
        OpenPort {
            rx: Vec::new(),
            tx: Vec::new(),
            driver: "x".into(),
            driver_stats: None,
            max_frame,
        }
    }

    #[test]
    fn slots_hold_the_largest_port_frame_unless_max_frame_says() {
        // Standard MTUs keep the default slot: 64-byte runs pay nothing.
        assert_eq!(slot_frame(None, &[]), DEFAULT_MAX_FRAME);
        assert_eq!(
            slot_frame(None, &[port(1536), port(128)]),
            DEFAULT_MAX_FRAME
        );
        assert_eq!(slot_frame(None, &[port(1536), port(9024)]), 9024);
        assert_eq!(slot_frame(None, &[port(1 << 20)]), MAX_FRAME_LIMIT);
        // The setting wins, both ways, within the limits.
        assert_eq!(slot_frame(Some(4000), &[port(9024)]), 4000);
        assert_eq!(slot_frame(Some(65535), &[port(1536)]), 65535);
        assert_eq!(slot_frame(Some(10), &[]), DEFAULT_MAX_FRAME);
    }

    fn report(rx: QueueStats, tx: QueueStats) -> Report {
        Report {
            elapsed_secs: 1.0,
            max_frame: 9216,
            ports: vec![PortReport {
                name: "in".into(),
                driver: "pcap".into(),
                rx_queues: 1,
                rx,
                tx,
                driver_stats: BTreeMap::new(),
            }],
            elements: Vec::new(),
            workers: Vec::new(),
        }
    }

    #[test]
    fn oversize_and_truncated_captures_show_in_the_table_json_and_live_line() {
        let rx = QueueStats {
            packets: 5,
            drops: 3,
            oversize: 2,
            truncated_capture: 1,
            ..QueueStats::default()
        };
        let tx = QueueStats {
            drops: 4,
            oversize: 4,
            ..QueueStats::default()
        };
        let r = report(rx, tx);
        let table = r.to_string();
        assert!(
            table.contains("frames up to 9216 bytes per slot"),
            "{table}"
        );
        assert!(table.contains("rx dropped oversize: 2"), "{table}");
        assert!(table.contains("rx dropped truncated-capture: 1"), "{table}");
        assert!(table.contains("tx dropped oversize: 4"), "{table}");
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        let port = &json["ports"][0];
        assert_eq!(port["rx"]["oversize"], 2);
        assert_eq!(port["rx"]["truncated_capture"], 1);
        assert_eq!(port["tx"]["oversize"], 4);
        assert_eq!(json["max_frame"], 9216);
        let line = r.live_line(None);
        assert!(line.contains("oversize 6"), "{line}");
        assert!(line.contains("truncated-capture 1"), "{line}");
        // Nothing to say: no such lines.
        let quiet = report(QueueStats::default(), QueueStats::default());
        assert!(!quiet.to_string().contains("x dropped"));
        assert!(!quiet.live_line(None).contains("oversize"));
    }
}
