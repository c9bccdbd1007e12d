//! Matrix products in bfloat16 with f32 accumulation (mixed precision, `Precision::Bf16`):
//! C = bf16(A) · bf16(B), every product of two bf16 values exact in f32 and summed in f32.
//!
//! bf16 keeps f32's 8 exponent bits and 7 of its 23 stored mantissa bits (8 significant bits),
//! so rounding an operand to the nearest bf16 (ties to even) changes it by at most 2⁻⁸ of its
//! value (half the spacing 2⁻⁷ at 1); a product's error is therefore at most
//! (2·2⁻⁸ + 2⁻¹⁶)·Σₚ|aᵢₚ||bₚⱼ| (0.78% of the sum of magnitudes), plus the f32 sums' own, the
//! bound the tests check.
//!
//! On CPUs with AVX512-BF16 (Zen 4, Sapphire Rapids) the micro-kernel uses `vdpbf16ps`, which
//! multiplies 32 pairs of bf16 values and adds each pair's two products into one of 16 f32
//! lanes: twice the multiply-adds of an f32 FMA per instruction. The operands are packed once
//! per product (converted to bf16 while packing, which a GEMM does anyway):
//! - B (k×n) in panels of [`NR`] columns, each holding for every pair of rows (2p, 2p+1) the
//!   32 pairs (b₂ₚ,ⱼ, b₂ₚ₊₁,ⱼ) side by side, as the instruction reads them;
//! - A (m×k) in blocks of [`MR`] rows, each holding for every pair p the pairs (aᵢ,₂ₚ, aᵢ,₂ₚ₊₁)
//!   of its rows, each broadcast to all lanes in turn.
//!
//! An odd k gets a zero pair partner; rows and columns past m and n are zero in the packing
//! and never stored. Other CPUs round the operands to bf16 and take the f32 GEMM: the same
//! rounding, so the same results up to the order of the f32 sums.

use super::gemm::{MatRef, gemm_new};
use crate::backend::params::Precision;
use rayon::prelude::*;

/// Rows of A per micro-kernel tile.
pub const MR: usize = 12;
/// Columns of B per micro-kernel tile (two 16-lane registers).
pub const NR: usize = 32;

/// The nearest bf16 of `x` (ties to even; NaN stays a quiet NaN), as its 16 bits: adding
/// 0x7FFF plus the lowest kept bit to the f32 bits and dropping the low 16 rounds half to even,
/// and carries into the exponent (up to ±∞) where it should. Branch-light, so the packing
/// loops vectorise.
#[inline]
pub fn to_bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        ((b >> 16) | 0x40) as u16
    } else {
        ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
    }
}

/// `dst[i]` = the bf16 bits of `src[i]`, 16 at a time with `vcvtneps2bf16` where the CPU has
/// AVX512-BF16 (which reads subnormal inputs as zero, values below 1.2·10⁻³⁸ that no product
/// here notices), else by [`to_bf16_bits`].
pub fn convert_to_bf16(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len(), "convert_to_bf16: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if has_avx512_bf16() {
        // SAFETY: the CPU has AVX512F and AVX512-BF16 (checked just now).
        unsafe { convert_avx512bf16(src, dst) };
        return;
    }
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = to_bf16_bits(x);
    }
}

/// # Safety
/// AVX512F and AVX512-BF16 present; equal lengths.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_avx512bf16(src: &[f32], dst: &mut [u16]) {
    use std::arch::x86_64::*;
    let whole = src.len() / 16 * 16;
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 ≤ len for both slices.
        unsafe {
            let v = _mm512_loadu_ps(src.as_ptr().add(i));
            let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i) as *mut __m256i, h);
        }
    }
    for i in whole..src.len() {
        dst[i] = to_bf16_bits(src[i]);
    }
}

/// `x` rounded to the nearest bf16, as an f32.
#[inline]
pub fn round_to_bf16(x: f32) -> f32 {
    f32::from_bits((to_bf16_bits(x) as u32) << 16)
}

