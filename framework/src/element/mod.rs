//! The element API: what an element is, what it sees while running, and how
//! its class declares itself to the registry.
//!
//! Built-in elements and third-party ones use exactly this API (also
//! re-exported in [`crate::prelude`]); nothing internal is needed to write
//! one. The pieces:
//!
//! - [`Element`]: the trait a packet-processing type implements. `push` gets
//!   a batch that arrived on one input; `stats` reports its own counters.
//! - [`Context`]: what a running element may use besides its packets: the
//!   time of the burst ([`Context::now`]), a request for the element's
//!   timer ([`Context::wake_at`], see [`Element::timer`]), the worker's index
//!   ([`Context::worker`]), the worker's packet pool, and whether the batch
//!   is being traced ([`Context::tracing`], [`Context::trace_note`]: say
//!   why a traced packet went where it went).
//! - [`Packet`]: the packet view: frame bytes ([`Packet::data`],
//!   [`Packet::data_mut`]), the header parse computed once and cached
//!   ([`Packet::headers`]), receive time ([`Packet::timestamp`]), input
//!   port and four annotation words ([`Packet::anno`]).
//! - [`Output`]: where packets go: [`Output::push`] to a numbered output,
//!   [`Output::drop`] with a [`DropReason`] the class declared (with
//!   [`drop_reasons!`](crate::drop_reasons), which binds each reason's
//!   constant to its name).
//! - [`ParamSpec`], [`ParamType`], [`Need`]: the declaration of a class's
//!   parameters, checked by the config loader before the class's
//!   `configure` runs; [`Params`] gives the checked values, and
//!   [`ParamError`] reports a wrong one with file, line and column.
//! - [`ClassInfo`] and [`ElementClass`]: a class's documentation (the manual
//!   `hpio-nf elements NAME` prints), its declared port counts
//!   ([`PortCount`]), drop reasons and counters
//!   ([`counters!`](crate::counters)), and its `configure`, which returns a
//!   [`Configured`]: port counts (checked against the declared ones) and
//!   the per-worker replicas.
//! - [`Choice`]: a choice parameter read as an enum
//!   ([`Params::choice`], declared with [`choice!`](crate::choice)).
//! - [`Registry`]: classes by name; a crate of elements exposes
//!   `pub fn register(r: &mut Registry)`.
//!
//! The runtime counts packets in, out and dropped (by reason) for every
//! element; [`Element::stats`] adds the element's own counters. A panic in
//! an element is caught at its boundary (see [`Configured`]).
//!
//! # A complete element
//!
//! ```
//! use hpio_nf::prelude::*;
//!
//! /// Passes frames of at least `min` bytes to output 0, drops the rest.
//! #[derive(Clone)]
//! struct MinLen {
//!     min: usize,
//!     passed: u64,
//! }
//!
//! hpio_nf::drop_reasons! {
//!     DROP_REASONS = [
//!         /// Shorter than `min`.
//!         TOO_SHORT = "too-short",
//!     ]
//! }
//!
//! hpio_nf::counters! {
//!     COUNTERS = [
//!         PASSED = "passed": "Frames passed",
//!     ]
//! }
//!
//! impl Element for MinLen {
//!     fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
//!         for pkt in batch.drain(..) {
//!             if pkt.len() >= self.min {
//!                 self.passed += 1;
//!                 out.push(0, pkt);
//!             } else {
//!                 out.drop(pkt, TOO_SHORT);
//!             }
//!         }
//!     }
//!
//!     fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
//!         report(PASSED, self.passed);
//!     }
//! }
//!
//! fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
//!     let min = p.usize("min")?;
//!     Ok(Configured::cloning(Inputs::Fixed(1), 1, MinLen { min, passed: 0 }))
//! }
//!
//! pub const CLASS: ElementClass = ElementClass {
//!     info: ClassInfo {
//!         name: "MinLen",
//!         summary: "Drops frames shorter than a minimum",
//!         description: "Passes frames of at least `min` bytes.",
//!         inputs: PortCount::Fixed(1),
//!         outputs: PortCount::Fixed(1),
//!         params: &[ParamSpec {
//!             name: "min",
//!             ty: ParamType::U16,
//!             need: Need::Default("60"),
//!             doc: "Shortest frame passed, in bytes",
//!         }],
//!         drop_reasons: DROP_REASONS,
//!         counters: COUNTERS,
//!         handlers: &[],
//!         example: "[elements.min]\nclass = \"MinLen\"\nmin = 64",
//!         see_also: &[],
//!     },
//!     configure,
//! };
//!
//! // Register it, configure it from TOML as a config would, and run a batch.
//! let mut registry = Registry::builtin();
//! registry.register(CLASS);
//! let configured = hpio_nf::config::configure_element(&registry, &[], "MinLen", CLASS.info.example)
//!     .expect("the example is valid");
//! let mut element = configured.instantiate(0);
//! let mut pool = Pool::new(8);
//! let mut cx = Context::new(&mut pool, 0, 0);
//! let mut out = Output::new(configured.outputs, CLASS.info.drop_reasons.len());
//! let mut batch: Batch = [64, 20, 1500].iter().map(|&n| Packet::from_bytes(&vec![0; n])).collect();
//! element.push(&mut cx, 0, &mut batch, &mut out);
//! assert_eq!(out.batch(0).len(), 2);
//! assert_eq!(out.drops(TOO_SHORT), 1);
//! ```

