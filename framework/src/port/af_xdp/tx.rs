//! The transmit queue: a burst copied into UMEM frames, queued on the TX
//! ring, and the kernel kicked until it has taken them.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::packet::{Batch, Pool};
use crate::port::burst::{send_burst, Counters, Fault};
use crate::port::{PortError, QueueStats, TxQueue};
use crate::sys::xsk::XskTx;

/// Kicks per burst at most: copy mode sends a few dozen frames per call.
const MAX_KICKS: usize = 256;

/// One worker's handle on a socket's transmit half (shared with other
/// workers when there are more workers than queues).
pub(super) struct XdpTx {
    xsk: Arc<Mutex<XskTx>>,
    /// Longest frame sent (MTU + 22, at most a UMEM frame).
    limit: usize,
    port: String,
    interface: String,
    stats: QueueStats,
    counters: Arc<Counters>,
}

impl XdpTx {
    pub(super) fn new(
        xsk: Arc<Mutex<XskTx>>,
        limit: usize,
        port: &str,
        interface: &str,
        counters: Arc<Counters>,
    ) -> XdpTx {
        XdpTx {
            xsk,
            limit,
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, XskTx> {
        self.xsk.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Kicks until the kernel has taken what is queued or says to come back
/// later. Errors other than "later" are returned.
fn drain(xsk: &XskTx) -> io::Result<()> {
    for _ in 0..MAX_KICKS {
        match xsk.kick() {
            Ok(()) => return Ok(()),
            Err(e) => match e.raw_os_error() {
                // Copy mode: the call's budget ran out with frames left.
                Some(libc::EAGAIN) if xsk.queued() > 0 => continue,
                Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => return Ok(()),
                _ => return Err(e),
            },
        }
    }
    Ok(())
}

fn fault(e: io::Error) -> Fault {
    match e.raw_os_error() {
        Some(libc::EMSGSIZE) => Fault::Oversize,
        Some(libc::ENETDOWN) => Fault::LinkDown,
        Some(libc::ENXIO) | Some(libc::ENODEV) => Fault::Gone,
        _ => Fault::Fatal(e),
    }
}

impl TxQueue for XdpTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let (limit, chunk) = (self.limit, batch.len());
        let (o, stop) = {
            let mut xsk = self.lock();
            send_burst(
                batch,
                chunk,
                |pkts| {
                    xsk.reclaim();
                    if pkts[0].len() > limit {
                        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
                    }
                    let end = pkts
                        .iter()
                        .position(|p| p.len() > limit)
                        .unwrap_or(pkts.len());
                    let n = xsk.push(pkts[..end].iter().map(|p| p.data()));
                    match drain(&xsk) {
                        Err(e) if n == 0 => Err(e),
                        _ => Ok(n as usize),
                    }
                },
                |e, _| fault(e),
            )
        };
        pool.free_batch(batch);
        o.settle(&mut self.stats, &self.counters);
        match stop {
            None => Ok(()),
            Some(stop) => Err(stop.into_error(
                &self.port,
                &self.interface,
                &format!("interface `{}` (AF_XDP)", self.interface),
            )),
        }
    }

    /// Waits (up to a second) for the kernel to send what is queued.
    fn finish(&mut self) -> Result<(), PortError> {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut xsk = self.lock();
        while xsk.queued() > 0 && Instant::now() < deadline {
            let _ = drain(&xsk);
            xsk.reclaim();
            std::thread::sleep(Duration::from_micros(100));
        }
        xsk.reclaim();
        Ok(())
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
