//! Matrix products with PyTorch's `matmul` semantics: 2-D, batched, broadcast batch dims,
//! and 1-D operands promoted to matrices.

use crate::error::{Error, Result, shape_err};
use crate::{Shape, Tensor};

impl Tensor {
    /// The matrix product.  For C = A·B:  δA = δC·Bᵀ,  δB = Aᵀ·δC  (summed over broadcast batch dims).
    ///
    /// ```
    /// use nabla_core::Tensor;
    /// let a = Tensor::from_vec(vec![1f32, 2., 3., 4.], (2, 2)).unwrap();
    /// let b = Tensor::from_vec(vec![5f32, 6., 7., 8.], (2, 2)).unwrap();
    /// assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), vec![19., 22., 43., 50.]);
    /// let bad = Tensor::zeros((512, 10), nabla_core::DType::F32);
    /// let x = Tensor::zeros((32, 784), nabla_core::DType::F32);
    /// assert_eq!(x.matmul(&bad).unwrap_err().to_string(),
    ///            "matmul: lhs [32, 784] and rhs [512, 10] do not match: 784 != 512");
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_in(rhs, crate::autocast::current())
    }

    /// [`matmul`](Self::matmul) with f32 operands in `precision`, whatever the autocast scope.
    pub fn matmul_in(&self, rhs: &Tensor, precision: crate::autocast::Precision) -> Result<Tensor> {
        match (self.rank(), rhs.rank()) {
            (0, _) | (_, 0) => shape_err(
                "matmul",
                format!(
                    "both operands need at least one dimension, got {} and {}",
                    self.shape(),
                    rhs.shape()
                ),
            ),
            (1, 1) => self.unsqueeze(0)?.matmul_in(&rhs.unsqueeze(1)?, precision)?.reshape(()),
            (1, _) => self.unsqueeze(0)?.matmul_in(rhs, precision)?.squeeze(-2),
            (_, 1) => self.matmul_in(&rhs.unsqueeze(1)?, precision)?.squeeze(-1),
            _ => self.matmul_nd(rhs, precision),
        }
    }

    fn matmul_nd(&self, rhs: &Tensor, precision: crate::autocast::Precision) -> Result<Tensor> {
        let (ld, rd) = (self.dims(), rhs.dims());
        let (m, k) = (ld[ld.len() - 2], ld[ld.len() - 1]);
        let (k2, n) = (rd[rd.len() - 2], rd[rd.len() - 1]);
        if k != k2 {
            return shape_err(
                "matmul",
                format!("lhs {} and rhs {} do not match: {k} != {k2}", self.shape(), rhs.shape()),
            );
        }
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            });
        }
        let batch = Shape::broadcast(
            "matmul",
            &Shape::from(&ld[..ld.len() - 2]),
            &Shape::from(&rd[..rd.len() - 2]),
        )
        .map_err(|_| Error::Shape {
            op: "matmul",
            msg: format!(
                "batch dimensions of lhs {} and rhs {} cannot be broadcast",
                self.shape(),
                rhs.shape()
            ),
        })?;
        let mut lhs_full = batch.dims().to_vec();
        lhs_full.extend([m, k]);
        let mut rhs_full = batch.dims().to_vec();
        rhs_full.extend([k, n]);
        let ll = self.layout().broadcast_to("matmul", &Shape::new(lhs_full))?;
        let rl = rhs.layout().broadcast_to("matmul", &Shape::new(rhs_full))?;
        let mut out_dims = batch.dims().to_vec();
        out_dims.extend([m, n]);
        crate::limits::check_tensor(&out_dims, self.dtype().size_in_bytes(), "matmul output")?;
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: self.dtype(),
            });
        }
        let out = self.storage().matmul(&ll, &rhs.storage(), &rl, precision)?;
        let out = Tensor::from_any_storage(out, out_dims);
        let (a, b) = (self.detach(), rhs.detach());
        let (ta, tb) = (self.tracks_grad(), rhs.tracks_grad());
        Ok(out.record("matmul", &[self, rhs], move |g| {
            // NOTE: when an operand is a transposed view (a Linear layer's Wᵀ), its gradient is
            // computed transposed, (δCᵀ·A)ᵀ instead of Aᵀ·δC, so that it reaches the weight in
            // the weight's own row-major layout: no strided copy in the optimiser.
            // The backward products run in the forward's precision, as PyTorch's autocast.
            let ga = if !ta {
                None
            } else if is_transposed(&a) {
                Some(
                    b.matmul_in(&g.transpose(-1, -2)?, precision)?
                        .transpose(-1, -2)?
                        .sum_to_shape(a.shape())?,
                )
            } else {
                Some(g.matmul_in(&b.transpose(-1, -2)?, precision)?.sum_to_shape(a.shape())?)
            };
            let gb = if !tb {
                None
            } else if is_transposed(&b) {
                Some(
                    g.transpose(-1, -2)?
                        .matmul_in(&a, precision)?
                        .transpose(-1, -2)?
                        .sum_to_shape(b.shape())?,
                )
            } else {
                Some(a.transpose(-1, -2)?.matmul_in(g, precision)?.sum_to_shape(b.shape())?)
            };
            Ok(vec![ga, gb])
        }))
    }
}

/// True for a matrix (or batch of them) stored column-major: a transposed row-major tensor.
fn is_transposed(t: &Tensor) -> bool {
    let r = t.rank();
    let (d, st) = (t.dims(), t.layout().strides());
    r >= 2 && d[r - 1] > 1 && d[r - 2] > 1 && st[r - 2] == 1 && st[r - 1] == d[r - 2]
}
