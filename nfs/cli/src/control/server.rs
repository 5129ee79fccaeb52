//! The control server: one thread answering HTTP requests on the control
//! socket through the run's [`Controller`].
//!
//! Every route is one arm of [`Server::route`]; a new one (tap, trace) is
//! one more arm.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hpio_nf::element::{HandlerKind, HandlerSpec};
use hpio_nf::runtime::{Controller, Report};
use serde_json::{json, Value};

use super::http::{percent_decode, respond, Failure};
use super::observe::{self, Taps};
use super::render::stats;
use super::Listener;
use crate::reload::{reload_from, ReloadFailure, Reloader};

/// Where `/sys/class/net` is (link state of interface-backed ports).
const SYS_NET: &str = "/sys/class/net";

/// Largest request body read (a rule, a flow spec).
const MAX_BODY: u64 = 1 << 20;

/// What the routes answer from: the run and what the server keeps.
pub(super) struct Server {
    controller: Controller,
    /// Port name -> the interface it is on (`None`: pcap, generator);
    /// replaced by a reload.
    interfaces: Mutex<Vec<(String, Option<String>)>>,
    /// What `POST /reload` uses (`None`: reloads are not offered).
    reloader: Option<Reloader>,
    /// The report of the previous `/stats` (rates are since it).
    prev: Mutex<Option<Report>>,
    /// Where interfaces' link state is read (`/sys/class/net`; tests change it).
    sys_net: PathBuf,
    /// The taps served (`/tap`, `/taps/ID`).
    taps: Arc<Taps>,
}

impl Server {
    pub fn new(controller: Controller, interfaces: Vec<(String, Option<String>)>) -> Server {
        Server {
            controller,
            interfaces: Mutex::new(interfaces),
            reloader: None,
            prev: Mutex::new(None),
            sys_net: PathBuf::from(SYS_NET),
            taps: Arc::default(),
        }
    }

    /// Answers `method path` with `body`: every route of the control socket.
    pub fn route(&self, method: &str, path: &str, body: &str) -> Result<Value, Failure> {
        let path = path.split('?').next().unwrap_or("");
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let c = &self.controller;
        match (method, segs.as_slice()) {
            ("GET", ["stats"]) => Ok(self.stats()),
            ("GET", ["elements"]) => Ok(self.elements()),
            ("GET", ["elements", el]) => {
                let shown = c.show(el)?;
                Ok(Value::Object(
                    shown.into_iter().map(|(h, v)| (h.to_string(), v)).collect(),
                ))
            }
            ("GET", ["elements", el, h]) => Ok(c.read(el, h)?),
            ("POST", ["elements", el, h]) => Ok(c.write(el, h, body.trim())?),
            ("GET", ["taps", id]) => self.taps.counts(id),
            ("GET", ["ports"]) => Ok(Value::Array(self.ports(&c.report()))),
            ("POST", ["reload"]) => self.reload(body.trim()),
            ("GET", ["ports", name]) => {
                let ports = self.ports(&c.report());
                let names: Vec<String> = ports
                    .iter()
                    .map(|p| p["name"].as_str().unwrap_or("").to_string())
                    .collect();
                ports
                    .into_iter()
                    .find(|p| p["name"] == *name)
                    .ok_or_else(|| {
                        Failure::new(
                            404,
                            format!("no port `{name}` (ports: {})", names.join(", ")),
                        )
                    })
            }
            ("GET", _) | ("POST", _) => Err(Failure::new(
                404,
                format!("no route {method} {path} (see docs/control.md)"),
            )),
            _ => Err(Failure::new(405, format!("method {method} not allowed"))),
        }
    }

    /// `POST /reload` (body: nothing, or the path of the config to load):
    /// the config re-read, checked and swapped in; answers the summary.
    fn reload(&self, body: &str) -> Result<Value, Failure> {
        let Some(reloader) = &self.reloader else {
            return Err(Failure::new(503, "this run does not offer reloads"));
        };
        let path = (!body.is_empty()).then(|| Path::new(body));
        match reload_from(reloader, path) {
            Ok(summary) => {
                *self.interfaces.lock().unwrap_or_else(|e| e.into_inner()) = reloader.interfaces();
                Ok(serde_json::to_value(summary).unwrap_or_default())
            }
            Err(ReloadFailure::Run(hpio_nf::runtime::ReloadError::Control(e))) => Err(e.into()),
            Err(e) => {
                let status = match e {
                    ReloadFailure::Config(_) => 400,
                    ReloadFailure::Run(_) => 409,
                    ReloadFailure::Port(_) => 500,
                };
                let message = format!("reload failed (the running graph is untouched):\n{e}");
                Err(Failure::new(status, message))
            }
        }
    }

    /// `GET /stats`: the report, with rates since the previous request.
    fn stats(&self) -> Value {
        let now = self.controller.report();
        let mut prev = self.prev.lock().unwrap_or_else(|e| e.into_inner());
        let answer = stats(&now, prev.as_ref());
        *prev = Some(now);
        answer
    }

