//! Mixed precision, as PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)`: inside an
//! autocast scope the matrix products of f32 tensors (`matmul`, so `Linear`) run with bf16
//! operands and f32 accumulation; everything else — element-wise ops, reductions, softmax,
//! losses, batch-norm statistics, the optimiser and the master weights — stays in f32, and f64
//! (gradient checks) is never touched. A product's backward pass runs in the precision of its
//! forward pass, whatever the scope is when `backward` is called.
//!
//! Unlike PyTorch, a bf16 product returns f32: its sums are f32 already, and rounding them to
//! bf16 only to widen them again for the next element-wise op would add error and save nothing
//! on the CPU. See `cpu/gemm_bf16.rs` for the kernel and the error bound.
//!
//! ```
//! use nabla_core::{Tensor, autocast::{Precision, autocast}};
//! let a = Tensor::from_vec(vec![1.0f32 + 1.0 / 512.0, 2.0], (1, 2)).unwrap();
//! let b = Tensor::from_vec(vec![1.0f32, 1.0], (2, 1)).unwrap();
//! // 1 + 2⁻⁹ is not a bf16 (its spacing at 1 is 2⁻⁷): it rounds to 1, and the product is 3.
//! let c = autocast(Precision::Bf16, || a.matmul(&b)).unwrap();
//! assert_eq!(c.to_vec::<f32>().unwrap(), vec![3.0]);
//! assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), vec![3.0 + 1.0 / 512.0]);
//! ```

use std::cell::Cell;

pub use crate::backend::params::Precision;

thread_local! {
    static PRECISION: Cell<Precision> = const { Cell::new(Precision::F32) };
}

/// The precision of f32 matrix products on this thread now.
pub fn current() -> Precision {
    PRECISION.with(|p| p.get())
}

/// While alive, f32 matrix products on this thread run in `precision`; the previous precision
/// returns when it drops (scopes nest).
pub struct AutocastGuard {
    previous: Precision,
}

impl AutocastGuard {
    pub fn new(precision: Precision) -> AutocastGuard {
        AutocastGuard {
            previous: PRECISION.with(|p| p.replace(precision)),
        }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        PRECISION.with(|p| p.set(self.previous));
    }
}

/// Runs `f` with f32 matrix products in `precision`.
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    let _guard = AutocastGuard::new(precision);
    f()
}
