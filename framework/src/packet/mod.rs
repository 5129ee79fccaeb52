//! Packets: fixed buffers laid out as hpio slots, their pool and batches of them.
//!
//! A [`Packet`] owns one [`Slot`]: 64 bytes of metadata, headroom, the 12-byte
//! [`HpioHdr`] and room for a 2048-byte frame. The header sits immediately
//! before the frame, so a `readv` on `/dev/hpio/<if>` lands a packet exactly
//! where elements read it and a `writev` sends it from there, with no copy in
//! user space. Headroom lets an element push an 802.1Q tag without moving the
//! payload.

mod hdr;
mod pool;

pub use hdr::{HpioHdr, HPIO_HDR_LEN, HPIO_HDR_VERSION};
pub use pool::Pool;

use crate::wire::Headers;

/// Largest frame a slot holds at the default data offset.
pub const MAX_FRAME: usize = 2048;
/// Offset of the frame in the slot's `raw` bytes as a receive leaves it: 64-byte aligned.
pub const DEFAULT_DATA_OFFSET: usize = 64;
/// Bytes of `raw` before the default frame start; the hpio header uses the last 12.
pub const HEADROOM: usize = DEFAULT_DATA_OFFSET - HPIO_HDR_LEN;
/// Size of a slot's `raw` bytes (headroom, hpio header and frame).
pub const RAW_LEN: usize = DEFAULT_DATA_OFFSET + MAX_FRAME;

/// Most packets a batch holds without spilling to the heap.
pub const BATCH_INLINE: usize = 64;

/// A batch of packets handed between ports and elements.
pub type Batch = smallvec::SmallVec<[Packet; BATCH_INLINE]>;

/// Per-packet metadata kept in the slot's first cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Meta {
    /// Offset of the frame's first byte in [`Slot::raw`].
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
    /// Free-form annotations for elements (Click's "paint" and friends).
    pub anno: [u32; 4],
}

/// One packet buffer: metadata, headroom, hpio header, frame.
#[repr(C, align(64))]
pub struct Slot {
    meta: Meta,
    raw: [u8; RAW_LEN],
}

const _: () = assert!(
    std::mem::size_of::<Meta>() <= 64,
    "Meta must fit a cache line"
);

impl Slot {
    fn new() -> Box<Slot> {
        Box::new(Slot {
            meta: Meta {
                off: DEFAULT_DATA_OFFSET as u16,
                len: 0,
                in_port: u16::MAX,
                wire_len: 0,
                tstamp: 0,
                parsed: false,
                headers: Headers::parse(&[]),
                anno: [0; 4],
            },
            raw: [0; RAW_LEN],
        })
    }
}

