//! The fused optimiser updates on host memory: one loop over a parameter, its gradient and its
//! state, rounded in the order of PyTorch's reference optimisers (formulas at `SgdUpdate` and
//! `AdamUpdate`); no fused multiply-adds are introduced.

use crate::Float;
use crate::backend::params::{AdamUpdate, SgdUpdate};
use rayon::prelude::*;

/// Elements per task when an update is split across threads.
const PARALLEL_CHUNK: usize = 1 << 15;

/// SGD without momentum: p ← p − η·(g + λp).
pub(crate) fn sgd_plain<T: Float>(p: &mut [T], g: &[T], u: &SgdUpdate) {
    let (lr, wd) = (T::from_f64(u.lr), T::from_f64(u.weight_decay));
    for (p, &g) in p.iter_mut().zip(g) {
        let d = if wd != T::zero() { g + wd * *p } else { g };
        *p += -lr * d;
    }
}

/// SGD with a momentum buffer (and Nesterov's look-ahead).
pub(crate) fn sgd_momentum<T: Float>(p: &mut [T], g: &[T], buffer: &mut [T], u: &SgdUpdate) {
    let c = T::from_f64;
    let (lr, wd, mu, gain) = (c(u.lr), c(u.weight_decay), c(u.momentum), c(u.buffer_gain));
    let update = |(p, g, buffer): (&mut [T], &[T], &mut [T])| {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(buffer.iter_mut()) {
            let d = if wd != T::zero() { g + wd * *p } else { g };
            let nb = if gain == T::one() {
                *b * mu + d
            } else {
                *b * mu + d * gain
            };
            *b = nb;
            let step = if u.nesterov { d + nb * mu } else { nb };
            *p += -lr * step;
        }
    };
    // Large parameters in chunks on all threads (element-wise: the same result either way).
    // The MLP's whole optimiser step: 0.20 → 0.11 ms.
    if p.len() >= 2 * PARALLEL_CHUNK {
        p.par_chunks_mut(PARALLEL_CHUNK)
            .zip(g.par_chunks(PARALLEL_CHUNK))
            .zip(buffer.par_chunks_mut(PARALLEL_CHUNK))
            .for_each(|((p, g), b)| update((p, g, b)));
    } else {
        update((p, g, buffer));
    }
}

/// One Adam/AdamW step; `v_max` for AMSGrad.
pub(crate) fn adam<T: Float>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    mut v_max: Option<&mut [T]>,
    u: &AdamUpdate,
) {
    let c = T::from_f64;
    let t = u.step as f64;
    let step_size = c(u.lr / (1.0 - u.beta1.powf(t)));
    let bc2_sqrt = c((1.0 - u.beta2.powf(t)).sqrt());
    let shrink = c(1.0 - u.lr * u.weight_decay);
    let w1 = 1.0 - u.beta1;
    let (b1w, b1w_rest) = (c(w1), c(1.0 - w1));
    let (b2, b2w, wd, eps) = (c(u.beta2), c(1.0 - u.beta2), c(u.weight_decay), c(u.eps));
    let half = c(0.5);
    for i in 0..p.len() {
        let mut gi = g[i];
        if wd != T::zero() {
            if u.decoupled {
                p[i] *= shrink;
            } else {
                gi += wd * p[i];
            }
        }
        // lerp as PyTorch computes it: from the nearer end.
        let mi = if b1w < half {
            m[i] + b1w * (gi - m[i])
        } else {
            gi - (gi - m[i]) * b1w_rest
        };
        let vi = v[i] * b2 + b2w * gi * gi;
        m[i] = mi;
        v[i] = vi;
        let vd = match v_max.as_deref_mut() {
            Some(vm) => {
                let x = if vm[i] >= vi { vm[i] } else { vi };
                vm[i] = x;
                x
            }
            None => vi,
        };
        let denom = vd.sqrt() / bc2_sqrt + eps;
        p[i] += (-step_size * mi) / denom;
    }
}
