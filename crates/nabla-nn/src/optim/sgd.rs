//! Stochastic gradient descent, with momentum, Nesterov momentum and L2 weight decay.
//!
//! # Batch, mini-batch and stochastic gradient descent
//!
//! They are one algorithm, w ← w − α·∂J/∂w; only the number of examples behind the gradient
//! differs: the whole training set (batch GD), a mini-batch of B examples (mini-batch GD), or
//! a single example (stochastic GD, B = 1). Choose B in the data loader; [`Sgd`] is the same.
//!
//! # Weight decay
//!
//! `weight_decay` λ is coupled L2 regularisation, as in PyTorch: the gradient becomes
//! g ← ∂J/∂w + λw, the gradient of J + λ/2·‖w‖². Without momentum one step is
//! w ← w − α(∂J/∂w + λw) = (1 − αλ)·w − α·∂J/∂w: the weights shrink by the factor (1 − αλ)
//! before the gradient step, hence "decay".
//!
//! # Two forms of momentum
//!
//! * [`MomentumForm::PyTorch`] (the default, PyTorch's `torch.optim.SGD`): the buffer starts
//!   as the first gradient, b₁ = g₁, then b ← μ·b + (1 − dampening)·g, and w ← w − α·b.
//!   With `nesterov` the step uses g + μ·b instead of b.
//! * [`MomentumForm::Exponential`] (the lecture's exponentially weighted average):
//!   v ← β·v + (1 − β)·g with v₀ = 0, then w ← w − α·v. It has no bias correction, so the
//!   first steps are short (v₁ = (1 − β)·g₁). With constant gradients the two forms differ by
//!   the factor (1 − β): α_exponential = α_PyTorch / (1 − β) gives the same steady-state step.

use nabla_core::{GradStore, NoGradGuard, Result, SgdUpdate, Tensor};

use super::{Optimizer, OptimizerState, ParamGroup, ParamSet, StateReader, arg, non_negative, snapshot, unit_interval};

/// How the momentum buffer is accumulated (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MomentumForm {
    /// b ← μ·b + (1 − dampening)·g, b₁ = g₁ (PyTorch).
    #[default]
    PyTorch,
    /// v ← β·v + (1 − β)·g, v₀ = 0 (the exponentially weighted average of the lecture).
    Exponential,
}

/// Hyper-parameters of [`Sgd`]; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate α (PyTorch's default 1e-3).
    pub lr: f64,
    /// Momentum μ (or β of the exponential form), in [0, 1); 0 turns momentum off.
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer (PyTorch form only).
    pub dampening: f64,
    /// Nesterov momentum (PyTorch form only; needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// Coupled L2 weight decay λ: g ← g + λw.
    pub weight_decay: f64,
    /// Which momentum update to use.
    pub momentum_form: MomentumForm,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            momentum_form: MomentumForm::PyTorch,
        }
    }
}

impl SgdConfig {
    /// Plain gradient descent with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            ..Default::default()
        }
    }
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
    pub fn momentum_form(mut self, form: MomentumForm) -> Self {
        self.momentum_form = form;
        self
    }

    fn validate(&self) -> Result<()> {
        const OP: &str = "Sgd::new";
        non_negative(OP, "lr", self.lr)?;
        unit_interval(OP, "momentum", self.momentum)?;
        non_negative(OP, "weight_decay", self.weight_decay)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return arg(OP, format!("dampening must be in [0, 1], got {}", self.dampening));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return arg(OP, "Nesterov momentum requires a momentum > 0 and zero dampening");
        }
        if self.momentum_form == MomentumForm::Exponential && (self.nesterov || self.dampening != 0.0) {
            return arg(
                OP,
                "the exponential momentum form has no Nesterov variant and no dampening (its (1 - beta) factor is the dampening)",
            );
        }
        Ok(())
    }
}

