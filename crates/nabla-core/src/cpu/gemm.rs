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
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].iter_mut().for_each(|x| *x = T::zero());
        }
        return;
    }
    // Bounds: the furthest element each operand touches must be inside its slice.
    assert!(
        lhs.offset + (m - 1) * lhs.rs + (k - 1) * lhs.cs < lhs.data.len(),
        "gemm: lhs out of bounds"
    );
    assert!(
        rhs.offset + (k - 1) * rhs.rs + (n - 1) * rhs.cs < rhs.data.len(),
        "gemm: rhs out of bounds"
    );
    let parallelism = if threads > 1 && m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every access of the three operands inside their slices,
    // and `dst` is borrowed mutably, so it does not alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
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

/// The reference: dst = lhs · rhs by three loops.
pub fn gemm_naive<T: Float>(m: usize, n: usize, k: usize, lhs: MatRef<T>, rhs: MatRef<T>) -> Vec<T> {
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

    #[test]
    fn gemm_matches_the_triple_loop_on_strided_operands() {
        let (m, n, k) = (37, 29, 71);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 104729) % 97) as f64 / 48.0 - 1.0).collect();
        // lhs row-major, rhs read transposed (column-major view of a row-major n×k buffer).
        let lhs = MatRef {
            data: &a,
            offset: 0,
            rs: k,
            cs: 1,
        };
        let rhs = MatRef {
            data: &b,
            offset: 0,
            rs: 1,
            cs: k,
        };
        let mut fast = vec![0.0; m * n];
        gemm(m, n, k, &mut fast, lhs, rhs, false, 2);
        let slow = gemm_naive(m, n, k, lhs, rhs);
        for (x, y) in fast.iter().zip(&slow) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
}
