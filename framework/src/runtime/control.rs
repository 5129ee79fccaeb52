//! Reaching into a running graph: jobs run by each worker between bursts.
//!
//! A [`Controller`] is the handle the control socket, the metrics server and
//! the reload use. It never touches a worker's state itself: it sends each
//! worker a job (a closure) over a channel; the worker runs its jobs at the
//! top of its loop, between two bursts, on its own thread, with its graph
//! replica, pool and queues in hand, and sends the answer back. The data
//! path pays one load of a flag per pass of the loop (set when a job is
//! queued), no lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::report::{Layout, Report};
use super::worker::{Job, JobSender, Snapshot, WorkerAccess};
use crate::element::{handler, Answer, ClassInfo, HandlerCx, HandlerKind, HandlerSpec};
use crate::graph::Graph;

/// How long a request waits for the workers' answers: a worker runs its
/// jobs between bursts, so this only runs out when one is stuck.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No element of that name.
    #[error("no element `{name}`{hint}")]
    NoElement {
        /// The name asked for.
        name: String,
        /// " (did you mean `x`?)" or the list of elements.
        hint: String,
    },
    /// The element's class has no such handler.
    #[error("element `{element}` (class {class}) has no {kind} handler `{handler}`; it has: {available}")]
    NoHandler {
        /// Element name.
        element: String,
        /// Its class.
        class: String,
        /// "read" or "write".
        kind: &'static str,
        /// The handler asked for.
        handler: String,
        /// The handlers of that kind it has.
        available: String,
    },
    /// A handler said no (a bad argument); the message is the element's.
    #[error("{element}.{handler}: {message}")]
    Handler {
        /// Element name.
        element: String,
        /// Handler name.
        handler: String,
        /// What the element said (with the worker when they disagree).
        message: String,
    },
    /// The run has ended (or a worker has).
    #[error("the run is not running (worker {0} has stopped)")]
    NotRunning(usize),
    /// A worker did not answer in time.
    #[error("worker {0} did not answer within {1:?}")]
    Timeout(usize, Duration),
    /// The request names something the graph does not have, or cannot be
    /// done now (the message says which).
    #[error("{0}")]
    Request(String),
}

/// Shared by the run and every [`Controller`] clone.
pub(crate) struct Shared {
    pub jobs: Vec<Mutex<JobSender>>,
    pub snapshots: Vec<Arc<Mutex<Snapshot>>>,
    /// What the report names: ports and elements (replaced by a reload).
    pub layout: Mutex<Layout>,
    pub start: Instant,
    pub max_frame: usize,
    pub stop: Arc<AtomicBool>,
    /// The options the run started with (a reload may not change them).
    pub opts: super::RunOptions,
}

/// A handle on a running graph, for the control socket, metrics and
/// reloads. Cheap to clone; every method may be called from any thread.
#[derive(Clone)]
pub struct Controller {
    pub(crate) shared: Arc<Shared>,
}

