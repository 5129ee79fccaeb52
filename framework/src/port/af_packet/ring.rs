//! The receive queue over a mapped ring (`rx_mode = "tpacket_v2"` or
//! `"tpacket_v3"`): frames are copied from the ring into pool slots, with
//! no system call per burst. Super-frames (offloads on) are cut into
//! segments on the way (see `gso`).

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use super::gso::{Segmenter, Src};
use super::watch::LinkWatch;
use super::{fix_up, Counters};
use crate::packet::{Batch, Pool};
use crate::port::burst::copy_to_slot;
use crate::port::{PortError, QueueStats, Recv, RxQueue};
use crate::sys::RxRing;

/// One receive socket with its ring.
pub(super) struct RingRx<R> {
    ring: R,
    stats: QueueStats,
    kernel_drops: Cell<u64>,
    counters: Arc<Counters>,
    watch: LinkWatch,
    gso: Segmenter,
}

impl<R: RxRing> RingRx<R> {
    pub(super) fn new(ring: R, counters: Arc<Counters>, watch: LinkWatch) -> RingRx<R> {
        RingRx {
            ring,
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
            counters,
            watch,
            gso: Segmenter::new(),
        }
    }
}

impl<R: RxRing> RxQueue for RingRx<R> {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let start = batch.len();
        let mut budget = max;
        let mut bytes = 0;
        // Frames the ring holds cut short, and frames longer than a slot:
        // both are dropped, never handed on truncated.
        let (mut truncated, mut oversize) = (0, 0);
        let mut bad_tags = 0;
        let mut csums = 0;
        let mut taken = 0;
        // Segments of a super-frame left over from the last burst go first.
        self.gso.drain(batch, &mut budget, &mut bytes);
        // Never take a frame off the ring without a slot for it.
        let want = budget.min(pool.available());
        if want > 0 && !self.gso.pending() {
            let gso = &mut self.gso;
            taken = self.ring.recv(want, |frame, wire, ts, info| {
                if info.vnet.is_gso() {
                    let src = Src {
                        head: frame,
                        tail: &[],
                    };
                    gso.cut(src, wire, &info, ts, pool, batch, &mut budget, &mut bytes);
                    return budget > 0 && pool.available() > 0 && !gso.pending();
                }
                if wire > frame.len() {
                    truncated += 1;
                    return true;
                }
                let mut p = match copy_to_slot(pool, frame, wire, ts, &mut oversize) {
                    Ok(p) => p,
                    Err(go_on) => return go_on,
                };
                fix_up(&mut p, info, &mut bad_tags, &mut csums);
                bytes += p.len() as u64;
                batch.push(p);
                budget -= 1;
                budget > 0 && pool.available() > 0
            });
        }
        let n = batch.len() - start;
        self.gso.flush(&self.counters, &mut self.stats);
        if n == 0 && taken == 0 {
            // A ring whose interface is gone stays empty without a word.
            self.watch.idle(self.ring.socket())?;
            return Ok(Recv::Got(0));
        }
        self.stats.packets += n as u64;
        self.stats.bytes += bytes;
        self.stats.errors += bad_tags;
        Counters::add(&self.counters.rx_csum_completed, csums);
        if truncated + oversize != 0 {
            self.stats.drops += truncated + oversize;
            self.stats.oversize += truncated + oversize;
            Counters::add(&self.counters.rx_truncated, truncated);
        }
        Ok(Recv::Got(n))
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        // Readable once the ring holds a frame (or a block, TPACKET_V3) for
        // user space, or a frame queued whole on the socket.
        Some(self.ring.socket().as_fd())
    }

    fn slept(&mut self) -> Result<(), PortError> {
        self.watch.slept(self.ring.socket())
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