/// Stochastic gradient descent (PyTorch's `torch.optim.SGD`, plus the lecture's exponential
/// momentum form). See the module docs for the update rules.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::optim::{MomentumForm, Optimizer, Sgd, SgdConfig};
///
/// let w = Tensor::from_vec(vec![1.0f64], (1,)).unwrap().requires_grad_();
/// let cfg = SgdConfig::new(0.1).momentum(0.9).momentum_form(MomentumForm::Exponential);
/// let mut opt = Sgd::new(vec![("w".into(), w.clone())], cfg).unwrap();
/// let grads = w.mul_scalar(2.0).unwrap().sum_all().unwrap().backward().unwrap(); // g = 2
/// opt.step(&grads).unwrap(); // v = 0.1·2 = 0.2, w = 1 − 0.1·0.2
/// assert!((w.to_vec::<f64>().unwrap()[0] - 0.98).abs() < 1e-12);
/// ```
pub struct Sgd {
    cfg: SgdConfig,
    params: ParamSet,
    momentum: Vec<Option<Tensor>>,
}

impl Sgd {
    /// SGD over named parameters (from `Module::named_parameters`).
    pub fn new(params: Vec<(String, Tensor)>, cfg: SgdConfig) -> Result<Sgd> {
        Sgd::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// SGD over parameter groups with their own learning rate or weight decay.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: SgdConfig) -> Result<Sgd> {
        cfg.validate()?;
        let params = ParamSet::new("Sgd::new", groups, cfg.lr, cfg.weight_decay)?;
        let momentum = vec![None; params.slots.len()];
        Ok(Sgd { cfg, params, momentum })
    }

    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        const OP: &str = "Sgd::step";
        self.params.check_lr(OP)?;
        let _no_grad = NoGradGuard::new();
        let SgdConfig {
            momentum: mu,
            dampening,
            nesterov,
            momentum_form,
            ..
        } = self.cfg;
        for i in 0..self.params.slots.len() {
            let Some(g) = self.params.grad(OP, grads, i)? else {
                continue;
            };
            let p = &self.params.slots[i].param;
            let (lr, wd) = (self.params.lr_of(i), self.params.weight_decay_of(i));
            // b ← μb + c·d with b₀ = 0: PyTorch's first step takes b₁ = d (c = 1, no dampening);
            // the exponential form has v₁ = (1 − β)·d.
            let buffer_gain = match (momentum_form, self.momentum[i].is_some()) {
                (MomentumForm::PyTorch, false) => 1.0,
                (MomentumForm::PyTorch, true) => 1.0 - dampening,
                (MomentumForm::Exponential, _) => 1.0 - mu,
            };
            if mu != 0.0 && self.momentum[i].is_none() {
                self.momentum[i] = Some(Tensor::zeros_like(p)?);
            }
            // One fused pass: d = g + λw; b ← μb + c·d; w ← w − η·(Nesterov ? d + μb : b).
            let update = SgdUpdate {
                lr,
                weight_decay: wd,
                momentum: mu,
                buffer_gain,
                nesterov,
            };
            p.sgd_update_(g, self.momentum[i].as_ref(), update)?;
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
        for (slot, buf) in self.params.slots.iter().zip(&self.momentum) {
            if let Some(b) = buf {
                s.tensors.push((format!("{}.momentum_buffer", slot.name), snapshot(b)));
            }
        }
        s
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut r = StateReader::new("Sgd::load_state", state)?;
        let lr = r.lr()?;
        let mut momentum = Vec::with_capacity(self.params.slots.len());
        for slot in &self.params.slots {
            let buf = r.buffer(slot, "momentum_buffer")?;
            if buf.is_some() && self.cfg.momentum == 0.0 {
                return arg(
                    "Sgd::load_state",
                    format!(
                        "the state has a momentum buffer for `{}` but this SGD has no momentum",
                        slot.name
                    ),
                );
            }
            momentum.push(buf);
        }
        r.finish()?;
        self.params.set_lr(lr);
        self.momentum = momentum;
        Ok(())
    }
}