impl Controller {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.shared.jobs.len()
    }

    /// The counters so far (what the live line and `ctl stats` show).
    pub fn report(&self) -> Report {
        let layout = self.shared.layout.lock().unwrap_or_else(|e| e.into_inner());
        Report::collect(
            &layout,
            &self.shared.snapshots,
            self.shared.start.elapsed(),
            self.shared.max_frame,
        )
    }

    /// Whether the run has ended (every worker has stopped).
    pub fn ended(&self) -> bool {
        self.shared
            .snapshots
            .iter()
            .all(|s| s.lock().map_or(true, |s| s.finished))
    }

    /// Asks the run to stop (as SIGTERM does).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Wakes every worker that sleeps in `poll` (after the stop flag was set).
    pub(crate) fn wake_all(&self) {
        for jobs in &self.shared.jobs {
            jobs.lock().unwrap_or_else(|e| e.into_inner()).wake();
        }
    }

    /// The elements, in config order: name and class.
    pub fn elements(&self) -> Vec<(String, ClassInfo)> {
        let layout = self.shared.layout.lock().unwrap_or_else(|e| e.into_inner());
        layout.nodes.clone()
    }

    /// Runs `f` on every worker, between its bursts, and returns the answers
    /// in worker order.
    pub(crate) fn on_each_worker<R: Send + 'static>(
        &self,
        f: impl Fn(&mut WorkerAccess<'_>) -> R + Send + Sync + 'static,
    ) -> Result<Vec<R>, ControlError> {
        let answers = self.send_each(f)?;
        self.gather(answers)
    }

    /// Queues `f` for every worker without waiting (workers not started
    /// yet run it before their first burst); [`Controller::gather`] waits
    /// for the answers.
    pub(crate) fn send_each<R: Send + 'static>(
        &self,
        f: impl Fn(&mut WorkerAccess<'_>) -> R + Send + Sync + 'static,
    ) -> Result<mpsc::Receiver<(usize, R)>, ControlError> {
        self.send_first(self.workers(), f)
    }

    /// [`Controller::send_each`] for workers `0..n` only.
    fn send_first<R: Send + 'static>(
        &self,
        n: usize,
        f: impl Fn(&mut WorkerAccess<'_>) -> R + Send + Sync + 'static,
    ) -> Result<mpsc::Receiver<(usize, R)>, ControlError> {
        let f = Arc::new(f);
        let (reply, answers) = mpsc::channel::<(usize, R)>();
        for (w, jobs) in self.shared.jobs.iter().enumerate().take(n) {
            let (f, reply) = (f.clone(), reply.clone());
            let job: Job = Box::new(move |access| {
                let _ = reply.send((w, f(access)));
            });
            let sent = jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job);
            sent.map_err(|_| ControlError::NotRunning(w))?;
        }
        Ok(answers)
    }

    /// The answers to jobs queued by [`Controller::send_each`], in worker order.
    pub(crate) fn gather<R>(
        &self,
        answers: mpsc::Receiver<(usize, R)>,
    ) -> Result<Vec<R>, ControlError> {
        self.gather_first(self.workers(), answers)
    }

    /// [`Controller::gather`] for jobs queued by [`Controller::send_first`]`(n, ..)`.
    fn gather_first<R>(
        &self,
        n: usize,
        answers: mpsc::Receiver<(usize, R)>,
    ) -> Result<Vec<R>, ControlError> {
        let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        for _ in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            match answers.recv_timeout(left) {
                Ok((w, r)) => out[w] = Some(r),
                Err(e) => {
                    let missing = out.iter().position(Option::is_none).unwrap_or(0);
                    return Err(match e {
                        mpsc::RecvTimeoutError::Timeout => {
                            ControlError::Timeout(missing, ANSWER_TIMEOUT)
                        }
                        // The job was dropped unrun: the worker has ended.
                        mpsc::RecvTimeoutError::Disconnected => ControlError::NotRunning(missing),
                    });
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// The index and class of element `name`.
    fn find(&self, name: &str) -> Result<(usize, ClassInfo), ControlError> {
        let elements = self.elements();
        if let Some(i) = elements.iter().position(|(n, _)| n == name) {
            return Ok((i, elements[i].1));
        }
        let names: Vec<&str> = elements.iter().map(|(n, _)| n.as_str()).collect();
        let hint = match names.iter().find(|n| strsim::levenshtein(n, name) <= 2) {
            Some(n) => format!(" (did you mean `{n}`?)"),
            None => format!(" (elements: {})", names.join(", ")),
        };
        Err(ControlError::NoElement {
            name: name.into(),
            hint,
        })
    }

    /// The handler `handler` of kind `kind` of element `element`.
    fn handler(
        &self,
        element: &str,
        handler: &str,
        kind: HandlerKind,
    ) -> Result<(usize, HandlerSpec), ControlError> {
        let (idx, class) = self.find(element)?;
        let of_kind = || class.handlers.iter().filter(|h| h.kind == kind);
        match of_kind().find(|h| h.name == handler) {
            Some(h) => Ok((idx, *h)),
            None => Err(ControlError::NoHandler {
                element: element.into(),
                class: class.name.into(),
                kind: match kind {
                    HandlerKind::Read => "read",
                    HandlerKind::Write => "write",
                },
                handler: handler.into(),
                available: {
                    let names: Vec<&str> = of_kind().map(|h| h.name).collect();
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                },
            }),
        }
    }

    /// Calls read handler `handler` of `element` on every worker's replica
    /// (worker 0's only for [`Combine::Once`](crate::element::Combine))
    /// and combines the answers.
    pub fn read(&self, element: &str, handler: &str) -> Result<Answer, ControlError> {
        let (idx, spec) = self.handler(element, handler, HandlerKind::Read)?;
        let (name, at) = (handler.to_string(), Self::at(element, idx));
        let answers = self.on_workers(spec, move |a| {
            let cx = HandlerCx::new(a.now_ns, a.worker.index());
            a.graph.element(at(a.graph)?).read(&name, &cx)
        })?;
        self.combined(element, spec, answers)
    }

    /// Calls write handler `handler` of `element` with `arg` on every
    /// worker's replica (worker 0's only for
    /// [`Combine::Once`](crate::element::Combine)) and combines the answers.
    pub fn write(&self, element: &str, handler: &str, arg: &str) -> Result<Answer, ControlError> {
        let (idx, spec) = self.handler(element, handler, HandlerKind::Write)?;
        let (name, arg) = (handler.to_string(), arg.to_string());
        let at = Self::at(element, idx);
        let answers = self.on_workers(spec, move |a| {
            let cx = HandlerCx::new(a.now_ns, a.worker.index());
            a.graph.element_mut(at(a.graph)?).write(&name, &arg, &cx)
        })?;
        self.combined(element, spec, answers)
    }

    /// Runs handler job `f` on the workers `spec` asks for: every worker,
    /// or worker 0 alone for a handler of shared state (`Combine::Once`).
    /// Two clients' `Once` writes need no lock here to stay apart: both
    /// run as jobs of worker 0, which runs its jobs one after the other.
    fn on_workers<R: Send + 'static>(
        &self,
        spec: HandlerSpec,
        f: impl Fn(&mut WorkerAccess<'_>) -> R + Send + Sync + 'static,
    ) -> Result<Vec<R>, ControlError> {
        let n = match spec.combine {
            crate::element::Combine::Once => 1,
            _ => self.workers(),
        };
        let answers = self.send_first(n, f)?;
        self.gather_first(n, answers)
    }

    /// Where element `element` (index `idx` when the request was made) is
    /// in a worker's graph when its job runs: a reload in between may have
    /// moved or removed it.
    pub(super) fn at(
        element: &str,
        idx: usize,
    ) -> impl Fn(&Graph) -> Result<usize, String> + Send + Sync {
        let element = element.to_string();
        move |g: &Graph| {
            if g.names().nth(idx) == Some(element.as_str()) {
                return Ok(idx);
            }
            let found = g.names().position(|n| n == element);
            found.ok_or_else(|| format!("no element `{element}` (the config was reloaded)"))
        }
    }

    /// Every read handler of `element`, by name.
    pub fn show(&self, element: &str) -> Result<Vec<(&'static str, Answer)>, ControlError> {
        let (_, class) = self.find(element)?;
        class
            .handlers
            .iter()
            .filter(|h| h.kind == HandlerKind::Read)
            .map(|h| Ok((h.name, self.read(element, h.name)?)))
            .collect()
    }

    fn combined(
        &self,
        element: &str,
        spec: HandlerSpec,
        answers: Vec<Result<Answer, String>>,
    ) -> Result<Answer, ControlError> {
        let mut ok = Vec::with_capacity(answers.len());
        let mut errors = Vec::new();
        for (w, a) in answers.into_iter().enumerate() {
            match a {
                Ok(v) => ok.push(v),
                Err(e) => errors.push((w, e)),
            }
        }
        if let Some((_, first)) = errors.first() {
            let message = if errors.iter().all(|(_, e)| e == first) {
                first.clone()
            } else {
                let by_worker: Vec<String> = errors
                    .iter()
                    .map(|(w, e)| format!("worker {w}: {e}"))
                    .collect();
                by_worker.join("; ")
            };
            return Err(ControlError::Handler {
                element: element.into(),
                handler: spec.name.into(),
                message,
            });
        }
        Ok(handler::combine(spec.combine, ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::{Combine, Configured, Context, Element, HandlerResult, Inputs, Output};
    use crate::graph::{GraphSpec, NodeSpec, Target};
    use crate::packet::{Batch, Pool};
    use crate::port::{OpenPort, PortError, QueueStats, Recv, RxQueue};
    use crate::runtime::{start, RunOptions};
    use serde_json::json;

    /// A queue that never has anything and never ends.
    struct Quiet;

    impl RxQueue for Quiet {
        fn recv(&mut self, _: &mut Pool, _: &mut Batch, _: usize) -> Result<Recv, PortError> {
            Ok(Recv::Got(0))
        }

        fn stats(&self) -> QueueStats {
            QueueStats::default()
        }
    }

    /// Keeps a number per replica: `value` reads it, `add N` adds to it.
    struct Tally(u64);

    impl Element for Tally {
        fn push(&mut self, cx: &mut Context<'_>, _: usize, batch: &mut Batch, _: &mut Output) {
            cx.pool().free_batch(batch);
        }

        fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
            match name {
                "value" => Ok(json!(self.0)),
                "rows" => Ok(json!([{ "v": self.0, "w": cx.worker() }])),
                _ => Err(handler::no_such_handler(name)),
            }
        }

        fn write(&mut self, name: &str, arg: &str, _: &HandlerCx) -> HandlerResult {
            match name {
                "add" | "add_once" => {
                    let n: u64 = arg
                        .parse()
                        .map_err(|_| format!("`{arg}` is not a number"))?;
                    self.0 += n;
                    Ok(json!(self.0))
                }
                _ => Err(handler::no_such_handler(name)),
            }
        }
    }

    const HANDLERS: &[HandlerSpec] = &[
        HandlerSpec {
            name: "value",
            kind: HandlerKind::Read,
            combine: Combine::Sum,
            arg: "",
            doc: "the number",
        },
        HandlerSpec {
            name: "rows",
            kind: HandlerKind::Read,
            combine: Combine::Rows,
            arg: "",
            doc: "one row per worker",
        },
        HandlerSpec {
            name: "add",
            kind: HandlerKind::Write,
            combine: Combine::Same,
            arg: "N",
            doc: "adds N",
        },
        HandlerSpec {
            name: "add_once",
            kind: HandlerKind::Write,
            combine: Combine::Once,
            arg: "N",
            doc: "adds N on worker 0's replica",
        },
    ];

    fn tally_run(workers: usize) -> crate::runtime::Running {
        let spec = GraphSpec {
            nodes: vec![NodeSpec {
                name: "tally".into(),
                class: ClassInfo {
                    handlers: HANDLERS,
                    ..ClassInfo::bare("Tally")
                },
                configured: Configured::new(Inputs::Fixed(1), 0, |w| Box::new(Tally(w as u64))),
                outputs: vec![],
            }],
            ports: vec!["in".into()],
            sources: vec![Some(Target::Element { node: 0, input: 0 })],
        };
        let port = OpenPort {
            rx: (0..workers)
                .map(|_| Box::new(Quiet) as Box<dyn RxQueue>)
                .collect(),
            tx: vec![],
            driver: "mem".into(),
            driver_stats: None,
            max_frame: crate::packet::DEFAULT_MAX_FRAME,
        };
        let opts = RunOptions {
            workers,
            pool: 64,
            ..RunOptions::default()
        };
        start(&spec, vec![port], &opts).expect("starts")
    }

    #[test]
    fn handlers_run_on_every_worker_and_their_answers_combine() {
        let running = tally_run(2);
        let c = running.controller();
        // Replica w starts at w: 0 + 1.
        assert_eq!(c.read("tally", "value").unwrap(), json!(1));
        assert_eq!(
            c.read("tally", "rows").unwrap(),
            json!([{"v": 0, "w": 0, "worker": 0}, {"v": 1, "w": 1, "worker": 1}])
        );
        // Each replica adds; the answers differ, so they come by worker.
        assert_eq!(
            c.write("tally", "add", "10").unwrap(),
            json!({"worker 0": 10, "worker 1": 11})
        );
        assert_eq!(c.read("tally", "value").unwrap(), json!(21));
        // A Once handler runs on worker 0's replica alone: one answer.
        assert_eq!(c.write("tally", "add_once", "5").unwrap(), json!(15));
        assert_eq!(c.read("tally", "value").unwrap(), json!(26));
        let shown = c.show("tally").unwrap();
        assert_eq!(
            shown.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["value", "rows"]
        );
        // Errors name what was wrong.
        let e = c.write("tally", "add", "x").unwrap_err().to_string();
        assert_eq!(e, "tally.add: `x` is not a number");
        let e = c.read("taly", "value").unwrap_err().to_string();
        assert!(e.contains("did you mean `tally`"), "{e}");
        let e = c.read("tally", "add").unwrap_err().to_string();
        assert!(
            e.contains("no read handler `add`; it has: value, rows"),
            "{e}"
        );
        c.stop();
        let report = running.wait(|_| {}).expect("stops cleanly");
        assert_eq!(report.elements[0].name, "tally");
        // Once the run has ended, requests say so.
        assert!(matches!(
            c.read("tally", "value"),
            Err(ControlError::NotRunning(_))
        ));
    }
}
