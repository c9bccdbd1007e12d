//! Optimisers: gradient descent and its descendants, with PyTorch's update rules.
//!
//! An optimiser owns handles to the parameters (the same leaf tensors the model holds) and
//! their per-parameter state (momentum buffers, moment estimates). Each [`Optimizer::step`]
//! reads ∂L/∂p for every parameter from a [`GradStore`] and overwrites the parameter in place
//! (`p.copy_(&new)` under [`no_grad`](nabla_core::no_grad)), so the model sees the new values and the tensors keep
//! their identity and dtype. A parameter without a gradient in the store is skipped, and its
//! state (and Adam's step counter) does not move, as in PyTorch.
//!
//! | optimiser | update (g = ∂L/∂w) |
//! | --- | --- |
//! | [`Sgd`] | w ← w − α·g, optionally with momentum (PyTorch's or the exponential average), Nesterov, L2 weight decay |
//! | [`Adam`] | Kingma & Ba (2015), bias-corrected first and second moments, optional AMSGrad |
//! | [`AdamW`] | Adam with decoupled weight decay (Loshchilov & Hutter, 2019) |
//! | [`RMSprop`] | g / √(running mean of g²), optional momentum and centring |
//!
//! ```
//! use nabla_core::{DType, Tensor};
//! use nabla_nn::optim::{Optimizer, Sgd, SgdConfig};
//!
//! let w = Tensor::from_vec(vec![1.0f64, -2.0], (2,)).unwrap().requires_grad_();
//! let mut opt = Sgd::new(vec![("w".to_string(), w.clone())], SgdConfig::new(0.1)).unwrap();
//! let loss = w.sqr().unwrap().sum_all().unwrap(); // L = ‖w‖², ∂L/∂w = 2w
//! let grads = loss.backward().unwrap();
//! opt.step(&grads).unwrap(); // w ← w − 0.1·2w = 0.8·w
//! assert_eq!(w.to_vec::<f64>().unwrap(), vec![0.8, -1.6]);
//! ```
//!
//! # Saving and restoring
//!
//! [`Optimizer::state`] returns everything needed to continue a run exactly: the current
//! learning rate, each parameter's buffers as tensors named `<parameter>.<buffer>` (PyTorch's
//! buffer names: `momentum_buffer`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `square_avg`,
//! `grad_avg`) and step counters as scalars named `<parameter>.step`. Build the optimiser
//! again with the same parameters and configuration and call [`Optimizer::load_state`].

use std::collections::{BTreeMap, HashMap, HashSet};

use nabla_core::{Error, GradStore, Result, Tensor};

pub mod adam;
pub mod rmsprop;
pub mod sgd;

pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use rmsprop::{RMSprop, RMSpropConfig};
pub use sgd::{MomentumForm, Sgd, SgdConfig};

/// Updates parameters from their gradients.
pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient in `grads`.
    fn step(&mut self, grads: &GradStore) -> Result<()>;

    /// The current learning rate (of groups without a learning rate of their own).
    fn lr(&self) -> f64;

    /// Sets the learning rate, as a schedule does between epochs. Groups created with a
    /// learning rate of their own keep their ratio to the default one, the way PyTorch's
    /// schedulers scale every group's initial rate by the same factor. An invalid value
    /// (negative, not finite) makes the next [`Optimizer::step`] fail.
    fn set_lr(&mut self, lr: f64);

    /// Everything needed to continue exactly where this optimiser is (see the module docs).
    fn state(&self) -> OptimizerState;

    /// Restores a state taken with [`Optimizer::state`] from an optimiser of the same kind
    /// over parameters of the same names and shapes.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        (**self).step(grads)
    }
    fn lr(&self) -> f64 {
        (**self).lr()
    }
    fn set_lr(&mut self, lr: f64) {
        (**self).set_lr(lr)
    }
    fn state(&self) -> OptimizerState {
        (**self).state()
    }
    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        (**self).load_state(state)
    }
}

