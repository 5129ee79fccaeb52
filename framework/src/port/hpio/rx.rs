//! The receive queue: one `readv` per burst straight into pool slots.

use std::io;
use std::sync::Arc;

use super::Counters;
use crate::packet::{Batch, Pool};
use crate::port::{drop_received, PortError, QueueStats, Recv, RxQueue};
use crate::sys::hpio_dev::{HpioDev, IoVecs};
use crate::sys::packet_socket::PacketSocket;

/// One receive queue: a file bound to one of the module's rings.
pub(super) struct HpioRx {
    dev: HpioDev,
    iov: IoVecs,
    port: String,
    interface: String,
    stats: QueueStats,
    counters: Arc<Counters>,
    /// Holds the interface promiscuous while the port receives (first queue).
    _promisc: Option<PacketSocket>,
}

impl HpioRx {
    pub(super) fn new(
        dev: HpioDev,
        burst: usize,
        port: &str,
        interface: &str,
        counters: Arc<Counters>,
        promisc: Option<PacketSocket>,
    ) -> HpioRx {
        HpioRx {
            dev,
            iov: IoVecs::new(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            counters,
            _promisc: promisc,
        }
    }
}

impl RxQueue for HpioRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let start = batch.len();
        if pool.alloc_into(batch, max.min(self.iov.capacity())) == 0 {
            // No free slot: leave the frames in the ring for now.
            return Ok(Recv::Got(0));
        }
        let res = self.dev.readv(
            &mut self.iov,
            batch[start..].iter_mut().map(|p| p.hpio_recv_buf()),
        );
        let n = match res {
            Ok(n) => n.min(batch.len() - start),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // The legacy module parameter returns 0 instead of EAGAIN; a
            // signal is not an error either.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                while batch.len() > start {
                    if let Some(p) = batch.pop() {
                        pool.free(p);
                    }
                }
                self.stats.errors += 1;
                return Err(if e.raw_os_error() == Some(libc::ENODEV) {
                    PortError::other(
                        &self.port,
                        format!(
                            "interface `{}` disappeared (deleted or moved to another namespace)",
                            self.interface
                        ),
                    )
                } else {
                    PortError::io(
                        &self.port,
                        format!("receiving from /dev/hpio/{}", self.interface),
                        e,
                    )
                });
            }
        };
        let mut got = n;
        if n > 0 {
            let mut bytes = 0;
            let mut truncated = 0;
            for p in batch[start..start + n].iter_mut() {
                let hdr = p.finish_hpio_recv();
                // The module copied what fit and says how long it was.
                let cut = usize::from(hdr.pktlen) > p.capacity();
                truncated += u64::from(cut);
                bytes += if cut { 0 } else { p.len() as u64 };
            }
            if truncated != 0 {
                // Dropped, never handed on cut short.
                got = drop_received(pool, batch, start, n, |_, p| p.wire_len() > p.len());
                self.stats.drops += truncated;
                self.stats.oversize += truncated;
                Counters::add(&self.counters.rx_truncated, truncated);
            }
            self.stats.packets += got as u64;
            self.stats.bytes += bytes;
        }
        while batch.len() > start + got {
            if let Some(p) = batch.pop() {
                pool.free(p);
            }
        }
        Ok(Recv::Got(got))
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