/// The kernels of the bf16 product, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// Intel AMX (`tdpbf16ps` on 16×16 f32 tiles; Sapphire Rapids and later), see
    /// gemm_bf16_amx.rs.
    Amx,
    /// AVX512-BF16 (`vdpbf16ps`; Zen 4, Cooper Lake and later).
    Avx512Bf16,
    /// The operands rounded to bf16 and multiplied by the f32 GEMM.
    Portable,
}

impl Bf16Kernel {
    /// Every kernel this CPU (and OS) can run, fastest first.
    pub fn supported() -> Vec<Bf16Kernel> {
        let mut out = Vec::new();
        if super::gemm_bf16_amx::available() {
            out.push(Bf16Kernel::Amx);
        }
        if has_avx512_bf16() {
            out.push(Bf16Kernel::Avx512Bf16);
        }
        out.push(Bf16Kernel::Portable);
        out
    }

    /// The fastest kernel here.
    pub fn detect() -> Bf16Kernel {
        static BEST: std::sync::OnceLock<Bf16Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Bf16Kernel::supported()[0])
    }
}

/// Whether this CPU runs the `vdpbf16ps` micro-kernel.
pub fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// lhs (m×k) · rhs (k×n) in bf16 with f32 accumulation, as a new row-major m×n vector, with
/// the fastest kernel of this CPU.
pub fn gemm_bf16_new(m: usize, n: usize, k: usize, lhs: MatRef<f32>, rhs: MatRef<f32>, threads: usize) -> Vec<f32> {
    gemm_bf16_with(Bf16Kernel::detect(), m, n, k, lhs, rhs, threads)
}

/// [`gemm_bf16_new`] with `kernel` (which this CPU must support).
pub fn gemm_bf16_with(
    kernel: Bf16Kernel,
    m: usize,
    n: usize,
    k: usize,
    lhs: MatRef<f32>,
    rhs: MatRef<f32>,
    threads: usize,
) -> Vec<f32> {
    if m == 0 || n == 0 {
        return Vec::new();
    }
    if k == 0 {
        return vec![0.0; m * n];
    }
    super::gemm::assert_in_bounds(m, n, k, lhs, rhs);
    match kernel {
        Bf16Kernel::Amx => super::gemm_bf16_amx::product(m, n, k, lhs, rhs, threads),
        Bf16Kernel::Avx512Bf16 => packed_product(m, n, k, lhs, rhs, threads),
        Bf16Kernel::Portable => portable(m, n, k, lhs, rhs, threads),
    }
}

/// dst (m×n, row-major) = accumulate·dst + lhs·rhs in `precision`: bf16 operands with f32
/// sums for f32 data under [`Precision::Bf16`], the f32/f64 GEMM otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_in<T: crate::Float>(
    precision: Precision,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    threads: usize,
) {
    use crate::cpu::{as_f32, as_f32_mut};
    if let (Precision::Bf16, Some(l), Some(r)) = (precision, as_f32(lhs.data), as_f32(rhs.data)) {
        let (l, r) = (
            MatRef {
                data: l,
                offset: lhs.offset,
                rs: lhs.rs,
                cs: lhs.cs,
            },
            MatRef {
                data: r,
                offset: rhs.offset,
                rs: rhs.rs,
                cs: rhs.cs,
            },
        );
        let prod = gemm_bf16_new(m, n, k, l, r, threads);
        let out = &mut as_f32_mut(dst).expect("dst is f32 like the operands")[..m * n];
        if accumulate {
            out.iter_mut().zip(&prod).for_each(|(d, p)| *d += p);
        } else {
            out.copy_from_slice(&prod);
        }
        return;
    }
    super::gemm::gemm(m, n, k, dst, lhs, rhs, accumulate, threads);
}

/// The fallback: the operands rounded to bf16, multiplied by the f32 GEMM.
pub fn portable(m: usize, n: usize, k: usize, lhs: MatRef<f32>, rhs: MatRef<f32>, threads: usize) -> Vec<f32> {
    let rounded = |x: MatRef<f32>, rows: usize, cols: usize| -> Vec<f32> {
        (0..rows)
            .flat_map(|i| (0..cols).map(move |j| round_to_bf16(x.data[x.offset + i * x.rs + j * x.cs])))
            .collect()
    };
    let (a, b) = (rounded(lhs, m, k), rounded(rhs, k, n));
    let (a, b) = (
        MatRef {
            data: &a,
            offset: 0,
            rs: k,
            cs: 1,
        },
        MatRef {
            data: &b,
            offset: 0,
            rs: n,
            cs: 1,
        },
    );
    gemm_new(m, n, k, a, b, threads)
}

