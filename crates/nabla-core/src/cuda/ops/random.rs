//! Counter-based random draws on the GPU (Philox4x32-10, `kernels::random`): a result depends
//! only on `(seed, offset, index)`, never on the launch configuration.

use cudarc::driver::PushKernelArg;

use super::{Scalar, float_only, grid, launch, push_scalar, suffix};
use crate::cuda::context;
use crate::cuda::kernels::random::RANDOM;
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Result, arg_err};

/// How many Philox counters a draw of `len` elements uses (4 per counter for f32, 2 for f64).
/// Advancing `offset` by 1 between calls already keeps calls disjoint: `offset` is the high
/// half of the counter.
pub fn philox_counters(len: usize, dtype: DType) -> u64 {
    let per = if dtype == DType::F32 { 4 } else { 2 };
    len.div_ceil(per) as u64
}

fn draw(
    op: &'static str,
    kernel: &str,
    ordinal: usize,
    dtype: DType,
    len: usize,
    seed: u64,
    offset: u64,
    a: f64,
    b: f64,
) -> Result<CudaStorage> {
    float_only(op, dtype)?;
    let dev = context::device(ordinal)?;
    let y = CudaStorage::uninit(&dev, op, dtype, len)?;
    if len == 0 {
        return Ok(y);
    }
    let f = dev.function(op, &RANDOM, &format!("{kernel}_{}", suffix(dtype)))?;
    let (n64, py) = (len as u64, y.device_ptr());
    let (a, b) = (Scalar::new(dtype, a), Scalar::new(dtype, b));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&seed).arg(&offset);
    push_scalar(&mut l, &a);
    push_scalar(&mut l, &b);
    l.arg(&py);
    launch(&dev, op, &mut l, grid(philox_counters(len, dtype) as usize))?;
    Ok(y)
}

/// Inverted-dropout mask: each element is `1/(1 − p)` with probability `1 − p`, else 0
/// (`x · mask` is the dropout output and `δy · mask` its gradient).
pub fn dropout_mask(ordinal: usize, dtype: DType, len: usize, p: f64, seed: u64, offset: u64) -> Result<CudaStorage> {
    const OP: &str = "cuda::dropout_mask";
    if !(0.0..1.0).contains(&p) {
        return arg_err(OP, format!("drop probability {p} outside [0, 1)"));
    }
    draw(
        OP,
        "dropout_mask",
        ordinal,
        dtype,
        len,
        seed,
        offset,
        1.0 - p,
        1.0 / (1.0 - p),
    )
}

/// Uniform draws in `[lo, hi)`.
pub fn uniform(
    ordinal: usize,
    dtype: DType,
    len: usize,
    lo: f64,
    hi: f64,
    seed: u64,
    offset: u64,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::uniform";
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return arg_err(OP, format!("empty range [{lo}, {hi})"));
    }
    draw(OP, "uniform", ordinal, dtype, len, seed, offset, lo, hi)
}

/// Normal draws with the given mean and standard deviation (Box–Muller).
pub fn normal(
    ordinal: usize,
    dtype: DType,
    len: usize,
    mean: f64,
    std: f64,
    seed: u64,
    offset: u64,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::normal";
    if std.is_nan() || std < 0.0 {
        return arg_err(OP, format!("standard deviation {std} < 0"));
    }
    draw(OP, "normal", ordinal, dtype, len, seed, offset, mean, std)
}
