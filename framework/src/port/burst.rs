//! The batched-I/O core the live drivers (af_packet, hpio) share.
//!
//! - Transmit ([`send_burst`]): one burst handed to a batched send call
//!   (`sendmmsg`, `writev`) as often as it takes, with back-pressure when the
//!   device queue is full and every packet accounted for (sent, or dropped
//!   with a reason).
//! - Receive ([`recv_slots`]): one batched receive call (`recvmmsg`, `readv`)
//!   straight into fresh pool slots, the slots it left empty given back.
//! - [`Counters`]: the driver counters of a port, shared by its queues.
//!
//! A driver supplies the call and says what each error means ([`Fault`], or
//! its receive fault closure); the loops, the retry policy and the counting
//! live here once.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::packet::{Batch, Packet, Pool};
use crate::port::{PortError, QueueStats};

/// What a failed send call means for the burst.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The device queue or socket buffer is full: wait and try again.
    Full,
    /// The first packet of the rest was refused on its own (too short, say): skip it.
    Refused,
    /// The first packet of the rest is longer than the interface sends: skip it.
    Oversize,
    /// The link is down: drop the rest of the burst, keep the port.
    LinkDown,
    /// The interface is gone: drop the rest, and the run ends.
    Gone,
    /// Anything else: drop the rest, and the run ends with this error.
    Fatal(io::Error),
}

/// Why a burst ended the run.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The interface disappeared.
    Gone,
    /// An unexpected error of the send call.
    Io(io::Error),
}

impl Stop {
    /// The error that ends the run, for a queue of `port` on `interface`
    /// sending on `device` (for an unexpected error: "interface `eth0`").
    pub(crate) fn into_error(self, port: &str, interface: &str, device: &str) -> PortError {
        match self {
            Stop::Gone => disappeared(port, interface),
            Stop::Io(e) => PortError::io(port, format!("sending on {device}"), e),
        }
    }
}

/// What became of one burst.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Packets sent and their frame bytes.
    pub sent: u64,
    pub bytes: u64,
    /// Calls repeated because the queue was full.
    pub retries: u64,
    /// Dropped because the queue stayed full past the back-off.
    pub full: u64,
    /// Refused one by one (too short, malformed).
    pub rejected: u64,
    /// Refused as longer than the interface sends.
    pub oversize: u64,
    /// Dropped because the link is down or the run ends.
    pub failed: u64,
    /// Failed calls (link down, unexpected errors).
    pub errors: u64,
}

impl Outcome {
    /// Every packet not sent.
    pub fn dropped(&self) -> u64 {
        self.full + self.rejected + self.oversize + self.failed
    }

    /// Adds this burst to a transmit queue's counters and to its port's
    /// driver counters.
    pub fn settle(&self, stats: &mut QueueStats, counters: &Counters) {
        self.count_into(stats);
        counters.count_tx(self);
    }

    /// Adds this burst to a transmit queue's counters.
    pub fn count_into(&self, stats: &mut QueueStats) {
        stats.packets += self.sent;
        stats.bytes += self.bytes;
        stats.drops += self.dropped();
        stats.oversize += self.oversize;
        stats.errors += self.rejected + self.errors;
    }
}

/// How long a full queue is waited for, per burst: a few immediate retries
/// (the NIC often frees descriptors within microseconds), then yields, then
/// short naps, up to [`Backoff::BUDGET`] in all before the rest is dropped.
/// Waiting is the back-pressure a forwarder wants: the receive rings hold
/// the traffic meanwhile (an emulated NIC under load was seen to need more
/// than a millisecond to drain its queue).
#[derive(Debug, Default)]
struct Backoff {
    step: u32,
    /// When the naps began (read only on this slow path).
    napping_since: Option<Instant>,
}

impl Backoff {
    const SPINS: u32 = 8;
    const YIELDS: u32 = 8;
    const NAP: Duration = Duration::from_micros(50);
    const BUDGET: Duration = Duration::from_millis(5);

