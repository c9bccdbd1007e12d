//! 2-D convolution on the CPU: one table picks the algorithm for each pass.
//!
//! Every algorithm computes the same thing (`naive.rs` states it, seven loops deep) and lives in
//! a file of its own; [`ConvAlgorithm`] is the one interface to them (`applies`, `forward`,
//! `backward_input`, `backward_weight`), and [`choose`] is the table, read top to bottom, the
//! first row that pays wins:
//!
//! | pass    | algorithm (file)                          | where it pays                              |
//! |---------|-------------------------------------------|--------------------------------------------|
//! | all     | `Wide` (wide.rs)                          | f32, AVX-512, 16–64 channels, planes ≤ 32² |
//! | forward | `Direct` (direct.rs)                      | ≤ 32 output channels, ≤ 1024 taps; any float |
//! | forward | `Winograd` F(4×4,3×3), F(2×2,5×5) (winograd.rs) | f32, stride 1, ≥ 16 channels, ≥ 36 tiles |
//! | forward | `Wide`, 16 channels a block (wide.rs)     | f32, > 32 output channels, 64–2560 taps    |
//! | δx      | `ScatterDx` from δy (scatter_dx.rs)       | f32, stride 1, 4–8 input channels, small planes |
//! | δx      | `DirectDx`, the row kernel (direct_dx.rs) | f32, stride 1, 4–32 input channels         |
//! | δx      | `Winograd`, `Wide`                        | their forward rules on the transposed problem |
//! | δW      | `Direct`, then `Wide`                     | their forward rules                        |
//! | any     | `Im2col` + GEMM (im2col.rs)               | everything else: groups, big layers, f64   |
//!
//! The f32 kernels come in SIMD copies beside their portable loops (`direct_avx2.rs`,
//! `direct_avx512.rs`); [`Isa`] names the copy a pass runs, detected once per call.
//!
//! What may change where: a speed rule lives in the algorithm's `pays` (with the measurement
//! behind it) and is read only by [`choose`]; what an algorithm needs to be correct lives in its
//! `applies`, and `sweep.rs` runs every algorithm that applies on every geometry of its table
//! against `naive.rs`. A new algorithm is a file, a variant, its arms below, and a row of the
//! table.

mod direct;
#[cfg(target_arch = "x86_64")]
mod direct_avx2;
#[cfg(target_arch = "x86_64")]
mod direct_avx512;
mod direct_dx;
mod geometry;
mod im2col;
#[cfg(test)]
mod naive;
#[cfg(target_arch = "x86_64")]
mod scatter_dx;
#[cfg(test)]
mod sweep;
#[cfg(test)]
mod test_util;
mod wide;
mod winograd;

pub use crate::backend::params::ConvGeometry;
use crate::backend::params::Precision;
pub use crate::cpu::isa::Isa;
use crate::cpu::isa::has_fma;
pub use im2col::SavedColumns;

use crate::cpu::{as_f32, f32_vec_as};
use crate::{DType, Float};

/// The three passes of a convolution y = W ⋆ x + b.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pass {
    /// y from x, W and b.
    Forward,
    /// δx from δy and W.
    BackwardInput,
    /// δW from x and δy.
    BackwardWeight,
}

impl Pass {
    pub const ALL: [Pass; 3] = [Pass::Forward, Pass::BackwardInput, Pass::BackwardWeight];
}

/// The algorithms, each in its own file; see the module's table for where each pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvAlgorithm {
    /// Output channels as vector lanes, no unfolding (small layers; forward and δW).
    Direct,
    /// δx scattered from δy, input channels as lanes (f32).
    ScatterDx,
    /// δx as a forward pass of the row kernel over padded δy (f32).
    DirectDx,
    /// Winograd's minimal filtering (f32; forward and δx).
    Winograd,
    /// 16 output channels a block, no unfolding (f32; all passes).
    Wide,
    /// im2col + GEMM (any float type, any geometry, all passes).
    Im2col,
}

impl ConvAlgorithm {
    pub const ALL: [ConvAlgorithm; 6] = [
        ConvAlgorithm::Direct,
        ConvAlgorithm::ScatterDx,
        ConvAlgorithm::DirectDx,
        ConvAlgorithm::Winograd,
        ConvAlgorithm::Wide,
        ConvAlgorithm::Im2col,
    ];

