//! Ports: packet sources and sinks behind one set of traits, so that every
//! driver (pcap files, the in-memory generator, AF_PACKET, AF_XDP, hpio) plugs into
//! the runtime the same way.
//!
//! A driver is declared by a [`PortClass`] (its parameters, checked with the
//! config), configured into a [`PortSpec`] without touching the system, and
//! opened into per-queue handles: receive queues ([`RxQueue`]), spread over
//! the workers, and one transmit handle ([`TxQueue`]) per worker.

pub mod af_packet;
pub mod af_xdp;
pub mod auto;
mod burst;
pub mod generator;
pub mod hpio;
pub mod pcap;

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::BorrowedFd;

use crate::packet::{Batch, Packet, Pool};
use crate::params::{ParamError, ParamSpec, Params};

/// Errors from opening or using a port.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A system call or file operation failed.
    // The OS error is part of the one-line message, not a chained source,
    // so that it is printed once.
    #[error("port `{port}`: {what}: {error}")]
    Io {
        /// Port name.
        port: String,
        /// What was being done.
        what: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// Anything else, with a message saying what and how to fix it.
    #[error("port `{port}`: {message}")]
    Other {
        /// Port name.
        port: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl PortError {
    /// An I/O error of port `port` while doing `what`.
    pub fn io(port: &str, what: impl Into<String>, source: std::io::Error) -> PortError {
        PortError::Io {
            port: port.to_string(),
            what: what.into(),
            error: source,
        }
    }

    /// Any other error of port `port`.
    pub fn other(port: &str, message: impl Into<String>) -> PortError {
        PortError::Other {
            port: port.to_string(),
            message: message.into(),
        }
    }
}

/// The result of one receive call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// This many packets were appended to the batch (0: none right now).
    Got(usize),
    /// The source has ended and will never produce more (end of file, count reached).
    Ended,
}

/// Counters of one queue, kept by the queue itself (no sharing on the data path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    /// Packets received or sent.
    pub packets: u64,
    /// Bytes of frames received or sent.
    pub bytes: u64,
    /// Packets lost: not sent (queue full, error) or not received (no buffer),
    /// including those counted by reason below.
    pub drops: u64,
    /// Failed system calls or other errors.
    pub errors: u64,
    /// Of `drops`: frames longer than a packet slot (receive) or than the
    /// interface can send (transmit). Never forwarded cut short.
    pub oversize: u64,
    /// Of `drops`: pcap records whose capture was cut by a snap length
    /// (`incl_len` < `orig_len`), dropped unless the port says `truncated = "pass"`.
    pub truncated_capture: u64,
}

impl std::ops::AddAssign for QueueStats {
    fn add_assign(&mut self, o: QueueStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.drops += o.drops;
        self.errors += o.errors;
        self.oversize += o.oversize;
        self.truncated_capture += o.truncated_capture;
    }
}

/// Removes from `batch[start..start + n]` the packets for which `bad(i, p)`
/// is true (`i` counts from 0 over those `n` packets, in their original
/// order), returning their slots to `pool`, and returns how many stayed.
/// The others keep their order. For the rare frames a receive must drop
/// after the fact (oversize); costs nothing when `bad` is never true but
/// the checks.
pub(crate) fn drop_received(
    pool: &mut Pool,
    batch: &mut Batch,
    start: usize,
    n: usize,
    mut bad: impl FnMut(usize, &Packet) -> bool,
) -> usize {
    let mut kept = 0;
    for i in 0..n {
        let at = start + kept;
        if bad(i, &batch[at]) {
            pool.free(batch.remove(at));
        } else {
            kept += 1;
        }
    }
    kept
}

/// A receive queue, owned by one worker.
pub trait RxQueue: Send {
    /// Receives up to `max` packets into slots from `pool`, appending them to `batch`.
    /// Never blocks for long: returns `Got(0)` when nothing is waiting.
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError>;

    /// Counters so far.
    fn stats(&self) -> QueueStats;

    /// True when this queue replays a recording: it ends by itself, its
    /// packets carry their capture timestamps, oldest first, and `recv`
    /// returns `Got(0)` only when the pool is empty. Under
    /// `[runtime] clock = "packet"` a worker merges its replay queues by
    /// timestamp (see [`crate::runtime`]); other queues are read burst by
    /// burst.
    fn replay(&self) -> bool {
        false
    }

    /// A descriptor that polls readable (`POLLIN`, or an error) when
    /// `recv` has something to return, so that an idle worker may sleep in
    /// `poll(2)` on it (`[runtime] idle = "sleep"`). `None` (the default):
    /// the queue cannot be waited on (a generator, a pcap file), and a
    /// worker holding it keeps polling it instead of sleeping.
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// True when frames reach this queue only as it is read, or long after
    /// they arrived otherwise: hpio, whose reads busy-poll the NIC while
    /// its interrupts are deferred. A worker holding such a queue begins a
    /// quiet spell with short sleeps (see `runtime::idle`); the default
    /// (false) is a queue whose descriptor turns readable as frames arrive.
    fn polled(&self) -> bool {
        false
    }

    /// Called on an empty queue after each sleep of its worker (at least
    /// every 100 ms, the longest sleep, while it sleeps): what a queue
    /// otherwise does every so many empty receives (af_packet: look whether
    /// its interface still exists) it does here, since a sleeping worker
    /// makes few of them. An error ends the run, as from `recv`.
    fn slept(&mut self) -> Result<(), PortError> {
        Ok(())
    }
}

