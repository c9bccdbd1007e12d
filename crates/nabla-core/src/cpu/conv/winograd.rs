//! Winograd's minimal filtering for 3×3 and 5×5 convolutions with stride 1 (Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks", CVPR 2016), f32 only.
//!
//! F(m×m, r×r) computes an m×m block of outputs from an α×α input tile, α = m + r − 1 = 6:
//!
//! Y = Aᵀ [ (G W Gᵀ) ⊙ (Bᵀ D B) ] A
//!
//! so each output block costs α² = 36 products per (input, output) channel pair instead of
//! m²·r²: 4× fewer for F(4×4, 3×3) and 2.8× fewer for F(2×2, 5×5). Summed over input channels,
//! the products become 36 GEMMs, M[ξ] = U[ξ] · V[ξ] with U = G W Gᵀ ([c_out × c_in]) and
//! V = Bᵀ D B ([c_in × tiles]), one per point ξ of the tile.
//!
//! The matrices come from Toom–Cook at the points 0, ±1, ±2 and ∞ ([`Transforms::new`]):
//! G and Aᵀ evaluate the filter and the output polynomials there, and B = V⁻¹ for V the
//! Vandermonde matrix of the same points (correlation is the transpose of polynomial
//! multiplication).
//!
//! NOTE: the transforms lose precision as the tile grows (entries up to 5 in B, 8 in A):
//! errors are several times those of a direct sum in f32, 2e-6 to 1.2e-5 of the values' scale
//! in the tests (which bound them). That is why the tile stops at α = 6, as in cuDNN and
//! oneDNN.
//!
//! δx of a stride-1 layer is the forward pass of δy with the weight transposed and flipped
//! (wide.rs), so it runs here too.

use super::ConvGeometry;
use crate::cpu::gemm::{MatRef, gemm};
use rayon::prelude::*;

/// Tile side: α = m + r − 1.
const ALPHA: usize = 6;

/// Output channels per round of GEMMs and output transform.
const OUT_BLOCK: usize = 32;

/// Bytes of transformed input per round (a band of tile rows). δx of AlexNet's second layer
/// (192 channels of δy, 196 tiles, batch 32): all tiles at once (5.5 MB per thread) ran 65–114
/// ms from one minute to the next on this shared machine; bands of 1 MB (2 tile rows, GEMMs 32
/// columns wide) 61–71 ms; 2 MB (5 rows) and 4 MB 58–61 ms.
const V_BYTES: usize = 1 << 21;

/// Aᵀ (m × α), G (α × r) and Bᵀ (α × α) of F(m, r), row-major, in f64.
#[derive(Debug, Clone)]
struct Transforms {
    m: usize,
    r: usize,
    at: Vec<f64>,
    g: Vec<f64>,
    bt: Vec<f64>,
}

impl Transforms {
    /// Toom–Cook at the points 0, 1, −1, 2, −2 and ∞ (Lavin & Gray, section 4).
    fn new(r: usize) -> Transforms {
        let m = ALPHA + 1 - r;
        let points = [0.0, 1.0, -1.0, 2.0, -2.0];
        // Row j evaluates a polynomial of `terms` coefficients at point j; the last row (∞)
        // picks the leading coefficient.
        let evaluate = |terms: usize| -> Vec<f64> {
            let mut e = vec![0.0; ALPHA * terms];
            for (j, p) in points.iter().enumerate() {
                for i in 0..terms {
                    e[j * terms + i] = f64::powi(*p, i as i32);
                }
            }
            e[(ALPHA - 1) * terms + terms - 1] = 1.0;
            e
        };
        let a = evaluate(m); // α × m
        let at = (0..m * ALPHA).map(|k| a[(k % ALPHA) * m + k / ALPHA]).collect();
        let inverse = invert(&evaluate(ALPHA), ALPHA);
        let bt = (0..ALPHA * ALPHA)
            .map(|k| inverse[(k % ALPHA) * ALPHA + k / ALPHA])
            .collect();
        Transforms {
            m,
            r,
            at,
            g: evaluate(r),
            bt,
        }
    }
}

