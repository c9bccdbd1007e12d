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

/// Independent partial sums per row: the compiler keeps them in vector registers.
const LANES: usize = 16;

/// Σ f(v) over one row: in `T`, `LANES` partial sums (a plane of at most a few thousand values),
/// then in f64. A single f64 running sum is one add per value in a chain, 4 cycles each: it was
/// most of batch norm's time on ResNet-20's planes.
#[inline]
fn row_sum<T: Float>(r: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut acc = [T::zero(); LANES];
    let mut chunks = r.chunks_exact(LANES);
    for c in &mut chunks {
        let c: &[T; LANES] = c.try_into().unwrap();
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| WithDType::to_f64(f(v))).sum();
    acc.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>() + tail
}

/// (Σ f(a, b).0, Σ f(a, b).1) over two rows of equal length, as [`row_sum`].
#[inline]
fn row_sums_of_pairs<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> (T, T)) -> (f64, f64) {
    let (mut acc0, mut acc1) = ([T::zero(); LANES], [T::zero(); LANES]);
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        // Fixed-size rows: no bounds checks, so the loop is vectorised.
        let (x, y): (&[T; LANES], &[T; LANES]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for i in 0..LANES {
            let (u, v) = f(x[i], y[i]);
            (acc0[i], acc1[i]) = (acc0[i] + u, acc1[i] + v);
        }
    }
    let to = |acc: [T; LANES]| acc.iter().map(|&a| WithDType::to_f64(a)).sum::<f64>();
    let (mut s0, mut s1) = (to(acc0), to(acc1));
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        let (u, v) = f(x, y);
        (s0, s1) = (s0 + WithDType::to_f64(u), s1 + WithDType::to_f64(v));
    }
    (s0, s1)
}

/// (y, μ, σ̂⁻¹, σ² biased) of one training step; statistics summed per plane in `T`, across
/// planes in f64.
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
            let sum: f64 = channel(x, p, ch).map(|r| row_sum(r, |v| v)).sum();
            let mean = sum / m;
            let mu = T::from_f64(mean);
            let sq: f64 = channel(x, p, ch).map(|r| row_sum(r, |v| (v - mu) * (v - mu))).sum();
            (mean, sq / m)
        })
        .collect();
    let plane = p.s.max(1);
    let y = super::par_chunks_from(x.len() / plane, plane, |k| {
        let ch = k % p.c;
        let (mean, var) = stats[ch];
        let inv = T::from_f64(1.0 / (var + p.eps).sqrt());
        let (mu, g, beta) = (T::from_f64(mean), w[ch], b[ch]);
        x[k * plane..(k + 1) * plane]
            .iter()
            .map(move |&v| (v - mu) * inv * g + beta)
    });
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
            let mu = mean[ch];
            let (mut db, mut dg) = (0.0, 0.0);
            for (xr, gr) in channel(x, p, ch).zip(channel(dy, p, ch)) {
                let (sg, sgx) = row_sums_of_pairs(gr, xr, |g, v| (g, g * (v - mu)));
                (db, dg) = (db + sg, dg + sgx);
            }
            (dg * WithDType::to_f64(inv_std[ch]), db)
        })
        .collect();
    let plane = p.s.max(1);
    let dx = super::par_chunks_from(x.len() / plane, plane, |k| {
        let ch = k % p.c;
        let (dg, db) = sums[ch];
        let (mu, inv, g) = (mean[ch], inv_std[ch], w[ch]);
        let (mean_db, mean_dg) = (T::from_f64(db / m), T::from_f64(dg / m));
        let scale = g * inv;
        let (xi, gi) = (&x[k * plane..(k + 1) * plane], &dy[k * plane..(k + 1) * plane]);
        xi.iter().zip(gi).map(move |(&v, &gv)| {
            let x_hat = (v - mu) * inv;
            scale * (gv - mean_db - x_hat * mean_dg)
        })
    });
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
    super::par_chunks_from(x.len() / plane, plane, |k| {
        let (a, b) = (scale[k % p.c], shift[k % p.c]);
        x[k * plane..(k + 1) * plane].iter().map(move |&v| v * a + b)
    })
}