    /// Waits a little; false once the budget is spent.
    fn wait(&mut self) -> bool {
        let s = self.step;
        self.step += 1;
        if s < Self::SPINS {
            std::hint::spin_loop();
        } else if s < Self::SPINS + Self::YIELDS {
            std::thread::yield_now();
        } else {
            let since = *self.napping_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Self::BUDGET {
                return false;
            }
            std::thread::sleep(Self::NAP);
        }
        true
    }
}

/// Sends `batch` in chunks of at most `chunk` packets through `send`, which
/// returns how many packets of its slice it took (from the front) or an
/// error that `fault` explains in terms of the slice's first packet.
/// A call that takes nothing counts as a full queue.
pub(crate) fn send_burst(
    batch: &mut [Packet],
    chunk: usize,
    mut send: impl FnMut(&mut [Packet]) -> io::Result<usize>,
    mut fault: impl FnMut(io::Error, &Packet) -> Fault,
) -> (Outcome, Option<Stop>) {
    let total = batch.len();
    let chunk = chunk.max(1);
    let mut o = Outcome::default();
    let mut backoff = Backoff::default();
    let mut i = 0;
    while i < total {
        let end = total.min(i + chunk);
        let res = send(&mut batch[i..end]).map_err(|e| fault(e, &batch[i]));
        match res {
            Ok(n) if n > 0 => {
                let n = n.min(end - i);
                o.sent += n as u64;
                o.bytes += batch[i..i + n].iter().map(|p| p.len() as u64).sum::<u64>();
                i += n;
            }
            Ok(_) | Err(Fault::Full) => {
                if !backoff.wait() {
                    o.full += (total - i) as u64;
                    break;
                }
                o.retries += 1;
            }
            Err(Fault::Refused) => {
                o.rejected += 1;
                i += 1;
            }
            Err(Fault::Oversize) => {
                o.oversize += 1;
                i += 1;
            }
            Err(Fault::LinkDown) => {
                o.errors += 1;
                o.failed += (total - i) as u64;
                break;
            }
            Err(Fault::Gone) => {
                o.errors += 1;
                o.failed += (total - i) as u64;
                return (o, Some(Stop::Gone));
            }
            Err(Fault::Fatal(e)) => {
                o.errors += 1;
                o.failed += (total - i) as u64;
                return (o, Some(Stop::Io(e)));
            }
        }
    }
    (o, None)
}

/// A frame read from a mapped ring, copied into a fresh slot of `pool`
/// (`wire`: its length on the wire). `Err(true)`: larger than a slot,
/// counted in `oversize` and skipped (go on); `Err(false)`: the pool is
/// empty (stop reading).
#[inline]
pub(crate) fn copy_to_slot(
    pool: &mut Pool,
    frame: &[u8],
    wire: usize,
    ts: u64,
    oversize: &mut u64,
) -> Result<Packet, bool> {
    let mut p = pool.alloc().ok_or(false)?;
    let buf = p.recv_buf();
    let len = frame.len();
    if len > buf.len() {
        *oversize += 1;
        pool.free(p);
        return Err(true);
    }
    buf[..len].copy_from_slice(frame);
    p.finish_recv(len, wire, ts);
    Ok(p)
}

/// Receives one burst straight into pool slots: takes up to `max` fresh
/// slots (none when the pool is empty: the frames wait in the kernel),
/// appends them to `batch` and hands them to `call`, which fills them from
/// the front and returns how many it filled. The slots left empty go back
/// to the pool; the count of filled ones is returned.
///
/// `WouldBlock` and `Interrupted` are an empty burst. Any other error goes
/// to `fault`, which counts it and returns `None` (an empty burst, the queue
/// goes on) or the error that ends the run (every slot of the burst goes back).
#[inline]
pub(crate) fn recv_slots(
    pool: &mut Pool,
    batch: &mut Batch,
    max: usize,
    call: impl FnOnce(&mut [Packet]) -> io::Result<usize>,
    fault: impl FnOnce(io::Error) -> Option<PortError>,
) -> Result<usize, PortError> {
    let start = batch.len();
    if pool.alloc_into(batch, max) == 0 {
        return Ok(0);
    }
    let n = match call(&mut batch[start..]) {
        Ok(n) => n.min(batch.len() - start),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            0
        }
        Err(e) => match fault(e) {
            None => 0,
            Some(err) => {
                give_back(pool, batch, start);
                return Err(err);
            }
        },
    };
    give_back(pool, batch, start + n);
    Ok(n)
}