/// The inverse of an n × n matrix by Gauss–Jordan elimination with partial pivoting.
fn invert(a: &[f64], n: usize) -> Vec<f64> {
    let mut a = a.to_vec();
    let mut inv: Vec<f64> = (0..n * n).map(|k| if k / n == k % n { 1.0 } else { 0.0 }).collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .expect("n > 0");
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
            inv.swap(col * n + k, pivot * n + k);
        }
        let p = a[col * n + col];
        for k in 0..n {
            a[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for row in (0..n).filter(|&row| row != col) {
            let f = a[row * n + col];
            for k in 0..n {
                a[row * n + k] -= f * a[col * n + k];
                inv[row * n + k] -= f * inv[col * n + k];
            }
        }
    }
    inv
}

/// Where the forward pass is faster than the alternatives (f32): square 3×3 or 5×5
/// kernels, stride and dilation 1, enough channels for the 36 GEMMs to be worth their
/// transforms, at least 36 tiles, and transformed weights of at most 32768 values per point.
///
/// NOTE: each sample reads all of U (36 · c_out · c_in values) again; at 512 → 512 channels
/// that is 37 MB from memory per sample, and 7×7 planes hold only 4 tiles of 4×4 (with 8
/// computed): 87 ms against 22 for im2col + GEMM (batch 16, this machine).
pub(super) fn pays(g: &ConvGeometry) -> bool {
    let m = ALPHA + 1 - g.kh.clamp(1, ALPHA);
    applies(g)
        && g.c_in >= 16
        && g.c_out >= 16
        && g.c_in * g.c_out <= 32768
        && g.oh.div_ceil(m) * g.ow.div_ceil(m) >= 36
        && super::has_fma()
}

/// Where δx is faster: the transposed problem ([`ConvGeometry::transposed`]) pays.
pub(super) fn pays_for_backward_input(g: &ConvGeometry) -> bool {
    applies_to_backward_input(g) && pays(&g.transposed())
}

/// Whether δx can be computed here: as the forward pass of the transposed problem.
pub(super) fn applies_to_backward_input(g: &ConvGeometry) -> bool {
    g.backward_input_is_a_forward_pass() && applies(&g.transposed())
}

/// What the algorithm needs to be correct (f32, any CPU: the AVX2 transforms have portable
/// twins).
pub(super) fn applies(g: &ConvGeometry) -> bool {
    g.groups == 1
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.kh == g.kw
        && (g.kh == 3 || g.kh == 5)
        && g.n > 0
        && g.oh * g.ow > 0
}

/// y for contiguous `x` [n, c_in, h, w] and `weight` [c_out, c_in, kh, kw].
///
/// # Panics
/// Unless [`applies`] holds for `g`.
pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeometry) -> Vec<f32> {
    assert!(
        applies(g),
        "winograd::forward: needs a square 3×3 or 5×5 kernel, stride, dilation and groups 1: {g:?}"
    );
    forward_in_bands(x, weight, bias, g, V_BYTES)
}

/// The forward pass, `v_bytes` of transformed input per band.
fn forward_in_bands(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: &ConvGeometry, v_bytes: usize) -> Vec<f32> {
    let (ci, k2) = (g.c_in, g.kh * g.kw);
    forward_with_weight(x, |o, c, t| weight[(o * ci + c) * k2 + t], bias, g, v_bytes)
}

/// δx [n, c_in, h, w] for contiguous `dy` [n, c_out, oh, ow] and `weight` [c_out, c_in, kh, kw].
///
/// # Panics
/// Unless [`applies_to_backward_input`] holds for `g`.
pub(super) fn backward_input(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    assert!(
        applies_to_backward_input(g),
        "winograd::backward_input: needs a square 3×3 or 5×5 kernel, stride, dilation and groups 1: {g:?}"
    );
    backward_input_in_bands(dy, weight, g, V_BYTES)
}

/// δx, `v_bytes` of transformed δy per band.
fn backward_input_in_bands(dy: &[f32], weight: &[f32], g: &ConvGeometry, v_bytes: usize) -> Vec<f32> {
    let (ci, k2) = (g.c_in, g.kh * g.kw);
    // Output channel c of the transposed problem, input channel o, tap t: W[o, c] flipped.
    let flipped = |c: usize, o: usize, t: usize| weight[(o * ci + c) * k2 + k2 - 1 - t];
    forward_with_weight(dy, flipped, None, &g.transposed(), v_bytes)
}

