//! The four rings of an AF_XDP socket, shared with the kernel through a
//! mapping: single-producer single-consumer queues of `size` entries (a
//! power of two), with free-running `u32` producer and consumer indices.
//!
//! User space produces to the fill and TX rings and consumes from the RX
//! and completion rings; the kernel does the other side of each. An index
//! is published with a release store after the entries it covers are
//! written, and read with an acquire load before the entries are read, so
//! each side sees the other's entries whole (`include/uapi/linux/if_xdp.h`
//! describes the layout; the offsets come from `XDP_MMAP_OFFSETS`).

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};

/// A shared mapping of the socket's, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    pub(super) ptr: NonNull<u8>,
    pub(super) len: usize,
}

// SAFETY: the mapping is owned by this value alone (no copy of the pointer
// escapes it); moving it to another thread moves that ownership.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` gives out only the pointer; every access through it
// goes through the ring's atomics or through `&mut` of its single owner.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes at page offset `pgoff` of descriptor `fd` (a ring),
    /// or anonymous memory when `fd` is `None` (the UMEM).
    pub(super) fn new(fd: Option<libc::c_int>, len: usize, pgoff: u64) -> io::Result<Mapping> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd),
            None => (
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
            ),
        };
        // SAFETY: a fresh mapping (no address hint, nothing mapped over);
        // the result is checked before use.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                pgoff as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, mapped once;
        // nothing refers to the mapping after its owner is dropped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One ring: its mapping, where its words lie in it, and this side's
/// cached view of the indices.
#[derive(Debug)]
pub(super) struct Ring {
    map: Mapping,
    producer: usize,
    consumer: usize,
    flags: usize,
    desc: usize,
    mask: u32,
    size: u32,
    /// This side's index (producer of a producer ring, consumer of a consumer ring).
    mine: u32,
}

/// `XDP_RING_NEED_WAKEUP` in a ring's flags word.
const NEED_WAKEUP: u32 = 1;

impl Ring {
    /// A ring of `size` entries of `entry` bytes in `map`, whose words lie
    /// at the kernel's offsets `off`. Checks that they lie inside the mapping.
    pub(super) fn new(
        map: Mapping,
        off: &libc::xdp_ring_offset,
        size: u32,
        entry: usize,
    ) -> io::Result<Ring> {
        let word = |o: u64| -> io::Result<usize> {
            let o = o as usize;
            if o % 4 == 0 && o + 4 <= map.len {
                Ok(o)
            } else {
                Err(io::Error::other("AF_XDP ring offset outside its mapping"))
            }
        };
        let desc = off.desc as usize;
        if !size.is_power_of_two() || desc % 8 != 0 || desc + size as usize * entry > map.len {
            return Err(io::Error::other(
                "AF_XDP ring descriptors outside its mapping",
            ));
        }
        // A fresh ring's indices are 0 on both sides.
        Ok(Ring {
            producer: word(off.producer)?,
            consumer: word(off.consumer)?,
            flags: word(off.flags)?,
            desc,
            mask: size - 1,
            size,
            mine: 0,
            map,
        })
    }

