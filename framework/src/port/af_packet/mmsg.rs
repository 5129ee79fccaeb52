//! The receive queue of `rx_mode = "mmsg"`: one `recvmmsg` per burst straight
//! into pool slots.

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::gso::{Segmenter, Src};
use super::watch::LinkWatch;
use super::{fix_up, Counters};
use crate::packet::{Batch, Packet, Pool};
use crate::port::burst::recv_slots;
use crate::port::{drop_received, PortError, QueueStats, Recv, RxQueue};
use crate::sys::{MsgVec, PacketSocket, SUPER_FRAME_MAX};

/// Frames per `recvmmsg` at most when super-frames are received whole: each
/// has a 64 KiB overflow area (so 4 MiB of address space, touched only as
/// super-frames arrive).
pub(super) const VNET_BURST: usize = 64;

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
    /// The socket has `PACKET_VNET_HDR`.
    vnet: bool,
    gso: Segmenter,
    /// The frames of a burst holding super-frames, while they are cut
    /// (allocated once, `msgs`' capacity).
    staging: Vec<Packet>,
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
        let vnet = sock.has_vnet_hdr().unwrap_or(false);
        let msgs = if vnet {
            MsgVec::with_auxdata(burst.min(VNET_BURST)).with_vnet(SUPER_FRAME_MAX)
        } else {
            MsgVec::with_auxdata(burst)
        };
        MmsgRx {
            sock,
            staging: Vec::with_capacity(msgs.capacity()),
            msgs,
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            kernel_drops: Cell::new(0),
            counters,
            watch,
            vnet,
            gso: Segmenter::new(),
        }
    }
}

impl MmsgRx {
    /// One `recvmmsg` of up to `max` frames into fresh slots appended to
    /// `batch`; returns how many arrived (slots not filled go back).
    fn receive(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        max: usize,
    ) -> Result<usize, PortError> {
        let (sock, msgs, vnet) = (&self.sock, &mut self.msgs, self.vnet);
        let (stats, gso) = (&mut self.stats, &mut self.gso);
        let (port, interface) = (&self.port, &self.interface);
        recv_slots(
            pool,
            batch,
            max.min(msgs.capacity()),
            |slots| sock.recv_batch(msgs, slots.iter_mut().map(|p| p.recv_buf())),
            |e| match e.raw_os_error() {
                // The link went down, or the interface is gone (the socket
                // reports either once): keep polling; the watch tells them apart.
                Some(libc::ENETDOWN) => {
                    stats.errors += 1;
                    None
                }
                // A super-frame whose kind has no virtio_net_hdr equivalent
                // (the kernel fails it and it is gone): counted, go on.
                Some(libc::EINVAL) if vnet => {
                    gso.count_bad_type();
                    None
                }
                _ => {
                    stats.errors += 1;
                    Some(PortError::io(
                        port,
                        format!("receiving from interface `{interface}`"),
                        e,
                    ))
                }
            },
        )
    }

    /// The slow path of a burst holding super-frames: the `n` frames
    /// received from `batch[first..]` are passed on again in order, each
    /// super-frame replaced by its segments (its slot goes back), within
    /// `budget`; the rest waits in the backlog.
    fn cut(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        first: usize,
        ts: u64,
        budget: &mut usize,
        bytes: &mut u64,
    ) {
        self.staging.extend(batch.drain(first..));
        let mut lost = 0;
        for (i, mut p) in self.staging.drain(..).enumerate() {
            let info = self.msgs.info(i);
            if info.vnet.is_gso() {
                let wire = self.msgs.len(i);
                let buf = p.recv_buf();
                let cap = buf.len();
                let src = Src {
                    head: &buf[..wire.min(cap)],
                    tail: self.msgs.overflow(i, cap),
                };
                self.gso
                    .cut(src, wire, &info, ts, pool, batch, budget, bytes);
                pool.free(p);
            } else if self.msgs.truncated(i) || self.msgs.len(i) > p.capacity() {
                // Longer than a slot: counted by the caller, never handed on cut.
                pool.free(p);
            } else if !self.gso.pass(p, pool, batch, budget, bytes) {
                lost += 1;
            }
        }
        self.stats.drops += lost;
    }
}

impl RxQueue for MmsgRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let start = batch.len();
        let mut budget = max;
        let mut bytes = 0;
        // Segments of super-frames left over from the last burst go first.
        self.gso.drain(batch, &mut budget, &mut bytes);
        let first = batch.len();
        let n = if budget == 0 || self.gso.pending() {
            0
        } else {
            self.receive(pool, batch, budget)?
        };
        if n > 0 {
            let ts = now_ns();
            let mut new_bytes = 0;
            let mut truncated = 0;
            let mut bad_tags = 0;
            let mut csums = 0;
            let mut supers = false;
            for (i, p) in batch[first..first + n].iter_mut().enumerate() {
                let info = self.msgs.info(i);
                if info.vnet.is_gso() {
                    supers = true;
                    continue;
                }
                let wire = self.msgs.len(i);
                // Longer than the slot (MSG_TRUNC, or spilled into the
                // overflow area): dropped, never handed on cut.
                let cut = self.msgs.truncated(i) || wire > p.capacity();
                truncated += u64::from(cut);
                p.finish_recv(wire.min(p.capacity()), wire, ts);
                if !cut {
                    fix_up(p, info, &mut bad_tags, &mut csums);
                    new_bytes += p.len() as u64;
                }
            }
            if supers {
                self.cut(pool, batch, first, ts, &mut budget, &mut bytes);
            } else {
                bytes += new_bytes;
                if truncated != 0 {
                    let msgs = &self.msgs;
                    drop_received(pool, batch, first, n, |i, p| {
                        msgs.truncated(i) || msgs.len(i) > p.capacity()
                    });
                }
            }
            self.stats.errors += bad_tags;
            Counters::add(&self.counters.rx_csum_completed, csums);
            self.counters.truncated(&mut self.stats, truncated);
        }
        let got = batch.len() - start;
        self.stats.packets += got as u64;
        self.stats.bytes += bytes;
        self.gso.flush(&self.counters, &mut self.stats);
        if n == 0 && got == 0 {
            self.watch.idle(&self.sock)?;
        }
        Ok(Recv::Got(got))
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.sock.as_fd())
    }

    fn slept(&mut self) -> Result<(), PortError> {
        self.watch.slept(&self.sock)
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
