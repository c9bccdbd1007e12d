//! Convolutions with many channels and taps (AlexNet's and VGG's layers), all three passes
//! without unfolding the input, 16 output channels at a time through the AVX2 channel kernels
//! of direct_avx2.rs (f32 only):
//!
//! forward  y[n, o, p]  = b[o] + Σ_t x[n, tap_t(p)] · W[o, t]
//! δW       δW[o, t]    = Σ_n Σ_p δy[n, o, p] · x[n, tap_t(p)]
//! δx       δx = the forward pass of δy, padded by (k − 1)·d − pad, with W transposed and
//!          flipped (stride 1 only):
//!          δx[c, i] = Σ_o Σ_k W[o, c, k] · δy[o, i + pad − k·d]
//!
//! Each kernel keeps 2 × 6 vector sums in registers (16 channels × 6 pixels, or 16 channels ×
//! 6 taps) and does 12 FMAs per 2 vector loads and 6 broadcasts. The GEMM of im2col does the
//! same products at the `gemm` crate's speed (≈ 84% of a core's peak here) and adds the
//! unfolding; on AlexNet's second layer (batch 32, 64 → 192, 5×5, 27×27, this 2-core machine)
//! forward 69 vs 82 ms, δW 65 vs 78 ms, δx 69 vs 75 ms.

use super::ConvGeometry;
use super::direct::{Source, pack_channel_blocks};
use super::{Isa, has_fma};
use rayon::prelude::*;

/// Output channels per register block: two AVX2 vectors.
const CB: usize = 16;

/// Whether the kernels compute the forward pass and δW of this geometry (f32, AVX2 and FMA):
/// no groups, and at least one block of 6 pixels.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    g.groups == 1 && g.oh * g.ow >= 6 && g.n > 0 && has_fma()
}

/// Whether they compute δx: the transposed problem ([`ConvGeometry::transposed`]) is one they
/// compute.
pub(super) fn applies_to_backward_input(g: &ConvGeometry) -> bool {
    g.backward_input_is_a_forward_pass() && applies(&g.transposed())
}

/// Where they are faster than im2col + GEMM: many output channels and 64 to 2560 taps. With
/// more taps im2col + GEMM wins (batch 16, 512 → 512 3×3 at 7×7, 4608 taps: 41 against 22 ms
/// on this machine); below, these kernels won or tied everywhere measured (64 → 64 3×3 at 8×8,
/// batch 128: 3.5 against 7.1 ms; 256 → 256 3×3, 2304 taps, at 8×8, batch 64: 32 against 36 ms,
/// at 14×14, batch 32: 42 against 41).
pub(super) fn pays(g: &ConvGeometry) -> bool {
    applies(g) && g.c_out > 32 && (64..=2560).contains(&g.k())
}

/// Where they are faster than `Direct` and `DirectDx` too: with AVX-512 (16 channels a
/// register, 32 a block) from 16 input and 16 output channels. Measured on a 2-core Xeon with
/// AVX-512, batch 128, 3 × 3, padding 1 (`examples/conv_profile`), Wide against Direct(Dx), ms:
/// 16 → 16 at 28 × 28 forward 2.6 / 3.4, δx 2.7 / 3.4, δW 2.6 / 2.7; 32 → 32 at 14 × 14
/// forward 2.1–2.3 / 2.1, δx 2.2 / 4.6, δW 2.0 / 2.1; 16 → 32 at 28 × 28 forward 4.5 / 7.1.
/// Below 16 channels (LeNet-5) `Direct` stays ahead. With AVX2 alone `Direct` is kept (the
/// rules were measured on a Zen 2 machine). They beat `Winograd` too on planes up to 32 × 32
/// with up to 64 × 64 channels (64 → 64 at 28 × 28, batch 32: forward 10.3 against 11.8 ms,
/// δx 10.2 / 11.5), not beyond: 64 → 64 at 56 × 56 forward 38.3 against 35.8, 128 → 128 at
/// 28 × 28 36.5 / 34.4, where Winograd keeps its rows.
pub(super) fn pays_over_direct(g: &ConvGeometry, isa: Isa) -> bool {
    isa == Isa::Avx512
        && applies(g)
        && g.c_in >= 16
        && g.c_out >= 16
        && g.c_in * g.c_out <= 64 * 64
        && g.oh * g.ow <= 32 * 32
}

/// Where δx is faster than `DirectDx`: the transposed problem pays over `Direct`.
pub(super) fn pays_over_direct_dx(g: &ConvGeometry, isa: Isa) -> bool {
    applies_to_backward_input(g) && pays_over_direct(&g.transposed(), isa)
}

