//! `/dev/hpio/<ifname>`: the hpio kernel module's device files, their
//! ioctls, and batched `readv`/`writev` straight into and out of
//! caller-owned buffers (one packet per iovec).
//!
//! The structs and ioctl numbers mirror `kmod/include/uapi/hpio.h` (see
//! `docs/kmod.md`, "ioctls"); the layout tests below pin their sizes and
//! offsets. An [`IoVecs`] holds the iovec array of one call, allocated once;
//! [`HpioDev::readv`] and [`HpioDev::writev`] point it at caller buffers for
//! the duration of one call only.

use std::fs::OpenOptions;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::cvt;

/// `HPIO_IOC_GET_INFO`: `_IOR('h', 0xa0, struct hpio_info)`.
const IOC_GET_INFO: libc::c_ulong = 0x8050_68a0;
/// `HPIO_IOC_BIND_QUEUE`: `_IOW('h', 0xa1, __u32)`.
const IOC_BIND_QUEUE: libc::c_ulong = 0x4004_68a1;
/// `HPIO_IOC_GET_STATS`: `_IOWR('h', 0xa2, struct hpio_stats_req)`.
const IOC_GET_STATS: libc::c_ulong = 0xc048_68a2;
/// Queue index meaning "the device total" (`HPIO_QUEUE_ALL`).
pub(crate) const QUEUE_ALL: u32 = u32::MAX;
/// `hpio_info.flags`: the device is administratively up (`HPIO_INFO_UP`).
pub(crate) const INFO_UP: u32 = 8;

/// `struct hpio_info` (80 bytes).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct HpioInfo {
    /// `HPIO_ABI_VERSION` (1).
    pub abi_version: u32,
    /// `HPIO_HDR_VERSION` (2).
    pub hdr_version: u8,
    /// 12.
    pub hdrlen: u8,
    reserved0: u16,
    /// Interface index, 0 once the device is gone.
    pub ifindex: u32,
    /// MTU.
    pub mtu: u32,
    /// Queue indexes of the device.
    pub nqueues: u32,
    /// Bound queue, or `HPIO_QUEUE_CPU`.
    pub queue: u32,
    /// Slots per ring while readers exist.
    pub ring_size: u32,
    /// `HPIO_INFO_*` flags.
    pub flags: u32,
    /// Current interface name, NUL-padded.
    pub ifname: [u8; 16],
    reserved: [u64; 4],
}

/// `struct hpio_stats` (64 bytes): counters since the device appeared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct HpioStats {
    /// Frames queued to a ring.
    pub rx_packets: u64,
    /// Frames dropped: ring full.
    pub rx_drops: u64,
    /// Frames lost: bad user buffer, no memory...
    pub rx_errors: u64,
    /// Frames the driver accepted.
    pub tx_packets: u64,
    /// Packets refused and frames the driver failed.
    pub tx_errors: u64,
    /// Frames cut to fit a read buffer.
    pub truncated: u64,
    reserved: [u64; 2],
}

/// `struct hpio_stats_req` (72 bytes).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct StatsReq {
    queue: u32,
    reserved: u32,
    stats: HpioStats,
}

/// An open `/dev/hpio/<ifname>` file, nonblocking.
#[derive(Debug)]
pub(crate) struct HpioDev {
    fd: OwnedFd,
}

/// The iovec array of one `readv`/`writev`, allocated once.
pub(crate) struct IoVecs {
    v: Vec<libc::iovec>,
}

// SAFETY: the raw pointers in the iovecs are handed to the kernel only
// within one `readv`/`writev` call, which holds borrows of the buffers they
// point to; nothing dereferences them afterwards, so an `IoVecs` may move
// to another thread.
unsafe impl Send for IoVecs {}

impl std::fmt::Debug for IoVecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoVecs")
            .field("capacity", &self.v.len())
            .finish()
    }
}

impl IoVecs {
    /// Room for `n` iovecs (at least 1, at most `IOV_MAX` = 1024).
    pub fn new(n: usize) -> IoVecs {
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        IoVecs {
            v: vec![empty; n.clamp(1, 1024)],
        }
    }

    /// Most buffers one call takes.
    pub fn capacity(&self) -> usize {
        self.v.len()
    }

    /// Points the first iovecs at `bufs` (as many as fit); returns how many.
    fn fill(&mut self, bufs: impl Iterator<Item = (*mut u8, usize)>) -> usize {
        let mut n = 0;
        for (slot, (p, len)) in self.v.iter_mut().zip(bufs) {
            slot.iov_base = p.cast::<libc::c_void>();
            slot.iov_len = len;
            n += 1;
        }
        n
    }
}

impl std::os::fd::AsFd for HpioDev {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl HpioDev {
    /// Opens the device file at `path`, nonblocking: for reading (the
    /// module starts taking the interface's frames) or for writing only
    /// (the receive path is left alone).
    pub fn open(path: &Path, read: bool) -> io::Result<HpioDev> {
        let f = OpenOptions::new()
            .read(read)
            .write(!read)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        Ok(HpioDev { fd: f.into() })
    }

