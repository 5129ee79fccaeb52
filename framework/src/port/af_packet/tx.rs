//! The transmit queue: `sendmmsg` of the whole burst straight from the slots.

use std::sync::Arc;

use super::watch::LinkWatch;
use crate::packet::{Batch, Pool};
use crate::port::burst::{send_burst, Counters, Fault};
use crate::port::{PortError, QueueStats, TxQueue};
use crate::sys::{MsgVec, PacketSocket};

/// One worker's transmit socket.
pub(super) struct AfPacketTx {
    sock: PacketSocket,
    msgs: MsgVec,
    port: String,
    interface: String,
    stats: QueueStats,
    counters: Arc<Counters>,
    /// Follows the interface when it is deleted and re-created.
    watch: LinkWatch,
}

impl AfPacketTx {
    pub(super) fn new(
        sock: PacketSocket,
        burst: usize,
        port: &str,
        interface: &str,
        counters: Arc<Counters>,
        watch: LinkWatch,
    ) -> AfPacketTx {
        AfPacketTx {
            sock,
            msgs: MsgVec::new(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            counters,
            watch,
        }
    }
}

impl TxQueue for AfPacketTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let (sock, msgs) = (&self.sock, &mut self.msgs);
        let mut gone = false;
        let (o, stop) = send_burst(
            batch,
            msgs.capacity(),
            |pkts| sock.send_batch(msgs, pkts.iter().map(|p| p.data())),
            |e, _| match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => Fault::Full,
                // Longer than the MTU allows.
                Some(libc::EMSGSIZE) => Fault::Oversize,
                // Too short or malformed.
                Some(libc::EINVAL) => Fault::Refused,
                Some(libc::ENETDOWN) => Fault::LinkDown,
                // The interface is gone: the burst is dropped and counted
                // like one sent to a link that is down, and the watch
                // follows the interface when it comes back.
                Some(libc::ENXIO) | Some(libc::ENODEV) => {
                    gone = true;
                    Fault::LinkDown
                }
                _ => Fault::Fatal(e),
            },
        );
        pool.free_batch(batch);
        o.settle(&mut self.stats, &self.counters);
        if gone {
            self.watch.look(&self.sock)?;
        }
        match stop {
            None => Ok(()),
            Some(stop) => Err(stop.into_error(
                &self.port,
                &self.interface,
                &format!("interface `{}`", self.interface),
            )),
        }
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