    /// The bytes a ring of `size` entries of `entry` bytes maps, from its offsets.
    pub(super) fn map_len(off: &libc::xdp_ring_offset, size: u32, entry: usize) -> usize {
        off.desc as usize + size as usize * entry
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: `off` was checked to be an aligned word inside the
        // mapping, which lives as long as `self`; the kernel accesses the
        // word atomically too.
        unsafe { &*self.map.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// True when the kernel asks for a wake-up (`XDP_USE_NEED_WAKEUP`).
    pub(super) fn needs_wakeup(&self) -> bool {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.word(self.flags).load(Ordering::Relaxed) & NEED_WAKEUP != 0
    }

    /// Pointer to entry `i` (any index; wraps), `entry` bytes wide.
    fn entry_ptr(&self, i: u32, entry: usize) -> *mut u8 {
        let at = self.desc + (i & self.mask) as usize * entry;
        // SAFETY: `desc + size * entry` lies inside the mapping (checked in
        // `new`) and `i & mask < size`.
        unsafe { self.map.ptr.as_ptr().add(at) }
    }

    // ---- consumer side (RX, completion) ----

    /// Entries the kernel has produced and this side not consumed.
    pub(super) fn available(&self) -> u32 {
        self.word(self.producer)
            .load(Ordering::Acquire)
            .wrapping_sub(self.mine)
    }

    /// Descriptor `k` after the consumer index (`k < available()`), of an RX ring.
    pub(super) fn desc_at(&self, k: u32) -> libc::xdp_desc {
        let p = self.entry_ptr(self.mine.wrapping_add(k), 16);
        // SAFETY: the entry lies inside the mapping (entry_ptr) and is
        // 8-aligned (desc offset and entry size are multiples of 8); the
        // kernel published it before the producer index we read.
        unsafe { ptr::read_volatile(p.cast::<libc::xdp_desc>()) }
    }

    /// Address `k` after the consumer index, of a completion ring.
    pub(super) fn addr_at(&self, k: u32) -> u64 {
        let p = self.entry_ptr(self.mine.wrapping_add(k), 8);
        // SAFETY: as in `desc_at`, for an 8-byte entry.
        unsafe { ptr::read_volatile(p.cast::<u64>()) }
    }

    /// Hands `n` consumed entries back to the kernel.
    pub(super) fn release(&mut self, n: u32) {
        self.mine = self.mine.wrapping_add(n);
        self.word(self.consumer).store(self.mine, Ordering::Release);
    }

    // ---- producer side (fill, TX) ----

    /// Entries this side may produce now.
    pub(super) fn free(&self) -> u32 {
        let cons = self.word(self.consumer).load(Ordering::Acquire);
        self.size - self.mine.wrapping_sub(cons)
    }

    /// Writes address `addr` as entry `k` after the producer index, of a fill ring.
    pub(super) fn put_addr(&mut self, k: u32, addr: u64) {
        let p = self.entry_ptr(self.mine.wrapping_add(k), 8);
        // SAFETY: inside the mapping and 8-aligned; the entry is ours until
        // the producer index covering it is published (`k < free()`).
        unsafe { ptr::write_volatile(p.cast::<u64>(), addr) };
    }

    /// Writes descriptor `d` as entry `k` after the producer index, of a TX ring.
    pub(super) fn put_desc(&mut self, k: u32, d: libc::xdp_desc) {
        let p = self.entry_ptr(self.mine.wrapping_add(k), 16);
        // SAFETY: as in `put_addr`, for a 16-byte entry.
        unsafe { ptr::write_volatile(p.cast::<libc::xdp_desc>(), d) };
    }

    /// Publishes `n` written entries to the kernel.
    pub(super) fn submit(&mut self, n: u32) {
        self.mine = self.mine.wrapping_add(n);
        self.word(self.producer).store(self.mine, Ordering::Release);
    }

    /// Entries produced and not yet consumed by the kernel.
    pub(super) fn pending(&self) -> u32 {
        self.size - self.free()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring over anonymous memory, standing in for the kernel's.
    fn ring(size: u32, entry: usize) -> Ring {
        let off = libc::xdp_ring_offset {
            producer: 0,
            consumer: 64,
            flags: 128,
            desc: 192,
        };
        let map = Mapping::new(None, Ring::map_len(&off, size, entry), 0).unwrap();
        Ring::new(map, &off, size, entry).unwrap()
    }

    #[test]
    fn produce_consume_and_wrap() {
        let mut fill = ring(4, 8);
        assert_eq!((fill.free(), fill.pending()), (4, 0));
        for round in 0..3u64 {
            for k in 0..3 {
                fill.put_addr(k, round * 10 + u64::from(k));
            }
            fill.submit(3);
            assert_eq!(fill.pending(), 3);
            // The "kernel" consumes: read the entries at its index, move it on.
            let cons = fill.word(fill.consumer).load(Ordering::Relaxed);
            for k in 0..3u32 {
                let p = fill.entry_ptr(cons.wrapping_add(k), 8);
                // SAFETY: inside the test ring's mapping, 8-aligned.
                assert_eq!(unsafe { *p.cast::<u64>() }, round * 10 + u64::from(k));
            }
            fill.word(fill.consumer)
                .store(cons.wrapping_add(3), Ordering::Release);
            assert_eq!(fill.free(), 4);
        }

        let mut rx = ring(4, 16);
        assert_eq!(rx.available(), 0);
        // The "kernel" produces two descriptors.
        for k in 0..2u32 {
            let p = rx.entry_ptr(k, 16);
            let d = libc::xdp_desc {
                addr: 4096 * u64::from(k),
                len: 60 + k,
                options: 0,
            };
            // SAFETY: inside the test ring's mapping, 8-aligned.
            unsafe { ptr::write(p.cast::<libc::xdp_desc>(), d) };
        }
        rx.word(rx.producer).store(2, Ordering::Release);
        assert_eq!(rx.available(), 2);
        assert_eq!((rx.desc_at(1).addr, rx.desc_at(1).len), (4096, 61));
        rx.release(2);
        assert_eq!(rx.available(), 0);
        assert_eq!(rx.word(rx.consumer).load(Ordering::Relaxed), 2);
        assert!(!rx.needs_wakeup());
        rx.word(rx.flags).store(NEED_WAKEUP, Ordering::Relaxed);
        assert!(rx.needs_wakeup());
    }

    #[test]
    fn offsets_outside_the_mapping_are_refused() {
        let off = libc::xdp_ring_offset {
            producer: 0,
            consumer: 64,
            flags: 128,
            desc: 192,
        };
        let map = Mapping::new(None, 256, 0).unwrap();
        assert!(Ring::new(map, &off, 64, 16).is_err());
        let map = Mapping::new(None, 4096, 0).unwrap();
        assert!(Ring::new(map, &off, 3, 16).is_err(), "not a power of two");
        let bad = libc::xdp_ring_offset {
            producer: 5000,
            ..off
        };
        let map = Mapping::new(None, 4096, 0).unwrap();
        assert!(Ring::new(map, &bad, 4, 16).is_err());
    }
}
