//! The transmit queue: `sendmmsg` of the whole burst straight from the slots.

use std::sync::Arc;

use super::Counters;
use crate::packet::{Batch, Pool};
use crate::port::{PortError, QueueStats, TxQueue};
use crate::sys::{MsgVec, PacketSocket};

/// Calls repeated at once when the kernel takes only part of a burst,
/// before the rest is dropped (per `send`).
pub(super) const MAX_RETRIES: u32 = 8;

/// One worker's transmit socket.
pub(super) struct AfPacketTx {
    sock: PacketSocket,
    msgs: MsgVec,
    port: String,
    interface: String,
    stats: QueueStats,
    counters: Arc<Counters>,
}

impl AfPacketTx {
    pub(super) fn new(
        sock: PacketSocket,
        burst: usize,
        port: &str,
        interface: &str,
        counters: Arc<Counters>,
    ) -> AfPacketTx {
        AfPacketTx {
            sock,
            msgs: MsgVec::new(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            counters,
        }
    }
}

/// What became of one burst.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    sent: u64,
    bytes: u64,
    retries: u64,
    /// Dropped because buffers stayed full.
    full: u64,
    /// Refused by the kernel one by one (too short, malformed).
    rejected: u64,
    /// Refused by the kernel as longer than the interface sends (`EMSGSIZE`).
    oversize: u64,
    /// Dropped because the link is down or another error ended the burst.
    failed: u64,
    /// Failed calls (each ENETDOWN or unexpected error).
    errors: u64,
}

impl TxQueue for AfPacketTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let total = batch.len();
        let mut o = Outcome::default();
        let mut fatal = None;
        let mut i = 0;
        let mut retries_left = MAX_RETRIES;
        while i < total {
            let end = total.min(i + self.msgs.capacity());
            match self
                .sock
                .send_batch(&mut self.msgs, batch[i..end].iter().map(|p| p.data()))
            {
                Ok(n) => {
                    o.sent += n as u64;
                    o.bytes += batch[i..i + n].iter().map(|p| p.len() as u64).sum::<u64>();
                    i += n;
                    if i < end {
                        // The kernel stopped early; the next call reports why.
                        continue;
                    }
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                        if retries_left == 0 {
                            o.full += (total - i) as u64;
                            break;
                        }
                        retries_left -= 1;
                        o.retries += 1;
                        std::hint::spin_loop();
                    }
                    // This frame is longer than the MTU allows: skip it.
                    Some(libc::EMSGSIZE) => {
                        o.oversize += 1;
                        i += 1;
                    }
                    // This frame is too short or malformed: skip it.
                    Some(libc::EINVAL) => {
                        o.rejected += 1;
                        i += 1;
                    }
                    Some(libc::ENETDOWN) => {
                        o.errors += 1;
                        o.failed += (total - i) as u64;
                        break;
                    }
                    Some(libc::ENXIO) | Some(libc::ENODEV) => {
                        o.errors += 1;
                        o.failed += (total - i) as u64;
                        fatal = Some(super::watch::disappeared(&self.port, &self.interface));
                        break;
                    }
                    _ => {
                        o.errors += 1;
                        o.failed += (total - i) as u64;
                        fatal = Some(PortError::io(
                            &self.port,
                            format!("sending on interface `{}`", self.interface),
                            e,
                        ));
                        break;
                    }
                },
            }
        }
        pool.free_batch(batch);
        self.stats.packets += o.sent;
        self.stats.bytes += o.bytes;
        self.stats.drops += o.full + o.rejected + o.oversize + o.failed;
        self.stats.oversize += o.oversize;
        self.stats.errors += o.rejected + o.errors;
        Counters::add(&self.counters.tx_retries, o.retries);
        Counters::add(&self.counters.tx_full_drops, o.full);
        Counters::add(&self.counters.tx_rejected, o.rejected);
        fatal.map_or(Ok(()), Err)
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
