//! δx of a small stride-1 convolution with at most 8 input channels, by scattering each δy
//! pixel's contribution (the δ rule read from the output side):
//!
//! δx[:, oy − p_t + ki·d_h, ox − p_l + kj·d_w] += Σ_o δy[o, oy, ox] · W[o, :, ki, kj]
//!
//! The input channels of δx are the 8 lanes of one AVX2 register. Sums go into a pixel-major
//! buffer that covers the padding as well, and δx is cut out of it at the end.
//!
//! NOTE: the gathering form (direct_dx.rs) reads δy padded by (k − 1)·d. On LeNet-5's second
//! layer (10 × 10 δy, 5 × 5 kernel, 14 × 14 δx) about half of its products fall on that padding.
//! Here none do: every product adds a real term, at the cost of 2 idle lanes of 8 with 6
//! channels.

#![cfg(target_arch = "x86_64")]

use super::ConvGeometry;
use std::arch::x86_64::*;

/// Lanes: the input channels of δx, zeros past c_in.
const L: usize = 8;

/// Whether the kernel computes δx of this geometry (f32, AVX2 and FMA): stride 1, no groups, at
/// most 8 input channels and padding no wider than the kernel's reach (so that the scatter
/// buffer holds δx).
pub(super) fn applies(g: &ConvGeometry) -> bool {
    super::has_fma()
        && g.groups == 1
        && g.stride == [1, 1]
        && (1..=L).contains(&g.c_in)
        && g.pad_top <= (g.kh - 1) * g.dilation[0]
        && g.pad_left <= (g.kw - 1) * g.dilation[1]
        && g.h + g.pad_top <= g.oh + (g.kh - 1) * g.dilation[0]
        && g.w + g.pad_left <= g.ow + (g.kw - 1) * g.dilation[1]
        && g.n * g.oh * g.ow > 0
}

/// Whether this kernel should take δx rather than the gathering row kernel of
/// direct_dx.rs, by the share of each one's products that are real terms:
///
/// - here, c_in / 8 (the idle lanes);
/// - there, the share of (δx column, kernel column) pairs that read δy rather than its padding,
///   times the share of its 6-channel blocks and 8- or 16-pixel row blocks that are filled.
///
/// And only while one sample's δy and sums fit the 32 KiB L1 cache, since every tap reads and
/// writes the sums again.
///
/// Measured (`conv_profile`, batch 128, ms, scatter vs row kernel): LeNet-5's 6 → 16 5×5 on
/// 14 × 14, 0.55 vs 0.69; 4 → 32 5×5 on 12 × 12, 0.63 vs 1.09; 8 → 16 3×3 on 16 × 16, 0.53 vs
/// 0.61; 6 → 16 5×5 padding 2 on 14 × 14, 0.99 vs 0.93 (left to the row kernel); and at batch
/// 64, 8 → 16 3×3 on 32 × 32, 1.58 vs 1.15 (101 KiB per sample: left to it too).
pub(super) fn pays(g: &ConvGeometry) -> bool {
    if !applies(g) || g.c_in < 4 {
        return false;
    }
    let (hb, wb) = (g.oh + (g.kh - 1) * g.dilation[0], g.ow + (g.kw - 1) * g.dilation[1]);
    let bytes = (g.c_out * g.oh * g.ow + hb * wb * L) * 4;
    let valid: usize = (0..g.w)
        .map(|x| {
            (0..g.kw)
                .filter(|&kx| {
                    (x + g.pad_left)
                        .checked_sub(kx * g.dilation[1])
                        .is_some_and(|c| c < g.ow)
                })
                .count()
        })
        .sum();
    let columns = valid as f64 / (g.w * g.kw) as f64;
    let block = if g.w >= 16 { 16 } else { 8 };
    let rows = g.w as f64 / (g.w.div_ceil(block) * block) as f64;
    let channels = g.c_in as f64 / (g.c_in.div_ceil(6) * 6) as f64;
    bytes <= 32 << 10 && g.c_in as f64 / L as f64 > columns * rows * channels
}

/// δx [n, c_in, h, w] for contiguous `dy` [n, c_out, oh, ow] and `weight` [c_out, c_in, kh, kw].
///
/// # Panics
/// Unless [`applies`] holds for `g` (which checks AVX2 and FMA).
pub(super) fn backward_input(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert!(
        applies(g),
        "scatter_dx::backward_input: geometry outside the rule: {g:?}"
    );
    let taps = g.kh * g.kw;
    // wv[t][o] holds W[o, c, t] in lane c.
    let mut wv = vec![0f32; taps * g.c_out * L];
    for o in 0..g.c_out {
        for c in 0..g.c_in {
            for t in 0..taps {
                wv[(t * g.c_out + o) * L + c] = weight[(o * g.c_in + c) * taps + t];
            }
        }
    }
    let (sample_dy, sample_dx) = (g.c_out * g.oh * g.ow, g.c_in * g.h * g.w);
    // The buffer spans every position a term can reach: (oh + (kh − 1)·d_h) × (ow + (kw − 1)·d_w).
    let (hb, wb) = (g.oh + (g.kh - 1) * g.dilation[0], g.ow + (g.kw - 1) * g.dilation[1]);
    crate::cpu::par_filled_chunks(g.n, sample_dx, Vec::new, |buf: &mut Vec<f32>, n, dxs: &mut [f32]| {
        buf.clear();
        buf.resize(hb * wb * L, 0.0);
        // SAFETY: `applies` checked AVX2 and FMA; buf holds hb·wb·8 floats.
        unsafe { scatter_sample::<8>(&dy[n * sample_dy..(n + 1) * sample_dy], &wv, g, wb, buf) };
        for c in 0..g.c_in {
            for y in 0..g.h {
                let from = ((y + g.pad_top) * wb + g.pad_left) * L + c;
                for (x, d) in dxs[(c * g.h + y) * g.w..][..g.w].iter_mut().enumerate() {
                    *d = buf[from + x * L];
                }
            }
        }
    })
}

