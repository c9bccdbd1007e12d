//! Convolution as im2col + GEMM (Chellapilla et al., 2006), all three passes, any dtype and
//! geometry (groups, strides, dilation): the algorithm every other one falls back to.
//!
//! forward  Y_g = W_g · col(x_g)            (per group g: [cout_g × k] · [k × l])
//! δx       δx_g = col2im(W_gᵀ · δY_g)
//! δW       δW_g = Σ_chunks δY_g · col(x_g)ᵀ
//!
//! Several samples share one GEMM for small layers, and the chunks of samples run on separate
//! threads or one after another with every thread in the GEMM, by shape (see `Plan`).

use crate::Float;
use crate::cpu::gemm::MatRef;
use crate::cpu::gemm_bf16::gemm_in;
use rayon::prelude::*;

use super::ConvGeometry;

/// Unfolds one group of one sample (`cin_g` planes of h×w) into columns `off..off + l` of
/// `col`, a [k × ld] matrix; the channels are spread over the thread pool when `parallel`.
fn im2col<T: Float>(x: &[T], g: &ConvGeometry, col: &mut [T], ld: usize, off: usize, parallel: bool) {
    let per_channel = g.kh * g.kw * ld;
    let col = &mut col[..g.cin_g() * per_channel];
    if parallel {
        col.par_chunks_mut(per_channel)
            .enumerate()
            .for_each(|(c, rows)| im2col_channel(x, g, c, rows, ld, off));
    } else {
        col.chunks_mut(per_channel)
            .enumerate()
            .for_each(|(c, rows)| im2col_channel(x, g, c, rows, ld, off));
    }
}

/// The kh·kw rows of the im2col matrix that come from input channel `c`.
fn im2col_channel<T: Float>(x: &[T], g: &ConvGeometry, c: usize, rows: &mut [T], ld: usize, off: usize) {
    let (h, w, oh, ow, l) = (g.h, g.w, g.oh, g.ow, g.l());
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    let plane = &x[c * h * w..(c + 1) * h * w];
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let row = ki * g.kw + kj;
            let dst = &mut rows[row * ld + off..row * ld + off + l];
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
                if lo > 0 {
                    d[..lo].fill(T::zero());
                }
                if hi < ow {
                    d[hi..].fill(T::zero());
                }
                // An empty range may start left of the image (an output narrower than the
                // padding), where `lo + off_x` is negative: nothing to copy.
                if sw == 1 && hi > lo {
                    let start = (lo as isize + off_x) as usize;
                    copy_short(&mut d[lo..hi], &src[start..start + hi - lo]);
                } else if sw != 1 {
                    for ox in lo..hi {
                        d[ox] = src[(ox as isize * sw as isize + off_x) as usize];
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of small images (LeNet-5: 10 values).
///
/// NOTE: LLVM turns a plain copy loop into a call to memcpy, whose fixed cost dominated
/// im2col for LeNet-5; copying in blocks of 8 keeps the moves inline.
#[inline(always)]
fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d8, s8) in (&mut d).zip(&mut s) {
        let block: [T; 8] = s8.try_into().expect("chunks of 8");
        d8.copy_from_slice(&block);
    }
    for (dv, sv) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *dv = std::hint::black_box(*sv);
    }
}

/// Folds columns `off..off + l` of `col` [k × ld] back into one group of one sample, adding
/// (the adjoint of im2col); each input channel's plane is independent, so channels run in
/// parallel when `parallel`.
fn col2im<T: Float>(col: &[T], g: &ConvGeometry, dx: &mut [T], ld: usize, off: usize, parallel: bool) {
    let per_channel = g.kh * g.kw * ld;
    let hw = g.h * g.w;
    let dx = &mut dx[..g.cin_g() * hw];
    if parallel {
        dx.par_chunks_mut(hw)
            .enumerate()
            .for_each(|(c, plane)| col2im_channel(&col[c * per_channel..], g, plane, ld, off));
    } else {
        dx.chunks_mut(hw)
            .enumerate()
            .for_each(|(c, plane)| col2im_channel(&col[c * per_channel..], g, plane, ld, off));
    }
}

/// Adds the kh·kw rows of one channel into its input plane.
fn col2im_channel<T: Float>(rows: &[T], g: &ConvGeometry, plane: &mut [T], ld: usize, off: usize) {
    let (h, w, oh, ow, l) = (g.h, g.w, g.oh, g.ow, g.l());
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let row = ki * g.kw + kj;
            let src = &rows[row * ld + off..row * ld + off + l];
            let off_x = (kj * dw) as isize - g.pad_left as isize;
            let (lo, hi) = ConvGeometry::valid_range(ow, w, sw, off_x);
            for oy in 0..oh {
                let iy = (oy * sh + ki * dh) as isize - g.pad_top as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                let dst = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                let s = &src[oy * ow..(oy + 1) * ow];
                if sw == 1 && hi > lo {
                    let start = (lo as isize + off_x) as usize;
                    for (dv, &sv) in dst[start..start + hi - lo].iter_mut().zip(&s[lo..hi]) {
                        *dv += sv;
                    }
                } else if sw != 1 {
                    for ox in lo..hi {
                        dst[(ox as isize * sw as isize + off_x) as usize] += s[ox];
                    }
                }
            }
        }
    }
}

