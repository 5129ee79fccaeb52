//! The receive queue: frames of the socket's RX ring copied into pool slots.

use std::cell::Cell;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::SystemTime;

use super::Attached;
use crate::packet::{Batch, Pool};
use crate::port::af_packet::csum::complete_if_partial;
use crate::port::af_packet::watch::LinkWatch;
use crate::port::burst::{copy_to_slot, Counters};
use crate::port::{PortError, QueueStats, Recv, RxQueue};
use crate::sys::xsk::XskRx;

/// Wall-clock nanoseconds (the timestamp of a burst's frames).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One queue's socket (its receive half).
pub(super) struct XdpRx {
    xsk: XskRx,
    /// Keeps the XDP program attached while the queue is open.
    _attached: Arc<Attached>,
    stats: QueueStats,
    /// Kernel drops counted so far (the kernel's counters only grow).
    kernel_drops: Cell<u64>,
    counters: Arc<Counters>,
    watch: LinkWatch,
    /// Finish partial TCP/UDP checksums (`csum_fix`).
    csum_fix: bool,
}

impl XdpRx {
    pub(super) fn new(
        xsk: XskRx,
        attached: Arc<Attached>,
        counters: Arc<Counters>,
        watch: LinkWatch,
        csum_fix: bool,
    ) -> XdpRx {
        XdpRx {
            xsk,
            _attached: attached,
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
            counters,
            watch,
            csum_fix,
        }
    }
}

impl RxQueue for XdpRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        // Never take a frame off the ring without a slot for it.
        let want = max.min(pool.available());
        if want == 0 || self.xsk.waiting() == 0 {
            // Needed by zero-copy drivers whose fill ring ran dry.
            let _ = self.xsk.wake();
            self.watch.idle_unbound()?;
            return Ok(Recv::Got(0));
        }
        let ts = now_ns();
        let (mut bytes, mut oversize, mut csums) = (0u64, 0u64, 0u64);
        let csum_fix = self.csum_fix;
        let start = batch.len();
        let (_, bad) = self.xsk.recv(want, |frame| {
            let len = frame.len();
            let mut p = match copy_to_slot(pool, frame, len, ts, &mut oversize) {
                Ok(p) => p,
                Err(go_on) => return go_on,
            };
            if csum_fix {
                csums += u64::from(complete_if_partial(&mut p));
            }
            bytes += len as u64;
            batch.push(p);
            true
        });
        let n = batch.len() - start;
        self.stats.packets += n as u64;
        self.stats.bytes += bytes;
        self.stats.errors += u64::from(bad);
        Counters::truncated(&self.counters, &mut self.stats, oversize);
        Counters::add(&self.counters.rx_csum_completed, csums);
        Ok(Recv::Got(n))
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.xsk.fd())
    }

    fn slept(&mut self) -> Result<(), PortError> {
        self.watch.slept_unbound()
    }

    fn stats(&self) -> QueueStats {
        if let Ok(k) = self.xsk.stats() {
            let total = k.rx_dropped + k.rx_ring_full;
            let new = total.saturating_sub(self.kernel_drops.get());
            self.kernel_drops.set(total);
            Counters::add(&self.counters.rx_kernel_drops, new);
        }
        QueueStats {
            drops: self.stats.drops + self.kernel_drops.get(),
            ..self.stats
        }
    }
}