/// Two bf16 values in one 32-bit lane, the first (even k) in the low half.
#[inline]
pub(super) fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16_bits(lo) as u32 | (to_bf16_bits(hi) as u32) << 16
}

/// B packed in panels of NR columns, `k2` ≥ ⌈k/2⌉ pairs each (zero past k): panel q, pair p,
/// column c at `(q·k2 + p)·NR + c`. Transposed weights (rs = 1) and row-major operands
/// (cs = 1) are read contiguously.
pub(super) fn pack_b(k: usize, n: usize, b: MatRef<f32>, k2: usize) -> Vec<u32> {
    let panels = n.div_ceil(NR);
    let mut out = vec![0u32; panels * k2 * NR];
    out.par_chunks_mut(k2 * NR).enumerate().for_each(|(q, panel)| {
        let cols = NR.min(n - q * NR);
        if b.rs == 1 {
            // Column j is contiguous along k (a Linear layer's Wᵀ): converted whole, its
            // adjacent values are its pairs.
            let mut col16 = vec![0u16; 2 * k.div_ceil(2)];
            for c in 0..cols {
                convert_to_bf16(&b.data[b.offset + (q * NR + c) * b.cs..][..k], &mut col16[..k]);
                for (p, two) in col16.chunks_exact(2).enumerate() {
                    panel[p * NR + c] = two[0] as u32 | (two[1] as u32) << 16;
                }
            }
        } else if b.cs == 1 {
            // Rows contiguous along n: row 2p paired with row 2p + 1.
            let (mut r0, mut r1) = ([0u16; NR], [0u16; NR]);
            for p in 0..k.div_ceil(2) {
                convert_to_bf16(&b.data[b.offset + 2 * p * b.rs + q * NR..][..cols], &mut r0[..cols]);
                if 2 * p + 1 < k {
                    convert_to_bf16(
                        &b.data[b.offset + (2 * p + 1) * b.rs + q * NR..][..cols],
                        &mut r1[..cols],
                    );
                } else {
                    r1 = [0; NR];
                }
                for (c, d) in panel[p * NR..p * NR + cols].iter_mut().enumerate() {
                    *d = r0[c] as u32 | (r1[c] as u32) << 16;
                }
            }
        } else {
            for p in 0..k.div_ceil(2) {
                for c in 0..cols {
                    let j = q * NR + c;
                    let at = |r: usize| b.data[b.offset + r * b.rs + j * b.cs];
                    panel[p * NR + c] = pair(at(2 * p), if 2 * p + 1 < k { at(2 * p + 1) } else { 0.0 });
                }
            }
        }
    });
    out
}

/// A packed in blocks of MR rows: block r, pair p, row i at `(r·k2 + p)·MR + i`.
fn pack_a(m: usize, k: usize, a: MatRef<f32>) -> Vec<u32> {
    let (k2, blocks) = (k.div_ceil(2), m.div_ceil(MR));
    let mut out = vec![0u32; blocks * k2 * MR];
    out.par_chunks_mut(k2 * MR).enumerate().for_each(|(r, block)| {
        let rows = MR.min(m - r * MR);
        for i in 0..rows {
            let base = a.offset + (r * MR + i) * a.rs;
            for p in 0..k2 {
                let hi = if 2 * p + 1 < k {
                    a.data[base + (2 * p + 1) * a.cs]
                } else {
                    0.0
                };
                block[p * MR + i] = pair(a.data[base + 2 * p * a.cs], hi);
            }
        }
    });
    out
}

