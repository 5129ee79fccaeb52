//! Packets: buffers laid out as hpio slots, their pool and batches of them.
//!
//! A [`Packet`] owns one slot: 64 bytes of metadata, headroom, the 12-byte
//! [`HpioHdr`] and room for a frame of the slot's capacity. The capacity is
//! chosen when the slot is made: a run sizes its pools once, at start, from
//! `[runtime] max_frame` or from the largest frame its ports can deliver
//! (see `docs/architecture.md`, "Frame size"); tools and tests get
//! [`DEFAULT_MAX_FRAME`] unless they ask for more. The header sits
//! immediately before the frame, so a `readv` on `/dev/hpio/<if>` lands a
//! packet exactly where elements read it and a `writev` sends it from there,
//! with no copy in user space. Headroom lets an element push an 802.1Q tag
//! without moving the payload.
//!
//! A packet is one thin pointer whatever its capacity (see the `slot`
//! module, the only `unsafe` here besides the pool's bulk moves).

pub mod anno;
mod hdr;
mod pool;
mod slot;

pub use hdr::{HpioHdr, HPIO_HDR_LEN, HPIO_HDR_VERSION};
pub use pool::Pool;

use crate::wire::Headers;
use slot::{RawLen, SlotPtr};

/// Frame capacity of a slot unless a larger one is asked for: the runtime's
/// smallest slot, and that of [`Packet::new`] and [`Pool::new`].
pub const DEFAULT_MAX_FRAME: usize = 2048;
/// Largest frame capacity a slot can have (frame lengths are 16-bit, as in
/// the hpio header and the IP length fields).
pub const MAX_FRAME_LIMIT: usize = 65535;
/// Frame capacity of a default slot (kept for code written before slot
/// sizes could vary; prefer [`Packet::capacity`] or [`Pool::max_frame`]).
pub const MAX_FRAME: usize = DEFAULT_MAX_FRAME;
/// Offset of the frame in the slot's raw bytes as a receive leaves it: 64-byte aligned.
pub const DEFAULT_DATA_OFFSET: usize = 64;
/// Bytes of raw space before the default frame start; the hpio header uses the last 12.
pub const HEADROOM: usize = DEFAULT_DATA_OFFSET - HPIO_HDR_LEN;

/// Most packets a batch holds without spilling to the heap.
pub const BATCH_INLINE: usize = 64;

/// A batch of packets handed between ports and elements.
pub type Batch = smallvec::SmallVec<[Packet; BATCH_INLINE]>;

/// Per-packet metadata kept in the slot's first cache line.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Meta {
    /// Offset of the frame's first byte in the slot's raw bytes.
    off: u16,
    /// Frame length in bytes.
    len: u16,
    /// Index of the port the packet arrived on (`u16::MAX` when generated).
    in_port: u16,
    /// Frame length on the wire when the capture was truncated, else equal to `len`.
    wire_len: u16,
    /// Receive time in nanoseconds (hpio tstamp, pcap time or generator time).
    tstamp: u64,
    /// `headers` holds this frame's parse (cleared by every structural change).
    parsed: bool,
    /// Cached parse of the headers, valid when `parsed`.
    headers: Headers,
    /// Annotations for elements (Click's "paint" and friends); the
    /// built-in elements' words are listed in [`anno`].
    pub anno: [u32; 4],
    /// Size of the raw bytes after this line (fixed when the slot is made).
    /// Last, so that the hot fields keep the offsets they had before slots
    /// had sizes (the cached `headers` stays where its stores are cheap).
    raw_len: RawLen,
}

/// An owned packet: a handle to one slot.
///
/// Moving a `Packet` moves a pointer. Hand packets back through
/// [`crate::element::Output::drop`] or [`Pool::free`] so the slot is reused;
/// a packet dropped by Rust simply frees its memory.
pub struct Packet(SlotPtr);

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0.meta();
        f.debug_struct("Packet")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("in_port", &m.in_port)
            .field("tstamp", &m.tstamp)
            .finish()
    }
}

