//! Memory advice: large tables asking the kernel for transparent huge pages,
//! and cache prefetch hints for lookups into them.

/// Asks the kernel to back the whole 2 MiB pages inside `buf` with huge
/// pages (`madvise(MADV_HUGEPAGE)`), for a large table read at random (a
/// route table: one TLB entry then covers 2 MiB instead of 4 KiB). Best
/// effort: errors (no THP support, `never`) are ignored. Call it before the
/// memory is first written, so that the first touch faults in huge pages.
pub(crate) fn advise_huge_pages<T>(buf: &mut [T]) {
    const HUGE: usize = 2 << 20;
    let start = buf.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(buf);
    let first = start.next_multiple_of(HUGE);
    let last = end - end % HUGE;
    if first >= last {
        return;
    }
    // SAFETY: [first, last) lies inside `buf`, which we borrow mutably, and
    // is page aligned; MADV_HUGEPAGE changes only how the kernel backs the
    // pages, never their contents, so no Rust reference sees a change.
    unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_HUGEPAGE,
        );
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn advising_keeps_the_contents() {
        let mut v: Vec<u16> = (0..(3 << 20)).map(|i| i as u16).collect();
        super::advise_huge_pages(&mut v);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u16));
        super::advise_huge_pages(&mut v[..10]);
        super::advise_huge_pages::<u8>(&mut []);
    }

    #[test]
    fn prefetching_keeps_the_contents() {
        let v: Vec<u16> = (0..4096).collect();
        for i in (0..v.len()).step_by(97) {
            super::prefetch(&v[i]);
        }
        super::prefetch(&v[v.len() - 1]);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u16));
    }
}
