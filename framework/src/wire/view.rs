//! What every header view shares: the length error, the view boilerplate,
//! and the fixed-size window over a header that makes accessors bounds-check free.

use std::fmt;

/// A buffer too short for the fixed part of the header a view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer too short for the header")
    }
}

impl std::error::Error for Truncated {}

/// The first `N` bytes of `b` as an array. Accessors index the array with
/// constant ranges, so once a view's length check has passed (and the
/// compiler has inlined it) no bounds check is left.
#[inline(always)]
pub(super) fn head<const N: usize>(b: &[u8]) -> &[u8; N] {
    match b.get(..N) {
        Some(h) => h.try_into().unwrap_or_else(|_| unreachable!()),
        None => too_short(),
    }
}

/// [`head`], writable.
#[inline(always)]
pub(super) fn head_mut<const N: usize>(b: &mut [u8]) -> &mut [u8; N] {
    match b.get_mut(..N) {
        Some(h) => h.try_into().unwrap_or_else(|_| unreachable!()),
        None => too_short(),
    }
}

/// Only a view made with `new_unchecked` over a short buffer gets here.
#[cold]
#[inline(never)]
fn too_short() -> ! {
    panic!("header view over a buffer shorter than its header (made with new_unchecked)")
}

/// The big-endian `u16` at the constant range `r` of a header.
#[inline(always)]
pub(super) fn get16(h: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([h[r.start], h[r.start + 1]])
}

/// Writes `v` big-endian at the constant range `r` of a header.
#[inline(always)]
pub(super) fn set16(h: &mut [u8], r: std::ops::Range<usize>, v: u16) {
    h[r].copy_from_slice(&v.to_be_bytes());
}

/// The bytes at the constant range `r` of a header, as an array.
#[inline(always)]
pub(super) fn array<const M: usize>(h: &[u8], r: std::ops::Range<usize>) -> [u8; M] {
    let mut a = [0u8; M];
    a.copy_from_slice(&h[r]);
    a
}

/// Declares a view type over a buffer `T`: `new_unchecked`, `new_checked`
/// (the buffer holds at least `$len` bytes), `check_len`, `into_inner`,
/// `as_bytes`, and the private `fixed`/`fixed_mut` windows over the first
/// `$len` bytes.
macro_rules! view {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Bytes the view needs: its accessors read only these.
            pub const LEN: usize = $len;

            /// A view over `buffer`, without a length check: accessors
            /// panic if `buffer` is shorter than [`Self::LEN`].
            #[inline(always)]
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// A view over `buffer`, which holds at least [`Self::LEN`]
            /// bytes; then no accessor can panic.
            #[inline(always)]
            pub fn new_checked(buffer: T) -> Result<Self, $crate::wire::Truncated> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// Whether the buffer holds the header's fixed part.
            #[inline(always)]
            pub fn check_len(&self) -> Result<(), $crate::wire::Truncated> {
                if self.buffer.as_ref().len() < Self::LEN {
                    Err($crate::wire::Truncated)
                } else {
                    Ok(())
                }
            }

            /// The buffer back.
            #[inline(always)]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The whole buffer, header and what follows.
            #[inline(always)]
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }

            #[inline(always)]
            fn fixed(&self) -> &[u8; $len] {
                $crate::wire::view::head::<{ $len }>(self.buffer.as_ref())
            }
        }

        impl<'a> $name<&'a [u8]> {
            /// A view over the fixed part of the header at `off` in
            /// `frame` (only [`Self::LEN`] bytes: `as_bytes` gives no more),
            /// or `None` when `frame` ends before it. One range check: the
            /// form for the data path.
            #[inline(always)]
            pub fn at(frame: &'a [u8], off: usize) -> Option<Self> {
                frame
                    .get(off..off.saturating_add(Self::LEN))
                    .map(Self::new_unchecked)
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            #[inline(always)]
            #[allow(dead_code)]
            fn fixed_mut(&mut self) -> &mut [u8; $len] {
                $crate::wire::view::head_mut::<{ $len }>(self.buffer.as_mut())
            }
        }
    };
}

pub(super) use view;
