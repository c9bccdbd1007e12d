//! Max and average pooling over the last two dims of `[N, C, H, W]`, forward and backward.
//!
//! ```text
//! max:  y[n,c,i,j] = max_{p,q} x[n, c, i·s_h + p − pad_h, j·s_w + q − pad_w]   (padding never wins)
//!       δx gets δy at the arg max of each window (ties: cuDNN's choice)
//! avg:  y = Σ window / count, count = kh·kw (padding included) or the in-bounds taps (excluded)
//! ```
//! cuDNN pools with symmetric padding, no dilation, and floor-mode output sizes; options that
//! need more (dilation ≠ 1, a ceil-mode size that differs from the floor-mode one, a divisor
//! override) are `Unimplemented` here and must be handled before calling.

use cudarc::cudnn::sys;

use super::{Scaling, TensorDesc, check, check_len, data_type, nchw, ptr, ptr_mut, to_i32};
use crate::cuda::context::CudaDevice;
use crate::cuda::ops::{contiguous, same_device, same_dtype};
use crate::cuda::storage::CudaStorage;
use crate::device::Device;
use crate::error::{Error, Result, arg_err, shape_err};
use crate::ops::{AvgPool2dOptions, MaxPool2dOptions};
use crate::shape::Layout;

struct PoolDesc(sys::cudnnPoolingDescriptor_t);
impl Drop for PoolDesc {
    fn drop(&mut self) {
        // SAFETY: created by cudnnCreatePoolingDescriptor and destroyed once.
        unsafe { sys::cudnnDestroyPoolingDescriptor(self.0) };
    }
}

/// What cuDNN needs for one pooling: mode, window, padding, stride.
#[derive(Debug, Clone, Copy)]
struct Pool {
    mode: sys::cudnnPoolingMode_t,
    kernel: [usize; 2],
    pad: [usize; 2],
    stride: [usize; 2],
}

fn out_size(op: &'static str, device: Device, x: [usize; 4], p: &Pool, ceil: bool) -> Result<[usize; 4]> {
    let mut y = [x[0], x[1], 0, 0];
    for d in 0..2 {
        let (size, k, pad, s) = (x[2 + d], p.kernel[d], p.pad[d], p.stride[d]);
        if k == 0 || s == 0 || 2 * pad > k {
            return arg_err(
                op,
                format!("kernel {:?}, stride {:?}, padding {:?}", p.kernel, p.stride, p.pad),
            );
        }
        if size + 2 * pad < k {
            return shape_err(op, format!("window {:?} larger than the padded input {x:?}", p.kernel));
        }
        let floor = (size + 2 * pad - k) / s + 1;
        if ceil {
            let mut c = (size + 2 * pad - k).div_ceil(s) + 1;
            // PyTorch: the last window must start inside the input or the left padding.
            if (c - 1) * s >= size + pad {
                c -= 1;
            }
            if c != floor {
                return Err(Error::Unimplemented {
                    op: "max/avg_pool2d with ceil_mode changing the output size",
                    device,
                });
            }
        }
        y[2 + d] = floor;
    }
    Ok(y)
}

fn pool_desc(dev: &CudaDevice, op: &'static str, p: &Pool) -> Result<PoolDesc> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: out-pointer to a fresh descriptor; freed by Drop.
    check(dev, op, unsafe { sys::cudnnCreatePoolingDescriptor(&mut raw) })?;
    let d = PoolDesc(raw);
    check(dev, op, unsafe {
        sys::cudnnSetPooling2dDescriptor(
            raw,
            p.mode,
            sys::cudnnNanPropagation_t::CUDNN_PROPAGATE_NAN,
            to_i32(op, p.kernel[0])?,
            to_i32(op, p.kernel[1])?,
            to_i32(op, p.pad[0])?,
            to_i32(op, p.pad[1])?,
            to_i32(op, p.stride[0])?,
            to_i32(op, p.stride[1])?,
        )
    })?;
    Ok(d)
}

fn forward(op: &'static str, x: &CudaStorage, xl: &Layout, p: &Pool, ceil: bool) -> Result<CudaStorage> {
    data_type(op, x.dtype())?;
    crate::cuda::ops::check_layout(op, x, xl)?;
    let xdims = nchw(op, "input", xl.dims())?;
    let xc = if xl.is_contiguous() && xl.offset() == 0 {
        None
    } else {
        Some(contiguous(x, xl)?)
    };
    let x = xc.as_ref().unwrap_or(x);
    let ydims = out_size(op, x.device(), xdims, p, ceil)?;
    let dev = x.cuda_device().clone();
    let y = CudaStorage::uninit(&dev, op, x.dtype(), ydims.iter().product())?;
    if y.is_empty() || xdims.iter().product::<usize>() == 0 {
        return Ok(y);
    }
    let (xd, yd, pd) = (
        TensorDesc::new(&dev, op, x.dtype(), xdims)?,
        TensorDesc::new(&dev, op, x.dtype(), ydims)?,
        pool_desc(&dev, op, p)?,
    );
    let k = Scaling::new(x.dtype(), 0.0);
    dev.with_cudnn(op, |h| {
        // SAFETY: live contiguous buffers matching the descriptors.
        check(&dev, op, unsafe {
            sys::cudnnPoolingForward(h, pd.0, k.alpha(), xd.0, ptr(x), k.beta(), yd.0, ptr_mut(&y))
        })
    })?;
    Ok(y)
}

