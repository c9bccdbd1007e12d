//! The GPU versions of the layer ops (feature `cuda`), each forward beside its backward, as
//! the CPU versions are in their own files. The CPU op checks the arguments and then hands a
//! tensor on a GPU to the function here; kernels are in `crate::cuda`.

use crate::cuda::CudaStorage;
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::{AvgPool2dOptions, Conv2dOptions, DType, Layout, MaxPool2dOptions, PaddingMode, Shape, Tensor};

/// A new tensor over a GPU result.
fn wrap(out: CudaStorage, shape: impl Into<Shape>) -> Tensor {
    Tensor::from_any_storage(Storage::Cuda(out), shape)
}

/// Runs `f` with the GPU storages and layouts of `ts` (all on one GPU).
fn with2<R>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl FnOnce(&CudaStorage, &Layout, &CudaStorage, &Layout) -> Result<R>,
) -> Result<R> {
    Tensor::same_device(op, &[a, b])?;
    let (sa, sb) = (a.storage(), b.storage());
    f(sa.cuda(op)?, a.layout(), sb.cuda(op)?, b.layout())
}

fn with3<R>(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    f: impl FnOnce(&CudaStorage, &Layout, &CudaStorage, &CudaStorage) -> Result<R>,
) -> Result<R> {
    Tensor::same_device(op, &[a, b, c])?;
    let (sa, sb, sc) = (a.storage(), b.storage(), c.storage());
    f(sa.cuda(op)?, a.layout(), sb.cuda(op)?, sc.cuda(op)?)
}

/// y = W ⋆ x (+ b) through cuDNN, any padding mode.  δx by backward-data, δW by
/// backward-filter, δb = Σ over n, h, w.
pub(crate) fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: &Conv2dOptions,
    out: Shape,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let y = with2(OP, x, weight, |xs, xl, ws, wl| {
        crate::cuda::cudnn::conv2d(xs, xl, ws, wl, opts)
    })?;
    let y = wrap(y, out);
    let (xd, wd, o) = (x.detach(), weight.detach(), *opts);
    let (tx, tw) = (x.tracks_grad(), weight.tracks_grad());
    let y = y.record(OP, &[x, weight], move |g| {
        let g = g.contiguous()?;
        let dx = if tx {
            let s = with2(OP, &g, &wd, |gs, _, ws, wl| {
                crate::cuda::cudnn::conv2d_backward_data(gs, ws, wl, xd.dims(), &o)
            })?;
            Some(wrap(s, xd.shape().clone()))
        } else {
            None
        };
        let dw = if tw {
            let s = with2(OP, &xd, &g, |xs, xl, gs, _| {
                crate::cuda::cudnn::conv2d_backward_filter(xs, xl, gs, wd.dims(), &o)
            })?;
            Some(wrap(s, wd.shape().clone()))
        } else {
            None
        };
        Ok(vec![dx, dw])
    });
    match bias {
        // The bias through a broadcasting add: its gradient is the add's (Σ over n, h, w).
        Some(b) => y.add(&b.reshape((1, b.elem_count(), 1, 1))?),
        None => Ok(y),
    }
}

/// Max pooling through cuDNN.  δx routes δ to each window's maximum.
pub(crate) fn max_pool2d(x: &Tensor, opts: &MaxPool2dOptions, out: Shape) -> Result<Tensor> {
    const OP: &str = "max_pool2d";
    let xc = x.contiguous()?.detach();
    let y = {
        let s = xc.storage();
        wrap(crate::cuda::cudnn::max_pool2d(s.cuda(OP)?, xc.layout(), opts)?, out)
    };
    let (yd, o) = (y.detach(), *opts);
    Ok(y.record(OP, &[x], move |g| {
        let g = g.contiguous()?;
        let dx = with3(OP, &xc, &yd, &g, |xs, xl, ys, gs| {
            crate::cuda::cudnn::max_pool2d_backward(xs, xl, ys, gs, &o)
        })?;
        Ok(vec![Some(wrap(dx, xc.shape().clone()))])
    }))
}

