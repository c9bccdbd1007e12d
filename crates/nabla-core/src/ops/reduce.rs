//! Reductions over dimensions (keepdim or not) and over all elements: sum, mean, max/min with
//! their arg-indices, var.

use super::with_float_slice;
use crate::error::{Error, Result, arg_err};
use crate::storage::CpuStorage;
use crate::{Shape, Tensor, WithDType};

/// Which dimensions a reduction removes, resolved and deduplicated.
fn reduced_mask(op: &'static str, shape: &Shape, dims: &[isize]) -> Result<Vec<bool>> {
    let mut mask = vec![false; shape.rank()];
    for &d in dims {
        mask[shape.dim(op, d)?] = true;
    }
    Ok(mask)
}

/// The shape after reducing: reduced dims become 1 (keepdim) or vanish.
fn reduced_shape(shape: &Shape, mask: &[bool], keepdim: bool) -> Shape {
    let dims = shape.dims().iter().zip(mask).filter_map(|(&d, &m)| match (m, keepdim) {
        (true, true) => Some(1),
        (true, false) => None,
        (false, _) => Some(d),
    });
    Shape::new(dims.collect())
}

/// Σ of a contiguous run with eight partial sums (vectorisable, and a smaller rounding error
/// than one running sum).
fn sum_run<T: crate::Float>(run: &[T]) -> T {
    let mut part = [T::zero(); 8];
    let chunks = run.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (p, &x) in part.iter_mut().zip(c) {
            *p += x;
        }
    }
    let mut total = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for &x in rest {
        total += x;
    }
    total
}

impl Tensor {
    /// A contiguous tensor with the reduced dims moved last, and (rows, row length).
    fn reduced_last(&self, mask: &[bool]) -> Result<(Tensor, usize, usize)> {
        let mut perm: Vec<usize> = (0..self.rank()).filter(|&d| !mask[d]).collect();
        perm.extend((0..self.rank()).filter(|&d| mask[d]));
        let moved = self.detach().with_layout(self.layout().permute(&perm)).contiguous()?;
        let row: usize = (0..self.rank()).filter(|&d| mask[d]).map(|d| self.dims()[d]).product();
        let rows: usize = (0..self.rank()).filter(|&d| !mask[d]).map(|d| self.dims()[d]).product();
        Ok((moved, rows, row))
    }

