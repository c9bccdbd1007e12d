//! Local response normalisation and batch normalisation through cuDNN.
//!
//! ```text
//! LRN (across channels, window n centred on c):
//!     y_c = x_c / (k + α/n · Σ_{c' ∈ window(c)} x_{c'}²)^β
//! batch norm (per channel c over N and the spatial dims, biased variance σ²):
//!     y = γ (x − μ) / √(σ² + ε) + β
//!     running ← (1 − m)·running + m·batch   (running variance uses the unbiased estimate)
//!     δx = γ/√(σ² + ε) · (δy − mean(δy) − x̂ · mean(δy · x̂)),  δγ = Σ δy·x̂,  δβ = Σ δy
//! ```
//! Inputs are `[N, C, ...]` (rank ≥ 2 for batch norm, ≥ 3 for LRN), treated as `[N, C, L, 1]`.

use cudarc::cudnn::sys;

use super::{Scaling, TensorDesc, check, check_len, data_type, ptr, ptr_mut};
use crate::cuda::context::CudaDevice;
use crate::cuda::ops::{contiguous, same_device, same_dtype};
use crate::cuda::storage::CudaStorage;
use crate::error::{Result, arg_err, shape_err};
use crate::shape::Layout;

/// `[N, C, L, 1]` for a `[N, C, ...]` shape.
fn as_ncl1(op: &'static str, dims: &[usize], min_rank: usize) -> Result<[usize; 4]> {
    if dims.len() < min_rank {
        return shape_err(op, format!("needs [N, C, ...] of rank ≥ {min_rank}, got {dims:?}"));
    }
    Ok([dims[0], dims[1], dims[2..].iter().product(), 1])
}

fn contiguous_in(x: &CudaStorage, l: &Layout) -> Result<Option<CudaStorage>> {
    Ok(if l.is_contiguous() && l.offset() == 0 {
        None
    } else {
        Some(contiguous(x, l)?)
    })
}

/// The per-channel descriptor derived from `x`'s (cuDNN picks the parameter dtype).
fn bn_desc(dev: &CudaDevice, op: &'static str, xd: &TensorDesc) -> Result<TensorDesc> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: out-pointer to a fresh descriptor; freed by Drop.
    check(dev, op, unsafe { sys::cudnnCreateTensorDescriptor(&mut raw) })?;
    let d = TensorDesc(raw);
    check(dev, op, unsafe {
        sys::cudnnDeriveBNTensorDescriptor(raw, xd.0, sys::cudnnBatchNormMode_t::CUDNN_BATCHNORM_SPATIAL)
    })?;
    Ok(d)
}

fn check_param(op: &'static str, x: &CudaStorage, p: &CudaStorage, c: usize, what: &str) -> Result<()> {
    same_dtype(op, x.dtype(), p.dtype())?;
    same_device(op, x, &[p])?;
    if p.len() != c {
        return shape_err(op, format!("{what} has {} elements for {c} channels", p.len()));
    }
    Ok(())
}

/// Output of [`batch_norm_train`]: `y` and the batch statistics that backward needs.
#[derive(Debug)]
pub struct BatchNormTrainOutput {
    pub y: CudaStorage,
    /// μ per channel.
    pub save_mean: CudaStorage,
    /// 1/√(σ² + ε) per channel.
    pub save_inv_std: CudaStorage,
}

/// Batch norm in training mode: normalises with the batch statistics and, when given, updates
/// `running_mean`/`running_var` in place with `momentum` (PyTorch's convention: weight of the
/// new value). `weight` (γ) and `bias` (β) are contiguous `[C]` (ones and zeros when the layer
/// has no affine part).
pub fn batch_norm_train(
    x: &CudaStorage,
    xl: &Layout,
    weight: &CudaStorage,
    bias: &CudaStorage,
    running: Option<(&mut CudaStorage, &mut CudaStorage)>,
    momentum: f64,
    eps: f64,
) -> Result<BatchNormTrainOutput> {
    const OP: &str = "cuda::batch_norm";
    data_type(OP, x.dtype())?;
    crate::cuda::ops::check_layout(OP, x, xl)?;
    let dims = as_ncl1(OP, xl.dims(), 2)?;
    let c = dims[1];
    check_param(OP, x, weight, c, "weight")?;
    check_param(OP, x, bias, c, "bias")?;
    if !(0.0..=1.0).contains(&momentum) {
        return arg_err(OP, format!("momentum {momentum} outside [0, 1]"));
    }
    let (rm, rv) = match running {
        Some((m, v)) => {
            check_param(OP, x, m, c, "running mean")?;
            check_param(OP, x, v, c, "running variance")?;
            (ptr_mut(m), ptr_mut(v))
        }
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    if dims[0] * dims[2] < 2 {
        return arg_err(
            OP,
            format!("needs more than one value per channel, got input {:?}", xl.dims()),
        );
    }
    let xc = contiguous_in(x, xl)?;
    let x = xc.as_ref().unwrap_or(x);
    let dev = x.cuda_device().clone();
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), xl.elem_count())?;
    let save_mean = CudaStorage::uninit(&dev, OP, x.dtype(), c)?;
    let save_inv_std = CudaStorage::uninit(&dev, OP, x.dtype(), c)?;
    let xd = TensorDesc::new(&dev, OP, x.dtype(), dims)?;
    let bd = bn_desc(&dev, OP, &xd)?;
    let s = Scaling::new(x.dtype(), 0.0);
    dev.with_cudnn(OP, |h| {
        // SAFETY: live contiguous buffers matching the descriptors; null running stats are
        // allowed (both together).
        check(&dev, OP, unsafe {
            sys::cudnnBatchNormalizationForwardTraining(
                h,
                sys::cudnnBatchNormMode_t::CUDNN_BATCHNORM_SPATIAL,
                s.alpha(),
                s.beta(),
                xd.0,
                ptr(x),
                xd.0,
                ptr_mut(&y),
                bd.0,
                ptr(weight),
                ptr(bias),
                momentum,
                rm,
                rv,
                eps,
                ptr_mut(&save_mean),
                ptr_mut(&save_inv_std),
            )
        })
    })?;
    Ok(BatchNormTrainOutput {
        y,
        save_mean,
        save_inv_std,
    })
}