/// Adds one sample's terms into `acc` [hb][wb][8]: PX pixels at a time, for each tap the sum
/// over output channels in registers, then one read-add-write of each pixel's 8 lanes.
#[target_feature(enable = "avx2,fma")]
unsafe fn scatter_sample<const PX: usize>(dys: &[f32], wv: &[f32], g: &ConvGeometry, wb: usize, acc: &mut [f32]) {
    let l = g.oh * g.ow;
    let co = g.c_out;
    assert!(dys.len() >= co * l && wv.len() >= g.kh * g.kw * co * L);
    let last_pos = (g.oh - 1) * wb + g.ow - 1 + (g.kh - 1) * g.dilation[0] * wb + (g.kw - 1) * g.dilation[1];
    assert!((last_pos + 1) * L <= acc.len());
    let offsets: Vec<usize> = (0..g.kh * g.kw)
        .map(|t| (t / g.kw) * g.dilation[0] * wb + (t % g.kw) * g.dilation[1])
        .collect();
    let (dp, wp, ap) = (dys.as_ptr(), wv.as_ptr(), acc.as_mut_ptr());
    let pos = |p: usize| (p / g.ow) * wb + p % g.ow;
    // Blocks must not overlap (each term is added once): whole blocks, then pixels one by one.
    let whole = l - l % PX;
    for p0 in (0..whole).step_by(PX) {
        let at: [usize; PX] = std::array::from_fn(|i| pos(p0 + i));
        for (t, &off) in offsets.iter().enumerate() {
            let mut s = [_mm256_setzero_ps(); PX];
            for o in 0..co {
                // SAFETY: t < taps and o < c_out: inside wv (checked above).
                let w = unsafe { _mm256_loadu_ps(wp.add((t * co + o) * L)) };
                for (i, s) in s.iter_mut().enumerate() {
                    // SAFETY: o·l + p0 + i < c_out·l ≤ dys.len().
                    let v = unsafe { _mm256_broadcast_ss(&*dp.add(o * l + p0 + i)) };
                    *s = _mm256_fmadd_ps(v, w, *s);
                }
            }
            for (i, s) in s.iter().enumerate() {
                // SAFETY: at[i] + off ≤ last_pos, so its 8 lanes lie inside acc (checked above).
                unsafe {
                    let a = ap.add((at[i] + off) * L);
                    _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), *s));
                }
            }
        }
    }
    for p in whole..l {
        for (t, &off) in offsets.iter().enumerate() {
            let mut s = _mm256_setzero_ps();
            for o in 0..co {
                // SAFETY: as above.
                unsafe {
                    let w = _mm256_loadu_ps(wp.add((t * co + o) * L));
                    s = _mm256_fmadd_ps(_mm256_broadcast_ss(&*dp.add(o * l + p)), w, s);
                }
            }
            // SAFETY: as above.
            unsafe {
                let a = ap.add((pos(p) + off) * L);
                _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::im2col;
    use crate::cpu::conv::test_util::{Case, assert_close_f32, f32s, geometry, val};

    /// Against im2col + GEMM + col2im in f64 (itself checked by finite differences and PyTorch
    /// fixtures): LeNet-5's second layer, padding on some sides, dilation, 1 and 8 channels, and
    /// planes whose pixel count is not a multiple of the block.
    #[test]
    fn matches_im2col() {
        // (c_in, c_out, h, w, k, stride, dilation, pad_top, pad_left, pad_bottom, pad_right)
        let cases: [Case; 6] = [
            (6, 16, 14, 14, 5, 1, 1, 0, 0, 0, 0),
            (1, 6, 28, 28, 5, 1, 1, 2, 2, 2, 2),
            (8, 5, 9, 11, 3, 1, 1, 1, 0, 2, 1),
            (3, 7, 12, 10, 3, 1, 2, 2, 1, 0, 2),
            (5, 3, 6, 7, 3, 1, 1, 1, 1, 1, 1),
            (2, 9, 5, 4, 1, 1, 1, 0, 0, 0, 0),
        ];
        if !crate::cpu::conv::has_fma() {
            eprintln!("skipped: no AVX2/FMA");
            return;
        }
        for case in cases {
            let g = geometry(3, case);
            assert!(applies(&g), "{g:?}");
            let (dy, wt) = (val(3 * g.c_out * g.oh * g.ow, 1), val(g.c_out * g.k(), 2));
            let fast = backward_input(&f32s(&dy), &f32s(&wt), &g);
            let slow = im2col::backward_input(&dy, &wt, &g);
            assert_close_f32(&fast, &slow, 1e-5, &format!("δx {g:?}"));
        }
    }
}
