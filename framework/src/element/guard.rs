//! Panic isolation at the element boundary.
//!
//! Every replica the runtime runs comes from [`super::Configured`], which
//! wraps it in a [`Guarded`]: a panic in the element's `push` is caught
//! there, reported through [`Output`] and never unwinds into the worker.
//! The graph then drops the batch (counted as `panic`) and the runtime
//! applies `[runtime] on_panic`.
//!
//! Why the catch is here and not around the call in the graph: a dynamic
//! plugin carries its own copy of the standard library, and a panic can
//! only be caught by the copy that raised it (any other copy aborts the
//! process with "Rust cannot catch foreign exceptions"). The wrapper is
//! built by the code that builds the element, so for a plugin's element it
//! is the plugin's copy of this module, with the plugin's `catch_unwind`.
//! The same holds for [`configure_guarded`], which a class's registry entry
//! records when the class is registered.
//!
//! Panics inside a guard do not print the usual "thread panicked" message
//! (the runtime logs one error per element instead): a panic hook, chained
//! to the one installed before it, records the message and location for
//! the guard while one is active on the thread.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use super::{
    ConfigCx, Configured, Context, Element, HandlerCx, HandlerResult, Output, ParamError, Params,
};
use crate::packet::Batch;

thread_local! {
    /// Whether a guard is active on this thread (the hook stays quiet then).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The message of the last panic the hook saw inside a guard.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per copy of this crate) the panic hook that keeps panics
/// inside guards quiet and records their message and location.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.try_with(Cell::get).unwrap_or(false) {
                return previous(info);
            }
            let mut msg = payload_text(info.payload());
            if let Some(at) = info.location() {
                msg = format!("{msg} (at {at})");
            }
            // As the default hook does, only when RUST_BACKTRACE asks for it.
            let bt = std::backtrace::Backtrace::capture();
            if bt.status() == std::backtrace::BacktraceStatus::Captured {
                eprintln!("panic caught at an element boundary: {msg}\nstack backtrace:\n{bt}");
            }
            let _ = LAST_PANIC.try_with(|l| l.replace(Some(msg)));
        }));
    });
}

/// The text of a panic payload.
pub(crate) fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

/// Runs `f`, catching a panic; the error is the panic's message (with its
/// location when the hook is installed).
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let outer = GUARDED.replace(true);
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.set(outer);
    r.map_err(|payload| LAST_PANIC.take().unwrap_or_else(|| payload_text(&*payload)))
}

/// An element replica whose `push` and `stats` cannot unwind into the caller.
///
/// Cache-line aligned: the replicas of all workers are allocated one after
/// another, and an element writes its state (counters) every burst; two
/// workers' replicas must not share a line.
#[repr(align(64))]
pub(crate) struct Guarded<E> {
    inner: E,
    /// `stats` panicked once: it is not called again.
    stats_failed: Cell<bool>,
}

impl<E: Element> Guarded<E> {
    pub(crate) fn new(inner: E) -> Guarded<E> {
        Guarded {
            inner,
            stats_failed: Cell::new(false),
        }
    }
}

impl<E: Element> Element for Guarded<E> {
    #[inline]
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        let inner = &mut self.inner;
        if let Err(msg) = catch(|| inner.push(cx, input, batch, out)) {
            out.panic = Some(msg);
        }
    }

    fn finish(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        let inner = &mut self.inner;
        if let Err(msg) = catch(|| inner.finish(cx, out)) {
            out.panic = Some(msg);
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        let inner = &mut self.inner;
        if let Err(msg) = catch(|| inner.timer(cx, out)) {
            out.panic = Some(msg);
        }
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        catch(|| self.inner.read(name, cx))
            .unwrap_or_else(|msg| Err(format!("the handler panicked: {msg}")))
    }

    fn write(&mut self, name: &str, arg: &str, cx: &HandlerCx) -> HandlerResult {
        let inner = &mut self.inner;
        catch(|| inner.write(name, arg, cx))
            .unwrap_or_else(|msg| Err(format!("the handler panicked: {msg}")))
    }

    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        let inner = &mut self.inner;
        catch(|| inner.take_state()).unwrap_or_else(|msg| {
            log::error!("take_state panicked: {msg}; the state is lost");
            None
        })
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, cx: &mut Context<'_>) {
        let inner = &mut self.inner;
        if let Err(msg) = catch(|| inner.give_state(state, cx)) {
            log::error!("give_state panicked: {msg}; the state is lost");
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        if self.stats_failed.get() || catch(|| self.inner.stats(report)).is_err() {
            self.stats_failed.set(true);
            report("stats-panicked", 1);
        }
    }
}

