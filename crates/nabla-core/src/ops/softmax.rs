//! softmax and log_softmax over one dimension, numerically stable (the row maximum is
//! subtracted before exponentiating), each with a hand-written backward.

use super::with_float_slice;
use crate::error::Result;
use crate::{Float, Tensor, WithDType};
use rayon::prelude::*;

/// Rows of `row` contiguous elements; `log` selects log_softmax.
fn softmax_rows<T: Float>(x: &[T], row: usize, log: bool) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    let work = |(o, x): (&mut [T], &[T])| {
        let max = x.iter().copied().fold(T::neg_infinity(), T::max);
        let max = if max.is_finite() { max } else { T::zero() };
        let mut sum = T::zero();
        for (o, &v) in o.iter_mut().zip(x) {
            *o = (v - max).exp();
            sum += *o;
        }
        if log {
            // NOTE: (v − max) − ln Σ, not v − (ln Σ + max): adding max first rounds ln Σ away
            // at the scale of max (about 6e-5 near 1000 in f32), which the gradient then shows.
            let log_sum = sum.ln();
            o.iter_mut().zip(x).for_each(|(o, &v)| *o = (v - max) - log_sum);
        } else {
            let inv = sum.recip();
            o.iter_mut().for_each(|o| *o *= inv);
        }
    };
    if x.len() >= crate::cpu::strided::PARALLEL_THRESHOLD {
        out.par_chunks_mut(row).zip(x.par_chunks(row)).for_each(work);
    } else {
        out.chunks_mut(row).zip(x.chunks(row)).for_each(work);
    }
    out
}

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
        #[cfg(feature = "cuda")]
        if let Some(out) = super::on_cuda(&moved, "softmax", moved.shape().clone(), |s, l| {
            crate::cuda::ops::softmax(s, l, log)
        })? {
            return out.transpose(d as isize, last as isize)?.contiguous();
        }
        let out = with_float_slice!(&moved, "softmax", |v: T| {
            let off = moved.layout().offset();
            T::into_storage(softmax_rows(&v[off..off + moved.elem_count()], row, log))
        });
        let out = Tensor::from_storage(out, moved.shape().clone());
        out.transpose(d as isize, last as isize)?.contiguous()
    }
}

/// Per row: the loss ln Σⱼ e^(xⱼ) − x_t (through the row maximum m) and, scaled by `scale`,
/// its gradient softmax(x) − onehot(t).
fn xent_rows<T: Float>(x: &[T], cols: usize, targets: &[i64], scale: T) -> (Vec<T>, Vec<T>) {
    let mut loss = Vec::with_capacity(targets.len());
    let mut grad = vec![T::zero(); x.len()];
    for ((row, g), &t) in x.chunks_exact(cols).zip(grad.chunks_exact_mut(cols)).zip(targets) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        let max = if max.is_finite() { max } else { T::zero() };
        let mut sum = T::zero();
        for (g, &v) in g.iter_mut().zip(row) {
            *g = (v - max).exp();
            sum += *g;
        }
        // As log_softmax: −((x_t − m) − ln Σ), rounded the same way.
        loss.push(-((row[t as usize] - max) - sum.ln()));
        let inv = sum.recip();
        for g in g.iter_mut() {
            *g = *g * inv * scale;
        }
        g[t as usize] = g[t as usize] - scale;
    }
    (loss, grad)
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
        let x = self.contiguous()?.detach();
        #[cfg(feature = "cuda")]
        let fused = if x.device().is_cuda() {
            let t = targets.to_device(x.device())?.contiguous()?;
            let (ls, ts) = (x.storage(), t.storage());
            let (loss, grad) =
                crate::cuda::ops::softmax_cross_entropy(ls.cuda(OP)?, ts.cuda(OP)?, rows, cols, Some(scale))?;
            use crate::storage::Storage;
            let grad = grad.expect("asked for");
            Some((
                Tensor::from_any_storage(Storage::Cuda(loss), (rows,)),
                Tensor::from_any_storage(Storage::Cuda(grad), (rows, cols)),
            ))
        } else {
            None
        };
        #[cfg(not(feature = "cuda"))]
        let fused: Option<(Tensor, Tensor)> = None;
        let (per_row, grad) = match fused {
            Some(f) => f,
            None => {
                let t = targets.to_vec::<i64>()?;
                let (loss, grad) = with_float_slice!(&x, OP, |v: T| {
                    let off = x.layout().offset();
                    let (l, g) = xent_rows(&v[off..off + rows * cols], cols, &t, T::from_f64(scale));
                    (T::into_storage(l), T::into_storage(g))
                });
                (
                    Tensor::from_storage(loss, (rows,)),
                    Tensor::from_storage(grad, (rows, cols)),
                )
            }
        };
        let total = per_row.sum_all()?;
        let loss = if mean { total.mul_scalar(scale)? } else { total };
        let loss = loss.detach();
        Ok(loss.record(OP, &[self], move |g| Ok(vec![Some(grad.mul(g)?)])))
    }
}
