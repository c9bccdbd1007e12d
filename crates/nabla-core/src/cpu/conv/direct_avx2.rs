//! The f32 inner loops of the direct convolution (direct.rs) written with AVX2 + FMA
//! intrinsics: `V` vectors of 8 lanes hold the output channels of one pixel.
//!
//! NOTE: the generic loops there are correct for every float type, but LLVM does not always
//! vectorise them: with 8 channels it kept four pixels × eight lanes as 32 scalars and ran at
//! a tenth of this speed. These kernels leave it no choice.

#![cfg(target_arch = "x86_64")]

use super::ConvGeometry;
use crate::cpu::block_starts;
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
    stage: &mut Vec<f32>,
    y: &mut [f32],
) {
    let l = g.oh * g.ow;
    let [sh, sw] = g.stride;
    let lanes = 8 * V;
    assert!(wt.len() >= offsets.len() * lanes && b.len() >= lanes);
    // Every window lies inside xs: the largest index read is checked once here.
    let last = (g.oh - 1) * sh * ws + (g.ow - 1) * sw + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    // Each pixel's sums go pixel-major into `stage` [l][8·V] (whole vectors, the caller's
    // buffer, every pixel overwritten), which is turned into y's planes 8 × 8 at the end.
    // Storing each pixel's channels straight into c_out planes took 16 scalar stores per pixel.
    stage.resize(stage.len().max(l * lanes), 0.0);
    let store = |stage: &mut [f32], p: usize, a: &[__m256; V]| {
        let at = &mut stage[p * lanes..(p + 1) * lanes];
        for j in 0..V {
            // SAFETY: `at` holds 8·V floats.
            unsafe { _mm256_storeu_ps(at.as_mut_ptr().add(8 * j), a[j]) };
        }
    };
    let bias: [__m256; V] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * j)) });
    let (xp, wp) = (xs.as_ptr(), wt.as_ptr());
    // Where the window of output pixel p starts in xs.
    let window = |p: usize| (p / g.ow) * sh * ws + (p % g.ow) * sw;
    // Blocks of PX pixels in row-major order, across rows (the last one overlapping). Blocks
    // within one row left most of a block idle on 8- and 13-pixel rows; one pixel at a time
    // waits on FMA latency.
    for p0 in block_starts(l, PX) {
        // SAFETY: window(p) + off ≤ last < xs.len() for every pixel p and tap (checked above).
        let at: [*const f32; PX] = std::array::from_fn(|i| unsafe { xp.add(window(p0 + i)) });
        let mut acc = [bias; PX];
        for (t, &off) in offsets.iter().enumerate() {
            let w: [__m256; V] = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(wp.add(t * lanes + 8 * j)) });
            for (a, &at) in acc.iter_mut().zip(&at) {
                // SAFETY: as above.
                let v = unsafe { _mm256_broadcast_ss(&*at.add(off)) };
                for j in 0..V {
                    a[j] = _mm256_fmadd_ps(v, w[j], a[j]);
                }
            }
        }
        for (px, a) in acc.iter().enumerate() {
            store(stage, p0 + px, a);
        }
    }
    // Fewer than PX pixels in all: one at a time.
    for p in (l < PX).then_some(0..l).into_iter().flatten() {
        let base = window(p);
        let mut a = bias;
        for (t, &off) in offsets.iter().enumerate() {
            // SAFETY: as above.
            let v = unsafe { _mm256_broadcast_ss(&*xp.add(base + off)) };
            for j in 0..V {
                let w = unsafe { _mm256_loadu_ps(wp.add(t * lanes + 8 * j)) };
                a[j] = _mm256_fmadd_ps(v, w, a[j]);
            }
        }
        store(stage, p, &a);
    }
    planes_from_pixels(stage, lanes, g.c_out, l, y);
}

