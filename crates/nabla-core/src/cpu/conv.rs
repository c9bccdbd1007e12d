//! 2-D convolution on the CPU as im2col + GEMM (Chellapilla et al., 2006), batch-parallel.
//! `conv2d_naive` is the direct seven-loop definition, kept as the oracle for tests.

use super::gemm::{MatRef, gemm};
use crate::Float;
use rayon::prelude::*;

/// Everything about one convolution's shapes. Input `[n, c_in, h, w]`, weight
/// `[c_out, c_in/groups, kh, kw]`, output `[n, c_out, oh, ow]`; zero padding `pad_top`/`pad_left`
/// (bottom and right padding only enter through `oh`/`ow`).
#[derive(Debug, Clone, Copy)]
pub struct ConvGeometry {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
    pub groups: usize,
}

impl ConvGeometry {
    fn cin_g(&self) -> usize {
        self.c_in / self.groups
    }
    fn cout_g(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the im2col matrix per group: c_in/groups · kh · kw.
    fn k(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }
    /// Columns of the im2col matrix: output positions.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1×1, stride-1, unpadded convolution reads the input directly as its im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad_top == 0
            && self.pad_left == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// The range of output columns `ox` whose input column `ox·s + kj·d − pad` lies in [0, w).
    fn valid_range(out: usize, inp: usize, s: usize, offset: isize) -> (usize, usize) {
        // smallest ox with ox·s + offset ≥ 0, and smallest ox with ox·s + offset ≥ inp.
        let lo = if offset >= 0 {
            0
        } else {
            ((-offset) as usize).div_ceil(s)
        };
        let hi = if (inp as isize) - offset <= 0 {
            0
        } else {
            ((inp as isize - offset) as usize).div_ceil(s)
        };
        (lo.min(out), hi.min(out).max(lo.min(out)))
    }
}

/// Unfolds one group of one sample (`cin_g` planes of h×w) into `col` [k × l]; the
/// channels are spread over the thread pool when `parallel`.
fn im2col<T: Float>(x: &[T], g: &ConvGeometry, col: &mut [T], parallel: bool) {
    let per_channel = g.kh * g.kw * g.l();
    let col = &mut col[..g.cin_g() * per_channel];
    if parallel {
        col.par_chunks_mut(per_channel)
            .enumerate()
            .for_each(|(c, rows)| im2col_channel(x, g, c, rows));
    } else {
        col.chunks_mut(per_channel)
            .enumerate()
            .for_each(|(c, rows)| im2col_channel(x, g, c, rows));
    }
}

/// The kh·kw rows of the im2col matrix that come from input channel `c`.
fn im2col_channel<T: Float>(x: &[T], g: &ConvGeometry, c: usize, rows: &mut [T]) {
    let (h, w, oh, ow, l) = (g.h, g.w, g.oh, g.ow, g.l());
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = ki * g.kw + kj;
                let dst = &mut rows[row * l..(row + 1) * l];
                let off_x = (kj * dw) as isize - g.pad_left as isize;
                let (lo, hi) = ConvGeometry::valid_range(ow, w, sw, off_x);
                for oy in 0..oh {
                    let iy = (oy * sh + ki * dh) as isize - g.pad_top as isize;
                    let d = &mut dst[oy * ow..(oy + 1) * ow];
                    if iy < 0 || iy >= h as isize {
                        d.fill(T::zero());
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    d[..lo].fill(T::zero());
                    d[hi..].fill(T::zero());
                    if sw == 1 {
                        let start = (lo as isize + off_x) as usize;
                        d[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                    } else {
                        for ox in lo..hi {
                            d[ox] = src[(ox as isize * sw as isize + off_x) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// Folds `col` [k × l] back into one group of one sample, adding (the adjoint of im2col);
/// each input channel's plane is independent, so channels run in parallel when `parallel`.
fn col2im<T: Float>(col: &[T], g: &ConvGeometry, dx: &mut [T], parallel: bool) {
    let per_channel = g.kh * g.kw * g.l();
    let hw = g.h * g.w;
    let dx = &mut dx[..g.cin_g() * hw];
    if parallel {
        dx.par_chunks_mut(hw)
            .enumerate()
            .for_each(|(c, plane)| col2im_channel(&col[c * per_channel..], g, plane));
    } else {
        dx.chunks_mut(hw)
            .enumerate()
            .for_each(|(c, plane)| col2im_channel(&col[c * per_channel..], g, plane));
    }
}

/// Adds the kh·kw rows of channel `c` (`rows`) into its input plane.
fn col2im_channel<T: Float>(rows: &[T], g: &ConvGeometry, plane: &mut [T]) {
    let (h, w, oh, ow, l) = (g.h, g.w, g.oh, g.ow, g.l());
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    {
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = ki * g.kw + kj;
                let src = &rows[row * l..(row + 1) * l];
                let off_x = (kj * dw) as isize - g.pad_left as isize;
                let (lo, hi) = ConvGeometry::valid_range(ow, w, sw, off_x);
                for oy in 0..oh {
                    let iy = (oy * sh + ki * dh) as isize - g.pad_top as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                    let s = &src[oy * ow..(oy + 1) * ow];
                    for ox in lo..hi {
                        dst[(ox as isize * sw as isize + off_x) as usize] += s[ox];
                    }
                }
            }
        }
    }
}

/// How to split work: batch-parallel (one sample per thread, single-threaded GEMMs) when the
/// per-sample products are small, as in LeNet-5; otherwise sample after sample with every
/// thread inside the GEMM and the im2col, as for AlexNet's larger layers.
fn batch_parallel(g: &ConvGeometry) -> bool {
    super::ensure_thread_pool();
    let t = rayon::current_num_threads();
    let flops_per_sample = 2 * g.c_out * g.l() * g.k();
    t > 1 && g.n >= t && flops_per_sample < (1 << 24)
}

/// y = W ⋆ x + b for contiguous `x` and `weight`.
pub fn conv2d_forward<T: Float>(x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    let (k, l, cin_g, cout_g) = (g.k(), g.l(), g.cin_g(), g.cout_g());
    let sample_in = g.c_in * g.h * g.w;
    let mut out = vec![T::zero(); g.n * g.c_out * l];
    let threads = rayon::current_num_threads();
    let one_sample = |(ni, y): (usize, &mut [T]), gemm_threads: usize, col: &mut Vec<T>| {
        let xs = &x[ni * sample_in..(ni + 1) * sample_in];
        for gi in 0..g.groups {
            let xg = &xs[gi * cin_g * g.h * g.w..(gi + 1) * cin_g * g.h * g.w];
            let rhs = if g.is_pointwise() {
                MatRef {
                    data: xg,
                    offset: 0,
                    rs: l,
                    cs: 1,
                }
            } else {
                col.resize(k * l, T::zero());
                im2col(xg, g, col, gemm_threads > 1);
                MatRef {
                    data: col.as_slice(),
                    offset: 0,
                    rs: l,
                    cs: 1,
                }
            };
            let lhs = MatRef {
                data: weight,
                offset: gi * cout_g * k,
                rs: k,
                cs: 1,
            };
            gemm(
                cout_g,
                l,
                k,
                &mut y[gi * cout_g * l..(gi + 1) * cout_g * l],
                lhs,
                rhs,
                false,
                gemm_threads,
            );
        }
        if let Some(b) = bias {
            for (c, plane) in y.chunks_mut(l.max(1)).enumerate() {
                plane.iter_mut().for_each(|v| *v += b[c]);
            }
        }
    };
    if g.c_out * l == 0 {
        return out;
    }
    if batch_parallel(g) {
        out.par_chunks_mut(g.c_out * l)
            .enumerate()
            .for_each_init(Vec::new, |col, p| one_sample(p, 1, col));
    } else {
        let mut col = Vec::new();
        out.chunks_mut(g.c_out * l)
            .enumerate()
            .for_each(|p| one_sample(p, threads, &mut col));
    }
    out
}

/// δx = col2im(Wᵀ·δy), per sample and group.
pub fn conv2d_backward_input<T: Float>(dy: &[T], weight: &[T], g: &ConvGeometry) -> Vec<T> {
    let (k, l, cin_g, cout_g) = (g.k(), g.l(), g.cin_g(), g.cout_g());
    let sample_in = g.c_in * g.h * g.w;
    let mut dx = vec![T::zero(); g.n * sample_in];
    let threads = rayon::current_num_threads();
    let one_sample = |(ni, dxs): (usize, &mut [T]), gemm_threads: usize, col: &mut Vec<T>| {
        let dys = &dy[ni * g.c_out * l..(ni + 1) * g.c_out * l];
        for gi in 0..g.groups {
            let lhs = MatRef {
                data: weight,
                offset: gi * cout_g * k,
                rs: 1,
                cs: k,
            }; // Wᵀ: k × cout_g
            let rhs = MatRef {
                data: dys,
                offset: gi * cout_g * l,
                rs: l,
                cs: 1,
            };
            let dxg = &mut dxs[gi * cin_g * g.h * g.w..(gi + 1) * cin_g * g.h * g.w];
            if g.is_pointwise() {
                gemm(k, l, cout_g, dxg, lhs, rhs, false, gemm_threads);
            } else {
                col.resize(k * l, T::zero());
                gemm(k, l, cout_g, col, lhs, rhs, false, gemm_threads);
                col2im(col, g, dxg, gemm_threads > 1);
            }
        }
    };
    if sample_in == 0 {
        return dx;
    }
    if batch_parallel(g) {
        dx.par_chunks_mut(sample_in)
            .enumerate()
            .for_each_init(Vec::new, |col, p| one_sample(p, 1, col));
    } else {
        let mut col = Vec::new();
        dx.chunks_mut(sample_in)
            .enumerate()
            .for_each(|p| one_sample(p, threads, &mut col));
    }
    dx
}

/// δW = Σₙ δyₙ · colₙᵀ, accumulated per thread over a share of the batch, then summed.
pub fn conv2d_backward_weight<T: Float>(x: &[T], dy: &[T], g: &ConvGeometry) -> Vec<T> {
    let (k, l, cin_g, cout_g) = (g.k(), g.l(), g.cin_g(), g.cout_g());
    let sample_in = g.c_in * g.h * g.w;
    let wlen = g.c_out * k;
    let accumulate = |samples: std::ops::Range<usize>, gemm_threads: usize| -> Vec<T> {
        let mut dw = vec![T::zero(); wlen];
        let mut col = Vec::new();
        for ni in samples {
            let xs = &x[ni * sample_in..(ni + 1) * sample_in];
            let dys = &dy[ni * g.c_out * l..(ni + 1) * g.c_out * l];
            for gi in 0..g.groups {
                let xg = &xs[gi * cin_g * g.h * g.w..(gi + 1) * cin_g * g.h * g.w];
                let rhs = if g.is_pointwise() {
                    MatRef {
                        data: xg,
                        offset: 0,
                        rs: 1,
                        cs: l,
                    } // colᵀ: l × k
                } else {
                    col.resize(k * l, T::zero());
                    im2col(xg, g, &mut col, gemm_threads > 1);
                    MatRef {
                        data: col.as_slice(),
                        offset: 0,
                        rs: 1,
                        cs: l,
                    }
                };
                let lhs = MatRef {
                    data: dys,
                    offset: gi * cout_g * l,
                    rs: l,
                    cs: 1,
                };
                gemm(
                    cout_g,
                    k,
                    l,
                    &mut dw[gi * cout_g * k..(gi + 1) * cout_g * k],
                    lhs,
                    rhs,
                    true,
                    gemm_threads,
                );
            }
        }
        dw
    };
    if batch_parallel(g) {
        let t = rayon::current_num_threads();
        let per = g.n.div_ceil(t);
        let parts: Vec<Vec<T>> = (0..t)
            .into_par_iter()
            .map(|i| accumulate(i * per..((i + 1) * per).min(g.n), 1))
            .collect();
        let mut dw = vec![T::zero(); wlen];
        for p in parts {
            dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        dw
    } else {
        accumulate(0..g.n, rayon::current_num_threads())
    }
}

/// The definition, seven loops deep: the oracle for the fast path.
pub fn conv2d_naive<T: Float>(x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let mut out = vec![T::zero(); g.n * g.c_out * g.oh * g.ow];
    for n in 0..g.n {
        for co in 0..g.c_out {
            let gi = co / cout_g;
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = bias.map_or(T::zero(), |b| b[co]);
                    for ci in 0..cin_g {
                        for ki in 0..g.kh {
                            for kj in 0..g.kw {
                                let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.pad_top as isize;
                                let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xv = x[((n * g.c_in + gi * cin_g + ci) * g.h + iy as usize) * g.w + ix as usize];
                                let wv = weight[((co * cin_g + ci) * g.kh + ki) * g.kw + kj];
                                acc += xv * wv;
                            }
                        }
                    }
                    out[((n * g.c_out + co) * g.oh + oy) * g.ow + ox] = acc;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (((i + seed) * 2654435761) % 1000) as f64 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn fast_conv_matches_the_definition() {
        // (c_in, c_out, h, w, k, stride, dilation, pads (t, l, b, r), groups)
        let cases = [
            (3, 4, 7, 6, 3, [1, 1], [1, 1], [1, 1, 1, 1], 1),
            (4, 6, 9, 8, 3, [2, 1], [1, 2], [2, 0, 1, 3], 2),
            (2, 2, 5, 5, 1, [1, 1], [1, 1], [0, 0, 0, 0], 1),
            (6, 6, 6, 7, 2, [2, 3], [2, 1], [0, 1, 1, 0], 6),
        ];
        for (ci, co, h, w, k, stride, dil, [pt, pl, pb, pr], groups) in cases {
            for n in [1, 5] {
                let oh = (h + pt + pb - dil[0] * (k - 1) - 1) / stride[0] + 1;
                let ow = (w + pl + pr - dil[1] * (k - 1) - 1) / stride[1] + 1;
                let g = ConvGeometry {
                    n,
                    c_in: ci,
                    h,
                    w,
                    c_out: co,
                    kh: k,
                    kw: k,
                    stride,
                    dilation: dil,
                    pad_top: pt,
                    pad_left: pl,
                    oh,
                    ow,
                    groups,
                };
                let x = values(n * ci * h * w, 1);
                let wt = values(co * ci / groups * k * k, 2);
                let b = values(co, 3);
                let fast = conv2d_forward(&x, &wt, Some(&b), &g);
                let slow = conv2d_naive(&x, &wt, Some(&b), &g);
                for (a, b) in fast.iter().zip(&slow) {
                    assert!((a - b).abs() < 1e-12, "{g:?}: {a} vs {b}");
                }
            }
        }
    }
}
