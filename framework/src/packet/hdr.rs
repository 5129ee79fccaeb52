//! The hpio per-packet header, shared with the kernel module's uapi.

/// `hpio_hdr.version` of the current ABI.
pub const HPIO_HDR_VERSION: u8 = 2;
/// Size of the packed `hpio_hdr` in bytes.
pub const HPIO_HDR_LEN: usize = 12;

/// The 12-byte packed header in front of every frame in a `readv`/`writev` iovec.
///
/// Fields are in host byte order, as the kernel module writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct HpioHdr {
    /// ABI version, [`HPIO_HDR_VERSION`].
    pub version: u8,
    /// Bytes of this header, [`HPIO_HDR_LEN`].
    pub hdrlen: u8,
    /// Bytes of frame after the header (full frame length on receive).
    pub pktlen: u16,
    /// Receive time in nanoseconds.
    pub tstamp: u64,
}

const _: () = assert!(std::mem::size_of::<HpioHdr>() == HPIO_HDR_LEN);

impl HpioHdr {
    /// A current-version header for a frame of `pktlen` bytes.
    pub fn new(pktlen: u16, tstamp: u64) -> HpioHdr {
        HpioHdr {
            version: HPIO_HDR_VERSION,
            hdrlen: HPIO_HDR_LEN as u8,
            pktlen,
            tstamp,
        }
    }

    /// Reads a header from the first 12 bytes of `b`.
    ///
    /// # Panics
    /// If `b` is shorter than 12 bytes (callers pass a slot's header field).
    pub fn read(b: &[u8]) -> HpioHdr {
        HpioHdr {
            version: b[0],
            hdrlen: b[1],
            pktlen: u16::from_ne_bytes([b[2], b[3]]),
            tstamp: u64::from_ne_bytes(b[4..12].try_into().expect("8 bytes")),
        }
    }

    /// Writes the header into the first 12 bytes of `b`.
    pub fn write(&self, b: &mut [u8]) {
        b[0] = self.version;
        b[1] = self.hdrlen;
        b[2..4].copy_from_slice(&{ self.pktlen }.to_ne_bytes());
        b[4..12].copy_from_slice(&{ self.tstamp }.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layout_matches_uapi() {
        assert_eq!(size_of::<HpioHdr>(), 12);
        assert_eq!(offset_of!(HpioHdr, version), 0);
        assert_eq!(offset_of!(HpioHdr, hdrlen), 1);
        assert_eq!(offset_of!(HpioHdr, pktlen), 2);
        assert_eq!(offset_of!(HpioHdr, tstamp), 4);
    }

    #[test]
    fn read_write_round_trip() {
        let h = HpioHdr::new(1514, 0x0102_0304_0506_0708);
        let mut b = [0u8; 12];
        h.write(&mut b);
        assert_eq!(b[0], 2);
        assert_eq!(b[1], 12);
        assert_eq!(HpioHdr::read(&b), h);
    }
}