#[doc(hidden)]
pub mod declare;
pub mod grace;
pub(crate) mod guard;
pub mod handler;
mod output;
mod registry;

pub use crate::params::{mask_addr, parse_duration, parse_mac, parse_prefix};
pub use crate::params::{Need, ParamError, ParamSpec, ParamType, Params, Value};
pub use declare::Choice;
pub use grace::{Grace, GraceToken, Participant};
pub use handler::{Answer, Combine, HandlerCx, HandlerKind, HandlerResult, HandlerSpec};
pub use output::{DropReason, Output, RUNTIME_DROP_REASONS};
pub use registry::{ClassInfo, ConfigCx, Configured, ElementClass, Inputs, PortCount, Registry};

pub(crate) use guard::ConfigureError;

use crate::packet::{Batch, Packet, Pool};
use std::sync::Arc;

/// A packet-processing element.
///
/// The runtime hands an element a whole batch that arrived on one input; the
/// element moves each packet to one of its numbered outputs with
/// [`Output::push`] or drops it with a reason with [`Output::drop`]. Packets
/// left in the batch when `push` returns are dropped and counted as
/// `unhandled`. Each worker runs its own replica of every element, so an
/// element needs no locks.
///
/// `push` runs on the data path: it should not allocate, lock or make a
/// system call per packet, and should read each packet's headers through
/// [`Packet::headers`] (parsed once, shared by every element). A panic in
/// `push` is caught at the element's boundary; the batch is then dropped
/// and counted as `panic`. See the [module documentation](self) for a
/// complete element.
pub trait Element: Send {
    /// Processes `batch`, which arrived on input `input`.
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output);

    /// Reports element-specific counters (the runtime adds packets in, out and
    /// dropped by reason on its own), each under a name the class lists in
    /// [`ClassInfo::counters`]. Called a few times per second from the
    /// worker's thread, not per packet; the report sums them over workers.
    fn stats(&self, _report: &mut dyn FnMut(&str, u64)) {}

    /// Called once when the run ends, after the last `push` (the context's
    /// [`Context::now`] is the time of the last burst): an element that holds
    /// packets back (a fragment or reordering buffer) outputs or drops them
    /// here, with a reason, so that none is lost without a count. Packets
    /// sent to an output go through the rest of the graph and are
    /// transmitted before the ports close. The default does nothing.
    fn finish(&mut self, _cx: &mut Context<'_>, _out: &mut Output) {}

    /// The timer hook: time-driven work (retries, timeouts, ageing) done
    /// on time even when no packet arrives.
    ///
    /// Called only for replicas of a class whose `configure` asked for it
    /// ([`Configured::with_timer`]): the graph keeps a list of those, so
    /// the others cost nothing. The runtime calls `timer` on every listed
    /// element of the worker once when the run starts (and after a
    /// reload), then whenever the earliest time any of them asked for with
    /// [`Context::wake_at`] has come: it may be called before the time this
    /// element asked for (another one's was due), so check what is due.
    /// Each call forgets the earlier requests: ask again for the next one.
    /// `cx.now()` is the worker's clock (packet time under `clock =
    /// "packet"`, which advances only with packets). Packets sent to `out`
    /// go through the rest of the graph and are transmitted with the
    /// worker's next flush; drops are counted as from `push`. A worker that
    /// sleeps when idle wakes up for the earliest request. The default
    /// does nothing.
    fn timer(&mut self, _cx: &mut Context<'_>, _out: &mut Output) {}

    /// Answers read handler `name` (one the class lists in
    /// [`ClassInfo::handlers`]). Called on the worker's thread between
    /// bursts, on every worker's replica (worker 0's alone for
    /// [`Combine::Once`]); the answers are combined as the handler's
    /// [`Combine`] says.
    fn read(&self, name: &str, _cx: &HandlerCx) -> HandlerResult {
        Err(handler::no_such_handler(name))
    }

    /// Runs write handler `name` with argument `arg`, on every worker's
    /// replica in turn (each must come to the same decision: an argument
    /// one replica refuses, every replica refuses), or on worker 0's alone
    /// for a [`Combine::Once`] handler of state the replicas share.
    fn write(&mut self, name: &str, _arg: &str, _cx: &HandlerCx) -> HandlerResult {
        Err(handler::no_such_handler(name))
    }

    /// Hot reload: gives up this replica's state (tables, held packets,
    /// totals) to the replica that replaces it.
    ///
    /// A reload ([`Controller::reload`](crate::runtime::Controller::reload),
    /// `hpio-nf ctl reload`, SIGHUP) builds every element of the new config
    /// afresh. On each worker, between two bursts, an element whose name
    /// and class are the same in both configs is asked for its state here,
    /// and its successor (on the same worker, configured from the new
    /// config) gets it in [`Element::give_state`]. The runtime's own counts
    /// for the element (packets in and out, drops by reason) carry over by
    /// themselves; the element's own counters ([`Element::stats`]) carry
    /// over only if they are part of the state. An element that is removed,
    /// or whose class changed, is not asked: it is finished
    /// ([`Element::finish`]) as at the end of a run.
    ///
    /// The state is any `Send` value; the successor downcasts it
    /// (`state.downcast::<MyState>()`), so the class's own type is the
    /// usual choice. Move the state out (`std::mem::take`, `mem::replace`
    /// with an empty value): the replica is dropped afterwards. Called
    /// between bursts, not on the data path: it may allocate. `None` (the
    /// default): nothing to hand over; packets the replica still holds are
    /// then dropped with it, uncounted, so an element that holds packets
    /// should hand them over.
    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        None
    }

    /// Hot reload: takes over what the replaced replica gave up in
    /// [`Element::take_state`].
    ///
    /// The new replica keeps its new configuration (a changed rule set
    /// applies from the next packet) and merges the old state into it,
    /// adapting what the new parameters change (a smaller table keeps what
    /// fits; entries for a port the new config no longer has go). Packets
    /// in the state belong to this worker's pool: keep them, or return
    /// them with [`Context::free`]. `cx.now()` is the worker's clock. A
    /// state of another type (the downcast fails) should be ignored. The
    /// default drops the state. A panic here is caught and logged; the
    /// replica then starts empty.
    fn give_state(&mut self, _state: Box<dyn std::any::Any + Send>, _cx: &mut Context<'_>) {}
}

/// A boxed element is an element (factories return `Box<dyn Element>`).
impl<E: Element + ?Sized> Element for Box<E> {
    #[inline]
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        (**self).push(cx, input, batch, out)
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        (**self).stats(report)
    }

    fn finish(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        (**self).finish(cx, out)
    }

    fn timer(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        (**self).timer(cx, out)
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        (**self).read(name, cx)
    }

    fn write(&mut self, name: &str, arg: &str, cx: &HandlerCx) -> HandlerResult {
        (**self).write(name, arg, cx)
    }

    fn take_state(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        (**self).take_state()
    }

    fn give_state(&mut self, state: Box<dyn std::any::Any + Send>, cx: &mut Context<'_>) {
        (**self).give_state(state, cx)
    }
}

