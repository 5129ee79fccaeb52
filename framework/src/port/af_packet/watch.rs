//! Noticing that a queue's interface is gone, and following it when it
//! comes back.
//!
//! A packet socket bound to an interface that is deleted (or moved to
//! another namespace) simply stops receiving: a mapped ring stays empty and
//! `recvmmsg` reports `ENETDOWN` at most once, the same error as a link that
//! went down and will come back; a transmit socket fails with `ENXIO`. So
//! an idle receive queue looks, now and then, whether its interface still
//! exists under the index it was opened with (a transmit queue looks when
//! a send failed that way). While the interface is gone, nothing arrives
//! and what is sent to it is dropped and counted (`tx.drops`, `tx.errors`);
//! once an interface of the same name exists again (re-created, or moved
//! back), the socket is bound to it (and made promiscuous again if it was)
//! and traffic flows on. A receive queue of a fanout group (`queues` > 1)
//! cannot be re-bound (the kernel refuses): its run ends with a clear error.

use std::time::{Duration, Instant};

use crate::port::burst::disappeared;
use crate::port::PortError;
use crate::sys::{netdev, PacketSocket};

/// Empty receives between two looks at the clock.
const EMPTY_POLLS: u32 = 1024;
/// Least time between two looks at the interface (each costs a few system calls).
const EVERY: Duration = Duration::from_millis(100);

/// One queue's watch over its interface.
pub(crate) struct LinkWatch {
    port: String,
    interface: String,
    ifindex: u32,
    /// The protocol the socket binds with (`ETH_P_ALL` to receive, 0 to send).
    protocol: u16,
    /// This socket holds the interface's promiscuous membership.
    promisc: bool,
    /// The interface was seen gone and has not come back yet.
    gone: bool,
    empty: u32,
    last: Instant,
}

impl LinkWatch {
    pub(crate) fn new(port: &str, interface: &str, ifindex: u32, protocol: u16) -> LinkWatch {
        LinkWatch {
            port: port.to_string(),
            interface: interface.to_string(),
            ifindex,
            protocol,
            promisc: false,
            gone: false,
            empty: 0,
            last: Instant::now(),
        }
    }

    /// Marks this socket as the one holding the promiscuous membership
    /// (made again on the interface that replaces a deleted one).
    pub(super) fn with_promisc(mut self, promisc: bool) -> LinkWatch {
        self.promisc = promisc;
        self
    }

    /// Called when a receive found nothing: looks at the interface now and
    /// then, re-binding `sock` when it was re-created.
    #[inline]
    pub(crate) fn idle(&mut self, sock: &PacketSocket) -> Result<(), PortError> {
        self.empty += 1;
        if self.empty < EMPTY_POLLS {
            return Ok(());
        }
        self.empty = 0;
        self.look(sock)
    }

    /// Called after the worker slept with the queue empty: a look (at most
    /// every [`EVERY`]), since a sleeping worker makes too few empty
    /// receives for [`LinkWatch::idle`] to get there.
    pub(crate) fn slept(&mut self, sock: &PacketSocket) -> Result<(), PortError> {
        self.look(sock)
    }

    /// [`LinkWatch::idle`] for a socket that cannot follow a re-created
    /// interface (AF_XDP: bound to the old device's queue, its XDP program
    /// gone with that device): an error once the interface is gone.
    #[inline]
    pub(crate) fn idle_unbound(&mut self) -> Result<(), PortError> {
        self.empty += 1;
        if self.empty < EMPTY_POLLS {
            return Ok(());
        }
        self.empty = 0;
        self.slept_unbound()
    }

    /// [`LinkWatch::slept`] for a socket that cannot follow its interface.
    pub(crate) fn slept_unbound(&mut self) -> Result<(), PortError> {
        if self.last.elapsed() < EVERY {
            return Ok(());
        }
        self.last = Instant::now();
        match netdev::if_index(&self.interface) {
            Ok(Some(i)) if i != self.ifindex => Err(disappeared(&self.port, &self.interface)),
            Ok(None) => Err(disappeared(&self.port, &self.interface)),
            // A failing lookup says nothing about the interface: look again later.
            _ => Ok(()),
        }
    }

    /// At most every [`EVERY`]: whether the interface still exists with the
    /// socket's index; when it exists under another index, `sock` is bound
    /// to that one. An error only when the socket cannot be re-bound.
    pub(super) fn look(&mut self, sock: &PacketSocket) -> Result<(), PortError> {
        if self.last.elapsed() < EVERY {
            return Ok(());
        }
        self.last = Instant::now();
        match netdev::if_index(&self.interface) {
            Ok(Some(i)) if i == self.ifindex => Ok(()),
            // A failing lookup says nothing about the interface: look again later.
            Err(_) => Ok(()),
            Ok(None) => {
                if !self.gone {
                    self.gone = true;
                    log::warn!(
                        "port `{}`: interface `{}` disappeared (deleted or moved to another \
                         namespace); waiting for it to come back (what is sent to it meanwhile \
                         is dropped and counted)",
                        self.port,
                        self.interface
                    );
                }
                Ok(())
            }
            Ok(Some(i)) => self.rebind(sock, i),
        }
    }

    /// Binds `sock` to the interface's new index `ifindex`.
    fn rebind(&mut self, sock: &PacketSocket, ifindex: u32) -> Result<(), PortError> {
        let gone = || disappeared(&self.port, &self.interface);
        sock.bind(ifindex, self.protocol).map_err(|e| {
            log::error!(
                "port `{}`: interface `{}` is back (index {ifindex}) but the socket \
                 cannot follow it: {e}",
                self.port,
                self.interface
            );
            gone()
        })?;
        if self.promisc {
            // Not fatal: the interface may not be up yet; frames for this
            // host's own address still arrive.
            if let Err(e) = sock.add_promisc(ifindex) {
                log::warn!(
                    "port `{}`: interface `{}`: promiscuous mode not restored: {e}",
                    self.port,
                    self.interface
                );
            }
        }
        log::warn!(
            "port `{}`: interface `{}` is back (index {ifindex}, was {}): traffic flows again",
            self.port,
            self.interface,
            self.ifindex
        );
        self.ifindex = ifindex;
        self.gone = false;
        Ok(())
    }
}
