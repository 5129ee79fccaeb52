//! A pointer (with a tag) that readers load with no lock while a writer
//! replaces what it points to; the writer gets the old value back and
//! frees it only once no reader can still hold it (after a grace period,
//! see [`crate::element::grace`]).
//!
//! The rule the users keep: a reference from [`RcuSlots::load`] is used
//! within one lookup of the caller (it never outlives the burst, so never
//! a quiescent point of the reading worker), and a value
//! [`RcuSlots::replace`] returns is dropped only after a grace period
//! started after the call has passed (or when nothing can read the cell
//! any more).

use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

/// How many words a [`RcuSlots`] value of tag `tag` holds: the tag and
/// the pointer share one word, so the length is the tag's to tell.
pub(crate) trait SlotsLen {
    fn len(tag: u16) -> usize;
}

/// Bits of a user-space address on the 64-bit targets this runs on (x86-64
/// and AArch64 with 48-bit virtual addresses; Linux gives no higher address
/// to a process that does not ask for one).
const ADDR: u64 = (1 << 48) - 1;

/// An owned `Option<(Box<[u128]>, u16)>` in one atomic word: the boxed
/// words' address below bit 48, a 16-bit tag above, whose [`SlotsLen`]
/// gives the length. Readers load both at once through `&self` with no
/// lock while a writer replaces them, so that what a reader needs before
/// its first access into the value (say, where to look in it) comes with
/// the pointer instead of from the value's own first line.
pub(crate) struct RcuSlots<L: SlotsLen> {
    word: AtomicU64,
    _own: PhantomData<(Box<[u128]>, L)>,
}

impl<L: SlotsLen> Default for RcuSlots<L> {
    fn default() -> Self {
        RcuSlots {
            word: AtomicU64::new(0),
            _own: PhantomData,
        }
    }
}

impl<L: SlotsLen> RcuSlots<L> {
    /// The current words and tag (`Acquire`: what the writer wrote into
    /// them before publishing them is seen).
    ///
    /// # Safety
    ///
    /// The caller is inside a read-side section of the grace domain whose
    /// periods the cell's writer waits for before dropping what
    /// [`RcuSlots::replace`] returned: a registered participant of that
    /// domain between two of its quiescent points (the reference is not
    /// kept past the next one), or the writer itself (under the lock that
    /// makes it the only one), or a thread with no writer running
    /// concurrently. A thread outside the domain may find the words freed
    /// under it.
    #[inline(always)]
    pub unsafe fn load(&self) -> Option<(&[u128], u16)> {
        let w = self.word.load(Acquire);
        if w == 0 {
            return None;
        }
        let tag = (w >> 48) as u16;
        let p = (w & ADDR) as usize as *const u128;
        // SAFETY: a nonzero word was made by `replace` from a live
        // `Box<[u128]>` of `L::len(tag)` words (checked there) at `p`. That
        // box is freed only when `self` is dropped (then nothing borrows
        // `self`) or when the writer drops what `replace` returned, which it
        // does only after a grace period started after the replacement has
        // passed: every reader of the domain that could have loaded the word
        // has since passed a quiescent point, and the caller is such a
        // reader (or the writer) and keeps the slice only until its next
        // one (this function's contract).
        Some((unsafe { std::slice::from_raw_parts(p, L::len(tag)) }, tag))
    }

    /// The current words' address and tag, for a prefetch: safe, as it
    /// reads nothing there (the words may be freed by the time it is used).
    #[inline(always)]
    pub fn peek(&self) -> Option<(*const u128, u16)> {
        let w = self.word.load(Relaxed);
        (w != 0).then_some(((w & ADDR) as usize as *const u128, (w >> 48) as u16))
    }

    /// Publishes `new` (`Release`) and returns the old words: drop them only
    /// after a grace period started after this call. Panics when `new`'s
    /// length is not its tag's or its address does not fit 48 bits.
    pub fn replace(&self, new: Option<(Box<[u128]>, u16)>) -> Option<Box<[u128]>> {
        let w = match new {
            None => 0,
            Some((b, tag)) => {
                let p = b.as_ptr() as usize as u64;
                assert!(b.len() == L::len(tag) && p & !ADDR == 0 && p != 0);
                Box::into_raw(b).cast::<u128>() as usize as u64 | u64::from(tag) << 48
            }
        };
        let old = self.word.swap(w, AcqRel);
        (old != 0).then(|| {
            let p = (old & ADDR) as usize as *mut u128;
            let len = L::len((old >> 48) as u16);
            // SAFETY: `old` was made above from `Box::into_raw` of a
            // `Box<[u128]>` of `len` words at `p`, and the swap took it out
            // of the cell: no later `load` finds it, no other owner exists.
            unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) }
        })
    }
}

impl<L: SlotsLen> Drop for RcuSlots<L> {
    fn drop(&mut self) {
        drop(self.replace(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Three;

    impl SlotsLen for Three {
        fn len(tag: u16) -> usize {
            usize::from(tag) + 3
        }
    }

    /// The tag comes back with the words it was stored with; replaced
    /// words go back to the writer whole; a wrong length is refused.
    #[test]
    fn slots_keep_their_tag_and_length() {
        let c = RcuSlots::<Three>::default();
        // SAFETY: this thread is the cell's only writer (so at each load).
        assert!(unsafe { c.load() }.is_none());
        let words: Box<[u128]> = vec![1, 2, u128::MAX, 4].into();
        assert!(c.replace(Some((words, 1))).is_none());
        // SAFETY: as above.
        let (w, tag) = unsafe { c.load() }.unwrap();
        assert_eq!((w, tag), (&[1, 2, u128::MAX, 4][..], 1));
        let old = c
            .replace(Some((vec![7; 0x7fff + 3].into(), 0x7fff)))
            .unwrap();
        assert_eq!(&old[..], &[1, 2, u128::MAX, 4]);
        // SAFETY: as above.
        let (w, tag) = unsafe { c.load() }.unwrap();
        assert_eq!((w.len(), w[0x7fff + 2], tag), (0x7fff + 3, 7, 0x7fff));
        let bad = std::panic::catch_unwind(|| c.replace(Some((vec![0; 4].into(), 0))));
        assert!(bad.is_err(), "4 words under a tag of 3");
        // SAFETY: as above.
        assert_eq!(unsafe { c.load() }.unwrap().1, 0x7fff, "left as it was");
    }
}