    /// Whether this algorithm computes `pass` of `g` correctly in `dtype` with the kernels of
    /// `isa` (which the CPU must support). Not whether it is fast: that is [`choose`]'s.
    pub fn applies(self, pass: Pass, g: &ConvGeometry, dtype: DType, isa: Isa) -> bool {
        use ConvAlgorithm::*;
        let f32 = dtype == DType::F32;
        // The f32 kernels of these three exist only as AVX2 + FMA loops.
        let simd_f32 = f32 && isa != Isa::Portable && has_fma();
        match (self, pass) {
            (Direct, Pass::Forward | Pass::BackwardWeight) => direct::applies(g),
            (ScatterDx, Pass::BackwardInput) => simd_f32 && scatter_dx_applies(g),
            (DirectDx, Pass::BackwardInput) => simd_f32 && direct_dx::applies(g),
            (Winograd, Pass::Forward) => f32 && winograd::applies(g),
            (Winograd, Pass::BackwardInput) => f32 && winograd::applies_to_backward_input(g),
            (Wide, Pass::Forward | Pass::BackwardWeight) => simd_f32 && wide::applies(g),
            (Wide, Pass::BackwardInput) => simd_f32 && wide::applies_to_backward_input(g),
            (Im2col, _) => true,
            _ => false,
        }
    }

    /// y = W ⋆ x + b for contiguous `x` [n, c_in, h, w] and `weight` [c_out, c_in/groups, kh, kw];
    /// with `keep`, im2col also returns its unfolded inputs when they are small (for δW).
    ///
    /// # Panics
    /// Unless [`ConvAlgorithm::applies`] holds for the forward pass.
    pub fn forward<T: Float>(
        self,
        isa: Isa,
        x: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        g: &ConvGeometry,
        keep: bool,
    ) -> (Vec<T>, Option<SavedColumns<T>>) {
        self.check(Pass::Forward, g, T::DTYPE, isa);
        let f32_bias = || bias.map(|b| as_f32(b).expect("applies checked f32"));
        let y = match self {
            ConvAlgorithm::Direct => direct::forward(isa, x, weight, bias, g),
            ConvAlgorithm::Winograd => from_f32(winograd::forward(f32s(x), f32s(weight), f32_bias(), g)),
            ConvAlgorithm::Wide => from_f32(wide::forward(f32s(x), f32s(weight), f32_bias(), g)),
            ConvAlgorithm::Im2col => return im2col::forward(x, weight, bias, g, keep),
            ConvAlgorithm::ScatterDx | ConvAlgorithm::DirectDx => unreachable!("checked above"),
        };
        (y, None)
    }

    /// δx [n, c_in, h, w] for contiguous `dy` [n, c_out, oh, ow] and `weight`.
    ///
    /// # Panics
    /// Unless [`ConvAlgorithm::applies`] holds for δx.
    pub fn backward_input<T: Float>(self, isa: Isa, dy: &[T], weight: &[T], g: &ConvGeometry) -> Vec<T> {
        self.check(Pass::BackwardInput, g, T::DTYPE, isa);
        match self {
            ConvAlgorithm::ScatterDx => from_f32(scatter_dx_backward_input(f32s(dy), f32s(weight), g)),
            ConvAlgorithm::DirectDx => from_f32(direct_dx::backward_input(f32s(dy), f32s(weight), g)),
            ConvAlgorithm::Winograd => from_f32(winograd::backward_input(f32s(dy), f32s(weight), g)),
            ConvAlgorithm::Wide => from_f32(wide::backward_input(f32s(dy), f32s(weight), g)),
            ConvAlgorithm::Im2col => im2col::backward_input(dy, weight, g),
            ConvAlgorithm::Direct => unreachable!("checked above"),
        }
    }

    /// δW [c_out, c_in/groups, kh, kw] for contiguous `x` and `dy`; `saved` is what im2col's
    /// forward pass kept (only im2col reads it).
    ///
    /// # Panics
    /// Unless [`ConvAlgorithm::applies`] holds for δW.
    pub fn backward_weight<T: Float>(
        self,
        isa: Isa,
        x: &[T],
        dy: &[T],
        g: &ConvGeometry,
        saved: Option<&SavedColumns<T>>,
    ) -> Vec<T> {
        self.check(Pass::BackwardWeight, g, T::DTYPE, isa);
        match self {
            ConvAlgorithm::Direct => direct::backward_weight(isa, x, dy, g),
            ConvAlgorithm::Wide => from_f32(wide::backward_weight(f32s(x), f32s(dy), g)),
            ConvAlgorithm::Im2col => im2col::backward_weight(x, dy, g, saved),
            _ => unreachable!("checked above"),
        }
    }

    fn check(self, pass: Pass, g: &ConvGeometry, dtype: DType, isa: Isa) {
        assert!(
            self.applies(pass, g, dtype, isa),
            "conv2d: {self:?} does not compute {pass:?} of {g:?} in {dtype:?} with {isa:?}"
        );
    }
}

