//! Reductions over a set of dims with keep-dim output (kernels in `kernels::reduce`).

use cudarc::driver::PushKernelArg;

use super::{Strided, check_layout, collapse, grid, launch, rows_grid, suffix};
use crate::backend::params::ReduceOp;
use crate::cuda::kernels::reduce::REDUCE;
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result, arg_err};
use crate::shape::Layout;

/// Reduces `x` (seen through `layout`) over `dims`, giving the keep-dim shape (each reduced dim
/// becomes 1), contiguous. Sums accumulate in the input dtype; arg ops give i64.
///
/// Short reductions (< 64 elements per output) use one thread per output, longer ones one
/// block per output.
pub fn reduce(op: ReduceOp, x: &CudaStorage, layout: &Layout, dims: &[usize]) -> Result<CudaStorage> {
    const OP: &str = "cuda::reduce";
    check_layout(OP, x, layout)?;
    let shape = layout.dims();
    let mut reduced = vec![false; shape.len()];
    for &d in dims {
        if d >= shape.len() {
            return Err(Error::DimOutOfRange {
                op: OP,
                dim: d as isize,
                shape: layout.shape().clone(),
            });
        }
        reduced[d] = true;
    }
    if op == ReduceOp::Mean && x.dtype() == DType::I64 {
        return Err(Error::UnsupportedDType {
            op: OP,
            dtype: x.dtype(),
        });
    }
    let out_dims: Vec<usize> = shape
        .iter()
        .zip(&reduced)
        .map(|(&n, &r)| if r { 1 } else { n })
        .collect();
    let n_out: usize = out_dims.iter().product();
    let r: usize = shape.iter().zip(&reduced).filter(|p| *p.1).map(|p| *p.0).product();
    let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
    if r == 0 && !matches!(op, ReduceOp::Sum | ReduceOp::Mean) && n_out > 0 {
        return arg_err(OP, format!("{op:?} over an empty dim of shape {}", layout.shape()));
    }
    let dev = x.cuda_device().clone();
    let out_dtype = if arg { DType::I64 } else { x.dtype() };
    let y = CudaStorage::uninit(&dev, OP, out_dtype, n_out)?;
    if n_out == 0 {
        return Ok(y);
    }
    // Kept dims walk the output (reduced dims have size 1 there); reduced dims walk `r`.
    let kept_strides: Vec<usize> = layout.strides().to_vec();
    let (kd, ks) = collapse(&out_dims, &[&kept_strides]);
    let sk = Strided::new(OP, &kd, &ks[0])?;
    let red_dims: Vec<usize> = shape.iter().zip(&reduced).filter(|p| *p.1).map(|p| *p.0).collect();
    let red_strides: Vec<usize> = layout
        .strides()
        .iter()
        .zip(&reduced)
        .filter(|p| *p.1)
        .map(|p| *p.0)
        .collect();
    let (rd, rs) = collapse(&red_dims, &[&red_strides]);
    let sr = Strided::new(OP, &rd, &rs[0])?;
    let code: i32 = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
        ReduceOp::ArgMax => 4,
        ReduceOp::ArgMin => 5,
    };
    let block = r >= 64;
    let name = format!(
        "reduce_{}_{}",
        if block { "block" } else { "thread" },
        suffix(x.dtype())
    );
    let f = dev.function(OP, &REDUCE, &name)?;
    // The kernel writes y (values) or yi (indices); the other pointer is never touched.
    let (py, pyi) = if arg {
        (0u64, y.device_ptr())
    } else {
        (y.device_ptr(), 0u64)
    };
    let (n64, r64, px) = (n_out as u64, r as u64, x.elem_ptr(layout.offset()));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&code)
        .arg(&n64)
        .arg(&r64)
        .arg(&sk)
        .arg(&sr)
        .arg(&px)
        .arg(&py)
        .arg(&pyi);
    launch(&dev, OP, &mut l, if block { rows_grid(n_out) } else { grid(n_out) })?;
    Ok(y)
}
