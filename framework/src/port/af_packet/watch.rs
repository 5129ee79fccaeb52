//! Noticing that a receive queue's interface is gone.
//!
//! A packet socket bound to an interface that is deleted (or moved to
//! another namespace) simply stops receiving: a mapped ring stays empty and
//! `recvmmsg` reports `ENETDOWN` at most once, the same error as a link that
//! went down and will come back. So an idle receive queue looks, now and
//! then, whether its interface still exists under the index it was opened
//! with, and ends the run with a clear error when it does not (the transmit
//! side fails on its next send, see `tx.rs`).

use std::time::{Duration, Instant};

use crate::port::burst::disappeared;
use crate::port::PortError;
use crate::sys::netdev;

/// Empty receives between two looks at the clock.
const EMPTY_POLLS: u32 = 1024;
/// Least time between two looks at the interface (each costs a few system calls).
const EVERY: Duration = Duration::from_millis(100);

/// One receive queue's watch over its interface.
pub(crate) struct LinkWatch {
    port: String,
    interface: String,
    ifindex: u32,
    empty: u32,
    last: Instant,
}

impl LinkWatch {
    pub(crate) fn new(port: &str, interface: &str, ifindex: u32) -> LinkWatch {
        LinkWatch {
            port: port.to_string(),
            interface: interface.to_string(),
            ifindex,
            empty: 0,
            last: Instant::now(),
        }
    }

    /// Called when a receive found nothing: an error once the interface is gone.
    #[inline]
    pub(crate) fn idle(&mut self) -> Result<(), PortError> {
        self.empty += 1;
        if self.empty < EMPTY_POLLS {
            return Ok(());
        }
        self.empty = 0;
        if self.last.elapsed() < EVERY {
            return Ok(());
        }
        self.last = Instant::now();
        self.check()
    }

    /// An error unless the interface exists with the index the queue was opened on.
    pub(crate) fn check(&self) -> Result<(), PortError> {
        match netdev::if_index(&self.interface) {
            Ok(Some(i)) if i == self.ifindex => Ok(()),
            // A failing lookup says nothing about the interface: look again later.
            Err(_) => Ok(()),
            Ok(_) => Err(disappeared(&self.port, &self.interface)),
        }
    }
}