/// y[o·l + p] = stage[p·lanes + o] for o < c_out and p < l: 8 pixels × 8 channels at a time
/// through a register transpose, the last pixels one by one.
#[target_feature(enable = "avx2")]
pub(super) fn planes_from_pixels(stage: &[f32], lanes: usize, c_out: usize, l: usize, y: &mut [f32]) {
    assert!(lanes.is_multiple_of(8) && c_out <= lanes && stage.len() >= l * lanes);
    let whole = l - l % 8;
    for p in (0..whole).step_by(8) {
        for o in (0..c_out).step_by(8) {
            // SAFETY: p + 7 < l and o + 7 < lanes, so every row lies inside stage.
            let rows: [__m256; 8] =
                std::array::from_fn(|i| unsafe { _mm256_loadu_ps(stage.as_ptr().add((p + i) * lanes + o)) });
            let cols = transpose8(rows);
            for (i, col) in cols.iter().enumerate().take(c_out - o) {
                let at = &mut y[(o + i) * l + p..][..8];
                // SAFETY: `at` holds 8 floats.
                unsafe { _mm256_storeu_ps(at.as_mut_ptr(), *col) };
            }
        }
    }
    for p in whole..l {
        for o in 0..c_out {
            y[o * l + p] = stage[p * lanes + o];
        }
    }
}

/// stage[p·lanes + o] = y[o·l + p] for o < c_out and p < l, the inverse of
/// [`planes_from_pixels`] (lanes past c_out are left as they are).
#[target_feature(enable = "avx2")]
pub(super) fn pixels_from_planes(y: &[f32], lanes: usize, c_out: usize, l: usize, stage: &mut [f32]) {
    assert!(c_out <= lanes && y.len() >= c_out * l && stage.len() >= l * lanes);
    let (whole_p, whole_o) = (l - l % 8, c_out - c_out % 8);
    for p in (0..whole_p).step_by(8) {
        for o in (0..whole_o).step_by(8) {
            // SAFETY: o + 7 < c_out and p + 7 < l, so every row lies inside y.
            let rows: [__m256; 8] =
                std::array::from_fn(|i| unsafe { _mm256_loadu_ps(y.as_ptr().add((o + i) * l + p)) });
            for (j, col) in transpose8(rows).iter().enumerate() {
                let at = &mut stage[(p + j) * lanes + o..][..8];
                // SAFETY: `at` holds 8 floats.
                unsafe { _mm256_storeu_ps(at.as_mut_ptr(), *col) };
            }
        }
    }
    // The channels past the last whole block of 8, then the pixels past the last one of 8.
    for o in whole_o..c_out {
        for p in 0..whole_p {
            stage[p * lanes + o] = y[o * l + p];
        }
    }
    for p in whole_p..l {
        for o in 0..c_out {
            stage[p * lanes + o] = y[o * l + p];
        }
    }
}

/// out[j][l] = rows[l][j].
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

/// Adds one sample's δW to `acc` [taps][8·V]: Σ over pixels of x[tap(p)] · δy[p], with `dyt`
/// [l][8·V] the sample's δy pixel-major.
///
/// Taps go in blocks of `TB`: each pixel's δy is loaded once per block and meets `TB` inputs, so
/// the loop does `TB·V` FMAs per `V + TB` loads (one tap at a time it was load-bound: 0.70 vs
/// 0.42 ms on LeNet-5's second layer).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weight_grad_sample<const V: usize, const TB: usize>(
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
    for (block, offs) in offsets.chunks(TB).enumerate() {
        // A fixed-size block keeps the sums in registers; a short last block repeats offset 0
        // and drops those sums.
        let offs_full: [usize; TB] = std::array::from_fn(|b| offs.get(b).copied().unwrap_or(0));
        let mut s = [[_mm256_setzero_ps(); V]; TB];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let base = oy * sh * ws + ox * sw;
                // SAFETY: the pixel is < l, so its δy lies inside dyt (checked above).
                let d: [__m256; V] =
                    std::array::from_fn(|j| unsafe { _mm256_loadu_ps(dp.add((oy * g.ow + ox) * lanes + 8 * j)) });
                for (s, &off) in s.iter_mut().zip(&offs_full) {
                    // SAFETY: base + off ≤ last < xs.len().
                    let v = unsafe { _mm256_broadcast_ss(&*xp.add(base + off)) };
                    for j in 0..V {
                        s[j] = _mm256_fmadd_ps(v, d[j], s[j]);
                    }
                }
            }
        }
        for (b, s) in s.iter().enumerate().take(offs.len()) {
            for j in 0..V {
                add_to(&mut acc[(block * TB + b) * lanes + 8 * j..][..8], s[j]);
            }
        }
    }
}