/// The forward pass with the weight given as w(output channel, input channel, tap).
fn forward_with_weight(
    x: &[f32],
    w: impl Fn(usize, usize, usize) -> f32,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    v_bytes: usize,
) -> Vec<f32> {
    let tr = Transforms::new(g.kh);
    let (m, r) = (tr.m, tr.r);
    let (co, ci) = (g.c_out, g.c_in);
    let points = ALPHA * ALPHA;
    // U[ξ][o][c] = (G W[o, c] Gᵀ)[ξ].
    let mut u = vec![0f32; points * co * ci];
    for o in 0..co {
        for c in 0..ci {
            let mut gw = [0f64; ALPHA * 5]; // G W: α × r
            for a in 0..ALPHA {
                for j in 0..r {
                    gw[a * r + j] = (0..r).map(|i| tr.g[a * r + i] * w(o, c, i * r + j) as f64).sum();
                }
            }
            for a in 0..ALPHA {
                for b in 0..ALPHA {
                    let v: f64 = (0..r).map(|j| gw[a * r + j] * tr.g[b * r + j]).sum();
                    u[((a * ALPHA + b) * co + o) * ci + c] = v as f32;
                }
            }
        }
    }
    let bt: Vec<f32> = tr.bt.iter().map(|&v| v as f32).collect();
    let at: Vec<f32> = tr.at.iter().map(|&v| v as f32).collect();
    let (th, tw) = (g.oh.div_ceil(m), g.ow.div_ceil(m));
    // Padded planes that hold every tile: (th·m + r − 1) × (tw·m + r − 1).
    let (hs, ws) = (th * m + r - 1, tw * m + r - 1);
    // Bands of tile rows whose transformed input fits v_bytes, of equal height.
    let fit = (v_bytes / (points * ci * tw * 4)).clamp(1, th);
    let band = th.div_ceil(th.div_ceil(fit));
    let tiles_p = (band * tw).next_multiple_of(LANES);
    let (sample_in, l) = (ci * g.h * g.w, g.oh * g.ow);
    let bias: Vec<f32> = (0..co).map(|o| bias.map_or(0.0, |b| b[o])).collect();
    // Output channels per round of GEMMs and output transform, so that the GEMMs' results
    // are still in cache when the transform reads them.
    let ob = OUT_BLOCK.min(co);
    let mut out = vec![0f32; g.n * co * l];
    crate::cpu::ensure_thread_pool();
    // One part of the batch per thread, each with its buffers (for_each_init would make new
    // ones, zeroed, for every piece rayon splits off: 6% of the time in memset).
    let per = g.n.div_ceil(rayon::current_num_threads().max(1));
    out.par_chunks_mut(per * co * l).enumerate().for_each(|(part, ys)| {
        let mut padded = Vec::new();
        let (v, mm) = (
            &mut vec![0f32; points * ci * tiles_p],
            &mut vec![0f32; points * ob * tiles_p],
        );
        for (j, y) in ys.chunks_mut(co * l).enumerate() {
            let n = part * per + j;
            super::direct::pad_planes(
                &x[n * sample_in..(n + 1) * sample_in],
                ci,
                g.h,
                g.w,
                g.pad_top,
                g.pad_left,
                hs,
                ws,
                &mut padded,
            );
            for ty0 in (0..th).step_by(band) {
                let tiles = band.min(th - ty0) * tw;
                let tp = tiles.next_multiple_of(LANES);
                let (oy0, rows) = (ty0 * m, (band * m).min(g.oh - ty0 * m));
                run_input_transform(&padded, ci, hs, ws, ty0 * m, m, tw, tiles, &bt, v);
                for o0 in (0..co).step_by(ob) {
                    let oc = ob.min(co - o0);
                    for xi in 0..points {
                        let lhs = MatRef {
                            data: &u,
                            offset: (xi * co + o0) * ci,
                            rs: ci,
                            cs: 1,
                        };
                        let rhs = MatRef {
                            data: v.as_slice(),
                            offset: xi * ci * tp,
                            rs: tp,
                            cs: 1,
                        };
                        gemm(
                            oc,
                            tp,
                            ci,
                            &mut mm[xi * oc * tp..(xi + 1) * oc * tp],
                            lhs,
                            rhs,
                            false,
                            1,
                        );
                    }
                    run_output_transform(
                        mm,
                        oc,
                        m,
                        tw,
                        tiles,
                        g.oh,
                        oy0,
                        rows,
                        g.ow,
                        &at,
                        &bias[o0..o0 + oc],
                        &mut y[o0 * l..(o0 + oc) * l],
                    );
                }
            }
        }
    });
    out
}