/// Average pooling through cuDNN.  δx spreads δ evenly over each window.
pub(crate) fn avg_pool2d(x: &Tensor, opts: &AvgPool2dOptions, out: Shape) -> Result<Tensor> {
    const OP: &str = "avg_pool2d";
    let xc = x.contiguous()?.detach();
    let y = {
        let s = xc.storage();
        wrap(crate::cuda::cudnn::avg_pool2d(s.cuda(OP)?, xc.layout(), opts)?, out)
    };
    let (yd, o) = (y.detach(), *opts);
    Ok(y.record(OP, &[x], move |g| {
        let g = g.contiguous()?;
        let dx = with3(OP, &xc, &yd, &g, |xs, xl, ys, gs| {
            crate::cuda::cudnn::avg_pool2d_backward(xs, xl, ys, gs, &o)
        })?;
        Ok(vec![Some(wrap(dx, xc.shape().clone()))])
    }))
}

/// Local response normalisation through cuDNN, with its backward.
pub(crate) fn local_response_norm(x: &Tensor, size: usize, alpha: f64, beta: f64, k: f64) -> Result<Tensor> {
    const OP: &str = "local_response_norm";
    let xc = x.contiguous()?.detach();
    let y = {
        let s = xc.storage();
        wrap(
            crate::cuda::cudnn::lrn(s.cuda(OP)?, xc.layout(), size, alpha, beta, k)?,
            xc.shape().clone(),
        )
    };
    let yd = y.detach();
    Ok(y.record(OP, &[x], move |g| {
        let g = g.contiguous()?;
        let dx = with3(OP, &xc, &yd, &g, |xs, xl, ys, gs| {
            crate::cuda::cudnn::lrn_backward(xs, xl, ys, gs, size, alpha, beta, k)
        })?;
        Ok(vec![Some(wrap(dx, xc.shape().clone()))])
    }))
}

/// Padding in any mode by the pad kernel.  δx folds δ back (adds the mirrored/replicated parts).
pub(crate) fn pad2d(x: &Tensor, sides: [usize; 4], mode: PaddingMode, out: Shape) -> Result<Tensor> {
    const OP: &str = "pad2d";
    let [top, bottom, left, right] = sides;
    let pad = (top, bottom, left, right);
    let y = {
        let s = x.storage();
        wrap(crate::cuda::ops::pad2d(s.cuda(OP)?, x.layout(), pad, mode)?, out)
    };
    let dims = x.dims().to_vec();
    Ok(y.record(OP, &[x], move |g| {
        let g = g.contiguous()?;
        let s = g.storage();
        let dx = crate::cuda::ops::pad2d_backward(s.cuda(OP)?, &dims, pad, mode)?;
        Ok(vec![Some(wrap(dx, dims.clone()))])
    }))
}

/// A dropout mask of 0 and 1/(1 − p) in `dtype` on GPU `ordinal`, from Philox with the seed
/// and offset drawn from the host generator (so a seeded run draws the same masks).
pub(crate) fn dropout_mask(ordinal: usize, shape: &Shape, p: f64, dtype: DType, seed: u64) -> Result<Tensor> {
    let s = crate::cuda::ops::dropout_mask(ordinal, dtype, shape.elem_count(), p, seed, 0)?;
    Ok(wrap(s, shape.clone()))
}

/// Conversion between dtypes on the GPU.
pub(crate) fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let s = x.storage();
    Ok(wrap(
        crate::cuda::ops::cast(s.cuda("to_dtype")?, x.layout(), dtype)?,
        x.shape().clone(),
    ))
}