fn packed_product(m: usize, n: usize, k: usize, lhs: MatRef<f32>, rhs: MatRef<f32>, threads: usize) -> Vec<f32> {
    let (a, b) = (pack_a(m, k, lhs), pack_b(k, n, rhs, k.div_ceil(2)));
    let k2 = k.div_ceil(2);
    let (blocks, panels) = (m.div_ceil(MR), n.div_ceil(NR));
    let mut out = vec![0.0f32; m * n];
    let dst = super::gemm::Dst(out.as_mut_ptr());
    let tile = |r: usize, q: usize| {
        let rows = MR.min(m - r * MR);
        let cols = NR.min(n - q * NR);
        let a = &a[r * k2 * MR..(r + 1) * k2 * MR];
        let b = &b[q * k2 * NR..(q + 1) * k2 * NR];
        // SAFETY: the CPU has AVX512-BF16 (checked by the caller); the tile's rows×cols at
        // (r·MR, q·NR) lie inside dst's m×n and belong to this tile alone.
        unsafe { kernel_avx512bf16(k2, a, b, dst.at(r * MR * n + q * NR), n, rows, cols) };
    };
    if threads <= 1 {
        (0..blocks).for_each(|r| (0..panels).for_each(|q| tile(r, q)));
    } else if blocks >= threads || panels == 1 {
        // One task per row block, over every panel: the block of A stays in L1 while B's
        // panels stream from L2.
        (0..blocks)
            .into_par_iter()
            .for_each(|r| (0..panels).for_each(|q| tile(r, q)));
    } else {
        // Few rows (inference on a small batch): one task per panel of B.
        (0..panels)
            .into_par_iter()
            .for_each(|q| (0..blocks).for_each(|r| tile(r, q)));
    }
    out
}

