//! Reductions over dimensions (keepdim or not) and over all elements: sum, mean, max/min with
//! their arg-indices, var.

use crate::backend::params::ReduceOp;
use crate::error::{Error, Result, arg_err};
use crate::{DType, Shape, Tensor};

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

impl Tensor {
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

    /// Σ over the dims in `mask`, keeping them (size 1), through the device's kernel.
    fn sum_kernel(&self, mask: &[bool]) -> Result<Tensor> {
        self.reduce_kernel(ReduceOp::Sum, mask)
    }

    fn reduce_kernel(&self, op: ReduceOp, mask: &[bool]) -> Result<Tensor> {
        let dims: Vec<usize> = (0..mask.len()).filter(|&d| mask[d]).collect();
        let out = self.storage().reduce(self.layout(), op, &dims)?;
        Ok(Tensor::from_any_storage(out, reduced_shape(self.shape(), mask, true)))
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
        if self.dtype() == DType::I64 {
            return Err(Error::UnsupportedDType { op, dtype: DType::I64 });
        }
        let mut mask = vec![false; self.rank()];
        mask[d] = true;
        let (vop, iop) = if is_max {
            (ReduceOp::Max, ReduceOp::ArgMax)
        } else {
            (ReduceOp::Min, ReduceOp::ArgMin)
        };
        let kept = self.detach().reduce_kernel(iop, &mask)?;
        let out_shape = reduced_shape(self.shape(), &mask, keepdim);
        let values = self.detach().reduce_kernel(vop, &mask)?.reshape(out_shape.clone())?;
        let indices = kept.reshape(out_shape)?;
        let (from, kept_shape) = (self.shape().clone(), kept.shape().clone());
        let values = values.record(op, &[self], move |g| {
            // δ goes to the chosen position of each row: scatter_add into zeros (gather's adjoint).
            let zeros = Tensor::full_on(0.0, from.clone(), g.dtype(), g.device())?;
            Ok(vec![Some(zeros.scatter_add(
                d as isize,
                &kept,
                &g.reshape(kept_shape.clone())?,
            )?)])
        });
        Ok((values, indices))
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

    /// The number of non-zero elements (for counting correct predictions).
    pub fn count_nonzero(&self) -> Result<usize> {
        Ok(self.to_vec_f64()?.iter().filter(|&&x| x != 0.0).count())
    }
}
