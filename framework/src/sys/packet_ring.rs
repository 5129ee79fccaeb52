//! Mapped receive rings: the kernel copies each frame into a buffer shared
//! with user space as it arrives, and user space reads it from there with
//! no system call.
//!
//! Two layouts:
//! - [`FrameRing`] (`TPACKET_V2`): fixed-size frame slots, each with its own
//!   status word. A frame is user space's as soon as the kernel has written
//!   it, and goes back to the kernel as soon as it has been read.
//! - [`BlockRing`] (`TPACKET_V3`): frames packed into blocks; a whole block
//!   is handed over when it is full or when its retire timeout expires, so
//!   at low rates a frame may wait up to that timeout.
//!
//! Both give each frame to a callback as a slice that lives only for the
//! call, and check every offset the kernel wrote against the mapping before
//! making a slice of it.

use std::io;
use std::mem::size_of;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

use super::rx_info::{RxInfo, VnetHdr, SUPER_FRAME_MAX, VNET_HDR_LEN};
use super::PacketSocket;

/// Offset of `block_status` in a V3 block (after `version` and `offset_to_priv`).
const BLOCK_STATUS: usize = 8;
/// Offset of `num_pkts` in a V3 block.
const NUM_PKTS: usize = 12;
/// Offset of `offset_to_first_pkt` in a V3 block.
const FIRST_PKT: usize = 16;

/// A ring's mapping and the socket it belongs to (unmapped on drop, before
/// the socket closes).
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    sock: PacketSocket,
}

// SAFETY: the mapping is owned by this value alone (no copy of the pointer
// escapes it); moving it to another thread moves that ownership.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Sets ring version `version` with request `req` on `sock` (not bound
    /// yet) and maps the `len` bytes of the ring.
    fn new<R>(sock: PacketSocket, version: u32, req: &R, len: usize) -> io::Result<Mapping> {
        sock.setsockopt(
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(version as libc::c_int),
        )?;
        sock.setsockopt(libc::SOL_PACKET, libc::PACKET_RX_RING, req)?;
        // SAFETY: a fresh shared mapping of the socket's ring (no address
        // hint, nothing else mapped over); the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                sock.raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping { ptr, len, sock })
    }

    /// The status word at `off`, shared with the kernel; `None` when it
    /// would not lie inside the mapping or is misaligned.
    fn status(&self, off: usize) -> Option<&AtomicU32> {
        if off + 4 > self.len || off % 4 != 0 {
            return None;
        }
        // SAFETY: the word lies inside the mapping (checked above), which
        // lives as long as `self`; the mapping is page-aligned and `off` a
        // multiple of 4, so the word is aligned; the kernel also accesses
        // it atomically.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) })
    }

    /// Reads a `T` at `off`; `None` when it would not lie inside the mapping.
    /// The caller owns that part of the ring (its status says so).
    fn read<T: Copy>(&self, off: usize) -> Option<T> {
        if off.checked_add(size_of::<T>())? > self.len {
            return None;
        }
        // SAFETY: the bytes lie inside the mapping (checked above); the
        // kernel does not write them while user space owns them; the ring
        // headers read here are plain integers, valid for any bytes;
        // read_unaligned needs no alignment.
        Some(unsafe { ptr::read_unaligned(self.ptr.as_ptr().add(off).cast::<T>()) })
    }

    /// The `len` bytes at `off`; `None` when they would not lie inside the
    /// mapping. The caller owns that part of the ring until it hands it
    /// back, which it does only after the slice is gone (see `recv`).
    fn bytes(&self, off: usize, len: usize) -> Option<&[u8]> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: the bytes lie inside the mapping (checked above), which
        // lives as long as the borrow of `self`; the kernel does not write
        // them while user space owns them.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; every slice of
        // it borrowed `self`, so none is left.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The `virtio_net_hdr` the kernel wrote just before the frame at `frame`
/// (zero when that would lie outside the mapping).
#[inline]
fn read_vnet(map: &Mapping, frame: usize) -> VnetHdr {
    frame
        .checked_sub(VNET_HDR_LEN)
        .and_then(|at| map.read::<[u8; VNET_HDR_LEN]>(at))
        .map(|b| VnetHdr::parse(&b))
        .unwrap_or_default()
}

