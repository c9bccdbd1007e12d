//! Shapes and layouts. A layout is a shape, a stride per dimension and an offset into storage:
//! views (transpose, narrow, broadcast, ...) change the layout and share the storage.

use crate::error::{Error, Result, shape_err};

/// The size of each dimension of a tensor.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: Vec<usize>) -> Self {
        Shape(dims)
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// The number of elements (1 for a scalar).
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }
    /// Row-major strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.rank()];
        for i in (0..self.rank().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1].max(1);
        }
        strides
    }
    /// Resolves a possibly negative dimension index (PyTorch's `dim=-1`).
    pub fn dim(&self, op: &'static str, dim: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank } else { dim };
        if d < 0 || d >= rank {
            return Err(Error::DimOutOfRange {
                op,
                dim,
                shape: self.clone(),
            });
        }
        Ok(d as usize)
    }

    /// The shape two operands broadcast to, NumPy's rule: align the trailing dimensions;
    /// sizes must be equal or one of them 1.
    pub fn broadcast(op: &'static str, lhs: &Shape, rhs: &Shape) -> Result<Shape> {
        let rank = lhs.rank().max(rhs.rank());
        let mut dims = vec![0; rank];
        for i in 0..rank {
            let l = if i + lhs.rank() >= rank {
                lhs.0[i + lhs.rank() - rank]
            } else {
                1
            };
            let r = if i + rhs.rank() >= rank {
                rhs.0[i + rhs.rank() - rank]
            } else {
                1
            };
            dims[i] = match (l, r) {
                (l, r) if l == r => l,
                (1, r) => r,
                (l, 1) => l,
                _ => {
                    return shape_err(
                        op,
                        format!("shapes {lhs} and {rhs} cannot be broadcast: {l} != {r} in dimension {i}"),
                    );
                }
            };
        }
        Ok(Shape(dims))
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(v: &Vec<usize>) -> Self {
        Shape(v.clone())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(vec![])
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
macro_rules! tuple_shape {
    ($($idx:tt),+) => {
        impl From<($(tuple_shape!(@usize $idx),)+)> for Shape {
            fn from(t: ($(tuple_shape!(@usize $idx),)+)) -> Self {
                Shape(vec![$(t.$idx),+])
            }
        }
    };
    (@usize $idx:tt) => { usize };
}
tuple_shape!(0);
tuple_shape!(0, 1);
tuple_shape!(0, 1, 2);
tuple_shape!(0, 1, 2, 3);
tuple_shape!(0, 1, 2, 3, 4);
tuple_shape!(0, 1, 2, 3, 4, 5);

/// Where each element of a tensor lives in its storage: `offset + Σ index[i]·strides[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    pub fn contiguous(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }
    pub fn new(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        Layout { shape, strides, offset }
    }
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    /// True when the elements are laid out row-major without gaps (size-1 dims ignored).
    pub fn is_contiguous(&self) -> bool {
        // NOTE: without this, the strides of an empty shape such as [2, 0] (from
        // `contiguous_strides`, which counts a 0 as 1) would fail the test below, so `contiguous()`
        // could never make such a tensor contiguous and `reshape` panicked.
        if self.elem_count() == 0 {
            return true;
        }
        let mut expected = 1;
        for (&d, &s) in self.shape.dims().iter().zip(&self.strides).rev() {
            if d == 1 {
                continue;
            }
            if s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// If contiguous, the storage range it covers.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.elem_count())
    }

    /// The layout with dimensions reordered: `new.dims[i] = old.dims[perm[i]]`.
    pub fn permute(&self, perm: &[usize]) -> Layout {
        let dims = perm.iter().map(|&p| self.shape.dims()[p]).collect();
        let strides = perm.iter().map(|&p| self.strides[p]).collect();
        Layout {
            shape: Shape(dims),
            strides,
            offset: self.offset,
        }
    }

    /// A view of `len` elements of `dim` starting at `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut dims = self.shape.dims().to_vec();
        dims[dim] = len;
        Layout {
            shape: Shape(dims),
            strides: self.strides.clone(),
            offset: self.offset + start * self.strides[dim],
        }
    }

    /// Every `step`-th of `len` elements of `dim` from `start` (the caller checked the range).
    pub fn slice(&self, dim: usize, start: usize, len: usize, step: usize) -> Layout {
        let mut out = self.narrow(dim, start, len);
        out.strides[dim] *= step;
        out
    }

    /// The layout broadcast to `shape` (stride 0 along broadcast dimensions).
    pub fn broadcast_to(&self, op: &'static str, shape: &Shape) -> Result<Layout> {
        let rank = shape.rank();
        if self.shape.rank() > rank {
            return shape_err(op, format!("cannot broadcast {} to {}", self.shape, shape));
        }
        let extra = rank - self.shape.rank();
        let mut strides = vec![0; rank];
        for i in 0..rank {
            if i < extra {
                continue;
            }
            let (d, s) = (self.shape.dims()[i - extra], self.strides[i - extra]);
            if d == shape.dims()[i] {
                strides[i] = if d == 1 { 0 } else { s };
            } else if d == 1 {
                strides[i] = 0;
            } else {
                return shape_err(op, format!("cannot broadcast {} to {}", self.shape, shape));
            }
        }
        Ok(Layout {
            shape: shape.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// A reshape without copying, if the strides allow it (PyTorch's `view` rule).
    pub fn reshape_view(&self, shape: &Shape) -> Option<Layout> {
        if self.is_contiguous() {
            return Some(Layout {
                shape: shape.clone(),
                strides: shape.contiguous_strides(),
                offset: self.offset,
            });
        }
        None
    }

    /// Storage offsets of all elements in row-major order.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::new(self)
    }

    /// Merges dimensions that are contiguous with each other, so iteration has fewer levels.
    /// Returns `(dims, strides)` with at least one dimension.
    pub fn collapsed(&self) -> (Vec<usize>, Vec<usize>) {
        let mut dims: Vec<usize> = Vec::new();
        let mut strides: Vec<usize> = Vec::new();
        for (&d, &s) in self.shape.dims().iter().zip(&self.strides) {
            if d == 1 {
                continue;
            }
            if let (Some(ld), Some(ls)) = (dims.last_mut(), strides.last_mut())
                && *ls == s * d
            {
                *ld *= d;
                *ls = s;
                continue;
            }
            dims.push(d);
            strides.push(s);
        }
        if dims.is_empty() {
            dims.push(1);
            strides.push(1);
        }
        (dims, strides)
    }
}

/// Iterator over storage offsets in row-major order of a (possibly strided) layout.
pub struct StridedOffsets<'a> {
    dims: Vec<usize>,
    strides: Vec<usize>,
    index: Vec<usize>,
    next: Option<usize>,
    _layout: std::marker::PhantomData<&'a Layout>,
}

impl<'a> StridedOffsets<'a> {
    fn new(layout: &'a Layout) -> Self {
        let (dims, strides) = layout.collapsed();
        let next = if layout.elem_count() == 0 {
            None
        } else {
            Some(layout.offset())
        };
        StridedOffsets {
            index: vec![0; dims.len()],
            dims,
            strides,
            next,
            _layout: std::marker::PhantomData,
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        let mut next = current;
        let mut done = true;
        for d in (0..self.dims.len()).rev() {
            self.index[d] += 1;
            if self.index[d] < self.dims[d] {
                next += self.strides[d];
                done = false;
                break;
            }
            next -= (self.dims[d] - 1) * self.strides[d];
            self.index[d] = 0;
        }
        self.next = if done { None } else { Some(next) };
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        let s = Shape::broadcast("t", &Shape::from((3, 1, 5)), &Shape::from((4, 1))).unwrap();
        assert_eq!(s.dims(), &[3, 4, 5]);
        let e = Shape::broadcast("add", &Shape::from((2, 3)), &Shape::from((4,))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 3] and [4] cannot be broadcast: 3 != 4 in dimension 1"
        );
    }

    #[test]
    fn offsets_of_a_transposed_layout() {
        let l = Layout::contiguous((2, 3)).permute(&[1, 0]);
        assert_eq!(l.offsets().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
        let n = Layout::contiguous((3, 4)).narrow(1, 1, 2);
        assert_eq!(n.offsets().collect::<Vec<_>>(), vec![1, 2, 5, 6, 9, 10]);
    }
}
