//! `AF_PACKET` raw sockets and batched receive/transmit with `recvmmsg`/`sendmmsg`.
//!
//! A [`PacketSocket`] is created bound to nothing and with protocol 0, so it
//! receives nothing until [`PacketSocket::bind`] names an interface and a
//! protocol: options are set before any frame can queue up. A [`MsgVec`]
//! holds the `mmsghdr`/`iovec` arrays of one batched call, allocated once;
//! [`PacketSocket::recv_batch`] and [`PacketSocket::send_batch`] point them at
//! caller buffers for the duration of one call only, so frames move between
//! the kernel and those buffers with exactly one copy and no allocation.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr;

use super::cvt;
use super::rx_info::parse_auxdata;
#[cfg(test)]
use super::rx_info::TP_STATUS_CSUMNOTREADY;
use super::rx_info::{RxInfo, VnetHdr, VNET_HDR_LEN};

/// `ETH_P_ALL`: every protocol (bind protocol of receiving sockets).
pub(crate) const ETH_P_ALL: u16 = libc::ETH_P_ALL as u16;

/// Kernel counters of a receiving socket since the previous read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PacketStats {
    /// Frames that reached the socket (queued or dropped).
    pub packets: u64,
    /// Frames dropped because the socket's receive buffer was full.
    pub drops: u64,
}

/// A raw `AF_PACKET` socket (`SOCK_RAW`: whole Ethernet frames), nonblocking.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

/// Values `getsockopt` may write: every bit pattern of them is valid.
///
/// # Safety
/// Implement only for plain integer types and `repr(C)` structs of them.
unsafe trait Pod: Copy {}
// SAFETY: an integer: every bit pattern is a valid value.
unsafe impl Pod for libc::c_int {}
// SAFETY: a repr(C) struct of two c_uint.
unsafe impl Pod for libc::tpacket_stats {}

