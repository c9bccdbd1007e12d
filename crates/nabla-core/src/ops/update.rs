//! Fused, in-place optimiser updates: one pass over a parameter, its gradient and its state
//! (PyTorch's "foreach"/fused optimisers). Written op by op, one SGD step with momentum reads
//! and writes each parameter six times and allocates five temporaries; here it is one loop.
//!
//! Nothing is recorded for autograd: these are `p.data` updates. The arithmetic is rounded in
//! the same order as PyTorch's reference (non-fused) optimisers, so trajectories agree with the
//! fixtures to the last bits of f32 (no fused multiply-adds are introduced).

use crate::Tensor;
use crate::error::{Result, arg_err};
use crate::storage::CpuStorage;
use rayon::prelude::*;

/// Elements per task when an update is split across threads.
const PARALLEL_CHUNK: usize = 1 << 15;

/// One SGD step for one parameter tensor (Sutskever et al., 2013; PyTorch's `torch.optim.SGD`):
///
/// ```text
/// d ← g + λ·p                      (coupled L2, the gradient of J + λ/2‖p‖²)
/// b ← μ·b + c·d                    (momentum buffer; c = 1 − dampening, or 1 − μ for the
///                                    exponential-average form, or 1 on PyTorch's first step)
/// d ← d + μ·b  (Nesterov)  or  b
/// p ← p − η·d
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SgdUpdate {
    pub lr: f64,
    pub weight_decay: f64,
    /// μ; 0 means no buffer is read or written.
    pub momentum: f64,
    /// c, the weight of the new direction in the buffer update.
    pub buffer_gain: f64,
    pub nesterov: bool,
}

/// One Adam/AdamW step (Kingma & Ba, 2015; Loshchilov & Hutter, 2019), PyTorch's order:
///
/// ```text
/// p ← p·(1 − η·λ)              (AdamW)      or   g ← g + λ·p   (Adam's coupled L2)
/// m ← m + (1 − β₁)(g − m)      (lerp)
/// v ← β₂·v + (1 − β₂)·g²
/// v̄ ← max(v̄, v)                (AMSGrad; v̄ replaces v in the denominator)
/// p ← p − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AdamUpdate {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    /// t, counted from 1.
    pub step: u64,
}

/// Checks that `t` can be written in place: same shape and dtype as the parameter, one dense
/// buffer, not shared with `param`.
fn check_state(op: &'static str, param: &Tensor, t: &Tensor, what: &str) -> Result<()> {
    if t.shape() != param.shape() || t.dtype() != param.dtype() {
        return arg_err(
            op,
            format!(
                "{what} {} {:?} does not match the parameter {} {:?}",
                t.shape(),
                t.dtype(),
                param.shape(),
                param.dtype()
            ),
        );
    }
    if t.layout().contiguous_range().is_none() {
        return arg_err(op, format!("{what} must be contiguous to be updated in place"));
    }
    if !std::ptr::eq(param, t) && param.same_storage(t) {
        return arg_err(op, format!("{what} shares its storage with the parameter"));
    }
    Ok(())
}

/// The gradient as a dense tensor of its own (a copy when it is strided or aliases `param`).
fn dense_grad(op: &'static str, param: &Tensor, grad: &Tensor) -> Result<Tensor> {
    if grad.shape() != param.shape() || grad.dtype() != param.dtype() {
        return arg_err(
            op,
            format!(
                "gradient {} {:?} does not match the parameter {} {:?}",
                grad.shape(),
                grad.dtype(),
                param.shape(),
                param.dtype()
            ),
        );
    }
    if grad.is_contiguous() && !grad.same_storage(param) {
        Ok(grad.clone())
    } else {
        grad.detach().contiguous_copy()
    }
}

/// Runs `$body` with `$p`, `$g` (and optional state slices) bound to the dense float slices of
/// the tensors and `$T` the element type.
macro_rules! with_dense_slices {
    ($op:expr, $param:expr, $grad:expr, [$($st:ident),*], |$p:ident, $g:ident, $T:ident| $body:block) => {{
        let param: &Tensor = $param;
        let pr = param.layout().contiguous_range().expect("checked");
        let gr = $grad.layout().contiguous_range().expect("dense");
        let mut pw = param.storage_mut();
        let gs = $grad.storage();
        $(
            let $st = (
                $st.layout().contiguous_range().expect("checked"),
                $st.storage_mut(),
            );
            #[allow(unused_mut)]
            let mut $st = $st;
        )*
        match (pw.cpu_mut($op)?, gs.cpu($op)?) {
            (CpuStorage::F32(pv), CpuStorage::F32(gv)) => {
                #[allow(dead_code)]
                type $T = f32;
                let $p = &mut pv[pr];
                let $g = &gv[gr];
                $(
                    let $st = match $st.1.cpu_mut($op)? {
                        CpuStorage::F32(v) => &mut v[$st.0.clone()],
                        _ => unreachable!("dtype checked"),
                    };
                )*
                $body
            }
            (CpuStorage::F64(pv), CpuStorage::F64(gv)) => {
                #[allow(dead_code)]
                type $T = f64;
                let $p = &mut pv[pr];
                let $g = &gv[gr];
                $(
                    let $st = match $st.1.cpu_mut($op)? {
                        CpuStorage::F64(v) => &mut v[$st.0.clone()],
                        _ => unreachable!("dtype checked"),
                    };
                )*
                $body
            }
            _ => {
                return Err(crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: param.dtype(),
                })
            }
        }
    }};
}

