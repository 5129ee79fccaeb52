//! The receive queue: one `readv` per burst straight into pool slots.

use std::io;
use std::sync::Arc;

use super::Counters;
use crate::packet::{Batch, Pool, MAX_FRAME};
use crate::port::{PortError, QueueStats, Recv, RxQueue};
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
        if n > 0 {
            let mut bytes = 0;
            let mut truncated = 0;
            for p in batch[start..start + n].iter_mut() {
                let hdr = p.finish_hpio_recv();
                truncated += u64::from(usize::from(hdr.pktlen) > MAX_FRAME);
                bytes += p.len() as u64;
            }
            self.stats.packets += n as u64;
            self.stats.bytes += bytes;
            if truncated != 0 {
                self.stats.errors += truncated;
                Counters::add(&self.counters.rx_truncated, truncated);
            }
        }
        while batch.len() > start + n {
            if let Some(p) = batch.pop() {
                pool.free(p);
            }
        }
        Ok(Recv::Got(n))
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
