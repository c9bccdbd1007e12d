//! 2×2, stride-2 max pooling of f32 planes with AVX2 (LeNet-5, VGG): eight windows at a time,
//! forward and backward, with the scalar loop's tie and NaN rules.
//!
//! NOTE: LLVM left the scalar loop of max.rs unvectorised (the windows' two columns are
//! interleaved in memory); here `_mm256_shuffle_ps` splits them into even and odd columns.

#![cfg(target_arch = "x86_64")]

use crate::cpu::block_starts;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Even and odd elements of the 16 floats at `p`, each in input order.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn split_even_odd(p: *const f32) -> (__m256, __m256) {
    // SAFETY: the caller guarantees 16 readable floats at p.
    let (lo, hi) = unsafe { (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) };
    // Within each 128-bit half: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6, then reorder the 64-bit pairs.
    let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
    let odd = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
    let order = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (order(even), order(odd))
}

/// Whether `v` replaces the running maximum `m`: greater, or NaN, unless `m` is NaN already.
#[inline]
#[target_feature(enable = "avx2")]
fn takes(m: __m256, v: __m256) -> __m256 {
    let wins = _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, m), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(m, m), wins)
}

/// Forward pass of one plane (width `w`, `oh` × `ow` windows, ow ≥ 8): maxima into `o`, the
/// in-plane index of each window's first maximum into `ix`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn max_pool_2x2_forward(plane: &[f32], w: usize, oh: usize, ow: usize, o: &mut [f32], ix: &mut [u32]) {
    assert!(ow >= 8 && 2 * ow <= w && 2 * oh * w <= plane.len() && o.len() >= oh * ow && ix.len() >= oh * ow);
    let lane = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for oy in 0..oh {
        // Eight windows at a time, the last block of a row overlapping.
        for x0 in block_starts(ow, 8) {
            let top = 2 * oy * w + 2 * x0;
            // SAFETY: the 16 floats from `top` (and `top + w`) end at column 2·ow ≤ w of rows
            // 2·oy and 2·oy + 1 < 2·oh, inside the plane (checked above).
            let ((a, b), (c, d)) = unsafe {
                (
                    split_even_odd(plane.as_ptr().add(top)),
                    split_even_odd(plane.as_ptr().add(top + w)),
                )
            };
            let ia = _mm256_add_epi32(_mm256_set1_epi32(top as i32), lane);
            let ic = _mm256_add_epi32(ia, _mm256_set1_epi32(w as i32));
            let one = _mm256_set1_epi32(1);
            let (mut m, mut i) = (a, _mm256_castsi256_ps(ia));
            for (v, iv) in [(b, _mm256_add_epi32(ia, one)), (c, ic), (d, _mm256_add_epi32(ic, one))] {
                let t = takes(m, v);
                m = _mm256_blendv_ps(m, v, t);
                i = _mm256_blendv_ps(i, _mm256_castsi256_ps(iv), t);
            }
            // SAFETY: oy·ow + x0 + 8 ≤ oh·ow (checked above).
            unsafe {
                _mm256_storeu_ps(o.as_mut_ptr().add(oy * ow + x0), m);
                _mm256_storeu_si256(ix.as_mut_ptr().add(oy * ow + x0).cast(), _mm256_castps_si256(i));
            }
        }
    }
}

