//! A pointer that readers load with no lock while a writer replaces what
//! it points to; the writer gets the old value back and frees it only once
//! no reader can still hold it (after a grace period, see
//! [`crate::element::grace`]).
//!
//! The rule the users keep: a reference from [`RcuBox::load`] is used
//! within one lookup of the caller (it never outlives the burst, so never
//! a quiescent point of the reading worker), and a value [`RcuBox::replace`]
//! returns is dropped only after a grace period started after the call has
//! passed (or when nothing can read the cell any more).

use std::marker::PhantomData;
use std::ptr::null_mut;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// An owned `Option<Box<T>>` that readers on other threads load through
/// `&self`.
pub(crate) struct RcuBox<T> {
    ptr: AtomicPtr<T>,
    /// Owns a `Box<T>`; `Sync` only for `T: Send + Sync` (readers share
    /// the value, the writer may free it on another thread).
    _own: PhantomData<(Box<T>, std::sync::Mutex<T>)>,
}

impl<T> Default for RcuBox<T> {
    fn default() -> Self {
        RcuBox {
            ptr: AtomicPtr::new(null_mut()),
            _own: PhantomData,
        }
    }
}

impl<T> RcuBox<T> {
    /// The current value (`Acquire`: what the writer wrote into it before
    /// publishing it is seen).
    ///
    /// # Safety
    ///
    /// The caller is inside a read-side section of the grace domain whose
    /// periods the cell's writer waits for before dropping what
    /// [`RcuBox::replace`] returned: a registered participant of that
    /// domain between two of its quiescent points (the reference is not
    /// kept past the next one), or the writer itself (under the lock that
    /// makes it the only one), or a thread with no writer running
    /// concurrently. A thread outside the domain may find the value freed
    /// under it.
    #[inline(always)]
    pub unsafe fn load(&self) -> Option<&T> {
        let p = self.ptr.load(Acquire);
        // SAFETY: `p` is null or came from `Box::into_raw` in `replace`.
        // That box is freed only when `self` is dropped (then nothing
        // borrows `self`) or when the writer drops the value `replace`
        // returned, which it does only after a grace period started after
        // the replacement has passed: every reader of the domain that could
        // have loaded `p` has since passed a quiescent point, and the caller
        // is such a reader (or the writer) and keeps the reference only
        // until its next one (this function's contract).
        unsafe { p.as_ref() }
    }

    /// Starts loading the value's first cache line, without waiting for
    /// it (a hint; nothing when empty). Safe from any thread: it forms no
    /// reference, and a prefetch of a freed address reads nothing.
    #[inline(always)]
    pub fn prefetch(&self) {
        let p = self.ptr.load(Relaxed);
        if !p.is_null() {
            super::memory::prefetch_ptr(p);
        }
    }

    /// Publishes `new` (`Release`, as part of the swap) and returns the old
    /// value: drop it only after a grace period started after this call.
    pub fn replace(&self, new: Option<Box<T>>) -> Option<Box<T>> {
        let new = new.map_or(null_mut(), Box::into_raw);
        let old = self.ptr.swap(new, AcqRel);
        // SAFETY: `old` is null or came from `Box::into_raw` (above, in an
        // earlier call), and the swap took it out of the cell: no later
        // `load` finds it, and no other owner exists.
        (!old.is_null()).then(|| unsafe { Box::from_raw(old) })
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        drop(self.replace(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    struct Probe<'a>(u32, &'a AtomicUsize);

    impl Drop for Probe<'_> {
        fn drop(&mut self) {
            self.1.fetch_add(1, Relaxed);
        }
    }

    /// A replaced value is handed back, not freed; the cell frees what it
    /// holds when dropped; loads see the latest value.
    #[test]
    fn replaced_values_go_back_to_the_writer_and_the_cell_frees_its_own() {
        let drops = AtomicUsize::new(0);
        let c = RcuBox::default();
        let load = |c: &RcuBox<Probe<'_>>| {
            // SAFETY: this thread is the cell's only writer.
            unsafe { c.load() }.map(|p| p.0)
        };
        assert!(load(&c).is_none());
        assert!(c.replace(Some(Box::new(Probe(1, &drops)))).is_none());
        assert_eq!(load(&c), Some(1));
        let old = c.replace(Some(Box::new(Probe(2, &drops)))).unwrap();
        assert_eq!((old.0, drops.load(Relaxed)), (1, 0), "handed back, alive");
        assert_eq!(load(&c), Some(2));
        drop(old);
        assert_eq!(drops.load(Relaxed), 1);
        drop(c);
        assert_eq!(drops.load(Relaxed), 2, "the cell freed the current one");
    }
}
