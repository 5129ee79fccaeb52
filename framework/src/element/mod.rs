//! The element API: what an element is, what it sees while running, and how
//! its class declares itself to the registry.
//!
//! Built-in elements and third-party ones use exactly this API.

mod output;
mod params;
mod registry;

pub use output::{DropReason, Output};
pub use params::{mask_addr, parse_duration, parse_mac, parse_prefix};
pub use params::{Need, ParamError, ParamSpec, ParamType, Params, Value};
pub use registry::{ClassInfo, ConfigCx, Configured, ElementClass, Inputs, Registry};

use crate::packet::{Batch, Packet, Pool};

/// A packet-processing element.
///
/// The runtime hands an element a whole batch that arrived on one input; the
/// element moves each packet to one of its numbered outputs with
/// [`Output::push`] or drops it with a reason with [`Output::drop`]. Packets
/// left in the batch when `push` returns are dropped and counted as
/// `unhandled`. Each worker runs its own replica of every element, so an
/// element needs no locks.
pub trait Element: Send {
    /// Processes `batch`, which arrived on input `input`.
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output);

    /// Reports element-specific counters (the runtime adds packets in, out and
    /// dropped by reason on its own). Called a few times per second, not per packet.
    fn stats(&self, _report: &mut dyn FnMut(&str, u64)) {}
}

/// What a running element may use besides its packets: the worker's pool,
/// the current time and the worker's identity.
pub struct Context<'a> {
    pub(crate) pool: &'a mut Pool,
    pub(crate) now_ns: u64,
    pub(crate) worker: usize,
}

impl<'a> Context<'a> {
    /// A context over `pool` (the runtime makes these; tests may too).
    pub fn new(pool: &'a mut Pool, now_ns: u64, worker: usize) -> Context<'a> {
        Context {
            pool,
            now_ns,
            worker,
        }
    }

    /// Time of the current burst in nanoseconds: monotonic time for live
    /// runs, the packet clock when the runtime replays a capture.
    #[inline]
    pub fn now(&self) -> u64 {
        self.now_ns
    }

    /// Index of the worker running this replica.
    #[inline]
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// A fresh packet from the worker's pool, or `None` when all are in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        self.pool.alloc()
    }

    /// A copy of `pkt` in a fresh slot, or `None` when the pool is empty.
    #[inline]
    pub fn clone_packet(&mut self, pkt: &Packet) -> Option<Packet> {
        let mut p = self.pool.alloc()?;
        p.copy_from(pkt);
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
