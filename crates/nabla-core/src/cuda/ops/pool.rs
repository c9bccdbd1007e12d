//! Pooling and LRN launches (kernels in `kernels::pool`), with the CPU's geometry.

use cudarc::driver::{DeviceRepr, PushKernelArg};

use super::{Scalar, float_only, grid, launch, push_scalar, same_device, suffix};
use crate::backend::params::{LrnParams, PoolGeometry, PoolKind};
use crate::cuda::kernels::pool::POOL;
use crate::cuda::storage::CudaStorage;
use crate::error::{Result, arg_err, shape_err};

/// Mirrors `struct PoolGeom` in `kernels::pool::POOL` (twelve ints).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct PoolGeom([i32; 12]);

// SAFETY: plain old data with the C layout the kernels declare.
unsafe impl DeviceRepr for PoolGeom {}

fn geom(op: &'static str, g: &PoolGeometry) -> Result<PoolGeom> {
    let v = [
        g.h,
        g.w,
        g.oh,
        g.ow,
        g.kernel[0],
        g.kernel[1],
        g.stride[0],
        g.stride[1],
        g.padding[0],
        g.padding[1],
        g.dilation[0],
        g.dilation[1],
    ];
    if g.h.checked_mul(g.w).is_none_or(|hw| hw > i32::MAX as usize)
        || g.oh.checked_mul(g.ow).is_none_or(|hw| hw > i32::MAX as usize)
    {
        return arg_err(
            op,
            format!("a {}×{} plane exceeds the GPU kernels' i32 indexing", g.h, g.w),
        );
    }
    let mut out = [0i32; 12];
    for (o, &x) in out.iter_mut().zip(&v) {
        *o = i32::try_from(x)
            .or_else(|_| arg_err(op, format!("pooling size {x} exceeds the GPU kernels' i32 range")))?;
    }
    Ok(PoolGeom(out))
}

/// (kind code, count_include_pad, divisor override or 0).
fn kind_args(kind: PoolKind) -> (i32, i32, i32) {
    match kind {
        PoolKind::Max => (0, 0, 0),
        PoolKind::Avg {
            count_include_pad,
            divisor_override,
        } => (
            1,
            count_include_pad as i32,
            divisor_override.unwrap_or(0).min(i32::MAX as usize) as i32,
        ),
        PoolKind::AdaptiveAvg => (2, 0, 0),
    }
}

fn check_len(op: &'static str, what: &str, s: &CudaStorage, off: usize, n: usize) -> Result<()> {
    if off + n > s.len() {
        return shape_err(
            op,
            format!("{what} of {} elements from {off} is shorter than {n}", s.len()),
        );
    }
    Ok(())
}

/// Pools contiguous planes of `x` starting at element `off`.
pub fn pool2d(x: &CudaStorage, off: usize, kind: PoolKind, g: &PoolGeometry) -> Result<CudaStorage> {
    const OP: &str = "cuda::pool2d";
    float_only(OP, x.dtype())?;
    check_len(OP, "input", x, off, g.planes * g.h * g.w)?;
    let dev = x.cuda_device().clone();
    let n = g.planes * g.oh * g.ow;
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let (gm, (k, pad, div)) = (geom(OP, g)?, kind_args(kind));
    let f = dev.function(OP, &POOL, &format!("pool_fwd_{}", suffix(x.dtype())))?;
    let (n64, px, py) = (n as u64, x.elem_ptr(off), y.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&k).arg(&gm).arg(&pad).arg(&div).arg(&px).arg(&py);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(y)
}

/// δx of [`pool2d`] from x (at `x_off`) and contiguous δy (at `dy_off`).
pub fn pool2d_backward(
    x: &CudaStorage,
    x_off: usize,
    dy: &CudaStorage,
    dy_off: usize,
    kind: PoolKind,
    g: &PoolGeometry,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::pool2d_backward";
    float_only(OP, x.dtype())?;
    let dev = same_device(OP, x, &[dy])?;
    check_len(OP, "input", x, x_off, g.planes * g.h * g.w)?;
    let n = g.planes * g.oh * g.ow;
    check_len(OP, "δy", dy, dy_off, n)?;
    let dx = CudaStorage::zeros(x.ordinal(), x.dtype(), g.planes * g.h * g.w)?;
    if n == 0 {
        return Ok(dx);
    }
    let (gm, (k, pad, div)) = (geom(OP, g)?, kind_args(kind));
    let f = dev.function(OP, &POOL, &format!("pool_bwd_{}", suffix(x.dtype())))?;
    let (n64, px, pdy, pdx) = (n as u64, x.elem_ptr(x_off), dy.elem_ptr(dy_off), dx.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&k)
        .arg(&gm)
        .arg(&pad)
        .arg(&div)
        .arg(&px)
        .arg(&pdy)
        .arg(&pdx);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(dx)
}

/// LRN of contiguous x (at `off`): (b, s).
pub fn lrn(x: &CudaStorage, off: usize, p: &LrnParams) -> Result<(CudaStorage, CudaStorage)> {
    const OP: &str = "cuda::lrn";
    float_only(OP, x.dtype())?;
    let n = p.n * p.c * p.s;
    check_len(OP, "input", x, off, n)?;
    let dev = x.cuda_device().clone();
    let (y, scale) = (
        CudaStorage::uninit(&dev, OP, x.dtype(), n)?,
        CudaStorage::uninit(&dev, OP, x.dtype(), n)?,
    );
    if n == 0 {
        return Ok((y, scale));
    }
    let f = dev.function(OP, &POOL, &format!("lrn_fwd_{}", suffix(x.dtype())))?;
    let (c, size) = (p.c as i32, p.size as i32);
    let (n64, s64) = (n as u64, p.s as u64);
    let sc = [p.alpha, p.beta, p.k].map(|v| Scalar::new(x.dtype(), v));
    let (px, py, ps) = (x.elem_ptr(off), y.device_ptr(), scale.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&c).arg(&s64).arg(&size);
    for v in &sc {
        push_scalar(&mut l, v);
    }
    l.arg(&px).arg(&py).arg(&ps);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok((y, scale))
}

/// δa of [`lrn`] from a (at `x_off`), s, and δb (at `dy_off`).
pub fn lrn_backward(
    x: &CudaStorage,
    x_off: usize,
    scale: &CudaStorage,
    dy: &CudaStorage,
    dy_off: usize,
    p: &LrnParams,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::lrn_backward";
    float_only(OP, x.dtype())?;
    let dev = same_device(OP, x, &[scale, dy])?;
    let n = p.n * p.c * p.s;
    check_len(OP, "input", x, x_off, n)?;
    check_len(OP, "scale", scale, 0, n)?;
    check_len(OP, "δy", dy, dy_off, n)?;
    let dx = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(dx);
    }
    let f = dev.function(OP, &POOL, &format!("lrn_bwd_{}", suffix(x.dtype())))?;
    let (c, size) = (p.c as i32, p.size as i32);
    let (n64, s64) = (n as u64, p.s as u64);
    let sc = [p.alpha, p.beta].map(|v| Scalar::new(x.dtype(), v));
    let (px, ps, pdy, pdx) = (
        x.elem_ptr(x_off),
        scale.device_ptr(),
        dy.elem_ptr(dy_off),
        dx.device_ptr(),
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&c).arg(&s64).arg(&size);
    for v in &sc {
        push_scalar(&mut l, v);
    }
    l.arg(&px).arg(&ps).arg(&pdy).arg(&pdx);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(dx)
}
