//! Pooling on the CPU over `planes` independent h×w planes (N·C of them), plane-parallel.
//!
//! Average and adaptive average pooling have one kernel each (avg.rs). Max pooling has several,
//! all computing what [`MaxPoolKernel::General`] defines (max.rs), and one table, [`choose_max`],
//! read top to bottom, the first that applies wins:
//!
//! | pass     | kernel                       | where                                            |
//! |----------|------------------------------|--------------------------------------------------|
//! | forward  | `Avx2Window2x2` (max_avx2.rs) | f32, 2×2 stride 2 inside the plane, rows of ≥ 8 windows |
//! | forward  | `Avx2Window2x2ShortRows`     | the same with shorter rows, ≥ 8 windows a plane  |
//! | forward  | `Window2x2` (max.rs)         | 2×2 stride 2 inside the plane, any float         |
//! | forward  | `Unpadded`                   | every window inside the plane                    |
//! | forward  | `General`                    | everything: padding, dilation, ceil_mode         |
//! | backward | `Avx2Window2x2`              | f32, 2×2 stride 2, rows of ≥ 8 windows: δx written once |
//! | backward | `General`                    | δx\[argmax\] += δy                               |
//!
//! Every kernel that applies is compared with `General` on one table of geometries (the tests
//! below), values and argmax indices bit for bit.

mod avg;
mod max;
#[cfg(target_arch = "x86_64")]
mod max_avx2;

pub use crate::backend::params::PoolGeometry;
pub use avg::{adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, avg_pool2d_backward, avg_pool2d_forward};

use crate::cpu::{Isa, as_f32, as_f32_mut, f32_vec_as};
use crate::{DType, Float};
use rayon::prelude::*;

/// The two passes of max pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolPass {
    Forward,
    Backward,
}

/// The max-pooling kernels; see the module's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaxPoolKernel {
    /// The definition: any window (max.rs).
    General,
    /// Windows inside the plane, no bounds tests.
    Unpadded,
    /// 2×2 windows, stride 2, branch-free selects.
    Window2x2,
    /// 2×2 windows, stride 2, eight windows of a row per AVX2 step.
    Avx2Window2x2,
    /// 2×2 windows, stride 2, eight windows of the plane per AVX2 step (rows under 8 windows).
    Avx2Window2x2ShortRows,
}

impl MaxPoolKernel {
    pub const ALL: [MaxPoolKernel; 5] = [
        MaxPoolKernel::General,
        MaxPoolKernel::Unpadded,
        MaxPoolKernel::Window2x2,
        MaxPoolKernel::Avx2Window2x2,
        MaxPoolKernel::Avx2Window2x2ShortRows,
    ];

    /// Whether this kernel computes `pass` of `g` in `dtype` with `isa` (which the CPU must
    /// support).
    pub fn applies(self, pass: PoolPass, g: &PoolGeometry, dtype: DType, isa: Isa) -> bool {
        use MaxPoolKernel::*;
        let inside = g.padding == [0, 0]
            && g.dilation == [1, 1]
            && g.oh > 0
            && g.ow > 0
            && (g.oh - 1) * g.stride[0] + g.kernel[0] <= g.h
            && (g.ow - 1) * g.stride[1] + g.kernel[1] <= g.w;
        let window_2x2 = inside && g.kernel == [2, 2] && g.stride == [2, 2];
        let avx2 = cfg!(target_arch = "x86_64") && dtype == DType::F32 && isa != Isa::Portable;
        match (self, pass) {
            (General, _) => true,
            (Unpadded, PoolPass::Forward) => inside,
            (Window2x2, PoolPass::Forward) => window_2x2,
            (Avx2Window2x2, _) => avx2 && window_2x2 && g.ow >= 8,
            (Avx2Window2x2ShortRows, PoolPass::Forward) => avx2 && window_2x2 && g.oh * g.ow >= 8,
            _ => false,
        }
    }

    /// The maxima of contiguous `x` [planes, h, w] and the in-plane index of each one.
    ///
    /// # Panics
    /// Unless [`MaxPoolKernel::applies`] holds for the forward pass.
    pub fn forward<T: Float>(self, isa: Isa, x: &[T], g: &PoolGeometry) -> (Vec<T>, Vec<u32>) {
        assert!(
            self.applies(PoolPass::Forward, g, T::DTYPE, isa),
            "max_pool2d: {self:?} does not apply to {g:?}"
        );
        let (hw, ohw) = (g.h * g.w, g.oh * g.ow);
        let mut out = vec![T::zero(); g.planes * ohw];
        let mut idx = vec![0u32; g.planes * ohw];
        out.par_chunks_mut(ohw.max(1))
            .zip(idx.par_chunks_mut(ohw.max(1)))
            .enumerate()
            .for_each(|(p, (o, ix))| {
                let plane = &x[p * hw..(p + 1) * hw];
                match self {
                    MaxPoolKernel::General => max::forward_general(plane, g, o, ix),
                    MaxPoolKernel::Unpadded => max::forward_unpadded(plane, g, o, ix),
                    MaxPoolKernel::Window2x2 => max::forward_2x2(plane, g, o, ix),
                    MaxPoolKernel::Avx2Window2x2 | MaxPoolKernel::Avx2Window2x2ShortRows => {
                        avx2_forward_2x2(self, as_f32(plane).expect("f32"), g, as_f32_mut(o).expect("f32"), ix)
                    }
                }
            });
        (out, idx)
    }