    /// Σ over `dims`.  δx = δ broadcast back over the summed dimensions.
    ///
    /// ```
    /// use nabla_core::Tensor;
    /// let t = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], (2, 3)).unwrap();
    /// assert_eq!(t.sum(&[1], false).unwrap().to_vec::<f32>().unwrap(), vec![6., 15.]);
    /// assert_eq!(t.sum(&[0], true).unwrap().dims(), &[1, 3]);
    /// ```
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let mask = reduced_mask("sum", self.shape(), dims)?;
        let kept = reduced_shape(self.shape(), &mask, true);
        let out = self
            .sum_kernel(&mask)?
            .reshape(reduced_shape(self.shape(), &mask, keepdim))?;
        let from = self.shape().clone();
        Ok(out.record("sum", &[self], move |g| {
            Ok(vec![Some(g.reshape(kept)?.broadcast_to(from)?)])
        }))
    }

    /// The sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        let dims: Vec<isize> = (0..self.rank() as isize).collect();
        self.sum(&dims, false)
    }

    fn sum_kernel(&self, mask: &[bool]) -> Result<Tensor> {
        let shape = reduced_shape(self.shape(), mask, true);
        #[cfg(feature = "cuda")]
        {
            let dims: Vec<usize> = (0..mask.len()).filter(|&d| mask[d]).collect();
            let sum = |s: &crate::cuda::CudaStorage, l: &crate::Layout| {
                crate::cuda::ops::reduce(crate::cuda::ops::ReduceOp::Sum, s, l, &dims)
            };
            if let Some(out) = super::on_cuda(self, "sum", shape.clone(), sum)? {
                return Ok(out);
            }
        }
        let rank = self.rank();
        // Fast path: a contiguous input reduced over a leading block (bias gradients: Σ over the batch).
        let lead = mask.iter().take_while(|&&m| m).count();
        if self.is_contiguous() && lead > 0 && mask[lead..].iter().all(|&m| !m) && lead < rank {
            let inner: usize = self.dims()[lead..].iter().product();
            let out = with_float_slice!(self, "sum", |v: T| {
                let v = &v[self.layout().offset()..self.layout().offset() + self.elem_count()];
                let mut acc = vec![0.0 as T; inner];
                for row in v.chunks_exact(inner.max(1)) {
                    acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x);
                }
                T::into_storage(acc)
            });
            return Ok(Tensor::from_storage(out, shape));
        }
        // Fast path: a contiguous input reduced over a leading and a trailing block, keeping the
        // middle: [A, B, C] → [B] (conv bias gradients: Σ over n, h, w; row sums: A = 1).
        let kept_run = mask[lead..].iter().take_while(|&&m| !m).count();
        if self.is_contiguous() && kept_run > 0 && mask[lead + kept_run..].iter().all(|&m| m) {
            let d = self.dims();
            let b: usize = d[lead..lead + kept_run].iter().product();
            let c: usize = d[lead + kept_run..].iter().product();
            let out = with_float_slice!(self, "sum", |v: T| {
                let v = &v[self.layout().offset()..self.layout().offset() + self.elem_count()];
                let mut acc = vec![0.0 as T; b];
                if c > 0 {
                    for block in v.chunks_exact(b * c) {
                        for (sum, run) in acc.iter_mut().zip(block.chunks_exact(c)) {
                            *sum += sum_run(run);
                        }
                    }
                }
                T::into_storage(acc)
            });
            return Ok(Tensor::from_storage(out, shape));
        }
        let (moved, rows, row) = self.reduced_last(mask)?;
        let out = with_float_slice!(&moved, "sum", |v: T| {
            let v = &v[moved.layout().offset()..];
            T::into_storage(
                (0..rows)
                    .map(|r| v[r * row..(r + 1) * row].iter().copied().sum::<T>())
                    .collect(),
            )
        });
        Ok(Tensor::from_storage(out, shape))
    }

    /// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
    pub fn sum_to_shape(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let extra = self.rank().checked_sub(shape.rank()).ok_or_else(|| Error::Shape {
            op: "sum_to_shape",
            msg: format!("cannot reduce {} to the larger rank of {}", self.shape(), shape),
        })?;
        let mut dims = Vec::new();
        for i in 0..self.rank() {
            if i < extra || (shape.dims()[i - extra] == 1 && self.dims()[i] != 1) {
                dims.push(i as isize);
            } else if shape.dims()[i - extra] != self.dims()[i] {
                return Err(Error::Shape {
                    op: "sum_to_shape",
                    msg: format!("cannot reduce {} to {}", self.shape(), shape),
                });
            }
        }
        self.sum(&dims, true)?.reshape(shape.clone())
    }

    /// The mean over `dims`.  δx = δ / n broadcast back.
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let mask = reduced_mask("mean", self.shape(), dims)?;
        let n: usize = self
            .dims()
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m)
            .map(|(d, _)| *d)
            .product();
        self.sum(dims, keepdim)?.div_scalar(n as f64)
    }

    /// The mean of all elements.
    pub fn mean_all(&self) -> Result<Tensor> {
        let n = self.elem_count();
        self.sum_all()?.div_scalar(n as f64)
    }

    /// The variance over `dims` with `correction` (1: unbiased, PyTorch's default; 0: population).
    /// Built from mean, sub and sqr, so its gradient comes from theirs.
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        let mask = reduced_mask("var", self.shape(), dims)?;
        let n: usize = self
            .dims()
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m)
            .map(|(d, _)| *d)
            .product();
        if n <= correction {
            return arg_err(
                "var",
                format!(
                    "{n} elements per group are too few for correction {correction} in shape {}",
                    self.shape()
                ),
            );
        }
        let centred = self.sub(&self.mean(dims, true)?)?;
        centred.sqr()?.sum(dims, keepdim)?.div_scalar((n - correction) as f64)
    }

    /// Max along `dim` with the index of the (first) maximum, as `torch.max(x, dim)`.
    /// δx = δ placed at the arg-max positions.
    pub fn max(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extremum("max", dim, keepdim, true)
    }

    /// Min along `dim` with the index of the (first) minimum.
    pub fn min(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extremum("min", dim, keepdim, false)
    }

    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        Ok(self.max(dim, keepdim)?.1)
    }

    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        Ok(self.min(dim, keepdim)?.1)
    }

    fn extremum(&self, op: &'static str, dim: isize, keepdim: bool, is_max: bool) -> Result<(Tensor, Tensor)> {
        let d = self.shape().dim(op, dim)?;
        if self.dims()[d] == 0 {
            return arg_err(op, format!("dimension {d} of {} is empty", self.shape()));
        }
        let mut mask = vec![false; self.rank()];
        mask[d] = true;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return self.extremum_cuda(op, d, keepdim, is_max);
        }
        let (moved, rows, row) = self.reduced_last(&mask)?;
        let (values, indices) = with_float_slice!(&moved, op, |v: T| {
            let v = &v[moved.layout().offset()..];
            let mut vals = Vec::with_capacity(rows);
            let mut idx = Vec::with_capacity(rows);
            for r in 0..rows {
                let row_v = &v[r * row..(r + 1) * row];
                let mut best = 0;
                for (i, &x) in row_v.iter().enumerate() {
                    // NaN wins, as in PyTorch: it propagates.
                    let better = if is_max { x > row_v[best] } else { x < row_v[best] };
                    if (better || x.is_nan()) && !row_v[best].is_nan() {
                        best = i;
                    }
                }
                vals.push(row_v[best]);
                idx.push(best as i64);
            }
            (T::into_storage(vals), idx)
        });
        let kept = reduced_shape(self.shape(), &mask, true);
        let out_shape = reduced_shape(self.shape(), &mask, keepdim);
        let values = Tensor::from_storage(values, kept.clone()).reshape(out_shape.clone())?;
        let idx_t = Tensor::from_storage(CpuStorage::I64(indices.clone()), out_shape);
        let (from, dtype) = (self.shape().clone(), self.dtype());
        let values = values.record(op, &[self], move |g| {
            // Scatter δ into a zero tensor laid out with `dim` last, then move `dim` back.
            let g = g.reshape(kept)?.to_vec_f64();
            let mut full = vec![0.0; rows * row];
            for (r, (&i, gv)) in indices.iter().zip(g).enumerate() {
                full[r * row + i as usize] = gv;
            }
            let mut moved_dims: Vec<usize> = (0..from.rank()).filter(|&i| i != d).map(|i| from.dims()[i]).collect();
            moved_dims.push(from.dims()[d]);
            let t = Tensor::from_vec(full, moved_dims)?;
            let last = from.rank() - 1;
            let mut perm: Vec<usize> = (0..last).collect();
            perm.insert(d, last);
            Ok(vec![Some(t.permute(&perm)?.contiguous()?.to_dtype(dtype)?)])
        });
        Ok((values, idx_t))
    }

    /// The largest element. δ is shared equally among tied maxima, as PyTorch's `max()`.
    pub fn max_all(&self) -> Result<Tensor> {
        self.extremum_all(true)
    }

    /// The smallest element. δ is shared equally among tied minima.
    pub fn min_all(&self) -> Result<Tensor> {
        self.extremum_all(false)
    }

    fn extremum_all(&self, is_max: bool) -> Result<Tensor> {
        let flat = self.detach().reshape((self.elem_count(),))?;
        let (v, _) = if is_max {
            flat.max(0, false)?
        } else {
            flat.min(0, false)?
        };
        let x = self.detach();
        let v_saved = v.clone();
        Ok(v.record(if is_max { "max_all" } else { "min_all" }, &[self], move |g| {
            let ties = x.eq(&v_saved)?;
            let count = ties.sum_all()?;
            Ok(vec![Some(ties.mul(g)?.div(&count)?)])
        }))
    }

    /// Σ of an i64 or float tensor, returned as f64 (for counting correct predictions).
    pub fn count_nonzero(&self) -> usize {
        self.to_vec_f64().iter().filter(|&&x| x != 0.0).count()
    }
}