impl PacketSocket {
    /// The descriptor, for the ring's `mmap`.
    pub(super) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// A new socket with protocol 0: it receives nothing until bound.
    /// Fails with `EPERM` without `CAP_NET_RAW`.
    pub fn new() -> io::Result<PacketSocket> {
        let ty = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket() takes no pointers; the result is checked before use.
        let fd = cvt(unsafe { libc::socket(libc::AF_PACKET, ty, 0) })?;
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd })
    }

    /// Binds to interface `ifindex`. With `protocol` [`ETH_P_ALL`] the socket
    /// receives every frame of the interface; with 0 it receives nothing
    /// (a transmit-only socket) and sends through the interface.
    pub fn bind(&self, ifindex: u32, protocol: u16) -> io::Result<()> {
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as libc::c_ushort,
            sll_protocol: protocol.to_be(),
            sll_ifindex: ifindex as libc::c_int,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: the pointer and length describe `sll`, a valid sockaddr_ll
        // that lives across the call; bind only reads it.
        cvt(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                ptr::from_ref(&sll).cast::<libc::sockaddr>(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    pub(super) fn setsockopt<T>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
    ) -> io::Result<()> {
        // SAFETY: the pointer and length describe `value`, which lives
        // across the call; setsockopt only reads it.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                ptr::from_ref(value).cast::<libc::c_void>(),
                size_of::<T>() as libc::socklen_t,
            )
        })?;
        Ok(())
    }

    fn getsockopt<T: Pod>(&self, level: libc::c_int, name: libc::c_int) -> io::Result<T> {
        let mut v = MaybeUninit::<T>::zeroed();
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: the pointers describe `v` (size_of::<T>() writable bytes)
        // and `len`, both living across the call.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                v.as_mut_ptr().cast::<libc::c_void>(),
                &mut len,
            )
        })?;
        // SAFETY: `v` started zeroed and the kernel wrote at most its size;
        // `T: Pod` makes any bytes a valid `T`.
        Ok(unsafe { v.assume_init() })
    }

    /// `PACKET_IGNORE_OUTGOING`: do not receive frames sent on the interface
    /// (by this process or anyone else). Linux 4.20 and later.
    pub fn ignore_outgoing(&self) -> io::Result<()> {
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &(1 as libc::c_int),
        )
    }

    /// `PACKET_AUXDATA`: each received frame comes with a control message
    /// carrying, among others, the VLAN tag the kernel took out of the frame
    /// (see [`MsgVec::info`]; receive with [`MsgVec::with_auxdata`]).
    pub fn auxdata(&self) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_AUXDATA, &(1 as libc::c_int))
    }

    /// `PACKET_VNET_HDR`: each received frame comes with the `virtio_net_hdr`
    /// the kernel fills from the socket buffer (see [`VnetHdr`]): a merged
    /// (GRO) or unsegmented (GSO) frame arrives whole, with what is needed to
    /// cut it into wire-sized segments. Before a ring is set up, and only on
    /// receiving sockets: with it set, every frame sent needs a header too.
    pub fn vnet_hdr(&self) -> io::Result<()> {
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_VNET_HDR, &(1 as libc::c_int))
    }

    /// Whether `PACKET_VNET_HDR` is set.
    pub fn has_vnet_hdr(&self) -> io::Result<bool> {
        let v: libc::c_int = self.getsockopt(libc::SOL_PACKET, libc::PACKET_VNET_HDR)?;
        Ok(v != 0)
    }

    /// `PACKET_COPY_THRESH`: a frame too long for a `TPACKET_V2` ring frame
    /// is also queued whole on the socket (while the receive buffer has
    /// room), and its ring frame is flagged `TP_STATUS_COPY`; read it with
    /// [`PacketSocket::recv_vnet`].
    pub fn copy_thresh(&self) -> io::Result<()> {
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_COPY_THRESH,
            &(1 as libc::c_int),
        )
    }

    /// Receives one waiting frame without waiting, on a socket with
    /// [`PacketSocket::vnet_hdr`]: its header into `hdr`, the frame into
    /// `buf`. Returns the frame's full length (beyond `buf` when truncated)
    /// and the header. Nothing waiting: `WouldBlock`.
    pub fn recv_vnet(&self, buf: &mut [u8]) -> io::Result<(usize, VnetHdr)> {
        let mut hdr = [0u8; VNET_HDR_LEN];
        let mut iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
        ];
        // SAFETY: all zeroes is a valid msghdr (no name, no control).
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = iov.as_mut_ptr();
        m.msg_iovlen = iov.len() as _;
        // SAFETY: `m` points at two iovecs describing `hdr` and `buf`, both
        // writable and living across the call; no name or control buffer.
        // Nothing keeps the pointers after the call.
        let r = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut m,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((
            (r as usize).saturating_sub(VNET_HDR_LEN),
            VnetHdr::parse(&hdr),
        ))
    }

    /// `PACKET_QDISC_BYPASS`: transmit straight to the driver's queue,
    /// skipping the traffic-control layer.
    pub fn qdisc_bypass(&self) -> io::Result<()> {
        self.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &(1 as libc::c_int),
        )
    }

    /// Puts interface `ifindex` in promiscuous mode for as long as this
    /// socket is open (`PACKET_MR_PROMISC`; the kernel counts users, so
    /// closing the socket undoes it).
    pub fn add_promisc(&self, ifindex: u32) -> io::Result<()> {
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
    }

    /// Sets the receive buffer to `bytes`, past `net.core.rmem_max` when
    /// privileged (`SO_RCVBUFFORCE`), else as far as the limit allows.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<()> {
        self.set_buffer(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, bytes)
    }

    /// Sets the send buffer to `bytes` (see [`PacketSocket::set_recv_buffer`]).
    pub fn set_send_buffer(&self, bytes: usize) -> io::Result<()> {
        self.set_buffer(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, bytes)
    }

    fn set_buffer(&self, force: libc::c_int, plain: libc::c_int, bytes: usize) -> io::Result<()> {
        // The kernel doubles the value for bookkeeping overhead.
        let v = (bytes / 2).min(libc::c_int::MAX as usize) as libc::c_int;
        match self.setsockopt(libc::SOL_SOCKET, force, &v) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                self.setsockopt(libc::SOL_SOCKET, plain, &v)
            }
            r => r,
        }
    }

    /// The receive buffer size the kernel settled on, in bytes.
    pub fn recv_buffer(&self) -> io::Result<usize> {
        let v: libc::c_int = self.getsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF)?;
        Ok(v.max(0) as usize)
    }

    /// Creates a new `PACKET_FANOUT` group in hash mode with a kernel-chosen
    /// unique id and joins it; returns the id for the other members. The
    /// socket must be bound. With `defrag`, IP fragments are reassembled
    /// before the hash picks a member.
    pub fn fanout_create(&self, defrag: bool) -> io::Result<u16> {
        let flags = libc::PACKET_FANOUT_HASH
            | libc::PACKET_FANOUT_FLAG_UNIQUEID
            | if defrag {
                libc::PACKET_FANOUT_FLAG_DEFRAG
            } else {
                0
            };
        let arg = (flags << 16) as libc::c_int;
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
        let got: libc::c_int = self.getsockopt(libc::SOL_PACKET, libc::PACKET_FANOUT)?;
        Ok((got & 0xffff) as u16)
    }

    /// Joins the hash-mode fanout group `id` made by [`PacketSocket::fanout_create`]
    /// (same `defrag`). The socket must be bound to the same interface and protocol.
    pub fn fanout_join(&self, id: u16, defrag: bool) -> io::Result<()> {
        let flags = libc::PACKET_FANOUT_HASH
            | if defrag {
                libc::PACKET_FANOUT_FLAG_DEFRAG
            } else {
                0
            };
        let arg = ((flags << 16) | libc::c_uint::from(id)) as libc::c_int;
        self.setsockopt(libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
    }

    /// Reads and resets the kernel's counters (`PACKET_STATISTICS`).
    pub fn take_stats(&self) -> io::Result<PacketStats> {
        let s: libc::tpacket_stats = self.getsockopt(libc::SOL_PACKET, libc::PACKET_STATISTICS)?;
        Ok(PacketStats {
            // The kernel's tp_packets already includes tp_drops.
            packets: u64::from(s.tp_packets),
            drops: u64::from(s.tp_drops),
        })
    }

    /// Receives up to `msgs.capacity()` frames without waiting, one into
    /// each buffer `bufs` yields (in order), and returns how many arrived.
    /// Frame `i`'s full length is [`MsgVec::len`]`(i)`, which exceeds its
    /// buffer when the frame was truncated. Nothing waiting: `WouldBlock`.
    pub fn recv_batch<'a>(
        &self,
        msgs: &mut MsgVec,
        bufs: impl IntoIterator<Item = &'a mut [u8]>,
    ) -> io::Result<usize> {
        let n = msgs.fill(bufs.into_iter().map(|b| (b.as_mut_ptr(), b.len())));
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `msgs.fill` pointed the first `n` headers at `n` iovecs
        // (or `n` groups of three: a `virtio_net_hdr` and an overflow area,
        // both owned by `msgs`, which is borrowed mutably for the call,
        // around the caller's buffer), each describing a distinct buffer
        // that the caller lends mutably for 'a, which outlives this call;
        // the kernel writes at most `iov_len` bytes into each, and the
        // lengths and flags of the headers, and into the control buffers
        // (owned by `msgs`) at most `msg_controllen` bytes. No name buffers
        // are given. The pointers are not used after the call.
        let r = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                ptr::null_mut(),
            )
        };
        Ok(cvt(r)? as usize)
    }

    /// Sends the frames `bufs` yields (at most `msgs.capacity()`) without
    /// waiting and returns how many the kernel took, in order. An error on
    /// the first frame is returned as such; an error on a later one ends the
    /// batch early (the count says where: retry from there to see it).
    pub fn send_batch<'a>(
        &self,
        msgs: &mut MsgVec,
        bufs: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<usize> {
        let n = msgs.fill(bufs.into_iter().map(|b| (b.as_ptr().cast_mut(), b.len())));
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `msgs.fill` pointed the first `n` headers at `n` iovecs,
        // each describing a buffer the caller lends for 'a, which outlives
        // this call; sendmmsg only reads them (the `*mut` is what iovec
        // requires, nothing is written through it) and writes the headers'
        // `msg_len`. The pointers are not used after the call.
        let r = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                msgs.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        Ok(cvt(r)? as usize)
    }
}

