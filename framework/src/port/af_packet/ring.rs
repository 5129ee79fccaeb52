//! The receive queue over a mapped ring (`rx_mode = "tpacket_v2"` or
//! `"tpacket_v3"`): frames are copied from the ring into pool slots, with
//! no system call per burst.

use std::cell::Cell;
use std::sync::Arc;

use super::watch::LinkWatch;
use super::{fix_up, Counters};
use crate::packet::{Batch, Pool};
use crate::port::{PortError, QueueStats, Recv, RxQueue};
use crate::sys::RxRing;

/// One receive socket with its ring.
pub(super) struct RingRx<R> {
    ring: R,
    stats: QueueStats,
    kernel_drops: Cell<u64>,
    counters: Arc<Counters>,
    watch: LinkWatch,
}

impl<R: RxRing> RingRx<R> {
    pub(super) fn new(ring: R, counters: Arc<Counters>, watch: LinkWatch) -> RingRx<R> {
        RingRx {
            ring,
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
            counters,
            watch,
        }
    }
}

impl<R: RxRing> RxQueue for RingRx<R> {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        // Never take a frame off the ring without a slot for it.
        let want = max.min(pool.available());
        let mut bytes = 0;
        let mut got = 0;
        // Frames the ring holds cut short, and frames longer than a slot:
        // both are dropped, never handed on truncated.
        let (mut truncated, mut oversize) = (0, 0);
        let mut bad_tags = 0;
        let mut csums = 0;
        if want == 0 {
            return Ok(Recv::Got(0));
        }
        let n = self.ring.recv(want, |frame, wire, ts, info| {
            if wire > frame.len() {
                truncated += 1;
                return;
            }
            let Some(mut p) = pool.alloc() else { return };
            let buf = p.recv_buf();
            let len = frame.len();
            if len > buf.len() {
                oversize += 1;
                pool.free(p);
                return;
            }
            buf[..len].copy_from_slice(frame);
            p.finish_recv(len, wire, ts);
            fix_up(&mut p, info, &mut bad_tags, &mut csums);
            bytes += p.len() as u64;
            batch.push(p);
            got += 1;
        });
        if n == 0 {
            // A ring whose interface is gone stays empty without a word.
            self.watch.idle()?;
            return Ok(Recv::Got(0));
        }
        self.stats.packets += got as u64;
        self.stats.bytes += bytes;
        self.stats.errors += bad_tags;
        Counters::add(&self.counters.rx_csum_completed, csums);
        if truncated + oversize != 0 {
            self.stats.drops += truncated + oversize;
            self.stats.oversize += truncated + oversize;
            Counters::add(&self.counters.rx_truncated, truncated);
        }
        Ok(Recv::Got(got))
    }

    fn stats(&self) -> QueueStats {
        if let Ok(k) = self.ring.socket().take_stats() {
            self.kernel_drops.set(self.kernel_drops.get() + k.drops);
            Counters::add(&self.counters.rx_kernel_drops, k.drops);
        }
        QueueStats {
            drops: self.stats.drops + self.kernel_drops.get(),
            ..self.stats
        }
    }
}