/// A transmit handle, owned by one worker.
pub trait TxQueue: Send {
    /// Transmits every packet of `batch` (leaving it empty) and returns their
    /// slots to `pool`. Packets that cannot be sent are counted as drops.
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError>;

    /// Flushes anything buffered (files) at the end of a run.
    fn finish(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    /// Counters so far.
    fn stats(&self) -> QueueStats;

    /// True while the queue holds work it must be called again for
    /// (packets held back by backpressure, completions to reap): its worker
    /// does not sleep in `poll(2)` then, but naps briefly, as with
    /// `[runtime] idle = "spin"`. The drivers here send or drop each burst
    /// at once: false.
    fn backlog(&self) -> bool {
        false
    }
}

/// An opened port: its receive queues and one transmit handle per worker.
pub struct OpenPort {
    /// Receive queues; the runtime gives queue `q` to worker `q % workers`.
    pub rx: Vec<Box<dyn RxQueue>>,
    /// Transmit handles, one per worker (index = worker).
    pub tx: Vec<Box<dyn TxQueue>>,
    /// Which driver actually serves the port (for the run log).
    pub driver: String,
    /// Extra counters the driver reads from the system (a kernel module's, say).
    pub driver_stats: Option<Box<dyn Fn() -> BTreeMap<String, u64> + Send>>,
    /// Largest frame the port can deliver or send, in bytes: for an
    /// interface its MTU plus an Ethernet header and two VLAN tags, rounded
    /// up ([`frame_for_mtu`]). Unless `[runtime] max_frame` is set, the run's
    /// packet slots hold the largest of its ports' (at least
    /// [`DEFAULT_MAX_FRAME`](crate::packet::DEFAULT_MAX_FRAME)).
    pub max_frame: usize,
}

/// Bytes of a frame around an MTU's worth of payload: Ethernet header (14)
/// and two VLAN tags (8), rounded up to a multiple of 64.
pub fn frame_for_mtu(mtu: usize) -> usize {
    (mtu + 14 + 8).div_ceil(64) * 64
}

/// A configured port, checked but not opened: no file or device touched yet.
pub trait PortSpec: Send + Sync + fmt::Debug {
    /// Number of receive queues (0 for a port that only transmits).
    fn rx_queues(&self) -> usize;

    /// True when the source never ends by itself (live interfaces, endless generators).
    fn endless(&self) -> bool;

    /// One-line description for `hpio-nf check`.
    fn describe(&self) -> String;

    /// The network interface the port is on, for drivers that have one
    /// (the control socket reads its link state from `/sys/class/net`).
    fn interface(&self) -> Option<&str> {
        None
    }

    /// Opens the port for `workers` workers. `rx`/`tx` say whether the graph
    /// reads from and writes to it, so that unused sides are not opened.
    fn open(&self, name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError>;
}

/// A port driver: its name in configs, parameters, and how to configure it.
#[derive(Clone, Copy)]
pub struct PortClass {
    /// Driver name (`driver = "pcap"`).
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Parameters besides `driver`.
    pub params: &'static [ParamSpec],
    /// Checks the parameters and returns the configured port.
    pub configure: fn(&Params) -> Result<Box<dyn PortSpec>, ParamError>,
}

impl fmt::Debug for PortClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortClass")
            .field("name", &self.name)
            .finish()
    }
}

/// Port drivers by name.
#[derive(Debug, Clone, Default)]
pub struct PortRegistry {
    classes: BTreeMap<&'static str, PortClass>,
}

impl PortRegistry {
    /// The drivers built into the framework.
    pub fn builtin() -> PortRegistry {
        let mut r = PortRegistry::default();
        r.register(pcap::CLASS);
        r.register(generator::CLASS);
        r.register(af_packet::CLASS);
        r.register(af_xdp::CLASS);
        r.register(auto::CLASS);
        r.register(hpio::CLASS);
        r
    }

    /// Adds a driver (the hpio and AF_PACKET drivers register here).
    pub fn register(&mut self, class: PortClass) {
        self.classes.insert(class.name, class);
    }

    /// The driver called `name`.
    pub fn get(&self, name: &str) -> Option<&PortClass> {
        self.classes.get(name)
    }

    /// All drivers, sorted by name.
    pub fn classes(&self) -> impl Iterator<Item = &PortClass> {
        self.classes.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_received_removes_the_bad_keeps_order_and_recycles_slots() {
        let mut pool = Pool::new(16);
        let mut batch = Batch::new();
        // Two packets before the received ones must stay untouched.
        for i in 0..2u8 {
            batch.push(Packet::from_bytes(&[100 + i; 60]));
        }
        assert_eq!(pool.alloc_into(&mut batch, 8), 8);
        for (i, p) in batch[2..].iter_mut().enumerate() {
            p.set_frame(&[i as u8; 60]);
        }
        let bad = [true, false, false, true, true, false, false, true];
        let mut seen = Vec::new();
        let kept = drop_received(&mut pool, &mut batch, 2, 8, |i, p| {
            seen.push((i, p.data()[0]));
            bad[i]
        });
        assert_eq!(kept, 4);
        // Asked about each received packet once, in order, by its first index.
        assert_eq!(seen, (0..8).map(|i| (i, i as u8)).collect::<Vec<_>>());
        let firsts: Vec<u8> = batch.iter().map(|p| p.data()[0]).collect();
        assert_eq!(firsts, [100, 101, 1, 2, 5, 6]);
        assert_eq!(
            pool.available(),
            8 + 4,
            "dropped slots went back to the pool"
        );
        assert_eq!(drop_received(&mut pool, &mut batch, 2, 4, |_, _| false), 4);
        assert_eq!(batch.len(), 6);
    }
}