/// a[..8] += v.
#[inline]
#[target_feature(enable = "avx2")]
fn add_to(a: &mut [f32], v: __m256) {
    assert!(a.len() >= 8);
    // SAFETY: `a` holds at least 8 floats.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), _mm256_add_ps(_mm256_loadu_ps(a.as_ptr()), v)) };
}

/// Forward pass of one sample for stride-1 layers with wide rows or few channels, vectorised along
/// output rows instead: 8·PV neighbouring pixels of CB channels per register block,
///
/// y[o, oy, ox..ox+8·PV] = b[o] + Σ_t W[o, t] · xs[oy·ws + ox + off_t ..][..8·PV].
///
/// `wp` is the weight packed [channel block][taps][CB] (zeros past c_out, whose sums are not
/// stored). Needs ow ≥ 8·PV; the last block of a row overlaps its neighbour.
/// `row_taps[oy]`, when given, is the range of taps that row needs (the others read zeros);
/// δx uses it to skip the kernel rows that fall on δy's padding (direct_dx.rs).
///
/// NOTE: with c_out = 6 (LeNet-5's first layer) a channel-vectorised kernel fills 6 of 8 lanes
/// and broadcasts one input per FMA; here every lane is a pixel and one load feeds CB FMAs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn forward_sample_rows<const CB: usize, const PV: usize>(
    xs: &[f32],
    ws: usize,
    wp: &[f32],
    offsets: &[usize],
    b: &[f32],
    g: &ConvGeometry,
    row_taps: Option<&[std::ops::Range<usize>]>,
    y: &mut [f32],
) {
    let (l, taps, px) = (g.oh * g.ow, offsets.len(), 8 * PV);
    assert!(row_taps.is_none_or(|r| r.len() >= g.oh && r.iter().all(|r| r.end <= taps)));
    assert!(
        g.stride[1] == 1 && g.ow >= px,
        "row kernel: needs stride 1 and ow ≥ {px}"
    );
    let blocks = g.c_out.div_ceil(CB);
    assert!(wp.len() >= blocks * taps * CB && b.len() >= g.c_out && y.len() >= g.c_out * l);
    let last = (g.oh - 1) * g.stride[0] * ws + (g.ow - 1) + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    let (xp, yp) = (xs.as_ptr(), y.as_mut_ptr());
    for cb in 0..blocks {
        let c0 = cb * CB;
        let chans = CB.min(g.c_out - c0);
        let wb = wp[cb * taps * CB..].as_ptr();
        let bias: [__m256; CB] = std::array::from_fn(|c| _mm256_set1_ps(b[c0 + c.min(chans - 1)]));
        for oy in 0..g.oh {
            let row = oy * g.stride[0] * ws;
            let used = row_taps.map_or(0..taps, |r| r[oy].clone());
            for start in block_starts(g.ow, px) {
                let mut acc: [[__m256; PV]; CB] = std::array::from_fn(|c| [bias[c]; PV]);
                for t in used.clone() {
                    // SAFETY: used.end ≤ taps = offsets.len() (checked above).
                    let off = unsafe { *offsets.get_unchecked(t) };
                    // SAFETY: row + start + px − 1 + off ≤ last < xs.len() (checked above).
                    let xv: [__m256; PV] =
                        std::array::from_fn(|v| unsafe { _mm256_loadu_ps(xp.add(row + start + 8 * v + off)) });
                    for (c, a) in acc.iter_mut().enumerate() {
                        // SAFETY: (cb·taps + t)·CB + c < wp.len() (checked above).
                        let w = unsafe { _mm256_broadcast_ss(&*wb.add(t * CB + c)) };
                        for v in 0..PV {
                            a[v] = _mm256_fmadd_ps(w, xv[v], a[v]);
                        }
                    }
                }
                for (c, a) in acc.iter().enumerate().take(chans) {
                    for (v, a) in a.iter().enumerate() {
                        // SAFETY: (c0 + c)·l + oy·ow + start + 8v + 7 < c_out·l ≤ y.len().
                        unsafe { _mm256_storeu_ps(yp.add((c0 + c) * l + oy * g.ow + start + 8 * v), *a) };
                    }
                }
            }
        }
    }
}