#[inline(always)]
fn run_input_transform(
    padded: &[f32],
    c: usize,
    hs: usize,
    ws: usize,
    row0: usize,
    m: usize,
    tw: usize,
    tiles: usize,
    bt: &[f32],
    v: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if super::has_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        unsafe { input_transform_avx2(padded, c, hs, ws, row0, m, tw, tiles, bt, v) };
        return;
    }
    input_transform(padded, c, hs, ws, row0, m, tw, tiles, bt, v)
}

/// [`input_transform`] with AVX2 intrinsics: the windows of 8 tiles are loaded row by row and
/// transposed, and all 36 points stay in registers through both products. (LLVM's version of
/// the generic loops spent its time moving single floats; gathers were slower still: 30% of a
/// 192 → 64 channel transposed pass against 23%.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_transform_avx2(
    padded: &[f32],
    c: usize,
    hs: usize,
    ws: usize,
    row0: usize,
    m: usize,
    tw: usize,
    tiles: usize,
    bt: &[f32],
    v: &mut [f32],
) {
    use std::arch::x86_64::*;
    let tiles_p = tiles.next_multiple_of(LANES);
    let corners = tile_corners(m, ws, tw, tiles);
    // Every tile lies inside its plane (from row row0 on).
    let last = corners.last().map_or(0, |&k| k + (ALPHA - 1) * (ws + 1));
    assert!(row0 < hs && last < (hs - row0) * ws);
    assert!(padded.len() >= c * hs * ws && v.len() >= ALPHA * ALPHA * c * tiles_p && bt.len() >= ALPHA * ALPHA);
    let six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    for ch in 0..c {
        let plane = &padded[ch * hs * ws + row0 * ws..(ch + 1) * hs * ws];
        for t0 in (0..tiles_p).step_by(LANES) {
            // Lanes past the last tile read the first tile again; their columns are never used.
            let corner: [usize; LANES] = std::array::from_fn(|l| corners.get(t0 + l).copied().unwrap_or(0));
            // d[i][j], lanes = tiles: row i of each tile's window (six floats, masked), then an
            // 8 × 8 transpose.
            let mut d = [_mm256_setzero_ps(); ALPHA * ALPHA];
            for i in 0..ALPHA {
                // SAFETY: corner + i·ws + j ≤ last < plane.len() for j < 6, the lanes loaded.
                let rows: [__m256; LANES] =
                    std::array::from_fn(|l| unsafe { _mm256_maskload_ps(plane.as_ptr().add(corner[l] + i * ws), six) });
                let cols = super::direct_avx2::transpose8(rows);
                d[i * ALPHA..(i + 1) * ALPHA].copy_from_slice(&cols[..ALPHA]);
            }
            // e[a][j] = Σ_i Bᵀ[a][i] d[i][j]
            let mut e = [_mm256_setzero_ps(); ALPHA * ALPHA];
            for a in 0..ALPHA {
                for i in 0..ALPHA {
                    let f = bt[a * ALPHA + i];
                    if f != 0.0 {
                        let f = _mm256_set1_ps(f);
                        for j in 0..ALPHA {
                            e[a * ALPHA + j] = _mm256_fmadd_ps(f, d[i * ALPHA + j], e[a * ALPHA + j]);
                        }
                    }
                }
            }
            // V[a][b] = Σ_j e[a][j] Bᵀ[b][j]
            for a in 0..ALPHA {
                for b in 0..ALPHA {
                    let mut s = _mm256_setzero_ps();
                    for j in 0..ALPHA {
                        let f = bt[b * ALPHA + j];
                        if f != 0.0 {
                            s = _mm256_fmadd_ps(_mm256_set1_ps(f), e[a * ALPHA + j], s);
                        }
                    }
                    // SAFETY: inside v (asserted above: ξ < 36, ch < c, t0 + 8 ≤ tiles_p).
                    unsafe { _mm256_storeu_ps(v.as_mut_ptr().add(((a * ALPHA + b) * c + ch) * tiles_p + t0), s) };
                }
            }
        }
    }
}

