//! Matrix products through the `gemm` crate (pure Rust, AVX2/AVX-512/NEON micro-kernels).
//! A triple loop stays beside it as the reference the tests compare against.

use crate::Float;

/// A strided matrix operand: element (i, j) is `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// dst (m×n, row-major, contiguous) = accumulate·dst + lhs (m×k) · rhs (k×n).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    threads: usize,
) {
    assert!(dst.len() >= m * n, "gemm: destination too small");
    // SAFETY: dst holds m·n values and is borrowed mutably, so it aliases neither operand.
    unsafe { gemm_into(m, n, k, dst.as_mut_ptr(), lhs, rhs, accumulate, threads) }
}

/// lhs (m×k) · rhs (k×n) as a new row-major vector. Its memory is written once by the product,
/// never zeroed first: in the MLP's training step zeroing the products' outputs (2.6 MB per
/// step) was 2% of the time.
pub fn gemm_new<T: Float>(m: usize, n: usize, k: usize, lhs: MatRef<T>, rhs: MatRef<T>, threads: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(m * n);
    // SAFETY: the capacity holds m·n values and is fresh, so it aliases neither operand; with
    // `accumulate` false every one of them is written (the `gemm` crate does not read dst then).
    unsafe {
        gemm_into(m, n, k, out.as_mut_ptr(), lhs, rhs, false, threads);
        out.set_len(m * n);
    }
    out
}

/// [`gemm`] into raw memory.
///
/// # Safety
/// `dst` must be valid for m·n writes (and reads when `accumulate`) and alias neither operand.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m * n {
                // SAFETY: i < m·n (the caller's promise).
                unsafe { dst.add(i).write(T::zero()) };
            }
        }
        return;
    }
    assert_in_bounds(m, n, k, lhs, rhs);
    let work = m * n * k;
    let dst = Dst(dst);
    if threads > 1 && (64 * 64 * 64..SPLIT_BY_HAND_BELOW).contains(&work) && m.max(n) >= 2 * BLOCK_ALIGN {
        // SAFETY: dst is the caller's promise; the operands' bounds are checked above.
        unsafe { split_by_hand(m, n, k, dst, lhs, rhs, accumulate, threads) };
        return;
    }
    let parallelism = if threads > 1 && work >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every access of the operands inside their slices; dst is
    // the caller's promise.
    unsafe { gemm_raw(m, n, k, dst.at(0), n, lhs, rhs, accumulate, parallelism) }
}

/// Panics unless the furthest element each operand of an m×k by k×n product touches lies
/// inside its slice (m, n, k ≥ 1): the check that makes the unsafe kernels' reads sound.
pub(super) fn assert_in_bounds<T>(m: usize, n: usize, k: usize, lhs: MatRef<T>, rhs: MatRef<T>) {
    assert!(
        lhs.offset + (m - 1) * lhs.rs + (k - 1) * lhs.cs < lhs.data.len(),
        "gemm: lhs out of bounds"
    );
    assert!(
        rhs.offset + (k - 1) * rhs.rs + (n - 1) * rhs.cs < rhs.data.len(),
        "gemm: rhs out of bounds"
    );
}

/// Products with fewer multiply-adds than this are split into one block per thread here;
/// larger ones go to the `gemm` crate's own threading.
///
/// NOTE: on the MLP's products (784-512-256, batch 128; 2 threads) the crate's threading ran
/// 128×256×512 in 0.24 ms and 512×256×128 in 0.25 ms; one single-threaded GEMM per half ran
/// them in 0.20 and 0.19 ms (`examples/gemm_split.rs`). Up to inference at batch 1000
/// (1000×512×784) and 512³ halves still won by 3–5%; at 1024³ the crate's threading wins.
const SPLIT_BY_HAND_BELOW: usize = 1 << 29;

/// Block boundaries fall on multiples of this (the micro-kernels' 16 rows or columns).
const BLOCK_ALIGN: usize = 16;

/// The destination's address, shared by blocks that each write only their own elements.
#[derive(Clone, Copy)]
pub(super) struct Dst<T>(pub(super) *mut T);
// SAFETY: the blocks of a product write disjoint elements of dst.
unsafe impl<T> Send for Dst<T> {}
unsafe impl<T> Sync for Dst<T> {}
impl<T> Dst<T> {
    /// The address of element `i` (a method, so that closures capture the whole `Dst`, which
    /// is Send, and not its pointer field).
    pub(super) fn at(self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

/// dst = accumulate·dst + lhs·rhs, in one block per thread along the larger of m and n, so
/// that the larger operand is split (each thread packs its part of it and all of the other).
///
/// # Safety
/// As [`gemm_into`], with the operands' bounds checked.
#[allow(clippy::too_many_arguments)]
unsafe fn split_by_hand<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: Dst<T>,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    threads: usize,
) {
    use rayon::prelude::*;
    let by_rows = m >= n;
    let along = if by_rows { m } else { n };
    let per = along.div_ceil(threads).next_multiple_of(BLOCK_ALIGN);
    (0..along.div_ceil(per)).into_par_iter().for_each(|i| {
        let (start, len) = (i * per, per.min(along - i * per));
        // This block's rows of lhs and dst (or columns of rhs and dst).
        let (rows, cols, first, lhs, rhs) = if by_rows {
            let lhs = MatRef {
                offset: lhs.offset + start * lhs.rs,
                ..lhs
            };
            (len, n, start * n, lhs, rhs)
        } else {
            let rhs = MatRef {
                offset: rhs.offset + start * rhs.cs,
                ..rhs
            };
            (m, len, start, lhs, rhs)
        };
        // SAFETY: rows (or columns) start..start + len of dst are this block's alone and
        // inside its m × n (row stride n); the same rows of lhs (columns of rhs) lie inside it.
        unsafe {
            gemm_raw(
                rows,
                cols,
                k,
                dst.at(first),
                n,
                lhs,
                rhs,
                accumulate,
                gemm::Parallelism::None,
            )
        }
    });
}

/// The `gemm` crate's product into `dst` (m × n, row stride `dst_rs`, column stride 1).
///
/// # Safety
/// Every element the three operands name must lie inside their buffers, and dst must not
/// alias lhs or rhs.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    lhs: MatRef<T>,
    rhs: MatRef<T>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's promise.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The reference: dst = lhs · rhs by three loops (the tests' oracle).