/// where(mask, a, b) with all three broadcast to `shape`.  δa = δ·m, δb = δ·(1 − m).
pub(crate) fn where_cond(mask: &Tensor, a: &Tensor, b: &Tensor, shape: Shape) -> Result<Tensor> {
    const OP: &str = "where";
    let device = Tensor::same_device(OP, &[a, b])?;
    let mask = mask.to_device(device)?.detach();
    let (m, ab, bb) = (
        mask.broadcast_to(&shape)?,
        a.broadcast_to(&shape)?,
        b.broadcast_to(&shape)?,
    );
    let out = {
        let (sm, sa, sb) = (m.storage(), ab.storage(), bb.storage());
        crate::cuda::ops::where_cond(
            sm.cuda(OP)?,
            m.layout(),
            sa.cuda(OP)?,
            ab.layout(),
            sb.cuda(OP)?,
            bb.layout(),
        )?
    };
    let out = wrap(out, shape);
    let keep = m.ne_scalar(0.0)?.to_dtype(a.dtype())?;
    let (sa, sb) = (a.shape().clone(), b.shape().clone());
    Ok(out.record(OP, &[a, b], move |g| {
        let ga = g.mul(&keep)?.sum_to_shape(&sa)?;
        let gb = g.mul(&keep.rsub_scalar(1.0)?)?.sum_to_shape(&sb)?;
        Ok(vec![Some(ga), Some(gb)])
    }))
}

/// Copies `src` into `dst`'s storage through `dst`'s layout (any dtype conversion included).
pub(crate) fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    const OP: &str = "copy_";
    let src = src.to_device(dst.device())?.detach();
    // NOTE: a copy when source and destination share the buffer (the write guard below would
    // otherwise wait on the read guard of the same lock).
    let src = if src.same_storage(dst) {
        src.contiguous_copy()?
    } else {
        src
    };
    let s = src.storage();
    let mut d = dst.storage_mut();
    let Storage::Cuda(d) = &mut *d else {
        return Err(Error::Unimplemented {
            op: OP,
            device: dst.device(),
        });
    };
    crate::cuda::ops::copy_strided(s.cuda(OP)?, src.layout(), d, dst.layout())
}

/// The fused optimiser updates on the GPU (same formulas and order as the CPU's).
pub(crate) fn sgd_update(p: &Tensor, g: &Tensor, buffer: Option<&Tensor>, u: &crate::SgdUpdate) -> Result<()> {
    const OP: &str = "sgd_update_";
    let g = g.to_device(p.device())?.contiguous()?;
    let gs = g.storage();
    let mut ps = p.storage_mut();
    let Storage::Cuda(pc) = &mut *ps else {
        return Err(Error::Unimplemented {
            op: OP,
            device: p.device(),
        });
    };
    match buffer {
        Some(b) => {
            let mut bs = b.storage_mut();
            let Storage::Cuda(bc) = &mut *bs else {
                return Err(Error::DeviceMismatch {
                    op: OP,
                    lhs: p.device(),
                    rhs: b.device(),
                });
            };
            crate::cuda::ops::sgd_update(pc, gs.cuda(OP)?, Some(bc), u)
        }
        None => crate::cuda::ops::sgd_update(pc, gs.cuda(OP)?, None, u),
    }
}

pub(crate) fn adam_update(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    v_max: Option<&Tensor>,
    u: &crate::AdamUpdate,
) -> Result<()> {
    const OP: &str = "adam_update_";
    let g = g.to_device(p.device())?.contiguous()?;
    let gs = g.storage();
    let (mut ps, mut ms, mut vs) = (p.storage_mut(), m.storage_mut(), v.storage_mut());
    let (Storage::Cuda(pc), Storage::Cuda(mc), Storage::Cuda(vc)) = (&mut *ps, &mut *ms, &mut *vs) else {
        return Err(Error::Unimplemented {
            op: OP,
            device: p.device(),
        });
    };
    match v_max {
        Some(vm) => {
            let mut vms = vm.storage_mut();
            let Storage::Cuda(vmc) = &mut *vms else {
                return Err(Error::DeviceMismatch {
                    op: OP,
                    lhs: p.device(),
                    rhs: vm.device(),
                });
            };
            crate::cuda::ops::adam_update(pc, gs.cuda(OP)?, mc, vc, Some(vmc), u)
        }
        None => crate::cuda::ops::adam_update(pc, gs.cuda(OP)?, mc, vc, None, u),
    }
}