/// Batch norm in evaluation mode, with the given (running) mean and variance.
pub fn batch_norm_inference(
    x: &CudaStorage,
    xl: &Layout,
    weight: &CudaStorage,
    bias: &CudaStorage,
    mean: &CudaStorage,
    var: &CudaStorage,
    eps: f64,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::batch_norm_inference";
    data_type(OP, x.dtype())?;
    crate::cuda::ops::check_layout(OP, x, xl)?;
    let dims = as_ncl1(OP, xl.dims(), 2)?;
    let c = dims[1];
    for (p, what) in [(weight, "weight"), (bias, "bias"), (mean, "mean"), (var, "variance")] {
        check_param(OP, x, p, c, what)?;
    }
    let xc = contiguous_in(x, xl)?;
    let x = xc.as_ref().unwrap_or(x);
    let dev = x.cuda_device().clone();
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), xl.elem_count())?;
    if y.is_empty() {
        return Ok(y);
    }
    let xd = TensorDesc::new(&dev, OP, x.dtype(), dims)?;
    let bd = bn_desc(&dev, OP, &xd)?;
    let s = Scaling::new(x.dtype(), 0.0);
    dev.with_cudnn(OP, |h| {
        // SAFETY: live contiguous buffers matching the descriptors.
        check(&dev, OP, unsafe {
            sys::cudnnBatchNormalizationForwardInference(
                h,
                sys::cudnnBatchNormMode_t::CUDNN_BATCHNORM_SPATIAL,
                s.alpha(),
                s.beta(),
                xd.0,
                ptr(x),
                xd.0,
                ptr_mut(&y),
                bd.0,
                ptr(weight),
                ptr(bias),
                ptr(mean),
                ptr(var),
                eps,
            )
        })
    })?;
    Ok(y)
}

/// (δx, δγ, δβ) of [`batch_norm_train`] from the input, δy (contiguous), γ and the saved batch
/// statistics.
pub fn batch_norm_backward(
    x: &CudaStorage,
    xl: &Layout,
    dy: &CudaStorage,
    weight: &CudaStorage,
    save_mean: &CudaStorage,
    save_inv_std: &CudaStorage,
    eps: f64,
) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
    const OP: &str = "cuda::batch_norm_backward";
    data_type(OP, x.dtype())?;
    same_dtype(OP, x.dtype(), dy.dtype())?;
    crate::cuda::ops::check_layout(OP, x, xl)?;
    let dims = as_ncl1(OP, xl.dims(), 2)?;
    let c = dims[1];
    check_len(OP, "δy", dy, &dims)?;
    for (p, what) in [
        (weight, "weight"),
        (save_mean, "saved mean"),
        (save_inv_std, "saved 1/std"),
    ] {
        check_param(OP, x, p, c, what)?;
    }
    let xc = contiguous_in(x, xl)?;
    let x = xc.as_ref().unwrap_or(x);
    let dev = same_device(OP, x, &[dy])?;
    let dx = CudaStorage::uninit(&dev, OP, x.dtype(), xl.elem_count())?;
    let dw = CudaStorage::uninit(&dev, OP, x.dtype(), c)?;
    let db = CudaStorage::uninit(&dev, OP, x.dtype(), c)?;
    let xd = TensorDesc::new(&dev, OP, x.dtype(), dims)?;
    let bd = bn_desc(&dev, OP, &xd)?;
    let s = Scaling::new(x.dtype(), 0.0);
    dev.with_cudnn(OP, |h| {
        // SAFETY: live contiguous buffers matching the descriptors.
        check(&dev, OP, unsafe {
            sys::cudnnBatchNormalizationBackward(
                h,
                sys::cudnnBatchNormMode_t::CUDNN_BATCHNORM_SPATIAL,
                s.alpha(),
                s.beta(),
                s.alpha(),
                s.beta(),
                xd.0,
                ptr(x),
                xd.0,
                ptr(dy),
                xd.0,
                ptr_mut(&dx),
                bd.0,
                ptr(weight),
                ptr_mut(&dw),
                ptr_mut(&db),
                eps,
                ptr(save_mean),
                ptr(save_inv_std),
            )
        })
    })?;
    Ok((dx, dw, db))
}
