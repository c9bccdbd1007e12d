//! Views: reshape, permute/transpose, narrow, broadcast, squeeze/unsqueeze, flatten. They
//! share storage with their input when the strides allow it; `contiguous()` copies.

use crate::error::{Result, arg_err, shape_err};
use crate::{Layout, Shape, Tensor};

impl Tensor {
    /// A row-major copy if the layout has gaps or another order; `self` otherwise.  δx = δ.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let out = self.contiguous_copy()?;
        Ok(out.record("contiguous", &[self], |g| Ok(vec![Some(g.clone())])))
    }

    /// A dense copy with storage of its own, even when this tensor is already contiguous.
    /// Not recorded for autograd.
    pub fn contiguous_copy(&self) -> Result<Tensor> {
        let out = self.storage().cast(self.layout(), self.dtype())?;
        Ok(Tensor::from_any_storage(out, self.shape().clone()))
    }

    /// The same elements in another shape with as many elements; a view when contiguous.
    /// δx = reshape(δ, shape(x)).
    ///
    /// ```
    /// use nabla_core::{DType, Tensor};
    /// let t = Tensor::arange(0., 6., 1., DType::F32).unwrap().reshape((2, 3)).unwrap();
    /// assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![0., 1., 2.], vec![3., 4., 5.]]);
    /// ```
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return shape_err(
                "reshape",
                format!(
                    "cannot reshape {} ({} elements) into {} ({} elements)",
                    self.shape(),
                    self.elem_count(),
                    shape,
                    shape.elem_count()
                ),
            );
        }
        let base = self.contiguous()?;
        let layout = base
            .layout()
            .reshape_view(&shape)
            .expect("contiguous layouts can be reshaped");
        let out = base.with_layout(layout);
        let from = self.shape().clone();
        Ok(out.record("reshape", &[&base], move |g| Ok(vec![Some(g.reshape(from)?)])))
    }

    /// Reorders the dimensions: `out.dims[i] = self.dims[perm[i]]`.  δx = permute(δ, perm⁻¹).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
            return shape_err(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the {rank} dimensions of {}",
                    self.shape()
                ),
            );
        }
        let out = self.with_layout(self.layout().permute(perm));
        let mut inverse = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(out.record("permute", &[self], move |g| Ok(vec![Some(g.permute(&inverse)?)])))
    }

    /// Swaps two dimensions (negative indices count from the end).
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let (a, b) = (self.shape().dim("transpose", d0)?, self.shape().dim("transpose", d1)?);
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a 2-D tensor (PyTorch's `.t()`).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return shape_err("t", format!("expected a 2-D tensor, got shape {}", self.shape()));
        }
        self.transpose(0, 1)
    }

    /// `len` elements of `dim` from `start`, as a view.  δx = δ placed into zeros at the same spot.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.shape().dim("narrow", dim)?;
        let size = self.dims()[d];
        // NOTE: written so that a huge `start` or `len` cannot overflow: an Err, not a panic.
        if start > size || len > size - start {
            return arg_err(
                "narrow",
                format!(
                    "range {start}..{} out of bounds for dimension {d} of size {size} in {}",
                    start.saturating_add(len),
                    self.shape()
                ),
            );
        }
        Ok(self.stepped_view("narrow", d, start, len, 1))
    }

    /// The view of every `step`-th of `len` elements of dim `d` from `start` (checked by the
    /// caller), recorded as `op`: δx = δ placed into zeros at the same elements.
    fn stepped_view(&self, op: &'static str, d: usize, start: usize, len: usize, step: usize) -> Tensor {
        // NOTE: with one element or none the step is never taken; a huge one would overflow
        // the stride (below that, step < size and stride · step stays inside the buffer).
        let step = if len <= 1 { 1 } else { step };
        let out = self.with_layout(self.layout().slice(d, start, len, step));
        let shape = self.shape().clone();
        out.record(op, &[self], move |g| {
            // NOTE: zeros on δ's device (CPU zeros here broke every GPU backward through narrow,
            // split and ResNet's option-A shortcut).
            let full = Tensor::full_on(0.0, shape, g.dtype(), g.device())?;
            full.stepped_view(op, d, start, len, step).copy_(g)?;
            Ok(vec![Some(full)])
        })
    }

    /// `x[..., start:end:step, ...]` along `dim`, as a view (PyTorch's slicing): every `step`-th
    /// element from `start` up to `end` (exclusive), both clamped to the dimension's size.
    /// δx = δ placed into zeros at the same elements.
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Result<Tensor> {
        let d = self.shape().dim("slice", dim)?;
        if step == 0 {
            return arg_err("slice", "step must be positive");
        }
        let size = self.dims()[d];
        let (start, end) = (start.min(size), end.min(size));
        let len = end.saturating_sub(start).div_ceil(step);
        Ok(self.stepped_view("slice", d, start, len, step))
    }

    /// Repeats size-1 dimensions (and prepends new ones) to reach `shape`, without copying.
    /// δx = δ summed over the broadcast dimensions.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        let out = self.with_layout(self.layout().broadcast_to("broadcast_to", &shape)?);
        let from = self.shape().clone();
        Ok(out.record("broadcast_to", &[self], move |g| Ok(vec![Some(g.sum_to_shape(&from)?)])))
    }

    /// Alias of [`Tensor::broadcast_to`] with PyTorch's name.
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    /// Inserts a dimension of size 1 at `dim` (which may equal the rank, or be negative).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank + 1 } else { dim };
        if d < 0 || d > rank {
            return Err(crate::Error::DimOutOfRange {
                op: "unsqueeze",
                dim,
                shape: self.shape().clone(),
            });
        }
        let (d, l) = (d as usize, self.layout());
        let mut dims = self.dims().to_vec();
        let mut strides = l.strides().to_vec();
        let stride = if d < strides.len() { strides[d] * dims[d] } else { 1 };
        dims.insert(d, 1);
        strides.insert(d, stride);
        let out = self.with_layout(Layout::new(Shape::new(dims), strides, l.offset()));
        let from = self.shape().clone();
        Ok(out.record("unsqueeze", &[self], move |g| Ok(vec![Some(g.reshape(from)?)])))
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.shape().dim("squeeze", dim)?;
        if self.dims()[d] != 1 {
            return shape_err(
                "squeeze",
                format!("dimension {d} of {} has size {}, not 1", self.shape(), self.dims()[d]),
            );
        }
        let l = self.layout();
        let mut dims = self.dims().to_vec();
        let mut strides = l.strides().to_vec();
        dims.remove(d);
        strides.remove(d);
        let out = self.with_layout(Layout::new(Shape::new(dims), strides, l.offset()));
        let from = self.shape().clone();
        Ok(out.record("squeeze", &[self], move |g| Ok(vec![Some(g.reshape(from)?)])))
    }

    /// Merges dimensions `start..=end` into one (PyTorch's `flatten(start_dim, end_dim)`).
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape((1,));
        }
        let (s, e) = (self.shape().dim("flatten", start)?, self.shape().dim("flatten", end)?);
        if s > e {
            return arg_err("flatten", format!("start dimension {s} is after end dimension {e}"));
        }
        let dims = self.dims();
        let mut new: Vec<usize> = dims[..s].to_vec();
        new.push(dims[s..=e].iter().product());
        new.extend_from_slice(&dims[e + 1..]);
        self.reshape(new)
    }

    /// Flattens all dimensions but the first (`[N, ...] → [N, features]`).
    pub fn flatten_from(&self, start: isize) -> Result<Tensor> {
        self.flatten(start, -1)
    }
}
