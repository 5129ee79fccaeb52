//! AF_XDP sockets (`XSK`): frames move between the kernel and a memory
//! area of the process (the UMEM, cut into equal frames) through four
//! rings (see `xsk_ring`).
//!
//! One socket serves one queue of one interface. Its UMEM is split in two
//! halves with separate owners, so that receiving and transmitting can run
//! on different threads with no lock: the receive half ([`XskRx`]) owns
//! the first `ring` frames, which circulate between the fill ring (handed
//! to the kernel, empty) and the RX ring (filled, handed back); the
//! transmit half ([`XskTx`]) owns the next `ring` frames, which circulate
//! between its free list, the TX ring and the completion ring. Each ring
//! has as many entries as its half has frames, so no ring can overflow.
//!
//! Binding asks for zero-copy (`XDP_ZEROCOPY`: the NIC reads and writes the
//! UMEM itself) when the caller allows it and falls back to copy mode
//! (`XDP_COPY`: the kernel copies each frame) when the driver has no
//! zero-copy support; [`XskSocket::zerocopy`] says which it got. With
//! `XDP_USE_NEED_WAKEUP` the kernel says, in a ring's flags, when it wants a
//! system call to go on ([`XskRx::wake`], [`XskTx::kick`]); otherwise it
//! runs without any.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::Arc;

use super::cvt;
use super::xsk_ring::{Mapping, Ring};

/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17, `include/uapi/linux/if_xdp.h`):
/// frames one `sendto` sends at most in copy mode.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// Frames one `sendto` sends at most in copy mode unless raised.
const TX_BUDGET: u32 = 32;

/// What binding asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyMode {
    /// Zero-copy if the driver can, copy mode otherwise.
    Auto,
    /// Zero-copy or fail.
    Zero,
    /// Copy mode.
    Copy,
}

/// How to open a socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XskConfig {
    pub ifindex: u32,
    pub queue: u32,
    /// Entries per ring and frames per half (a power of two).
    pub ring: u32,
    /// Bytes per UMEM frame (2048 or 4096).
    pub frame: u32,
    pub rx: bool,
    pub tx: bool,
    pub copy: CopyMode,
    pub need_wakeup: bool,
}

/// Kernel counters of a socket (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct XskStats {
    /// Frames dropped on receive: too long for a frame, or no free frame.
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Transmit descriptors the kernel refused (bad address or length).
    pub tx_invalid: u64,
}

/// The descriptor and the UMEM, shared by the two halves. Fields drop in
/// order: the socket closes before the UMEM is unmapped.
#[derive(Debug)]
struct Shared {
    fd: OwnedFd,
    umem: Mapping,
}

