//! Fused in-place optimiser steps on the GPU, the CUDA twins of `Tensor::sgd_update_` and
//! `Tensor::adam_update_` (same formulas, same rounding order; see `kernels::optim`).

use cudarc::driver::PushKernelArg;

use super::{Scalar, float_only, grid, launch, push_scalar, same_device, same_dtype, suffix};
use crate::backend::params::{AdamUpdate, SgdUpdate};
use crate::cuda::kernels::optim::OPTIM;
use crate::cuda::storage::CudaStorage;
use crate::error::{Result, arg_err, shape_err};

fn check_state(op: &'static str, p: &CudaStorage, t: &CudaStorage, what: &str) -> Result<()> {
    same_dtype(op, p.dtype(), t.dtype())?;
    if t.len() != p.len() {
        return shape_err(
            op,
            format!("{what} has {} elements, the parameter {}", t.len(), p.len()),
        );
    }
    Ok(())
}

/// One SGD step in place on contiguous `param` and `buffer` (needed when momentum ≠ 0) from the
/// contiguous gradient `grad`.
pub fn sgd_update(
    param: &mut CudaStorage,
    grad: &CudaStorage,
    buffer: Option<&mut CudaStorage>,
    u: &SgdUpdate,
) -> Result<()> {
    const OP: &str = "cuda::sgd_update";
    float_only(OP, param.dtype())?;
    check_state(OP, param, grad, "gradient")?;
    let dev = same_device(OP, param, &[grad])?;
    let pb = match (u.momentum != 0.0, buffer) {
        (true, Some(b)) => {
            check_state(OP, param, b, "momentum buffer")?;
            same_device(OP, param, &[b])?;
            b.device_ptr()
        }
        (true, None) => return arg_err(OP, "momentum needs a buffer"),
        (false, _) => 0,
    };
    let n = param.len();
    if n == 0 {
        return Ok(());
    }
    let dt = param.dtype();
    let f = dev.function(OP, &OPTIM, &format!("sgd_{}", suffix(dt)))?;
    let (n64, pp, pg) = (n as u64, param.device_ptr(), grad.device_ptr());
    let s = [u.lr, u.weight_decay, u.momentum, u.buffer_gain].map(|v| Scalar::new(dt, v));
    let (nesterov, has_buf) = (u.nesterov as i32, (pb != 0) as i32);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&pp).arg(&pg).arg(&pb);
    for v in &s {
        push_scalar(&mut l, v);
    }
    l.arg(&nesterov).arg(&has_buf);
    launch(&dev, OP, &mut l, grid(n))
}

/// One Adam/AdamW step in place on contiguous `param`, `m`, `v` (and `v_max` for AMSGrad).
pub fn adam_update(
    param: &mut CudaStorage,
    grad: &CudaStorage,
    m: &mut CudaStorage,
    v: &mut CudaStorage,
    v_max: Option<&mut CudaStorage>,
    u: &AdamUpdate,
) -> Result<()> {
    const OP: &str = "cuda::adam_update";
    float_only(OP, param.dtype())?;
    check_state(OP, param, grad, "gradient")?;
    check_state(OP, param, m, "first moment")?;
    check_state(OP, param, v, "second moment")?;
    let dev = same_device(OP, param, &[grad, m, v])?;
    let pvmax = match v_max {
        Some(x) => {
            check_state(OP, param, x, "running maximum of the second moment")?;
            same_device(OP, param, &[x])?;
            x.device_ptr()
        }
        None => 0,
    };
    let n = param.len();
    if n == 0 {
        return Ok(());
    }
    let dt = param.dtype();
    let t = u.step as f64;
    let step_size = u.lr / (1.0 - u.beta1.powf(t));
    let bc2_sqrt = (1.0 - u.beta2.powf(t)).sqrt();
    let shrink = 1.0 - u.lr * u.weight_decay;
    let w1 = 1.0 - u.beta1;
    // Order of the kernel's scalar parameters: b1w, b1w_rest, b2, b2w, wd, step_size, bc2_sqrt, eps, shrink.
    let s = [
        w1,
        1.0 - w1,
        u.beta2,
        1.0 - u.beta2,
        u.weight_decay,
        step_size,
        bc2_sqrt,
        u.eps,
        shrink,
    ]
    .map(|x| Scalar::new(dt, x));
    let f = dev.function(OP, &OPTIM, &format!("adam_{}", suffix(dt)))?;
    let (n64, pp, pg, pm, pv) = (
        n as u64,
        param.device_ptr(),
        grad.device_ptr(),
        m.device_ptr(),
        v.device_ptr(),
    );
    let (decoupled, amsgrad) = (u.decoupled as i32, (pvmax != 0) as i32);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&pp).arg(&pg).arg(&pm).arg(&pv).arg(&pvmax);
    for x in &s {
        push_scalar(&mut l, x);
    }
    l.arg(&decoupled).arg(&amsgrad);
    launch(&dev, OP, &mut l, grid(n))
}
