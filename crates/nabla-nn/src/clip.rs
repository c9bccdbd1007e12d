//! Gradient clipping, between `backward()` and the optimiser's `step()`: PyTorch's
//! `clip_grad_norm_` and `clip_grad_value_`, acting on a [`GradStore`].

use std::collections::HashSet;

use nabla_core::{Error, GradStore, NoGradGuard, Result, Tensor};

/// The gradients of `params` that are in the store, each parameter once.
fn present(grads: &GradStore, params: &[Tensor]) -> Vec<Tensor> {
    let mut seen = HashSet::new();
    params
        .iter()
        .filter(|p| seen.insert(p.id()) && grads.get(p).is_some())
        .cloned()
        .collect()
}

/// Rescales the gradients of `params` so that their global L2 norm (all of them as one
/// vector) is at most `max_norm`, and returns the norm before clipping.
///
/// As in PyTorch, every gradient is multiplied by min(1, max_norm / (norm + 1e-6)), so a norm
/// just above `max_norm` lands just below it. Parameters without a gradient are ignored; a
/// parameter listed twice counts once. A non-finite norm (an overflow, a NaN) is returned as
/// it is and scales the gradients to NaN, as PyTorch does by default: check the result.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::clip::clip_grad_norm;
/// let w = Tensor::from_vec(vec![0.0f64, 0.0], (2,)).unwrap().requires_grad_();
/// let x = Tensor::from_vec(vec![3.0f64, 4.0], (2,)).unwrap();
/// let mut grads = w.mul(&x).unwrap().sum_all().unwrap().backward().unwrap(); // ∂/∂w = (3, 4)
/// let norm = clip_grad_norm(&mut grads, &[w.clone()], 1.0).unwrap();
/// assert_eq!(norm, 5.0);
/// let g = grads.get(&w).unwrap().to_vec::<f64>().unwrap();
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm(grads: &mut GradStore, params: &[Tensor], max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm >= 0.0) {
        return Err(Error::Argument {
            op: "clip_grad_norm",
            msg: format!("max_norm must be finite and >= 0, got {max_norm}"),
        });
    }
    let params = present(grads, params);
    // NOTE: summed in f64 whatever the gradients' dtype, so large f32 models do not lose
    // precision (PyTorch sums per-tensor norms in the gradients' dtype; the difference is
    // rounding only).
    let mut total = 0.0f64;
    for g in params.iter().filter_map(|p| grads.get(p)) {
        total += g.to_vec_f64()?.iter().map(|x| x * x).sum::<f64>();
    }
    let total = total.sqrt();
    let coef = max_norm / (total + 1e-6);
    // A NaN coefficient (from a NaN norm) is applied too, and propagates as in PyTorch.
    if coef < 1.0 || coef.is_nan() {
        let _no_grad = NoGradGuard::new();
        for p in &params {
            if let Some(g) = grads.get(p) {
                let scaled = g.mul_scalar(coef)?;
                grads.insert(p, scaled);
            }
        }
    }
    Ok(total)
}

/// Clamps every gradient element of `params` into [−clip, clip] (PyTorch's
/// `clip_grad_value_`). Parameters without a gradient are ignored.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::clip::clip_grad_value;
/// let w = Tensor::from_vec(vec![0.0f64, 0.0], (2,)).unwrap().requires_grad_();
/// let x = Tensor::from_vec(vec![-3.0f64, 0.5], (2,)).unwrap();
/// let mut grads = w.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
/// clip_grad_value(&mut grads, &[w.clone()], 1.0).unwrap();
/// assert_eq!(grads.get(&w).unwrap().to_vec::<f64>().unwrap(), vec![-1.0, 0.5]);
/// ```
pub fn clip_grad_value(grads: &mut GradStore, params: &[Tensor], clip: f64) -> Result<()> {
    if !(clip.is_finite() && clip >= 0.0) {
        return Err(Error::Argument {
            op: "clip_grad_value",
            msg: format!("clip must be finite and >= 0, got {clip}"),
        });
    }
    let _no_grad = NoGradGuard::new();
    for p in present(grads, params) {
        if let Some(g) = grads.get(&p) {
            let clamped = g.clamp(Some(-clip), Some(clip))?;
            grads.insert(&p, clamped);
        }
    }
    Ok(())
}