/// The table: the algorithm that runs `pass` of `g` in `dtype` on a CPU with `isa`. The first
/// row whose rule holds wins (each `pays` states the measurements behind it).
pub fn choose(pass: Pass, g: &ConvGeometry, dtype: DType, isa: Isa) -> ConvAlgorithm {
    use ConvAlgorithm::*;
    if dtype == DType::F32 && g.precision == Precision::Bf16 && im2col::bf16_pays(g) {
        // Mixed precision: every pass as bf16 GEMMs (cpu/gemm_bf16.rs). Smaller layers keep
        // the f32 kernels below: autocast allows bf16, it does not ask for a slower product.
        return Im2col;
    }
    // The f32 kernels beyond `Direct` pay only with AVX2 and FMA.
    let simd_f32 = dtype == DType::F32 && isa != Isa::Portable && has_fma();
    match pass {
        Pass::Forward => {
            if simd_f32 && wide::pays_over_direct(g, isa) {
                Wide
            } else if direct::applies(g) {
                // Small layers: no unfolding at all (its rule is its speed rule).
                Direct
            } else if simd_f32 && winograd::pays(g) {
                Winograd
            } else if simd_f32 && wide::pays(g) {
                Wide
            } else {
                Im2col
            }
        }
        Pass::BackwardInput => {
            if simd_f32 && wide::pays_over_direct_dx(g, isa) {
                Wide
            } else if simd_f32 && scatter_dx_pays(g) {
                ScatterDx
            } else if simd_f32 && direct_dx::pays(g) {
                DirectDx
            } else if simd_f32 && winograd::pays_for_backward_input(g) {
                Winograd
            } else if simd_f32 && wide::pays_for_backward_input(g) {
                Wide
            } else {
                Im2col
            }
        }
        Pass::BackwardWeight => {
            // Where the forward pass was im2col, this is too: it may reuse the kept columns.
            if simd_f32 && wide::pays_over_direct(g, isa) {
                Wide
            } else if direct::applies(g) {
                Direct
            } else if simd_f32 && wide::pays(g) {
                Wide
            } else {
                Im2col
            }
        }
    }
}

/// y = W ⋆ x + b for contiguous `x` and `weight`.
pub fn conv2d_forward<T: Float>(x: &[T], weight: &[T], bias: Option<&[T]>, g: &ConvGeometry) -> Vec<T> {
    conv2d_forward_saving(x, weight, bias, g, false).0
}

/// The forward pass by the table; with `keep`, also im2col's unfolded inputs if it ran and they
/// are small (see [`SavedColumns`]).
pub fn conv2d_forward_saving<T: Float>(
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    g: &ConvGeometry,
    keep: bool,
) -> (Vec<T>, Option<SavedColumns<T>>) {
    let isa = Isa::detect();
    choose(Pass::Forward, g, T::DTYPE, isa).forward(isa, x, weight, bias, g, keep)
}

/// δx for contiguous `dy` and `weight`, by the table.
pub fn conv2d_backward_input<T: Float>(dy: &[T], weight: &[T], g: &ConvGeometry) -> Vec<T> {
    let isa = Isa::detect();
    choose(Pass::BackwardInput, g, T::DTYPE, isa).backward_input(isa, dy, weight, g)
}

/// δW for contiguous `x` and `dy`, by the table (`saved`: what the forward pass kept).
pub fn conv2d_backward_weight<T: Float>(
    x: &[T],
    dy: &[T],
    g: &ConvGeometry,
    saved: Option<&SavedColumns<T>>,
) -> Vec<T> {
    let isa = Isa::detect();
    let algorithm = choose(Pass::BackwardWeight, g, T::DTYPE, isa);
    debug_assert!(saved.is_none() || algorithm == ConvAlgorithm::Im2col);
    algorithm.backward_weight(isa, x, dy, g, saved)
}

/// `s` as f32 values; the algorithms that call this applied only to f32.
fn f32s<T: Float>(s: &[T]) -> &[f32] {
    as_f32(s).expect("applies checked f32")
}

/// An f32 kernel's result as `Vec<T>` (T is f32 there).
fn from_f32<T: Float>(v: Vec<f32>) -> Vec<T> {
    f32_vec_as(v).expect("applies checked f32")
}

#[cfg(target_arch = "x86_64")]
fn scatter_dx_applies(g: &ConvGeometry) -> bool {
    scatter_dx::applies(g)
}
#[cfg(target_arch = "x86_64")]
fn scatter_dx_pays(g: &ConvGeometry) -> bool {
    scatter_dx::pays(g)
}
#[cfg(target_arch = "x86_64")]
fn scatter_dx_backward_input(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    scatter_dx::backward_input(dy, weight, g)
}
#[cfg(not(target_arch = "x86_64"))]
fn scatter_dx_applies(_: &ConvGeometry) -> bool {
    false
}
#[cfg(not(target_arch = "x86_64"))]
fn scatter_dx_pays(_: &ConvGeometry) -> bool {
    false
}
#[cfg(not(target_arch = "x86_64"))]
fn scatter_dx_backward_input(_: &[f32], _: &[f32], g: &ConvGeometry) -> Vec<f32> {
    unreachable!("scatter_dx applies only on x86-64: {g:?}")
}
