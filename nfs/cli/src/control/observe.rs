//! The control socket's tap and trace routes. Both run on a thread of
//! their own (a tap streams until its count or the client goes; a trace
//! waits for its packets), so the other routes keep answering:
//!
//! - `GET /tap?edge=EDGE[&count=N][&filter=RULE][&queue=COPIES]`: pcap,
//!   close-delimited, flushed as copies come; its id in `X-Tap-Id`;
//! - `GET /taps/ID`: that tap's copies and lost copies (also once it ended);
//! - `GET /trace[?count=N][&filter=RULE][&wait=SECONDS]`: the records of the
//!   next N packets (that RULE selects), or those that came within the wait.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hpio_nf::config::parse_edge;
use hpio_nf::graph::{TapCopy, TapShared};
use hpio_nf::runtime::{Controller, TapNext, TAP_QUEUE};
use serde_json::{json, Value};

use super::http::{percent_decode, respond, Failure};
use crate::observe::filter;

/// Taps whose counts `/taps/ID` can still tell (the latest ones).
const KEPT_TAPS: usize = 64;

/// Longest a trace request waits.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(300);

/// The taps served so far: id, edge and counts.
#[derive(Default)]
pub(super) struct Taps {
    list: Mutex<Vec<(u64, String, Arc<TapShared>)>>,
}

impl Taps {
    /// `GET /taps/ID`.
    pub fn counts(&self, id: &str) -> Result<Value, Failure> {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let found = id
            .parse::<u64>()
            .ok()
            .and_then(|id| list.iter().find(|t| t.0 == id));
        let (id, edge, t) =
            found.ok_or_else(|| Failure::new(404, format!("no tap `{id}` (it may be too old)")))?;
        Ok(json!({ "id": id, "edge": edge, "copies": t.queued(), "lost": t.lost() }))
    }

    fn keep(&self, id: u64, edge: &str, shared: Arc<TapShared>) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() == KEPT_TAPS {
            list.remove(0);
        }
        list.push((id, edge.to_string(), shared));
    }
}

/// Whether `method url` is a tap or trace request (answered on its own thread).
pub(super) fn is_long(method: &str, url: &str) -> bool {
    let path = url.split('?').next().unwrap_or("");
    method == "GET" && matches!(path.trim_end_matches('/'), "/tap" | "/trace")
}

/// Answers a tap or trace request (on its own thread).
pub(super) fn answer(rq: tiny_http::Request, controller: Controller, taps: Arc<Taps>) {
    let url = rq.url().to_string();
    let q = Query::parse(&url);
    let result = if url.starts_with("/tap") {
        match open_tap(&controller, &q) {
            Ok(tap) => return stream(rq, tap, &taps),
            Err(f) => Err(f),
        }
    } else {
        trace(&controller, &q)
    };
    match result {
        Ok(v) => respond(rq, 200, &v),
        Err(f) => respond(rq, f.status, &json!({ "error": f.message })),
    }
}

/// A request's query parameters, decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(url: &str) -> Query {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        Query(
            query
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    let d = |s: &str| percent_decode(&s.replace('+', " "));
                    (d(k), d(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str) -> Result<Option<u64>, Failure> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    Failure::new(400, format!("`{key}` must be a whole number, not `{v}`"))
                })
            })
            .transpose()
    }
}

fn open_tap(c: &Controller, q: &Query) -> Result<hpio_nf::runtime::Tap, Failure> {
    let text = q
        .get("edge")
        .ok_or_else(|| Failure::new(400, "a tap needs `edge` (e.g. `fw[1]`, `left rx`)"))?;
    let edge = parse_edge(text).map_err(|e| Failure::new(400, e))?;
    let filter = filter("filter", q.get("filter")).map_err(|e| Failure::new(400, e.to_string()))?;
    let queue = q
        .number("queue")?
        .map_or(TAP_QUEUE, |n| n.clamp(1, 1 << 20) as usize);
    Ok(c.tap(&edge, filter, q.number("count")?, queue)?)
}

/// Streams the tap's copies as pcap until its count, the run's end or the
/// client's going.
fn stream(rq: tiny_http::Request, mut tap: hpio_nf::runtime::Tap, taps: &Taps) {
    let id = tap.id();
    taps.keep(id, tap.edge(), tap.shared());
    let mut w = rq.into_writer();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.tcpdump.pcap\r\nX-Tap-Id: {id}\r\n\
         X-Tap-Edge: {}\r\nConnection: close\r\n\r\n",
        tap.edge()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(&pcap_header());
    loop {
        match tap.next(Duration::from_millis(100)) {
            TapNext::Copy(c) => {
                pcap_record(&mut out, &c);
                tap.recycle(c);
                if out.len() < 64 * 1024 {
                    continue;
                }
            }
            TapNext::Idle => {}
            TapNext::Done => break,
        }
        if !out.is_empty() && (w.write_all(&out).is_err() || w.flush().is_err()) {
            return; // The client went: dropping the tap removes it.
        }
        out.clear();
    }
    let _ = w.write_all(&out).and_then(|_| w.flush());
}

/// The pcap file header: microsecond timestamps, Ethernet, 64 KiB snap length.
fn pcap_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&65535u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

/// One pcap record.
fn pcap_record(out: &mut Vec<u8>, c: &TapCopy) {
    let secs = (c.time_ns / 1_000_000_000) as u32;
    let usecs = ((c.time_ns % 1_000_000_000) / 1000) as u32;
    for v in [secs, usecs, c.data.len() as u32, c.wire_len as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&c.data);
}

/// `GET /trace`: arms the trace, waits for its records.
fn trace(c: &Controller, q: &Query) -> Result<Value, Failure> {
    let count = q.number("count")?.unwrap_or(1);
    let wait = q
        .number("wait")?
        .map_or(Duration::from_secs(10), Duration::from_secs);
    let filter = filter("filter", q.get("filter")).map_err(|e| Failure::new(400, e.to_string()))?;
    let mut t = c.trace(count, filter)?;
    let records = t.collect(Some(wait.min(MAX_WAIT)));
    Ok(json!({ "asked": count, "traces": records }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        let q = Query::parse("/tap?edge=fw%5B1%5D+-%3E+out&count=3&x");
        assert_eq!(q.get("edge"), Some("fw[1] -> out"));
        assert_eq!(q.number("count").unwrap(), Some(3));
        assert_eq!(q.get("x"), Some(""));
        let e = Query::parse("/trace?count=lots")
            .number("count")
            .unwrap_err();
        assert_eq!(e.message, "`count` must be a whole number, not `lots`");
        assert!(is_long("GET", "/tap?edge=a") && is_long("GET", "/trace"));
        assert!(!is_long("GET", "/taps/3") && !is_long("POST", "/trace"));
    }

    #[test]
    fn pcap_records_are_classic_pcap() {
        let mut out = pcap_header().to_vec();
        let c = TapCopy {
            time_ns: 1_500_000_123_456_789,
            wire_len: 70,
            data: vec![7; 60],
        };
        pcap_record(&mut out, &c);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, &out).unwrap();
        let frames = testkit::pcap::read(&path);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data, vec![7; 60]);
        assert_eq!(frames[0].ts_ns, 1_500_000_123_456_000);
    }
}
