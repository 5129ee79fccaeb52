//! The receive queue: one `readv` per burst straight into pool slots.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use crate::packet::{Batch, Pool};
use crate::port::burst::{disappeared, recv_slots, Counters};
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
        let (dev, iov) = (&self.dev, &mut self.iov);
        let (stats, port, interface) = (&mut self.stats, &self.port, &self.interface);
        let n = recv_slots(
            pool,
            batch,
            max.min(iov.capacity()),
            |slots| dev.readv(iov, slots.iter_mut().map(|p| p.hpio_recv_buf())),
            // (The legacy module parameter returns 0 instead of EAGAIN.)
            |e| {
                stats.errors += 1;
                Some(if e.raw_os_error() == Some(libc::ENODEV) {
                    disappeared(port, interface)
                } else {
                    PortError::io(port, format!("receiving from /dev/hpio/{interface}"), e)
                })
            },
        )?;
        if n == 0 {
            return Ok(Recv::Got(0));
        }
        let mut got = n;
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
            self.counters.truncated(&mut self.stats, truncated);
        }
        self.stats.packets += got as u64;
        self.stats.bytes += bytes;
        Ok(Recv::Got(got))
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        // The module's poll: readable once the bound ring holds a frame.
        Some(self.dev.as_fd())
    }

    fn polled(&self) -> bool {
        // The module's reads drive the NIC (its busy_poll parameter, on by
        // default); where it is off, the short sleeps cost a few wake-ups.
        true
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
