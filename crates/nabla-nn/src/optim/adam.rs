//! Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as in PyTorch.
//!
//! With g the gradient at step t (counted per parameter from 1):
//!
//! ```text
//! m ← β₁·m + (1 − β₁)·g              first moment (momentum),          m₀ = 0
//! v ← β₂·v + (1 − β₂)·g²             second moment (RMSprop's average), v₀ = 0
//! m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)    bias correction: m and v start at 0
//! w ← w − α · m̂ / (√v̂ + ε)
//! ```
//!
//! AMSGrad (Reddi et al., 2018) divides by the running maximum of v instead of v.
//!
//! Weight decay λ:
//! * [`Adam`] couples it to the gradient (L2 regularisation): g ← g + λw before the moments.
//!   The adaptive denominator then scales the decay too, so heavily-updated weights decay
//!   less — the flaw AdamW fixes.
//! * [`AdamW`] decouples it: w ← (1 − αλ)·w before the Adam step, independent of the moments.

use nabla_core::{AdamUpdate, GradStore, NoGradGuard, Result, Tensor};

use super::{Optimizer, OptimizerState, ParamGroup, ParamSet, StateReader, arg, non_negative, snapshot};

/// Hyper-parameters of [`Adam`]; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate α (1e-3).
    pub lr: f64,
    /// β₁ and β₂, the decay rates of the first and second moments ((0.9, 0.999)), in [0, 1).
    pub betas: (f64, f64),
    /// ε added to the denominator (1e-8).
    pub eps: f64,
    /// Coupled L2 weight decay λ: g ← g + λw (0).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdamConfig {
            lr,
            ..Default::default()
        }
    }
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
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
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }
}

/// Hyper-parameters of [`AdamW`]; the defaults are PyTorch's (note the weight decay 1e-2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate α (1e-3).
    pub lr: f64,
    /// β₁ and β₂ ((0.9, 0.999)), in [0, 1).
    pub betas: (f64, f64),
    /// ε added to the denominator (1e-8).
    pub eps: f64,
    /// Decoupled weight decay λ: w ← (1 − αλ)·w before each step (1e-2).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
        }
    }
}

impl AdamWConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdamWConfig {
            lr,
            ..Default::default()
        }
    }
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
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
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }
}

/// The settings both optimisers share.
#[derive(Debug, Clone, Copy)]
struct Settings {
    betas: (f64, f64),
    eps: f64,
    amsgrad: bool,
    decoupled: bool,
}

/// Per-parameter state. The buffers exist once the parameter has been stepped.
#[derive(Default, Clone)]
struct Moments {
    step: u64,
    exp_avg: Option<Tensor>,
    exp_avg_sq: Option<Tensor>,
    max_exp_avg_sq: Option<Tensor>,
}

/// The algorithm behind [`Adam`] and [`AdamW`].
struct AdamCore {
    op_step: &'static str,
    op_load: &'static str,
    s: Settings,
    params: ParamSet,
    state: Vec<Moments>,
}

impl AdamCore {
    fn new(
        op: &'static str,
        op_step: &'static str,
        op_load: &'static str,
        groups: Vec<ParamGroup>,
        lr: f64,
        weight_decay: f64,
        s: Settings,
    ) -> Result<AdamCore> {
        non_negative(op, "lr", lr)?;
        non_negative(op, "eps", s.eps)?;
        non_negative(op, "weight_decay", weight_decay)?;
        for (i, b) in [s.betas.0, s.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&b) {
                return arg(op, format!("beta{} must be in [0, 1), got {b}", i + 1));
            }
        }
        let params = ParamSet::new(op, groups, lr, weight_decay)?;
        let state = vec![Moments::default(); params.slots.len()];
        Ok(AdamCore {
            op_step,
            op_load,
            s,
            params,
            state,
        })
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let op = self.op_step;
        self.params.check_lr(op)?;
        let _no_grad = NoGradGuard::new();
        let Settings {
            betas: (beta1, beta2),
            eps,
            amsgrad,
            decoupled,
        } = self.s;
        for i in 0..self.params.slots.len() {
            let Some(g) = self.params.grad(op, grads, i)? else {
                continue;
            };
            let p = &self.params.slots[i].param;
            let (lr, wd) = (self.params.lr_of(i), self.params.weight_decay_of(i));
            let st = &mut self.state[i];
            st.step += 1;

            let zeros = || Tensor::zeros_like(p);
            if st.exp_avg.is_none() {
                st.exp_avg = Some(zeros()?);
            }
            if st.exp_avg_sq.is_none() {
                st.exp_avg_sq = Some(zeros()?);
            }
            if amsgrad && st.max_exp_avg_sq.is_none() {
                st.max_exp_avg_sq = Some(zeros()?);
            }
            // One fused pass over w, g, m, v (and v̄): the formulas are on `AdamUpdate`.
            let update = AdamUpdate {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay: wd,
                decoupled,
                step: st.step,
            };
            let (m, v) = (st.exp_avg.as_ref().expect("set"), st.exp_avg_sq.as_ref().expect("set"));
            let v_max = if amsgrad { st.max_exp_avg_sq.as_ref() } else { None };
            p.adam_update_(g, m, v, v_max, update)?;
        }
        Ok(())
    }

    fn state(&self) -> OptimizerState {
        let mut s = self.params.save_common();
        for (slot, st) in self.params.slots.iter().zip(&self.state) {
            if st.step == 0 {
                continue;
            }
            s.scalars.insert(format!("{}.step", slot.name), st.step as f64);
            for (key, buf) in [
                ("exp_avg", &st.exp_avg),
                ("exp_avg_sq", &st.exp_avg_sq),
                ("max_exp_avg_sq", &st.max_exp_avg_sq),
            ] {
                if let Some(b) = buf {
                    s.tensors.push((format!("{}.{key}", slot.name), snapshot(b)));
                }
            }
        }
        s
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let op = self.op_load;
        let mut r = StateReader::new(op, state)?;
        let lr = r.lr()?;
        let mut loaded = Vec::with_capacity(self.params.slots.len());
        for slot in &self.params.slots {
            let step = r.step(&slot.name)?.unwrap_or(0);
            let exp_avg = r.buffer(slot, "exp_avg")?;
            let exp_avg_sq = r.buffer(slot, "exp_avg_sq")?;
            let max_exp_avg_sq = r.buffer(slot, "max_exp_avg_sq")?;
            let complete = exp_avg.is_some() && exp_avg_sq.is_some() && (max_exp_avg_sq.is_some() || !self.s.amsgrad);
            if step > 0 && !complete {
                return arg(
                    op,
                    format!(
                        "parameter `{}` has a step count but not all its moment buffers",
                        slot.name
                    ),
                );
            }
            if max_exp_avg_sq.is_some() && !self.s.amsgrad {
                return arg(
                    op,
                    format!("the state has `{}.max_exp_avg_sq` but AMSGrad is off", slot.name),
                );
            }
            if step == 0 && exp_avg.is_some() {
                return arg(
                    op,
                    format!("parameter `{}` has moment buffers but no step count", slot.name),
                );
            }
            loaded.push(Moments {
                step,
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq,
            });
        }
        r.finish()?;
        self.params.set_lr(lr);
        self.state = loaded;
        Ok(())
    }
}

