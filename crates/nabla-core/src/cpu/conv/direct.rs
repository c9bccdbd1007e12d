//! Direct convolution for small layers, forward and both backward passes, vectorised over
//! output channels.
//!
//! For LeNet-5-sized layers (C_in·kH·kW ≤ 1024 taps, at most 32 output channels) unfolding the
//! input (im2col) costs more than the product itself (LeNet-5's second layer, batch 128, this
//! machine: forward 0.53 vs 0.95 ms, δW 0.67 vs 1.47 ms), and GEMMs with 6 or 16 rows waste most of
//! their micro-kernels. Here the C_out channels of a pixel sit side by side in a `[T; CO]`
//! array (CO = 8, 16 or 32 lanes, the unused ones zero), which LLVM keeps in vector registers:
//!
//! forward  y[n, o, p]  = b[o] + Σ_t x[n, tap_t(p)] · W[o, t]       (per pixel, over taps)
//! δW       δW[o, t]    = Σ_n Σ_p δy[n, o, p] · x[n, tap_t(p)]      (per tap, over pixels)
//!
//! δx is not done here: as the forward pass of δy padded by (k − 1)·d with the weight
//! transposed and flipped, this channel kernel wasted half its products on the padding and ran
//! at 0.4× the GEMM's speed on LeNet-5's second layer (2.16 vs 0.82 ms). direct_dx.rs does
//! it with the row kernel, skipping the padding's kernel rows; wide.rs and winograd.rs
//! for larger layers.
//!
//! Zero padding is made explicit (each sample is copied into a padded buffer), so every
//! window lies inside its source and the inner loops have no bounds tests.

use super::ConvGeometry;
use super::Isa;
use crate::Float;
use crate::cpu::{as_f32, as_f32_mut, f32_vec_as, par_filled_chunks};
use rayon::prelude::*;

/// Whether the forward pass and δW of this geometry run here (any float type; the SIMD copies
/// take f32).
pub(super) fn applies(g: &ConvGeometry) -> bool {
    g.groups == 1 && g.c_out <= 32 && g.c_in * g.kh * g.kw <= 1024 && g.oh * g.ow > 0 && g.n > 0
}

/// a·b + c, fused when the caller was compiled with FMA (otherwise `mul_add` is a libm call).
#[inline(always)]
fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Where the windows of one sample read from: the input itself, or a zero-padded copy.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source {
    /// Height and width of the (padded) planes the windows read.
    pub(super) hs: usize,
    pub(super) ws: usize,
    /// Whether the input must be copied into a padded buffer first.
    padded: bool,
}

impl Source {
    pub(super) fn of(g: &ConvGeometry) -> Source {
        // The rows and columns that the last window still reaches.
        let hs = (g.oh - 1) * g.stride[0] + (g.kh - 1) * g.dilation[0] + 1;
        let ws = (g.ow - 1) * g.stride[1] + (g.kw - 1) * g.dilation[1] + 1;
        let padded = g.pad_top > 0 || g.pad_left > 0 || hs > g.h || ws > g.w;
        if padded {
            Source { hs, ws, padded }
        } else {
            Source {
                hs: g.h,
                ws: g.w,
                padded,
            }
        }
    }

    /// The planes of one sample as the windows read them: `x` itself or its padded copy in `buf`.
    pub(super) fn planes<'a, T: Float>(&self, x: &'a [T], g: &ConvGeometry, buf: &'a mut Vec<T>) -> &'a [T] {
        if !self.padded {
            return x;
        }
        pad_planes(x, g.c_in, g.h, g.w, g.pad_top, g.pad_left, self.hs, self.ws, buf);
        buf
    }

    /// Offset of each tap (c, ki, kj) from a window's top-left corner.
    pub(super) fn tap_offsets(&self, g: &ConvGeometry) -> Vec<usize> {
        let (hs, ws) = (self.hs, self.ws);
        (0..g.c_in)
            .flat_map(|c| {
                (0..g.kh).flat_map(move |ki| {
                    (0..g.kw).map(move |kj| (c * hs + ki * g.dilation[0]) * ws + kj * g.dilation[1])
                })
            })
            .collect()
    }
}

