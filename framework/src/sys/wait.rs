//! Sleeping until a descriptor is readable: `poll(2)` over a worker's
//! receive queues, and an `eventfd(2)` that wakes it for anything else
//! (control jobs, stop).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::cvt;

/// An `eventfd` counter, nonblocking: [`EventFd::signal`] makes it
/// readable, [`EventFd::drain`] clears it.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new counter at zero.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd() takes no pointers; the result is checked before use.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Adds one: a poll on it returns. Never blocks (a counter at its
    /// maximum, which a drained counter never nears, fails with `EAGAIN`,
    /// and is readable anyway).
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: the pointer describes `one`, 8 bytes living across the call;
        // the kernel only reads it.
        let _ = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                8,
            )
        };
    }

    /// Resets the counter to zero (nothing happens when it is zero).
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: the pointer describes `v`, 8 writable bytes living across
        // the call; any value the kernel writes is a valid u64.
        let _ = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut v as *mut u64).cast::<libc::c_void>(),
                8,
            )
        };
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The descriptors of one sleep, kept between sleeps so that refilling it
/// allocates nothing once it has grown.
#[derive(Debug, Default)]
pub(crate) struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// Empties the set.
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd`, to wait until it is readable (or fails).
    pub fn add(&mut self, fd: BorrowedFd<'_>) {
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }

    /// Sleeps until one descriptor is readable, has an error or hangs up,
    /// or `timeout` has passed (rounded up to whole milliseconds). Returns
    /// how many are ready (0: the time ran out; a signal counts as 0 too).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: the pointer and length describe `self.fds`, initialised
        // pollfd structs living across the call; the kernel writes only
        // their `revents`. A descriptor closed meanwhile is reported
        // (POLLNVAL), never dereferenced.
        let r = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) };
        match cvt(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Whether descriptor `i` of the last [`PollSet::wait`] was ready.
    pub fn ready(&self, i: usize) -> bool {
        self.fds.get(i).is_some_and(|p| p.revents != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eventfd_wakes_a_poll_and_drains() {
        let e = EventFd::new().unwrap();
        let mut set = PollSet::default();
        set.add(e.as_fd());
        // Nothing signalled: the time runs out.
        assert_eq!(set.wait(Duration::ZERO).unwrap(), 0);
        assert!(!set.ready(0));
        e.signal();
        e.signal();
        assert_eq!(set.wait(Duration::from_secs(60)).unwrap(), 1);
        assert!(set.ready(0));
        e.drain();
        assert_eq!(set.wait(Duration::ZERO).unwrap(), 0, "drained");
        set.clear();
        assert_eq!(set.wait(Duration::ZERO).unwrap(), 0, "an empty set");
    }

    #[test]
    fn a_readable_socket_wakes_a_poll() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let mut set = PollSet::default();
        let e = EventFd::new().unwrap();
        set.add(e.as_fd());
        set.add(b.as_fd());
        assert_eq!(set.wait(Duration::from_millis(1)).unwrap(), 0);
        a.send(b"x").unwrap();
        assert_eq!(set.wait(Duration::from_secs(60)).unwrap(), 1);
        assert!(!set.ready(0) && set.ready(1));
    }
}