/// Where δx is faster: the transposed problem pays.
pub(super) fn pays_for_backward_input(g: &ConvGeometry) -> bool {
    applies_to_backward_input(g) && pays(&g.transposed())
}

/// The register block of the forward kernel: output channels × pixels.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ForwardKernel {
    /// AVX2: 16 channels (two registers) × 6 pixels.
    Avx2,
    /// AVX-512: 16 channels (one register) × 10 pixels. AlexNet-like (27 × 27): 67 ms against
    /// 69–71 for AVX2.
    Avx512x16,
    /// AVX-512: 32 channels (two registers) × `px` ∈ {6, 7, 8} pixels: one broadcast
    /// feeds two FMAs. ResNet-20's 64 → 64 at 7 × 7 (batch 128): 2.8 ms with 16 channels.
    Avx512x32 { px: usize },
}

#[cfg(target_arch = "x86_64")]
impl ForwardKernel {
    fn choose(c_out: usize, l: usize) -> ForwardKernel {
        use super::direct_avx512::blocks_fit;
        if Isa::detect() != Isa::Avx512 {
            return ForwardKernel::Avx2;
        }
        if c_out > 16
            && let Some(px) = [7, 8, 6].into_iter().find(|&px| blocks_fit(l, px))
        {
            return ForwardKernel::Avx512x32 { px };
        }
        if blocks_fit(l, 10) {
            ForwardKernel::Avx512x16
        } else {
            ForwardKernel::Avx2
        }
    }

    /// Output channels of one block.
    fn channels(self) -> usize {
        match self {
            ForwardKernel::Avx512x32 { .. } => 32,
            _ => CB,
        }
    }

    /// # Safety
    /// The CPU must support what [`ForwardKernel::choose`] detected.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        self,
        xs: &[f32],
        ws: usize,
        wt: &[f32],
        offsets: &[usize],
        b: &[f32],
        g: &ConvGeometry,
        stage: &mut Vec<f32>,
        y: &mut [f32],
    ) {
        use super::direct_avx2 as a2;
        use super::direct_avx512 as a5;
        // SAFETY: as the caller promised.
        unsafe {
            match self {
                ForwardKernel::Avx2 => a2::forward_sample::<2, 6>(xs, ws, wt, offsets, b, g, stage, y),
                ForwardKernel::Avx512x16 => a5::forward_sample::<1, 10>(xs, ws, wt, offsets, b, g, stage, y),
                ForwardKernel::Avx512x32 { px: 8 } => a5::forward_sample::<2, 8>(xs, ws, wt, offsets, b, g, stage, y),
                ForwardKernel::Avx512x32 { px: 7 } => a5::forward_sample::<2, 7>(xs, ws, wt, offsets, b, g, stage, y),
                ForwardKernel::Avx512x32 { .. } => a5::forward_sample::<2, 6>(xs, ws, wt, offsets, b, g, stage, y),
            }
        }
    }
}

/// y for contiguous `x` [n, c_in, h, w] and `weight` [c_out, c_in, kh, kw].
///
/// # Panics
/// Unless [`applies`] holds for `g`.
pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeometry) -> Vec<f32> {
    assert!(
        applies(g),
        "wide::forward: needs groups = 1, 6 pixels and AVX2 + FMA: {g:?}"
    );
    let taps = g.k();
    forward_with_weight(x, |o, t| weight[o * taps + t], bias, g)
}

/// δx [n, c_in, h, w] for contiguous `dy` [n, c_out, oh, ow] and `weight` [c_out, c_in, kh, kw].
///
/// # Panics
/// Unless [`applies_to_backward_input`] holds for `g`.
pub(super) fn backward_input(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert!(
        applies_to_backward_input(g),
        "wide::backward_input: needs groups = 1, stride 1, padding ≤ (k − 1)·d and AVX2 + FMA: {g:?}"
    );
    let (kh, kw, ci) = (g.kh, g.kw, g.c_in);
    // Output channel c of the transposed problem, tap (o, ki, kj): W[o, c, kh−1−ki, kw−1−kj].
    let flipped = |c: usize, t: usize| {
        let (o, ki, kj) = (t / (kh * kw), (t / kw) % kh, t % kw);
        weight[((o * ci + c) * kh + kh - 1 - ki) * kw + kw - 1 - kj]
    };
    forward_with_weight(dy, flipped, None, &g.transposed())
}