/// Copies `c` planes of h×w into `out` as planes of hs×ws, shifted by (top, left), zeros around;
/// rows and columns beyond hs×ws are dropped.
///
/// `out` is zeroed only when its length changes: the callers reuse one buffer per thread for
/// the samples of one geometry, which all write the same interior, so the border stays zero
/// (AlexNet-like Winograd forward: a 0.25 MB memset per sample saved).
pub(super) fn pad_planes<T: Float>(
    x: &[T],
    c: usize,
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    hs: usize,
    ws: usize,
    out: &mut Vec<T>,
) {
    if out.len() != c * hs * ws {
        out.clear();
        out.resize(c * hs * ws, T::zero());
    }
    let rows = h.min(hs.saturating_sub(top));
    let cols = w.min(ws.saturating_sub(left));
    for ch in 0..c {
        for iy in 0..rows {
            let src = &x[(ch * h + iy) * w..][..cols];
            out[(ch * hs + iy + top) * ws + left..][..cols].copy_from_slice(src);
        }
    }
}

/// The lane count for `c` output channels.
fn lanes(c: usize) -> usize {
    match c {
        0..=8 => 8,
        9..=16 => 16,
        _ => 32,
    }
}

// ------------------------------------------------------------------ forward

/// y = W ⋆ x + b for contiguous `x` [n, c_in, h, w] and `weight` [c_out, c_in, kh, kw], through
/// the kernels of `isa` (which the CPU must support).
pub(super) fn forward<T: Float>(isa: Isa, x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    match lanes(g.c_out) {
        8 => forward_lanes::<T, 8>(isa, x, weight, bias, g),
        16 => forward_lanes::<T, 16>(isa, x, weight, bias, g),
        _ => forward_lanes::<T, 32>(isa, x, weight, bias, g),
    }
}

fn forward_lanes<T: Float, const CO: usize>(
    isa: Isa,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    g: &ConvGeometry,
) -> Vec<T> {
    let taps = g.c_in * g.kh * g.kw;
    let l = g.oh * g.ow;
    // Weight repacked tap-major: wt[t] holds the output channels' weights of tap t.
    let wt: Vec<[T; CO]> = (0..taps)
        .map(|t| std::array::from_fn(|o| if o < g.c_out { weight[o * taps + t] } else { T::zero() }))
        .collect();
    let b: [T; CO] = std::array::from_fn(|o| match bias {
        Some(b) if o < g.c_out => b[o],
        _ => T::zero(),
    });
    let src = Source::of(g);
    let offsets = src.tap_offsets(g);
    let sample_in = g.c_in * g.h * g.w;
    // Rows of ≥ 16 pixels (or ≤ 8 channels) go to the row kernel: on 16→16 and 16→32 3×3 at
    // 32×32 it ran 1.6× and 2.1× the channel kernel (measured while that kernel still stored
    // each pixel's channels one by one); for 10- and 12-pixel rows of 16 channels the channel
    // kernel was faster (0.37 vs 0.70 ms).
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable && (CO == 8 && g.ow >= 8 || g.ow >= 16) && g.stride[1] == 1 && T::DTYPE == crate::DType::F32
    {
        return forward_by_rows(x, weight, bias, g, &src, &offsets);
    }
    par_filled_chunks(g.n, g.c_out * l, Default::default, |(buf, stage), n, y| {
        let xs = src.planes(&x[n * sample_in..(n + 1) * sample_in], g, buf);
        forward_one_sample::<T, CO>(isa, xs, src.ws, &wt, &offsets, &b, g, stage, y);
    })
}

/// A weight packed for the AVX2 kernels: [block][tap][cb] holding w(channel, tap) for channel
/// block·cb + c, zeros past `channels` (the kernels compute those lanes and drop them).
pub(super) fn pack_channel_blocks(
    channels: usize,
    taps: usize,
    cb: usize,
    w: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let blocks = channels.div_ceil(cb);
    (0..blocks * taps * cb)
        .map(|i| {
            let (block, t, c) = (i / (taps * cb), (i / cb) % taps, i % cb);
            let o = block * cb + c;
            if o < channels { w(o, t) } else { 0.0 }
        })
        .collect()
}

