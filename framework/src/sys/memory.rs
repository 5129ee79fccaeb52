//! Memory advice: large tables asking the kernel for transparent huge pages.

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
}
