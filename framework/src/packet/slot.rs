//! The memory behind a [`Packet`](super::Packet): one allocation holding a
//! cache line of [`Meta`] followed by the slot's raw bytes (headroom, hpio
//! header, frame), whose size is chosen when the slot is made.
//!
//! This is the only `unsafe` of the packet module besides the pool's bulk
//! moves. A [`SlotPtr`] is one thin pointer, like the `Box` it replaces, so
//! batches of packets stay arrays of 8-byte pointers whatever the slot size;
//! a `Box<[u8]>`-style fat pointer would double every batch move.
//!
//! Invariants, upheld by this module alone:
//! - the pointer comes from [`std::alloc::alloc_zeroed`] with [`layout`]`(raw_len)`
//!   and is owned by exactly one `SlotPtr`;
//! - `Meta` sits at the start and is initialised; the raw bytes follow at
//!   offset `size_of::<Meta>()` (64) and are initialised (zeroed at first);
//! - `raw_len` is stored in the `Meta` as a [`RawLen`], which only this
//!   module can make, and never changes: [`Meta`]'s other fields may be
//!   rewritten freely, but not that one.

// The packet module's one exception to `deny(unsafe_code)` besides the
// pool's bulk moves: every block below carries its SAFETY argument.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use super::{Meta, DEFAULT_DATA_OFFSET, DEFAULT_MAX_FRAME};

/// The raw length of a slot, stored in its [`Meta`]. Only this module makes
/// one (private field, neither `Clone` nor `Copy`), so no other code can
/// change a slot's recorded size and make [`SlotPtr::raw`] overrun.
#[derive(Debug)]
pub(super) struct RawLen(u32);

impl RawLen {
    /// The length in bytes.
    #[inline(always)]
    pub(super) fn get(&self) -> usize {
        self.0 as usize
    }
}

/// Bytes of a slot's allocation before its raw bytes.
const META_LEN: usize = std::mem::size_of::<Meta>();

const _: () = assert!(META_LEN == 64, "Meta must be exactly one cache line");
const _: () = assert!(std::mem::align_of::<Meta>() == 64);
const _: () = assert!(
    !std::mem::needs_drop::<Meta>(),
    "Drop frees the slot without running Meta's drop glue"
);

/// Largest raw length a slot may have: it is stored in a `u32`, and the
/// allocation size must not overflow.
pub(super) const MAX_RAW_LEN: usize = 1 << 20;
/// Smallest raw length a slot has: a default slot's. Every slot being at
/// least this long lets the compiler drop the bounds checks of accesses
/// below it (the frame's start, a 64-byte copy into a fresh slot), as
/// when every slot had this one size.
pub(super) const MIN_RAW_LEN: usize = DEFAULT_DATA_OFFSET + DEFAULT_MAX_FRAME;

/// The layout of a slot with `raw_len` raw bytes: 64-byte aligned, so the
/// metadata fills line 0 and the raw bytes start on line 1.
fn layout(raw_len: usize) -> Layout {
    Layout::from_size_align(META_LEN + raw_len, 64).expect("slot layout: size checked by new()")
}

/// An owned slot: a thin pointer to `Meta` + raw bytes.
pub(super) struct SlotPtr(NonNull<Meta>);

// SAFETY: a `SlotPtr` owns its allocation exactly as a `Box` would (no
// aliasing pointer exists; see the invariants above), and its contents are
// plain data (`Meta` is `Send`), so moving it to another thread is sound.
unsafe impl Send for SlotPtr {}
// SAFETY: `&SlotPtr` only gives shared, read-only access to plain data.
unsafe impl Sync for SlotPtr {}

