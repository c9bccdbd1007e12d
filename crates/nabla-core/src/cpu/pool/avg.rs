//! Average pooling and adaptive average pooling, forward and backward, plane-parallel:
//!
//! y[p, oy, ox] = (1 / d) Σ_(iy, ix) ∈ window(oy, ox) x[p, iy, ix]       δx[window] += δy / d
//!
//! with d the divisor PyTorch uses (the window counted with padding, without it, or an override);
//! adaptive windows are [⌊i·in/out⌋, ⌈(i+1)·in/out⌉).

use super::PoolGeometry;
use crate::Float;
use rayon::prelude::*;

/// For each output position along one axis: the clipped input range and the divisor's share
/// (window size counted with padding but not beyond it, as PyTorch's avg_pool2d).
fn avg_windows(out: usize, inp: usize, k: usize, s: usize, pad: usize) -> Vec<(usize, usize, usize)> {
    (0..out)
        .map(|o| {
            let start = (o * s) as isize - pad as isize;
            let end = (start + k as isize).min((inp + pad) as isize);
            let with_pad = (end - start) as usize;
            let (lo, hi) = (start.max(0) as usize, end.min(inp as isize).max(0) as usize);
            (lo, hi.max(lo), with_pad)
        })
        .collect()
}

/// The clipped windows along both axes.
fn avg_divisors(g: &PoolGeometry) -> (Vec<(usize, usize, usize)>, Vec<(usize, usize, usize)>) {
    (
        avg_windows(g.oh, g.h, g.kernel[0], g.stride[0], g.padding[0]),
        avg_windows(g.ow, g.w, g.kernel[1], g.stride[1], g.padding[1]),
    )
}

/// The divisor of a window: the override, the count with padding, or the count of real inputs.
fn divisor(
    r: (usize, usize, usize),
    c: (usize, usize, usize),
    count_include_pad: bool,
    divisor_override: Option<usize>,
) -> f64 {
    match divisor_override {
        Some(d) => d as f64,
        None if count_include_pad => (r.2 * c.2) as f64,
        None => ((r.1 - r.0) * (c.1 - c.0)) as f64,
    }
}

pub fn avg_pool2d_forward<T: Float>(
    x: &[T],
    g: &PoolGeometry,
    count_include_pad: bool,
    divisor_override: Option<usize>,
) -> Vec<T> {
    let (rows, cols) = avg_divisors(g);
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let mut out = vec![T::zero(); g.planes * ohw];
    out.par_chunks_mut(ohw.max(1)).enumerate().for_each(|(p, o)| {
        let plane = &x[p * hw..(p + 1) * hw];
        for (oy, &r) in rows.iter().enumerate() {
            for (ox, &c) in cols.iter().enumerate() {
                let mut acc = T::zero();
                for iy in r.0..r.1 {
                    acc += plane[iy * g.w + c.0..iy * g.w + c.1].iter().copied().sum::<T>();
                }
                let d = divisor(r, c, count_include_pad, divisor_override);
                o[oy * g.ow + ox] = if d > 0.0 { acc / T::from_f64(d) } else { T::zero() };
            }
        }
    });
    out
}

pub fn avg_pool2d_backward<T: Float>(
    dy: &[T],
    g: &PoolGeometry,
    count_include_pad: bool,
    divisor_override: Option<usize>,
) -> Vec<T> {
    let (rows, cols) = avg_divisors(g);
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let mut dx = vec![T::zero(); g.planes * hw];
    dx.par_chunks_mut(hw.max(1)).enumerate().for_each(|(p, d)| {
        let dyp = &dy[p * ohw..(p + 1) * ohw];
        for (oy, &r) in rows.iter().enumerate() {
            for (ox, &c) in cols.iter().enumerate() {
                let div = divisor(r, c, count_include_pad, divisor_override);
                if div == 0.0 {
                    continue;
                }
                let v = dyp[oy * g.ow + ox] / T::from_f64(div);
                for iy in r.0..r.1 {
                    d[iy * g.w + c.0..iy * g.w + c.1].iter_mut().for_each(|e| *e += v);
                }
            }
        }
    });
    dx
}

/// Adaptive windows: output i averages inputs [⌊i·in/out⌋, ⌈(i+1)·in/out⌉).
fn adaptive_windows(out: usize, inp: usize) -> Vec<(usize, usize, usize)> {
    (0..out)
        .map(|i| {
            let (lo, hi) = (i * inp / out, ((i + 1) * inp).div_ceil(out));
            (lo, hi, hi - lo)
        })
        .collect()
}

pub fn adaptive_avg_pool2d_forward<T: Float>(x: &[T], g: &PoolGeometry) -> Vec<T> {
    let (rows, cols) = (adaptive_windows(g.oh, g.h), adaptive_windows(g.ow, g.w));
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let mut out = vec![T::zero(); g.planes * ohw];
    out.par_chunks_mut(ohw.max(1)).enumerate().for_each(|(p, o)| {
        let plane = &x[p * hw..(p + 1) * hw];
        for (oy, &r) in rows.iter().enumerate() {
            for (ox, &c) in cols.iter().enumerate() {
                let mut acc = T::zero();
                for iy in r.0..r.1 {
                    acc += plane[iy * g.w + c.0..iy * g.w + c.1].iter().copied().sum::<T>();
                }
                o[oy * g.ow + ox] = acc / T::from_f64((r.2 * c.2) as f64);
            }
        }
    });
    out
}

pub fn adaptive_avg_pool2d_backward<T: Float>(dy: &[T], g: &PoolGeometry) -> Vec<T> {
    let (rows, cols) = (adaptive_windows(g.oh, g.h), adaptive_windows(g.ow, g.w));
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let mut dx = vec![T::zero(); g.planes * hw];
    dx.par_chunks_mut(hw.max(1)).enumerate().for_each(|(p, d)| {
        let dyp = &dy[p * ohw..(p + 1) * ohw];
        for (oy, &r) in rows.iter().enumerate() {
            for (ox, &c) in cols.iter().enumerate() {
                let v = dyp[oy * g.ow + ox] / T::from_f64((r.2 * c.2) as f64);
                for iy in r.0..r.1 {
                    d[iy * g.w + c.0..iy * g.w + c.1].iter_mut().for_each(|e| *e += v);
                }
            }
        }
    });
    dx
}
