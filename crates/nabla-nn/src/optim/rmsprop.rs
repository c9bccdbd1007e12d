//! RMSprop (Hinton, Coursera lecture 6e, 2012), as in PyTorch's `torch.optim.RMSprop`.
//!
//! ```text
//! s ← α·s + (1 − α)·g²                running mean of the squared gradient, s₀ = 0
//! centred:  ḡ ← α·ḡ + (1 − α)·g,  d = √(s − ḡ²) + ε   (an estimate of the gradient's std)
//! else:     d = √s + ε
//! momentum μ > 0:  b ← μ·b + g / d,  w ← w − lr·b      (b₀ = 0)
//! else:            w ← w − lr·g / d
//! ```
//!
//! Note PyTorch's ε sits outside the square root and α is the smoothing constant of the
//! average (the lecture's β), not the learning rate. Weight decay λ is coupled: g ← g + λw.

use nabla_core::{GradStore, NoGradGuard, Result, Tensor};

use super::{Optimizer, OptimizerState, ParamGroup, ParamSet, StateReader, arg, lerp, non_negative, unit_interval};

/// Hyper-parameters of [`RMSprop`]; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RMSpropConfig {
    /// Learning rate (1e-2).
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average (0.99), in [0, 1].
    pub alpha: f64,
    /// ε added to the denominator (1e-8).
    pub eps: f64,
    /// Coupled L2 weight decay λ: g ← g + λw (0).
    pub weight_decay: f64,
    /// Momentum μ in [0, 1) (0: off).
    pub momentum: f64,
    /// Normalise by the estimated variance of the gradient instead of its second moment.
    pub centered: bool,
}

impl Default for RMSpropConfig {
    fn default() -> Self {
        RMSpropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RMSpropConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        RMSpropConfig {
            lr,
            ..Default::default()
        }
    }
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    fn validate(&self) -> Result<()> {
        const OP: &str = "RMSprop::new";
        non_negative(OP, "lr", self.lr)?;
        non_negative(OP, "eps", self.eps)?;
        non_negative(OP, "weight_decay", self.weight_decay)?;
        unit_interval(OP, "momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return arg(OP, format!("alpha must be in [0, 1], got {}", self.alpha));
        }
        Ok(())
    }
}

/// Per-parameter state; the buffers exist once the parameter has been stepped.
#[derive(Default, Clone)]
struct Averages {
    step: u64,
    square_avg: Option<Tensor>,
    momentum_buffer: Option<Tensor>,
    grad_avg: Option<Tensor>,
}

/// RMSprop, PyTorch's `torch.optim.RMSprop` (see the module docs for the update).
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::optim::{Optimizer, RMSprop, RMSpropConfig};
///
/// let w = Tensor::from_vec(vec![3.0f64], (1,)).unwrap().requires_grad_();
/// let mut opt = RMSprop::new(vec![("w".into(), w.clone())], RMSpropConfig::new(0.01)).unwrap();
/// let grads = w.sqr().unwrap().sum_all().unwrap().backward().unwrap(); // g = 6
/// opt.step(&grads).unwrap(); // s = 0.01·36, w ← 3 − 0.01·6/√0.36 = 2.9
/// assert!((w.to_vec::<f64>().unwrap()[0] - 2.9).abs() < 1e-7);
/// ```
pub struct RMSprop {
    cfg: RMSpropConfig,
    params: ParamSet,
    state: Vec<Averages>,
}

impl RMSprop {
    /// RMSprop over named parameters (from `Module::named_parameters`).
    pub fn new(params: Vec<(String, Tensor)>, cfg: RMSpropConfig) -> Result<RMSprop> {
        RMSprop::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// RMSprop over parameter groups with their own learning rate or weight decay.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: RMSpropConfig) -> Result<RMSprop> {
        cfg.validate()?;
        let params = ParamSet::new("RMSprop::new", groups, cfg.lr, cfg.weight_decay)?;
        let state = vec![Averages::default(); params.slots.len()];
        Ok(RMSprop { cfg, params, state })
    }

    pub fn config(&self) -> &RMSpropConfig {
        &self.cfg
    }
}