/// Where each tile's α × α window starts in a padded plane of width `ws`.
fn tile_corners(m: usize, ws: usize, tw: usize, tiles: usize) -> Vec<usize> {
    (0..tiles).map(|t| (t / tw) * m * ws + (t % tw) * m).collect()
}

/// Tiles transformed together: one vector of 8 lanes, each lane a tile.
const LANES: usize = 8;

/// V[ξ][c][tile] = (Bᵀ D B)[ξ] for each channel's α × α tiles D, which start every m rows and
/// columns of the padded planes; `v` has room for the tiles rounded up to [`LANES`] (zeros
/// there). Eight tiles at a time, all 36 points of each kept in registers.
#[inline(always)]
fn input_transform(
    padded: &[f32],
    c: usize,
    hs: usize,
    ws: usize,
    row0: usize,
    m: usize,
    tw: usize,
    tiles: usize,
    bt: &[f32],
    v: &mut [f32],
) {
    let tiles_p = tiles.next_multiple_of(LANES);
    let bt: [[f32; ALPHA]; ALPHA] = std::array::from_fn(|a| std::array::from_fn(|i| bt[a * ALPHA + i]));
    let corners = tile_corners(m, ws, tw, tiles);
    for ch in 0..c {
        let plane = &padded[ch * hs * ws + row0 * ws..(ch + 1) * hs * ws];
        for t0 in (0..tiles_p).step_by(LANES) {
            let mut d = [[[0f32; LANES]; ALPHA]; ALPHA];
            for lane in 0..LANES.min(tiles.saturating_sub(t0)) {
                let corner = corners[t0 + lane];
                for (i, row) in d.iter_mut().enumerate() {
                    let src = &plane[corner + i * ws..][..ALPHA];
                    for (j, e) in row.iter_mut().enumerate() {
                        e[lane] = src[j];
                    }
                }
            }
            // Rows: e[a][j] = Σ_i Bᵀ[a][i] d[i][j]; columns: V[a][b] = Σ_j e[a][j] Bᵀ[b][j].
            let mut e = [[[0f32; LANES]; ALPHA]; ALPHA];
            for a in 0..ALPHA {
                for i in 0..ALPHA {
                    for j in 0..ALPHA {
                        for l in 0..LANES {
                            e[a][j][l] = bt[a][i].mul_add(d[i][j][l], e[a][j][l]);
                        }
                    }
                }
            }
            for a in 0..ALPHA {
                for b in 0..ALPHA {
                    let mut s = [0f32; LANES];
                    for j in 0..ALPHA {
                        for l in 0..LANES {
                            s[l] = bt[b][j].mul_add(e[a][j][l], s[l]);
                        }
                    }
                    v[((a * ALPHA + b) * c + ch) * tiles_p + t0..][..LANES].copy_from_slice(&s);
                }
            }
        }
    }
}

#[inline(always)]
fn run_output_transform(
    mm: &[f32],
    co: usize,
    m: usize,
    tw: usize,
    tiles: usize,
    oh: usize,
    oy0: usize,
    rows: usize,
    ow: usize,
    at: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if super::has_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        unsafe { output_transform_avx2(mm, co, m, tw, tiles, oh, oy0, rows, ow, at, bias, y) };
        return;
    }
    output_transform(mm, co, m, tw, tiles, oh, oy0, rows, ow, at, bias, y)
}

