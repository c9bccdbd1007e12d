//! Local response normalisation across channels (Krizhevsky et al., 2012, §3.3), with
//! PyTorch's convention of dividing α by the window size n:
//!
//! b_c = a_c / s_c^β,  s_c = k + (α/n) Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} a_{c'}²   (channels outside are 0)
//!
//! AlexNet's values are n = 5, α = 1e-4, β = 0.75, k = 2. Backward:
//! δa_j = δb_j s_j^−β − (2αβ/n) a_j Σ_{c: j ∈ window(c)} δb_c a_c s_c^(−β−1).

use super::with_float_slice;
use crate::error::{Result, arg_err, shape_err};
use crate::{Float, Tensor, WithDType};
use rayon::prelude::*;

/// Per-sample work on `[C, S]` blocks: returns s (the scale before the power) for each element.
fn lrn_scale<T: Float>(x: &[T], c: usize, s: usize, size: usize, alpha: f64, k: f64) -> Vec<T> {
    let (before, after) = (size / 2, (size - 1) / 2);
    let coef = T::from_f64(alpha / size as f64);
    let mut scale = vec![T::zero(); x.len()];
    scale
        .par_chunks_mut(c * s)
        .zip(x.par_chunks(c * s))
        .for_each(|(sc, xs)| {
            for ch in 0..c {
                let lo = ch.saturating_sub(before);
                let hi = (ch + after).min(c - 1);
                let dst = &mut sc[ch * s..(ch + 1) * s];
                dst.fill(T::from_f64(0.0));
                for src_ch in lo..=hi {
                    let src = &xs[src_ch * s..(src_ch + 1) * s];
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v * v);
                }
                dst.iter_mut().for_each(|d| *d = T::from_f64(k) + coef * *d);
            }
        });
    scale
}

fn lrn_backward<T: Float>(
    x: &[T],
    scale: &[T],
    dy: &[T],
    c: usize,
    s: usize,
    size: usize,
    alpha: f64,
    beta: f64,
) -> Vec<T> {
    let (before, after) = (size / 2, (size - 1) / 2);
    let coef = T::from_f64(2.0 * alpha * beta / size as f64);
    let b = T::from_f64(beta);
    // t_c = δb_c · a_c · s_c^(−β−1)
    let t: Vec<T> = x
        .iter()
        .zip(scale)
        .zip(dy)
        .map(|((&a, &sc), &g)| g * a * sc.powf(-b - T::one()))
        .collect();
    let mut dx = vec![T::zero(); x.len()];
    dx.par_chunks_mut(c * s).enumerate().for_each(|(n, d)| {
        let base = n * c * s;
        for j in 0..c {
            // channels c whose window holds j: c ∈ [j − after, j + before]
            let lo = j.saturating_sub(after);
            let hi = (j + before).min(c - 1);
            for p in 0..s {
                let mut acc = T::zero();
                for ch in lo..=hi {
                    acc += t[base + ch * s + p];
                }
                let i = base + j * s + p;
                d[j * s + p] = dy[i] * scale[i].powf(-b) - coef * x[i] * acc;
            }
        }
    });
    dx
}

impl Tensor {
    /// Local response normalisation over dimension 1 of `[N, C, ...]` (see the module docs).
    pub fn local_response_norm(&self, size: usize, alpha: f64, beta: f64, k: f64) -> Result<Tensor> {
        if self.rank() < 3 {
            return shape_err(
                "local_response_norm",
                format!("expected [N, C, ...] with at least 3 dimensions, got {}", self.shape()),
            );
        }
        if size == 0 {
            return arg_err("local_response_norm", "size must be positive");
        }
        let (c, s) = (self.dims()[1], self.dims()[2..].iter().product::<usize>());
        if self.elem_count() == 0 {
            return Ok(self.clone());
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return super::on_cuda::local_response_norm(self, size, alpha, beta, k);
        }
        let x = self.contiguous()?.detach();
        let (out, scale) = with_float_slice!(&x, "local_response_norm", |v: T| {
            let v = &v[x.layout().offset()..x.layout().offset() + x.elem_count()];
            let scale = lrn_scale(v, c, s, size, alpha, k);
            let b = T::from_f64(beta);
            let out: Vec<T> = v.iter().zip(&scale).map(|(&a, &sc)| a / sc.powf(b)).collect();
            (T::into_storage(out), T::into_storage(scale))
        });
        let shape = self.shape().clone();
        let out = Tensor::from_storage(out, shape.clone());
        let scale = Tensor::from_storage(scale, shape.clone());
        Ok(out.record("local_response_norm", &[self], move |g| {
            let g = g.contiguous()?;
            let dx = with_float_slice!(&x, "local_response_norm", |v: T| {
                let xs = &v[x.layout().offset()..];
                let sc = scale.to_vec::<T>()?;
                let gv = g.to_vec::<T>()?;
                T::into_storage(lrn_backward(&xs[..sc.len()], &sc, &gv, c, s, size, alpha, beta))
            });
            Ok(vec![Some(Tensor::from_storage(dx, shape))])
        }))
    }
}
