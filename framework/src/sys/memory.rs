//! Memory advice: large tables asking the kernel for transparent huge pages,
//! and cache prefetch hints for lookups into them.

/// A huge page: the unit [`HugeSlice`] aligns large tables to.
const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length array of `T` on a memory mapping of its own: from 1 MiB
/// up, 2 MiB aligned, rounded up to whole 2 MiB and advised for
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`) before its first
/// write, so that a table read at random (a hash table) takes one TLB
/// entry per 2 MiB instead of 512. A `Vec` is not 2 MiB aligned, so a
/// 2 MiB table in one spans no whole huge page. Smaller arrays get plain
/// pages (a huge page would waste most of its 2 MiB). Best effort:
/// without THP the pages are ordinary.
pub(crate) struct HugeSlice<T: Copy> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    /// Bytes mapped at `ptr` (0: nothing mapped, `ptr` dangling).
    mapped: usize,
}

// SAFETY: a HugeSlice owns its mapping alone (no other pointer to it is
// ever handed out but borrows of `self`), like a `Box<[T]>`: sending it
// sends its `T`s, sharing it shares `&[T]`.
unsafe impl<T: Copy + Send> Send for HugeSlice<T> {}
// SAFETY: as above; `&HugeSlice<T>` gives only `&[T]`.
unsafe impl<T: Copy + Sync> Sync for HugeSlice<T> {}

impl<T: Copy> HugeSlice<T> {
    /// `len` copies of `value`. Aborts like `Vec` when the memory cannot
    /// be had.
    pub(crate) fn new(len: usize, value: T) -> HugeSlice<T> {
        let s = HugeSlice::<T>::mapped(len);
        for i in 0..len {
            // SAFETY: i < len and len * size_of::<T>() <= mapped bytes at
            // `ptr`, which is page aligned (so aligned for T), readable
            // and writable; `write` drops nothing (T: Copy).
            unsafe { s.ptr.as_ptr().add(i).write(value) };
        }
        s
    }

    /// `len` places for a `T` on a fresh anonymous mapping: all bytes
    /// zero, no page touched (the kernel backs a page at its first write,
    /// so what is never written costs no memory). Private: only types
    /// for which zero bytes are a value may be read from it (`new` writes
    /// every place first; [`AtomicArray`] holds atomics, zero when zero).
    fn mapped(len: usize) -> HugeSlice<T> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .expect("HugeSlice: length overflows");
        if bytes == 0 {
            let ptr = std::ptr::NonNull::dangling();
            return HugeSlice {
                ptr,
                len,
                mapped: 0,
            };
        }
        let huge = bytes >= HUGE_PAGE / 2;
        let mapped = bytes.next_multiple_of(if huge { HUGE_PAGE } else { 4096 });
        let slack = if huge { HUGE_PAGE } else { 0 };
        let fail = || {
            let layout = std::alloc::Layout::from_size_align(mapped, 4096);
            std::alloc::handle_alloc_error(layout.expect("page layout"))
        };
        // SAFETY: an anonymous private mapping at an address the kernel
        // picks touches no existing memory; the result is checked.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped + slack,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            fail();
        }
        let start = (raw as usize).next_multiple_of(if huge { HUGE_PAGE } else { 1 });
        let (head, tail) = (start - raw as usize, slack - (start - raw as usize));
        // SAFETY: [raw, start) and [start + mapped, raw + mapped + slack)
        // are the page-aligned ends of the mapping just made, outside the
        // part kept; nothing refers to them. MADV_HUGEPAGE on the kept
        // part changes how the kernel backs it, not its (zero) contents.
        unsafe {
            if head != 0 {
                libc::munmap(raw, head);
            }
            if tail != 0 {
                libc::munmap((start + mapped) as *mut libc::c_void, tail);
            }
            if huge {
                libc::madvise(start as *mut libc::c_void, mapped, libc::MADV_HUGEPAGE);
            }
        }
        let Some(ptr) = std::ptr::NonNull::new(start as *mut T) else {
            fail()
        };
        HugeSlice { ptr, len, mapped }
    }

    /// Whether it lies on a 2 MiB boundary (arrays from 1 MiB up).
    #[cfg(test)]
    pub(crate) fn huge_aligned(&self) -> bool {
        self.mapped != 0 && self.ptr.as_ptr() as usize % HUGE_PAGE == 0
    }
}

impl<T: Copy> std::ops::Deref for HugeSlice<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialized `T`s (written in `new`),
        // or is dangling with len 0 or T zero-sized; `&self` keeps the
        // mapping alive and unaliased by `&mut`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for HugeSlice<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for HugeSlice<T> {
    fn clone(&self) -> HugeSlice<T> {
        let Some(&first) = self.first() else {
            let ptr = std::ptr::NonNull::dangling();
            return HugeSlice {
                ptr,
                len: 0,
                mapped: 0,
            };
        };
        let mut c = HugeSlice::new(self.len, first);
        c.copy_from_slice(self);
        c
    }
}

impl<T: Copy> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        if self.mapped != 0 {
            // SAFETY: [ptr, ptr + mapped) is the mapping `new` kept, still
            // mapped, and no borrow outlives `self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
        }
    }
}