/// How a convolution's batch is cut into GEMMs and spread over threads.
///
/// Small layers (LeNet-5's) give tiny per-sample products that waste the GEMM's packing, so
/// `chunk` samples are unfolded side by side into one [k × chunk·l] matrix and multiplied at
/// once. Chunks run on separate threads with single-threaded GEMMs when there are at least as
/// many chunks as threads; otherwise (fewer samples than threads) one after another with every
/// thread in the GEMM and in the unfolding.
#[derive(Debug, Clone, Copy)]
struct Plan {
    chunk: usize,
    chunk_parallel: bool,
    threads: usize,
}

impl Plan {
    fn new(g: &ConvGeometry) -> Plan {
        crate::cpu::ensure_thread_pool();
        let threads = rayon::current_num_threads();
        let (k, l) = (g.k().max(1), g.l().max(1));
        // Aim for ≥ 2048 output columns per GEMM, with the unfolded matrix under 1M values.
        let chunk = if g.is_pointwise() {
            1
        } else {
            (2048usize.div_ceil(l))
                .min((1 << 20) / (k * l).max(1))
                .clamp(1, g.n.max(1))
        };
        let chunks = g.n.div_ceil(chunk);
        // NOTE: chunks on separate threads with one-thread GEMMs beat every thread in one GEMM
        // even for AlexNet-sized layers (one sample per chunk, 448 MFLOP): forward 82 vs 110 ms,
        // δx 77 vs 102 ms on this 2-core machine; the threads never wait on each other.
        let chunk_parallel = threads > 1 && chunks >= threads;
        Plan {
            chunk,
            chunk_parallel,
            threads,
        }
    }

    /// The sample ranges of the chunks.
    fn ranges(&self, n: usize) -> Vec<std::ops::Range<usize>> {
        (0..n).step_by(self.chunk).map(|s| s..(s + self.chunk).min(n)).collect()
    }

    /// (GEMM threads, unfold in parallel) inside one chunk.
    fn inner(&self) -> (usize, bool) {
        if self.chunk_parallel {
            (1, false)
        } else {
            (self.threads, self.threads > 1)
        }
    }
}

/// Copies δy of samples `range`, group `gi`, from [n, c_out, l] into a [cout_g × s·l] matrix.
fn gather_dy<T: Float>(dy: &[T], g: &ConvGeometry, range: &std::ops::Range<usize>, gi: usize, out: &mut Vec<T>) {
    let (l, cout_g) = (g.l(), g.cout_g());
    let s = range.len();
    out.resize(cout_g * s * l, T::zero());
    for (j, ni) in range.clone().enumerate() {
        for o in 0..cout_g {
            let src = &dy[(ni * g.c_out + gi * cout_g + o) * l..][..l];
            out[o * s * l + j * l..][..l].copy_from_slice(src);
        }
    }
}

/// Whether an f32 layer under autocast runs its passes as bf16 GEMMs: when the products are
/// large enough for them to beat the f32 kernels despite unfolding in f32 and packing again in
/// bf16 — at least 2048 rows of the unfolded input (C_in/groups · kh · kw) and 128 output
/// channels per group. Measured (`examples/conv_precision`, 2 threads, AMX, forward+backward):
/// 3×3 256→256 on 14×14 and 512→512 on 7×7 run 1.9× as fast in bf16; 128→128 on 28×28 breaks
/// even; ResNet-20's 32- and 64-channel layers run at 0.5–0.6× and stay f32.
pub(super) fn bf16_pays(g: &ConvGeometry) -> bool {
    g.k() >= 2048 && g.cout_g() >= 128
}

/// The unfolded inputs of a forward pass, one matrix per chunk of samples and group, kept for
/// the weight gradient when they are small enough (LeNet-5-sized layers).
pub type SavedColumns<T> = Vec<Vec<Vec<T>>>;

/// Keep the unfolded inputs for backward when they hold at most this many values.
const KEEP_COLUMNS_LIMIT: usize = 1 << 23;

