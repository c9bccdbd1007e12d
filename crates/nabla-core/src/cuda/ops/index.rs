//! Indexing along one dim (kernels in `kernels::index`): `index_select`/`index_add`,
//! `gather`/`scatter_add`, and a device-side bounds check.

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::{Strided, check_layout, collapse, contiguous, grid, launch, same_device, same_dtype, suffix};
use crate::cuda::kernels::index::INDEX;
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::shape::Layout;

fn indices_i64(op: &'static str, idx: &CudaStorage) -> Result<()> {
    if idx.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType { op, dtype: idx.dtype() });
    }
    Ok(())
}

fn dim_in(op: &'static str, dims: &[usize], dim: usize) -> Result<()> {
    if dim >= dims.len() {
        return Err(Error::DimOutOfRange {
            op,
            dim: dim as isize,
            shape: dims.into(),
        });
    }
    Ok(())
}

/// `Ok` when every index lies in `[0, size)`, else an `IndexOutOfRange` error naming the
/// offending extreme. Costs one small kernel and a synchronisation (2 numbers come back).
pub fn check_indices(op: &'static str, indices: &CudaStorage, dim: usize, size: usize) -> Result<()> {
    indices_i64(op, indices)?;
    if indices.is_empty() {
        return Ok(());
    }
    let dev = indices.cuda_device().clone();
    let out = CudaStorage::uninit(&dev, op, DType::I64, 2)?;
    let f = dev.function(op, &INDEX, "index_min_max")?;
    let (n, pi, po) = (indices.len() as u64, indices.device_ptr(), out.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n).arg(&pi).arg(&po);
    let one_block = LaunchConfig {
        grid_dim: (1, 1, 1),
        block_dim: (super::BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    launch(&dev, op, &mut l, one_block)?;
    let (lo, hi) = match out.to_cpu()? {
        crate::storage::CpuStorage::I64(v) => (v[0], v[1]),
        _ => unreachable!("allocated as i64"),
    };
    for bad in [lo, hi] {
        if bad < 0 || bad as u64 >= size as u64 {
            return Err(Error::IndexOutOfRange {
                op,
                index: bad,
                dim,
                size,
            });
        }
    }
    Ok(())
}

/// `y` = the entries `indices` (1-D i64) of `x` along `dim`; `y` is contiguous with
/// `dims[dim] = indices.len()`. An out-of-range index reads NaN (0 for i64); see [`check_indices`].
pub fn index_select(x: &CudaStorage, xl: &Layout, dim: usize, indices: &CudaStorage) -> Result<CudaStorage> {
    const OP: &str = "cuda::index_select";
    check_layout(OP, x, xl)?;
    indices_i64(OP, indices)?;
    let dev = same_device(OP, x, &[indices])?;
    let dims = xl.dims();
    dim_in(OP, dims, dim)?;
    let xc;
    let (x, off) = if xl.is_contiguous() {
        (x, xl.offset())
    } else {
        xc = contiguous(x, xl)?;
        (&xc, 0)
    };
    let (outer, size, inner) = (
        dims[..dim].iter().product::<usize>(),
        dims[dim],
        dims[dim + 1..].iter().product::<usize>(),
    );
    let m = indices.len();
    let n = outer * m * inner;
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let f = dev.function(OP, &INDEX, &format!("index_select_{}", suffix(x.dtype())))?;
    let a = [n as u64, inner as u64, size as u64, m as u64];
    let (px, pi, py) = (x.elem_ptr(off), indices.device_ptr(), y.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    for v in &a {
        l.arg(v);
    }
    l.arg(&px).arg(&pi).arg(&py);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(y)
}

/// In place, the adjoint of [`index_select`]: `dst[.., indices[j], ..] += src[.., j, ..]` for a
/// contiguous `dst` of shape `dst_dims` and a contiguous `src` with `dims[dim] = indices.len()`.
/// f32/f64; out-of-range indices are skipped.
pub fn index_add(
    dst: &mut CudaStorage,
    dst_dims: &[usize],
    dim: usize,
    indices: &CudaStorage,
    src: &CudaStorage,
) -> Result<()> {
    const OP: &str = "cuda::index_add";
    same_dtype(OP, dst.dtype(), src.dtype())?;
    indices_i64(OP, indices)?;
    let dev = same_device(OP, dst, &[indices, src])?;
    dim_in(OP, dst_dims, dim)?;
    let (outer, size, inner) = (
        dst_dims[..dim].iter().product::<usize>(),
        dst_dims[dim],
        dst_dims[dim + 1..].iter().product::<usize>(),
    );
    let m = indices.len();
    let n = outer * m * inner;
    if dst.len() != outer * size * inner || src.len() != n {
        return shape_err(
            OP,
            format!(
                "dst of {} elements for {dst_dims:?}, src of {} for {m} indices",
                dst.len(),
                src.len()
            ),
        );
    }
    if n == 0 {
        return Ok(());
    }
    let f = dev.function(OP, &INDEX, &format!("index_add_{}", suffix(dst.dtype())))?;
    let a = [n as u64, inner as u64, size as u64, m as u64];
    let (ps, pi, pd) = (src.device_ptr(), indices.device_ptr(), dst.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    for v in &a {
        l.arg(v);
    }
    l.arg(&ps).arg(&pi).arg(&pd);
    launch(&dev, OP, &mut l, grid(n))
}

/// The index's positions mapped into a contiguous `x_dims` buffer with dim `dim`'s stride
/// zeroed (the kernel adds `index · stride`), and that stride.
fn gather_map(op: &'static str, x_dims: &[usize], index_dims: &[usize], dim: usize) -> Result<(Strided, u64)> {
    dim_in(op, x_dims, dim)?;
    let bad = index_dims.len() != x_dims.len()
        || index_dims
            .iter()
            .zip(x_dims)
            .enumerate()
            .any(|(i, (a, b))| i != dim && a > b);
    if bad {
        return shape_err(
            op,
            format!("index {index_dims:?} does not fit input {x_dims:?} along dimension {dim}"),
        );
    }
    let mut strides = vec![1usize; x_dims.len()];
    for i in (0..x_dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * x_dims[i + 1];
    }
    let xs_d = strides[dim] as u64;
    strides[dim] = 0;
    // NOTE: `collapse` merges two dims only where x's strides walk them as one over the index's
    // extent, so an index narrower than x (or the zeroed stride of `dim`) is never merged away.
    let (d, s) = collapse(index_dims, &[&strides]);
    Ok((Strided::new(op, &d, &s[0])?, xs_d))
}

/// `y[p] = x[p with p_dim ← index[p]]` (`torch.gather`): `y` has `index_dims`, contiguous.
/// `index` is a contiguous i64 buffer. An out-of-range index reads NaN (0 for i64).
pub fn gather(
    x: &CudaStorage,
    xl: &Layout,
    dim: usize,
    index: &CudaStorage,
    index_dims: &[usize],
) -> Result<CudaStorage> {
    const OP: &str = "cuda::gather";
    check_layout(OP, x, xl)?;
    indices_i64(OP, index)?;
    let dev = same_device(OP, x, &[index])?;
    let (si, xs_d) = gather_map(OP, xl.dims(), index_dims, dim)?;
    let n: usize = index_dims.iter().product();
    if index.len() != n {
        return shape_err(OP, format!("index has {} elements for {index_dims:?}", index.len()));
    }
    let xc;
    let (x, off) = if xl.is_contiguous() {
        (x, xl.offset())
    } else {
        xc = contiguous(x, xl)?;
        (&xc, 0)
    };
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let f = dev.function(OP, &INDEX, &format!("gather_{}", suffix(x.dtype())))?;
    let (n64, size) = (n as u64, xl.dims()[dim] as u64);
    let (px, pi, py) = (x.elem_ptr(off), index.device_ptr(), y.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&si).arg(&xs_d).arg(&size).arg(&px).arg(&pi).arg(&py);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(y)
}

/// In place, the adjoint of [`gather`]: `dst[p with p_dim ← index[p]] += src[p]` for a contiguous
/// `dst` of shape `dst_dims` and contiguous `index`/`src` of `index_dims`. f32/f64.
pub fn scatter_add(
    dst: &mut CudaStorage,
    dst_dims: &[usize],
    dim: usize,
    index: &CudaStorage,
    index_dims: &[usize],
    src: &CudaStorage,
) -> Result<()> {
    const OP: &str = "cuda::scatter_add";
    same_dtype(OP, dst.dtype(), src.dtype())?;
    indices_i64(OP, index)?;
    let dev = same_device(OP, dst, &[index, src])?;
    let (si, xs_d) = gather_map(OP, dst_dims, index_dims, dim)?;
    let n: usize = index_dims.iter().product();
    if index.len() != n || src.len() != n || dst.len() != dst_dims.iter().product::<usize>() {
        return shape_err(
            OP,
            format!(
                "dst {} elements for {dst_dims:?}; index {} and src {} for {index_dims:?}",
                dst.len(),
                index.len(),
                src.len()
            ),
        );
    }
    if n == 0 {
        return Ok(());
    }
    let f = dev.function(OP, &INDEX, &format!("scatter_add_{}", suffix(dst.dtype())))?;
    let (n64, size) = (n as u64, dst_dims[dim] as u64);
    let (ps, pi, pd) = (src.device_ptr(), index.device_ptr(), dst.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&si).arg(&xs_d).arg(&size).arg(&ps).arg(&pi).arg(&pd);
    launch(&dev, OP, &mut l, grid(n))
}
