//! The transmit queue: one `writev` per burst straight from the slots.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use crate::packet::{Batch, Pool};
use crate::port::burst::{send_burst_waiting, Counters, Fault};
use crate::port::{PortError, QueueStats, TxQueue};
use crate::sys::hpio_dev::{HpioDev, IoVecs};
use crate::sys::wait::wait_writable;

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
    /// The module's `poll` says when the TX queue has room again
    /// (`HPIO_INFO_TX_POLL`): a full queue is waited for in `poll`, with
    /// the CPU halted, instead of with spins, yields and naps.
    poll_room: bool,
}

impl HpioTx {
    pub(super) fn new(
        dev: HpioDev,
        burst: usize,
        port: &str,
        interface: &str,
        max_tx: usize,
        counters: Arc<Counters>,
        poll_room: bool,
    ) -> HpioTx {
        HpioTx {
            dev,
            iov: IoVecs::new(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            max_tx,
            counters,
            poll_room,
        }
    }
}

impl TxQueue for HpioTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let (dev, iov, max_tx) = (&self.dev, &mut self.iov, self.max_tx);
        // An error of the poll itself only costs a retry (the write says
        // what is wrong).
        let mut room = |left: Duration| {
            let _ = wait_writable(dev.as_fd(), left);
        };
        let (o, stop) = send_burst_waiting(
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
            self.poll_room
                .then_some(&mut room as &mut dyn FnMut(Duration)),
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