/// [`output_transform`] with AVX2 intrinsics: written out, because LLVM left the second
/// product scalar (a third of the whole convolution's time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_transform_avx2(
    mm: &[f32],
    co: usize,
    m: usize,
    tw: usize,
    tiles: usize,
    oh: usize,
    oy0: usize,
    rows: usize,
    ow: usize,
    at: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    use std::arch::x86_64::*;
    let tiles_p = tiles.next_multiple_of(LANES);
    assert!(m <= MMAX && mm.len() >= ALPHA * ALPHA * co * tiles_p && at.len() >= m * ALPHA && bias.len() >= co);
    // The m × m outputs of every tile, [i][j][tile], before they go to their places.
    let mut blk = vec![0f32; m * m * tiles_p];
    for o in 0..co {
        for t0 in (0..tiles_p).step_by(LANES) {
            // f[i][b] = Σ_a Aᵀ[i][a] M[a][b]
            let mut f = [[_mm256_setzero_ps(); ALPHA]; MMAX];
            for a in 0..ALPHA {
                for b in 0..ALPHA {
                    // SAFETY: inside mm (asserted above: ξ < 36, o < co, t0 + 8 ≤ tiles_p).
                    let src = unsafe { _mm256_loadu_ps(mm.as_ptr().add(((a * ALPHA + b) * co + o) * tiles_p + t0)) };
                    for (i, fi) in f.iter_mut().enumerate().take(m) {
                        fi[b] = _mm256_fmadd_ps(_mm256_set1_ps(at[i * ALPHA + a]), src, fi[b]);
                    }
                }
            }
            for (i, fi) in f.iter().enumerate().take(m) {
                for j in 0..m {
                    let mut s = _mm256_set1_ps(bias[o]);
                    for (b, &fib) in fi.iter().enumerate() {
                        s = _mm256_fmadd_ps(_mm256_set1_ps(at[j * ALPHA + b]), fib, s);
                    }
                    // SAFETY: (i·m + j)·tiles_p + t0 + 8 ≤ m²·tiles_p = blk.len().
                    unsafe { _mm256_storeu_ps(blk.as_mut_ptr().add((i * m + j) * tiles_p + t0), s) };
                }
            }
        }
        place_blocks(
            m,
            &blk,
            tiles_p,
            tw,
            ow,
            &mut y[o * oh * ow + oy0 * ow..o * oh * ow + (oy0 + rows) * ow],
        );
    }
}

/// Copies the m × m blocks `blk` [i][j][tile] into the rows of an output plane of width `ow`,
/// row by row, dropping what falls outside.
fn place_blocks(m: usize, blk: &[f32], tiles_p: usize, tw: usize, ow: usize, plane: &mut [f32]) {
    match m {
        2 => place_blocks_of::<2>(blk, tiles_p, tw, plane.len() / ow, ow, plane),
        _ => place_blocks_of::<4>(blk, tiles_p, tw, plane.len() / ow, ow, plane),
    }
}

/// [`place_blocks`] for a fixed M, which lets the copies run without a lookup per value.
#[inline(always)]
fn place_blocks_of<const M: usize>(blk: &[f32], tiles_p: usize, tw: usize, oh: usize, ow: usize, plane: &mut [f32]) {
    let whole = ow / M; // tiles wholly inside a row
    for oy in 0..oh {
        let (ty, i) = (oy / M, oy % M);
        let row = &mut plane[oy * ow..(oy + 1) * ow];
        let src: [&[f32]; M] = std::array::from_fn(|j| &blk[(i * M + j) * tiles_p + ty * tw..][..tw]);
        for (tx, out) in row.chunks_exact_mut(M).enumerate().take(whole) {
            for j in 0..M {
                out[j] = src[j][tx];
            }
        }
        for (j, out) in row[whole * M..].iter_mut().enumerate() {
            *out = src[j][whole];
        }
    }
}

/// Largest output block side: m ≤ 4 (r ≥ 3).
const MMAX: usize = ALPHA - 2;

