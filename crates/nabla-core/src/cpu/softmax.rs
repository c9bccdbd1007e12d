//! Row-wise softmax and the fused softmax cross-entropy on host memory.

use crate::Float;
use rayon::prelude::*;

/// Rows of `row` contiguous elements; `log` selects log_softmax.
pub(crate) fn softmax_rows<T: Float>(x: &[T], row: usize, log: bool) -> Vec<T> {
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

/// Per row: the loss ln Σⱼ e^(xⱼ) − x_t (through the row maximum m) and, scaled by `scale`,
/// its gradient softmax(x) − onehot(t).
pub(crate) fn xent_rows<T: Float>(x: &[T], cols: usize, targets: &[i64], scale: T) -> (Vec<T>, Vec<T>) {
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
        let inv = sum.recip();
        for g in g.iter_mut() {
            *g = *g * inv * scale;
        }
        // NOTE: a target outside [0, cols) gives a NaN row, as the GPU kernel does (the public
        // op checks targets; this keeps a missed one from reading out of bounds).
        let Some(t) = usize::try_from(t).ok().filter(|&t| t < cols) else {
            loss.push(T::nan());
            g.iter_mut().for_each(|g| *g = T::nan());
            continue;
        };
        // As log_softmax: −((x_t − m) − ln Σ), rounded the same way.
        loss.push(-((row[t] - max) - sum.ln()));
        g[t] = g[t] - scale;
    }
    (loss, grad)
}