/// Control-message room per received frame: one `cmsghdr` (16 bytes) and a
/// `tpacket_auxdata` (20), rounded up; `u64`s keep it aligned for `cmsghdr`.
type Control = [u64; 8];

/// The header arrays of one `recvmmsg`/`sendmmsg` call, allocated once.
pub(crate) struct MsgVec {
    hdrs: Box<[libc::mmsghdr]>,
    /// One iovec per header, or three with `vnet` (header, buffer, overflow).
    iovs: Box<[libc::iovec]>,
    /// One control buffer per header, or none.
    ctrl: Box<[Control]>,
    /// One `virtio_net_hdr` per header, or none (see [`MsgVec::with_vnet`]).
    vnet: Box<[[u8; VNET_HDR_LEN]]>,
    /// `over_len` bytes per header, past the caller's buffer.
    over: Box<[u8]>,
    over_len: usize,
}

// SAFETY: the raw pointers inside are written by `fill` and read by the
// kernel only within one `recv_batch`/`send_batch` call, which holds borrows
// of the buffers they point to; nothing dereferences them afterwards, so a
// `MsgVec` may move to another thread.
unsafe impl Send for MsgVec {}

impl std::fmt::Debug for MsgVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgVec")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl MsgVec {
    /// Room for `capacity` frames per call (at least 1).
    pub fn new(capacity: usize) -> MsgVec {
        let capacity = capacity.max(1);
        let iovs = vec![
            libc::iovec {
                iov_base: ptr::null_mut(),
                iov_len: 0,
            };
            capacity
        ];
        // SAFETY: `mmsghdr` is plain old data (integers and raw pointers):
        // all zeroes is a valid value (null name and control buffers).
        let zero: libc::mmsghdr = unsafe { std::mem::zeroed() };
        MsgVec {
            hdrs: vec![zero; capacity].into_boxed_slice(),
            iovs: iovs.into_boxed_slice(),
            ctrl: Box::new([]),
            vnet: Box::new([]),
            over: Box::new([]),
            over_len: 0,
        }
    }

    /// Receives on a socket with [`PacketSocket::vnet_hdr`]: each frame's
    /// `virtio_net_hdr` goes into its own place (see [`MsgVec::vnet`]), and
    /// what does not fit the caller's buffer continues into `overflow`
    /// bytes of this vector's own (see [`MsgVec::overflow`]), so that a
    /// super-frame of up to 64 KiB arrives whole. The overflow memory
    /// (`capacity * overflow` bytes) is reserved, not touched: pages are
    /// used only as long frames land in them.
    pub fn with_vnet(mut self, overflow: usize) -> MsgVec {
        let cap = self.capacity();
        let empty = libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        };
        self.iovs = vec![empty; 3 * cap].into_boxed_slice();
        self.vnet = vec![[0u8; VNET_HDR_LEN]; cap].into_boxed_slice();
        self.over = vec![0u8; cap * overflow].into_boxed_slice();
        self.over_len = overflow;
        self
    }

    /// Like [`MsgVec::new`], with room for the `PACKET_AUXDATA` control
    /// message of each frame (see [`PacketSocket::auxdata`]).
    pub fn with_auxdata(capacity: usize) -> MsgVec {
        let mut m = MsgVec::new(capacity);
        m.ctrl = vec![[0u64; 8]; m.capacity()].into_boxed_slice();
        m
    }

    /// Most frames one call handles.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Points header `i` at buffer `i` for the buffers of `bufs` (up to
    /// capacity) and returns how many were set.
    fn fill(&mut self, bufs: impl Iterator<Item = (*mut u8, usize)>) -> usize {
        let mut n = 0;
        let with_ctrl = !self.ctrl.is_empty();
        let per = if self.vnet.is_empty() { 1 } else { 3 };
        let over = self.over.as_mut_ptr();
        for ((hdr, iov), (base, len)) in self
            .hdrs
            .iter_mut()
            .zip(self.iovs.chunks_exact_mut(per))
            .zip(bufs)
        {
            let m = &mut hdr.msg_hdr;
            if per == 3 {
                iov[0].iov_base = self.vnet[n].as_mut_ptr().cast();
                iov[0].iov_len = VNET_HDR_LEN;
                iov[1].iov_base = base.cast::<libc::c_void>();
                iov[1].iov_len = len;
                // `over` holds `over_len` bytes per header.
                iov[2].iov_base = over.wrapping_add(n * self.over_len).cast();
                iov[2].iov_len = self.over_len;
            } else {
                iov[0].iov_base = base.cast::<libc::c_void>();
                iov[0].iov_len = len;
            }
            m.msg_name = ptr::null_mut();
            m.msg_namelen = 0;
            m.msg_iov = iov.as_mut_ptr();
            m.msg_iovlen = per as _;
            if with_ctrl {
                m.msg_control = self.ctrl[n].as_mut_ptr().cast();
                m.msg_controllen = size_of::<Control>() as _;
            } else {
                m.msg_control = ptr::null_mut();
                m.msg_controllen = 0;
            }
            m.msg_flags = 0;
            hdr.msg_len = 0;
            n += 1;
        }
        n
    }

    /// Bytes of frame `i` of the last call: its full length on receive
    /// (beyond its buffer when truncated), the bytes sent on transmit.
    #[inline]
    pub fn len(&self, i: usize) -> usize {
        let n = self.hdrs[i].msg_len as usize;
        if self.vnet.is_empty() {
            n
        } else {
            n.saturating_sub(VNET_HDR_LEN)
        }
    }

    /// The `virtio_net_hdr` of frame `i` of the last receive (zero without
    /// [`MsgVec::with_vnet`]).
    #[inline]
    pub fn vnet(&self, i: usize) -> VnetHdr {
        self.vnet.get(i).map(VnetHdr::parse).unwrap_or_default()
    }

    /// The bytes of frame `i` of the last receive past its buffer, up to
    /// the overflow's size (empty without [`MsgVec::with_vnet`]). Frame `i`
    /// is its buffer's first `buf_len` bytes followed by these.
    pub fn overflow(&self, i: usize, buf_len: usize) -> &[u8] {
        let used = self.len(i).saturating_sub(buf_len).min(self.over_len);
        let at = i * self.over_len;
        self.over.get(at..at + used).unwrap_or(&[])
    }

    /// What the kernel reported beside frame `i` of the last receive (the
    /// VLAN tag it took out, whether the checksum is ready), from its
    /// `PACKET_AUXDATA` control message (nothing without one).
    #[inline]
    pub fn info(&self, i: usize) -> RxInfo {
        // `msg_controllen` is a size_t with glibc, a socklen_t with musl.
        #[allow(clippy::unnecessary_cast)]
        let used = (self.hdrs[i].msg_hdr.msg_controllen as usize).min(size_of::<Control>());
        let vnet = self.vnet(i);
        let Some(ctrl) = self.ctrl.get(i) else {
            return RxInfo {
                vnet,
                ..RxInfo::default()
            };
        };
        let mut b = [0u8; size_of::<Control>()];
        for (d, w) in b.chunks_exact_mut(8).zip(ctrl) {
            d.copy_from_slice(&w.to_ne_bytes());
        }
        RxInfo {
            vnet,
            ..parse_auxdata(&b[..used]).unwrap_or_default()
        }
    }

    /// Frame `i` of the last receive did not fit its buffer (nor, with
    /// [`MsgVec::with_vnet`], the overflow).
    #[inline]
    pub fn truncated(&self, i: usize) -> bool {
        self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    /// IEEE 802 "local experimental" EtherType: nothing else on `lo` uses it.
    const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

    /// A token unique to this test run and call, to tell our frames from
    /// anything else crossing `lo`.
    fn token() -> [u8; 8] {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let mut t = [0u8; 8];
        t[..4].copy_from_slice(&std::process::id().to_be_bytes());
        t[4..].copy_from_slice(&n.to_be_bytes());
        t
    }

    /// An Ethernet frame of `len` bytes carrying `token` and sequence `seq`.
    fn frame(token: [u8; 8], seq: u32, len: usize) -> Vec<u8> {
        testkit::frame::marked(u16::from_be_bytes(ETHERTYPE), &token, seq, len)
    }

    fn ours(token: [u8; 8], f: &[u8]) -> bool {
        f.len() >= 26 && f[12..14] == ETHERTYPE && f[14..22] == token
    }

    fn lo_rx() -> PacketSocket {
        let s = PacketSocket::new().expect("AF_PACKET socket (tests run as root)");
        s.ignore_outgoing().unwrap();
        s.bind(1, ETH_P_ALL).unwrap();
        s
    }

    fn lo_tx() -> PacketSocket {
        let s = PacketSocket::new().unwrap();
        s.bind(1, 0).unwrap();
        s
    }

    /// Receives our frames from `s` until `want` arrived or a second passed;
    /// returns (frame prefix up to the buffer, reported length, truncated).
    fn collect(
        s: &PacketSocket,
        token: [u8; 8],
        want: usize,
        buf_len: usize,
    ) -> Vec<(Vec<u8>, usize, bool)> {
        let mut msgs = MsgVec::new(16);
        let mut bufs = vec![vec![0u8; buf_len]; 16];
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1);
        while out.len() < want && Instant::now() < deadline {
            match s.recv_batch(&mut msgs, bufs.iter_mut().map(|b| b.as_mut_slice())) {
                Ok(n) => {
                    for (i, b) in bufs.iter().enumerate().take(n) {
                        let got = msgs.len(i).min(buf_len);
                        if ours(token, &b[..got]) {
                            out.push((b[..got].to_vec(), msgs.len(i), msgs.truncated(i)));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
        out
    }

    #[test]
    fn batch_round_trip_on_loopback() {
        let _lo = crate::sys::lo_lock();
        let rx = lo_rx();
        let tx = lo_tx();
        let t = token();
        let frames: Vec<Vec<u8>> = (0..40).map(|i| frame(t, i, 60 + i as usize * 7)).collect();
        let mut msgs = MsgVec::new(32);
        let mut sent = 0;
        while sent < frames.len() {
            let n = tx
                .send_batch(&mut msgs, frames[sent..].iter().map(|f| f.as_slice()))
                .unwrap();
            assert!(n > 0 && n <= 32);
            for i in 0..n {
                assert_eq!(msgs.len(i), frames[sent + i].len(), "bytes sent");
            }
            sent += n;
        }
        let got = collect(&rx, t, frames.len(), 2048);
        // Loopback shows each frame once going out (ignored) and once coming
        // in: exactly one copy each, intact, in order.
        assert_eq!(got.len(), frames.len());
        for ((g, len, trunc), f) in got.iter().zip(&frames) {
            assert_eq!(g, f);
            assert_eq!(*len, f.len());
            assert!(!trunc);
        }
    }

    #[test]
    fn without_ignore_outgoing_loopback_frames_come_twice() {
        let _lo = crate::sys::lo_lock();
        let rx = PacketSocket::new().unwrap();
        rx.bind(1, ETH_P_ALL).unwrap();
        let tx = lo_tx();
        let t = token();
        let f = frame(t, 0, 64);
        tx.send_batch(&mut MsgVec::new(1), [f.as_slice()]).unwrap();
        assert_eq!(collect(&rx, t, 3, 2048).len(), 2);
    }

    #[test]
    fn nothing_waiting_would_block_and_empty_batches_are_no_calls() {
        let _lo = crate::sys::lo_lock();
        let rx = lo_rx();
        let mut msgs = MsgVec::new(4);
        assert_eq!(rx.recv_batch(&mut msgs, std::iter::empty()).unwrap(), 0);
        assert_eq!(
            lo_tx().send_batch(&mut msgs, std::iter::empty()).unwrap(),
            0
        );
        // Drain whatever `lo` carried meanwhile, then expect WouldBlock soon.
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match rx.recv_batch(&mut msgs, [&mut buf[..]]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Ok(1) => assert!(Instant::now() < deadline, "lo never went quiet"),
                r => panic!("unexpected {r:?}"),
            }
        }
    }

    #[test]
    fn msg_trunc_reports_the_full_length_of_a_big_frame() {
        let _lo = crate::sys::lo_lock();
        let rx = lo_rx();
        let tx = lo_tx();
        let t = token();
        let big = frame(t, 1, 4000);
        tx.send_batch(&mut MsgVec::new(1), [big.as_slice()])
            .unwrap();
        let got = collect(&rx, t, 1, 2048);
        assert_eq!(got.len(), 1);
        let (prefix, len, trunc) = &got[0];
        assert_eq!(*len, 4000);
        assert!(*trunc);
        assert_eq!(prefix[..], big[..2048]);
    }

    #[test]
    fn full_receive_buffer_drops_are_counted() {
        let _lo = crate::sys::lo_lock();
        let rx = lo_rx();
        rx.set_recv_buffer(1).unwrap(); // the kernel's minimum
        let small = rx.recv_buffer().unwrap();
        assert!(small < 8192, "buffer {small}");
        rx.take_stats().unwrap();
        let tx = lo_tx();
        let t = token();
        let frames: Vec<Vec<u8>> = (0..64).map(|i| frame(t, i, 1000)).collect();
        let mut msgs = MsgVec::new(64);
        let mut sent = 0;
        while sent < frames.len() {
            sent += tx
                .send_batch(&mut msgs, frames[sent..].iter().map(|f| f.as_slice()))
                .unwrap();
        }
        let s = rx.take_stats().unwrap();
        assert!(s.drops > 0, "{s:?}");
        assert!(s.packets >= 64, "{s:?}");
        // Reading resets.
        let again = rx.take_stats().unwrap();
        assert!(again.drops < s.drops, "{again:?}");
        rx.set_recv_buffer(1 << 20).unwrap();
        assert!(rx.recv_buffer().unwrap() >= 1 << 20);
    }

    #[test]
    fn fanout_group_members_share_the_frames() {
        let _lo = crate::sys::lo_lock();
        let a = lo_rx();
        let b = lo_rx();
        let id = a.fanout_create(false).unwrap();
        b.fanout_join(id, false).unwrap();
        // A second group gets another id.
        let c = lo_rx();
        assert_ne!(c.fanout_create(false).unwrap(), id);
        // A member must use the group's mode and flags.
        let d = lo_rx();
        assert!(d.fanout_join(id, true).is_err());
        let tx = lo_tx();
        let t = token();
        let frames: Vec<Vec<u8>> = (0..32).map(|i| frame(t, i, 80)).collect();
        let mut msgs = MsgVec::new(32);
        let mut sent = 0;
        while sent < frames.len() {
            sent += tx
                .send_batch(&mut msgs, frames[sent..].iter().map(|f| f.as_slice()))
                .unwrap();
        }
        let got_a = collect(&a, t, 32, 256);
        let got_b = collect(&b, t, 32 - got_a.len(), 256);
        assert_eq!(
            got_a.len() + got_b.len(),
            32,
            "every frame reaches one member"
        );
        // `c` is its own group and sees everything.
        assert_eq!(collect(&c, t, 32, 256).len(), 32);
    }

    #[test]
    fn promisc_and_qdisc_bypass_options_are_accepted() {
        let s = lo_tx();
        s.qdisc_bypass().unwrap();
        s.add_promisc(1).unwrap();
        s.set_send_buffer(1 << 20).unwrap();
        // An unknown interface is refused.
        let e = s.add_promisc(u32::MAX >> 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        let e = PacketSocket::new()
            .unwrap()
            .bind(u32::MAX >> 1, ETH_P_ALL)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn auxdata_reports_the_vlan_tag_the_kernel_took_out() {
        let _lo = crate::sys::lo_lock();
        // On `lo` the kernel moves an 802.1Q tag out of the frame before
        // packet sockets see it; PACKET_AUXDATA gives it back.
        let rx = lo_rx();
        rx.auxdata().unwrap();
        let tx = lo_tx();
        let t = token();
        let tagged = testkit::frame::tag(&frame(t, 7, 80), 0x8100, 0x2064); // PCP 1, VID 100
        let plain = frame(t, 8, 80);
        tx.send_batch(&mut MsgVec::new(2), [&tagged[..], &plain[..]])
            .unwrap();
        let mut msgs = MsgVec::with_auxdata(8);
        let mut bufs = vec![[0u8; 256]; 8];
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1);
        while seen.len() < 2 && Instant::now() < deadline {
            let n = match rx.recv_batch(&mut msgs, bufs.iter_mut().map(|b| &mut b[..])) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            for (i, b) in bufs.iter().enumerate().take(n) {
                if ours(t, &b[..msgs.len(i)]) {
                    seen.push((b[..msgs.len(i)].to_vec(), msgs.info(i).vlan));
                }
            }
        }
        assert_eq!(seen.len(), 2);
        // The tagged frame arrives without its tag, which auxdata reports.
        let mut untagged = tagged.clone();
        untagged.drain(12..16);
        assert_eq!(seen[0], (untagged, Some((0x8100, 0x2064))));
        assert_eq!(seen[1], (plain, None));
        // Without control buffers there is nothing to report.
        assert_eq!(MsgVec::new(1).info(0), RxInfo::default());
    }

    #[test]
    fn auxdata_parsing_is_bounded() {
        assert_eq!(parse_auxdata(&[]), None);
        assert_eq!(parse_auxdata(&[0xff; 64]), None);
        let mut b = [0u8; 40];
        b[..8].copy_from_slice(&36usize.to_ne_bytes());
        b[8..12].copy_from_slice(&libc::SOL_PACKET.to_ne_bytes());
        b[12..16].copy_from_slice(&libc::PACKET_AUXDATA.to_ne_bytes());
        let status = libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        b[16..20].copy_from_slice(&status.to_ne_bytes());
        b[32..34].copy_from_slice(&5u16.to_ne_bytes());
        b[34..36].copy_from_slice(&0x88a8u16.to_ne_bytes());
        let tagged = RxInfo {
            vlan: Some((0x88a8, 5)),
            csum_not_ready: false,
            vnet: VnetHdr::default(),
        };
        assert_eq!(parse_auxdata(&b), Some(tagged));
        assert_eq!(parse_auxdata(&b[..30]), None, "cut short");
        b[16..20].copy_from_slice(&TP_STATUS_CSUMNOTREADY.to_ne_bytes());
        let partial = RxInfo {
            vlan: None,
            csum_not_ready: true,
            vnet: VnetHdr::default(),
        };
        assert_eq!(
            parse_auxdata(&b),
            Some(partial),
            "no tag, checksum not ready"
        );
    }

    #[test]
    fn send_errors_come_back_per_call() {
        let _lo = crate::sys::lo_lock();
        let tx = lo_tx();
        let mut msgs = MsgVec::new(4);
        // A frame shorter than an Ethernet header is refused.
        let e = tx.send_batch(&mut msgs, [&[0u8; 4][..]]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        // A good frame followed by a bad one: the good one is sent.
        let t = token();
        let good = frame(t, 0, 64);
        assert_eq!(
            tx.send_batch(&mut msgs, [&good[..], &[0u8; 4][..]])
                .unwrap(),
            1
        );
    }
}
