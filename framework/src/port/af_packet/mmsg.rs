//! The receive queue of `rx_mode = "mmsg"`: one `recvmmsg` per burst straight
//! into pool slots.

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::watch::LinkWatch;
use super::{fix_up, Counters};
use crate::packet::{Batch, Pool};
use crate::port::{drop_received, PortError, QueueStats, Recv, RxQueue};
use crate::sys::{MsgVec, PacketSocket};

/// Wall-clock nanoseconds since the Unix epoch (a vDSO read, not a system call).
pub(super) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One receive socket (a fanout member when the port has several).
pub(super) struct MmsgRx {
    sock: PacketSocket,
    msgs: MsgVec,
    port: String,
    interface: String,
    stats: QueueStats,
    /// Kernel drops read so far (`stats` takes `&self`; the kernel resets on read).
    kernel_drops: Cell<u64>,
    counters: Arc<Counters>,
    watch: LinkWatch,
}

impl MmsgRx {
    pub(super) fn new(
        sock: PacketSocket,
        burst: usize,
        port: &str,
        interface: &str,
        counters: Arc<Counters>,
        watch: LinkWatch,
    ) -> MmsgRx {
        MmsgRx {
            sock,
            msgs: MsgVec::with_auxdata(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
            counters,
            watch,
        }
    }
}

impl RxQueue for MmsgRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let start = batch.len();
        if pool.alloc_into(batch, max.min(self.msgs.capacity())) == 0 {
            // No free slot: leave the frames in the socket buffer for now.
            return Ok(Recv::Got(0));
        }
        let res = self.sock.recv_batch(
            &mut self.msgs,
            batch[start..].iter_mut().map(|p| p.recv_buf()),
        );
        let n = match res {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // The link went down, or the interface is gone (the socket
            // reports either once): keep polling; the watch tells them apart.
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                self.stats.errors += 1;
                0
            }
            Err(e) => {
                while batch.len() > start {
                    if let Some(p) = batch.pop() {
                        pool.free(p);
                    }
                }
                self.stats.errors += 1;
                return Err(PortError::io(
                    &self.port,
                    format!("receiving from interface `{}`", self.interface),
                    e,
                ));
            }
        };
        let mut got = n;
        if n > 0 {
            let ts = now_ns();
            let mut bytes = 0;
            let mut truncated = 0;
            let mut bad_tags = 0;
            let mut csums = 0;
            for (i, p) in batch[start..start + n].iter_mut().enumerate() {
                let wire = self.msgs.len(i);
                // Longer than the slot (MSG_TRUNC): dropped below, never handed on cut.
                let cut = self.msgs.truncated(i) || wire > p.capacity();
                truncated += u64::from(cut);
                p.finish_recv(wire.min(p.capacity()), wire, ts);
                if !cut {
                    fix_up(p, self.msgs.info(i), &mut bad_tags, &mut csums);
                    bytes += p.len() as u64;
                }
            }
            if truncated != 0 {
                let msgs = &self.msgs;
                got = drop_received(pool, batch, start, n, |i, p| {
                    msgs.truncated(i) || msgs.len(i) > p.capacity()
                });
                self.stats.drops += truncated;
                self.stats.oversize += truncated;
                Counters::add(&self.counters.rx_truncated, truncated);
            }
            self.stats.packets += got as u64;
            self.stats.bytes += bytes;
            self.stats.errors += bad_tags;
            Counters::add(&self.counters.rx_csum_completed, csums);
        }
        while batch.len() > start + got {
            if let Some(p) = batch.pop() {
                pool.free(p);
            }
        }
        if n == 0 {
            self.watch.idle()?;
        }
        Ok(Recv::Got(got))
    }

    fn stats(&self) -> QueueStats {
        // Called a few times per second by the worker: one getsockopt each.
        if let Ok(k) = self.sock.take_stats() {
            self.kernel_drops.set(self.kernel_drops.get() + k.drops);
            Counters::add(&self.counters.rx_kernel_drops, k.drops);
        }
        QueueStats {
            drops: self.stats.drops + self.kernel_drops.get(),
            ..self.stats
        }
    }
}
