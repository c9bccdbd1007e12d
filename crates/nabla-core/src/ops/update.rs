//! Fused, in-place optimiser updates: one pass over a parameter, its gradient and its state
//! (PyTorch's "foreach"/fused optimisers). Written op by op, one SGD step with momentum reads
//! and writes each parameter six times and allocates five temporaries; here it is one loop.
//!
//! Nothing is recorded for autograd: these are `p.data` updates. The arithmetic is rounded in
//! the same order as PyTorch's reference (non-fused) optimisers, so trajectories agree with the
//! fixtures to the last bits of f32 (no fused multiply-adds are introduced).

use crate::Tensor;
use crate::backend::params::{AdamUpdate, SgdUpdate};
use crate::error::{Result, arg_err};

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
/// A copy also when the gradient shares storage with a state that is written (`states`): the
/// update holds the gradient's read lock and the states' write locks at once.
fn dense_grad(op: &'static str, param: &Tensor, grad: &Tensor, states: &[&Tensor]) -> Result<Tensor> {
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
    if grad.is_contiguous() && !grad.same_storage(param) && !states.iter().any(|s| grad.same_storage(s)) {
        Ok(grad.clone())
    } else {
        grad.detach().contiguous_copy()
    }
}

impl Tensor {
    /// Applies one [`SgdUpdate`] to this parameter in place, reading `grad` and, when the
    /// momentum is not zero, updating `buffer` (same shape, dense, initially zeros) in place.
    pub fn sgd_update_(&self, grad: &Tensor, buffer: Option<&Tensor>, u: SgdUpdate) -> Result<()> {
        const OP: &str = "sgd_update_";
        check_state(OP, self, self, "parameter")?;
        let grad = dense_grad(OP, self, grad, buffer.as_slice())?;
        let buffer = match (u.momentum != 0.0, buffer) {
            (true, Some(b)) => {
                check_state(OP, self, b, "momentum buffer")?;
                Some(b)
            }
            (true, None) => return arg_err(OP, "momentum needs a buffer"),
            (false, _) => None,
        };
        let gs = grad.storage();
        let mut ps = self.storage_mut();
        let mut bs = buffer.map(|b| b.storage_mut());
        let b = bs.as_deref_mut().zip(buffer).map(|(s, b)| (s, dense(b)));
        ps.sgd_update(dense(self), (&gs, dense(&grad)), b, &u)
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
        let mut states = vec![m, v];
        states.extend(v_max);
        let grad = dense_grad(OP, self, grad, &states)?;
        check_state(OP, self, m, "first moment")?;
        check_state(OP, self, v, "second moment")?;
        if m.same_storage(v) {
            return arg_err(OP, "the two moments share storage");
        }
        if let Some(vm) = v_max {
            check_state(OP, self, vm, "running maximum of the second moment")?;
            if vm.same_storage(m) || vm.same_storage(v) {
                return arg_err(OP, "the running maximum shares storage with a moment");
            }
        }
        let gs = grad.storage();
        let (mut ps, mut ms, mut vs) = (self.storage_mut(), m.storage_mut(), v.storage_mut());
        let mut vms = v_max.map(|t| t.storage_mut());
        let vm = vms.as_deref_mut().zip(v_max).map(|(s, t)| (s, dense(t)));
        ps.adam_update(
            dense(self),
            (&gs, dense(&grad)),
            (&mut ms, dense(m)),
            (&mut vs, dense(v)),
            vm,
            &u,
        )
    }
}

/// The elements a checked dense tensor covers in its buffer.
fn dense(t: &Tensor) -> std::ops::Range<usize> {
    t.layout().contiguous_range().expect("checked dense")
}