fn backward(
    op: &'static str,
    x: &CudaStorage,
    xl: &Layout,
    y: &CudaStorage,
    dy: &CudaStorage,
    p: &Pool,
    ceil: bool,
) -> Result<CudaStorage> {
    data_type(op, x.dtype())?;
    same_dtype(op, x.dtype(), dy.dtype())?;
    same_dtype(op, x.dtype(), y.dtype())?;
    let dev = same_device(op, x, &[y, dy])?;
    crate::cuda::ops::check_layout(op, x, xl)?;
    let xdims = nchw(op, "input", xl.dims())?;
    let xc = if xl.is_contiguous() && xl.offset() == 0 {
        None
    } else {
        Some(contiguous(x, xl)?)
    };
    let x = xc.as_ref().unwrap_or(x);
    let ydims = out_size(op, x.device(), xdims, p, ceil)?;
    check_len(op, "y", y, &ydims)?;
    check_len(op, "δy", dy, &ydims)?;
    let dx = CudaStorage::zeros(x.ordinal(), x.dtype(), xdims.iter().product())?;
    if y.is_empty() || dx.is_empty() {
        return Ok(dx);
    }
    let (xd, yd, pd) = (
        TensorDesc::new(&dev, op, x.dtype(), xdims)?,
        TensorDesc::new(&dev, op, x.dtype(), ydims)?,
        pool_desc(&dev, op, p)?,
    );
    let k = Scaling::new(x.dtype(), 0.0);
    dev.with_cudnn(op, |h| {
        // SAFETY: live contiguous buffers matching the descriptors.
        check(&dev, op, unsafe {
            sys::cudnnPoolingBackward(
                h,
                pd.0,
                k.alpha(),
                yd.0,
                ptr(y),
                yd.0,
                ptr(dy),
                xd.0,
                ptr(x),
                k.beta(),
                xd.0,
                ptr_mut(&dx),
            )
        })
    })?;
    Ok(dx)
}

fn max_pool(device: Device, o: &MaxPool2dOptions) -> Result<Pool> {
    if o.dilation != [1, 1] {
        return Err(Error::Unimplemented {
            op: "max_pool2d with dilation ≠ 1 (cuDNN)",
            device,
        });
    }
    Ok(Pool {
        mode: sys::cudnnPoolingMode_t::CUDNN_POOLING_MAX_DETERMINISTIC,
        kernel: o.kernel,
        pad: o.padding,
        stride: o.stride,
    })
}

fn avg_pool(device: Device, o: &AvgPool2dOptions) -> Result<Pool> {
    if o.divisor_override.is_some() {
        return Err(Error::Unimplemented {
            op: "avg_pool2d with divisor_override (cuDNN)",
            device,
        });
    }
    Ok(Pool {
        mode: if o.count_include_pad {
            sys::cudnnPoolingMode_t::CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
        } else {
            sys::cudnnPoolingMode_t::CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING
        },
        kernel: o.kernel,
        pad: o.padding,
        stride: o.stride,
    })
}

/// Max pooling of `x` `[N, C, H, W]`; contiguous output.
pub fn max_pool2d(x: &CudaStorage, xl: &Layout, o: &MaxPool2dOptions) -> Result<CudaStorage> {
    const OP: &str = "cuda::max_pool2d";
    forward(OP, x, xl, &max_pool(x.device(), o)?, o.ceil_mode)
}

/// δx of [`max_pool2d`] from the input, the forward output `y` and δy (both contiguous).
pub fn max_pool2d_backward(
    x: &CudaStorage,
    xl: &Layout,
    y: &CudaStorage,
    dy: &CudaStorage,
    o: &MaxPool2dOptions,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::max_pool2d_backward";
    backward(OP, x, xl, y, dy, &max_pool(x.device(), o)?, o.ceil_mode)
}

/// Average pooling of `x` `[N, C, H, W]`; contiguous output.
pub fn avg_pool2d(x: &CudaStorage, xl: &Layout, o: &AvgPool2dOptions) -> Result<CudaStorage> {
    forward("cuda::avg_pool2d", x, xl, &avg_pool(x.device(), o)?, o.ceil_mode)
}

/// δx of [`avg_pool2d`] (cuDNN's API also takes `x` and `y`, which average pooling ignores).
pub fn avg_pool2d_backward(
    x: &CudaStorage,
    xl: &Layout,
    y: &CudaStorage,
    dy: &CudaStorage,
    o: &AvgPool2dOptions,
) -> Result<CudaStorage> {
    backward(
        "cuda::avg_pool2d_backward",
        x,
        xl,
        y,
        dy,
        &avg_pool(x.device(), o)?,
        o.ceil_mode,
    )
}