/// Returns the slots of `batch` from `keep` on to `pool`.
fn give_back(pool: &mut Pool, batch: &mut Batch, keep: usize) {
    while batch.len() > keep {
        if let Some(p) = batch.pop() {
            pool.free(p);
        }
    }
}

/// Driver counters of one port, summed over its queues. Queues add to them
/// once per burst, and only when there is something to add. Every driver
/// has the same set; a port reports those that apply to it ([`Counters::snapshot`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Frames the kernel handed over cut short (longer than the ring's
    /// frame or the slot): dropped, and counted `oversize` too.
    pub rx_truncated: AtomicU64,
    /// Super-frames cut into segments.
    pub rx_gso_frames: AtomicU64,
    /// Segments they were cut into.
    pub rx_gso_segments: AtomicU64,
    /// Super-frames dropped: a `gso_type` not cut here (or one the kernel
    /// could not describe).
    pub rx_gso_bad_type: AtomicU64,
    /// Super-frames dropped: headers inconsistent with their vnet header.
    pub rx_gso_malformed: AtomicU64,
    /// Super-frames dropped: a segment would not fit a slot.
    pub rx_gso_oversize: AtomicU64,
    /// Super-frames dropped: more segments than free slots.
    pub rx_gso_no_slots: AtomicU64,
    /// Frames the kernel dropped because a receive socket's buffer was full.
    pub rx_kernel_drops: AtomicU64,
    /// TCP/UDP checksums finished in software (frames the kernel flagged
    /// `TP_STATUS_CSUMNOTREADY`).
    pub rx_csum_completed: AtomicU64,
    /// Transmit calls repeated after the kernel took part of a burst.
    pub tx_retries: AtomicU64,
    /// Frames dropped because the socket buffer or device queue stayed full.
    pub tx_full_drops: AtomicU64,
    /// Frames refused as malformed (shorter than a header); those longer
    /// than the MTU count `oversize` instead.
    pub tx_rejected: AtomicU64,
}

/// Which of the [`Counters`] a port reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sides {
    /// The port receives (`rx_truncated`).
    pub rx: bool,
    /// The port transmits (`tx_*`).
    pub tx: bool,
    /// The receive side is a packet socket (`rx_gso_*`, `rx_kernel_drops`,
    /// `rx_csum_completed`).
    pub socket: bool,
}

impl Counters {
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts `n` received frames dropped as longer than a slot: in the
    /// queue's `stats` (drops and oversize) and in `rx_truncated`.
    #[inline]
    pub fn truncated(&self, stats: &mut QueueStats, n: u64) {
        if n != 0 {
            stats.drops += n;
            stats.oversize += n;
            Self::add(&self.rx_truncated, n);
        }
    }

    /// Adds a transmitted burst's retries and drops.
    #[inline]
    pub fn count_tx(&self, o: &Outcome) {
        Self::add(&self.tx_retries, o.retries);
        Self::add(&self.tx_full_drops, o.full);
        Self::add(&self.tx_rejected, o.rejected);
    }

    /// The counters of the sides a port opened.
    pub fn snapshot(&self, s: Sides) -> BTreeMap<String, u64> {
        let sock = s.rx && s.socket;
        [
            (s.rx, "rx_truncated", &self.rx_truncated),
            (sock, "rx_gso_frames", &self.rx_gso_frames),
            (sock, "rx_gso_segments", &self.rx_gso_segments),
            (sock, "rx_gso_bad_type", &self.rx_gso_bad_type),
            (sock, "rx_gso_malformed", &self.rx_gso_malformed),
            (sock, "rx_gso_oversize", &self.rx_gso_oversize),
            (sock, "rx_gso_no_slots", &self.rx_gso_no_slots),
            (sock, "rx_kernel_drops", &self.rx_kernel_drops),
            (sock, "rx_csum_completed", &self.rx_csum_completed),
            (s.tx, "tx_retries", &self.tx_retries),
            (s.tx, "tx_full_drops", &self.tx_full_drops),
            (s.tx, "tx_rejected", &self.tx_rejected),
        ]
        .into_iter()
        .filter(|(side, _, _)| *side)
        .map(|(_, k, v)| (k.to_string(), v.load(Ordering::Relaxed)))
        .collect()
    }
}

