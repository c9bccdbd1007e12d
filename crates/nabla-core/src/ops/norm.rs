//! Batch normalisation in training mode as one op (Ioffe & Szegedy, 2015): the statistics, the
//! normalisation and the running averages in one kernel call per device (cuDNN on a GPU, a fused
//! loop on the CPU), and a hand-written backward (formulas in `cpu/norm.rs`).

use crate::Tensor;
use crate::backend::params::BatchNormParams;
use crate::error::{Error, Result, arg_err, shape_err};

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
        const OP: &str = "batch_norm";
        if self.rank() < 2 {
            return shape_err(OP, format!("expected [N, C, ...], got {}", self.shape()));
        }
        let (n, c) = (self.dims()[0], self.dims()[1]);
        let s: usize = self.dims()[2..].iter().product();
        for (t, what) in [(weight, "weight"), (bias, "bias")] {
            if t.dims() != [c] || t.dtype() != self.dtype() {
                return shape_err(
                    OP,
                    format!(
                        "{what} {} {:?} must be [{c}] {:?} for input {}",
                        t.shape(),
                        t.dtype(),
                        self.dtype(),
                        self.shape()
                    ),
                );
            }
        }
        if n * s < 2 {
            return shape_err(
                OP,
                format!(
                    "expected more than 1 value per channel when training, got input {}",
                    self.shape()
                ),
            );
        }
        if !(0.0..=1.0).contains(&momentum) || eps.is_nan() || eps <= 0.0 {
            return arg_err(
                OP,
                format!("momentum {momentum} must lie in [0, 1] and eps {eps} be positive"),
            );
        }
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
}
