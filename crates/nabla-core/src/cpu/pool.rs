//! Pooling kernels over `planes` independent h×w planes (N·C of them), plane-parallel.

use crate::Float;
use rayon::prelude::*;

pub use crate::backend::params::PoolGeometry;

/// Max over each window; also the flat in-plane index of the (first) maximum, for backward.
pub fn max_pool2d_forward<T: Float>(x: &[T], g: &PoolGeometry) -> (Vec<T>, Vec<u32>) {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    let mut out = vec![T::zero(); g.planes * ohw];
    let mut idx = vec![0u32; g.planes * ohw];
    out.par_chunks_mut(ohw.max(1))
        .zip(idx.par_chunks_mut(ohw.max(1)))
        .enumerate()
        .for_each(|(p, (o, ix))| {
            let plane = &x[p * hw..(p + 1) * hw];
            let inside = g.oh > 0
                && g.ow > 0
                && (g.oh - 1) * g.stride[0] + g.kernel[0] <= g.h
                && (g.ow - 1) * g.stride[1] + g.kernel[1] <= g.w;
            if g.padding == [0, 0] && g.dilation == [1, 1] && inside {
                max_pool_plane_unpadded(plane, g, o, ix);
                return;
            }
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut best = T::neg_infinity();
                    let mut best_i = usize::MAX;
                    for ki in 0..g.kernel[0] {
                        let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for kj in 0..g.kernel[1] {
                            let jx = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                            if jx < 0 || jx >= g.w as isize {
                                continue;
                            }
                            let i = iy as usize * g.w + jx as usize;
                            let v = plane[i];
                            // Strictly greater keeps the first maximum on ties; NaN propagates (PyTorch).
                            if v > best || v.is_nan() || best_i == usize::MAX {
                                best = v;
                                best_i = i;
                                if v.is_nan() {
                                    break;
                                }
                            }
                        }
                    }
                    o[oy * g.ow + ox] = best;
                    ix[oy * g.ow + ox] = best_i as u32;
                }
            }
        });
    (out, idx)
}

/// Max pooling of one plane when every window lies inside it (no padding, no dilation, no
/// partial window from ceil_mode): the
/// common case, without the bounds checks of the general loop.
fn max_pool_plane_unpadded<T: Float>(plane: &[T], g: &PoolGeometry, o: &mut [T], ix: &mut [u32]) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    if [kh, kw, sh, sw] == [2, 2, 2, 2] {
        return max_pool_plane_2x2(plane, g, o, ix);
    }
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let base = oy * sh * g.w + ox * sw;
            let mut best_i = base;
            let mut best = plane[base];
            for ki in 0..kh {
                let row = &plane[base + ki * g.w..base + ki * g.w + kw];
                for (kj, &v) in row.iter().enumerate() {
                    // Strictly greater keeps the first maximum on ties; NaN propagates (PyTorch).
                    if (v > best || v.is_nan()) && !best.is_nan() {
                        best = v;
                        best_i = base + ki * g.w + kj;
                    }
                }
            }
            o[oy * g.ow + ox] = best;
            ix[oy * g.ow + ox] = best_i as u32;
        }
    }
}

/// The 2×2, stride-2 case (LeNet-5, VGG): branch-free selects the compiler can vectorise.
/// Ties keep the first maximum in scan order; a NaN wins as in the general loop.
fn max_pool_plane_2x2<T: Float>(plane: &[T], g: &PoolGeometry, o: &mut [T], ix: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if g.ow >= 8
        && std::arch::is_x86_feature_detected!("avx2")
        && let (Some(plane), Some(o)) = (super::as_f32(plane), super::as_f32_mut(o))
    {
        // SAFETY: AVX2 was detected.
        unsafe { super::pool_avx2::max_pool_2x2_forward(plane, g.w, g.oh, g.ow, o, ix) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if g.oh * g.ow >= 8
        && std::arch::is_x86_feature_detected!("avx2")
        && let (Some(plane), Some(o)) = (super::as_f32(plane), super::as_f32_mut(o))
    {
        // SAFETY: AVX2 was detected.
        unsafe { super::pool_avx2::max_pool_2x2_forward_short_rows(plane, g.w, g.oh, g.ow, o, ix) };
        return;
    }
    let w = g.w;
    for oy in 0..g.oh {
        let r0 = &plane[2 * oy * w..2 * oy * w + 2 * g.ow];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * g.ow];
        let (orow, irow) = (&mut o[oy * g.ow..(oy + 1) * g.ow], &mut ix[oy * g.ow..(oy + 1) * g.ow]);
        let base = (2 * oy * w) as u32;
        for (ox, ((out, idx), (p0, p1))) in orow
            .iter_mut()
            .zip(irow.iter_mut())
            .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
            .enumerate()
        {
            let (a, b, c, d) = (p0[0], p0[1], p1[0], p1[1]);
            let col = base + 2 * ox as u32;
            let (mut m, mut i) = (a, col);
            let take = |m: T, v: T| (v > m || v.is_nan()) && !m.is_nan();
            if take(m, b) {
                (m, i) = (b, col + 1);
            }
            if take(m, c) {
                (m, i) = (c, col + w as u32);
            }
            if take(m, d) {
                (m, i) = (d, col + w as u32 + 1);
            }
            *out = m;
            *idx = i;
        }
    }
}

/// δx[argmax] += δy, window by window.
pub fn max_pool2d_backward<T: Float>(dy: &[T], idx: &[u32], g: &PoolGeometry) -> Vec<T> {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    #[cfg(target_arch = "x86_64")]
    if g.kernel == [2, 2]
        && g.stride == [2, 2]
        && g.padding == [0, 0]
        && g.dilation == [1, 1]
        && 2 * g.oh <= g.h
        && 2 * g.ow <= g.w
        && g.ow >= 8
        && std::arch::is_x86_feature_detected!("avx2")
        && let Some(dy) = super::as_f32(dy)
    {
        // Every element is written once (no zeroing pass, no scatter).
        let mut dx: Vec<f32> = Vec::with_capacity(g.planes * hw);
        dx.spare_capacity_mut()[..g.planes * hw]
            .par_chunks_mut(hw)
            .enumerate()
            .for_each(|(p, d)| {
                // SAFETY: AVX2 was detected; idx comes from the forward pass of this geometry.
                unsafe {
                    super::pool_avx2::max_pool_2x2_backward(
                        &dy[p * ohw..][..ohw],
                        &idx[p * ohw..][..ohw],
                        g.h,
                        g.w,
                        g.oh,
                        g.ow,
                        d,
                    )
                };
            });
        // SAFETY: the kernel wrote all planes·hw elements.
        unsafe { dx.set_len(g.planes * hw) };
        return super::f32_vec_as(dx).expect("T is f32");
    }
    let mut dx = vec![T::zero(); g.planes * hw];
    dx.par_chunks_mut(hw.max(1)).enumerate().for_each(|(p, d)| {
        for (&i, &v) in idx[p * ohw..(p + 1) * ohw].iter().zip(&dy[p * ohw..(p + 1) * ohw]) {
            // NOTE: a window that lies wholly in the padding (possible with dilation) has no
            // maximum: its output is −∞ and its δ goes nowhere, as on the GPU.
            if i != u32::MAX {
                d[i as usize] += v;
            }
        }
    });
    dx
}

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
pub fn adaptive_windows(out: usize, inp: usize) -> Vec<(usize, usize, usize)> {
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
