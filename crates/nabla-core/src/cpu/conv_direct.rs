//! Direct convolution for small layers in inference, vectorised over output channels.
//!
//! For LeNet-5-sized layers (C_in·kH·kW ≤ 1024 taps, 8/16/32 output channels) unfolding the
//! input (im2col) costs more than the product itself. Here each output pixel keeps its C_out
//! sums in registers (a `[T; CO]` array) and walks the taps once: per tap one input value is
//! broadcast and multiplied into a row of the repacked weight `[tap][C_out]`.
//!
//! y[n, o, p] = b[o] + Σ_t x[n, tap_t(p)] · W[o, t]

use super::conv::ConvGeometry;
use crate::Float;
use rayon::prelude::*;

/// Whether [`conv2d_forward_direct`] handles this geometry.
pub fn direct_applies(g: &ConvGeometry) -> bool {
    g.groups == 1 && matches!(g.c_out, 8 | 16 | 32) && g.c_in * g.kh * g.kw <= 1024 && g.oh * g.ow > 0
}

/// y = W ⋆ x + b for contiguous `x` [n, c_in, h, w] and `weight` [c_out, c_in, kh, kw].
pub fn conv2d_forward_direct<T: Float>(x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    match g.c_out {
        8 => direct::<T, 8>(x, weight, bias, g),
        16 => direct::<T, 16>(x, weight, bias, g),
        32 => direct::<T, 32>(x, weight, bias, g),
        other => unreachable!("direct_applies admits 8, 16 or 32 output channels, not {other}"),
    }
}

