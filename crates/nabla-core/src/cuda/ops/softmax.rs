//! Softmax, log-softmax and the fused softmax + cross-entropy (kernels in `kernels::softmax`).

use cudarc::driver::PushKernelArg;

use super::{
    Scalar, check_layout, contiguous, float_only, launch, push_scalar, rows_grid, same_device, same_dtype, suffix,
};
use crate::cuda::kernels::softmax::SOFTMAX;
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::shape::Layout;

/// Softmax (or log-softmax when `log`) over the last dim of `x`; contiguous output of the same
/// shape. A non-contiguous input is copied first.
pub fn softmax(x: &CudaStorage, layout: &Layout, log: bool) -> Result<CudaStorage> {
    const OP: &str = "cuda::softmax";
    check_layout(OP, x, layout)?;
    float_only(OP, x.dtype())?;
    let cols = *layout.dims().last().unwrap_or(&1);
    let n = layout.elem_count();
    let xc;
    let (x, off) = if layout.is_contiguous() {
        (x, layout.offset())
    } else {
        xc = contiguous(x, layout)?;
        (&xc, 0)
    };
    let dev = x.cuda_device().clone();
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let rows = n / cols;
    let f = dev.function(OP, &SOFTMAX, &format!("softmax_fwd_{}", suffix(x.dtype())))?;
    let (log, r64, c64, px, py) = (log as i32, rows as u64, cols as u64, x.elem_ptr(off), y.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&log).arg(&r64).arg(&c64).arg(&px).arg(&py);
    launch(&dev, OP, &mut l, rows_grid(rows))?;
    Ok(y)
}

/// δx from the forward output `y` and δy (both contiguous, `cols` = size of the last dim):
/// softmax `δx = y(δy − Σ δy·y)`, log-softmax `δx = δy − e^y Σ δy`.
pub fn softmax_backward(y: &CudaStorage, dy: &CudaStorage, cols: usize, log: bool) -> Result<CudaStorage> {
    const OP: &str = "cuda::softmax_backward";
    float_only(OP, y.dtype())?;
    same_dtype(OP, y.dtype(), dy.dtype())?;
    let dev = same_device(OP, y, &[dy])?;
    if y.len() != dy.len() || cols == 0 || !y.len().is_multiple_of(cols) {
        return shape_err(
            OP,
            format!("y has {} elements, δy {}, rows of {cols}", y.len(), dy.len()),
        );
    }
    let dx = CudaStorage::uninit(&dev, OP, y.dtype(), y.len())?;
    if y.is_empty() {
        return Ok(dx);
    }
    let rows = y.len() / cols;
    let f = dev.function(OP, &SOFTMAX, &format!("softmax_bwd_{}", suffix(y.dtype())))?;
    let (log, r64, c64) = (log as i32, rows as u64, cols as u64);
    let (py, pdy, pdx) = (y.device_ptr(), dy.device_ptr(), dx.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&log).arg(&r64).arg(&c64).arg(&py).arg(&pdy).arg(&pdx);
    launch(&dev, OP, &mut l, rows_grid(rows))?;
    Ok(dx)
}

/// Fused softmax + cross-entropy for contiguous logits `[rows, cols]` and i64 targets `[rows]`:
/// the per-sample loss `ℓ_r = lse(x_r) − x_{r,t_r}` and, when `grad_scale` is given, the
/// gradient `s·(softmax(x_r) − onehot(t_r))` (`s = 1/rows` for the mean loss, 1 per-sample).
/// A target outside `[0, cols)` yields NaN in its row (checked on the host by the caller if it
/// wants an error; the GPU does not abort).
pub fn softmax_cross_entropy(
    logits: &CudaStorage,
    targets: &CudaStorage,
    rows: usize,
    cols: usize,
    grad_scale: Option<f64>,
) -> Result<(CudaStorage, Option<CudaStorage>)> {
    const OP: &str = "cuda::softmax_cross_entropy";
    float_only(OP, logits.dtype())?;
    if targets.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op: OP,
            dtype: targets.dtype(),
        });
    }
    let dev = same_device(OP, logits, &[targets])?;
    if logits.len() != rows * cols || targets.len() != rows {
        return shape_err(
            OP,
            format!(
                "logits of {} elements for [{rows}, {cols}], {} targets",
                logits.len(),
                targets.len()
            ),
        );
    }
    let loss = CudaStorage::uninit(&dev, OP, logits.dtype(), rows)?;
    let grad = match grad_scale {
        Some(_) => Some(CudaStorage::uninit(&dev, OP, logits.dtype(), rows * cols)?),
        None => None,
    };
    if rows == 0 {
        return Ok((loss, grad));
    }
    if cols == 0 {
        return shape_err(OP, "logits with 0 classes");
    }
    let f = dev.function(OP, &SOFTMAX, &format!("softmax_xent_{}", suffix(logits.dtype())))?;
    let (r64, c64) = (rows as u64, cols as u64);
    let (px, pt, pl) = (logits.device_ptr(), targets.device_ptr(), loss.device_ptr());
    let pg = grad.as_ref().map_or(0u64, |g| g.device_ptr());
    let scale = Scalar::new(logits.dtype(), grad_scale.unwrap_or(0.0));
    let write = grad_scale.is_some() as i32;
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&r64).arg(&c64).arg(&px).arg(&pt).arg(&pl).arg(&pg);
    push_scalar(&mut l, &scale);
    l.arg(&write);
    launch(&dev, OP, &mut l, rows_grid(rows))?;
    Ok((loss, grad))
}