    /// `HPIO_IOC_GET_INFO`.
    pub fn info(&self) -> io::Result<HpioInfo> {
        let mut info = HpioInfo::default();
        // SAFETY: the pointer describes `info`, a repr(C) struct of exactly
        // the size the ioctl number encodes (80 bytes), living across the
        // call; the kernel writes only into it. All-integer fields: any
        // bytes it writes are valid.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), IOC_GET_INFO, &mut info) })?;
        Ok(info)
    }

    /// `HPIO_IOC_BIND_QUEUE`: reads use ring `queue` and sends TX queue
    /// `queue % real_num_tx_queues` from now on.
    pub fn bind_queue(&self, queue: u32) -> io::Result<()> {
        // SAFETY: the pointer describes `queue`, a u32 living across the
        // call, which the kernel only reads.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), IOC_BIND_QUEUE, &queue) })?;
        Ok(())
    }

    /// `HPIO_IOC_GET_STATS` for queue `queue` ([`QUEUE_ALL`]: the device total).
    pub fn stats(&self, queue: u32) -> io::Result<HpioStats> {
        let mut req = StatsReq {
            queue,
            ..StatsReq::default()
        };
        // SAFETY: the pointer describes `req`, a repr(C) struct of exactly
        // the size the ioctl number encodes (72 bytes), living across the
        // call; the kernel reads `queue`/`reserved` and writes `stats`
        // (integers only: any bytes are valid).
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), IOC_GET_STATS, &mut req) })?;
        Ok(req.stats)
    }

    /// Receives up to `iov.capacity()` packets, one per buffer `bufs`
    /// yields (each gets `hpio_hdr` + frame), and returns how many arrived.
    /// `EAGAIN` when none is waiting.
    pub fn readv<'a>(
        &self,
        iov: &mut IoVecs,
        bufs: impl IntoIterator<Item = &'a mut [u8]>,
    ) -> io::Result<usize> {
        let n = iov.fill(bufs.into_iter().map(|b| (b.as_mut_ptr(), b.len())));
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `fill` pointed the first `n` iovecs at `n` distinct
        // buffers that the caller lends mutably for 'a, which outlives this
        // call; the kernel writes at most `iov_len` bytes into each. The
        // pointers are not used after the call.
        let r = unsafe { libc::readv(self.fd.as_raw_fd(), iov.v.as_ptr(), n as libc::c_int) };
        cvt_size(r)
    }

    /// Transmits the packets `bufs` yields (each `hpio_hdr` + frame, at most
    /// `iov.capacity()`) and returns how many the driver took, in order.
    pub fn writev<'a>(
        &self,
        iov: &mut IoVecs,
        bufs: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<usize> {
        let n = iov.fill(bufs.into_iter().map(|b| (b.as_ptr().cast_mut(), b.len())));
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `fill` pointed the first `n` iovecs at `n` buffers the
        // caller lends for 'a, which outlives this call; writev only reads
        // them (the `*mut` is what iovec requires). The pointers are not
        // used after the call.
        let r = unsafe { libc::writev(self.fd.as_raw_fd(), iov.v.as_ptr(), n as libc::c_int) };
        cvt_size(r)
    }
}

/// A `ssize_t` result: negative is failure with `errno` set.
fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

const _: () = assert!(size_of::<HpioInfo>() == 80);
const _: () = assert!(size_of::<HpioStats>() == 64);
const _: () = assert!(size_of::<StatsReq>() == 72);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn layouts_match_the_uapi_header() {
        assert_eq!(offset_of!(HpioInfo, hdr_version), 4);
        assert_eq!(offset_of!(HpioInfo, ifindex), 8);
        assert_eq!(offset_of!(HpioInfo, nqueues), 16);
        assert_eq!(offset_of!(HpioInfo, flags), 28);
        assert_eq!(offset_of!(HpioInfo, ifname), 32);
        assert_eq!(offset_of!(HpioInfo, reserved), 48);
        assert_eq!(offset_of!(StatsReq, stats), 8);
        assert_eq!(offset_of!(HpioStats, truncated), 40);
    }

    #[test]
    fn ioctl_numbers_encode_the_sizes() {
        // _IOC(dir, 'h', nr, size): dir << 30 | size << 16 | 'h' << 8 | nr.
        let ioc = |dir: u64, nr: u64, size: usize| {
            (dir << 30) | ((size as libc::c_ulong) << 16) | (0x68 << 8) | nr
        };
        assert_eq!(IOC_GET_INFO, ioc(2, 0xa0, size_of::<HpioInfo>()));
        assert_eq!(IOC_BIND_QUEUE, ioc(1, 0xa1, 4));
        assert_eq!(IOC_GET_STATS, ioc(3, 0xa2, size_of::<StatsReq>()));
    }

    #[test]
    fn missing_node_is_enoent_and_other_files_refuse_the_ioctls() {
        let e = HpioDev::open(Path::new("/dev/hpio/hpnf-nosuch0"), true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        // /dev/null is no hpio device: its ioctls fail, they do not crash.
        let d = HpioDev::open(Path::new("/dev/null"), false).unwrap();
        assert!(d.info().is_err());
        assert!(d.stats(QUEUE_ALL).is_err());
        assert!(d.bind_queue(0).is_err());
        // writev on /dev/null "sends" bytes, not packets; nothing to check but no fault.
        let mut iov = IoVecs::new(4);
        assert_eq!(iov.capacity(), 4);
        assert_eq!(d.writev(&mut iov, std::iter::empty()).unwrap(), 0);
    }
}