/// An owned packet: a handle to one pool slot.
///
/// Moving a `Packet` moves a pointer. Hand packets back through
/// [`crate::element::Output::drop`] or [`Pool::free`] so the slot is reused;
/// a packet dropped by Rust simply frees its memory.
pub struct Packet(Box<Slot>);

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.len())
            .field("in_port", &self.0.meta.in_port)
            .field("tstamp", &self.0.meta.tstamp)
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
    /// A fresh, empty packet outside any pool (tests and tools; the data path uses [`Pool::alloc`]).
    pub fn new() -> Packet {
        Packet(Slot::new())
    }

    /// A packet holding a copy of `frame` (at most [`MAX_FRAME`] bytes are kept).
    pub fn from_bytes(frame: &[u8]) -> Packet {
        let mut p = Packet::new();
        p.set_frame(frame);
        p
    }

    /// Replaces the frame with a copy of `frame`, truncated to [`MAX_FRAME`] bytes,
    /// and resets offset, length and cached headers.
    pub fn set_frame(&mut self, frame: &[u8]) {
        let n = frame.len().min(MAX_FRAME);
        let m = &mut self.0.meta;
        m.off = DEFAULT_DATA_OFFSET as u16;
        m.len = n as u16;
        m.wire_len = frame.len().min(u16::MAX as usize) as u16;
        m.parsed = false;
        self.0.raw[DEFAULT_DATA_OFFSET..DEFAULT_DATA_OFFSET + n].copy_from_slice(&frame[..n]);
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let off = self.0.meta.off as usize;
        &self.0.raw[off..off + self.0.meta.len as usize]
    }

    /// The frame's bytes, writable. Header offsets stay cached: call
    /// [`Packet::invalidate_headers`] after changing a header's length in place.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let off = self.0.meta.off as usize;
        &mut self.0.raw[off..off + self.0.meta.len as usize]
    }

    /// Frame length in bytes.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.0.meta.len as usize
    }

    /// Frame length on the wire (larger than [`Packet::len`] for a truncated capture).
    #[inline]
    pub fn wire_len(&self) -> usize {
        (self.0.meta.wire_len as usize).max(self.len())
    }

    /// Bytes free in front of the frame (the hpio header's 12 bytes excluded).
    #[inline]
    pub fn headroom(&self) -> usize {
        self.0.meta.off as usize - HPIO_HDR_LEN
    }

    /// Bytes free after the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        RAW_LEN - self.0.meta.off as usize - self.len()
    }

    /// Grows the frame by `n` bytes at the front and returns the whole frame.
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], ResizeError> {
        if n > self.headroom() {
            return Err(ResizeError::NoHeadroom);
        }
        let m = &mut self.0.meta;
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
        let m = &mut self.0.meta;
        m.off += n as u16;
        m.len -= n as u16;
        m.wire_len = m.wire_len.saturating_sub(n as u16);
        m.parsed = false;
        Ok(())
    }

    /// Sets the frame length, growing into tailroom or truncating.
    /// New bytes keep whatever the slot held before.
    pub fn set_len(&mut self, len: usize) -> Result<(), ResizeError> {
        if len > RAW_LEN - self.0.meta.off as usize {
            return Err(ResizeError::NoTailroom);
        }
        let m = &mut self.0.meta;
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
        if self.0.meta.parsed {
            return self.0.meta.headers;
        }
        let h = Headers::parse(self.data());
        self.0.meta.headers = h;
        self.0.meta.parsed = true;
        h
    }

    /// Forgets the cached header layout (after changing header lengths in place).
    #[inline]
    pub fn invalidate_headers(&mut self) {
        self.0.meta.parsed = false;
    }

    /// Receive timestamp in nanoseconds.
    #[inline]
    pub fn timestamp(&self) -> u64 {
        self.0.meta.tstamp
    }

    /// Sets the receive timestamp in nanoseconds.
    #[inline]
    pub fn set_timestamp(&mut self, ns: u64) {
        self.0.meta.tstamp = ns;
    }

    /// Index (in config order) of the port the packet arrived on, or `None` when generated.
    #[inline]
    pub fn in_port(&self) -> Option<usize> {
        match self.0.meta.in_port {
            u16::MAX => None,
            p => Some(p as usize),
        }
    }

    /// Records the port the packet arrived on.
    #[inline]
    pub fn set_in_port(&mut self, port: Option<usize>) {
        self.0.meta.in_port = port.map_or(u16::MAX, |p| p.min(u16::MAX as usize - 1) as u16);
    }

    /// Annotation words that elements may use to pass facts downstream.
    #[inline]
    pub fn anno(&self) -> &[u32; 4] {
        &self.0.meta.anno
    }

    /// Annotation words, writable.
    #[inline]
    pub fn anno_mut(&mut self) -> &mut [u32; 4] {
        &mut self.0.meta.anno
    }

    /// Copies frame, timestamp, input port and annotations of `other` into `self`.
    pub fn copy_from(&mut self, other: &Packet) {
        let src = &other.0;
        let off = src.meta.off as usize;
        let len = src.meta.len as usize;
        self.0.raw[off..off + len].copy_from_slice(&src.raw[off..off + len]);
        self.0.meta = src.meta;
    }

    /// Resets metadata for reuse after a receive: frame at the default offset, length 0.
    #[inline]
    pub(crate) fn reset(&mut self) {
        // Field by field: building a whole `Meta` on the stack and copying it
        // in costs a store-forwarding stall per packet.
        let m = &mut self.0.meta;
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
        &mut self.0.raw[HEADROOM..]
    }

    /// Reads the hpio header a `readv` wrote and sets the frame length from it.
    /// Returns the header; frames larger than the slot are marked truncated.
    pub fn finish_hpio_recv(&mut self) -> HpioHdr {
        let hdr = HpioHdr::read(&self.0.raw[HEADROOM..DEFAULT_DATA_OFFSET]);
        let m = &mut self.0.meta;
        m.off = DEFAULT_DATA_OFFSET as u16;
        m.len = (hdr.pktlen as usize).min(MAX_FRAME) as u16;
        m.wire_len = hdr.pktlen;
        m.tstamp = hdr.tstamp;
        m.parsed = false;
        hdr
    }

    /// Writes the hpio header in front of the frame and returns header + frame,
    /// ready to be one iovec of a `writev`.
    pub fn hpio_send_buf(&mut self) -> &[u8] {
        let off = self.0.meta.off as usize;
        let len = self.0.meta.len as usize;
        let hdr = HpioHdr::new(len as u16, self.0.meta.tstamp);
        hdr.write(&mut self.0.raw[off - HPIO_HDR_LEN..off]);
        &self.0.raw[off - HPIO_HDR_LEN..off + len]
    }

    /// Room for a frame to be received by a socket read (AF_PACKET, pcap):
    /// the whole space from the default data offset. Follow with [`Packet::finish_recv`].
    pub fn recv_buf(&mut self) -> &mut [u8] {
        self.reset();
        &mut self.0.raw[DEFAULT_DATA_OFFSET..]
    }

    /// Sets the frame length after a receive into [`Packet::recv_buf`]; `wire_len`
    /// is the length on the wire when the receive truncated the frame.
    pub fn finish_recv(&mut self, len: usize, wire_len: usize, tstamp: u64) {
        let m = &mut self.0.meta;
        m.len = len.min(MAX_FRAME) as u16;
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
        assert_eq!(std::mem::align_of::<Slot>(), 64);
        assert_eq!(HEADROOM + HPIO_HDR_LEN, DEFAULT_DATA_OFFSET);
        assert_eq!(std::mem::size_of::<Packet>(), 8);
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
    fn oversized_hpio_frame_is_truncated_not_overrun() {
        let mut p = Packet::new();
        HpioHdr::new(9000, 0).write(&mut p.hpio_recv_buf()[..12]);
        p.finish_hpio_recv();
        assert_eq!(p.len(), MAX_FRAME);
        assert_eq!(p.wire_len(), 9000);
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
        assert!(p.set_len(MAX_FRAME).is_ok());
        assert_eq!(p.set_len(MAX_FRAME + 1), Err(ResizeError::NoTailroom));
    }
}