impl Shared {
    fn setsockopt<T>(&self, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: the pointer and length describe `value`, which lives
        // across the call; setsockopt only reads it.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                name,
                ptr::from_ref(value).cast::<libc::c_void>(),
                size_of::<T>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// `getsockopt(SOL_XDP, name)` into a `T` that is plain integers.
    fn getsockopt<T: Copy>(&self, name: libc::c_int) -> io::Result<T> {
        let mut v = MaybeUninit::<T>::zeroed();
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: the pointers describe `v` (size_of::<T>() writable bytes)
        // and `len`, both living across the call.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_XDP,
                name,
                v.as_mut_ptr().cast::<libc::c_void>(),
                &mut len,
            )
        })?;
        // SAFETY: `v` started zeroed and the kernel wrote at most its size;
        // the callers' `T`s (xdp_mmap_offsets, xdp_statistics, xdp_options)
        // are structs of integers, valid for any bytes.
        Ok(unsafe { v.assume_init() })
    }

    /// A zero-length `sendto`/`recvfrom` that only wakes the kernel up.
    fn poke(&self, send: bool) -> io::Result<()> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: a null buffer of length 0 and no address: the kernel
        // reads and writes no user memory.
        let r = unsafe {
            if send {
                libc::sendto(fd, ptr::null(), 0, libc::MSG_DONTWAIT, ptr::null(), 0)
            } else {
                libc::recvfrom(
                    fd,
                    ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            }
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The frame of `len` bytes at `addr` as a slice, when it lies in `range`.
    fn frame(&self, addr: u64, len: u32, range: &std::ops::Range<u64>) -> Option<&[u8]> {
        let end = addr.checked_add(u64::from(len))?;
        if addr < range.start || end > range.end || end > self.umem.len as u64 {
            return None;
        }
        // SAFETY: inside the UMEM mapping (checked), which lives as long as
        // `self`; the range belongs to the half asking, whose frames the
        // kernel does not write while user space holds them.
        Some(unsafe {
            std::slice::from_raw_parts(self.umem.ptr.as_ptr().add(addr as usize), len as usize)
        })
    }
}

/// An opened, bound socket, to be split into its halves.
#[derive(Debug)]
pub(crate) struct XskSocket {
    shared: Arc<Shared>,
    rx: Option<(Ring, Ring)>,
    tx: Option<(Ring, Ring)>,
    ring: u32,
    frame: u32,
    zerocopy: bool,
    need_wakeup: bool,
    /// Frames one `sendto` sends at most in copy mode.
    tx_budget: u32,
}

impl XskSocket {
    /// Opens a socket on `cfg.ifindex` queue `cfg.queue` and binds it, with
    /// zero-copy or copy mode as `cfg.copy` says. Fails with `EPERM`
    /// without `CAP_NET_RAW`, `EINVAL` for a queue the interface lacks,
    /// `EBUSY` when another socket serves the queue.
    pub fn open(cfg: &XskConfig) -> io::Result<XskSocket> {
        match cfg.copy {
            CopyMode::Auto => match Self::open_bound(cfg, true) {
                Ok(s) => Ok(s),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(libc::EPROTONOSUPPORT)
                    ) =>
                {
                    Self::open_bound(cfg, false)
                }
                Err(e) => Err(e),
            },
            CopyMode::Zero => Self::open_bound(cfg, true),
            CopyMode::Copy => Self::open_bound(cfg, false),
        }
    }

    fn open_bound(cfg: &XskConfig, zerocopy: bool) -> io::Result<XskSocket> {
        if !cfg.ring.is_power_of_two() || !cfg.frame.is_power_of_two() || !(cfg.rx || cfg.tx) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        // SAFETY: socket() takes no pointers; the result is checked before use.
        let fd = cvt(unsafe { libc::socket(libc::AF_XDP, ty, 0) })?;
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let umem_len = 2 * cfg.ring as usize * cfg.frame as usize;
        let shared = Shared {
            fd,
            umem: Mapping::new(None, umem_len, 0)?,
        };
        let reg = libc::xdp_umem_reg {
            addr: shared.umem.ptr.as_ptr() as u64,
            len: umem_len as u64,
            chunk_size: cfg.frame,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        shared.setsockopt(libc::XDP_UMEM_REG, &reg)?;
        shared.setsockopt(libc::XDP_UMEM_FILL_RING, &cfg.ring)?;
        shared.setsockopt(libc::XDP_UMEM_COMPLETION_RING, &cfg.ring)?;
        if cfg.rx {
            shared.setsockopt(libc::XDP_RX_RING, &cfg.ring)?;
        }
        let mut tx_budget = TX_BUDGET;
        if cfg.tx {
            shared.setsockopt(libc::XDP_TX_RING, &cfg.ring)?;
            // Copy mode sends at most this many frames per `sendto` (32
            // unless raised; Linux 6.17 and later take 32..=ring): a
            // burst of up to a ring then takes one call. Older kernels
            // refuse the option, and keep 32.
            if shared.setsockopt(XDP_MAX_TX_SKB_BUDGET, &cfg.ring).is_ok() {
                tx_budget = cfg.ring;
            }
        }
        let off: libc::xdp_mmap_offsets = shared.getsockopt(libc::XDP_MMAP_OFFSETS)?;
        let fd = shared.fd.as_raw_fd();
        let map = |o: &libc::xdp_ring_offset, entry: usize, pgoff: u64| -> io::Result<Ring> {
            let len = Ring::map_len(o, cfg.ring, entry);
            Ring::new(Mapping::new(Some(fd), len, pgoff)?, o, cfg.ring, entry)
        };
        let mut fill = map(&off.fr, 8, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = map(&off.cr, 8, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let rx = if cfg.rx {
            // Every frame of the receive half goes to the kernel, empty.
            for k in 0..cfg.ring {
                fill.put_addr(k, u64::from(k) * u64::from(cfg.frame));
            }
            fill.submit(cfg.ring);
            Some((map(&off.rx, 16, libc::XDP_PGOFF_RX_RING as u64)?, fill))
        } else {
            None
        };
        let tx = if cfg.tx {
            Some((map(&off.tx, 16, libc::XDP_PGOFF_TX_RING as u64)?, comp))
        } else {
            None
        };
        bind(fd, cfg, zerocopy)?;
        let opts: libc::xdp_options = shared.getsockopt(libc::XDP_OPTIONS)?;
        Ok(XskSocket {
            shared: Arc::new(shared),
            rx,
            tx,
            ring: cfg.ring,
            frame: cfg.frame,
            need_wakeup: cfg.need_wakeup,
            tx_budget,
            zerocopy: opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0,
        })
    }

    /// The descriptor (for the XSKMAP entry).
    pub fn raw_fd(&self) -> RawFd {
        self.shared.fd.as_raw_fd()
    }

    /// True when bound in zero-copy mode.
    pub fn zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// Frames one kick ([`XskTx::kick`]) sends at most in copy mode: the
    /// ring size where the kernel lets it be raised (6.17 and later), else 32.
    pub fn tx_budget(&self) -> u32 {
        self.tx_budget
    }

    /// The receive and transmit halves (those opened).
    pub fn split(self) -> (Option<XskRx>, Option<XskTx>) {
        let (ring, frame) = (u64::from(self.ring), u64::from(self.frame));
        let rx = self.rx.map(|(rx, fill)| XskRx {
            shared: self.shared.clone(),
            rx,
            fill,
            frames: 0..ring * frame,
            mask: !(frame - 1),
        });
        let tx = self.tx.map(|(tx, comp)| XskTx {
            shared: self.shared.clone(),
            tx,
            comp,
            free: (0..ring).map(|k| (ring + k) * frame).collect(),
            total: self.ring as usize,
            need_wakeup: self.need_wakeup,
            frames: ring * frame..2 * ring * frame,
            frame: self.frame as usize,
            mask: !(frame - 1),
        });
        (rx, tx)
    }
}

/// Binds socket `fd` to `cfg`'s interface and queue, in zero-copy or copy mode.
fn bind(fd: RawFd, cfg: &XskConfig, zerocopy: bool) -> io::Result<()> {
    let mut flags = if zerocopy {
        libc::XDP_ZEROCOPY
    } else {
        libc::XDP_COPY
    };
    if cfg.need_wakeup {
        flags |= libc::XDP_USE_NEED_WAKEUP;
    }
    let sxdp = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: cfg.ifindex,
        sxdp_queue_id: cfg.queue,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: the pointer and length describe `sxdp`, a valid
    // sockaddr_xdp that lives across the call; bind only reads it.
    cvt(unsafe {
        libc::bind(
            fd,
            ptr::from_ref(&sxdp).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// The receive half of a socket.
#[derive(Debug)]
pub(crate) struct XskRx {
    shared: Arc<Shared>,
    rx: Ring,
    fill: Ring,
    frames: std::ops::Range<u64>,
    mask: u64,
}

impl XskRx {
    /// Hands up to `max` received frames to `f`, oldest first, and gives
    /// their UMEM frames back to the kernel. `f` returns false to stop
    /// before taking that frame (it stays for the next call). Returns how
    /// many frames were taken, and how many of those the kernel described
    /// outside this half's frames (skipped: never seen with a sane kernel).
    pub fn recv(&mut self, max: usize, mut f: impl FnMut(&[u8]) -> bool) -> (u32, u32) {
        let n = self.rx.available().min(max as u32);
        let (mut taken, mut bad) = (0, 0);
        while taken < n {
            let d = self.rx.desc_at(taken);
            match self.shared.frame(d.addr, d.len, &self.frames) {
                Some(frame) => {
                    if !f(frame) {
                        break;
                    }
                }
                None => bad += 1,
            }
            // The fill ring has room for every frame of the half.
            self.fill.put_addr(taken, d.addr & self.mask);
            taken += 1;
        }
        if taken > 0 {
            self.rx.release(taken);
            self.fill.submit(taken);
        }
        (taken, bad)
    }

    /// Frames waiting in the RX ring.
    pub fn waiting(&self) -> u32 {
        self.rx.available()
    }

    /// Wakes the kernel up when it asks for it (need-wakeup mode, fill
    /// ring flagged): a `recvfrom` that takes nothing. Costs one load otherwise.
    pub fn wake(&self) -> io::Result<()> {
        if self.fill.needs_wakeup() {
            match self.shared.poke(false) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The socket's kernel counters.
    pub fn stats(&self) -> io::Result<XskStats> {
        stats(&self.shared)
    }

    /// The descriptor (idle workers sleep on it in `poll`: readable once
    /// the RX ring holds a frame).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.shared.fd.as_fd()
    }
}

fn stats(shared: &Shared) -> io::Result<XskStats> {
    let s: libc::xdp_statistics = shared.getsockopt(libc::XDP_STATISTICS)?;
    Ok(XskStats {
        rx_dropped: s.rx_dropped,
        rx_ring_full: s.rx_ring_full,
        tx_invalid: s.tx_invalid_descs,
    })
}

/// The transmit half of a socket.
#[derive(Debug)]
pub(crate) struct XskTx {
    shared: Arc<Shared>,
    tx: Ring,
    comp: Ring,
    /// UMEM frames of this half not in the kernel's hands.
    free: Vec<u64>,
    /// Frames of the half.
    total: usize,
    /// Bound with `XDP_USE_NEED_WAKEUP`.
    need_wakeup: bool,
    frames: std::ops::Range<u64>,
    frame: usize,
    mask: u64,
}

impl XskTx {
    /// Takes back the frames the kernel has sent (completion ring).
    pub fn reclaim(&mut self) -> u32 {
        let n = self.comp.available();
        for k in 0..n {
            let addr = self.comp.addr_at(k) & self.mask;
            // Only this half's frames go back on its free list.
            if self.frames.contains(&addr) && self.free.len() < self.total {
                self.free.push(addr);
            }
        }
        if n > 0 {
            self.comp.release(n);
        }
        n
    }

    /// Copies frames from `frames` into free UMEM frames and queues them
    /// on the TX ring, as many as there are free frames and ring entries,
    /// stopping before the first longer than [`max_frame`](Self::max_frame).
    /// Returns how many were queued (the caller kicks).
    pub fn push<'a>(&mut self, frames: impl Iterator<Item = &'a [u8]>) -> u32 {
        let room = self.tx.free().min(self.free.len() as u32);
        let mut k = 0;
        for data in frames.take(room as usize) {
            if data.len() > self.frame {
                break;
            }
            let Some(addr) = self.free.pop() else { break };
            debug_assert!(self.frames.contains(&addr));
            // SAFETY: `addr` is a frame of this half (its free list holds
            // nothing else: see `reclaim`), `frame` bytes long inside the
            // UMEM; the kernel is done with it (it came back on the
            // completion ring, or was never handed over), and this half is
            // its only user-space owner; `data.len() <= frame`.
            unsafe {
                ptr::copy_nonoverlapping(
                    data.as_ptr(),
                    self.shared.umem.ptr.as_ptr().add(addr as usize),
                    data.len(),
                );
            }
            self.tx.put_desc(
                k,
                libc::xdp_desc {
                    addr,
                    len: data.len() as u32,
                    options: 0,
                },
            );
            k += 1;
        }
        if k > 0 {
            self.tx.submit(k);
        }
        k
    }

    /// Descriptors queued on the TX ring that the kernel has not taken yet.
    pub fn queued(&self) -> u32 {
        self.tx.pending()
    }

    /// Frames handed to the kernel and not completed yet.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.total - self.free.len()
    }

    /// Tells the kernel to send what is queued, when it asks for it (always
    /// in copy mode, which sends from the system call). `WouldBlock` (or
    /// `EBUSY`, `ENOBUFS`): it sent part and wants another call later.
    pub fn kick(&self) -> io::Result<()> {
        if !self.need_wakeup || self.tx.needs_wakeup() {
            self.shared.poke(true)
        } else {
            Ok(())
        }
    }

    /// The socket's kernel counters.
    #[cfg(test)]
    pub fn stats(&self) -> io::Result<XskStats> {
        stats(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket on `lo` (ifindex 1) queue 0: 64-slot rings, 2048-byte frames,
    /// need-wakeup on.
    fn lo_config(rx: bool, copy: CopyMode) -> XskConfig {
        XskConfig {
            ifindex: 1,
            queue: 0,
            ring: 64,
            frame: 2048,
            rx,
            tx: true,
            copy,
            need_wakeup: true,
        }
    }

    /// Opens `cfg`, waiting (up to 2 s) while a socket that another test
    /// closed a moment ago still holds the queue (released in the background).
    fn open_when_free(cfg: &XskConfig) -> XskSocket {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match XskSocket::open(cfg) {
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => return r.expect("AF_XDP socket on lo"),
            }
        }
    }

    /// Needs root: a socket on `lo` queue 0 in copy mode (no XDP program:
    /// nothing is received, but it can send), bound, split, sends frames
    /// that come back on the completion ring.
    #[test]
    fn open_bind_send_and_complete_on_lo() {
        if !testkit::require(
            "sys::xsk::open_bind_send_and_complete_on_lo",
            &[testkit::Need::Root],
        ) {
            return;
        }
        let _lo = super::super::lo_lock();
        let cfg = lo_config(true, CopyMode::Auto);
        let s = open_when_free(&cfg);
        assert!(!s.zerocopy(), "lo has no zero-copy");
        assert!(s.raw_fd() >= 0);
        // A second socket on the same queue is refused (one UMEM per queue).
        let e = XskSocket::open(&cfg).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY), "{e}");
        let (rx, tx) = s.split();
        let (mut rx, mut tx) = (rx.unwrap(), tx.unwrap());
        assert_eq!(rx.recv(16, |_| true), (0, 0));
        rx.wake().unwrap();
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[12..14].copy_from_slice(&[0x88, 0xb6]);
        let long = vec![0u8; 4000];
        let frames = [&f[..], &f[..], &long[..], &f[..]];
        assert_eq!(
            tx.push(frames.iter().copied()),
            2,
            "stops before the long one"
        );
        assert_eq!(tx.in_flight(), 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut done = 0;
        while done < 2 && std::time::Instant::now() < deadline {
            let _ = tx.kick();
            done += tx.reclaim();
        }
        assert_eq!(done, 2);
        assert_eq!((tx.queued(), tx.in_flight()), (0, 0));
        assert_eq!(tx.stats().unwrap().tx_invalid, 0);
        // Ring sizes must be powers of two.
        let bad = XskConfig { ring: 100, ..cfg };
        assert!(XskSocket::open(&bad).is_err());
    }

    /// Needs root: in copy mode one kick sends at most the socket's budget
    /// (32 by default): the socket raises it to its ring where the kernel
    /// allows (6.17 and later), so that one kick sends a whole burst of 40.
    #[test]
    fn one_kick_sends_up_to_the_budget_on_lo() {
        if !testkit::require(
            "sys::xsk::one_kick_sends_up_to_the_budget_on_lo",
            &[testkit::Need::Root],
        ) {
            return;
        }
        let _lo = super::super::lo_lock();
        let cfg = lo_config(false, CopyMode::Copy);
        let s = open_when_free(&cfg);
        let budget = s.tx_budget();
        assert!(budget == 64 || budget == TX_BUDGET, "{budget}");
        // Kernels from 6.17 on take the option: the socket must have raised it.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut v = release.split(|c: char| !c.is_ascii_digit());
        let (major, minor): (u32, u32) = (
            v.next().unwrap().parse().unwrap(),
            v.next().unwrap().parse().unwrap(),
        );
        if (major, minor) >= (6, 17) {
            assert_eq!(budget, 64, "kernel {release}");
        }
        let (_, tx) = s.split();
        let mut tx = tx.unwrap();
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[12..14].copy_from_slice(&[0x88, 0xb6]);
        assert_eq!(tx.push(std::iter::repeat_n(&f[..], 40)), 40);
        let r = tx.kick();
        let left = tx.queued();
        if budget == 64 {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(left, 0, "one kick sends all 40");
        } else {
            assert_eq!(left, 8, "one kick sends 32 of 40");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while tx.in_flight() > 0 && std::time::Instant::now() < deadline {
            let _ = tx.kick();
            tx.reclaim();
        }
        assert_eq!((tx.queued(), tx.in_flight()), (0, 0));
    }
}