/// The error of a port whose interface is gone.
pub(crate) fn disappeared(port: &str, interface: &str) -> PortError {
    PortError::other(
        port,
        format!("interface `{interface}` disappeared (deleted or moved to another namespace)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lens: &[usize]) -> Vec<Packet> {
        lens.iter()
            .map(|&n| Packet::from_bytes(&vec![0u8; n]))
            .collect()
    }

    fn errno(e: i32) -> io::Error {
        io::Error::from_raw_os_error(e)
    }

    /// A fault policy for the tests: errno names the fault.
    fn by_errno(e: io::Error, _: &Packet) -> Fault {
        match e.raw_os_error() {
            Some(libc::ENOBUFS) => Fault::Full,
            Some(libc::EINVAL) => Fault::Refused,
            Some(libc::EMSGSIZE) => Fault::Oversize,
            Some(libc::ENETDOWN) => Fault::LinkDown,
            Some(libc::ENODEV) => Fault::Gone,
            _ => Fault::Fatal(e),
        }
    }

    #[test]
    fn partial_sends_go_on_in_chunks_and_count_bytes() {
        let mut b = batch(&[60, 60, 60, 60, 60, 100, 100]);
        let mut calls = Vec::new();
        let (o, stop) = send_burst(
            &mut b,
            4,
            |p| {
                calls.push(p.len());
                Ok(p.len().min(3))
            },
            by_errno,
        );
        assert!(stop.is_none());
        assert_eq!(calls, vec![4, 4, 1]);
        assert_eq!((o.sent, o.bytes, o.dropped()), (7, 500, 0));
    }

    #[test]
    fn a_full_queue_is_waited_for_then_the_rest_dropped() {
        let mut b = batch(&[60; 5]);
        let mut fulls = 3;
        let (o, _) = send_burst(
            &mut b,
            8,
            |p| {
                if fulls > 0 {
                    fulls -= 1;
                    return Err(errno(libc::ENOBUFS));
                }
                Ok(p.len())
            },
            by_errno,
        );
        assert_eq!((o.sent, o.retries, o.full), (5, 3, 0));

        // A queue that never drains: dropped after the back-off, not forever.
        let start = std::time::Instant::now();
        let (o, stop) = send_burst(&mut b, 8, |_| Ok(0), by_errno);
        assert!(stop.is_none());
        assert_eq!((o.sent, o.full), (0, 5));
        assert!(o.retries > u64::from(Backoff::SPINS + Backoff::YIELDS));
        assert!(start.elapsed() >= Backoff::BUDGET);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn refused_and_oversize_frames_are_skipped_one_by_one() {
        let mut b = batch(&[60, 10, 60, 9000, 60]);
        let (o, stop) = send_burst(
            &mut b,
            8,
            |p| match p[0].len() {
                10 => Err(errno(libc::EINVAL)),
                9000 => Err(errno(libc::EMSGSIZE)),
                _ => Ok(1),
            },
            by_errno,
        );
        assert!(stop.is_none());
        assert_eq!((o.sent, o.rejected, o.oversize), (3, 1, 1));
        assert_eq!(o.sent + o.dropped(), 5);
        let mut stats = QueueStats::default();
        o.count_into(&mut stats);
        assert_eq!(
            (
                stats.packets,
                stats.bytes,
                stats.drops,
                stats.oversize,
                stats.errors
            ),
            (3, 180, 2, 1, 1)
        );
    }

    #[test]
    fn link_down_drops_the_rest_and_gone_or_errors_stop() {
        let mut b = batch(&[60; 4]);
        let mut calls = 0;
        let (o, stop) = send_burst(
            &mut b,
            8,
            |_| {
                calls += 1;
                if calls == 1 {
                    Ok(1)
                } else {
                    Err(errno(libc::ENETDOWN))
                }
            },
            by_errno,
        );
        assert!(stop.is_none());
        assert_eq!((o.sent, o.failed, o.errors), (1, 3, 1));

        let (o, stop) = send_burst(&mut b, 8, |_| Err(errno(libc::ENODEV)), by_errno);
        assert!(matches!(stop, Some(Stop::Gone)));
        assert_eq!(o.failed, 4);

        let (o, stop) = send_burst(&mut b, 8, |_| Err(errno(libc::EPERM)), by_errno);
        assert!(matches!(stop, Some(Stop::Io(e)) if e.raw_os_error() == Some(libc::EPERM)));
        assert_eq!(o.failed + o.sent, 4);
    }

    #[test]
    fn recv_slots_keeps_the_filled_slots_and_gives_back_the_rest() {
        let mut pool = Pool::new(8);
        let mut batch = Batch::new();
        batch.push(Packet::from_bytes(&[7; 60]));
        let mut offered = 0;
        let n = recv_slots(
            &mut pool,
            &mut batch,
            5,
            |slots| {
                offered = slots.len();
                Ok(3)
            },
            |_| unreachable!(),
        )
        .unwrap();
        assert_eq!((offered, n, batch.len(), pool.available()), (5, 3, 4, 5));
        // A call claiming more than it was offered is held to the slots.
        let n = recv_slots(&mut pool, &mut batch, 2, |_| Ok(9), |_| unreachable!()).unwrap();
        assert_eq!((n, batch.len(), pool.available()), (2, 6, 3));
        // An empty pool: no call at all, the frames wait in the kernel.
        let mut empty = Pool::new(0);
        let n = recv_slots(
            &mut empty,
            &mut batch,
            4,
            |_| unreachable!(),
            |_| unreachable!(),
        );
        assert_eq!(n.unwrap(), 0);
    }

    #[test]
    fn recv_slots_would_block_is_empty_and_faults_are_counted_or_fatal() {
        let mut pool = Pool::new(8);
        let mut batch = Batch::new();
        for kind in [io::ErrorKind::WouldBlock, io::ErrorKind::Interrupted] {
            let n = recv_slots(
                &mut pool,
                &mut batch,
                4,
                |_| Err(io::Error::from(kind)),
                |_| unreachable!(),
            );
            assert_eq!(n.unwrap(), 0);
        }
        let mut counted = 0;
        let n = recv_slots(
            &mut pool,
            &mut batch,
            4,
            |_| Err(errno(libc::ENETDOWN)),
            |_| {
                counted += 1;
                None
            },
        );
        assert_eq!((n.unwrap(), counted), (0, 1));
        let r = recv_slots(
            &mut pool,
            &mut batch,
            4,
            |_| Err(errno(libc::EPERM)),
            |e| Some(PortError::io("p", "receiving", e)),
        );
        assert!(r.is_err());
        assert_eq!(
            (batch.len(), pool.available()),
            (0, 8),
            "every slot went back"
        );
    }

    #[test]
    fn counters_report_the_sides_a_port_opened() {
        let c = Counters::default();
        let mut stats = QueueStats::default();
        c.truncated(&mut stats, 2);
        c.count_tx(&Outcome {
            retries: 3,
            full: 1,
            ..Outcome::default()
        });
        assert_eq!((stats.drops, stats.oversize), (2, 2));
        let all = c.snapshot(Sides {
            rx: true,
            tx: true,
            socket: true,
        });
        assert_eq!(all.len(), 12);
        assert_eq!(
            (all["rx_truncated"], all["tx_retries"], all["tx_full_drops"]),
            (2, 3, 1)
        );
        let dev = c.snapshot(Sides {
            rx: true,
            tx: false,
            socket: false,
        });
        assert_eq!(dev.keys().collect::<Vec<_>>(), ["rx_truncated"]);
    }
}
