//! Losses, each matching its PyTorch namesake, with reductions mean, sum and none.
//!
//! - binary cross-entropy (the lecture's log loss): −[y ln p + (1 − y) ln(1 − p)], from
//!   probabilities, and stable from logits z: softplus(z) − z·y (its gradient is σ(z) − y).
//! - mean squared error: (p − y)², the loss of the linear (Gaussian) output.
//! - softmax cross-entropy: −log softmax(z)\[y\], with optional class weights and label
//!   smoothing; its gradient is softmax(z) − onehot(y) (per sample, before reduction).
//! - negative log-likelihood of log-probabilities.

use nabla_core::{DType, Error, Result, Tensor};

/// How per-element losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    #[default]
    Mean,
    Sum,
    None,
}

fn reduce(loss: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::Mean => loss.mean_all(),
        Reduction::Sum => loss.sum_all(),
        Reduction::None => Ok(loss),
    }
}

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() == b.shape() {
        Ok(())
    } else {
        Err(Error::Shape {
            op,
            msg: format!("input {} and target {} must have the same shape", a.shape(), b.shape()),
        })
    }
}

/// Mean squared error.
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("mse_loss", input, target)?;
    reduce(input.sub(target)?.sqr()?, reduction)
}

/// Binary cross-entropy from probabilities p ∈ [0, 1]; each log is clamped at −100, as in PyTorch,
/// and the gradient is PyTorch's δp = (p − y)/max(p(1 − p), 1e-12).
///
/// NOTE: differentiating the clamped logs gives 0·(1/0) = NaN wherever p is exactly 0 or 1
/// (an f32 sigmoid rounds to 1 for z ≳ 17), even for a correct p = y = 1. So the logs are
/// taken of a detached p, and the gradient enters through p·g − (p·g).detach() (0 in value).
pub fn binary_cross_entropy(p: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("binary_cross_entropy", p, target)?;
    let pd = p.detach();
    let log_p = pd.log()?.clamp(Some(-100.0), None)?;
    let log_1mp = pd.rsub_scalar(1.0)?.log()?.clamp(Some(-100.0), None)?;
    let mut loss = target
        .mul(&log_p)?
        .add(&target.rsub_scalar(1.0)?.mul(&log_1mp)?)?
        .neg()?;
    if p.tracks_grad() && nabla_core::is_grad_enabled() {
        let g = nabla_core::no_grad(|| {
            pd.sub(&target.detach())?
                .div(&pd.mul(&pd.rsub_scalar(1.0)?)?.clamp(Some(1e-12), None)?)
        })?;
        let s = p.mul(&g)?;
        loss = loss.add(&s.sub(&s.detach())?)?;
    }
    reduce(loss, reduction)
}

/// Binary cross-entropy from logits, stable for any z: softplus(z) − z·y.
///
/// NOTE: the textbook max(z, 0) − z·y + ln(1 + e^−|z|) gives a wrong subgradient at z = 0 when
/// built from relu and abs (both have 0 derivative there); softplus has the exact σ(z).
pub fn binary_cross_entropy_with_logits(logits: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    same_shape("binary_cross_entropy_with_logits", logits, target)?;
    reduce(logits.softplus()?.sub(&logits.mul(target)?)?, reduction)
}

/// Options of [`cross_entropy`] beyond the reduction.
#[derive(Debug, Clone, Default)]
pub struct CrossEntropyOptions {
    pub reduction: Reduction,
    /// A weight per class `[C]`; the mean divides by the summed weights of the targets.
    pub weight: Option<Tensor>,
    /// ε: the target becomes (1 − ε)·onehot + ε/C (Szegedy et al., 2016).
    pub label_smoothing: f64,
}

/// Checks `[N, C]` input against `[N]` i64 targets and returns C.
fn check_targets(op: &'static str, input: &Tensor, target: &Tensor) -> Result<usize> {
    if input.rank() != 2 || target.rank() != 1 || target.dims()[0] != input.dims()[0] {
        return Err(Error::Shape {
            op,
            msg: format!(
                "expected input [N, C] and target [N], got {} and {}",
                input.shape(),
                target.shape()
            ),
        });
    }
    if target.dtype() != DType::I64 {
        return Err(Error::Argument {
            op,
            msg: format!("targets must be class indices of dtype I64, got {:?}", target.dtype()),
        });
    }
    let c = input.dims()[1];
    if let Some(bad) = target.to_vec::<i64>()?.into_iter().find(|&y| y < 0 || y >= c as i64) {
        return Err(Error::IndexOutOfRange {
            op,
            index: bad,
            dim: 1,
            size: c,
        });
    }
    Ok(c)
}

/// Negative log-likelihood of log-probabilities `[N, C]` at class indices `[N]`.
pub fn nll_loss(log_probs: &Tensor, target: &Tensor, weight: Option<&Tensor>, reduction: Reduction) -> Result<Tensor> {
    check_targets("nll_loss", log_probs, target)?;
    let picked = log_probs.gather(1, &target.unsqueeze(1)?)?.squeeze(1)?.neg()?;
    match weight {
        None => reduce(picked, reduction),
        Some(w) => {
            let wy = w.index_select(0, target)?.to_dtype(log_probs.dtype())?;
            let weighted = picked.mul(&wy)?;
            match reduction {
                Reduction::Mean => weighted.sum_all()?.div(&wy.sum_all()?),
                other => reduce(weighted, other),
            }
        }
    }
}

/// Softmax cross-entropy of logits `[N, C]` at class indices `[N]`, fused through log-softmax.
pub fn cross_entropy(logits: &Tensor, target: &Tensor, opts: &CrossEntropyOptions) -> Result<Tensor> {
    let c = check_targets("cross_entropy", logits, target)?;
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::Argument {
            op: "cross_entropy",
            msg: format!("label_smoothing must be in [0, 1], got {eps}"),
        });
    }
    if eps == 0.0 && opts.weight.is_none() && opts.reduction != Reduction::None {
        // The common case in one fused op: loss and gradient (softmax − onehot)/N in one pass.
        return logits.softmax_cross_entropy(target, opts.reduction == Reduction::Mean);
    }
    let log_probs = logits.log_softmax(1)?;
    let nll = nll_loss(&log_probs, target, opts.weight.as_ref(), opts.reduction)?;
    if eps == 0.0 {
        return Ok(nll);
    }
    // Smoothing term: −(1/C) Σ_c w_c log p_c per sample, reduced like the NLL term.
    let weighted = match &opts.weight {
        Some(w) => log_probs.mul(&w.to_dtype(logits.dtype())?)?,
        None => log_probs.clone(),
    };
    let smooth = weighted.sum(&[1], false)?.neg()?.div_scalar(c as f64)?;
    let smooth = match (opts.reduction, &opts.weight) {
        (Reduction::Mean, Some(w)) => smooth
            .sum_all()?
            .div(&w.index_select(0, target)?.to_dtype(logits.dtype())?.sum_all()?)?,
        (r, _) => reduce(smooth, r)?,
    };
    nll.mul_scalar(1.0 - eps)?.add(&smooth.mul_scalar(eps)?)
}
