//! Batch normalisation on host memory, fused: one pass for the statistics, one for y; the
//! backward pass in two (Ioffe & Szegedy, 2015, §3):
//!
//! x̂ = (x − μ)·σ̂⁻¹, σ̂⁻¹ = 1/√(σ² + ε);  δγ = Σ δy·x̂,  δβ = Σ δy,
//! δx = γ·σ̂⁻¹·(δy − δβ/m − x̂·δγ/m)   (m = N·S values per channel).
//!
//! In evaluation mode, one multiply-add per value: y = x·a + b with a = γ/√(σ² + ε) and
//! b = β − μ·a from the running statistics.

use crate::backend::params::BatchNormParams;
use crate::{Float, WithDType};
use rayon::prelude::*;

/// The values of channel `ch` of a `[N, C, S]` block, sample by sample.
fn channel<'a, T>(x: &'a [T], p: &'a BatchNormParams, ch: usize) -> impl Iterator<Item = &'a [T]> + 'a {
    (0..p.n).map(move |i| &x[(i * p.c + ch) * p.s..(i * p.c + ch + 1) * p.s])
}

/// (y, μ, σ̂⁻¹, σ² biased) of one training step; statistics accumulated in f64.
pub(crate) fn batch_norm_train<T: Float>(
    x: &[T],
    w: &[T],
    b: &[T],
    p: &BatchNormParams,
) -> (Vec<T>, Vec<T>, Vec<T>, Vec<f64>) {
    let m = (p.n * p.s) as f64;
    let stats: Vec<(f64, f64)> = (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let sum: f64 = channel(x, p, ch)
                .flat_map(|r| r.iter())
                .map(|&v| WithDType::to_f64(v))
                .sum();
            let mean = sum / m;
            let sq: f64 = channel(x, p, ch)
                .flat_map(|r| r.iter())
                .map(|&v| (WithDType::to_f64(v) - mean).powi(2))
                .sum();
            (mean, sq / m)
        })
        .collect();
    let plane = p.s.max(1);
    let y = super::par_filled_chunks(
        x.len() / plane,
        plane,
        || (),
        |_, k, yo: &mut [T]| {
            let ch = k % p.c;
            let (mean, var) = stats[ch];
            let inv = T::from_f64(1.0 / (var + p.eps).sqrt());
            let (mu, g, beta) = (T::from_f64(mean), w[ch], b[ch]);
            for (o, &v) in yo.iter_mut().zip(&x[k * plane..(k + 1) * plane]) {
                *o = (v - mu) * inv * g + beta;
            }
        },
    );
    let mean = stats.iter().map(|s| T::from_f64(s.0)).collect();
    let inv_std = stats.iter().map(|s| T::from_f64(1.0 / (s.1 + p.eps).sqrt())).collect();
    (y, mean, inv_std, stats.iter().map(|s| s.1).collect())
}

/// (δx, δγ, δβ) from x, δy, γ and the saved μ, σ̂⁻¹.
pub(crate) fn batch_norm_backward<T: Float>(
    x: &[T],
    dy: &[T],
    w: &[T],
    mean: &[T],
    inv_std: &[T],
    p: &BatchNormParams,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let m = (p.n * p.s) as f64;
    let sums: Vec<(f64, f64)> = (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let (mu, inv) = (WithDType::to_f64(mean[ch]), WithDType::to_f64(inv_std[ch]));
            let (mut db, mut dg) = (0.0, 0.0);
            for (xr, gr) in channel(x, p, ch).zip(channel(dy, p, ch)) {
                for (&v, &g) in xr.iter().zip(gr) {
                    db += WithDType::to_f64(g);
                    dg += WithDType::to_f64(g) * (WithDType::to_f64(v) - mu) * inv;
                }
            }
            (dg, db)
        })
        .collect();
    let plane = p.s.max(1);
    let dx = super::par_filled_chunks(
        x.len() / plane,
        plane,
        || (),
        |_, k, d: &mut [T]| {
            let ch = k % p.c;
            let (dg, db) = sums[ch];
            let (mu, inv, g) = (mean[ch], inv_std[ch], w[ch]);
            let (mean_db, mean_dg) = (T::from_f64(db / m), T::from_f64(dg / m));
            let scale = g * inv;
            let (xi, gi) = (&x[k * plane..(k + 1) * plane], &dy[k * plane..(k + 1) * plane]);
            for ((o, &v), &gv) in d.iter_mut().zip(xi).zip(gi) {
                let x_hat = (v - mu) * inv;
                *o = scale * (gv - mean_db - x_hat * mean_dg);
            }
        },
    );
    let dgamma = sums.iter().map(|s| T::from_f64(s.0)).collect();
    let dbeta = sums.iter().map(|s| T::from_f64(s.1)).collect();
    (dx, dgamma, dbeta)
}

/// y = x·a_c + b_c with a_c = γ_c/√(σ²_c + ε), b_c = β_c − μ_c·a_c (a and b in f64, then `T`):
/// evaluation mode with the running mean μ and variance σ².
pub(crate) fn batch_norm_eval<T: Float>(
    x: &[T],
    w: &[T],
    b: &[T],
    mean: &[T],
    var: &[T],
    p: &BatchNormParams,
) -> Vec<T> {
    let f = |v: T| WithDType::to_f64(v);
    let (scale, shift): (Vec<T>, Vec<T>) = (0..p.c)
        .map(|ch| {
            let a = f(w[ch]) / (f(var[ch]) + p.eps).sqrt();
            (T::from_f64(a), T::from_f64(f(b[ch]) - f(mean[ch]) * a))
        })
        .unzip();
    let plane = p.s.max(1);
    super::par_filled_chunks(
        x.len() / plane,
        plane,
        || (),
        |_, k, yo: &mut [T]| {
            let (a, b) = (scale[k % p.c], shift[k % p.c]);
            for (o, &v) in yo.iter_mut().zip(&x[k * plane..(k + 1) * plane]) {
                *o = v * a + b;
            }
        },
    )
}
