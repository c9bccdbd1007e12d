//! Batch normalisation (Ioffe & Szegedy, 2015) as two ops. Training mode: the statistics, the
//! normalisation and the running averages in one kernel call per device (cuDNN on a GPU, a fused
//! loop on the CPU), and a hand-written backward (formulas in `cpu/norm.rs`). Evaluation mode:
//! one multiply-add per value from the running statistics.

use crate::Tensor;
use crate::backend::params::BatchNormParams;
use crate::error::{Error, Result, arg_err, shape_err};

const OP: &str = "batch_norm";

/// (N, C, S) of an `[N, C, ...]` input whose γ and β are `[C]` of its dtype.
fn affine_dims(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<(usize, usize, usize)> {
    if x.rank() < 2 {
        return shape_err(OP, format!("expected [N, C, ...], got {}", x.shape()));
    }
    let (n, c) = (x.dims()[0], x.dims()[1]);
    for (t, what) in [(weight, "weight"), (bias, "bias")] {
        if t.dims() != [c] || t.dtype() != x.dtype() {
            return shape_err(
                OP,
                format!(
                    "{what} {} {:?} must be [{c}] {:?} for input {}",
                    t.shape(),
                    t.dtype(),
                    x.dtype(),
                    x.shape()
                ),
            );
        }
    }
    Ok((n, c, x.dims()[2..].iter().product()))
}

fn positive_eps(eps: f64) -> Result<()> {
    if eps.is_nan() || eps <= 0.0 {
        return arg_err(OP, format!("eps {eps} must be positive"));
    }
    Ok(())
}

impl Tensor {
    /// y = γ·(x − μ)/√(σ² + ε) + β over `[N, C, ...]`, with μ, σ² (biased) the batch statistics of
    /// each channel; `running`, when given, is (mean, var) updated in place by
    /// r ← (1 − m)·r + m·batch (the variance unbiased), as PyTorch's `batch_norm(training=True)`.
    /// δx = γ·σ̂⁻¹·(δy − mean(δy) − x̂·mean(δy·x̂)), δγ = Σ δy·x̂, δβ = Σ δy.
    pub fn batch_norm_train(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        running: Option<(&Tensor, &Tensor)>,
        momentum: f64,
        eps: f64,
    ) -> Result<Tensor> {
        let (n, c, s) = affine_dims(self, weight, bias)?;
        if n * s < 2 {
            return shape_err(
                OP,
                format!(
                    "expected more than 1 value per channel when training, got input {}",
                    self.shape()
                ),
            );
        }
        if !(0.0..=1.0).contains(&momentum) {
            return arg_err(OP, format!("momentum {momentum} must lie in [0, 1]"));
        }
        positive_eps(eps)?;
        if let Some((m, v)) = running {
            for (t, what) in [(m, "running mean"), (v, "running variance")] {
                if t.dims() != [c] || t.dtype() != self.dtype() || t.layout().contiguous_range() != Some(0..c) {
                    return Err(Error::Argument {
                        op: OP,
                        msg: format!(
                            "{what} {} {:?} must be a dense [{c}] {:?} buffer of its own",
                            t.shape(),
                            t.dtype(),
                            self.dtype()
                        ),
                    });
                }
            }
        }
        if let Some((m, v)) = running {
            // NOTE: the running statistics are written while x, γ and β are read: a shared
            // buffer would wait on its own lock.
            let read = [self, weight, bias];
            if m.same_storage(v) || read.iter().any(|t| t.same_storage(m) || t.same_storage(v)) {
                return arg_err(
                    OP,
                    "the running statistics must not share storage with each other or the inputs",
                );
            }
        }
        let p = BatchNormParams { n, c, s, eps, momentum };
        let x = self.contiguous()?.detach();
        let (w, b) = (weight.contiguous()?.detach(), bias.contiguous()?.detach());
        let (y, mean, inv_std) = {
            let (sx, sw, sb) = (x.storage(), w.storage(), b.storage());
            match running {
                Some((m, v)) => {
                    let (mut sm, mut sv) = (m.storage_mut(), v.storage_mut());
                    sx.batch_norm_train(
                        x.layout(),
                        (&sw, w.layout()),
                        (&sb, b.layout()),
                        Some((&mut sm, &mut sv)),
                        &p,
                    )?
                }
                None => sx.batch_norm_train(x.layout(), (&sw, w.layout()), (&sb, b.layout()), None, &p)?,
            }
        };
        let y = Tensor::from_any_storage(y, self.shape().clone());
        let (mean, inv_std) = (
            Tensor::from_any_storage(mean, (c,)),
            Tensor::from_any_storage(inv_std, (c,)),
        );
        Ok(y.record(OP, &[self, weight, bias], move |g| {
            let g = g.contiguous()?;
            let (dx, dw, db) = x.storage().batch_norm_backward(
                x.layout(),
                (&g.storage(), g.layout()),
                (&w.storage(), w.layout()),
                &mean.storage(),
                &inv_std.storage(),
                &p,
            )?;
            Ok(vec![
                Some(Tensor::from_any_storage(dx, x.shape().clone())),
                Some(Tensor::from_any_storage(dw, (c,))),
                Some(Tensor::from_any_storage(db, (c,))),
            ])
        }))
    }

    /// y = γ·(x − μ)/√(σ² + ε) + β over `[N, C, ...]` with the given (running) mean μ and
    /// variance σ² of each channel, as PyTorch's `batch_norm(training=False)`: one multiply-add
    /// per value, y = x·a + b with a = γ/√(σ² + ε), b = β − μ·a.
    /// δx = a·δy, δγ = Σ δy·x̂ with x̂ = (x − μ)/√(σ² + ε), δβ = Σ δy; μ and σ² are constants
    /// (buffers, as in PyTorch).
    pub fn batch_norm_eval(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        let (n, c, s) = affine_dims(self, weight, bias)?;
        for (t, what) in [(mean, "running mean"), (var, "running variance")] {
            if t.dims() != [c] || t.dtype() != self.dtype() {
                return shape_err(
                    OP,
                    format!("{what} {} {:?} must be [{c}] {:?}", t.shape(), t.dtype(), self.dtype()),
                );
            }
        }
        positive_eps(eps)?;
        let p = BatchNormParams {
            n,
            c,
            s,
            eps,
            momentum: 0.0,
        };
        let x = self.contiguous()?.detach();
        let [w, b, m, v] = [weight, bias, mean, var].map(|t| t.contiguous().map(|t| t.detach()));
        let (w, b, m, v) = (w?, b?, m?, v?);
        let y = {
            let (sw, sb, sm, sv) = (w.storage(), b.storage(), m.storage(), v.storage());
            x.storage().batch_norm_eval(
                x.layout(),
                (&sw, w.layout()),
                (&sb, b.layout()),
                [(&sm, m.layout()), (&sv, v.layout())],
                &p,
            )?
        };
        let y = Tensor::from_any_storage(y, self.shape().clone());
        let rank = self.rank();
        Ok(y.record(OP, &[self, weight, bias], move |g| {
            // Per-channel values broadcast as [1, C, 1, ...]; sums over every dim but 1.
            let mut bshape = vec![1; rank];
            bshape[1] = c;
            let others: Vec<isize> = (0..rank as isize).filter(|&d| d != 1).collect();
            let inv_std = v.add_scalar(eps)?.sqrt()?.recip()?.reshape(bshape.clone())?;
            let x_hat = x.sub(&m.reshape(bshape.clone())?)?.mul(&inv_std)?;
            let dx = g.mul(&inv_std.mul(&w.reshape(bshape)?)?)?;
            let dw = g.mul(&x_hat)?.sum(&others, false)?;
            let db = g.sum(&others, false)?;
            Ok(vec![Some(dx), Some(dw), Some(db)])
        }))
    }
}
