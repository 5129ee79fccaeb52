//! The transmit queue: one `writev` per burst straight from the slots.

use std::sync::Arc;

use crate::packet::{Batch, Pool};
use crate::port::burst::{send_burst, Counters, Fault};
use crate::port::{PortError, QueueStats, TxQueue};
use crate::sys::hpio_dev::{HpioDev, IoVecs};

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
        let (dev, iov, max_tx) = (&self.dev, &mut self.iov, self.max_tx);
        let (o, stop) = send_burst(
            batch,
            iov.capacity(),
            |pkts| dev.writev(iov, pkts.iter_mut().map(|p| p.hpio_send_buf())),
            |e, first| match e.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => Fault::Full,
                // Too long for the MTU or too short: the module says only
                // "invalid"; the length tells which.
                Some(libc::EINVAL) | Some(libc::EMSGSIZE) if first.len() > max_tx => {
                    Fault::Oversize
                }
                Some(libc::EINVAL) | Some(libc::EMSGSIZE) => Fault::Refused,
                Some(libc::ENETDOWN) => Fault::LinkDown,
                Some(libc::ENODEV) => Fault::Gone,
                _ => Fault::Fatal(e),
            },
        );
        pool.free_batch(batch);
        o.settle(&mut self.stats, &self.counters);
        match stop {
            None => Ok(()),
            Some(stop) => Err(stop.into_error(
                &self.port,
                &self.interface,
                &format!("/dev/hpio/{}", self.interface),
            )),
        }
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
