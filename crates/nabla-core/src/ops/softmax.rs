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