/// The forward pass with the weight given as w(output channel, tap).
fn forward_with_weight(x: &[f32], w: impl Fn(usize, usize) -> f32, bias: Option<&[f32]>, g: &ConvGeometry) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        let (taps, l, sample_in) = (g.k(), g.oh * g.ow, g.c_in * g.h * g.w);
        let kernel = ForwardKernel::choose(g.c_out, l);
        let cb = kernel.channels();
        let blocks = g.c_out.div_ceil(cb);
        let wt = pack_channel_blocks(g.c_out, taps, cb, w);
        let b: Vec<f32> = (0..blocks * cb)
            .map(|o| match bias {
                Some(b) if o < g.c_out => b[o],
                _ => 0.0,
            })
            .collect();
        let src = Source::of(g);
        let offsets = src.tap_offsets(g);
        crate::cpu::par_filled_chunks(g.n, g.c_out * l, Default::default, |(buf, stage), n, y: &mut [f32]| {
            let xs = src.planes(&x[n * sample_in..(n + 1) * sample_in], g, buf);
            for block in 0..blocks {
                let chans = cb.min(g.c_out - block * cb);
                let gb = ConvGeometry { c_out: chans, ..*g };
                let yb = &mut y[block * cb * l..(block * cb + chans) * l];
                let (wb, bb) = (
                    &wt[block * taps * cb..(block + 1) * taps * cb],
                    &b[block * cb..(block + 1) * cb],
                );
                // SAFETY: the callers asserted AVX2 and FMA; `choose` picks AVX-512 kernels
                // only where AVX-512F is there too.
                unsafe { kernel.run(xs, src.ws, wb, &offsets, bb, &gb, stage, yb) };
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, w, bias, g);
        unreachable!("has_fma is false off x86-64")
    }
}