impl SlotPtr {
    /// A new slot of `raw_len` raw bytes (clamped to
    /// [`MIN_RAW_LEN`]..=[`MAX_RAW_LEN`]), all zero, with `meta` built by
    /// `init` from its [`RawLen`].
    pub(super) fn new(raw_len: usize, init: impl FnOnce(RawLen) -> Meta) -> SlotPtr {
        let raw_len = raw_len.clamp(MIN_RAW_LEN, MAX_RAW_LEN);
        let layout = layout(raw_len);
        // SAFETY: the layout has a non-zero size (at least META_LEN).
        let ptr = unsafe { alloc::alloc_zeroed(layout) } as *mut Meta;
        let Some(ptr) = NonNull::new(ptr) else {
            alloc::handle_alloc_error(layout)
        };
        let meta = init(RawLen(raw_len as u32));
        debug_assert_eq!(meta.raw_len.get(), raw_len);
        // SAFETY: `ptr` is valid for writes of a `Meta` and aligned to 64
        // (the layout's alignment); writing does not drop the zeroes there.
        unsafe { ptr.as_ptr().write(meta) };
        SlotPtr(ptr)
    }

    /// The metadata.
    #[inline(always)]
    pub(super) fn meta(&self) -> &Meta {
        // SAFETY: the `Meta` at the start is initialised (by `new`) and
        // owned by `self`; the shared borrow of `self` keeps it unaliased
        // by any `&mut`.
        unsafe { self.0.as_ref() }
    }

    /// The metadata, writable. Its `raw_len` cannot be replaced from outside
    /// this module: a [`RawLen`] cannot be made or copied there.
    #[inline(always)]
    pub(super) fn meta_mut(&mut self) -> &mut Meta {
        // SAFETY: as in `meta`; `&mut self` makes the access exclusive.
        unsafe { self.0.as_mut() }
    }

    /// The raw length, which the compiler may take as at least [`MIN_RAW_LEN`].
    #[inline(always)]
    fn raw_len(&self) -> usize {
        let len = self.meta().raw_len.get();
        // SAFETY: `new` clamps every slot's raw length to at least
        // MIN_RAW_LEN and it never changes afterwards.
        unsafe { std::hint::assert_unchecked(len >= MIN_RAW_LEN) };
        len
    }

    /// The raw bytes (headroom, hpio header, frame room).
    #[inline(always)]
    pub(super) fn raw(&self) -> &[u8] {
        let len = self.raw_len();
        // SAFETY: the allocation holds `len` initialised bytes right after
        // the 64-byte `Meta` (it was made with `layout(len)` and zeroed, and
        // only ever written with initialised bytes since); `len` is the
        // value `new` stored, which nothing else can change.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(META_LEN), len) }
    }

    /// The raw bytes, writable.
    #[inline(always)]
    pub(super) fn raw_mut(&mut self) -> &mut [u8] {
        let len = self.raw_len();
        // SAFETY: as in `raw`; `&mut self` makes the access exclusive, and
        // the slice does not overlap the `Meta`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr().cast::<u8>().add(META_LEN), len) }
    }

    /// The metadata and the raw bytes at once, both writable (disjoint parts
    /// of the allocation).
    #[inline(always)]
    pub(super) fn split_mut(&mut self) -> (&mut Meta, &mut [u8]) {
        let len = self.raw_len();
        let base = self.0.as_ptr();
        // SAFETY: the `Meta` (bytes 0..64) and the raw bytes (64..64+len)
        // do not overlap; both are initialised and owned by `self`, and
        // `&mut self` makes both borrows exclusive for their lifetime.
        unsafe {
            let raw = std::slice::from_raw_parts_mut(base.cast::<u8>().add(META_LEN), len);
            (&mut *base, raw)
        }
    }
}

impl Drop for SlotPtr {
    fn drop(&mut self) {
        let layout = layout(self.meta().raw_len.get());
        // SAFETY: the pointer came from `alloc_zeroed(layout)` with this very
        // layout (the raw length never changes) and is freed once, here;
        // `Meta` has no drop glue to run.
        unsafe { alloc::dealloc(self.0.as_ptr().cast::<u8>(), layout) }
    }
}