/// The forward pass as im2col + GEMM; with `keep`, also the unfolded inputs if they are small.
pub(super) fn forward<T: Float>(
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    g: &ConvGeometry,
    keep: bool,
) -> (Vec<T>, Option<SavedColumns<T>>) {
    let (k, l, cin_g, cout_g) = (g.k(), g.l(), g.cin_g(), g.cout_g());
    let sample_in = g.c_in * g.h * g.w;
    let sample_out = g.c_out * l;
    let mut out = vec![T::zero(); g.n * sample_out];
    if sample_out == 0 || g.n == 0 {
        return (out, None);
    }
    let plan = Plan::new(g);
    let keep = keep && !g.is_pointwise() && g.n * g.groups * k * l <= KEEP_COLUMNS_LIMIT;
    let (gemm_threads, par_unfold) = plan.inner();
    let ranges = plan.ranges(g.n);
    let one_chunk = |(range, y): (&std::ops::Range<usize>, &mut [T]), bufs: &mut (Vec<T>, Vec<T>)| -> Vec<Vec<T>> {
        let s = range.len();
        let (col, prod) = bufs;
        let mut kept = Vec::new();
        for gi in 0..g.groups {
            let lhs = MatRef {
                data: weight,
                offset: gi * cout_g * k,
                rs: k,
                cs: 1,
            };
            if g.is_pointwise() {
                // s == 1: the input plane is already the [cin_g × l] matrix.
                let xg = &x[range.start * sample_in + gi * cin_g * l..][..cin_g * l];
                let rhs = MatRef {
                    data: xg,
                    offset: 0,
                    rs: l,
                    cs: 1,
                };
                gemm_in(
                    g.precision,
                    cout_g,
                    l,
                    k,
                    &mut y[gi * cout_g * l..(gi + 1) * cout_g * l],
                    lhs,
                    rhs,
                    false,
                    gemm_threads,
                );
                continue;
            }
            col.resize(k * s * l, T::zero());
            for (j, ni) in range.clone().enumerate() {
                let xg = &x[ni * sample_in + gi * cin_g * g.h * g.w..][..cin_g * g.h * g.w];
                im2col(xg, g, col, s * l, j * l, par_unfold);
            }
            prod.resize(cout_g * s * l, T::zero());
            let rhs = MatRef {
                data: col.as_slice(),
                offset: 0,
                rs: s * l,
                cs: 1,
            };
            gemm_in(g.precision, cout_g, s * l, k, prod, lhs, rhs, false, gemm_threads);
            for j in 0..s {
                for o in 0..cout_g {
                    y[j * sample_out + (gi * cout_g + o) * l..][..l].copy_from_slice(&prod[o * s * l + j * l..][..l]);
                }
            }
            if keep {
                kept.push(col[..k * s * l].to_vec());
            }
        }
        if let Some(b) = bias {
            for sample in y.chunks_mut(sample_out) {
                for (c, plane) in sample.chunks_mut(l).enumerate() {
                    plane.iter_mut().for_each(|v| *v += b[c]);
                }
            }
        }
        kept
    };
    let chunk_out = plan.chunk * sample_out;
    let kept: Vec<Vec<Vec<T>>> = if plan.chunk_parallel {
        ranges
            .par_iter()
            .zip(out.par_chunks_mut(chunk_out))
            .map_init(|| (Vec::new(), Vec::new()), |b, p| one_chunk(p, b))
            .collect()
    } else {
        let mut bufs = (Vec::new(), Vec::new());
        ranges
            .iter()
            .zip(out.chunks_mut(chunk_out))
            .map(|p| one_chunk(p, &mut bufs))
            .collect()
    };
    (out, keep.then_some(kept))
}