/// The state of an optimiser: named tensors (per-parameter buffers) and named scalars
/// (the learning rate, step counters), ready to be written to a safetensors file.
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    pub tensors: Vec<(String, Tensor)>,
    pub scalars: BTreeMap<String, f64>,
}

/// A set of parameters sharing hyper-parameters; `None` takes the optimiser's setting.
#[derive(Debug, Clone, Default)]
pub struct ParamGroup {
    pub params: Vec<(String, Tensor)>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group with the optimiser's settings.
    pub fn new(params: Vec<(String, Tensor)>) -> Self {
        ParamGroup {
            params,
            lr: None,
            weight_decay: None,
        }
    }

    /// This group's own learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// This group's own weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// Splits named parameters into two groups: `[decayed, not decayed]`. Parameters for which
    /// `no_decay(name, tensor)` holds get weight decay 0, the others `weight_decay`. With
    /// [`is_bias_or_norm`] as the predicate this is the usual recipe: decay the weights of
    /// linear and convolution layers, never biases or batch-norm scales and shifts.
    ///
    /// ```
    /// use nabla_core::{DType, Tensor};
    /// use nabla_nn::optim::{ParamGroup, is_bias_or_norm};
    /// let named = vec![
    ///     ("fc.weight".to_string(), Tensor::zeros((3, 4), DType::F32)),
    ///     ("fc.bias".to_string(), Tensor::zeros((3,), DType::F32)),
    ///     ("bn.weight".to_string(), Tensor::zeros((3,), DType::F32)),
    /// ];
    /// let groups = ParamGroup::split_decay(named, 5e-4, is_bias_or_norm);
    /// assert_eq!(groups[0].params.len(), 1); // fc.weight, decayed
    /// assert_eq!(groups[1].params.len(), 2); // fc.bias, bn.weight
    /// assert_eq!(groups[1].weight_decay, Some(0.0));
    /// ```
    pub fn split_decay(
        params: Vec<(String, Tensor)>,
        weight_decay: f64,
        no_decay: impl Fn(&str, &Tensor) -> bool,
    ) -> Vec<ParamGroup> {
        let (plain, decayed): (Vec<_>, Vec<_>) = params.into_iter().partition(|(n, t)| no_decay(n, t));
        vec![
            ParamGroup::new(decayed).weight_decay(weight_decay),
            ParamGroup::new(plain).weight_decay(0.0),
        ]
    }
}

/// The default predicate of [`ParamGroup::split_decay`]: biases (names ending in `bias`) and
/// every parameter of at most one dimension (batch-norm γ and β, layer-norm, PReLU slopes).
pub fn is_bias_or_norm(name: &str, t: &Tensor) -> bool {
    t.rank() <= 1 || name.ends_with("bias")
}

// ---------------------------------------------------------------------------- shared machinery

pub(crate) fn arg<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Argument { op, msg: msg.into() })
}

/// Checks that a hyper-parameter is finite and ≥ 0.
pub(crate) fn non_negative(op: &'static str, what: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        return arg(op, format!("{what} must be finite and >= 0, got {v}"));
    }
    Ok(())
}

/// Checks that a hyper-parameter lies in [0, 1).
pub(crate) fn unit_interval(op: &'static str, what: &str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return arg(op, format!("{what} must be in [0, 1), got {v}"));
    }
    Ok(())
}

/// One parameter with its group.
pub(crate) struct Slot {
    pub name: String,
    pub param: Tensor,
    pub group: usize,
}

struct GroupSettings {
    lr: Option<f64>,
    weight_decay: f64,
}

/// The parameters of an optimiser, flattened out of their groups, and the learning rate.
pub(crate) struct ParamSet {
    pub slots: Vec<Slot>,
    groups: Vec<GroupSettings>,
    /// The default learning rate given at construction.
    base_lr: f64,
    /// The current default learning rate (moved by schedules).
    lr: f64,
}