#[cfg(feature = "cuda")]
impl Tensor {
    /// max/min along dimension `d` on a GPU: values and first indices by two reductions;
    /// δx scatters δ to the chosen indices.
    fn extremum_cuda(&self, op: &'static str, d: usize, keepdim: bool, is_max: bool) -> Result<(Tensor, Tensor)> {
        use crate::cuda::ops::{ReduceOp, reduce};
        let mut mask = vec![false; self.rank()];
        mask[d] = true;
        let kept = reduced_shape(self.shape(), &mask, true);
        let out_shape = reduced_shape(self.shape(), &mask, keepdim);
        let (vop, iop) = if is_max {
            (ReduceOp::Max, ReduceOp::ArgMax)
        } else {
            (ReduceOp::Min, ReduceOp::ArgMin)
        };
        let values = super::on_cuda(self, op, kept.clone(), |s, l| reduce(vop, s, l, &[d]))?.expect("on a GPU");
        let indices = super::on_cuda(self, op, kept.clone(), |s, l| reduce(iop, s, l, &[d]))?.expect("on a GPU");
        let idx_out = indices.reshape(out_shape.clone())?;
        let from = self.shape().clone();
        let dtype = self.dtype();
        let device = self.device();
        let values = values.reshape(out_shape)?.record(op, &[self], move |g| {
            let g = g.reshape(kept.clone())?.contiguous()?;
            let mut full = Tensor::zeros(from.clone(), dtype).to_device(device)?.detach();
            {
                let mut dst = full.storage_mut();
                let (gs, is) = (g.storage(), indices.storage());
                let crate::storage::Storage::Cuda(dst) = &mut *dst else {
                    unreachable!("moved to the GPU above")
                };
                crate::cuda::ops::scatter_add(dst, from.dims(), d, is.cuda(op)?, kept.dims(), gs.cuda(op)?)?;
            }
            full = full.detach();
            Ok(vec![Some(full)])
        });
        Ok((values, idx_out))
    }
}
