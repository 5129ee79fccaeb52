//! Telling systemd how the run is doing (`Type=notify` services): the
//! sd_notify protocol, a datagram of `KEY=VALUE` lines to the Unix socket
//! named by `$NOTIFY_SOCKET`. Without that variable every call does nothing.
//!
//! The messages are the `sd-notify` crate's [`NotifyState`] (and its
//! `CLOCK_MONOTONIC` reading for `MONOTONIC_USEC`); the datagram goes out
//! over std's `UnixDatagram` here, because `sd_notify::notify` 0.4 takes
//! the variable as a file path, so that an abstract socket (`@name`, which
//! systemd and test harnesses use) would not be reached.
//!
//! What `hpio-nf run` sends:
//! - [`ready`] once the ports are open and the workers started (and the
//!   metrics server listens): `READY=1` and a `STATUS=` line;
//! - every few seconds, `STATUS=` with a short summary ([`StatusUpdates`]);
//! - [`stopping`] when a signal or the sources end the run: `STOPPING=1`.
//!
//! For a reload (SIGHUP, `systemctl reload`, `hpio-nf ctl reload`), the code
//! doing it calls [`reloading`] before it re-reads the config (systemd then
//! waits, `ExecReload` returns at once) and [`ready`] when it is done,
//! whether the new config went in or was refused, with a status saying
//! which: systemd leaves the "reloading" state only on `READY=1`.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use hpio_nf::runtime::{Controller, Report};
use sd_notify::NotifyState;

/// How often the `STATUS=` summary is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The run is up: `READY=1` with `status`.
pub(crate) fn ready(status: &str) {
    let status = one_line(status);
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// A reload starts: `RELOADING=1` and `MONOTONIC_USEC=` (systemd wants
/// both); call [`ready`] when it is over.
#[allow(dead_code)] // called by the reload (SIGHUP / `ctl reload`)
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => {
            log::warn!("sd_notify: reading CLOCK_MONOTONIC: {e}");
            send(&[NotifyState::Reloading]);
        }
    }
}

/// The run is stopping: `STOPPING=1`.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// A `STATUS=` line alone.
pub(crate) fn status(status: &str) {
    send(&[NotifyState::Status(&one_line(status))]);
}

/// `STATUS=` takes one line: a multi-line message (an error with its
/// context) has its lines trimmed and joined with spaces.
fn one_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.join(" ")
}

/// Whether `$NOTIFY_SOCKET` is set (a service manager listens).
pub(crate) fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Sends `states` if `$NOTIFY_SOCKET` is set; a failure is logged once,
/// never fatal.
fn send(states: &[NotifyState<'_>]) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let mut msg = String::new();
    for s in states {
        msg.push_str(&s.to_string());
        msg.push('\n');
    }
    if let Err(e) = send_to(&target.to_string_lossy(), msg.as_bytes()) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "sd_notify: cannot send to NOTIFY_SOCKET={}: {e}",
                target.to_string_lossy()
            );
        }
    }
}

/// One datagram to `target`: a path, or `@name` for an abstract socket.
fn send_to(target: &str, msg: &[u8]) -> io::Result<()> {
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(target)?,
    };
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(msg, &addr)?;
    if sent != msg.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "datagram cut short",
        ));
    }
    Ok(())
}

/// A short summary of a report for `STATUS=`.
pub(crate) fn summary(r: &Report) -> String {
    let rx: u64 = r.ports.iter().map(|p| p.rx.packets).sum();
    let tx: u64 = r.ports.iter().map(|p| p.tx.packets).sum();
    let dropped: u64 = r.elements.iter().map(|e| e.counters.dropped()).sum();
    format!(
        "running {:.0} s: {} ports, {} elements, {} workers; rx {rx} tx {tx} packets, {dropped} dropped",
        r.elapsed_secs,
        r.ports.len(),
        r.elements.len(),
        r.workers.len()
    )
}

/// Sends a `STATUS=` summary every few seconds while it lives (only when a
/// service manager listens).
pub(crate) struct StatusUpdates {
    quit: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StatusUpdates {
    pub fn start(controller: Controller) -> StatusUpdates {
        if !enabled() {
            return StatusUpdates {
                quit: None,
                thread: None,
            };
        }
        let (quit, wait) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sd-status".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(STATUS_EVERY) {
                    status(&summary(&controller.report()));
                }
            })
            .map_err(|e| log::warn!("sd_notify: no status thread: {e}"))
            .ok();
        StatusUpdates {
            quit: Some(quit),
            thread,
        }
    }
}

impl Drop for StatusUpdates {
    fn drop(&mut self) {
        drop(self.quit.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_path_and_abstract_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        send_to(path.to_str().unwrap(), b"READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");

        let name = format!("hpio-nf-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(&format!("@{name}"), b"STOPPING=1\n").unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
        // Nobody there: an error (logged by `send`), not a panic.
        assert!(send_to("@hpio-nf-nobody-listens-here", b"x").is_err());
    }

    #[test]
    fn a_reload_is_announced_with_the_monotonic_clock_then_ready() {
        // The only test of this binary that sets NOTIFY_SOCKET.
        let name = format!("hpio-nf-reload-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
        reloading();
        ready("reload refused:\nbad.toml:3:1: unknown class");
        stopping();
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 256];
        let mut next = || {
            let n = sock.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let msg = next();
        let mut lines = msg.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{msg}"));
        assert!(usec > 0);
        assert_eq!(
            next(),
            "READY=1\nSTATUS=reload refused: bad.toml:3:1: unknown class\n"
        );
        assert_eq!(next(), "STOPPING=1\n");
        // Without the variable, nothing is sent and nothing fails.
        reloading();
        sock.set_nonblocking(true).unwrap();
        assert!(sock.recv(&mut buf).is_err());
    }
}