    /// `GET /elements`: name, class and handlers of every element.
    fn elements(&self) -> Value {
        let list = self.controller.elements();
        Value::Array(
            list.iter()
                .map(|(name, class)| {
                    json!({
                        "name": name,
                        "class": class.name,
                        "handlers": class.handlers.iter().map(handler_json).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }

    /// `GET /ports`: per port, its link state and counters.
    fn ports(&self, report: &Report) -> Vec<Value> {
        let interfaces = self.interfaces.lock().unwrap_or_else(|e| e.into_inner());
        report
            .ports
            .iter()
            .map(|p| {
                let ifname = interfaces
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .and_then(|(_, i)| i.as_deref());
                let (operstate, carrier) = match ifname {
                    Some(i) => link_state(&self.sys_net, i),
                    None => ("n/a".to_string(), "n/a".to_string()),
                };
                json!({
                    "name": p.name,
                    "driver": p.driver,
                    "interface": ifname,
                    "operstate": operstate,
                    "carrier": carrier,
                    "rx_queues": p.rx_queues,
                    "rx": p.rx,
                    "tx": p.tx,
                    "driver_stats": p.driver_stats,
                })
            })
            .collect()
    }
}

/// A handler's declaration as JSON.
fn handler_json(h: &HandlerSpec) -> Value {
    json!({
        "name": h.name,
        "kind": match h.kind { HandlerKind::Read => "read", HandlerKind::Write => "write" },
        "combine": h.combine,
        "arg": h.arg,
        "doc": h.doc,
    })
}

/// `operstate` (`up`, `down`, `lowerlayerdown`, ...) and carrier (`up`,
/// `down`) of interface `ifname`; `unknown` for what cannot be read (the
/// kernel refuses to read the carrier of an interface that is down).
fn link_state(sys_net: &Path, ifname: &str) -> (String, String) {
    let read = |f: &str| std::fs::read_to_string(sys_net.join(ifname).join(f));
    let operstate = read("operstate")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let carrier = match read("carrier").map(|s| s.trim().to_string()).as_deref() {
        Ok("1") => "up",
        Ok("0") => "down",
        _ => "unknown",
    };
    (operstate, carrier.into())
}

/// The control socket answering requests on its own thread.
pub(crate) struct Service {
    listener: Arc<Listener>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Starts answering on `listener` for the run of `controller`;
    /// `interfaces` names the interface of each port that has one;
    /// `reloader` serves `POST /reload`.
    pub fn start(
        listener: Listener,
        controller: Controller,
        interfaces: Vec<(String, Option<String>)>,
        reloader: Reloader,
    ) -> anyhow::Result<Service> {
        let listener = Arc::new(listener);
        let closing = Arc::new(AtomicBool::new(false));
        let mut server = Server::new(controller, interfaces);
        server.reloader = Some(reloader);
        let (l, c) = (listener.clone(), closing.clone());
        let thread = std::thread::Builder::new()
            .name("hpio-nf-control".into())
            .spawn(move || serve(&l, &server, &c))?;
        log::info!("control socket: {}", listener.path().display());
        Ok(Service {
            listener,
            closing,
            thread: Some(thread),
        })
    }

    /// Stops answering and removes the socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        self.listener.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The server loop: one request at a time until `closing`.
fn serve(listener: &Listener, server: &Server, closing: &AtomicBool) {
    while !closing.load(Ordering::Relaxed) {
        let mut rq = match listener.server.recv() {
            Ok(rq) => rq,
            Err(e) => {
                if !closing.load(Ordering::Relaxed) {
                    log::warn!("control socket: {e}");
                }
                continue;
            }
        };
        if observe::is_long(rq.method().as_str(), rq.url()) {
            // A tap streams, a trace waits: each on a thread of its own.
            let (c, taps) = (server.controller.clone(), server.taps.clone());
            let spawned = std::thread::Builder::new()
                .name("hpio-nf-tap".into())
                .spawn(move || observe::answer(rq, c, taps));
            if let Err(e) = spawned {
                log::warn!("control socket: starting a tap or trace thread: {e}");
            }
            continue;
        }
        let mut body = String::new();
        let read = rq
            .as_reader()
            .take(MAX_BODY)
            .read_to_string(&mut body)
            .map_err(|e| Failure::new(400, format!("reading the request body: {e}")));
        let method = rq.method().as_str().to_string();
        let answer = read.and_then(|_| server.route(&method, rq.url(), &body));
        let (status, value) = match answer {
            Ok(v) => (200, v),
            Err(f) => (f.status, json!({ "error": f.message })),
        };
        respond(rq, status, &value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_state_comes_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let eth = dir.path().join("eth9");
        std::fs::create_dir(&eth).unwrap();
        std::fs::write(eth.join("operstate"), "up\n").unwrap();
        std::fs::write(eth.join("carrier"), "1\n").unwrap();
        assert_eq!(link_state(dir.path(), "eth9"), ("up".into(), "up".into()));
        std::fs::write(eth.join("carrier"), "0\n").unwrap();
        assert_eq!(link_state(dir.path(), "eth9").1, "down");
        assert_eq!(
            link_state(dir.path(), "nope"),
            ("unknown".into(), "unknown".into())
        );
    }
}