/// δW [c_out, c_in, kh, kw] for contiguous `x` and `dy`.
///
/// The batch is split into one part per thread; each part sums its samples into its own
/// [block][tap][16] accumulator, and the parts are added in order, so the result does not
/// change from run to run.
///
/// # Panics
/// Unless [`applies`] holds for `g`.
pub(super) fn backward_weight(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert!(
        applies(g),
        "wide::backward_weight: needs groups = 1, 6 pixels and AVX2 + FMA: {g:?}"
    );
    #[cfg(target_arch = "x86_64")]
    {
        crate::cpu::ensure_thread_pool();
        let (taps, l, sample_in) = (g.k(), g.oh * g.ow, g.c_in * g.h * g.w);
        let avx512 = Isa::detect() == Isa::Avx512;
        // AVX-512 with more than 16 channels: 32 channels × 12 taps of sums, one input
        // broadcast for two FMAs (ResNet-20's 32 → 32 at 14 × 14: 2.2 → 2.0 ms).
        let cb = if avx512 && g.c_out > 16 { 32 } else { CB };
        let blocks = g.c_out.div_ceil(cb);
        let src = Source::of(g);
        let offsets = src.tap_offsets(g);
        let parts = rayon::current_num_threads().clamp(1, g.n);
        let per = g.n.div_ceil(parts);
        let sums: Vec<Vec<f32>> = (0..parts)
            .into_par_iter()
            .map(|part| {
                let mut acc = vec![0f32; blocks * taps * cb];
                // δy of one sample pixel-major per block: [block][pixel][cb], zeros past c_out.
                let (mut buf, mut dyt) = (Vec::new(), vec![0f32; blocks * l * cb]);
                for n in part * per..((part + 1) * per).min(g.n) {
                    let xs = src.planes(&x[n * sample_in..(n + 1) * sample_in], g, &mut buf);
                    let dys = &dy[n * g.c_out * l..(n + 1) * g.c_out * l];
                    for (block, planes) in dys.chunks(cb * l).enumerate() {
                        let dst = &mut dyt[block * l * cb..(block + 1) * l * cb];
                        // SAFETY: asserted above: AVX2.
                        unsafe { super::direct_avx2::pixels_from_planes(planes, cb, planes.len() / l, l, dst) };
                    }
                    for block in 0..blocks {
                        let (d, a) = (
                            &dyt[block * l * cb..(block + 1) * l * cb],
                            &mut acc[block * taps * cb..(block + 1) * taps * cb],
                        );
                        // SAFETY: asserted above: AVX2 and FMA; `avx512` that AVX-512F is there too.
                        unsafe {
                            match (avx512, cb) {
                                (true, 32) => {
                                    super::direct_avx512::weight_grad_sample::<2, 12>(xs, src.ws, d, &offsets, g, a)
                                }
                                (true, _) => {
                                    super::direct_avx512::weight_grad_sample::<1, 12>(xs, src.ws, d, &offsets, g, a)
                                }
                                _ => super::direct_avx2::weight_grad_sample::<2, 6>(xs, src.ws, d, &offsets, g, a),
                            }
                        };
                    }
                }
                acc
            })
            .collect();
        let mut dw = vec![0f32; g.c_out * taps];
        for part in &sums {
            for (o, row) in dw.chunks_exact_mut(taps).enumerate() {
                let (block, lane) = (o / cb, o % cb);
                for (t, d) in row.iter_mut().enumerate() {
                    *d += part[(block * taps + t) * cb + lane];
                }
            }
        }
        dw
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, dy);
        unreachable!("has_fma is false off x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::test_util::{Case, assert_close_f32, f32s, geometry, val};
    use crate::cpu::conv::{im2col, naive};
    use std::collections::HashSet;

    /// Wide layers with a last channel block that is not full, pixel blocks across rows with an
    /// overlapping last one, stride, dilation and padding on some sides; the forward pass against
    /// the definition, δW and δx against im2col + GEMM (in f64, itself checked by finite
    /// differences and PyTorch fixtures).
    #[test]
    fn wide_passes_match_the_definition() {
        let cases: [Case; 6] = [
            (8, 40, 9, 7, 3, 1, 1, 1, 1, 1, 1),
            (3, 48, 6, 5, 3, 2, 1, 1, 0, 2, 1),
            (4, 33, 11, 10, 3, 1, 2, 2, 2, 2, 2),
            (16, 64, 4, 3, 2, 1, 1, 0, 0, 0, 0),
            (40, 36, 7, 6, 3, 1, 1, 0, 2, 1, 3),
            (35, 20, 5, 8, 5, 1, 1, 2, 2, 2, 2),
        ];
        if !has_fma() {
            eprintln!("skipped: no AVX2/FMA");
            return;
        }
        let (mut forwards, mut dws, mut dxs) = (0, 0, 0);
        for case in cases {
            let g = geometry(2, case);
            let (x, wt, b) = (val(2 * g.c_in * g.h * g.w, 3), val(g.c_out * g.k(), 4), val(g.c_out, 5));
            let dy = val(2 * g.c_out * g.oh * g.ow, 6);
            if applies(&g) {
                let y = forward(&f32s(&x), &f32s(&wt), Some(&f32s(&b)), &g);
                assert_close_f32(
                    &y,
                    &naive::forward(&x, &wt, Some(&b), &g),
                    1e-5,
                    &format!("forward {g:?}"),
                );
                let dw = backward_weight(&f32s(&x), &f32s(&dy), &g);
                let expected = im2col::backward_weight(&x, &dy, &g, None);
                assert_close_f32(&dw, &expected, 1e-5, &format!("δW {g:?}"));
                (forwards, dws) = (forwards + 1, dws + 1);
            }
            if applies_to_backward_input(&g) {
                let dx = backward_input(&f32s(&dy), &f32s(&wt), &g);
                let expected = im2col::backward_input(&dy, &wt, &g);
                assert_close_f32(&dx, &expected, 1e-5, &format!("δx {g:?}"));
                dxs += 1;
            }
        }
        // Every pass met several geometries (none was silently skipped).
        assert_eq!((forwards, dws, dxs), (6, 6, 5));
    }

    /// Each register block of the forward pass (planes of 6, 7, 8 pixels for 32 channels × 6,
    /// 7, 8 pixels; 10 for 16 × 10; 9 for AVX2's 16 × 6), with a last channel block not full,
    /// against the definition.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_forward_kernel_matches_the_definition() {
        if !has_fma() {
            eprintln!("skipped: no AVX2/FMA");
            return;
        }
        let mut kernels = HashSet::new();
        for (h, w) in [(2, 3), (7, 1), (2, 4), (2, 5), (3, 3), (7, 7)] {
            let g = geometry(3, (18, 40, h, w, 3, 1, 1, 1, 1, 1, 1));
            let (x, wt, b) = (val(3 * 18 * h * w, 7), val(40 * g.k(), 8), val(40, 9));
            let y = forward(&f32s(&x), &f32s(&wt), Some(&f32s(&b)), &g);
            let kernel = ForwardKernel::choose(g.c_out, g.oh * g.ow);
            assert_close_f32(
                &y,
                &naive::forward(&x, &wt, Some(&b), &g),
                1e-5,
                &format!("{kernel:?} {g:?}"),
            );
            kernels.insert(kernel);
        }
        if Isa::detect() == Isa::Avx512 {
            use ForwardKernel::*;
            let all = [
                Avx2,
                Avx512x16,
                Avx512x32 { px: 6 },
                Avx512x32 { px: 7 },
                Avx512x32 { px: 8 },
            ];
            assert_eq!(kernels, all.into_iter().collect());
        } else {
            eprintln!("no AVX-512: only the AVX2 block was checked");
        }
    }
}