impl Optimizer for RMSprop {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        const OP: &str = "RMSprop::step";
        self.params.check_lr(OP)?;
        let _no_grad = NoGradGuard::new();
        let RMSpropConfig {
            alpha,
            eps,
            momentum,
            centered,
            ..
        } = self.cfg;
        for i in 0..self.params.slots.len() {
            let Some(g) = self.params.grad(OP, grads, i)? else {
                continue;
            };
            let p = &self.params.slots[i].param;
            let (lr, wd) = (self.params.lr_of(i), self.params.weight_decay_of(i));
            let st = &mut self.state[i];
            st.step += 1;
            let g = if wd != 0.0 {
                g.add(&p.mul_scalar(wd)?)?
            } else {
                g.clone()
            };
            let zeros = || Tensor::zeros_like(p);

            // s ← αs + (1 − α)g²
            let s = st.square_avg.take().map_or_else(zeros, Ok)?;
            let s = s.mul_scalar(alpha)?.add(&g.mul_scalar(1.0 - alpha)?.mul(&g)?)?;
            let avg = if centered {
                let gbar = lerp(&st.grad_avg.take().map_or_else(zeros, Ok)?, &g, 1.0 - alpha)?;
                let var = s.add(&gbar.neg()?.mul(&gbar)?)?;
                st.grad_avg = Some(gbar);
                var.sqrt()?
            } else {
                s.sqrt()?
            };
            let avg = avg.add_scalar(eps)?;
            let new = if momentum > 0.0 {
                let b = st.momentum_buffer.take().map_or_else(zeros, Ok)?;
                let b = b.mul_scalar(momentum)?.add(&g.div(&avg)?)?;
                let new = p.add(&b.mul_scalar(-lr)?)?;
                st.momentum_buffer = Some(b);
                new
            } else {
                p.add(&g.mul_scalar(-lr)?.div(&avg)?)?
            };
            p.copy_(&new)?;
            st.square_avg = Some(s);
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.params.lr()
    }

    fn set_lr(&mut self, lr: f64) {
        self.params.set_lr(lr)
    }

    fn state(&self) -> OptimizerState {
        let mut s = self.params.save_common();
        for (slot, st) in self.params.slots.iter().zip(&self.state) {
            if st.step == 0 {
                continue;
            }
            s.scalars.insert(format!("{}.step", slot.name), st.step as f64);
            for (key, buf) in [
                ("square_avg", &st.square_avg),
                ("momentum_buffer", &st.momentum_buffer),
                ("grad_avg", &st.grad_avg),
            ] {
                if let Some(b) = buf {
                    s.tensors.push((format!("{}.{key}", slot.name), b.clone()));
                }
            }
        }
        s
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        const OP: &str = "RMSprop::load_state";
        let mut r = StateReader::new(OP, state)?;
        let lr = r.lr()?;
        let mut loaded = Vec::with_capacity(self.params.slots.len());
        for slot in &self.params.slots {
            let step = r.step(&slot.name)?.unwrap_or(0);
            let st = Averages {
                step,
                square_avg: r.buffer(slot, "square_avg")?,
                momentum_buffer: r.buffer(slot, "momentum_buffer")?,
                grad_avg: r.buffer(slot, "grad_avg")?,
            };
            let complete = st.square_avg.is_some()
                && (st.momentum_buffer.is_some() || self.cfg.momentum <= 0.0)
                && (st.grad_avg.is_some() || !self.cfg.centered);
            let unused = (st.momentum_buffer.is_some() && self.cfg.momentum <= 0.0)
                || (st.grad_avg.is_some() && !self.cfg.centered);
            let early = step == 0 && (st.momentum_buffer.is_some() || st.grad_avg.is_some());
            if (step > 0) != complete || unused || early {
                return arg(
                    OP,
                    format!(
                        "parameter `{}`: the step count and the buffers (square_avg, momentum_buffer, grad_avg) do not fit this configuration",
                        slot.name
                    ),
                );
            }
            loaded.push(st);
        }
        r.finish()?;
        self.params.set_lr(lr);
        self.state = loaded;
        Ok(())
    }
}
