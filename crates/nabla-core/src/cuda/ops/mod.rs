//! Public entry points of the CUDA kernels, one file per family. Each takes [`CudaStorage`]
//! plus the `Layout` through which the Tensor sees it, checks what a user
//! could get wrong (shapes, dtypes, devices, layouts that reach past the buffer) and returns
//! errors, then queues one kernel on the device's stream. Outputs are new, contiguous buffers
//! unless the function says "in place".

mod elementwise;
mod index;
mod optim;
mod pool;
mod random;
mod reduce;
mod softmax;

pub use elementwise::{binary, cast, contiguous, copy_strided, fill, pad2d, pad2d_backward, unary, where_cond};
pub use index::{check_indices, gather, index_add, index_select, scatter_add};
pub use optim::{adam_update, sgd_update};
pub use pool::{lrn, lrn_backward, pool2d, pool2d_backward};
pub use random::{dropout_mask, normal, philox_counters, uniform};
pub use reduce::reduce;
pub use softmax::{softmax, softmax_backward, softmax_cross_entropy};

use std::sync::Arc;

use cudarc::driver::{DeviceRepr, LaunchConfig};

use crate::cuda::context::CudaDevice;
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result, arg_err, shape_err};
use crate::shape::Layout;

/// Largest rank a strided kernel accepts (after merging dims that are contiguous together).
pub const MAX_RANK: usize = 8;
/// Threads per block of every launch.
pub(crate) const BLOCK: u32 = 256;

/// Kernel parameter: a strided view of rank ≤ 8. Mirrors `struct Strided` in
/// `kernels::common::COMMON` (int, int, u64[8], i64[8]: 136 bytes, 8-aligned).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided {
    rank: i32,
    contiguous: i32,
    dims: [u64; MAX_RANK],
    strides: [i64; MAX_RANK],
}

// SAFETY: plain old data with the C layout the kernels declare.
unsafe impl DeviceRepr for Strided {}

impl Strided {
    pub(crate) fn new(op: &'static str, dims: &[usize], strides: &[usize]) -> Result<Strided> {
        if dims.len() > MAX_RANK {
            return arg_err(
                op,
                format!(
                    "rank {} after merging contiguous dims exceeds the CUDA kernels' limit of {MAX_RANK}",
                    dims.len()
                ),
            );
        }
        let mut s = Strided {
            rank: dims.len() as i32,
            contiguous: 0,
            dims: [1; MAX_RANK],
            strides: [0; MAX_RANK],
        };
        let mut expected = 1usize;
        let mut contiguous = true;
        for (i, (&d, &st)) in dims.iter().zip(strides).enumerate().rev() {
            s.dims[i] = d as u64;
            s.strides[i] = st as i64;
            if d != 1 && st != expected {
                contiguous = false;
            }
            expected *= d;
        }
        s.contiguous = contiguous as i32;
        Ok(s)
    }
}

/// Merges neighbouring dims that every operand can walk as one (`stride[d] = stride[d+1]·dim[d+1]`
/// for all of them) and drops size-1 dims, so most kernels see rank 1 or 2.
pub(crate) fn collapse(dims: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_d: Vec<usize> = Vec::new();
    let mut out_s: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let mergeable = !out_d.is_empty() && strides.iter().zip(&out_s).all(|(s, o)| *o.last().unwrap() == s[i] * d);
        if mergeable {
            *out_d.last_mut().unwrap() *= d;
            for (s, o) in strides.iter().zip(out_s.iter_mut()) {
                *o.last_mut().unwrap() = s[i];
            }
        } else {
            out_d.push(d);
            for (s, o) in strides.iter().zip(out_s.iter_mut()) {
                o.push(s[i]);
            }
        }
    }
    if out_d.is_empty() {
        out_d.push(1);
        for o in out_s.iter_mut() {
            o.push(1);
        }
    }
    (out_d, out_s)
}

/// Checks that every element `layout` addresses lies inside `storage`.
pub(crate) fn check_layout(op: &'static str, storage: &CudaStorage, layout: &Layout) -> Result<()> {
    if layout.dims().len() != layout.strides().len() {
        return shape_err(
            op,
            format!(
                "layout of shape {} has {} strides",
                layout.shape(),
                layout.strides().len()
            ),
        );
    }
    if layout.elem_count() == 0 {
        return Ok(());
    }
    let last: usize = layout.offset()
        + layout
            .dims()
            .iter()
            .zip(layout.strides())
            .map(|(&d, &s)| (d - 1) * s)
            .sum::<usize>();
    if last >= storage.len() {
        return shape_err(
            op,
            format!(
                "layout (shape {}, strides {:?}, offset {}) reaches element {last} of a buffer of {}",
                layout.shape(),
                layout.strides(),
                layout.offset(),
                storage.len()
            ),
        );
    }
    Ok(())
}

/// The device shared by all operands, or a device-mismatch error.
pub(crate) fn same_device(op: &'static str, first: &CudaStorage, others: &[&CudaStorage]) -> Result<Arc<CudaDevice>> {
    for o in others {
        if o.ordinal() != first.ordinal() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: first.device(),
                rhs: o.device(),
            });
        }
    }
    Ok(first.cuda_device().clone())
}

pub(crate) fn same_dtype(op: &'static str, a: DType, b: DType) -> Result<()> {
    if a != b {
        return Err(Error::DTypeMismatch { op, lhs: a, rhs: b });
    }
    Ok(())
}

pub(crate) fn float_only(op: &'static str, dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 => Ok(()),
        _ => Err(Error::UnsupportedDType { op, dtype }),
    }
}

/// The suffix of a kernel instantiated for `dtype` (`unary_f32`, ...).
pub(crate) fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => "i64",
    }
}

/// A grid-stride launch over `n` work items: 256 threads per block, at most 65 536 blocks.
pub(crate) fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 16) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row (softmax, block reductions), at most 65 536 blocks looping over the rest.
pub(crate) fn rows_grid(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 16) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A scalar kernel argument in the kernel's dtype.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar {
    F32(f32),
    F64(f64),
    I64(i64),
}

impl Scalar {
    pub(crate) fn new(dtype: DType, v: f64) -> Scalar {
        match dtype {
            DType::F32 => Scalar::F32(v as f32),
            DType::F64 => Scalar::F64(v),
            DType::I64 => Scalar::I64(v as i64),
        }
    }
}

/// Pushes a [`Scalar`] as the kernel argument of its own type.
pub(crate) fn push_scalar<'a>(b: &mut cudarc::driver::LaunchArgs<'a>, s: &'a Scalar) {
    use cudarc::driver::PushKernelArg;
    match s {
        Scalar::F32(v) => b.arg(v),
        Scalar::F64(v) => b.arg(v),
        Scalar::I64(v) => b.arg(v),
    };
}

/// Launches `b` with `cfg`, mapping a failure to an error naming `op`.
pub(crate) fn launch(
    dev: &CudaDevice,
    op: &'static str,
    b: &mut cudarc::driver::LaunchArgs<'_>,
    cfg: LaunchConfig,
) -> Result<()> {
    // SAFETY: every caller passes arguments that match its kernel's C signature, device
    // pointers of live buffers on this device, and sizes checked against those buffers.
    unsafe { b.launch(cfg) }
        .map(|_| ())
        .map_err(|e| dev.err(op, crate::cuda::context::Library::Driver, e))
}
