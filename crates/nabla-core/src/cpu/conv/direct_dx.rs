//! δx of a small stride-1 convolution without unfolding, as a forward pass of the row kernel:
//!
//! δx[c, iy, ix] = Σ_o Σ_(ki, kj) W[o, c, ki, kj] · δy[o, iy + p_t − ki·d_h, ix + p_l − kj·d_w]
//!
//! (terms outside δy are zero). δy is copied into planes padded by (k − 1)·d on every side, so
//! each term is a read at a fixed offset from (iy, ix): a convolution whose "input channels"
//! are the C_out planes of δy, "output channels" the C_in planes of δx, and weight W
//! transposed and flipped. The kernel rows (ki) that fall wholly on the padding of a δx row
//! are skipped; the padding columns are still multiplied (they share vectors with real ones).
//!
//! On LeNet-5's second layer (batch 128) this took 0.69 ms against 0.80 for im2col + GEMM +
//! col2im, whose GEMM has only 16 terms per output and whose col2im scatters 150 values per
//! pixel; on 16→16 3×3 at 32×32 (batch 64), 1.7 against 3.0 ms. Layers with few input channels
//! and small planes, LeNet-5's second among them, now go to scatter_dx.rs (0.55 ms), which
//! multiplies no padding.

use super::ConvGeometry;

/// Whether the kernel computes δx of this geometry (f32, AVX2 and FMA): stride 1, no groups,
/// rows of at least 8 pixels, padding no wider than the kernel's reach.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    let fits = g.groups == 1
        && g.stride == [1, 1]
        && g.w >= 8
        && g.c_out * g.kh * g.kw <= 1024
        && g.backward_input_is_a_forward_pass()
        && g.n * g.oh * g.ow * g.c_in > 0;
    cfg!(target_arch = "x86_64") && fits && super::has_fma()
}

/// Where it is faster than im2col: 4 to 32 δx channels. Fewer would leave most of the kernel's
/// 6-channel blocks empty (with 1 channel, as for LeNet-5's first layer: 0.96 vs 0.55 ms for
/// im2col).
pub(super) fn pays(g: &ConvGeometry) -> bool {
    applies(g) && (4..=32).contains(&g.c_in)
}