/// Runs the per-sample kernel, in a copy compiled for AVX2 + FMA when the CPU has them.
///
/// NOTE: the crate is compiled for the baseline x86-64 (SSE2), so without this the loop runs
/// at a quarter of the machine's width (the `gemm` crate does the same runtime dispatch). The
/// feature boundary must sit inside the rayon closure: closures do not inherit it.
fn direct<T: Float, const CO: usize>(x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    let taps = g.c_in * g.kh * g.kw;
    let (h, w, l) = (g.h, g.w, g.oh * g.ow);
    // Weight repacked tap-major: wt[t] holds the CO output channels' weights of tap t.
    let wt: Vec<[T; CO]> = (0..taps)
        .map(|t| std::array::from_fn(|o| weight[o * taps + t]))
        .collect();
    // Offset of each tap from the window's top-left input position, for windows inside the image.
    let offsets: Vec<usize> = (0..g.c_in)
        .flat_map(|c| {
            (0..g.kh).flat_map(move |ki| (0..g.kw).map(move |kj| (c * h + ki * g.dilation[0]) * w + kj * g.dilation[1]))
        })
        .collect();
    let b: [T; CO] = std::array::from_fn(|o| bias.map_or(T::zero(), |b| b[o]));
    let sample_in = g.c_in * h * w;
    #[cfg(target_arch = "x86_64")]
    let fma = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let fma = false;
    let mut out = vec![T::zero(); g.n * CO * l];
    out.par_chunks_mut(CO * l).enumerate().for_each(|(n, y)| {
        let xs = &x[n * sample_in..(n + 1) * sample_in];
        #[cfg(target_arch = "x86_64")]
        if fma {
            // SAFETY: the CPU supports every feature the function is compiled with.
            unsafe { sample_avx2::<T, CO>(xs, &wt, &offsets, &b, g, y) };
            return;
        }
        sample::<T, CO, false>(xs, &wt, &offsets, &b, g, y);
    });
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sample_avx2<T: Float, const CO: usize>(
    xs: &[T],
    wt: &[[T; CO]],
    offsets: &[usize],
    b: &[T; CO],
    g: &ConvGeometry,
    y: &mut [T],
) {
    sample::<T, CO, true>(xs, wt, offsets, b, g, y)
}

/// a·b + c, fused when the caller was compiled with FMA (otherwise `mul_add` is a libm call).
#[inline(always)]
fn madd<T: Float, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// One sample: `y` [CO, l] from `xs` [c_in, h, w].
#[inline(always)]
fn sample<T: Float, const CO: usize, const FMA: bool>(
    xs: &[T],
    wt: &[[T; CO]],
    offsets: &[usize],
    b: &[T; CO],
    g: &ConvGeometry,
    y: &mut [T],
) {
    let (h, w, l) = (g.h, g.w, g.oh * g.ow);
    /// Pixels computed together: independent sums hide the FMA latency (one sum alone waits
    /// four cycles per tap on its previous value).
    const PX: usize = 4;
    let fits = |iy0: isize, ix0: isize| {
        iy0 >= 0
            && ix0 >= 0
            && iy0 as usize + (g.kh - 1) * g.dilation[0] < h
            && ix0 as usize + (g.kw - 1) * g.dilation[1] < w
    };
    for oy in 0..g.oh {
        let iy0 = (oy * g.stride[0]) as isize - g.pad_top as isize;
        let mut ox = 0;
        while ox + PX <= g.ow {
            let ix0 = (ox * g.stride[1]) as isize - g.pad_left as isize;
            let ix_last = ((ox + PX - 1) * g.stride[1]) as isize - g.pad_left as isize;
            if !(fits(iy0, ix0) && fits(iy0, ix_last)) {
                break;
            }
            let base = iy0 as usize * w + ix0 as usize;
            let mut acc = [*b; PX];
            for (row, &off) in wt.iter().zip(offsets) {
                for (px, a) in acc.iter_mut().enumerate() {
                    let v = xs[base + px * g.stride[1] + off];
                    for o in 0..CO {
                        a[o] = madd::<T, FMA>(v, row[o], a[o]);
                    }
                }
            }
            for (px, a) in acc.iter().enumerate() {
                for o in 0..CO {
                    y[o * l + oy * g.ow + ox + px] = a[o];
                }
            }
            ox += PX;
        }
        // The rest of the row (and windows over the padding) one pixel at a time.
        let first_single = ox;
        for ox in first_single..g.ow {
            let ix0 = (ox * g.stride[1]) as isize - g.pad_left as isize;
            let inside = iy0 >= 0
                && ix0 >= 0
                && iy0 as usize + (g.kh - 1) * g.dilation[0] < h
                && ix0 as usize + (g.kw - 1) * g.dilation[1] < w;
            let mut acc = *b;
            if inside {
                let base = iy0 as usize * w + ix0 as usize;
                for (row, &off) in wt.iter().zip(offsets) {
                    let v = xs[base + off];
                    for o in 0..CO {
                        acc[o] = madd::<T, FMA>(v, row[o], acc[o]);
                    }
                }
            } else {
                // A window over the zero padding: only the taps inside the image count.
                for c in 0..g.c_in {
                    for ki in 0..g.kh {
                        let iy = iy0 + (ki * g.dilation[0]) as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kj in 0..g.kw {
                            let ix = ix0 + (kj * g.dilation[1]) as isize;
                            if ix < 0 || ix >= w as isize {
                                continue;
                            }
                            let v = xs[(c * h + iy as usize) * w + ix as usize];
                            let row = &wt[(c * g.kh + ki) * g.kw + kj];
                            for o in 0..CO {
                                acc[o] = madd::<T, FMA>(v, row[o], acc[o]);
                            }
                        }
                    }
                }
            }
            let p = oy * g.ow + ox;
            for o in 0..CO {
                y[o * l + p] = acc[o];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::conv2d_naive;

    #[test]
    fn direct_matches_the_definition() {
        let val = |n: usize, s: usize| -> Vec<f64> {
            (0..n)
                .map(|i| (((i + s) * 2654435761) % 1000) as f64 / 500.0 - 1.0)
                .collect()
        };
        // (c_in, c_out, h, w, k, stride, dilation, pad_top, pad_left, pad_bottom, pad_right)
        for (ci, co, h, w, k, s, d, pt, pl, pb, pr) in [
            (6, 16, 14, 14, 5, 1, 1, 0, 0, 0, 0),
            (3, 8, 9, 7, 3, 2, 1, 1, 2, 1, 0),
            (2, 32, 8, 8, 3, 1, 2, 2, 2, 2, 2),
        ] {
            let oh = (h + pt + pb - d * (k - 1) - 1) / s + 1;
            let ow = (w + pl + pr - d * (k - 1) - 1) / s + 1;
            let g = ConvGeometry {
                n: 3,
                c_in: ci,
                h,
                w,
                c_out: co,
                kh: k,
                kw: k,
                stride: [s, s],
                dilation: [d, d],
                pad_top: pt,
                pad_left: pl,
                oh,
                ow,
                groups: 1,
            };
            assert!(direct_applies(&g));
            let (x, wt, b) = (val(3 * ci * h * w, 1), val(co * ci * k * k, 2), val(co, 3));
            let fast = conv2d_forward_direct(&x, &wt, Some(&b), &g);
            let slow = conv2d_naive(&x, &wt, Some(&b), &g);
            for (a, e) in fast.iter().zip(&slow) {
                assert!((a - e).abs() < 1e-12, "{a} vs {e}");
            }
        }
    }
}