/// δx = col2im(Wᵀ·δy), per chunk of samples and group.
pub(super) fn backward_input<T: Float>(dy: &[T], weight: &[T], g: &ConvGeometry) -> Vec<T> {
    let (k, l, cin_g, cout_g) = (g.k(), g.l(), g.cin_g(), g.cout_g());
    let sample_in = g.c_in * g.h * g.w;
    let mut dx = vec![T::zero(); g.n * sample_in];
    if sample_in == 0 || g.n == 0 {
        return dx;
    }
    let plan = Plan::new(g);
    let (gemm_threads, par_unfold) = plan.inner();
    let ranges = plan.ranges(g.n);
    let one_chunk = |(range, dxs): (&std::ops::Range<usize>, &mut [T]), bufs: &mut (Vec<T>, Vec<T>)| {
        let s = range.len();
        let (col, dyg) = bufs;
        for gi in 0..g.groups {
            let lhs = MatRef {
                data: weight,
                offset: gi * cout_g * k,
                rs: 1,
                cs: k,
            }; // Wᵀ: k × cout_g
            if g.is_pointwise() {
                let rhs = MatRef {
                    data: dy,
                    offset: range.start * g.c_out * l + gi * cout_g * l,
                    rs: l,
                    cs: 1,
                };
                gemm_in(
                    g.precision,
                    k,
                    l,
                    cout_g,
                    &mut dxs[gi * cin_g * l..(gi + 1) * cin_g * l],
                    lhs,
                    rhs,
                    false,
                    gemm_threads,
                );
                continue;
            }
            gather_dy(dy, g, range, gi, dyg);
            col.resize(k * s * l, T::zero());
            let rhs = MatRef {
                data: dyg.as_slice(),
                offset: 0,
                rs: s * l,
                cs: 1,
            };
            gemm_in(g.precision, k, s * l, cout_g, col, lhs, rhs, false, gemm_threads);
            for j in 0..s {
                let dxg = &mut dxs[j * sample_in + gi * cin_g * g.h * g.w..][..cin_g * g.h * g.w];
                col2im(col, g, dxg, s * l, j * l, par_unfold);
            }
        }
    };
    let chunk_in = plan.chunk * sample_in;
    if plan.chunk_parallel {
        ranges
            .par_iter()
            .zip(dx.par_chunks_mut(chunk_in))
            .for_each_init(|| (Vec::new(), Vec::new()), |b, p| one_chunk(p, b));
    } else {
        let mut bufs = (Vec::new(), Vec::new());
        ranges
            .iter()
            .zip(dx.chunks_mut(chunk_in))
            .for_each(|p| one_chunk(p, &mut bufs));
    }
    dx
}

/// δW = Σ δy_chunk · col_chunkᵀ, accumulated per thread over its chunks, then summed.
/// `saved` holds the forward pass's unfolded inputs, if it kept them.
pub(super) fn backward_weight<T: Float>(
    x: &[T],
    dy: &[T],
    g: &ConvGeometry,
    saved: Option<&SavedColumns<T>>,
) -> Vec<T> {
    let (k, l, cin_g, cout_g) = (g.k(), g.l(), g.cin_g(), g.cout_g());
    let sample_in = g.c_in * g.h * g.w;
    let wlen = g.c_out * k;
    let plan = Plan::new(g);
    let (gemm_threads, par_unfold) = plan.inner();
    let ranges = plan.ranges(g.n);
    let accumulate = |(first, chunks): (usize, &[std::ops::Range<usize>])| -> Vec<T> {
        let mut dw = vec![T::zero(); wlen];
        let (mut col, mut dyg) = (Vec::new(), Vec::new());
        for (ci, range) in chunks.iter().enumerate() {
            let s = range.len();
            for gi in 0..g.groups {
                let dwg = &mut dw[gi * cout_g * k..(gi + 1) * cout_g * k];
                if g.is_pointwise() {
                    let xg = &x[range.start * sample_in + gi * cin_g * l..][..cin_g * l];
                    let lhs = MatRef {
                        data: dy,
                        offset: range.start * g.c_out * l + gi * cout_g * l,
                        rs: l,
                        cs: 1,
                    };
                    let rhs = MatRef {
                        data: xg,
                        offset: 0,
                        rs: 1,
                        cs: l,
                    }; // xᵀ: l × k
                    gemm_in(g.precision, cout_g, k, l, dwg, lhs, rhs, true, gemm_threads);
                    continue;
                }
                let cols: &[T] = match saved {
                    Some(saved) => &saved[first + ci][gi],
                    None => {
                        col.resize(k * s * l, T::zero());
                        for (j, ni) in range.clone().enumerate() {
                            let xg = &x[ni * sample_in + gi * cin_g * g.h * g.w..][..cin_g * g.h * g.w];
                            im2col(xg, g, &mut col, s * l, j * l, par_unfold);
                        }
                        &col
                    }
                };
                gather_dy(dy, g, range, gi, &mut dyg);
                let lhs = MatRef {
                    data: dyg.as_slice(),
                    offset: 0,
                    rs: s * l,
                    cs: 1,
                };
                let rhs = MatRef {
                    data: cols,
                    offset: 0,
                    rs: 1,
                    cs: s * l,
                }; // colᵀ: s·l × k
                gemm_in(g.precision, cout_g, k, s * l, dwg, lhs, rhs, true, gemm_threads);
            }
        }
        dw
    };
    if plan.chunk_parallel {
        // A fixed split of the chunks over the threads keeps the sum's order, and so the
        // result, the same from run to run.
        let per = ranges.len().div_ceil(plan.threads);
        let per = per.max(1);
        let parts: Vec<Vec<T>> = ranges
            .par_chunks(per)
            .enumerate()
            .map(|(i, c)| accumulate((i * per, c)))
            .collect();
        let mut dw = vec![T::zero(); wlen];
        for p in parts {
            dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        dw
    } else {
        accumulate((0, &ranges))
    }
}
