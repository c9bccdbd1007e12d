//! Local response normalisation on host memory (formulas in `ops/lrn.rs`).

use crate::Float;
use rayon::prelude::*;

/// Per-sample work on `[C, S]` blocks: returns s (the scale before the power) for each element.
pub(crate) fn lrn_scale<T: Float>(x: &[T], c: usize, s: usize, size: usize, alpha: f64, k: f64) -> Vec<T> {
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

pub(crate) fn lrn_backward<T: Float>(
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