impl ParamSet {
    /// Validates the groups: float parameters, unique names, no tensor twice, sane overrides.
    pub fn new(op: &'static str, groups: Vec<ParamGroup>, lr: f64, weight_decay: f64) -> Result<ParamSet> {
        non_negative(op, "lr", lr)?;
        non_negative(op, "weight_decay", weight_decay)?;
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        let mut slots = Vec::new();
        let mut settings = Vec::new();
        for (gi, group) in groups.into_iter().enumerate() {
            if let Some(glr) = group.lr {
                non_negative(op, &format!("lr of parameter group {gi}"), glr)?;
            }
            let wd = group.weight_decay.unwrap_or(weight_decay);
            non_negative(op, &format!("weight_decay of parameter group {gi}"), wd)?;
            settings.push(GroupSettings {
                lr: group.lr,
                weight_decay: wd,
            });
            for (name, param) in group.params {
                if !param.dtype().is_float() {
                    return arg(
                        op,
                        format!(
                            "parameter `{name}` has dtype {:?}; only f32 and f64 can be trained",
                            param.dtype()
                        ),
                    );
                }
                if !names.insert(name.clone()) {
                    return arg(op, format!("parameter name `{name}` appears twice"));
                }
                if !ids.insert(param.id()) {
                    return arg(
                        op,
                        format!("parameter `{name}` is given twice (under another name or group)"),
                    );
                }
                slots.push(Slot { name, param, group: gi });
            }
        }
        Ok(ParamSet {
            slots,
            groups: settings,
            base_lr: lr,
            lr,
        })
    }

    pub fn lr(&self) -> f64 {
        self.lr
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Fails when a schedule or the caller has set an unusable learning rate.
    pub fn check_lr(&self, op: &'static str) -> Result<()> {
        non_negative(op, "lr", self.lr)
    }

    /// The learning rate of slot `i`: the default one, or the group's own scaled by the
    /// factor the schedule has applied to the default one since construction.
    pub fn lr_of(&self, i: usize) -> f64 {
        match self.groups[self.slots[i].group].lr {
            None => self.lr,
            Some(own) if self.base_lr > 0.0 => own * (self.lr / self.base_lr),
            Some(own) => own,
        }
    }

    pub fn weight_decay_of(&self, i: usize) -> f64 {
        self.groups[self.slots[i].group].weight_decay
    }

    /// The gradient of slot `i`, if the store has one; it must match the parameter.
    pub fn grad<'a>(&self, op: &'static str, grads: &'a GradStore, i: usize) -> Result<Option<&'a Tensor>> {
        let slot = &self.slots[i];
        let Some(g) = grads.get(&slot.param) else {
            return Ok(None);
        };
        if g.shape() != slot.param.shape() || g.dtype() != slot.param.dtype() {
            return arg(
                op,
                format!(
                    "gradient {} {:?} does not match parameter `{}` {} {:?}",
                    g.shape(),
                    g.dtype(),
                    slot.name,
                    slot.param.shape(),
                    slot.param.dtype()
                ),
            );
        }
        Ok(Some(g))
    }

    /// The common part of every optimiser's state: the current learning rate.
    pub fn save_common(&self) -> OptimizerState {
        let mut s = OptimizerState::default();
        s.scalars.insert("lr".to_string(), self.lr);
        s
    }
}

/// Reads an [`OptimizerState`] back, checking that every entry is used exactly once.
pub(crate) struct StateReader<'a> {
    op: &'static str,
    tensors: HashMap<&'a str, &'a Tensor>,
    scalars: &'a BTreeMap<String, f64>,
    used_scalars: HashSet<&'a str>,
}

