//! The f32 inner loops of the direct convolution (conv_direct.rs) written with AVX2 + FMA
//! intrinsics: `V` vectors of 8 lanes hold the output channels of one pixel.
//!
//! NOTE: the generic loops there are correct for every float type, but LLVM does not always
//! vectorise them: with 8 channels it kept four pixels × eight lanes as 32 scalars and ran at
//! a tenth of this speed. These kernels leave it no choice.

#![cfg(target_arch = "x86_64")]

use super::conv::ConvGeometry;
use std::arch::x86_64::*;

/// Forward pass of one sample, windows all inside `xs` (planes of width `ws`): `wt` is
/// [taps][8·V] (tap-major, zero lanes beyond c_out), `b` has 8·V lanes, `y` is [c_out, l].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn forward_sample<const V: usize, const PX: usize>(
    xs: &[f32],
    ws: usize,
    wt: &[f32],
    offsets: &[usize],
    b: &[f32],
    g: &ConvGeometry,
    y: &mut [f32],
) {
    let l = g.oh * g.ow;
    let [sh, sw] = g.stride;
    let lanes = 8 * V;
    assert!(wt.len() >= offsets.len() * lanes && b.len() >= lanes);
    // Every window lies inside xs: the largest index read is checked once here.
    let last = (g.oh - 1) * sh * ws + (g.ow - 1) * sw + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    let store = |y: &mut [f32], p: usize, a: &[__m256; V]| {
        let mut lane = [0f32; 32];
        for j in 0..V {
            // SAFETY: lane has room for 4 vectors of 8 and V ≤ 4.
            unsafe { _mm256_storeu_ps(lane.as_mut_ptr().add(8 * j), a[j]) };
        }
        for o in 0..g.c_out {
            y[o * l + p] = lane[o];
        }
    };
    let bias: [__m256; V] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * j)) });
    let (xp, wp) = (xs.as_ptr(), wt.as_ptr());
    for oy in 0..g.oh {
        let row = oy * sh * ws;
        let mut ox = 0;
        while ox + PX <= g.ow {
            let base = row + ox * sw;
            let mut acc = [bias; PX];
            for (t, &off) in offsets.iter().enumerate() {
                let w: [__m256; V] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(wp.add(t * lanes + 8 * j)) });
                for (px, a) in acc.iter_mut().enumerate() {
                    // SAFETY: base + px·sw + off ≤ last < xs.len() (checked above).
                    let v = unsafe { _mm256_broadcast_ss(&*xp.add(base + px * sw + off)) };
                    for j in 0..V {
                        a[j] = _mm256_fmadd_ps(v, w[j], a[j]);
                    }
                }
            }
            for (px, a) in acc.iter().enumerate() {
                store(y, oy * g.ow + ox + px, a);
            }
            ox += PX;
        }
        for ox in ox..g.ow {
            let base = row + ox * sw;
            let mut a = bias;
            for (t, &off) in offsets.iter().enumerate() {
                // SAFETY: as above.
                let v = unsafe { _mm256_broadcast_ss(&*xp.add(base + off)) };
                for j in 0..V {
                    let w = unsafe { _mm256_loadu_ps(wp.add(t * lanes + 8 * j)) };
                    a[j] = _mm256_fmadd_ps(v, w, a[j]);
                }
            }
            store(y, oy * g.ow + ox, &a);
        }
    }
}

/// Adds one sample's δW to `acc` [taps][8·V]: per tap, Σ over pixels of x · δy[pixel], with
/// `dyt` [l][8·V] the sample's δy pixel-major.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weight_grad_sample<const V: usize, const PX: usize>(
    xs: &[f32],
    ws: usize,
    dyt: &[f32],
    offsets: &[usize],
    g: &ConvGeometry,
    acc: &mut [f32],
) {
    let [sh, sw] = g.stride;
    let lanes = 8 * V;
    let l = g.oh * g.ow;
    assert!(dyt.len() >= l * lanes && acc.len() >= offsets.len() * lanes);
    let last = (g.oh - 1) * sh * ws + (g.ow - 1) * sw + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    let (xp, dp) = (xs.as_ptr(), dyt.as_ptr());
    for (t, &off) in offsets.iter().enumerate() {
        let zero = _mm256_setzero_ps();
        let mut s = [[zero; V]; PX];
        for oy in 0..g.oh {
            let row = off + oy * sh * ws;
            let prow = oy * g.ow;
            let mut ox = 0;
            while ox + PX <= g.ow {
                for (px, s) in s.iter_mut().enumerate() {
                    // SAFETY: row + (ox+px)·sw ≤ last < xs.len(); the pixel is < l.
                    let v = unsafe { _mm256_broadcast_ss(&*xp.add(row + (ox + px) * sw)) };
                    let d = unsafe { dp.add((prow + ox + px) * lanes) };
                    for j in 0..V {
                        s[j] = _mm256_fmadd_ps(v, unsafe { _mm256_loadu_ps(d.add(8 * j)) }, s[j]);
                    }
                }
                ox += PX;
            }
            for ox in ox..g.ow {
                // SAFETY: as above.
                let v = unsafe { _mm256_broadcast_ss(&*xp.add(row + ox * sw)) };
                let d = unsafe { dp.add((prow + ox) * lanes) };
                for j in 0..V {
                    s[0][j] = _mm256_fmadd_ps(v, unsafe { _mm256_loadu_ps(d.add(8 * j)) }, s[0][j]);
                }
            }
        }
        for j in 0..V {
            let mut sum = s[0][j];
            for sp in s.iter().skip(1) {
                sum = _mm256_add_ps(sum, sp[j]);
            }
            let a = &mut acc[t * lanes + 8 * j..t * lanes + 8 * j + 8];
            // SAFETY: `a` holds 8 floats.
            unsafe {
                let prev = _mm256_loadu_ps(a.as_ptr());
                _mm256_storeu_ps(a.as_mut_ptr(), _mm256_add_ps(prev, sum));
            }
        }
    }
}