/// Checks ring geometry: blocks of a power of two of at least a page,
/// holding whole frames of a multiple of 16 bytes.
fn check_geometry(block_size: usize, blocks: usize, frame_size: usize) -> io::Result<()> {
    if !block_size.is_power_of_two()
        || block_size < 4096
        || blocks == 0
        || frame_size < 64
        || frame_size % 16 != 0
        || frame_size > block_size
    {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// What a driver needs of a receive ring of either layout.
pub(crate) trait RxRing: Send {
    /// The socket (to bind it, join a fanout group, read its counters).
    fn socket(&self) -> &PacketSocket;

    /// Calls `f(frame, wire_len, ts_ns, info)` for up to `max` waiting
    /// frames, in order, and returns how many; stops early after a frame
    /// for which `f` returns false. `frame` holds the bytes captured (the
    /// whole frame unless it did not fit the ring's frame); `wire_len` its
    /// length on the wire; `ts_ns` the kernel's receive time in wall-clock
    /// ns; `info` the VLAN tag the kernel took out of it, whether its
    /// checksum is ready and, when the socket was given `PACKET_VNET_HDR`
    /// before the ring, its `virtio_net_hdr`.
    fn recv(&mut self, max: usize, f: impl FnMut(&[u8], usize, u64, RxInfo) -> bool) -> usize;
}

/// A `TPACKET_V2` receive ring: fixed-size frame slots.
#[derive(Debug)]
pub(crate) struct FrameRing {
    map: Mapping,
    block_size: usize,
    frame_size: usize,
    frames_per_block: usize,
    frames: usize,
    /// The frame to read next.
    next: usize,
    /// Frames carry a `virtio_net_hdr` before them.
    vnet: bool,
    /// With `vnet`: where a frame too long for a ring frame, queued whole on
    /// the socket (`TP_STATUS_COPY`), is read to (empty otherwise).
    copy: Box<[u8]>,
}

impl FrameRing {
    /// Sets a ring of `blocks` blocks of `block_size` bytes (a power of two,
    /// at least a page), cut into frames of `frame_size` bytes (a multiple
    /// of 16; a frame holds a 32-byte header, the link address and about
    /// `frame_size - 66` bytes of frame), on `sock`, which must not be bound
    /// yet, and maps it.
    ///
    /// When `sock` has `PACKET_VNET_HDR`, each frame comes with its
    /// `virtio_net_hdr`, and a frame longer than a ring frame (a super-frame
    /// of up to 64 KiB) is also queued whole on the socket
    /// (`PACKET_COPY_THRESH`), read from there into a buffer of the ring's
    /// and handed over whole in place of the ring's cut copy.
    pub fn new(
        sock: PacketSocket,
        block_size: usize,
        blocks: usize,
        frame_size: usize,
    ) -> io::Result<FrameRing> {
        check_geometry(block_size, blocks, frame_size)?;
        let vnet = sock.has_vnet_hdr()?;
        if vnet {
            sock.copy_thresh()?;
        }
        let frames_per_block = block_size / frame_size;
        let frames = frames_per_block * blocks;
        let req = libc::tpacket_req {
            tp_block_size: block_size as libc::c_uint,
            tp_block_nr: blocks as libc::c_uint,
            tp_frame_size: frame_size as libc::c_uint,
            tp_frame_nr: frames as libc::c_uint,
        };
        let version = libc::tpacket_versions::TPACKET_V2 as u32;
        let map = Mapping::new(sock, version, &req, block_size * blocks)?;
        let copy = if vnet {
            vec![0u8; SUPER_FRAME_MAX].into_boxed_slice()
        } else {
            Box::new([])
        };
        Ok(FrameRing {
            map,
            block_size,
            frame_size,
            frames_per_block,
            frames,
            next: 0,
            vnet,
            copy,
        })
    }
}

impl RxRing for FrameRing {
    fn socket(&self) -> &PacketSocket {
        &self.map.sock
    }

    fn recv(&mut self, max: usize, mut f: impl FnMut(&[u8], usize, u64, RxInfo) -> bool) -> usize {
        let mut n = 0;
        let mut more = true;
        while n < max && more {
            let at = (self.next / self.frames_per_block) * self.block_size
                + (self.next % self.frames_per_block) * self.frame_size;
            let Some(status) = self.map.status(at) else {
                break;
            };
            if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                break;
            }
            if let Some(h) = self.map.read::<libc::tpacket2_hdr>(at) {
                let start = h.tp_mac as usize;
                let len = h.tp_snaplen as usize;
                if start + len <= self.frame_size {
                    if let Some(frame) = self.map.bytes(at + start, len) {
                        let ts = u64::from(h.tp_sec) * 1_000_000_000 + u64::from(h.tp_nsec);
                        let mut info =
                            RxInfo::from_status(h.tp_status, h.tp_vlan_tci, h.tp_vlan_tpid);
                        let mut frame = frame;
                        let mut wire = h.tp_len as usize;
                        if self.vnet {
                            info.vnet = read_vnet(&self.map, at + start);
                            // The whole frame waits on the socket: read it
                            // (the ring holds only its first bytes). Should
                            // that fail, the cut frame goes on as such.
                            if h.tp_status & libc::TP_STATUS_COPY != 0 {
                                if let Ok((l, v)) = self.map.sock.recv_vnet(&mut self.copy) {
                                    wire = l;
                                    frame = &self.copy[..l.min(self.copy.len())];
                                    info.vnet = v;
                                }
                            }
                        }
                        more = f(frame, wire, ts, info);
                        n += 1;
                    }
                }
            }
            // Hand the frame back (any slice of it is gone with the call).
            status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.next = (self.next + 1) % self.frames;
        }
        n
    }
}

/// A `TPACKET_V3` receive ring: frames packed into blocks handed over whole.
#[derive(Debug)]
pub(crate) struct BlockRing {
    map: Mapping,
    block_size: usize,
    blocks: usize,
    /// The block being read, or to be read next.
    block: usize,
    /// Frames left in the current block (0: not yet ours).
    left: u32,
    /// Offset of the next frame in the current block.
    next: usize,
    /// Frames carry a `virtio_net_hdr` before them.
    vnet: bool,
}

impl BlockRing {
    /// Sets a ring of `blocks` blocks of `block_size` bytes (a power of two,
    /// at least a page) on `sock`, which must not be bound yet, and maps it.
    /// Blocks are handed over when full or after `retire_ms` milliseconds.
    /// A frame may fill a block: with `PACKET_VNET_HDR` set on `sock`, each
    /// comes with its `virtio_net_hdr`, and blocks of 128 KiB hold a whole
    /// 64 KiB super-frame.
    pub fn new(
        sock: PacketSocket,
        block_size: usize,
        blocks: usize,
        retire_ms: u32,
    ) -> io::Result<BlockRing> {
        let frame_size = 2048;
        check_geometry(block_size, blocks, frame_size)?;
        let vnet = sock.has_vnet_hdr()?;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as libc::c_uint,
            tp_block_nr: blocks as libc::c_uint,
            tp_frame_size: frame_size as libc::c_uint,
            tp_frame_nr: (block_size / frame_size * blocks) as libc::c_uint,
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        let version = libc::tpacket_versions::TPACKET_V3 as u32;
        let map = Mapping::new(sock, version, &req, block_size * blocks)?;
        Ok(BlockRing {
            map,
            block_size,
            blocks,
            block: 0,
            left: 0,
            next: 0,
            vnet,
        })
    }

    /// Gives the current block back to the kernel and moves to the next.
    fn release(&mut self) {
        if let Some(s) = self.map.status(self.block * self.block_size + BLOCK_STATUS) {
            s.store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
        self.block = (self.block + 1) % self.blocks;
        self.left = 0;
    }
}

impl RxRing for BlockRing {
    fn socket(&self) -> &PacketSocket {
        &self.map.sock
    }

    fn recv(&mut self, max: usize, mut f: impl FnMut(&[u8], usize, u64, RxInfo) -> bool) -> usize {
        let mut n = 0;
        let mut more = true;
        while n < max && more {
            let base = self.block * self.block_size;
            if self.left == 0 {
                let Some(status) = self.map.status(base + BLOCK_STATUS) else {
                    break;
                };
                if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    break;
                }
                self.left = self.map.read::<u32>(base + NUM_PKTS).unwrap_or(0);
                self.next = self.map.read::<u32>(base + FIRST_PKT).unwrap_or(0) as usize;
                if self.left == 0 {
                    self.release();
                    continue;
                }
            }
            let h = match self.map.read::<libc::tpacket3_hdr>(base + self.next) {
                Some(h) if self.next + size_of::<libc::tpacket3_hdr>() <= self.block_size => h,
                // Not a frame the kernel wrote: drop the rest of the block.
                _ => {
                    self.release();
                    continue;
                }
            };
            let start = self.next + h.tp_mac as usize;
            let len = h.tp_snaplen as usize;
            let frame = match self.map.bytes(base + start, len) {
                Some(b) if start + len <= self.block_size => b,
                _ => {
                    self.release();
                    continue;
                }
            };
            let ts = u64::from(h.tp_sec) * 1_000_000_000 + u64::from(h.tp_nsec);
            let mut info =
                RxInfo::from_status(h.tp_status, h.hv1.tp_vlan_tci as u16, h.hv1.tp_vlan_tpid);
            if self.vnet {
                info.vnet = read_vnet(&self.map, base + start);
            }
            more = f(frame, h.tp_len as usize, ts, info);
            n += 1;
            self.left -= 1;
            if self.left == 0 {
                self.release();
            } else {
                self.next += h.tp_next_offset as usize;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{MsgVec, VlanTag, ETH_P_ALL};
    use std::time::{Duration, Instant};

    fn frame(token: u32, seq: u32, len: usize) -> Vec<u8> {
        testkit::frame::marked(0x88b7, &token.to_be_bytes(), seq, len)
    }

    fn rx_socket() -> PacketSocket {
        let s = PacketSocket::new().unwrap();
        s.ignore_outgoing().unwrap();
        s
    }

    #[test]
    fn frames_arrive_through_a_frame_ring_in_order() {
        let _lo = crate::sys::lo_lock();
        // 4096-byte frames: room for the 4000-byte frame too.
        let ring = FrameRing::new(rx_socket(), 1 << 16, 4, 4096).unwrap();
        round_trip(ring, 4000);
        // 2048-byte frames hold about 1980 bytes: the big frame is cut.
        let ring = FrameRing::new(rx_socket(), 1 << 16, 4, 2048).unwrap();
        round_trip(ring, 2048 - 66);
    }

    #[test]
    fn frames_arrive_through_a_block_ring_in_order() {
        let _lo = crate::sys::lo_lock();
        let ring = BlockRing::new(rx_socket(), 1 << 16, 4, 1).unwrap();
        round_trip(ring, 4000);
    }

    /// Sends 601 frames on `lo` (more than the ring holds at once, so parts
    /// must be handed back; one tagged, one of 4000 bytes) and checks them;
    /// `keep` is how much of the big frame the ring holds.
    fn round_trip(mut ring: impl RxRing, keep: usize) {
        ring.socket().bind(1, ETH_P_ALL).unwrap();
        let tx = PacketSocket::new().unwrap();
        tx.bind(1, 0).unwrap();
        // Unique per call, so that frames of an earlier call still in
        // flight on `lo` are never taken for this call's.
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = std::process::id() ^ 0x5a5a_0000 ^ (call << 24);
        let frames: Vec<Vec<u8>> = (0..600)
            .map(|i| frame(token, i, 60 + (i as usize * 13) % 1400))
            .chain([frame(token, 600, 4000)])
            .map(|f| {
                if f[18..22] == 300u32.to_be_bytes() {
                    // One frame with an 802.1Q tag, VID 5.
                    return testkit::frame::tag(&f, 0x8100, 5);
                }
                f
            })
            .collect();
        let mut msgs = MsgVec::new(16);
        let mut got: Vec<(Vec<u8>, usize, Option<VlanTag>)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sent = 0;
        while got.len() < frames.len() && Instant::now() < deadline {
            // At most 64 of ours in flight: the ring never overflows with
            // our own frames, however late this thread runs.
            if sent < frames.len() && sent.saturating_sub(got.len()) < 64 {
                let end = frames.len().min(sent + 16);
                sent += tx
                    .send_batch(&mut msgs, frames[sent..end].iter().map(|f| f.as_slice()))
                    .unwrap();
            }
            let n = ring.recv(64, |f, wire, ts, info| {
                assert!(ts > 1_600_000_000 * 1_000_000_000, "wall-clock time");
                if f.len() >= 22 && f[14..18] == token.to_be_bytes() {
                    // Frames sent by a packet socket are complete.
                    assert!(!info.csum_not_ready);
                    got.push((f.to_vec(), wire, info.vlan));
                }
                true
            });
            assert!(n <= 64);
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got.len(), frames.len());
        for ((g, wire, vlan), f) in got.iter().zip(&frames) {
            if f[12..14] == [0x81, 0x00] {
                // The kernel takes the tag out and reports it beside the frame.
                assert_eq!(*vlan, Some((0x8100, 0x0005)));
                assert_eq!(g[..12], f[..12]);
                assert_eq!(g[12..], f[16..]);
                assert_eq!(*wire, f.len() - 4);
            } else {
                let kept = f.len().min(keep);
                assert_eq!(g[..], f[..kept]);
                assert_eq!(*wire, f.len());
                assert_eq!(*vlan, None);
            }
        }
    }

    #[test]
    fn bad_geometry_is_refused() {
        for (size, n) in [(1000, 4), (4096 + 1, 4), (4096, 0)] {
            assert!(
                BlockRing::new(rx_socket(), size, n, 1).is_err(),
                "{size} x {n}"
            );
            assert!(
                FrameRing::new(rx_socket(), size, n, 2048).is_err(),
                "{size} x {n}"
            );
        }
        for frame in [0, 100, 8192] {
            assert!(
                FrameRing::new(rx_socket(), 4096, 4, frame).is_err(),
                "{frame}"
            );
        }
    }
}
