//! A growable buffer of plain numbers whose data starts on a 64-byte line, for the operands AMX
//! tiles load and store. A tile row that straddles two cache lines costs `tileloadd` about 3x
//! (one Sapphire Rapids core: 2.1 against 0.6 TFLOP/s for the tile kernel with every operand 32
//! bytes off a line, `--example amx_tiles`), and `Vec`'s alignment is the element's: whether a
//! buffer lands on a line is up to the allocator (mimalloc's large blocks do, glibc's do not).

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// A cache line's worth of bytes: the unit of storage.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

const ZERO: Line = Line([0; 64]);

/// The element types: plain numbers whose size divides 64 and for which every bit pattern,
/// all-zero included, is a valid value.
///
/// # Safety
/// Implement only for such types.
pub unsafe trait Plain: Copy + Default + 'static {}

// SAFETY: plain integers and floats of 1, 2 or 4 bytes: any bits are a value.
unsafe impl Plain for u8 {}
// SAFETY: as above.
unsafe impl Plain for u16 {}
// SAFETY: as above.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for i32 {}
// SAFETY: as above.
unsafe impl Plain for f32 {}

/// Like `Vec<T>` for `resize`/`clear` and slice access, with the data on a 64-byte line.
pub struct AlignedVec<T: Plain> {
    lines: Vec<Line>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Plain> Default for AlignedVec<T> {
    fn default() -> Self {
        Self { lines: Vec::new(), len: 0, _t: PhantomData }
    }
}

impl<T: Plain> AlignedVec<T> {
    const PER_LINE: usize = 64 / std::mem::size_of::<T>();

    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the length to `len`, filling new elements with `value` (kept ones stay).
    pub fn resize(&mut self, len: usize, value: T) {
        let old = self.len;
        self.lines.resize(len.div_ceil(Self::PER_LINE), ZERO);
        self.len = len;
        if len > old {
            self[old..].fill(value);
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Elements that fit without reallocating.
    pub fn capacity(&self) -> usize {
        self.lines.capacity() * Self::PER_LINE
    }
}

impl<T: Plain> Deref for AlignedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `lines` holds at least `len · size_of::<T>()` initialised bytes (resize keeps
        // `len` within its lines), a line is 64-byte aligned so any `T` (size dividing 64) is
        // aligned, and every bit pattern is a `T` (`Plain`).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: Plain> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

/// `src` copied twice: starting on a 64-byte line, and 16 bytes past one (AMX reads the first
/// in place and copies the second first); each with where `src` starts in it. For tests that
/// cover both paths whatever the allocator.
#[cfg(test)]
pub(crate) fn on_and_off_a_line(src: &[u16]) -> [(AlignedVec<u16>, usize); 2] {
    [0, 8].map(|skew| {
        let mut v = AlignedVec::new();
        v.resize(src.len() + 32, 0);
        v[skew..skew + src.len()].copy_from_slice(src);
        (v, skew)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_starts_on_a_line_and_resize_keeps_and_fills_like_vec() {
        let mut v = AlignedVec::<u16>::new();
        assert!(v.is_empty());
        v.resize(5, 7);
        assert_eq!(&v[..], &[7; 5]);
        v[1] = 1;
        v.resize(40, 9);
        assert_eq!(v.as_ptr() as usize % 64, 0);
        assert_eq!((v[0], v[1], v[4], v[5], v[39], v.len()), (7, 1, 7, 9, 9, 40));
        v.resize(3, 0);
        assert_eq!(&v[..], &[7, 1, 7]);
        v.clear();
        v.resize(2, 4);
        assert_eq!(&v[..], &[4, 4], "cleared elements are filled again, not kept");
        let f = {
            let mut f = AlignedVec::<f32>::new();
            f.resize(17, 0.5);
            f
        };
        assert_eq!(f.as_ptr() as usize % 64, 0);
        assert!(f.capacity() >= 32, "whole lines: 17 floats take two");
    }
}
