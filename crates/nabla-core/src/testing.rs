//! Support for tests that run one body on every device (candle's `test_device!`): the CPU
//! always, and `cuda:0` where this build has the `cuda` feature and the machine a GPU.
//!
//! A GPU variant that cannot run says so on the test output itself, not in the captured output
//! of a passing test: `cargo test` then shows `skipped: ... (no CUDA device)` lines. With
//! `NABLA_REQUIRE_GPU=1` an absent GPU fails the test instead (scripts/gpu-check.sh sets it).

use std::io::Write;

use crate::{Device, Tensor};

/// The GPU to test on, or `None` after reporting why the test is skipped. Panics when
/// `NABLA_REQUIRE_GPU=1` and there is no GPU to test on.
pub fn gpu_or_skip(test: &str) -> Option<Device> {
    let why = if !Device::cuda_built() {
        "this build has no `cuda` feature"
    } else if !cuda_available() {
        "no CUDA device"
    } else {
        // NOTE: tests compare the GPU's f32 arithmetic with the CPU's; cuDNN's default TF32
        // convolutions (10-bit mantissas) would need their own, looser tolerance.
        #[cfg(feature = "cuda")]
        crate::cuda::set_conv_tf32(false);
        return Some(Device::Cuda(0));
    };
    if std::env::var("NABLA_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("{test}: NABLA_REQUIRE_GPU=1 but {why}");
    }
    // NOTE: written to the process's stderr directly: `eprintln!` inside a test is captured and
    // shown only for failures, which is how a skipped GPU test used to pass silently.
    let _ = writeln!(std::io::stderr(), "skipped: {test} on cuda ({why})");
    None
}

/// Asserts that `got` (on any device) equals `want` within `tol` times the largest |want|: the
/// comparison of one device's result with another's. A NaN matches only a NaN.
#[track_caller]
pub fn assert_close_to_scale(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
    let scale = w.iter().filter(|v| v.is_finite()).fold(1e-6f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * scale;
        assert!(
            ok,
            "{what}: element {i}: {a} vs {b} (tolerance {tol} × scale {scale:e})"
        );
    }
}

#[cfg(feature = "cuda")]
fn cuda_available() -> bool {
    crate::cuda::is_available()
}

#[cfg(not(feature = "cuda"))]
fn cuda_available() -> bool {
    false
}

/// `device_test! { name: |device| body; ... }` makes, for each name, a module with two tests,
/// `name::cpu` and `name::cuda`, running `body` (a `Result<()>`) with `device` bound to the
/// device. The cuda one is reported as skipped where it cannot run (see [`gpu_or_skip`]).
#[macro_export]
macro_rules! device_test {
    ($($name:ident: |$dev:ident| $body:expr;)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[test]
                fn cpu() -> $crate::Result<()> {
                    let $dev = $crate::Device::Cpu;
                    $body
                }
                #[test]
                fn cuda() -> $crate::Result<()> {
                    let Some($dev) = $crate::testing::gpu_or_skip(module_path!()) else {
                        return Ok(());
                    };
                    $body
                }
            }
        )*
    };
}
