//! Convolution, pooling, LRN and batch norm through cuDNN (the legacy, descriptor-based API of
//! cuDNN 9), on contiguous NCHW tensors, f32 and f64.
//!
//! Descriptors are created per call (host-only, microseconds) and destroyed by their `Drop`;
//! convolution algorithms are chosen once per shape by cuDNN's heuristics and cached
//! (`conv.rs`). Workspaces come from the caching allocator, so they cost no `cuMemAlloc` after
//! the first step. All calls go to the device's one stream through its cuDNN handle.
//!
//! TF32 for f32 convolutions is on by default, as PyTorch's `torch.backends.cudnn.allow_tf32`;
//! [`set_conv_tf32`] switches it (off means `CUDNN_FMA_MATH`: no tensor-core rounding).

mod conv;
mod norm;

pub use conv::{conv2d, conv2d_backward_data, conv2d_backward_filter};
pub use norm::{BatchNormTrainOutput, batch_norm_backward, batch_norm_inference, batch_norm_train};

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use cudarc::cudnn::sys;

use crate::cuda::context::{CudaDevice, Library};
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result, arg_err, shape_err};

static CONV_TF32: AtomicBool = AtomicBool::new(true);

/// Lets cuDNN use TF32 tensor cores for f32 convolutions (on by default, as in PyTorch).
pub fn set_conv_tf32(on: bool) {
    CONV_TF32.store(on, Ordering::Relaxed);
}

/// Whether f32 convolutions may use TF32.
pub fn conv_tf32() -> bool {
    CONV_TF32.load(Ordering::Relaxed)
}

pub(crate) fn data_type(op: &'static str, dtype: DType) -> Result<sys::cudnnDataType_t> {
    match dtype {
        DType::F32 => Ok(sys::cudnnDataType_t::CUDNN_DATA_FLOAT),
        DType::F64 => Ok(sys::cudnnDataType_t::CUDNN_DATA_DOUBLE),
        DType::I64 => Err(Error::UnsupportedDType { op, dtype }),
    }
}

/// α = 1 and β = 0 (or β = 1 to accumulate) in the dtype cuDNN expects for them: double for
/// double data, float otherwise. Pointers into this stay valid while it lives.
pub(crate) struct Scaling {
    f: [f32; 2],
    d: [f64; 2],
    double: bool,
}

impl Scaling {
    pub(crate) fn new(dtype: DType, beta: f64) -> Scaling {
        Scaling {
            f: [1.0, beta as f32],
            d: [1.0, beta],
            double: dtype == DType::F64,
        }
    }
    pub(crate) fn alpha(&self) -> *const c_void {
        if self.double {
            &self.d[0] as *const f64 as _
        } else {
            &self.f[0] as *const f32 as _
        }
    }
    pub(crate) fn beta(&self) -> *const c_void {
        if self.double {
            &self.d[1] as *const f64 as _
        } else {
            &self.f[1] as *const f32 as _
        }
    }
}

pub(crate) fn check(dev: &CudaDevice, op: &'static str, s: sys::cudnnStatus_t) -> Result<()> {
    s.result().map_err(|e| dev.err(op, Library::Cudnn, e))
}

pub(crate) fn to_i32(op: &'static str, v: usize) -> Result<i32> {
    i32::try_from(v).or_else(|_| arg_err(op, format!("size {v} exceeds cuDNN's 32-bit limit")))
}

/// A 4-d tensor descriptor, packed NCHW.
pub(crate) struct TensorDesc(pub(crate) sys::cudnnTensorDescriptor_t);

impl TensorDesc {
    pub(crate) fn new(dev: &CudaDevice, op: &'static str, dtype: DType, dims: [usize; 4]) -> Result<TensorDesc> {
        let dt = data_type(op, dtype)?;
        let d = dims.map(|v| v as i64);
        let strides = [d[1] * d[2] * d[3], d[2] * d[3], d[3], 1];
        let mut dims32 = [0i32; 4];
        let mut str32 = [0i32; 4];
        for i in 0..4 {
            dims32[i] = to_i32(op, dims[i])?;
            str32[i] = to_i32(op, strides[i].max(1) as usize)?;
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: out-pointer to a fresh descriptor; freed by Drop.
        check(dev, op, unsafe { sys::cudnnCreateTensorDescriptor(&mut raw) })?;
        let desc = TensorDesc(raw);
        check(dev, op, unsafe {
            sys::cudnnSetTensorNdDescriptor(raw, dt, 4, dims32.as_ptr(), str32.as_ptr())
        })?;
        Ok(desc)
    }
}

impl Drop for TensorDesc {
    fn drop(&mut self) {
        // SAFETY: created by cudnnCreateTensorDescriptor and destroyed once.
        unsafe { sys::cudnnDestroyTensorDescriptor(self.0) };
    }
}

/// `[N, C, H, W]` of a rank-4 shape, or a shape error.
pub(crate) fn nchw(op: &'static str, what: &str, dims: &[usize]) -> Result<[usize; 4]> {
    match dims {
        &[n, c, h, w] => Ok([n, c, h, w]),
        _ => shape_err(op, format!("{what} must be [N, C, H, W], got {dims:?}")),
    }
}

/// Checks that `s` holds exactly the elements of `dims` (contiguous operands).
pub(crate) fn check_len(op: &'static str, what: &str, s: &CudaStorage, dims: &[usize]) -> Result<()> {
    let n: usize = dims.iter().product();
    if s.len() != n {
        return shape_err(
            op,
            format!("{what} has {} elements, expected {n} for {dims:?}", s.len()),
        );
    }
    Ok(())
}

pub(crate) fn ptr(s: &CudaStorage) -> *const c_void {
    s.device_ptr() as *const c_void
}
pub(crate) fn ptr_mut(s: &CudaStorage) -> *mut c_void {
    s.device_ptr() as *mut c_void
}