/// Atomics whose all-zero bytes are the value 0, and the plain integer of
/// the same size and alignment they are stored as.
pub(crate) trait ZeroAtomic: Sync + Send {
    /// The integer type of the same layout.
    type Plain: Copy;
}

impl ZeroAtomic for std::sync::atomic::AtomicU16 {
    type Plain = u16;
}

impl ZeroAtomic for std::sync::atomic::AtomicU64 {
    type Plain = u64;
}

/// `N` atomics, all 0, on a mapping of their own as a [`HugeSlice`] (2 MiB
/// aligned from 1 MiB up), seen only as `[A; N]` (so that an index the
/// compiler can bound below `N`, a 24-bit number into 2^24 entries, needs
/// no bounds check): a table one thread
/// writes while others read it, with no lock. The mapping is never
/// written at creation, so the pages no entry is ever stored to cost no
/// memory (a table of fixed full capacity costs what is used of it), and
/// it never moves: a reader's reference stays valid while the table lives.
pub(crate) struct AtomicArray<A: ZeroAtomic, const N: usize> {
    /// Never dereferenced as `[A::Plain]` (which would read memory others
    /// change through atomics): only through `Deref` below.
    mem: HugeSlice<A::Plain>,
    _atomics: std::marker::PhantomData<A>,
}

impl<A: ZeroAtomic, const N: usize> AtomicArray<A, N> {
    /// `N` atomics holding 0.
    pub(crate) fn zeroed() -> AtomicArray<A, N> {
        const {
            assert!(std::mem::size_of::<A>() == std::mem::size_of::<A::Plain>());
            assert!(std::mem::align_of::<A>() == std::mem::align_of::<A::Plain>());
        }
        AtomicArray {
            mem: HugeSlice::mapped(N),
            _atomics: std::marker::PhantomData,
        }
    }

    /// Whether it lies on a 2 MiB boundary (arrays from 1 MiB up).
    #[cfg(test)]
    pub(crate) fn huge_aligned(&self) -> bool {
        self.mem.huge_aligned()
    }
}

impl<A: ZeroAtomic, const N: usize> std::ops::Deref for AtomicArray<A, N> {
    type Target = [A; N];
    #[inline(always)]
    fn deref(&self) -> &[A; N] {
        // SAFETY: the mapping holds N places of `A::Plain` (zero bytes
        // from mmap, then only ever written through this view's atomics),
        // and `A` has the size and alignment of `A::Plain` (asserted in
        // `zeroed`) with zero bytes meaning 0, so it is N valid `A`s; the
        // borrow of `self` keeps the mapping alive.
        unsafe { &*self.mem.ptr.as_ptr().cast::<[A; N]>() }
    }
}