/// δx [n, c_in, h, w] for contiguous `dy` [n, c_out, oh, ow] and `weight` [c_out, c_in, kh, kw],
/// where [`applies`] holds.
pub(super) fn backward_input(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        backward_input_avx2(dy, weight, g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("direct_dx::applies is false off x86-64: {g:?}")
}

#[cfg(target_arch = "x86_64")]
fn backward_input_avx2(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    const CB: usize = 6;
    let ([dh, dw], (kh, kw)) = (g.dilation, (g.kh, g.kw));
    // δy sits at (top, left) in planes of hp × wp: every read of every δx pixel is inside.
    let (top, left) = ((kh - 1) * dh, (kw - 1) * dw);
    let hp = (g.h + g.pad_top + top).max(top + g.oh);
    let wp = (g.w + g.pad_left + left).max(left + g.ow);
    // Taps ordered (ki, o, kj), so that the taps of the kernel rows a δx row needs are one range.
    let taps = kh * g.c_out * kw;
    let offsets: Vec<usize> = (0..taps)
        .map(|t| {
            let (ki, o, kj) = (t / (g.c_out * kw), (t / kw) % g.c_out, t % kw);
            (o * hp + g.pad_top + top - ki * dh) * wp + g.pad_left + left - kj * dw
        })
        .collect();
    // Kernel rows ki with δy row iy + p_t − ki·d_h in [0, oh).
    let row_taps: Vec<std::ops::Range<usize>> = (0..g.h)
        .map(|iy| {
            let r = iy + g.pad_top; // = oy + ki·d_h
            let lo = (r + 1).saturating_sub(g.oh).div_ceil(dh);
            let hi = (r / dh + 1).min(kh);
            let per_row = g.c_out * kw;
            if lo < hi { lo * per_row..hi * per_row } else { 0..0 }
        })
        .collect();
    // Output channel c (of δx), tap t = (ki, o, kj): W[o, c, ki, kj].
    let packed = super::direct::pack_channel_blocks(g.c_in, taps, CB, |c, t| {
        let (ki, o, kj) = (t / (g.c_out * kw), (t / kw) % g.c_out, t % kw);
        weight[((o * g.c_in + c) * kh + ki) * kw + kj]
    });
    // The transposed problem in the row kernel's terms: planes hp × wp in, h × w out.
    let t = ConvGeometry {
        n: 1,
        c_in: g.c_out,
        h: hp,
        w: wp,
        c_out: g.c_in,
        kh,
        kw,
        stride: [1, 1],
        dilation: g.dilation,
        pad_top: 0,
        pad_left: 0,
        oh: g.h,
        ow: g.w,
        groups: 1,
        precision: g.precision,
    };
    let zero = vec![0.0f32; g.c_in];
    let (sample_dy, sample_dx) = (g.c_out * g.oh * g.ow, g.c_in * g.h * g.w);
    crate::cpu::par_filled_chunks(g.n, sample_dx, Vec::new, |buf: &mut Vec<f32>, n, dxs: &mut [f32]| {
        // Zeroed once per thread: each sample rewrites the same interior, the border stays.
        buf.resize(g.c_out * hp * wp, 0.0);
        let dys = &dy[n * sample_dy..(n + 1) * sample_dy];
        for (o, plane) in dys.chunks_exact(g.oh * g.ow).enumerate() {
            for (oy, row) in plane.chunks_exact(g.ow).enumerate() {
                buf[(o * hp + top + oy) * wp + left..][..g.ow].copy_from_slice(row);
            }
        }
        use super::direct_avx2::forward_sample_rows as k;
        // SAFETY: direct_dx_applies checked AVX2 and FMA.
        unsafe {
            if g.w >= 16 {
                k::<CB, 2>(buf, wp, &packed, &offsets, &zero, &t, Some(&row_taps), dxs)
            } else {
                k::<CB, 1>(buf, wp, &packed, &offsets, &zero, &t, Some(&row_taps), dxs)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::im2col;

    fn val(n: usize, s: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + s) * 2654435761) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Against im2col + GEMM + col2im (itself checked by finite differences and PyTorch
    /// fixtures), with padding on some sides, dilation, wide and narrow rows, and a last
    /// channel block that is not full.
    #[test]
    fn matches_im2col() {
        // (c_in, c_out, h, w, k, dilation, pad_top, pad_left, pad_bottom, pad_right)
        let cases = [
            (6, 16, 14, 14, 5, 1, 0, 0, 0, 0),
            (8, 6, 28, 28, 5, 1, 2, 2, 2, 2),
            (7, 3, 9, 17, 3, 1, 1, 0, 2, 1),
            (5, 5, 12, 10, 3, 2, 2, 1, 0, 2),
            (13, 4, 8, 8, 1, 1, 0, 0, 0, 0),
            (4, 2, 6, 9, 3, 1, 1, 1, 1, 1),
            (32, 9, 5, 20, 3, 1, 0, 2, 0, 0),
        ];
        for (ci, co, h, w, k, d, pt, pl, pb, pr) in cases {
            let g = ConvGeometry {
                n: 3,
                c_in: ci,
                h,
                w,
                c_out: co,
                kh: k,
                kw: k,
                stride: [1, 1],
                dilation: [d, d],
                pad_top: pt,
                pad_left: pl,
                oh: h + pt + pb - d * (k - 1),
                ow: w + pl + pr - d * (k - 1),
                groups: 1,
                precision: crate::autocast::Precision::F32,
            };
            #[cfg(not(target_arch = "x86_64"))]
            return;
            #[cfg(target_arch = "x86_64")]
            if !crate::cpu::conv::has_fma() {
                eprintln!("skipped: no AVX2/FMA");
                return;
            }
            assert!(applies(&g), "{g:?}");
            let (dy, wt) = (val(3 * co * g.oh * g.ow, 1), val(co * ci * k * k, 2));
            let fast = backward_input(&dy, &wt, &g);
            let slow = im2col::backward_input(&dy, &wt, &g);
            assert_eq!(fast.len(), slow.len());
            let scale = slow.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (a, e)) in fast.iter().zip(&slow).enumerate() {
                assert!((a - e).abs() <= 1e-5 * scale, "{g:?} at {i}: {a} vs {e}");
            }
        }
    }
}