/// A replica whose construction panicked: every batch it gets is reported
/// as a panic with the construction's message.
struct Broken {
    message: String,
}

impl Element for Broken {
    fn push(&mut self, _: &mut Context<'_>, _: usize, _: &mut Batch, out: &mut Output) {
        out.panic = Some(self.message.clone());
    }
}

/// Builds a guarded replica for worker `worker` with `make`.
pub(crate) fn replica<E: Element + 'static>(
    worker: usize,
    make: impl FnOnce() -> E,
) -> Box<dyn Element> {
    match catch(make) {
        Ok(e) => Box::new(Guarded::new(e)),
        Err(msg) => Box::new(Broken {
            message: format!("building the replica for worker {worker} panicked: {msg}"),
        }),
    }
}

/// Why configuring an element failed.
#[derive(Debug)]
pub(crate) enum ConfigureError {
    /// The class rejected a parameter.
    Param(ParamError),
    /// The class's `configure` panicked, with this message.
    Panicked(String),
}

/// The signature of [`super::ElementClass::configure`].
pub(crate) type ConfigureFn = fn(&Params, &ConfigCx<'_>) -> Result<Configured, ParamError>;

/// Runs a class's `configure`, catching a panic. A registry entry records
/// this function (as compiled into the crate that registered the class), so
/// the catch happens in the standard library that raised the panic.
pub(crate) fn configure_guarded(
    configure: ConfigureFn,
    params: &Params,
    cx: &ConfigCx<'_>,
) -> Result<Configured, ConfigureError> {
    install_hook();
    match catch(|| configure(params, cx)) {
        Ok(r) => r.map_err(ConfigureError::Param),
        Err(msg) => Err(ConfigureError::Panicked(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Packet, Pool};

    /// Panics on a frame whose first byte is 0xff; forwards the rest.
    struct Touchy;

    impl Element for Touchy {
        fn push(&mut self, _: &mut Context<'_>, _: usize, batch: &mut Batch, out: &mut Output) {
            for p in batch.drain(..) {
                assert!(p.data()[0] != 0xff, "marked packet");
                out.push(0, p);
            }
        }

        fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
            report("before", 1);
            panic!("stats broke");
        }
    }

    fn push(e: &mut dyn Element, frames: &[u8]) -> Output {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(1, 0);
        let mut b: Batch = frames
            .iter()
            .map(|&f| Packet::from_bytes(&[f; 20]))
            .collect();
        e.push(&mut cx, 0, &mut b, &mut out);
        out
    }

    #[test]
    fn a_panic_in_push_is_caught_with_its_message_and_location() {
        install_hook();
        let mut g = Guarded::new(Touchy);
        let out = push(&mut g, &[1, 2]);
        assert_eq!((out.panicked(), out.batch(0).len()), (None, 2));
        let out = push(&mut g, &[1, 0xff, 2]);
        let msg = out.panicked().expect("caught");
        assert!(msg.starts_with("marked packet (at "), "{msg}");
        assert!(msg.contains("guard.rs:"), "{msg}");
        assert_eq!(out.batch(0).len(), 1, "the packet before the panic");
        assert!(!GUARDED.get(), "the guard flag is reset");
    }

    #[test]
    fn a_panic_in_stats_is_reported_once_and_not_retried() {
        let g = Guarded::new(Touchy);
        for _ in 0..2 {
            let mut seen = Vec::new();
            g.stats(&mut |k, v| seen.push((k.to_string(), v)));
            assert_eq!(seen.last().unwrap(), &("stats-panicked".to_string(), 1));
        }
    }

    #[test]
    fn a_panicking_constructor_gives_a_replica_that_reports_it() {
        let mut e = replica(3, || -> Touchy { panic!("no memory for the table") });
        let out = push(&mut *e, &[1]);
        let msg = out.panicked().unwrap();
        assert!(
            msg.starts_with("building the replica for worker 3 panicked: no memory for the table"),
            "{msg}"
        );
    }

    #[test]
    fn configure_panics_become_errors() {
        fn bad(_: &Params, _: &ConfigCx<'_>) -> Result<Configured, ParamError> {
            let v: Vec<u8> = Vec::new();
            let _ = v[3];
            unreachable!()
        }
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        match configure_guarded(bad, &Params::new(), &cx) {
            Err(ConfigureError::Panicked(m)) => assert!(m.contains("index out of bounds"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