/// What a running element may use besides its packets: the worker's pool,
/// the current time and the worker's identity.
pub struct Context<'a> {
    pub(crate) pool: &'a mut Pool,
    pub(crate) now_ns: u64,
    pub(crate) worker: usize,
    /// While the batch being pushed holds a traced packet (the graph sets
    /// it): the notes elements attach to it. One word, so that a context
    /// costs nothing more to make when nothing is traced.
    #[allow(clippy::box_collection)] // Boxed to be one word (null when off), not three.
    pub(crate) notes: Option<Box<Vec<String>>>,
    /// The earliest time an element asked for its timer
    /// ([`Context::wake_at`]), `u64::MAX` when none did.
    pub(crate) wake_at: u64,
    /// The worker's slot in its grace domain, online and between two
    /// quiescent points while this context lives (set by the runtime's
    /// worker only, see [`Context::in_section`]); `None` elsewhere.
    pub(crate) grace: Option<&'a Participant>,
}

impl<'a> Context<'a> {
    /// A context over `pool` (the runtime makes these; tests may too).
    pub fn new(pool: &'a mut Pool, now_ns: u64, worker: usize) -> Context<'a> {
        Context {
            pool,
            now_ns,
            worker,
            notes: None,
            wake_at: u64::MAX,
            grace: None,
        }
    }

    /// The context of a worker's burst or timer run: `p` is the worker's
    /// grace slot, online, and the worker passes no quiescent point while
    /// the context lives (the runtime only).
    pub(crate) fn in_burst(mut self, p: &'a Participant) -> Context<'a> {
        self.grace = Some(p);
        self
    }

    /// Whether this context is a read-side section of `domain`: the pushing
    /// thread is a worker registered in it, online, which passes no
    /// quiescent point until the push returns. A reader of shared state
    /// that `domain`'s grace periods protect may then read it without a
    /// lock; otherwise (a test driving an element, a context made outside
    /// the runtime) it must exclude the writer.
    #[inline]
    pub(crate) fn in_section(&self, domain: &Arc<Grace>) -> bool {
        self.grace.is_some_and(|p| p.is_of(domain))
    }

    /// Asks for the element's [`Element::timer`] to be called once the
    /// worker's clock ([`Context::now`]) reaches `at_ns` (from `push`,
    /// `timer` or `give_state`). Effective for classes configured
    /// [`Configured::with_timer`]; the earliest request of the worker's
    /// elements wins, and the timers then run (each asks again).
    #[inline]
    pub fn wake_at(&mut self, at_ns: u64) {
        self.wake_at = self.wake_at.min(at_ns);
    }

    /// The earliest time asked for with [`Context::wake_at`] on this
    /// context (`None`: no request), for tests that drive an element.
    pub fn wake_request(&self) -> Option<u64> {
        (self.wake_at != u64::MAX).then_some(self.wake_at)
    }

    /// Whether the batch being pushed is followed by a packet trace
    /// (`hpio-nf ctl trace`, `hpio-nf run --trace`). Check it once per
    /// batch, not per packet: a traced packet comes alone in its batch
    /// (with, at most, packets an element upstream released with it), so an
    /// element can take a slower path that explains its decision with
    /// [`Context::trace_note`] and cost nothing when no trace runs.
    #[inline]
    pub fn tracing(&self) -> bool {
        self.notes.is_some()
    }

    /// Attaches a note (the rule that decided, say) to the traced packet's
    /// current hop, this element. `note` is called only while tracing.
    pub fn trace_note(&mut self, note: impl FnOnce() -> String) {
        if let Some(notes) = &mut self.notes {
            notes.push(note());
        }
    }

    /// Time of the current burst in nanoseconds, read once per burst: with
    /// `[runtime] clock = "system"` (the default) monotonic time since the
    /// worker started, with `clock = "packet"` the receive timestamp of the
    /// latest packet (replays and golden tests are then deterministic).
    /// Only differences between readings are meaningful; the clock may stand
    /// still between bursts and, on packet time, may even go back.
    #[inline]
    pub fn now(&self) -> u64 {
        self.now_ns
    }

    /// Index of the worker running this replica (`0..workers`; the factory
    /// given to [`Configured::new`] was called with the same index).
    #[inline]
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// A fresh packet from the worker's pool, or `None` when all are in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        self.pool.alloc()
    }

    /// A copy of `pkt` in a fresh slot, or `None` when the pool is empty
    /// (or, for a packet made outside the pool, when its frame does not fit a slot).
    #[inline]
    pub fn clone_packet(&mut self, pkt: &Packet) -> Option<Packet> {
        let mut p = self.pool.alloc()?;
        if p.copy_from(pkt).is_err() {
            // A packet from outside the pool, larger than its slots.
            self.pool.free(p);
            return None;
        }
        Some(p)
    }

    /// Returns a packet to the pool without counting it as a drop
    /// (for elements that consume packets, such as a sink).
    #[inline]
    pub fn free(&mut self, pkt: Packet) {
        self.pool.free(pkt)
    }

    /// The worker's pool.
    pub fn pool(&mut self) -> &mut Pool {
        self.pool
    }
}