/// Errors from resizing a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResizeError {
    /// Not enough headroom in front of the frame.
    #[error("not enough headroom")]
    NoHeadroom,
    /// Not enough room after the frame.
    #[error("not enough tailroom")]
    NoTailroom,
    /// The frame is shorter than the bytes to remove.
    #[error("frame too short")]
    TooShort,
}

impl Packet {
    /// A fresh, empty packet of [`DEFAULT_MAX_FRAME`] capacity, outside any
    /// pool (tests and tools; the data path uses [`Pool::alloc`]).
    pub fn new() -> Packet {
        Packet::with_capacity(DEFAULT_MAX_FRAME)
    }

    /// A fresh, empty packet whose slot holds a frame of up to `max_frame`
    /// bytes at the default offset (at least [`DEFAULT_MAX_FRAME`], at most
    /// [`MAX_FRAME_LIMIT`]).
    pub fn with_capacity(max_frame: usize) -> Packet {
        let raw = DEFAULT_DATA_OFFSET + max_frame.min(MAX_FRAME_LIMIT);
        Packet(SlotPtr::new(raw, |raw_len| Meta {
            off: DEFAULT_DATA_OFFSET as u16,
            len: 0,
            in_port: u16::MAX,
            wire_len: 0,
            tstamp: 0,
            parsed: false,
            headers: Headers::parse(&[]),
            anno: [0; 4],
            raw_len,
        }))
    }

    /// A packet holding a copy of `frame`, in a slot of the default capacity
    /// or of the frame's length when that is larger (at most
    /// [`MAX_FRAME_LIMIT`] bytes are kept).
    pub fn from_bytes(frame: &[u8]) -> Packet {
        let mut p = Packet::with_capacity(frame.len().max(DEFAULT_MAX_FRAME));
        p.set_frame(frame);
        p
    }