/// Forward pass of one plane with rows of fewer than 8 windows (LeNet-5's second pooling: 5 × 5
/// windows of a 10 × 10 plane), as [`max_pool_2x2_forward`] but eight windows at a time in
/// row-major order across rows, their corners gathered.
///
/// NOTE: the scalar loop took 0.22 ms for LeNet-5's second pooling at batch 128 (2048 planes of
/// 25 windows): its compares are branches, mispredicted on data without order.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn max_pool_2x2_forward_short_rows(
    plane: &[f32],
    w: usize,
    oh: usize,
    ow: usize,
    o: &mut [f32],
    ix: &mut [u32],
) {
    let windows = oh * ow;
    assert!(
        ow > 0 && windows >= 8 && 2 * ow <= w && 2 * oh * w <= plane.len() && o.len() >= windows && ix.len() >= windows
    );
    assert!(
        plane.len() <= i32::MAX as usize,
        "max_pool2d: plane too large for 32-bit indices"
    );
    let one = _mm256_set1_epi32(1);
    let down = _mm256_set1_epi32(w as i32);
    for q0 in block_starts(windows, 8) {
        // Top-left corner of each window.
        let corner: [i32; 8] = std::array::from_fn(|l| {
            let q = q0 + l;
            (2 * (q / ow) * w + 2 * (q % ow)) as i32
        });
        // SAFETY: `corner` holds 8 i32.
        let ia = unsafe { _mm256_loadu_si256(corner.as_ptr().cast()) };
        let (ib, ic) = (_mm256_add_epi32(ia, one), _mm256_add_epi32(ia, down));
        let id = _mm256_add_epi32(ic, one);
        let p = plane.as_ptr();
        // SAFETY: every window lies inside the plane: its last element 2·oy·w + w + 2·ox + 1 <
        // 2·oh·w ≤ plane.len() (checked above).
        let [a, b, c, d] = [ia, ib, ic, id].map(|i| unsafe { _mm256_i32gather_ps::<4>(p, i) });
        let (mut m, mut i) = (a, _mm256_castsi256_ps(ia));
        for (v, iv) in [(b, ib), (c, ic), (d, id)] {
            let t = takes(m, v);
            m = _mm256_blendv_ps(m, v, t);
            i = _mm256_blendv_ps(i, _mm256_castsi256_ps(iv), t);
        }
        // SAFETY: q0 + 8 ≤ windows ≤ o.len(), ix.len() (checked above).
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr().add(q0), m);
            _mm256_storeu_si256(ix.as_mut_ptr().add(q0).cast(), _mm256_castps_si256(i));
        }
    }
}

/// Backward pass of one plane, writing every element of `dx` (h × w): δy where the window's
/// maximum was, zero elsewhere (also in a last row or column no window covers). `dx` may be
/// uninitialised: it is only written, through raw pointers.
///
/// # Safety
/// The CPU must support AVX2, and `ix` must come from [`max_pool_2x2_forward`] of this shape.
#[target_feature(enable = "avx2")]
pub unsafe fn max_pool_2x2_backward(
    dy: &[f32],
    ix: &[u32],
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    dx: &mut [MaybeUninit<f32>],
) {
    assert!(ow >= 8 && 2 * ow <= w && 2 * oh <= h && dx.len() >= h * w && dy.len() >= oh * ow && ix.len() >= oh * ow);
    let lane = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let one = _mm256_set1_epi32(1);
    for oy in 0..oh {
        for x0 in block_starts(ow, 8) {
            let top = 2 * oy * w + 2 * x0;
            let out = dx.as_mut_ptr().cast::<f32>();
            // SAFETY: oy·ow + x0 + 8 ≤ oh·ow (checked above).
            let (g, i) = unsafe {
                (
                    _mm256_loadu_ps(dy.as_ptr().add(oy * ow + x0)),
                    _mm256_loadu_si256(ix.as_ptr().add(oy * ow + x0).cast()),
                )
            };
            let ia = _mm256_add_epi32(_mm256_set1_epi32(top as i32), lane);
            let ic = _mm256_add_epi32(ia, _mm256_set1_epi32(w as i32));
            let at = |pos: __m256i| _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(i, pos)));
            let (a, b, c, d) = (
                at(ia),
                at(_mm256_add_epi32(ia, one)),
                at(ic),
                at(_mm256_add_epi32(ic, one)),
            );
            // Interleave back: a0 b0 a1 b1 … for the top row, c0 d0 … for the bottom one.
            for (row, (e, f)) in [(top, (a, b)), (top + w, (c, d))] {
                let (lo, hi) = (_mm256_unpacklo_ps(e, f), _mm256_unpackhi_ps(e, f));
                // SAFETY: 16 floats from `row` end at column 2·ow ≤ w of a row < 2·oh ≤ h.
                unsafe {
                    _mm256_storeu_ps(out.add(row), _mm256_permute2f128_ps::<0x20>(lo, hi));
                    _mm256_storeu_ps(out.add(row + 8), _mm256_permute2f128_ps::<0x31>(lo, hi));
                }
            }
        }
        if w > 2 * ow {
            for r in [2 * oy, 2 * oy + 1] {
                dx[r * w + 2 * ow..(r + 1) * w].fill(MaybeUninit::new(0.0));
            }
        }
    }
    dx[2 * oh * w..h * w].fill(MaybeUninit::new(0.0));
}