/// The forward pass through the row kernel (`direct_avx2::forward_sample_rows`), for
/// stride-1 layers with rows of at least 8 pixels.
#[cfg(target_arch = "x86_64")]
fn forward_by_rows<T: Float>(
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    g: &ConvGeometry,
    src: &Source,
    offsets: &[usize],
) -> Vec<T> {
    const CB: usize = 6;
    let (taps, l, sample_in) = (offsets.len(), g.oh * g.ow, g.c_in * g.h * g.w);
    let (Some(x), Some(weight)) = (as_f32(x), as_f32(weight)) else {
        unreachable!("forward_by_rows is only called for f32");
    };
    let bias: Vec<f32> = match bias.and_then(as_f32) {
        Some(b) => b.to_vec(),
        None => vec![0.0; g.c_out],
    };
    let wp = pack_channel_blocks(g.c_out, taps, CB, |o, t| weight[o * taps + t]);
    let out = par_filled_chunks(g.n, g.c_out * l, Vec::new, |buf, n, y: &mut [f32]| {
        let xs = src.planes(&x[n * sample_in..(n + 1) * sample_in], g, buf);
        // SAFETY: the caller checked AVX2 and FMA.
        unsafe {
            if g.ow >= 16 {
                super::direct_avx2::forward_sample_rows::<CB, 2>(xs, src.ws, &wp, offsets, &bias, g, None, y)
            } else {
                super::direct_avx2::forward_sample_rows::<CB, 1>(xs, src.ws, &wp, offsets, &bias, g, None, y)
            }
        }
    });
    f32_vec_as(out).expect("forward_by_rows is only called for f32")
}

/// One sample of the forward pass, through the copy of the kernel that `isa` names.
#[inline(always)]
fn forward_one_sample<T: Float, const CO: usize>(
    isa: Isa,
    xs: &[T],
    ws: usize,
    wt: &[[T; CO]],
    offsets: &[usize],
    b: &[T; CO],
    g: &ConvGeometry,
    stage: &mut Vec<f32>,
    y: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        let l = g.oh * g.ow;
        if let (Some(xs), Some(wt), Some(b), Some(y)) = (as_f32(xs), as_f32(flat(wt)), as_f32(b), as_f32_mut(y)) {
            use super::direct_avx2::forward_sample as k;
            use super::direct_avx512::blocks_fit;
            use super::direct_avx512::forward_sample as k512;
            // SAFETY: `isa` names features the CPU supports (AVX-512F with AVX2 and FMA, or
            // AVX2 and FMA); blocks_fit(l, PX) implies the l ≥ PX the AVX-512 kernels need.
            // Pixels per block: 10 × 16 lanes ran 0.38 ms against 0.40–0.50 for 14 and 20 on
            // LeNet-5's second layer (100 pixels: blocks of 10 divide it).
            unsafe {
                match CO {
                    16 if isa == Isa::Avx512 && blocks_fit(l, 10) => k512::<1, 10>(xs, ws, wt, offsets, b, g, stage, y),
                    32 if isa == Isa::Avx512 && blocks_fit(l, 6) => k512::<2, 6>(xs, ws, wt, offsets, b, g, stage, y),
                    8 => k::<1, 4>(xs, ws, wt, offsets, b, g, stage, y),
                    16 => k::<2, 6>(xs, ws, wt, offsets, b, g, stage, y),
                    _ => k::<4, 2>(xs, ws, wt, offsets, b, g, stage, y),
                }
            }
            return;
        }
        // SAFETY: `isa` says the CPU supports every feature the function is compiled with.
        unsafe { forward_sample_avx2::<T, CO>(xs, ws, wt, offsets, b, g, y) };
        return;
    }
    let _ = (isa, stage);
    forward_sample_loops::<T, CO, false>(xs, ws, wt, offsets, b, g, y)
}