/// Adds one sample's δW to `acc` [c_out][taps][8] (eight partial sums per weight, summed by
/// the caller) for stride-1 layers, vectorised along output rows like [`forward_sample_rows`]:
///
/// δW[o, t] += Σ_oy Σ_ox δy[o, oy, ox] · xs[oy·ws + ox + off_t]
///
/// CB channels × TB taps per register block; the last vector of a row is masked (its lanes
/// past ow load zeros from both operands).
///
/// NOTE: for LeNet-5's first layer (6 channels) the channel-vectorised kernel fills 6 of 8
/// lanes and loads δy once per FMA; here one δy vector meets TB inputs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn weight_grad_sample_rows<const CB: usize, const TB: usize>(
    xs: &[f32],
    ws: usize,
    dy: &[f32],
    offsets: &[usize],
    g: &ConvGeometry,
    acc: &mut [f32],
) {
    let (l, taps) = (g.oh * g.ow, offsets.len());
    assert!(g.stride[1] == 1, "row kernel: needs stride 1");
    assert!(dy.len() >= g.c_out * l && acc.len() >= g.c_out * taps * 8);
    let last = (g.oh - 1) * g.stride[0] * ws + (g.ow - 1) + offsets.iter().copied().max().unwrap_or(0);
    assert!(last < xs.len(), "direct conv: windows outside the source");
    let (xp, dp) = (xs.as_ptr(), dy.as_ptr());
    let full = g.ow / 8;
    let rest = g.ow % 8;
    // Lanes below `rest` of the row's last, partial vector.
    let mask = _mm256_cmpgt_epi32(
        _mm256_set1_epi32(rest as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    );
    for c0 in (0..g.c_out).step_by(CB) {
        let chans: [usize; CB] = std::array::from_fn(|c| (c0 + c).min(g.c_out - 1));
        for t0 in (0..taps).step_by(TB) {
            // A short last block repeats the last tap and drops those sums.
            let tb: [usize; TB] = std::array::from_fn(|b| (t0 + b).min(taps - 1));
            let offs: [usize; TB] = std::array::from_fn(|b| offsets[tb[b]]);
            let mut s = [[_mm256_setzero_ps(); TB]; CB];
            for oy in 0..g.oh {
                let row = oy * g.stride[0] * ws;
                let drow = oy * g.ow;
                for v in 0..full {
                    let ox = 8 * v;
                    // SAFETY: channel < c_out and ox + 8 ≤ ow, so δy is inside dy; the inputs
                    // end at row + ow − 1 + off ≤ last < xs.len() (checked above).
                    let d: [__m256; CB] =
                        std::array::from_fn(|c| unsafe { _mm256_loadu_ps(dp.add(chans[c] * l + drow + ox)) });
                    for (b, &off) in offs.iter().enumerate() {
                        let x = unsafe { _mm256_loadu_ps(xp.add(row + ox + off)) };
                        for c in 0..CB {
                            s[c][b] = _mm256_fmadd_ps(d[c], x, s[c][b]);
                        }
                    }
                }
                if rest > 0 {
                    let ox = 8 * full;
                    // SAFETY: masked lanes are not read; the others are inside as above.
                    let d: [__m256; CB] =
                        std::array::from_fn(|c| unsafe { _mm256_maskload_ps(dp.add(chans[c] * l + drow + ox), mask) });
                    for (b, &off) in offs.iter().enumerate() {
                        let x = unsafe { _mm256_maskload_ps(xp.add(row + ox + off), mask) };
                        for c in 0..CB {
                            s[c][b] = _mm256_fmadd_ps(d[c], x, s[c][b]);
                        }
                    }
                }
            }
            for c in 0..CB.min(g.c_out - c0) {
                for b in 0..TB.min(taps - t0) {
                    add_to(&mut acc[((c0 + c) * taps + t0 + b) * 8..][..8], s[c][b]);
                }
            }
        }
    }
}
