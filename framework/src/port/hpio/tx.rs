//! The transmit queue: one `writev` per burst straight from the slots.

use std::sync::Arc;

use super::Counters;
use crate::packet::{Batch, Pool};
use crate::port::{PortError, QueueStats, TxQueue};
use crate::sys::hpio_dev::{HpioDev, IoVecs};

/// Calls repeated at once when the driver takes only part of a burst,
/// before the rest is dropped (per `send`).
const MAX_RETRIES: u32 = 8;

/// One worker's transmit file, bound to a fixed TX queue.
pub(super) struct HpioTx {
    dev: HpioDev,
    iov: IoVecs,
    port: String,
    interface: String,
    stats: QueueStats,
    /// Longest frame the interface sends (MTU + Ethernet header): a refused
    /// frame longer than this is counted `oversize`.
    max_tx: usize,
    counters: Arc<Counters>,
}

impl HpioTx {
    pub(super) fn new(
        dev: HpioDev,
        burst: usize,
        port: &str,
        interface: &str,
        max_tx: usize,
        counters: Arc<Counters>,
    ) -> HpioTx {
        HpioTx {
            dev,
            iov: IoVecs::new(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            max_tx,
            counters,
        }
    }
}

impl TxQueue for HpioTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let total = batch.len();
        let (mut sent, mut bytes, mut retries) = (0u64, 0u64, 0u64);
        let (mut full, mut rejected, mut failed, mut errors) = (0u64, 0u64, 0u64, 0u64);
        let mut oversize = 0u64;
        let mut fatal = None;
        let mut i = 0;
        let mut retries_left = MAX_RETRIES;
        while i < total {
            let end = total.min(i + self.iov.capacity());
            match self.dev.writev(
                &mut self.iov,
                batch[i..end].iter_mut().map(|p| p.hpio_send_buf()),
            ) {
                Ok(0) => {
                    // Nothing taken and no error: treat as a full queue.
                    if retries_left == 0 {
                        full += (total - i) as u64;
                        break;
                    }
                    retries_left -= 1;
                    retries += 1;
                }
                Ok(n) => {
                    let n = n.min(end - i);
                    sent += n as u64;
                    bytes += batch[i..i + n].iter().map(|p| p.len() as u64).sum::<u64>();
                    i += n;
                    // Stopped early: the next call reports why.
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                        if retries_left == 0 {
                            full += (total - i) as u64;
                            break;
                        }
                        retries_left -= 1;
                        retries += 1;
                        std::hint::spin_loop();
                    }
                    // This packet is too long for the MTU or too short: skip
                    // it. The module says only "invalid"; the length tells which.
                    Some(libc::EINVAL) | Some(libc::EMSGSIZE) => {
                        if batch[i].len() > self.max_tx {
                            oversize += 1;
                        } else {
                            rejected += 1;
                        }
                        i += 1;
                    }
                    Some(libc::ENETDOWN) => {
                        errors += 1;
                        failed += (total - i) as u64;
                        break;
                    }
                    Some(libc::ENODEV) => {
                        errors += 1;
                        failed += (total - i) as u64;
                        fatal = Some(PortError::other(
                            &self.port,
                            format!(
                                "interface `{}` disappeared (deleted or moved to another \
                                 namespace)",
                                self.interface
                            ),
                        ));
                        break;
                    }
                    _ => {
                        errors += 1;
                        failed += (total - i) as u64;
                        fatal = Some(PortError::io(
                            &self.port,
                            format!("sending on /dev/hpio/{}", self.interface),
                            e,
                        ));
                        break;
                    }
                },
            }
        }
        pool.free_batch(batch);
        self.stats.packets += sent;
        self.stats.bytes += bytes;
        self.stats.drops += full + rejected + oversize + failed;
        self.stats.oversize += oversize;
        self.stats.errors += rejected + errors;
        Counters::add(&self.counters.tx_retries, retries);
        Counters::add(&self.counters.tx_full_drops, full);
        Counters::add(&self.counters.tx_rejected, rejected);
        fatal.map_or(Ok(()), Err)
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
