//! The transmit queue: `sendmmsg` of the whole burst straight from the slots.

use std::sync::Arc;

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
}

impl AfPacketTx {
    pub(super) fn new(
        sock: PacketSocket,
        burst: usize,
        port: &str,
        interface: &str,
        counters: Arc<Counters>,
    ) -> AfPacketTx {
        AfPacketTx {
            sock,
            msgs: MsgVec::new(burst),
            port: port.to_string(),
            interface: interface.to_string(),
            stats: QueueStats::default(),
            counters,
        }
    }
}

impl TxQueue for AfPacketTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let (sock, msgs) = (&self.sock, &mut self.msgs);
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
                Some(libc::ENXIO) | Some(libc::ENODEV) => Fault::Gone,
                _ => Fault::Fatal(e),
            },
        );
        pool.free_batch(batch);
        o.settle(&mut self.stats, &self.counters);
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