    /// δx from δy and the forward pass's indices.
    ///
    /// # Panics
    /// Unless [`MaxPoolKernel::applies`] holds for the backward pass.
    pub fn backward<T: Float>(self, isa: Isa, dy: &[T], idx: &[u32], g: &PoolGeometry) -> Vec<T> {
        assert!(
            self.applies(PoolPass::Backward, g, T::DTYPE, isa),
            "max_pool2d backward: {self:?} does not apply to {g:?}"
        );
        match self {
            #[cfg(target_arch = "x86_64")]
            MaxPoolKernel::Avx2Window2x2 => {
                f32_vec_as(max::backward_2x2_avx2(as_f32(dy).expect("f32"), idx, g)).expect("f32")
            }
            _ => max::backward_scatter(dy, idx, g),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_forward_2x2(kernel: MaxPoolKernel, plane: &[f32], g: &PoolGeometry, o: &mut [f32], ix: &mut [u32]) {
    // SAFETY: `applies` checked AVX2 (Isa::Avx2 or better) and the geometry.
    unsafe {
        if kernel == MaxPoolKernel::Avx2Window2x2 {
            max_avx2::max_pool_2x2_forward(plane, g.w, g.oh, g.ow, o, ix)
        } else {
            max_avx2::max_pool_2x2_forward_short_rows(plane, g.w, g.oh, g.ow, o, ix)
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_forward_2x2(kernel: MaxPoolKernel, _: &[f32], g: &PoolGeometry, _: &mut [f32], _: &mut [u32]) {
    unreachable!("{kernel:?} applies only on x86-64: {g:?}")
}

/// The table: the max-pooling kernel for `pass` of `g` in `dtype` with `isa`, the first in
/// order of preference that applies.
pub fn choose_max(pass: PoolPass, g: &PoolGeometry, dtype: DType, isa: Isa) -> MaxPoolKernel {
    use MaxPoolKernel::*;
    [Avx2Window2x2, Avx2Window2x2ShortRows, Window2x2, Unpadded]
        .into_iter()
        .find(|k| k.applies(pass, g, dtype, isa))
        .unwrap_or(General)
}

/// Max over each window; also the flat in-plane index of the (first) maximum, for backward.
pub fn max_pool2d_forward<T: Float>(x: &[T], g: &PoolGeometry) -> (Vec<T>, Vec<u32>) {
    let isa = Isa::detect();
    choose_max(PoolPass::Forward, g, T::DTYPE, isa).forward(isa, x, g)
}

/// δx\[argmax\] += δy, by the table.
pub fn max_pool2d_backward<T: Float>(dy: &[T], idx: &[u32], g: &PoolGeometry) -> Vec<T> {
    let isa = Isa::detect();
    choose_max(PoolPass::Backward, g, T::DTYPE, isa).backward(isa, dy, idx, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (h, w, kernel, stride, padding, dilation, ceil_mode): LeNet-5's and VGG's 2×2 windows on
    /// planes with rows of 8+ windows, short rows (10 × 10; 7 × 9 with a column and a row no
    /// window covers; 4 × 6 with too few windows for SIMD), AlexNet's overlapping 3×3 stride 2,
    /// padding, dilation and ceil_mode's partial windows.
    #[rustfmt::skip]
    const GEOMETRIES: [(usize, usize, usize, usize, usize, usize, bool); 12] = [
        (28, 28, 2, 2, 0, 1, false),
        (9, 17, 2, 2, 0, 1, false),
        (4, 16, 2, 2, 0, 1, false),
        (6, 23, 2, 2, 0, 1, false),
        (10, 10, 2, 2, 0, 1, false),
        (7, 9, 2, 2, 0, 1, false),
        (4, 6, 2, 2, 0, 1, false),
        (13, 13, 3, 2, 0, 1, false),
        (8, 9, 3, 1, 1, 1, false),
        (9, 8, 2, 1, 0, 2, false),
        (7, 7, 2, 2, 0, 1, true),
        (11, 10, 3, 2, 1, 2, true),
    ];

    fn geometry((h, w, k, s, p, d, ceil): (usize, usize, usize, usize, usize, usize, bool)) -> PoolGeometry {
        let out = |n: usize| {
            let span = n + 2 * p - d * (k - 1) - 1;
            let o = if ceil { span.div_ceil(s) + 1 } else { span / s + 1 };
            // PyTorch: the last window must start inside the input or its left padding.
            if ceil && (o - 1) * s >= n + p { o - 1 } else { o }
        };
        PoolGeometry {
            planes: 3,
            h,
            w,
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [d, d],
            oh: out(h),
            ow: out(w),
        }
    }

    /// Few distinct values, so many windows hold ties, and one NaN in the second plane.
    fn input(g: &PoolGeometry) -> Vec<f64> {
        let mut x: Vec<f64> = (0..g.planes * g.h * g.w)
            .map(|i| ((i * 7 + i / 5) % 4) as f64 - 1.5)
            .collect();
        x[g.h * g.w + g.w + 3] = f64::NAN;
        x
    }

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    /// Every kernel, in f32 and f64, with every instruction set this CPU has, against `General`:
    /// maxima, indices and δx bit for bit.
    #[test]
    fn every_max_pool_kernel_matches_the_definition() {
        let mut ran = std::collections::HashSet::new();
        for isa in Isa::supported() {
            for case in GEOMETRIES {
                let g = geometry(case);
                let x64 = input(&g);
                let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
                let (y, idx) = MaxPoolKernel::General.forward(isa, &x64, &g);
                let dy: Vec<f64> = (0..y.len()).map(|i| i as f64 + 1.0).collect();
                let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
                let dx = MaxPoolKernel::General.backward(isa, &dy, &idx, &g);
                for kernel in MaxPoolKernel::ALL {
                    let what = format!("{kernel:?} {isa:?} {g:?}");
                    for (dtype, f32) in [(DType::F64, false), (DType::F32, true)] {
                        if kernel.applies(PoolPass::Forward, &g, dtype, isa) {
                            let (yk, ik) = if f32 {
                                let (y, i) = kernel.forward(isa, &x32, &g);
                                (y.iter().map(|&v| v as f64).collect(), i)
                            } else {
                                kernel.forward(isa, &x64, &g)
                            };
                            assert!(same(&yk, &y), "maxima, {what} {dtype:?}");
                            assert_eq!(ik, idx, "indices, {what} {dtype:?}");
                            ran.insert((kernel, PoolPass::Forward));
                        }
                        if kernel.applies(PoolPass::Backward, &g, dtype, isa) {
                            let dxk: Vec<f64> = if f32 {
                                kernel
                                    .backward(isa, &dy32, &idx, &g)
                                    .iter()
                                    .map(|&v| v as f64)
                                    .collect()
                            } else {
                                kernel.backward(isa, &dy, &idx, &g)
                            };
                            assert!(same(&dxk, &dx), "δx, {what} {dtype:?}");
                            ran.insert((kernel, PoolPass::Backward));
                        }
                    }
                }
            }
        }
        let mut expected = vec![
            (MaxPoolKernel::General, PoolPass::Forward),
            (MaxPoolKernel::General, PoolPass::Backward),
            (MaxPoolKernel::Unpadded, PoolPass::Forward),
            (MaxPoolKernel::Window2x2, PoolPass::Forward),
        ];
        if cfg!(target_arch = "x86_64") && Isa::detect() != Isa::Portable {
            expected.extend([
                (MaxPoolKernel::Avx2Window2x2, PoolPass::Forward),
                (MaxPoolKernel::Avx2Window2x2, PoolPass::Backward),
                (MaxPoolKernel::Avx2Window2x2ShortRows, PoolPass::Forward),
            ]);
        }
        for pair in expected {
            assert!(ran.contains(&pair), "{pair:?} met no geometry of the table");
        }
    }

    /// The general loop itself, on a window worked out by hand: 3×3 plane, 2×2 windows, stride
    /// 1, with a tie (first maximum kept) and a NaN (it wins).
    #[test]
    fn the_definition_by_hand() {
        let g = geometry((3, 3, 2, 1, 0, 1, false));
        let g = PoolGeometry { planes: 1, ..g };
        let x = [1.0, 5.0, 2.0, 5.0, 0.0, f64::NAN, 3.0, 4.0, 4.0];
        let (y, idx) = MaxPoolKernel::General.forward(Isa::Portable, &x, &g);
        assert_eq!(idx, vec![1, 5, 3, 5]);
        assert_eq!(y[0], 5.0);
        assert!(y[1].is_nan() && y[3].is_nan());
        assert_eq!(y[2], 5.0);
    }
}