/// Adam with coupled (L2) weight decay, PyTorch's `torch.optim.Adam`.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::optim::{Adam, AdamConfig, Optimizer};
///
/// let w = Tensor::from_vec(vec![3.0f64], (1,)).unwrap().requires_grad_();
/// let mut opt = Adam::new(vec![("w".into(), w.clone())], AdamConfig::new(0.1)).unwrap();
/// let grads = w.sqr().unwrap().sum_all().unwrap().backward().unwrap();
/// opt.step(&grads).unwrap(); // the first step has length α whatever the gradient's scale
/// assert!((w.to_vec::<f64>().unwrap()[0] - 2.9).abs() < 1e-7);
/// ```
pub struct Adam(AdamCore);

impl Adam {
    /// Adam over named parameters (from `Module::named_parameters`).
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamConfig) -> Result<Adam> {
        Adam::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// Adam over parameter groups with their own learning rate or weight decay.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdamConfig) -> Result<Adam> {
        let s = Settings {
            betas: cfg.betas,
            eps: cfg.eps,
            amsgrad: cfg.amsgrad,
            decoupled: false,
        };
        let core = AdamCore::new(
            "Adam::new",
            "Adam::step",
            "Adam::load_state",
            groups,
            cfg.lr,
            cfg.weight_decay,
            s,
        )?;
        Ok(Adam(core))
    }
}

/// Adam with decoupled weight decay, PyTorch's `torch.optim.AdamW`.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::optim::{AdamW, AdamWConfig, Optimizer};
///
/// let w = Tensor::from_vec(vec![3.0f64], (1,)).unwrap().requires_grad_();
/// let cfg = AdamWConfig::new(0.1).weight_decay(0.5);
/// let mut opt = AdamW::new(vec![("w".into(), w.clone())], cfg).unwrap();
/// let grads = w.sqr().unwrap().sum_all().unwrap().backward().unwrap();
/// opt.step(&grads).unwrap(); // w ← (1 − 0.1·0.5)·3 − 0.1
/// assert!((w.to_vec::<f64>().unwrap()[0] - 2.75).abs() < 1e-7);
/// ```
pub struct AdamW(AdamCore);

impl AdamW {
    /// AdamW over named parameters (from `Module::named_parameters`).
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamWConfig) -> Result<AdamW> {
        AdamW::with_groups(vec![ParamGroup::new(params)], cfg)
    }

    /// AdamW over parameter groups with their own learning rate or weight decay.
    pub fn with_groups(groups: Vec<ParamGroup>, cfg: AdamWConfig) -> Result<AdamW> {
        let s = Settings {
            betas: cfg.betas,
            eps: cfg.eps,
            amsgrad: cfg.amsgrad,
            decoupled: true,
        };
        let core = AdamCore::new(
            "AdamW::new",
            "AdamW::step",
            "AdamW::load_state",
            groups,
            cfg.lr,
            cfg.weight_decay,
            s,
        )?;
        Ok(AdamW(core))
    }
}

macro_rules! delegate_optimizer {
    ($ty:ty) => {
        impl Optimizer for $ty {
            fn step(&mut self, grads: &GradStore) -> Result<()> {
                self.0.step(grads)
            }
            fn lr(&self) -> f64 {
                self.0.params.lr()
            }
            fn set_lr(&mut self, lr: f64) {
                self.0.params.set_lr(lr)
            }
            fn state(&self) -> OptimizerState {
                self.0.state()
            }
            fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
                self.0.load_state(state)
            }
        }
    };
}

delegate_optimizer!(Adam);
delegate_optimizer!(AdamW);
