//! The channel kernels of direct_avx2.rs with AVX-512: `V` registers of 16 lanes hold the
//! output channels of one pixel, so 16 channels take one register instead of two.
//!
//! NOTE: on Zen 4 a 512-bit FMA costs two 256-bit ones, so the arithmetic is no faster; what
//! shrinks is everything around it. Per tap and block of pixels the AVX2 kernel issues one
//! weight load, one broadcast and two FMAs for each 16 channels of a pixel; here one broadcast
//! and one FMA, and twice the pixels fit in the registers. LeNet-5's second layer (batch 128,
//! 2 threads) went from 0.43 to 0.38 ms forward in alternating runs.

#![cfg(target_arch = "x86_64")]

use super::ConvGeometry;
use crate::cpu::block_starts;
use std::arch::x86_64::*;

/// Lanes of one register.
const L: usize = 16;

/// Whether blocks of `px` pixels cover a plane of `l` pixels with at most 1/16 of them computed
/// twice (the last block overlaps its neighbour). With fewer pixels per block the AVX2 kernel
/// wastes less: on 8 × 8 planes blocks of 10 (70 pixels for 64) lost to AVX2's blocks of 6.
pub(super) fn blocks_fit(l: usize, px: usize) -> bool {
    l >= px && (l.div_ceil(px) * px - l) * 16 <= l
}

/// Forward pass of one sample, as `direct_avx2::forward_sample`: windows all inside `xs`
/// (planes of width `ws`), `wt` [taps][16·V] (zero lanes beyond c_out), `b` 16·V lanes,
/// `y` [c_out, l], `stage` the caller's scratch buffer. Needs l ≥ PX.
///
/// # Safety
/// The CPU must support AVX-512F (and AVX2 for the final transpose).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn forward_sample<const V: usize, const PX: usize>(
    xs: &[f32],
    ws: usize,
    wt: &[f32],
    offsets: &[usize],
    b: &[f32],
    g: &ConvGeometry,
    stage: &mut Vec<f32>,
    y: &mut [f32],
) {
    let l = g.oh * g.ow;
    let [sh, sw] = g.stride;
    let lanes = L * V;
    assert!(wt.len() >= offsets.len() * lanes && b.len() >= lanes && l >= PX);
    // Every window lies inside xs: the largest index read is checked once here.
    let last = (g.oh - 1) * sh * ws + (g.ow - 1) * sw + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    // Sums pixel-major first, whole registers; the planes are written 8 × 8 at the end.
    stage.resize(stage.len().max(l * lanes), 0.0);
    // SAFETY: b holds 16·V lanes (checked above).
    let bias: [__m512; V] = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(b.as_ptr().add(L * j)) });
    let (xp, wp) = (xs.as_ptr(), wt.as_ptr());
    let window = |p: usize| (p / g.ow) * sh * ws + (p % g.ow) * sw;
    for p0 in block_starts(l, PX) {
        // SAFETY: window(p) + off ≤ last < xs.len() for every pixel p and tap (checked above).
        let at: [*const f32; PX] = std::array::from_fn(|i| unsafe { xp.add(window(p0 + i)) });
        let mut acc = [bias; PX];
        for (t, &off) in offsets.iter().enumerate() {
            // SAFETY: t < taps, so the tap's 16·V weights lie inside wt.
            let w: [__m512; V] = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(wp.add(t * lanes + L * j)) });
            for (a, &at) in acc.iter_mut().zip(&at) {
                // SAFETY: as above.
                let v = _mm512_set1_ps(unsafe { *at.add(off) });
                for j in 0..V {
                    a[j] = _mm512_fmadd_ps(v, w[j], a[j]);
                }
            }
        }
        for (px, a) in acc.iter().enumerate() {
            let at = &mut stage[(p0 + px) * lanes..(p0 + px + 1) * lanes];
            for j in 0..V {
                // SAFETY: `at` holds 16·V floats.
                unsafe { _mm512_storeu_ps(at.as_mut_ptr().add(L * j), a[j]) };
            }
        }
    }
    super::direct_avx2::planes_from_pixels(stage, lanes, g.c_out, l, y);
}

/// Adds one sample's δW to `acc` [taps][16·V], as `direct_avx2::weight_grad_sample`:
/// Σ over pixels of x[tap(p)] · δy[p], with `dyt` [l][16·V] the sample's δy pixel-major, taps
/// in blocks of `TB` so that each δy load meets `TB` inputs.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f,fma")]
pub unsafe fn weight_grad_sample<const V: usize, const TB: usize>(
    xs: &[f32],
    ws: usize,
    dyt: &[f32],
    offsets: &[usize],
    g: &ConvGeometry,
    acc: &mut [f32],
) {
    let [sh, sw] = g.stride;
    let lanes = L * V;
    let l = g.oh * g.ow;
    assert!(dyt.len() >= l * lanes && acc.len() >= offsets.len() * lanes);
    let last = (g.oh - 1) * sh * ws + (g.ow - 1) * sw + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    let (xp, dp) = (xs.as_ptr(), dyt.as_ptr());
    for (block, offs) in offsets.chunks(TB).enumerate() {
        // A short last block repeats offset 0 and drops those sums.
        let offs_full: [usize; TB] = std::array::from_fn(|b| offs.get(b).copied().unwrap_or(0));
        let mut s = [[_mm512_setzero_ps(); V]; TB];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let base = oy * sh * ws + ox * sw;
                // SAFETY: the pixel is < l, so its δy lies inside dyt (checked above).
                let d: [__m512; V] =
                    std::array::from_fn(|j| unsafe { _mm512_loadu_ps(dp.add((oy * g.ow + ox) * lanes + L * j)) });
                for (s, &off) in s.iter_mut().zip(&offs_full) {
                    // SAFETY: base + off ≤ last < xs.len().
                    let v = _mm512_set1_ps(unsafe { *xp.add(base + off) });
                    for j in 0..V {
                        s[j] = _mm512_fmadd_ps(v, d[j], s[j]);
                    }
                }
            }
        }
        for (b, s) in s.iter().enumerate().take(offs.len()) {
            for j in 0..V {
                let a = &mut acc[(block * TB + b) * lanes + L * j..][..L];
                // SAFETY: `a` holds 16 floats.
                unsafe { _mm512_storeu_ps(a.as_mut_ptr(), _mm512_add_ps(_mm512_loadu_ps(a.as_ptr()), s[j])) };
            }
        }
    }
}
