//! The batched-transmit core the live drivers share: one burst handed to a
//! batched send call (`sendmmsg`, `writev`) as often as it takes, with
//! back-pressure when the device queue is full and every packet accounted
//! for (sent, or dropped with a reason).
//!
//! A driver supplies the call and says what each error means ([`Fault`]);
//! the loop, the retry policy and the counting live here once.

use std::io;
use std::time::{Duration, Instant};

use crate::packet::Packet;
use crate::port::QueueStats;

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
}