    /// Largest frame the slot holds at the default offset.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.0.meta().raw_len.get() - DEFAULT_DATA_OFFSET
    }

    /// Replaces the frame with a copy of `frame`, truncated to
    /// [`Packet::capacity`] bytes, and resets offset, length and cached
    /// headers. Returns false when it had to truncate.
    pub fn set_frame(&mut self, frame: &[u8]) -> bool {
        let n = frame.len().min(self.capacity());
        let (m, raw) = self.0.split_mut();
        m.off = DEFAULT_DATA_OFFSET as u16;
        m.len = n as u16;
        m.wire_len = frame.len().min(u16::MAX as usize) as u16;
        m.parsed = false;
        raw[DEFAULT_DATA_OFFSET..DEFAULT_DATA_OFFSET + n].copy_from_slice(&frame[..n]);
        n == frame.len()
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.0.meta();
        let (off, len) = (m.off as usize, m.len as usize);
        &self.0.raw()[off..off + len]
    }

    /// The frame's bytes, writable. Header offsets stay cached: call
    /// [`Packet::invalidate_headers`] after changing a header's length in place.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.0.meta();
        let (off, len) = (m.off as usize, m.len as usize);
        &mut self.0.raw_mut()[off..off + len]
    }

    /// Frame length in bytes.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.0.meta().len as usize
    }

    /// Frame length on the wire (larger than [`Packet::len`] for a truncated capture).
    #[inline]
    pub fn wire_len(&self) -> usize {
        (self.0.meta().wire_len as usize).max(self.len())
    }

    /// Bytes free in front of the frame (the hpio header's 12 bytes excluded).
    #[inline]
    pub fn headroom(&self) -> usize {
        self.0.meta().off as usize - HPIO_HDR_LEN
    }

    /// Bytes free after the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.0.meta();
        m.raw_len.get() - m.off as usize - m.len as usize
    }

    /// Grows the frame by `n` bytes at the front and returns the whole frame.
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], ResizeError> {
        if n > self.headroom() {
            return Err(ResizeError::NoHeadroom);
        }
        if self.len() + n > MAX_FRAME_LIMIT {
            return Err(ResizeError::NoTailroom);
        }
        let m = self.0.meta_mut();
        m.off -= n as u16;
        m.len += n as u16;
        m.wire_len = m.wire_len.saturating_add(n as u16);
        m.parsed = false;
        Ok(self.data_mut())
    }

    /// Removes `n` bytes from the front of the frame.
    pub fn pull_front(&mut self, n: usize) -> Result<(), ResizeError> {
        if n > self.len() {
            return Err(ResizeError::TooShort);
        }
        let m = self.0.meta_mut();
        m.off += n as u16;
        m.len -= n as u16;
        m.wire_len = m.wire_len.saturating_sub(n as u16);
        m.parsed = false;
        Ok(())
    }

    /// Sets the frame length, growing into tailroom or truncating.
    /// New bytes keep whatever the slot held before.
    pub fn set_len(&mut self, len: usize) -> Result<(), ResizeError> {
        let m = self.0.meta_mut();
        if len > m.raw_len.get() - m.off as usize || len > MAX_FRAME_LIMIT {
            return Err(ResizeError::NoTailroom);
        }
        m.len = len as u16;
        m.wire_len = len as u16;
        m.parsed = false;
        Ok(())
    }

    /// The parsed header layout, computed on first use and cached in the slot.
    /// Always inlined: it runs once per packet in every classifying element,
    /// and a call costs as much as the common frame's parse.
    #[inline(always)]
    pub fn headers(&mut self) -> Headers {
        if self.0.meta().parsed {
            return self.0.meta().headers;
        }
        let h = Headers::parse(self.data());
        let m = self.0.meta_mut();
        m.headers = h;
        m.parsed = true;
        h
    }

    /// Whether the header layout is cached ([`Packet::headers`] will not parse).
    #[inline(always)]
    pub fn headers_cached(&self) -> bool {
        self.0.meta().parsed
    }

    /// Forgets the cached header layout (after changing header lengths in place).
    #[inline]
    pub fn invalidate_headers(&mut self) {
        self.0.meta_mut().parsed = false;
    }

    /// Receive timestamp in nanoseconds.
    #[inline]
    pub fn timestamp(&self) -> u64 {
        self.0.meta().tstamp
    }

    /// Sets the receive timestamp in nanoseconds.
    #[inline]
    pub fn set_timestamp(&mut self, ns: u64) {
        self.0.meta_mut().tstamp = ns;
    }

    /// Index (in config order) of the port the packet arrived on, or `None` when generated.
    #[inline]
    pub fn in_port(&self) -> Option<usize> {
        match self.0.meta().in_port {
            u16::MAX => None,
            p => Some(p as usize),
        }
    }

    /// Records the port the packet arrived on.
    #[inline]
    pub fn set_in_port(&mut self, port: Option<usize>) {
        self.0.meta_mut().in_port = port.map_or(u16::MAX, |p| p.min(u16::MAX as usize - 1) as u16);
    }

    /// Annotation words that elements may use to pass facts downstream.
    #[inline]
    pub fn anno(&self) -> &[u32; 4] {
        &self.0.meta().anno
    }

    /// Annotation words, writable.
    #[inline]
    pub fn anno_mut(&mut self) -> &mut [u32; 4] {
        &mut self.0.meta_mut().anno
    }

    /// Copies frame, timestamp, input port and annotations of `other` into
    /// `self`, at the same offset. Fails, `self` unchanged, when `self`'s
    /// slot is too small for the frame there.
    pub fn copy_from(&mut self, other: &Packet) -> Result<(), ResizeError> {
        let src = other.0.meta();
        let (off, len) = (src.off as usize, src.len as usize);
        let (m, raw) = self.0.split_mut();
        if off + len > raw.len() {
            return Err(ResizeError::NoTailroom);
        }
        raw[off..off + len].copy_from_slice(&other.0.raw()[off..off + len]);
        // Field by field: the slot's own raw length stays.
        m.off = src.off;
        m.len = src.len;
        m.in_port = src.in_port;
        m.wire_len = src.wire_len;
        m.tstamp = src.tstamp;
        m.parsed = src.parsed;
        m.headers = src.headers;
        m.anno = src.anno;
        Ok(())
    }

    /// Resets metadata for reuse after a receive: frame at the default offset, length 0.
    #[inline]
    pub(crate) fn reset(&mut self) {
        // Field by field: building a whole `Meta` on the stack and copying it
        // in costs a store-forwarding stall per packet.
        let m = self.0.meta_mut();
        m.off = DEFAULT_DATA_OFFSET as u16;
        m.len = 0;
        m.in_port = u16::MAX;
        m.wire_len = 0;
        m.tstamp = 0;
        m.parsed = false;
        m.anno = [0; 4];
    }

    /// The hpio slot (header + frame room) as an I/O buffer for `readv`:
    /// the header at [`HEADROOM`], the frame right after it.
    /// Call [`Packet::finish_hpio_recv`] once the kernel has filled it.
    pub fn hpio_recv_buf(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.0.raw_mut()[HEADROOM..]
    }

    /// Reads the hpio header a `readv` wrote and sets the frame length from
    /// it. Returns the header; a frame longer than the slot (the module
    /// copied only what fit, `pktlen` says how long it was) is kept cut to
    /// the capacity with its real length as `wire_len`: the caller must drop
    /// it when `pktlen` > [`Packet::capacity`].
    pub fn finish_hpio_recv(&mut self) -> HpioHdr {
        let cap = self.capacity();
        let (m, raw) = self.0.split_mut();
        let hdr = HpioHdr::read(&raw[HEADROOM..DEFAULT_DATA_OFFSET]);
        m.off = DEFAULT_DATA_OFFSET as u16;
        m.len = (hdr.pktlen as usize).min(cap) as u16;
        m.wire_len = hdr.pktlen;
        m.tstamp = hdr.tstamp;
        m.parsed = false;
        hdr
    }

    /// Writes the hpio header in front of the frame and returns header + frame,
    /// ready to be one iovec of a `writev`.
    pub fn hpio_send_buf(&mut self) -> &[u8] {
        let (m, raw) = self.0.split_mut();
        let (off, len) = (m.off as usize, m.len as usize);
        let hdr = HpioHdr::new(len as u16, m.tstamp);
        hdr.write(&mut raw[off - HPIO_HDR_LEN..off]);
        &raw[off - HPIO_HDR_LEN..off + len]
    }

    /// Room for a frame to be received by a socket read (AF_PACKET, pcap):
    /// the whole space from the default data offset ([`Packet::capacity`]
    /// bytes). Follow with [`Packet::finish_recv`].
    pub fn recv_buf(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.0.raw_mut()[DEFAULT_DATA_OFFSET..]
    }

    /// The frame room of a packet [`Pool::take_into`] handed out (at the
    /// default offset, its metadata not reset): fill it, then call
    /// [`Packet::set_received`], which sets all the metadata.
    #[inline(always)]
    pub(crate) fn recv_room(&mut self) -> &mut [u8] {
        &mut self.0.raw_mut()[DEFAULT_DATA_OFFSET..]
    }

    /// After a receive into [`Packet::recv_room`]: every metadata field as
    /// [`Packet::reset`] and then [`Packet::finish_recv`] would set it, in
    /// one go (the default offset, no port, no parse, no annotations).
    /// Spelled out: calling the two costs one instruction more per packet
    /// (callgrind, lookup4), as the compiler keeps the stores they repeat.
    #[inline(always)]
    pub(crate) fn set_received(&mut self, len: usize, wire_len: usize, tstamp: u64) {
        debug_assert!(
            len <= self.capacity(),
            "set_received: {len} > {}",
            self.capacity()
        );
        let m = self.0.meta_mut();
        m.off = DEFAULT_DATA_OFFSET as u16;
        m.len = len as u16;
        m.in_port = u16::MAX;
        m.wire_len = wire_len.min(u16::MAX as usize) as u16;
        m.tstamp = tstamp;
        m.parsed = false;
        m.anno = [0; 4];
    }

    /// Sets the frame length after a receive into [`Packet::recv_buf`];
    /// `wire_len` is the frame's length on the wire.
    ///
    /// `len` must be at most [`Packet::capacity`]: a receive drops a longer
    /// frame (counted `oversize`) instead of calling this. Not checked here
    /// (this runs once per packet on every receive path); a longer `len`
    /// would make [`Packet::data`] panic on its bounds check, never read
    /// outside the slot, and fails a debug assertion first.
    #[inline]
    pub fn finish_recv(&mut self, len: usize, wire_len: usize, tstamp: u64) {
        debug_assert!(
            len <= self.capacity(),
            "finish_recv: {len} > {}",
            self.capacity()
        );
        let m = self.0.meta_mut();
        m.len = len as u16;
        m.wire_len = wire_len.min(u16::MAX as usize) as u16;
        m.tstamp = tstamp;
    }
}

