//! `hpio-nf run CONFIG --metrics [ADDR:]PORT`: the run's counters served
//! over HTTP at `GET /metrics` in the OpenMetrics text format, for
//! Prometheus.
//!
//! Prometheus asks for OpenMetrics (`Accept: application/openmetrics-text`)
//! and gets it as `prometheus-client` writes it. A client that does not ask
//! for it (curl, `promtool check metrics`, older scrapers) gets the same
//! samples in the classic text format (version 0.0.4), which differs only
//! in its comments: a counter's `# HELP`/`# TYPE` name carries the `_total`
//! of its samples, and there is no `# EOF`/`# UNIT` ([`classic`]).
//!
//! Nothing is kept up to date while packets flow: each scrape takes the
//! run's report ([`Controller::report`], the workers' last published
//! counters, at most 100 ms old) and turns it into metric families, which
//! the `prometheus-client` crate encodes. The data path pays nothing, scrape
//! or not.
//!
//! Counters never go down. A value can shrink when a hot reload replaces an
//! element (its counters start again from zero): the exporter keeps, per
//! series (metric name and labels), the last value it read and an offset.
//! When a read is lower than the last one, the last one is added to the
//! offset (the counter restarted from zero), and the series exports the read
//! plus the offset. So a series only grows, and what the old element had
//! counted stays in it.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use hpio_nf::port::QueueStats;
use hpio_nf::runtime::{Controller, Report};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic Prometheus text format.
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Parses `--metrics`: `PORT` (on 127.0.0.1), `ADDR:PORT` or `[V6ADDR]:PORT`.
pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse().map_err(|_| {
        format!("expected PORT, ADDR:PORT or [ADDR]:PORT (for example 9464 or 127.0.0.1:9464), got `{s}`")
    })
}

/// The metrics listener, bound before the run starts so that a busy
/// address stops `hpio-nf run` before it opens anything.
pub(crate) struct Listener {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
}

/// Binds `addr`.
pub(crate) fn bind(addr: SocketAddr) -> anyhow::Result<Listener> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("--metrics: cannot listen on {addr}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow::anyhow!("--metrics: {addr} is not an IP address"))?;
    Ok(Listener {
        server: Arc::new(server),
        addr,
    })
}