#[cfg(test)]
fn gemm_naive<T: Float>(m: usize, n: usize, k: usize, lhs: MatRef<T>, rhs: MatRef<T>) -> Vec<T> {
    let mut dst = vec![T::zero(); m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc += lhs.data[lhs.offset + i * lhs.rs + p * lhs.cs] * rhs.data[rhs.offset + p * rhs.rs + j * rhs.cs];
            }
            dst[i * n + j] = acc;
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strided view: row stride `rs`, column stride `cs`.
    fn mat<T>(data: &[T], offset: usize, rs: usize, cs: usize) -> MatRef<'_, T> {
        MatRef { data, offset, rs, cs }
    }

    #[test]
    fn gemm_matches_the_triple_loop_on_strided_operands() {
        let (m, n, k) = (37, 29, 71);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 104729) % 97) as f64 / 48.0 - 1.0).collect();
        // lhs row-major, rhs read transposed (column-major view of a row-major n×k buffer).
        let (lhs, rhs) = (mat(&a, 0, k, 1), mat(&b, 0, 1, k));
        let mut fast = vec![0.0; m * n];
        gemm(m, n, k, &mut fast, lhs, rhs, false, 2);
        let slow = gemm_naive(m, n, k, lhs, rhs);
        for (x, y) in fast.iter().zip(&slow) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    /// A new product (never zeroed first) is the triple loop's, whole, by hand-split blocks
    /// or by the crate's threading, and all zeros when k = 0.
    #[test]
    fn new_products_are_written_in_full() {
        for (m, n, k) in [(5, 7, 3), (70, 40, 100), (40, 99, 80), (640, 512, 1640), (6, 4, 0)] {
            let a: Vec<f32> = (0..m * k + 1).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
            let b: Vec<f32> = (0..k * n + 1)
                .map(|i| ((i * 104729) % 97) as f32 / 48.0 - 1.0)
                .collect();
            let (lhs, rhs) = (mat(&a, 0, k, 1), mat(&b, 0, n, 1));
            let fast = gemm_new(m, n, k, lhs, rhs, 2);
            let slow = gemm_naive(m, n, k, lhs, rhs);
            assert_eq!(fast.len(), m * n);
            for (x, y) in fast.iter().zip(&slow) {
                assert!((x - y).abs() <= 1e-5 * (k as f32).max(1.0), "{m}×{n}×{k}: {x} vs {y}");
            }
        }
    }

    /// Products split by hand into row blocks (m ≥ n) and column blocks (m < n), with a short
    /// last block, transposed and offset operands, and accumulation into dst.
    #[test]
    fn products_split_into_blocks_match_the_triple_loop() {
        for (m, n, k, lhs_t, rhs_t) in [
            (70, 40, 100, false, true),
            (40, 99, 80, true, false),
            (96, 130, 33, false, false),
        ] {
            assert!((64 * 64 * 64..SPLIT_BY_HAND_BELOW).contains(&(m * n * k)));
            let a: Vec<f64> = (0..m * k + 3).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
            let b: Vec<f64> = (0..k * n + 5)
                .map(|i| ((i * 104729) % 97) as f64 / 48.0 - 1.0)
                .collect();
            let (ars, acs) = if lhs_t { (1, m) } else { (k, 1) };
            let (brs, bcs) = if rhs_t { (1, k) } else { (n, 1) };
            let (lhs, rhs) = (mat(&a, 3, ars, acs), mat(&b, 5, brs, bcs));
            let start: Vec<f64> = (0..m * n).map(|i| (i % 13) as f64 - 6.0).collect();
            let mut fast = start.clone();
            gemm(m, n, k, &mut fast, lhs, rhs, true, 2);
            let slow = gemm_naive(m, n, k, lhs, rhs);
            for ((x, y), s0) in fast.iter().zip(&slow).zip(&start) {
                assert!((x - (y + s0)).abs() < 1e-11, "{m}×{n}×{k}: {x} vs {}", y + s0);
            }
        }
    }
}
