//! softmax and log_softmax over one dimension, numerically stable (the row maximum is
//! subtracted before exponentiating), each with a hand-written backward.

use crate::Tensor;
use crate::error::Result;

impl Tensor {
    /// softmax(x)ᵢ = e^(xᵢ − m) / Σⱼ e^(xⱼ − m), m = maxⱼ xⱼ.  δx = y ⊙ (δ − Σ δ⊙y).
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        let y = self.softmax_forward(dim, false)?;
        let saved = y.detach();
        Ok(y.record("softmax", &[self], move |g| {
            let gy = g.mul(&saved)?;
            Ok(vec![Some(gy.sub(&saved.mul(&gy.sum(&[dim], true)?)?)?)])
        }))
    }

    /// log_softmax(x)ᵢ = xᵢ − m − ln Σⱼ e^(xⱼ − m).  δx = δ − softmax(x) ⊙ Σ δ.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        let y = self.softmax_forward(dim, true)?;
        let saved = y.detach();
        Ok(y.record("log_softmax", &[self], move |g| {
            let p = saved.exp()?;
            Ok(vec![Some(g.sub(&p.mul(&g.sum(&[dim], true)?)?)?)])
        }))
    }

    fn softmax_forward(&self, dim: isize, log: bool) -> Result<Tensor> {
        let d = self.shape().dim(if log { "log_softmax" } else { "softmax" }, dim)?;
        let last = self.rank() - 1;
        // Move `dim` last, compute row-wise, move it back.
        let moved = self.detach().transpose(d as isize, last as isize)?.contiguous()?;
        let row = self.dims()[d];
        if row == 0 || moved.elem_count() == 0 {
            return Ok(self.detach());
        }
        let out = moved.storage().softmax(moved.layout(), log)?;
        let out = Tensor::from_any_storage(out, moved.shape().clone());
        out.transpose(d as isize, last as isize)?.contiguous()
    }
}

impl Tensor {
    /// Softmax cross-entropy of logits `[N, C]` at class indices `targets` `[N]` (i64, checked
    /// by the caller to lie in [0, C)), averaged over the rows when `mean`, else summed: one
    /// pass computes the loss and keeps its gradient (softmax − onehot)/N for the backward
    /// pass, which only scales it by δ.
    pub fn softmax_cross_entropy(&self, targets: &Tensor, mean: bool) -> Result<Tensor> {
        const OP: &str = "softmax_cross_entropy";
        if self.rank() != 2 || targets.rank() != 1 || targets.dims()[0] != self.dims()[0] {
            return crate::error::shape_err(
                OP,
                format!(
                    "expected logits [N, C] and targets [N], got {} and {}",
                    self.shape(),
                    targets.shape()
                ),
            );
        }
        let (rows, cols) = (self.dims()[0], self.dims()[1]);
        let scale = if mean { 1.0 / rows.max(1) as f64 } else { 1.0 };
        if cols == 0 {
            return crate::error::shape_err(OP, format!("logits {} have no classes", self.shape()));
        }
        let x = self.contiguous()?.detach();
        let t = targets.to_device(x.device())?.contiguous()?;
        if t.dtype() != crate::DType::I64 {
            return crate::error::arg_err(OP, format!("targets must be i64, got {:?}", t.dtype()));
        }
        let (loss, grad) = x
            .storage()
            .softmax_cross_entropy(x.layout(), &t.storage(), t.layout(), scale)?;
        let (per_row, grad) = (
            Tensor::from_any_storage(loss, (rows,)),
            Tensor::from_any_storage(grad, (rows, cols)),
        );
        let total = per_row.sum_all()?;
        let loss = if mean { total.mul_scalar(scale)? } else { total };
        let loss = loss.detach();
        Ok(loss.record(OP, &[self], move |g| Ok(vec![Some(grad.mul(g)?)])))
    }
}