/// One MR×NR tile: dst[i][j] = Σₚ a-pairs(i, p) · b-pairs(p, j), for i < rows, j < cols.
///
/// # Safety
/// AVX512F and AVX512-BF16 present; `a` holds k2·MR pairs and `b` k2·NR; dst valid for writes
/// of `rows` rows of `cols` values with row stride `ld`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel_avx512bf16(k2: usize, a: &[u32], b: &[u32], dst: *mut f32, ld: usize, rows: usize, cols: usize) {
    use std::arch::x86_64::*;
    let mut c = [[_mm512_setzero_ps(); 2]; MR];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    for p in 0..k2 {
        // SAFETY: p < k2, so the NR pairs of b and MR pairs of a at p are inside the slices.
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(pb.add(p * NR) as *const _));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(pb.add(p * NR + 16) as *const _));
            for (i, ci) in c.iter_mut().enumerate() {
                let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*pa.add(p * MR + i) as i32));
                ci[0] = _mm512_dpbf16_ps(ci[0], ai, b0);
                ci[1] = _mm512_dpbf16_ps(ci[1], ai, b1);
            }
        }
    }
    let mask = |from: usize| -> __mmask16 {
        let live = cols.saturating_sub(from).min(16);
        ((1u32 << live) - 1) as __mmask16
    };
    let (m0, m1) = (mask(0), mask(16));
    for (i, ci) in c.iter().enumerate().take(rows) {
        // SAFETY: row i < rows and the masks keep the stores within cols (the caller's tile).
        unsafe {
            let row = dst.add(i * ld);
            _mm512_mask_storeu_ps(row, m0, ci[0]);
            _mm512_mask_storeu_ps(row.add(16), m1, ci[1]);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel_avx512bf16(_: usize, _: &[u32], _: &[u32], _: *mut f32, _: usize, _: usize, _: usize) {
    unreachable!("has_avx512_bf16() is false off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(data: &[f32], offset: usize, rs: usize, cs: usize) -> MatRef<'_, f32> {
        MatRef { data, offset, rs, cs }
    }

    /// The exact product of the bf16-rounded operands, in f64, and Σ|a||b| per element.
    fn reference(m: usize, n: usize, k: usize, a: MatRef<f32>, b: MatRef<f32>) -> (Vec<f64>, Vec<f64>) {
        let mut exact = vec![0.0; m * n];
        let mut mag = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let x = a.data[a.offset + i * a.rs + p * a.cs];
                    let y = b.data[b.offset + p * b.rs + j * b.cs];
                    exact[i * n + j] += round_to_bf16(x) as f64 * round_to_bf16(y) as f64;
                    mag[i * n + j] += (x as f64 * y as f64).abs();
                }
            }
        }
        (exact, mag)
    }

    /// Against the exact product of the rounded operands, only the f32 sums differ: within
    /// k·2⁻²⁴ of Σ|a||b| (a loose bound on f32 accumulation). Against the unrounded operands,
    /// within the format's (2·2⁻⁸ + 2⁻¹⁶) of Σ|a||b| (plus that).
    #[test]
    fn bf16_products_are_the_rounded_operands_products_summed_in_f32() {
        for (m, n, k, lt, rt) in [
            (1, 1, 1, false, false),
            (13, 33, 7, false, true),
            (12, 32, 64, false, false),
            (29, 70, 101, true, false),
            (128, 256, 512, false, true),
            (3, 5, 0, false, false),
            (33, 17, 65, true, true),
            (100, 300, 784, false, true),
            (64, 64, 32, false, false),
        ] {
            let a: Vec<f32> = (0..m * k + 2).map(|i| ((i * 7919) % 101) as f32 / 37.0 - 1.3).collect();
            let b: Vec<f32> = (0..k * n + 3)
                .map(|i| ((i * 104729) % 97) as f32 / 31.0 - 1.5)
                .collect();
            let (ars, acs) = if lt { (1, m) } else { (k, 1) };
            let (brs, bcs) = if rt { (1, k) } else { (n, 1) };
            let (lhs, rhs) = (mat(&a, 2, ars, acs), mat(&b, 3, brs, bcs));
            let (exact, mag) = reference(m, n, k, lhs, rhs);
            let unrounded = super::super::gemm::gemm_new(m, n, k, lhs, rhs, 1);
            let kernels = Bf16Kernel::supported();
            if is_x86_feature_detected_amx() {
                assert_eq!(kernels[0], Bf16Kernel::Amx, "the CPU has AMX but it is not used");
            }
            for kernel in kernels {
                let (name, got) = (format!("{kernel:?}"), gemm_bf16_with(kernel, m, n, k, lhs, rhs, 2));
                assert_eq!(got.len(), m * n);
                for i in 0..m * n {
                    let sums = (k.max(1) as f64) * 2f64.powi(-24) * mag[i] + 1e-30;
                    assert!(
                        (got[i] as f64 - exact[i]).abs() <= sums,
                        "{name} {m}×{n}×{k} [{i}]: {} vs {}",
                        got[i],
                        exact[i]
                    );
                    let format = (2.0 * 2f64.powi(-8) + 2f64.powi(-16)) * mag[i] + 2.0 * sums;
                    assert!(
                        (got[i] - unrounded[i]).abs() as f64 <= format,
                        "{name} {m}×{n}×{k} [{i}]"
                    );
                }
            }
        }
    }

    /// Whether /proc/cpuinfo lists AMX-BF16 (so that a machine with it tests the AMX kernel).
    fn is_x86_feature_detected_amx() -> bool {
        std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|s| s.contains(" amx_bf16"))
            && std::env::var_os("NABLA_NO_AMX").is_none()
    }

    #[test]
    fn rounding_is_to_nearest_with_ties_to_even() {
        // 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: the even neighbour, 1, wins.
        assert_eq!(round_to_bf16(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3·2⁻⁸ lies halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: 1 + 2⁻⁶ has the even mantissa.
        assert_eq!(round_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert_eq!(round_to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-12)), 1.0 + 2f32.powi(-7));
        assert!(round_to_bf16(f32::NAN).is_nan());
        assert_eq!(to_bf16_bits(-2.0), 0xC000);
        // Past the largest bf16 (just under f32::MAX), rounding reaches infinity.
        assert_eq!(round_to_bf16(f32::MAX), f32::INFINITY);
        assert_eq!(round_to_bf16(-f32::MAX), f32::NEG_INFINITY);
        // The bit trick agrees with the half crate on a sweep of values, subnormals included.
        for i in 0..200_000u32 {
            let x = f32::from_bits(i.wrapping_mul(2_654_435_761));
            if !x.is_nan() {
                assert_eq!(to_bf16_bits(x), half::bf16::from_f32(x).to_bits(), "{x:e}");
            }
        }
    }
}