/// y[o] = b[o] + Aᵀ M[o] A for `co` channels (`mm` is [ξ][co][tiles rounded up], `y` their
/// planes), keeping the parts of each m × m block inside oh × ow. Eight tiles at a time.
#[inline(always)]
fn output_transform(
    mm: &[f32],
    co: usize,
    m: usize,
    tw: usize,
    tiles: usize,
    oh: usize,
    oy0: usize,
    rows: usize,
    ow: usize,
    at: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    let tiles_p = tiles.next_multiple_of(LANES);
    assert!(m <= MMAX);
    let mut blk = vec![0f32; m * m * tiles_p];
    for o in 0..co {
        for t0 in (0..tiles_p).step_by(LANES) {
            // f[i][b] = Σ_a Aᵀ[i][a] M[a][b]
            let mut f = [[[0f32; LANES]; ALPHA]; MMAX];
            for a in 0..ALPHA {
                for b in 0..ALPHA {
                    let src = &mm[((a * ALPHA + b) * co + o) * tiles_p + t0..][..LANES];
                    for i in 0..m {
                        let k = at[i * ALPHA + a];
                        for l in 0..LANES {
                            f[i][b][l] = k.mul_add(src[l], f[i][b][l]);
                        }
                    }
                }
            }
            for i in 0..m {
                for j in 0..m {
                    let s = &mut blk[(i * m + j) * tiles_p + t0..][..LANES];
                    s.fill(bias[o]);
                    for b in 0..ALPHA {
                        let k = at[j * ALPHA + b];
                        for l in 0..LANES {
                            s[l] = k.mul_add(f[i][b][l], s[l]);
                        }
                    }
                }
            }
        }
        place_blocks(
            m,
            &blk,
            tiles_p,
            tw,
            ow,
            &mut y[o * oh * ow + oy0 * ow..o * oh * ow + (oy0 + rows) * ow],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::conv::test_util::{assert_close_f32, f32s, geometry, val};
    use crate::cpu::conv::{im2col, naive};

    #[test]
    fn one_dimensional_transforms_compute_a_correlation() {
        for r in [3, 5] {
            let tr = Transforms::new(r);
            let m = tr.m;
            let d: Vec<f64> = (0..ALPHA).map(|i| (i as f64 * 0.7).sin()).collect();
            let w: Vec<f64> = (0..r).map(|i| (i as f64 * 1.3).cos()).collect();
            let gw: Vec<f64> = (0..ALPHA)
                .map(|a| (0..r).map(|k| tr.g[a * r + k] * w[k]).sum())
                .collect();
            let btd: Vec<f64> = (0..ALPHA)
                .map(|a| (0..ALPHA).map(|k| tr.bt[a * ALPHA + k] * d[k]).sum())
                .collect();
            for i in 0..m {
                let y: f64 = (0..ALPHA).map(|a| tr.at[i * ALPHA + a] * gw[a] * btd[a]).sum();
                let expected: f64 = (0..r).map(|k| w[k] * d[i + k]).sum();
                assert!(
                    (y - expected).abs() < 1e-12,
                    "F({m}, {r}) output {i}: {y} vs {expected}"
                );
            }
        }
    }

    /// The tolerance against f64 results, of the values' scale. Winograd's transforms add
    /// rounding (see the NOTE above): the cases below reach 2–5e-6 with up to 33 channels and
    /// 1.2e-5 with 256 channels of 3×3 (2304 terms), where a direct f32 sum stays near 1e-6.
    /// A real mistake (a wrong matrix entry, a misplaced tile, a bias off by 0.1%) is far
    /// larger.
    const TOLERANCE: f64 = 5e-5;

    /// The AVX2 transforms, which the passes above run on this machine, against the portable
    /// loops, which other CPUs run: the same values for a band that starts inside the planes
    /// and ends on a short row of tiles.
    #[test]
    fn portable_and_avx2_transforms_agree() {
        if !crate::cpu::conv::has_fma() {
            eprintln!("skipped: no AVX2/FMA");
            return;
        }
        for r in [3, 5] {
            let tr = Transforms::new(r);
            let (m, c, co) = (tr.m, 3, 5);
            let (bt, at) = (f32s(&tr.bt), f32s(&tr.at));
            // Tile rows 1..3 of a 3 × 5 grid of tiles; outputs 11 × 9 (the last tiles cut).
            let (th, tw, row0) = (3, 5, m);
            let (hs, ws) = (th * m + r - 1, tw * m + r - 1);
            let (tiles, oh, ow) = (2 * tw, 11.min(th * m), 9);
            let tiles_p = tiles.next_multiple_of(LANES);
            let padded = f32s(&val(c * hs * ws, 1));
            let (mut v1, mut v2) = (vec![0f32; 36 * c * tiles_p], vec![0f32; 36 * c * tiles_p]);
            input_transform(&padded, c, hs, ws, row0, m, tw, tiles, &bt, &mut v1);
            // SAFETY: has_fma() said the CPU supports AVX2 and FMA.
            unsafe { input_transform_avx2(&padded, c, hs, ws, row0, m, tw, tiles, &bt, &mut v2) };
            let tiles_of = |v: &[f32]| -> Vec<f64> {
                (0..36 * c)
                    .flat_map(|row| v[row * tiles_p..][..tiles].iter().map(|&a| a as f64))
                    .collect()
            };
            assert_close_f32(&f32s(&tiles_of(&v2)), &tiles_of(&v1), 1e-6, &format!("input, r = {r}"));
            let mm = f32s(&val(36 * co * tiles_p, 2));
            let bias = f32s(&val(co, 3));
            let (oy0, rows) = (m, oh - m);
            let (mut y1, mut y2) = (vec![0f32; co * oh * ow], vec![0f32; co * oh * ow]);
            output_transform(&mm, co, m, tw, tiles, oh, oy0, rows, ow, &at, &bias, &mut y1);
            // SAFETY: as above.
            unsafe { output_transform_avx2(&mm, co, m, tw, tiles, oh, oy0, rows, ow, &at, &bias, &mut y2) };
            let y1: Vec<f64> = y1.iter().map(|&a| a as f64).collect();
            assert!(y1[oy0 * ow..].iter().any(|&a| a != 0.0), "the band was written");
            assert_close_f32(&y2, &y1, 1e-6, &format!("output, r = {r}"));
        }
    }

    /// Forward passes and δx against the definition and im2col (f64), with both kernel sizes,
    /// padding on some sides, outputs that are not a multiple of the tile, and several bands.
    #[test]
    fn forward_and_dx_match_the_definition() {
        // (c_in, c_out, h, w, k, pad_top, pad_left, pad_bottom, pad_right)
        let cases = [
            (16, 20, 9, 11, 3, 1, 1, 1, 1),
            (17, 16, 8, 7, 5, 2, 2, 2, 2),
            (20, 18, 10, 6, 3, 0, 2, 1, 0),
            (16, 33, 7, 9, 5, 1, 0, 3, 2),
            // In bands of 1 MB: forward passes in 2 bands, and in 3 of 3, 3, 2 tile rows.
            (128, 16, 20, 20, 5, 2, 2, 2, 2),
            (256, 16, 30, 30, 3, 1, 1, 1, 1),
            // δx in 2 bands of 1 MB.
            (16, 128, 40, 40, 3, 1, 1, 1, 1),
        ];
        for (ci, co, h, w, k, pt, pl, pb, pr) in cases {
            let g = geometry(2, (ci, co, h, w, k, 1, 1, pt, pl, pb, pr));
            // Smaller than `pays` asks for (a speed rule), but inside what the algorithm
            // computes.
            assert!(applies(&g) && applies_to_backward_input(&g), "{g:?}");
            let (x, wt, b) = (val(2 * ci * h * w, 3), val(co * ci * k * k, 4), val(co, 5));
            let (y_expected, dy) = (naive::forward(&x, &wt, Some(&b), &g), val(2 * co * g.oh * g.ow, 6));
            let dx_expected = im2col::backward_input(&dy, &wt, &g);
            // The default band size, and 1 MB, which cuts the large cases into several bands.
            for v_bytes in [V_BYTES, 1 << 20] {
                let y = forward_in_bands(&f32s(&x), &f32s(&wt), Some(&f32s(&b)), &g, v_bytes);
                assert_close_f32(
                    &y,
                    &y_expected,
                    TOLERANCE,
                    &format!("forward {g:?}, bands of {v_bytes} bytes"),
                );
                let dx = backward_input_in_bands(&f32s(&dy), &f32s(&wt), &g, v_bytes);
                assert_close_f32(
                    &dx,
                    &dx_expected,
                    TOLERANCE,
                    &format!("δx {g:?}, bands of {v_bytes} bytes"),
                );
            }
        }
    }
}