/// The values of an array of lanes, one after another.
fn flat<T, const CO: usize>(a: &[[T; CO]]) -> &[T] {
    a.as_flattened()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_sample_avx2<T: Float, const CO: usize>(
    xs: &[T],
    ws: usize,
    wt: &[[T; CO]],
    offsets: &[usize],
    b: &[T; CO],
    g: &ConvGeometry,
    y: &mut [T],
) {
    forward_sample_loops::<T, CO, true>(xs, ws, wt, offsets, b, g, y)
}

/// One sample: `y` [c_out, l] from planes `xs` (width `ws`) that contain every window.
#[inline(always)]
fn forward_sample_loops<T: Float, const CO: usize, const FMA: bool>(
    xs: &[T],
    ws: usize,
    wt: &[[T; CO]],
    offsets: &[usize],
    b: &[T; CO],
    g: &ConvGeometry,
    y: &mut [T],
) {
    let l = g.oh * g.ow;
    let [sh, sw] = g.stride;
    /// Pixels computed together: independent sums hide the FMA latency (one sum alone waits
    /// four cycles per tap on its previous value).
    const PX: usize = 4;
    let store = |y: &mut [T], p: usize, a: &[T; CO]| {
        for o in 0..g.c_out {
            y[o * l + p] = a[o];
        }
    };
    for oy in 0..g.oh {
        let row = oy * sh * ws;
        let mut ox = 0;
        while ox + PX <= g.ow {
            let base = row + ox * sw;
            let mut acc = [*b; PX];
            for (w, &off) in wt.iter().zip(offsets) {
                for (px, a) in acc.iter_mut().enumerate() {
                    let v = xs[base + px * sw + off];
                    for o in 0..CO {
                        a[o] = madd::<T, FMA>(v, w[o], a[o]);
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
            let mut acc = *b;
            for (w, &off) in wt.iter().zip(offsets) {
                let v = xs[base + off];
                for o in 0..CO {
                    acc[o] = madd::<T, FMA>(v, w[o], acc[o]);
                }
            }
            store(y, oy * g.ow + ox, &acc);
        }
    }
}

// ------------------------------------------------------------------ δW

/// δW [c_out, c_in, kh, kw] = Σ_n Σ_p δy[n, o, p] · x[n, tap_t(p)].
///
/// The samples are split into one fixed part per thread and the parts summed in order, so the
/// result does not change from run to run.
///
/// Through the kernels of `isa` (which the CPU must support).
pub(super) fn backward_weight<T: Float>(isa: Isa, x: &[T], dy: &[T], g: &ConvGeometry) -> Vec<T> {
    match lanes(g.c_out) {
        8 => weight_grad_lanes::<T, 8>(isa, x, dy, g),
        16 => weight_grad_lanes::<T, 16>(isa, x, dy, g),
        _ => weight_grad_lanes::<T, 32>(isa, x, dy, g),
    }
}

fn weight_grad_lanes<T: Float, const CO: usize>(isa: Isa, x: &[T], dy: &[T], g: &ConvGeometry) -> Vec<T> {
    crate::cpu::ensure_thread_pool();
    let taps = g.c_in * g.kh * g.kw;
    let l = g.oh * g.ow;
    let src = Source::of(g);
    let offsets = src.tap_offsets(g);
    let sample_in = g.c_in * g.h * g.w;
    let parts = rayon::current_num_threads().clamp(1, g.n);
    let per = g.n.div_ceil(parts);
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable && CO == 8 && g.stride[1] == 1 && g.ow >= 8 && T::DTYPE == crate::DType::F32 {
        // LeNet-5's first layer (batch 128): 0.29 ms against 0.38 for the channel kernel;
        // blocks of 6×2 and 2×6 ran 0.40 and 0.34 ms.
        let sums: Vec<Vec<f32>> = (0..parts)
            .into_par_iter()
            .map(|part| {
                let mut acc = vec![0f32; g.c_out * taps * 8];
                let mut buf = Vec::new();
                for n in part * per..((part + 1) * per).min(g.n) {
                    let xs = src.planes(&x[n * sample_in..(n + 1) * sample_in], g, &mut buf);
                    let dys = &dy[n * g.c_out * l..(n + 1) * g.c_out * l];
                    let (Some(xs), Some(dys)) = (as_f32(xs), as_f32(dys)) else {
                        unreachable!("checked f32 above");
                    };
                    // SAFETY: `isa` says the CPU supports AVX2 and FMA.
                    unsafe {
                        super::direct_avx2::weight_grad_sample_rows::<3, 4>(xs, src.ws, dys, &offsets, g, &mut acc)
                    };
                }
                acc
            })
            .collect();
        // Parts in order, then the eight lanes of each weight: the same sum on every run.
        let mut dw = vec![0f64; g.c_out * taps];
        for part in &sums {
            for (d, lanes) in dw.iter_mut().zip(part.chunks_exact(8)) {
                *d += lanes.iter().sum::<f32>() as f64;
            }
        }
        return dw.into_iter().map(T::from_f64).collect();
    }
    let sums: Vec<Vec<[T; CO]>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![[T::zero(); CO]; taps];
            let (mut buf, mut dyt) = (Vec::new(), vec![[T::zero(); CO]; l]);
            for n in part * per..((part + 1) * per).min(g.n) {
                let xs = src.planes(&x[n * sample_in..(n + 1) * sample_in], g, &mut buf);
                // δy of this sample pixel-major: dyt[p] holds the output channels of pixel p.
                pixel_major(isa, &dy[n * g.c_out * l..(n + 1) * g.c_out * l], l, g.c_out, &mut dyt);
                weight_grad_one_sample::<T, CO>(isa, xs, src.ws, &dyt, &offsets, g, &mut acc);
            }
            acc
        })
        .collect();
    let mut dw = vec![T::zero(); g.c_out * taps];
    for part in &sums {
        for (t, a) in part.iter().enumerate() {
            for o in 0..g.c_out {
                dw[o * taps + t] += a[o];
            }
        }
    }
    dw
}

/// dyt[p][o] = dys[o·l + p] for o < c_out (the lanes past c_out keep their zeros).
fn pixel_major<T: Float, const CO: usize>(isa: Isa, dys: &[T], l: usize, c_out: usize, dyt: &mut [[T; CO]]) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable
        && let (Some(dys), Some(dyt)) = (as_f32(dys), as_f32_mut(dyt.as_flattened_mut()))
    {
        // SAFETY: `isa` says the CPU supports AVX2.
        unsafe { super::direct_avx2::pixels_from_planes(dys, CO, c_out, l, dyt) };
        return;
    }
    let _ = isa;
    for (p, d) in dyt.iter_mut().enumerate() {
        for o in 0..c_out {
            d[o] = dys[o * l + p];
        }
    }
}

#[inline(always)]
fn weight_grad_one_sample<T: Float, const CO: usize>(
    isa: Isa,
    xs: &[T],
    ws: usize,
    dyt: &[[T; CO]],
    offsets: &[usize],
    g: &ConvGeometry,
    acc: &mut [[T; CO]],
) {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Portable {
        if let (Some(xs), Some(dyt), Some(acc)) = (as_f32(xs), as_f32(flat(dyt)), as_f32_mut(acc.as_flattened_mut())) {
            use super::direct_avx2::weight_grad_sample as k;
            use super::direct_avx512::weight_grad_sample as k512;
            // SAFETY: `isa` names features the CPU supports.
            unsafe {
                match CO {
                    16 if isa == Isa::Avx512 => k512::<1, 10>(xs, ws, dyt, offsets, g, acc),
                    32 if isa == Isa::Avx512 => k512::<2, 6>(xs, ws, dyt, offsets, g, acc),
                    8 => k::<1, 8>(xs, ws, dyt, offsets, g, acc),
                    16 => k::<2, 5>(xs, ws, dyt, offsets, g, acc),
                    _ => k::<4, 2>(xs, ws, dyt, offsets, g, acc),
                }
            }
            return;
        }
        // SAFETY: `isa` says the CPU supports every feature the function is compiled with.
        unsafe { weight_grad_sample_avx2::<T, CO>(xs, ws, dyt, offsets, g, acc) };
        return;
    }
    let _ = isa;
    weight_grad_sample_loops::<T, CO, false>(xs, ws, dyt, offsets, g, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_grad_sample_avx2<T: Float, const CO: usize>(
    xs: &[T],
    ws: usize,
    dyt: &[[T; CO]],
    offsets: &[usize],
    g: &ConvGeometry,
    acc: &mut [[T; CO]],
) {
    weight_grad_sample_loops::<T, CO, true>(xs, ws, dyt, offsets, g, acc)
}

/// Adds one sample's δW to `acc` [taps][CO]: per tap, the sum over pixels of x · δy[pixel].
#[inline(always)]
fn weight_grad_sample_loops<T: Float, const CO: usize, const FMA: bool>(
    xs: &[T],
    ws: usize,
    dyt: &[[T; CO]],
    offsets: &[usize],
    g: &ConvGeometry,
    acc: &mut [[T; CO]],
) {
    let [sh, sw] = g.stride;
    /// Independent partial sums per tap, to hide the FMA latency.
    const PX: usize = 4;
    for (a, &off) in acc.iter_mut().zip(offsets) {
        let mut s = [[T::zero(); CO]; PX];
        for oy in 0..g.oh {
            let row = off + oy * sh * ws;
            let d = &dyt[oy * g.ow..(oy + 1) * g.ow];
            let mut ox = 0;
            while ox + PX <= g.ow {
                for (px, s) in s.iter_mut().enumerate() {
                    let v = xs[row + (ox + px) * sw];
                    let dp = &d[ox + px];
                    for o in 0..CO {
                        s[o] = madd::<T, FMA>(v, dp[o], s[o]);
                    }
                }
                ox += PX;
            }
            for ox in ox..g.ow {
                let v = xs[row + ox * sw];
                for o in 0..CO {
                    s[0][o] = madd::<T, FMA>(v, d[ox][o], s[0][o]);
                }
            }
        }
        for o in 0..CO {
            a[o] += (s[0][o] + s[1][o]) + (s[2][o] + s[3][o]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::test_util::{Case, assert_close_f32, f32s, geometry, val};
    use crate::cpu::conv::{im2col, naive};

    /// (c_in, c_out, h, w, k, stride, dilation, pad_top, pad_left, pad_bottom, pad_right)
    const CASES: [Case; 6] = [
        (6, 16, 14, 14, 5, 1, 1, 0, 0, 0, 0),
        (1, 6, 12, 12, 5, 1, 1, 2, 2, 2, 2),
        (3, 8, 9, 7, 3, 2, 1, 1, 2, 1, 0),
        (2, 32, 8, 8, 3, 1, 2, 2, 2, 2, 2),
        (4, 11, 7, 9, 3, 1, 1, 0, 1, 2, 0),
        (2, 20, 10, 9, 3, 3, 2, 1, 0, 0, 2),
    ];

    fn assert_close(fast: &[f64], slow: &[f64]) {
        assert_eq!(fast.len(), slow.len());
        for (a, e) in fast.iter().zip(slow) {
            assert!((a - e).abs() < 1e-11, "{a} vs {e}");
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for case in CASES {
            let g = geometry(3, case);
            assert!(applies(&g));
            let (x, wt, b) = (val(3 * g.c_in * g.h * g.w, 1), val(g.c_out * g.k(), 2), val(g.c_out, 3));
            assert_close(
                &forward(Isa::detect(), &x, &wt, Some(&b), &g),
                &naive::forward(&x, &wt, Some(&b), &g),
            );
        }
    }

    /// The f32 path runs the AVX2 or AVX-512 kernels (row kernel for ≤ 8 channels and stride 1,
    /// channel kernel otherwise), which the f64 tests above never reach: compare each copy this
    /// CPU can run with the f64 definition, within f32 rounding.
    #[test]
    fn f32_kernels_match_the_definition() {
        // (c_in, c_out, h, w, k, stride, dilation, pad) with both row-kernel widths, a short
        // last channel block, 16 and 32 channels, stride 2, dilation 2, and planes of fewer
        // pixels than a block (6 and 3 pixels of 16 channels).
        let cases = [
            (1, 6, 28, 28, 5, 1, 1, 2),
            (2, 7, 12, 13, 3, 1, 1, 1),
            (3, 1, 9, 20, 3, 1, 2, 0),
            (2, 8, 10, 17, 3, 1, 1, 1),
            (6, 16, 14, 14, 5, 1, 1, 0),
            (3, 32, 9, 9, 3, 2, 1, 1),
            (2, 5, 11, 11, 3, 2, 1, 1),
            (3, 16, 16, 18, 3, 1, 1, 1),
            (2, 20, 8, 21, 3, 1, 1, 0),
            (2, 12, 4, 5, 3, 1, 1, 0),
            (3, 16, 3, 5, 3, 1, 1, 0),
            (5, 27, 7, 6, 3, 1, 1, 1),
            (2, 24, 8, 9, 3, 1, 1, 1),
        ];
        for isa in Isa::supported() {
            for (ci, co, h, w, k, s, d, p) in cases {
                let g = geometry(3, (ci, co, h, w, k, s, d, p, p, p, p));
                let (x, wt, b) = (val(3 * ci * h * w, 7), val(co * g.k(), 8), val(co, 9));
                let dy = val(3 * co * g.oh * g.ow, 10);
                let y = forward(isa, &f32s(&x), &f32s(&wt), Some(&f32s(&b)), &g);
                assert_close_f32(
                    &y,
                    &naive::forward(&x, &wt, Some(&b), &g),
                    1e-5,
                    &format!("forward {isa:?} {g:?}"),
                );
                let dw = backward_weight(isa, &f32s(&x), &f32s(&dy), &g);
                assert_close_f32(
                    &dw,
                    &im2col::backward_weight(&x, &dy, &g, None),
                    1e-5,
                    &format!("δW {isa:?} {g:?}"),
                );
            }
        }
    }

    /// The im2col + GEMM weight gradient is checked against finite differences elsewhere;
    /// the direct one must agree with it.
    #[test]
    fn weight_grad_matches_im2col() {
        for case in CASES {
            let g = geometry(3, case);
            let x = val(3 * g.c_in * g.h * g.w, 4);
            let dy = val(3 * g.c_out * g.oh * g.ow, 6);
            assert_close(
                &backward_weight(Isa::detect(), &x, &dy, &g),
                &im2col::backward_weight(&x, &dy, &g, None),
            );
        }
    }
}