/// A serving metrics endpoint; dropping it stops the server thread.
pub(crate) struct Server {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Serves `GET /metrics` from `controller`'s reports on a thread of its
    /// own (one request at a time: a scrape is cheap).
    pub fn serve(self, controller: Controller) -> anyhow::Result<Server> {
        log::info!("metrics at http://{}/metrics", self.addr);
        let mut exporter = Exporter::new(controller);
        let server = self.server.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    let openmetrics = request.headers().iter().any(|h| {
                        h.field.equiv("Accept")
                            && h.value.as_str().contains("application/openmetrics-text")
                    });
                    let response = exporter.answer(request.method(), request.url(), openmetrics);
                    if let Err(e) = request.respond(response) {
                        log::debug!("metrics: answering a scrape: {e}");
                    }
                }
            })?;
        Ok(Server {
            server: self.server,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

/// Turns reports into metrics, keeping every counter monotonic (owned by
/// the server thread, which answers one request at a time).
struct Exporter {
    controller: Controller,
    series: Monotonic,
}

impl Exporter {
    fn new(controller: Controller) -> Exporter {
        Exporter {
            controller,
            series: Monotonic::default(),
        }
    }

    fn answer(&mut self, method: &tiny_http::Method, url: &str, openmetrics: bool) -> Response {
        let path = url.split('?').next().unwrap_or(url);
        if path != "/metrics" {
            return text(404, "not found: hpio-nf serves /metrics only\n");
        }
        if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
            return text(405, "only GET /metrics\n");
        }
        match encode(&self.controller.report(), &mut self.series) {
            Ok(body) => {
                let (body, kind) = if openmetrics {
                    (body, OPENMETRICS)
                } else {
                    (classic(&body), CLASSIC)
                };
                let header =
                    tiny_http::Header::from_bytes("Content-Type", kind).expect("a valid header");
                tiny_http::Response::from_string(body).with_header(header)
            }
            Err(_) => text(500, "encoding the metrics failed\n"),
        }
    }
}

fn text(code: u16, body: &str) -> Response {
    tiny_http::Response::from_string(body).with_status_code(code)
}

/// OpenMetrics text as the classic text format: a counter family's
/// `# HELP` and `# TYPE` lines name its samples (`X_total`), and the
/// OpenMetrics-only `# EOF` and `# UNIT` lines go.
pub(crate) fn classic(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let comment = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match comment {
            Some((p, rest)) => {
                let name = rest.split(' ').next().unwrap_or_default();
                let tail = &rest[name.len()..];
                let total = if counters.contains(&name) {
                    "_total"
                } else {
                    ""
                };
                let _ = writeln!(out, "{p}{name}{total}{tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Per series: the last value read and the offset added to it.
#[derive(Default)]
pub(crate) struct Monotonic {
    ints: HashMap<String, (u64, u64)>,
    floats: HashMap<String, (f64, f64)>,
}

impl Monotonic {
    fn int(&mut self, key: String, read: u64) -> u64 {
        let (last, offset) = self.ints.entry(key).or_insert((read, 0));
        if read < *last {
            *offset += *last;
        }
        *last = read;
        read + *offset
    }

    fn float(&mut self, key: String, read: f64) -> f64 {
        let (last, offset) = self.floats.entry(key).or_insert((read, 0.0));
        if read < *last {
            *offset += *last;
        }
        *last = read;
        read + *offset
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: name (without `_total`), help, type and samples.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

/// Gathers families in order of first use.
struct Families<'a> {
    list: Vec<Family>,
    series: &'a mut Monotonic,
}

impl Families<'_> {
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
        s: (Labels, Value),
    ) {
        // The encoder writes label values as they are.
        let s = (s.0.into_iter().map(|(l, v)| (l, escape(&v))).collect(), s.1);
        let i = match self.list.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.list.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.list.len() - 1
            }
        };
        self.list[i].samples.push(s);
    }

    fn key(name: &str, labels: &Labels) -> String {
        let mut k = name.to_string();
        for (l, v) in labels {
            let _ = write!(k, "\u{0}{l}={v}");
        }
        k
    }

    fn counter(&mut self, name: &'static str, help: &'static str, labels: Labels, v: u64) {
        let v = self.series.int(Self::key(name, &labels), v);
        self.add(name, help, MetricType::Counter, (labels, Value::Int(v)));
    }

    fn seconds(&mut self, name: &'static str, help: &'static str, labels: Labels, v: f64) {
        let v = self.series.float(Self::key(name, &labels), v);
        self.add(name, help, MetricType::Counter, (labels, Value::Float(v)));
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, labels: Labels, v: Value) {
        self.add(name, help, MetricType::Gauge, (labels, v));
    }
}

/// The report as OpenMetrics text, counters kept monotonic by `series`.
pub(crate) fn encode(report: &Report, series: &mut Monotonic) -> Result<String, fmt::Error> {
    let mut f = Families {
        list: Vec::new(),
        series,
    };
    f.gauge(
        "hpio_nf_uptime_seconds",
        "Seconds since the run started.",
        Vec::new(),
        Value::Float(report.elapsed_secs),
    );
    ports(&mut f, report);
    elements(&mut f, report);
    workers(&mut f, report);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(f.list)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

fn ports(f: &mut Families<'_>, report: &Report) {
    for p in &report.ports {
        let port = || vec![("port", p.name.clone())];
        let mut info = port();
        info.push(("driver", p.driver.clone()));
        f.gauge(
            "hpio_nf_port_info",
            "A port of the run and its driver (always 1).",
            info,
            Value::Int(1),
        );
        f.counter(
            "hpio_nf_port_rx_packets",
            "Packets received.",
            port(),
            p.rx.packets,
        );
        f.counter(
            "hpio_nf_port_rx_bytes",
            "Bytes of frames received.",
            port(),
            p.rx.bytes,
        );
        f.counter(
            "hpio_nf_port_tx_packets",
            "Packets sent.",
            port(),
            p.tx.packets,
        );
        f.counter(
            "hpio_nf_port_tx_bytes",
            "Bytes of frames sent.",
            port(),
            p.tx.bytes,
        );
        f.counter(
            "hpio_nf_port_rx_errors",
            "Failed receive calls.",
            port(),
            p.rx.errors,
        );
        f.counter(
            "hpio_nf_port_tx_errors",
            "Failed send calls.",
            port(),
            p.tx.errors,
        );
        for (reason, n) in drop_reasons(&p.rx) {
            let mut l = port();
            l.push(("reason", reason.to_string()));
            f.counter(
                "hpio_nf_port_rx_drops",
                "Packets lost on receive, by reason: oversize (longer than a slot), truncated_capture (a pcap record cut short), other (no buffer, kernel drops).",
                l,
                n,
            );
        }
        for (reason, n) in drop_reasons(&p.tx) {
            let mut l = port();
            l.push(("reason", reason.to_string()));
            f.counter(
                "hpio_nf_port_tx_drops",
                "Packets not sent, by reason: oversize (longer than the interface sends), other (queue full, error).",
                l,
                n,
            );
        }
        for (name, n) in &p.driver_stats {
            let mut l = port();
            l.push(("counter", name.clone()));
            f.counter(
                "hpio_nf_port_driver",
                "The port driver's own counters, named by the counter label (docs/config.md lists them per driver).",
                l,
                *n,
            );
        }
    }
}

/// A label value with `\`, `"` and line feeds escaped.
fn escape(v: &str) -> String {
    if !v.contains(['\\', '"', '\n']) {
        return v.to_string();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A queue's drops split by reason (the reasons add up to `drops`).
fn drop_reasons(q: &QueueStats) -> [(&'static str, u64); 3] {
    let named = q.oversize + q.truncated_capture;
    [
        ("oversize", q.oversize),
        ("truncated_capture", q.truncated_capture),
        ("other", q.drops.saturating_sub(named)),
    ]
}

fn elements(f: &mut Families<'_>, report: &Report) {
    for e in &report.elements {
        let el = || vec![("element", e.name.clone())];
        let mut info = el();
        info.push(("class", e.class.clone()));
        f.gauge(
            "hpio_nf_element_info",
            "An element of the graph and its class (always 1).",
            info,
            Value::Int(1),
        );
        let c = &e.counters;
        f.counter(
            "hpio_nf_element_packets_in",
            "Packets handed to the element.",
            el(),
            c.packets_in,
        );
        f.counter(
            "hpio_nf_element_packets_out",
            "Packets the element sent to its outputs.",
            el(),
            c.packets_out,
        );
        for (reason, n) in &c.drops {
            let mut l = el();
            l.push(("reason", reason.clone()));
            f.counter(
                "hpio_nf_element_drops",
                "Packets the element dropped, by reason (`hpio-nf elements CLASS` lists them).",
                l,
                *n,
            );
        }
        // Counts and levels alike (Counter's pps, Bridge's entries): the
        // element API does not say which is which, so no counter type.
        for (name, n) in &c.custom {
            let mut l = el();
            l.push(("stat", name.clone()));
            f.gauge(
                "hpio_nf_element_stat",
                "The element's own values, named by the stat label (`hpio-nf elements CLASS` lists them): counts, and levels such as rates or table sizes.",
                l,
                Value::Int(*n),
            );
        }
    }
}

fn workers(f: &mut Families<'_>, report: &Report) {
    for w in &report.workers {
        let wl = || vec![("worker", w.index.to_string())];
        f.seconds(
            "hpio_nf_worker_busy_seconds",
            "Seconds of the worker's loop spent in passes that received packets.",
            wl(),
            w.busy_secs,
        );
        f.seconds(
            "hpio_nf_worker_idle_seconds",
            "Seconds of the worker's loop spent in passes that found nothing (polling, yielding, sleeping).",
            wl(),
            w.idle_secs,
        );
        f.seconds(
            "hpio_nf_worker_sleep_seconds",
            "Seconds of the idle time spent asleep in poll(2) ([runtime] idle = \"sleep\").",
            wl(),
            w.sleep_secs,
        );
        f.seconds(
            "hpio_nf_worker_cpu_seconds",
            "CPU seconds the worker's thread used in its loop.",
            wl(),
            w.cpu_secs,
        );
        f.counter(
            "hpio_nf_worker_bursts",
            "Bursts the worker received.",
            wl(),
            w.bursts,
        );
        f.counter(
            "hpio_nf_worker_idle_polls",
            "Passes over the worker's queues that found nothing.",
            wl(),
            w.idle_polls,
        );
        f.counter(
            "hpio_nf_worker_pool_exhausted",
            "Times the worker's packet pool had no free slot.",
            wl(),
            w.pool_exhausted,
        );
    }
}

/// The families of one scrape, handed to the encoder.
#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for fam in &self.0 {
            let mut metric = encoder.encode_descriptor(fam.name, fam.help, None, fam.kind)?;
            for (labels, v) in &fam.samples {
                if labels.is_empty() {
                    sample(&mut metric, fam.kind, *v)?;
                } else {
                    sample(&mut metric.encode_family(labels)?, fam.kind, *v)?;
                }
            }
        }
        Ok(())
    }
}

fn sample(m: &mut MetricEncoder<'_>, kind: MetricType, v: Value) -> Result<(), fmt::Error> {
    match (kind, v) {
        (MetricType::Counter, Value::Int(n)) => m.encode_counter::<NoLabelSet, _, u64>(&n, None),
        (MetricType::Counter, Value::Float(x)) => m.encode_counter::<NoLabelSet, _, f64>(&x, None),
        (_, Value::Int(n)) => m.encode_gauge(&n),
        (_, Value::Float(x)) => m.encode_gauge(&x),
    }
}

#[cfg(test)]
mod tests;