impl Default for Packet {
    fn default() -> Self {
        Packet::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_layout_puts_header_right_before_frame() {
        assert_eq!(std::mem::size_of::<Meta>(), 64);
        assert_eq!(HEADROOM + HPIO_HDR_LEN, DEFAULT_DATA_OFFSET);
        assert_eq!(std::mem::size_of::<Packet>(), 8);
        assert_eq!(std::mem::size_of::<Option<Packet>>(), 8);
        let mut p = Packet::from_bytes(&[0xaa; 60]);
        let buf = p.hpio_send_buf();
        assert_eq!(buf.len(), 72);
        assert_eq!(buf[0], HPIO_HDR_VERSION);
        assert_eq!(buf[1], HPIO_HDR_LEN as u8);
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), 60);
        assert!(buf[12..].iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn hpio_recv_round_trip() {
        let mut p = Packet::new();
        let buf = p.hpio_recv_buf();
        HpioHdr::new(100, 77).write(&mut buf[..12]);
        buf[12..112].fill(7);
        let hdr = p.finish_hpio_recv();
        assert_eq!({ hdr.pktlen }, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(p.timestamp(), 77);
        assert!(p.data().iter().all(|&b| b == 7));
    }

    #[test]
    fn oversized_hpio_frame_is_cut_to_the_slot_not_overrun() {
        let mut p = Packet::new();
        HpioHdr::new(9000, 0).write(&mut p.hpio_recv_buf()[..12]);
        let hdr = p.finish_hpio_recv();
        assert!(
            usize::from(hdr.pktlen) > p.capacity(),
            "the caller sees it is oversize"
        );
        assert_eq!(p.len(), DEFAULT_MAX_FRAME);
        assert_eq!(p.wire_len(), 9000);
        // A jumbo slot takes it whole.
        let mut p = Packet::with_capacity(9216);
        assert_eq!(p.hpio_recv_buf().len(), HPIO_HDR_LEN + 9216);
        HpioHdr::new(9000, 0).write(&mut p.hpio_recv_buf()[..12]);
        p.finish_hpio_recv();
        assert_eq!((p.len(), p.wire_len()), (9000, 9000));
    }

    #[test]
    fn push_and_pull_front_use_headroom() {
        let mut p = Packet::from_bytes(&[1, 2, 3, 4]);
        let room = p.headroom();
        assert_eq!(room, HEADROOM);
        p.push_front(4).unwrap()[..4].copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(p.data(), &[9, 9, 9, 9, 1, 2, 3, 4]);
        assert_eq!(p.push_front(room), Err(ResizeError::NoHeadroom));
        p.pull_front(4).unwrap();
        assert_eq!(p.data(), &[1, 2, 3, 4]);
        assert_eq!(p.pull_front(5), Err(ResizeError::TooShort));
        // The hpio header still fits in front of a frame pushed to the limit.
        p.push_front(p.headroom()).unwrap();
        assert_eq!(p.hpio_send_buf().len(), 12 + 4 + HEADROOM);
    }

    #[test]
    fn set_len_respects_tailroom() {
        let mut p = Packet::from_bytes(&[0; 10]);
        assert!(p.set_len(DEFAULT_MAX_FRAME).is_ok());
        assert_eq!(
            p.set_len(DEFAULT_MAX_FRAME + 1),
            Err(ResizeError::NoTailroom)
        );
    }

    #[test]
    fn capacity_is_chosen_per_slot() {
        for cap in [2048, 2049, 9216, 16450, MAX_FRAME_LIMIT] {
            let mut p = Packet::with_capacity(cap);
            assert_eq!(p.capacity(), cap);
            assert_eq!(p.recv_buf().len(), cap);
            assert_eq!((p.len(), p.headroom(), p.tailroom()), (0, HEADROOM, cap));
            // The frame starts on a cache line whatever the capacity.
            assert_eq!(p.recv_buf().as_ptr() as usize % 64, 0);
            p.set_len(cap).unwrap();
            assert_eq!(p.tailroom(), 0);
            assert_eq!(p.set_len(cap + 1), Err(ResizeError::NoTailroom));
            // The whole frame room is writable and reads back.
            p.data_mut().fill(0xa5);
            assert!(p.data().iter().all(|&b| b == 0xa5));
        }
        // Asks are clamped to the default slot and the 16-bit frame length.
        assert_eq!(Packet::with_capacity(1 << 20).capacity(), MAX_FRAME_LIMIT);
        assert_eq!(Packet::with_capacity(0).capacity(), DEFAULT_MAX_FRAME);
        assert_eq!(Packet::new().capacity(), DEFAULT_MAX_FRAME);
    }

    #[test]
    fn from_bytes_and_set_frame_fit_the_frame() {
        let big: Vec<u8> = (0..16450u32).map(|i| i as u8).collect();
        let p = Packet::from_bytes(&big);
        assert_eq!((p.data(), p.capacity()), (&big[..], 16450));
        assert_eq!(Packet::from_bytes(&[1; 60]).capacity(), DEFAULT_MAX_FRAME);
        let mut small = Packet::new();
        assert!(!small.set_frame(&big), "set_frame reports a cut");
        assert_eq!((small.len(), small.wire_len()), (DEFAULT_MAX_FRAME, 16450));
        assert!(small.set_frame(&big[..100]));
    }

    #[test]
    fn push_front_and_tailroom_near_the_end_of_a_big_slot() {
        let mut p = Packet::with_capacity(9216);
        p.set_len(9216).unwrap();
        assert_eq!(p.tailroom(), 0);
        // Headroom is independent of the capacity: a tag still fits in front.
        let f = p.push_front(4).unwrap();
        assert_eq!(f.len(), 9220);
        assert_eq!(p.tailroom(), 0);
        assert_eq!(p.headroom(), HEADROOM - 4);
        p.pull_front(4).unwrap();
        // Growing at the back past the end fails, at the end succeeds.
        p.pull_front(100).unwrap();
        assert_eq!(p.tailroom(), 0);
        assert_eq!(p.set_len(9116).map(|_| p.tailroom()), Ok(0));
        assert_eq!(p.set_len(9117), Err(ResizeError::NoTailroom));
        // The hpio header goes right before a frame at the very end of the slot.
        let len = p.len();
        assert_eq!(p.hpio_send_buf().len(), HPIO_HDR_LEN + len);
        // A full 64 KiB slot refuses to grow past the 16-bit length.
        let mut q = Packet::with_capacity(MAX_FRAME_LIMIT);
        q.set_len(MAX_FRAME_LIMIT).unwrap();
        assert_eq!(q.push_front(4), Err(ResizeError::NoTailroom));
    }

    #[test]
    fn copy_from_keeps_each_slot_size() {
        let big = Packet::from_bytes(&[7; 9000]);
        let mut same = Packet::with_capacity(9216);
        same.copy_from(&big).unwrap();
        assert_eq!((same.data(), same.capacity()), (big.data(), 9216));
        let mut small = Packet::from_bytes(&[1; 10]);
        assert_eq!(small.copy_from(&big), Err(ResizeError::NoTailroom));
        assert_eq!(small.data(), &[1; 10], "unchanged after a failed copy");
        // A small frame copies into any slot, and the slot keeps its size.
        let mut into_big = Packet::with_capacity(9216);
        into_big.copy_from(&small).unwrap();
        assert_eq!(
            (into_big.data(), into_big.capacity()),
            (&[1u8; 10][..], 9216)
        );
    }

    #[test]
    fn packets_of_any_size_move_between_threads() {
        let p = Packet::from_bytes(&[3; 9000]);
        let p = std::thread::spawn(move || p).join().unwrap();
        assert_eq!(p.data(), &[3; 9000]);
    }
}
