//! Helpers shared by the convolution kernels' tests.

use super::ConvGeometry;

/// n values in [−1, 1) from a multiplicative hash, different for each `seed`.
pub fn val(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (((i + seed) * 2654435761) % 1000) as f64 / 500.0 - 1.0)
        .collect()
}

pub fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

/// f32 results against f64 ones, within `rel` of the values' scale (at least 1).
pub fn assert_close_f32(fast: &[f32], slow: &[f64], rel: f64, what: &str) {
    assert_eq!(fast.len(), slow.len(), "{what}");
    let scale = slow.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let tol = rel * scale;
    for (i, (a, e)) in fast.iter().zip(slow).enumerate() {
        assert!(
            (*a as f64 - e).abs() < tol,
            "{what} at {i}: {a} vs {e} (tolerance {tol})"
        );
    }
}

/// (c_in, c_out, h, w, k, stride, dilation, pad_top, pad_left, pad_bottom, pad_right)
pub type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

/// The geometry of a square-kernel case with `n` samples.
pub fn geometry(n: usize, case: Case) -> ConvGeometry {
    let (ci, co, h, w, k, s, d, pt, pl, pb, pr) = case;
    ConvGeometry {
        n,
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
        oh: (h + pt + pb - d * (k - 1) - 1) / s + 1,
        ow: (w + pl + pr - d * (k - 1) - 1) / s + 1,
        groups: 1,
        precision: crate::autocast::Precision::F32,
    }
}