impl Tensor {
    /// Applies one [`SgdUpdate`] to this parameter in place, reading `grad` and, when the
    /// momentum is not zero, updating `buffer` (same shape, dense, initially zeros) in place.
    pub fn sgd_update_(&self, grad: &Tensor, buffer: Option<&Tensor>, u: SgdUpdate) -> Result<()> {
        const OP: &str = "sgd_update_";
        check_state(OP, self, self, "parameter")?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            if let Some(b) = buffer {
                check_state(OP, self, b, "momentum buffer")?;
            }
            return super::on_cuda::sgd_update(self, grad, buffer, &u);
        }
        let grad = dense_grad(OP, self, grad)?;
        let buffer = match (u.momentum != 0.0, buffer) {
            (true, Some(b)) => {
                check_state(OP, self, b, "momentum buffer")?;
                b
            }
            (true, None) => return arg_err(OP, "momentum needs a buffer"),
            (false, _) => {
                with_dense_slices!(OP, self, &grad, [], |p, g, T| {
                    let (lr, wd) = (u.lr as T, u.weight_decay as T);
                    for (p, &g) in p.iter_mut().zip(g) {
                        let d = if wd != 0.0 { g + wd * *p } else { g };
                        *p += -lr * d;
                    }
                });
                return Ok(());
            }
        };
        with_dense_slices!(OP, self, &grad, [buffer], |p, g, T| {
            let (lr, wd, mu, c) = (u.lr as T, u.weight_decay as T, u.momentum as T, u.buffer_gain as T);
            let update = |(p, g, buffer): (&mut [T], &[T], &mut [T])| {
                for ((p, &g), b) in p.iter_mut().zip(g).zip(buffer.iter_mut()) {
                    let d = if wd != 0.0 { g + wd * *p } else { g };
                    let nb = if c == 1.0 { *b * mu + d } else { *b * mu + d * c };
                    *b = nb;
                    let step = if u.nesterov { d + nb * mu } else { nb };
                    *p += -lr * step;
                }
            };
            // Large parameters in chunks on all threads (element-wise: the same result either
            // way). The MLP's whole optimiser step: 0.20 → 0.11 ms.
            if p.len() >= 2 * PARALLEL_CHUNK {
                p.par_chunks_mut(PARALLEL_CHUNK)
                    .zip(g.par_chunks(PARALLEL_CHUNK))
                    .zip(buffer.par_chunks_mut(PARALLEL_CHUNK))
                    .for_each(|((p, g), b)| update((p, g, b)));
            } else {
                update((p, g, buffer));
            }
        });
        Ok(())
    }

    /// Applies one [`AdamUpdate`] to this parameter in place, updating the first and second
    /// moments `m` and `v` (and the running maximum `v_max` for AMSGrad) in place.
    pub fn adam_update_(
        &self,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        v_max: Option<&Tensor>,
        u: AdamUpdate,
    ) -> Result<()> {
        const OP: &str = "adam_update_";
        check_state(OP, self, self, "parameter")?;
        let grad = dense_grad(OP, self, grad)?;
        check_state(OP, self, m, "first moment")?;
        check_state(OP, self, v, "second moment")?;
        if m.same_storage(v) {
            return arg_err(OP, "the two moments share storage");
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            if let Some(vm) = v_max {
                check_state(OP, self, vm, "running maximum of the second moment")?;
            }
            return super::on_cuda::adam_update(self, &grad, m, v, v_max, &u);
        }
        let t = u.step as f64;
        let step_size = u.lr / (1.0 - u.beta1.powf(t));
        let bc2_sqrt = (1.0 - u.beta2.powf(t)).sqrt();
        let shrink = 1.0 - u.lr * u.weight_decay;
        macro_rules! adam_loop {
            ($p:ident, $g:ident, $m:ident, $v:ident, $T:ident, $vmax:expr) => {{
                let w1 = 1.0 - u.beta1;
                let (b1w, b1w_rest) = (w1 as $T, (1.0 - w1) as $T);
                let (b2, b2w, wd) = (u.beta2 as $T, (1.0 - u.beta2) as $T, u.weight_decay as $T);
                let (step_size, bc2_sqrt, eps, shrink) = (step_size as $T, bc2_sqrt as $T, u.eps as $T, shrink as $T);
                let mut vmax: Option<&mut [$T]> = $vmax;
                for i in 0..$p.len() {
                    let mut g = $g[i];
                    if wd != 0.0 {
                        if u.decoupled {
                            $p[i] *= shrink;
                        } else {
                            g += wd * $p[i];
                        }
                    }
                    // lerp as PyTorch computes it: from the nearer end.
                    let mi = if b1w < 0.5 {
                        $m[i] + b1w * (g - $m[i])
                    } else {
                        g - (g - $m[i]) * b1w_rest
                    };
                    let vi = $v[i] * b2 + b2w * g * g;
                    $m[i] = mi;
                    $v[i] = vi;
                    let vd = match vmax.as_deref_mut() {
                        Some(vm) => {
                            let x = if vm[i] >= vi { vm[i] } else { vi };
                            vm[i] = x;
                            x
                        }
                        None => vi,
                    };
                    let denom = vd.sqrt() / bc2_sqrt + eps;
                    $p[i] += (-step_size * mi) / denom;
                }
            }};
        }
        match v_max {
            Some(vm) => {
                check_state(OP, self, vm, "running maximum of the second moment")?;
                with_dense_slices!(OP, self, &grad, [m, v, vm], |p, g, T| {
                    adam_loop!(p, g, m, v, T, Some(vm))
                });
            }
            None => {
                with_dense_slices!(OP, self, &grad, [m, v], |p, g, T| { adam_loop!(p, g, m, v, T, None) });
            }
        }
        Ok(())
    }
}