// SAFETY: the array is only reached as `&[A; N]` (atomics, Sync + Send);
// the mapping is owned alone and unmapped on drop, like a `Box<[A; N]>`.
unsafe impl<A: ZeroAtomic, const N: usize> Send for AtomicArray<A, N> {}
// SAFETY: as above: sharing it shares `&[A; N]`, which atomics allow.
unsafe impl<A: ZeroAtomic, const N: usize> Sync for AtomicArray<A, N> {}

/// Asks the processor to start loading the cache line holding `x` into
/// all cache levels, without waiting for it: a lookup that computes many
/// table indices first and reads the entries afterwards overlaps their
/// cache misses. A hint only; nothing else changes. A no-op off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 (SSE, present on every x86-64 processor) reads no
    // data into a register and cannot fault; `x` is a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// [`prefetch`] of the line at `p`, which may dangle (a block a writer may
/// have freed since the pointer was read): the instruction reads nothing
/// and cannot fault, whatever the address.
#[inline(always)]
pub(crate) fn prefetch_ptr<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 (SSE, present on every x86-64 processor) is a hint:
    // it reads no data into a register and cannot fault on any address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefetching_keeps_the_contents() {
        let v: Vec<u16> = (0..4096).collect();
        for i in (0..v.len()).step_by(97) {
            super::prefetch(&v[i]);
        }
        super::prefetch(&v[v.len() - 1]);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u16));
    }

    #[test]
    fn huge_slices_hold_their_values_apart_and_align_large_ones() {
        use super::HugeSlice;
        // 2 MiB of 32-byte entries, as Nat44's mapping slots.
        let mut big = HugeSlice::new(65536, [7u64; 4]);
        assert!(big.huge_aligned() && big.len() == 65536);
        assert!(big.iter().all(|e| *e == [7; 4]));
        big[65535] = [1, 2, 3, 4];
        let copy = big.clone();
        big[65535][0] = 9;
        assert_eq!((copy[65535], big[65535][0]), ([1, 2, 3, 4], 9));
        assert!(copy.huge_aligned());
        // Small ones: plain pages, still zero-cost to index.
        let small = HugeSlice::new(10, 3u16);
        assert!(!small.huge_aligned() && small.iter().all(|&x| x == 3));
        let empty = HugeSlice::new(0, 0u8);
        assert!(empty.is_empty() && empty.clone().is_empty());
        drop((big, copy, small));
    }

    /// An atomic array starts all 0, costs no memory for the pages never
    /// written, and keeps what is stored in it.
    #[test]
    fn atomic_arrays_start_zero_and_touch_only_written_pages() {
        use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
        let a = super::AtomicArray::<AtomicU16, { 64 << 20 }>::zeroed();
        // The resident 4 KiB pages of the array's 128 MiB (its own mapping).
        let resident = || {
            let mut v = vec![0u8; (128 << 20) / 4096];
            // SAFETY: the range is the array's page-aligned mapping, alive
            // here; `v` has one byte per page of it.
            let r = unsafe {
                libc::mincore(a.as_ptr() as *mut libc::c_void, 128 << 20, v.as_mut_ptr())
            };
            assert_eq!(r, 0);
            v.iter().filter(|&&b| b & 1 != 0).count() * 4096
        };
        assert!(a.huge_aligned());
        assert_eq!(resident(), 0);
        a[12345].store(7, Relaxed);
        a[(64 << 20) - 1].store(9, Relaxed);
        let grown = resident();
        assert!(grown <= 4 << 20, "128 MiB mapped, {grown} bytes resident");
        assert_eq!(a[12345].load(Relaxed) + a[(64 << 20) - 1].load(Relaxed), 16);
        assert!(a[..1000].iter().all(|e| e.load(Relaxed) == 0));
    }
}
