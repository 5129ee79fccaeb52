//! Test support for elements and plugins: a counting allocator that proves
//! a data path allocates nothing.
//!
//! Install it as the test binary's global allocator, warm the graph up,
//! then compare [`allocations_here`] before and after pushing packets on
//! the test's own thread (the harness's other threads allocate at will), or
//! [`allocations_total`] when the packets flow on worker threads:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: hpio_nf::testing::CountingAlloc = hpio_nf::testing::CountingAlloc;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static TOTAL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static HERE: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting allocations and reallocations.
pub struct CountingAlloc;

impl CountingAlloc {
    fn count() {
        TOTAL.fetch_add(1, Ordering::Relaxed);
        // `try_with`: the slot may be gone while a thread exits.
        let _ = HERE.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts
// (counting itself never allocates: an atomic and a const thread-local).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by the calling thread so far (with [`CountingAlloc`]
/// installed; 0 otherwise).
pub fn allocations_here() -> u64 {
    HERE.with(Cell::get)
}

/// Allocations made by every thread so far (with [`CountingAlloc`] installed).
pub fn allocations_total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}