impl<'a> StateReader<'a> {
    pub fn new(op: &'static str, state: &'a OptimizerState) -> Result<StateReader<'a>> {
        let mut tensors = HashMap::new();
        for (name, t) in &state.tensors {
            if tensors.insert(name.as_str(), t).is_some() {
                return arg(op, format!("state tensor `{name}` appears twice"));
            }
        }
        Ok(StateReader {
            op,
            tensors,
            scalars: &state.scalars,
            used_scalars: HashSet::new(),
        })
    }

    /// The learning rate saved by [`ParamSet::save_common`].
    pub fn lr(&mut self) -> Result<f64> {
        let lr = self.scalar("lr")?.ok_or_else(|| Error::Argument {
            op: self.op,
            msg: "the state has no `lr` scalar".into(),
        })?;
        non_negative(self.op, "lr in the state", lr)?;
        Ok(lr)
    }

    pub fn scalar(&mut self, key: &str) -> Result<Option<f64>> {
        match self.scalars.get_key_value(key) {
            Some((k, &v)) => {
                self.used_scalars.insert(k.as_str());
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    /// A step counter `<param>.step`: a non-negative integer.
    pub fn step(&mut self, param: &str) -> Result<Option<u64>> {
        let key = format!("{param}.step");
        match self.scalar(&key)? {
            None => Ok(None),
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53) => Ok(Some(v as u64)),
            Some(v) => arg(
                self.op,
                format!("state scalar `{key}` must be a non-negative integer, got {v}"),
            ),
        }
    }

    /// The buffer `<param>.<buffer>`, converted to the parameter's dtype; its shape must match.
    pub fn buffer(&mut self, slot: &Slot, buffer: &str) -> Result<Option<Tensor>> {
        let key = format!("{}.{buffer}", slot.name);
        let Some(t) = self.tensors.remove(key.as_str()) else {
            return Ok(None);
        };
        if t.shape() != slot.param.shape() {
            return arg(
                self.op,
                format!(
                    "state tensor `{key}` has shape {} but the parameter has shape {}",
                    t.shape(),
                    slot.param.shape()
                ),
            );
        }
        if !t.dtype().is_float() {
            return arg(self.op, format!("state tensor `{key}` has dtype {:?}", t.dtype()));
        }
        // A private copy: the optimiser writes its buffers in place, and the caller's tensors
        // must not change the optimiser's state behind its back (nor the reverse).
        let owned = t.detach().to_dtype(slot.param.dtype())?;
        let owned = if owned.same_storage(t) { copy_of(&owned)? } else { owned };
        // On the parameter's device: a checkpoint is read on the host.
        Ok(Some(owned.to_device(slot.param.device())?))
    }

    /// Fails if the state held entries this optimiser does not know (another model's state).
    pub fn finish(self) -> Result<()> {
        let mut unknown: Vec<&str> = self.tensors.keys().copied().collect();
        unknown.extend(
            self.scalars
                .keys()
                .map(|k| k.as_str())
                .filter(|k| !self.used_scalars.contains(k)),
        );
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return arg(
                self.op,
                format!(
                    "the state has entries for no parameter of this optimiser: {}",
                    unknown.join(", ")
                ),
            );
        }
        Ok(())
    }
}

/// A copy of `t` in fresh storage.
fn copy_of(t: &Tensor) -> Result<Tensor> {
    let out = Tensor::zeros(t.shape(), t.dtype());
    out.copy_(t)?;
    Ok(out)
}

/// a + w·(b − a), computed as PyTorch's CPU `lerp` does (from the nearer end), so that the
/// moment estimates match PyTorch's to the last bit where the kernels agree.
pub(crate) fn lerp(a: &Tensor, b: &Tensor, w: f64) -> Result<Tensor> {
    let diff = b.sub(a)?;
    if w < 0.5 {
        a.add(&diff.mul_scalar(w)?)
    } else {
        b.sub(&diff.mul_scalar(1.0 - w)?)
    }
}

/// A copy of a state buffer for `Optimizer::state`: the fused updates write the live buffers
/// in place, so a saved state must not share their storage.
pub(crate) fn snapshot(t: &Tensor) -> Tensor {
    // NOTE: a dense copy of a CPU float tensor cannot fail; the fallback only keeps this
    // signature infallible.
    t.contiguous_copy().unwrap_or_else(|_| t.clone())
}
