//! Max pooling, one plane at a time: the maximum of each window and the flat in-plane index of
//! its first maximum, kept for backward (δx[argmax] += δy). Ties keep the first maximum in scan
//! order; a NaN wins and stays (PyTorch's rule). The SIMD copies are in max_avx2.rs.

use super::PoolGeometry;
use crate::Float;
use rayon::prelude::*;

/// The definition, for any padding, dilation and ceil_mode: the first maximum of each window in
/// scan order (strictly greater replaces it), a NaN wins and stays (PyTorch's rule).
pub(super) fn forward_general<T: Float>(plane: &[T], g: &PoolGeometry, o: &mut [T], ix: &mut [u32]) {
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
}

/// One plane whose windows all lie inside it (no padding, no dilation, no partial window from
/// ceil_mode): the common case, without the bounds checks of the general loop.
pub(super) fn forward_unpadded<T: Float>(plane: &[T], g: &PoolGeometry, o: &mut [T], ix: &mut [u32]) {
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
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

/// The 2×2, stride-2 case (LeNet-5, VGG) without SIMD: branch-free selects.
/// Ties keep the first maximum in scan order; a NaN wins as in the general loop.
pub(super) fn forward_2x2<T: Float>(plane: &[T], g: &PoolGeometry, o: &mut [T], ix: &mut [u32]) {
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
pub(super) fn backward_scatter<T: Float>(dy: &[T], idx: &[u32], g: &PoolGeometry) -> Vec<T> {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
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

/// δx of 2×2, stride-2 windows inside the plane, 8 windows a row at least, with AVX2.
#[cfg(target_arch = "x86_64")]
pub(super) fn backward_2x2_avx2(dy: &[f32], idx: &[u32], g: &PoolGeometry) -> Vec<f32> {
    let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
    // Every element is written once (no zeroing pass, no scatter).
    let mut dx: Vec<f32> = Vec::with_capacity(g.planes * hw);
    dx.spare_capacity_mut()[..g.planes * hw]
        .par_chunks_mut(hw)
        .enumerate()
        .for_each(|(p, d)| {
            // SAFETY: the table checked AVX2; idx comes from the forward pass of this geometry.
            unsafe {
                super::max_avx2::max_pool_2x2_backward(
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
    dx
}
