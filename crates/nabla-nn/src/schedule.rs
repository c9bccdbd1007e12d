//! Learning-rate schedules, with PyTorch's `torch.optim.lr_scheduler` semantics.
//!
//! A schedule is a function of the epoch (or step) counter t = 0, 1, 2, …: [`LrScheduler::lr`]
//! is the rate for the current t, and [`LrScheduler::step`] advances t by one and returns the
//! new rate. The training loop applies it to the optimiser:
//!
//! ```
//! use nabla_nn::schedule::{LrScheduler, StepLR};
//! let mut sched = StepLR::new(0.1, 3, 0.5).unwrap(); // halve every 3 epochs
//! let mut lrs = vec![sched.lr()];                     // epoch 0: opt.set_lr(sched.lr())
//! for _epoch in 0..6 {
//!     // ... train one epoch with lrs.last() ...
//!     lrs.push(sched.step(None));                     // opt.set_lr(sched.step(None))
//! }
//! assert_eq!(lrs, vec![0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
//! ```
//!
//! The epoch-driven schedules use PyTorch's closed forms, base_lr · factor(t); PyTorch steps
//! most of them recursively (lr ← lr · ratio), which agrees to rounding. [`ReduceLROnPlateau`]
//! is driven by a metric (`step(Some(val_loss))`). State is a map of named numbers
//! ([`LrScheduler::state`]) so that a checkpoint can restore a schedule mid-run.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use nabla_core::{Error, Result};

/// A learning-rate schedule.
pub trait LrScheduler: Send {
    /// Advances the counter by one (call once per epoch, or per step for per-step schedules)
    /// and returns the new learning rate. `metric` is read by [`ReduceLROnPlateau`] only.
    fn step(&mut self, metric: Option<f64>) -> f64;

    /// The learning rate for the current counter.
    fn lr(&self) -> f64;

    /// The counter and whatever else is needed to continue exactly (named numbers).
    fn state(&self) -> BTreeMap<String, f64>;

    /// Restores a state taken with [`LrScheduler::state`] from a schedule built alike.
    fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()>;
}

impl<S: LrScheduler + ?Sized> LrScheduler for Box<S> {
    fn step(&mut self, metric: Option<f64>) -> f64 {
        (**self).step(metric)
    }
    fn lr(&self) -> f64 {
        (**self).lr()
    }
    fn state(&self) -> BTreeMap<String, f64> {
        (**self).state()
    }
    fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()> {
        (**self).load_state(state)
    }
}

fn arg<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Argument { op, msg: msg.into() })
}

fn check_lr(op: &'static str, what: &str, lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr >= 0.0) {
        return arg(op, format!("{what} must be finite and >= 0, got {lr}"));
    }
    Ok(())
}

fn check_positive(op: &'static str, what: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return arg(op, format!("{what} must be finite and > 0, got {v}"));
    }
    Ok(())
}

/// A non-negative integer counter stored under `key`.
fn read_count(op: &'static str, state: &BTreeMap<String, f64>, key: &str) -> Result<u64> {
    match state.get(key) {
        None => arg(op, format!("the state has no `{key}`")),
        Some(&v) if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(53) => Ok(v as u64),
        Some(&v) => arg(op, format!("`{key}` must be a non-negative integer, got {v}")),
    }
}

fn read_value(op: &'static str, state: &BTreeMap<String, f64>, key: &str) -> Result<f64> {
    state.get(key).copied().ok_or_else(|| Error::Argument {
        op,
        msg: format!("the state has no `{key}`"),
    })
}

/// Implements [`LrScheduler`] for a schedule with an `epoch` counter and a closed form
/// `lr_at(epoch)`.
macro_rules! closed_form_scheduler {
    ($ty:ident) => {
        impl LrScheduler for $ty {
            fn step(&mut self, _metric: Option<f64>) -> f64 {
                self.epoch += 1;
                self.lr_at(self.epoch)
            }
            fn lr(&self) -> f64 {
                self.lr_at(self.epoch)
            }
            fn state(&self) -> BTreeMap<String, f64> {
                BTreeMap::from([("epoch".to_string(), self.epoch as f64)])
            }
            fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()> {
                self.epoch = read_count(concat!(stringify!($ty), "::load_state"), state, "epoch")?;
                Ok(())
            }
        }
    };
}

// ------------------------------------------------------------------------------ ConstantLR

/// base_lr · factor for the first `total_iters` epochs, then base_lr (PyTorch's `ConstantLR`);
/// [`ConstantLR::constant`] never changes.
#[derive(Debug, Clone)]
pub struct ConstantLR {
    base_lr: f64,
    factor: f64,
    total_iters: u64,
    epoch: u64,
}

impl ConstantLR {
    /// `factor` in [0, 1] (PyTorch's defaults are 1/3 and 5).
    pub fn new(base_lr: f64, factor: f64, total_iters: u64) -> Result<ConstantLR> {
        const OP: &str = "ConstantLR::new";
        check_lr(OP, "base_lr", base_lr)?;
        if !(0.0..=1.0).contains(&factor) {
            return arg(OP, format!("factor must be in [0, 1], got {factor}"));
        }
        Ok(ConstantLR {
            base_lr,
            factor,
            total_iters,
            epoch: 0,
        })
    }

    /// A learning rate that stays `base_lr`.
    pub fn constant(base_lr: f64) -> Result<ConstantLR> {
        ConstantLR::new(base_lr, 1.0, 0)
    }

    fn lr_at(&self, epoch: u64) -> f64 {
        if epoch < self.total_iters {
            self.base_lr * self.factor
        } else {
            self.base_lr
        }
    }
}

closed_form_scheduler!(ConstantLR);

// ------------------------------------------------------------------------------ StepLR

/// base_lr · γ^⌊t / step_size⌋ (PyTorch's `StepLR`).
#[derive(Debug, Clone)]
pub struct StepLR {
    base_lr: f64,
    step_size: u64,
    gamma: f64,
    epoch: u64,
}

impl StepLR {
    /// Multiplies the rate by `gamma` every `step_size` epochs (PyTorch's default γ is 0.1).
    pub fn new(base_lr: f64, step_size: u64, gamma: f64) -> Result<StepLR> {
        const OP: &str = "StepLR::new";
        check_lr(OP, "base_lr", base_lr)?;
        check_lr(OP, "gamma", gamma)?;
        if step_size == 0 {
            return arg(OP, "step_size must be at least 1");
        }
        Ok(StepLR {
            base_lr,
            step_size,
            gamma,
            epoch: 0,
        })
    }

    fn lr_at(&self, epoch: u64) -> f64 {
        self.base_lr * self.gamma.powf((epoch / self.step_size) as f64)
    }
}

closed_form_scheduler!(StepLR);

// ------------------------------------------------------------------------------ MultiStepLR

/// base_lr · γ^(number of milestones ≤ t) (PyTorch's `MultiStepLR`; a milestone listed twice
/// counts twice, as there).
#[derive(Debug, Clone)]
pub struct MultiStepLR {
    base_lr: f64,
    milestones: Vec<u64>,
    gamma: f64,
    epoch: u64,
}

impl MultiStepLR {
    /// Multiplies the rate by `gamma` at each epoch in `milestones`.
    pub fn new(base_lr: f64, milestones: &[u64], gamma: f64) -> Result<MultiStepLR> {
        const OP: &str = "MultiStepLR::new";
        check_lr(OP, "base_lr", base_lr)?;
        check_lr(OP, "gamma", gamma)?;
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Ok(MultiStepLR {
            base_lr,
            milestones,
            gamma,
            epoch: 0,
        })
    }

    fn lr_at(&self, epoch: u64) -> f64 {
        let passed = self.milestones.partition_point(|&m| m <= epoch);
        self.base_lr * self.gamma.powf(passed as f64)
    }
}

closed_form_scheduler!(MultiStepLR);

// ------------------------------------------------------------------------------ ExponentialLR

/// base_lr · γᵗ (PyTorch's `ExponentialLR`).
#[derive(Debug, Clone)]
pub struct ExponentialLR {
    base_lr: f64,
    gamma: f64,
    epoch: u64,
}

impl ExponentialLR {
    pub fn new(base_lr: f64, gamma: f64) -> Result<ExponentialLR> {
        const OP: &str = "ExponentialLR::new";
        check_lr(OP, "base_lr", base_lr)?;
        check_lr(OP, "gamma", gamma)?;
        Ok(ExponentialLR {
            base_lr,
            gamma,
            epoch: 0,
        })
    }

    fn lr_at(&self, epoch: u64) -> f64 {
        self.base_lr * self.gamma.powf(epoch as f64)
    }
}

closed_form_scheduler!(ExponentialLR);

// ------------------------------------------------------------------------------ CosineAnnealingLR

/// η_min + (base_lr − η_min) · (1 + cos(π t / T_max)) / 2 (PyTorch's `CosineAnnealingLR`,
/// SGDR without restarts, Loshchilov & Hutter 2017). Past T_max the cosine goes on (the rate
/// climbs back towards base_lr over the next T_max epochs), as in PyTorch.
#[derive(Debug, Clone)]
pub struct CosineAnnealingLR {
    base_lr: f64,
    t_max: u64,
    eta_min: f64,
    epoch: u64,
}

impl CosineAnnealingLR {
    /// Anneals from `base_lr` to `eta_min` over `t_max` epochs.
    pub fn new(base_lr: f64, t_max: u64, eta_min: f64) -> Result<CosineAnnealingLR> {
        const OP: &str = "CosineAnnealingLR::new";
        check_lr(OP, "base_lr", base_lr)?;
        check_lr(OP, "eta_min", eta_min)?;
        if t_max == 0 {
            return arg(OP, "t_max must be at least 1");
        }
        Ok(CosineAnnealingLR {
            base_lr,
            t_max,
            eta_min,
            epoch: 0,
        })
    }

    fn lr_at(&self, epoch: u64) -> f64 {
        let c = (PI * epoch as f64 / self.t_max as f64).cos();
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + c) / 2.0
    }
}

closed_form_scheduler!(CosineAnnealingLR);

// ------------------------------------------------------------------------------ LinearLR

/// base_lr · (start + (end − start) · min(t, total_iters) / total_iters) (PyTorch's `LinearLR`).
#[derive(Debug, Clone)]
pub struct LinearLR {
    base_lr: f64,
    start_factor: f64,
    end_factor: f64,
    total_iters: u64,
    epoch: u64,
}

impl LinearLR {
    /// `start_factor` in (0, 1], `end_factor` in [0, 1], `total_iters` ≥ 1 (PyTorch's
    /// defaults: 1/3, 1, 5).
    pub fn new(base_lr: f64, start_factor: f64, end_factor: f64, total_iters: u64) -> Result<LinearLR> {
        const OP: &str = "LinearLR::new";
        check_lr(OP, "base_lr", base_lr)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return arg(OP, format!("start_factor must be in (0, 1], got {start_factor}"));
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return arg(OP, format!("end_factor must be in [0, 1], got {end_factor}"));
        }
        if total_iters == 0 {
            return arg(OP, "total_iters must be at least 1");
        }
        Ok(LinearLR {
            base_lr,
            start_factor,
            end_factor,
            total_iters,
            epoch: 0,
        })
    }

    fn lr_at(&self, epoch: u64) -> f64 {
        let frac = epoch.min(self.total_iters) as f64 / self.total_iters as f64;
        self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)
    }
}

closed_form_scheduler!(LinearLR);

// ------------------------------------------------------------------------------ LinearWarmup

/// Linear warm-up from base_lr · start_factor to base_lr over `warmup` epochs (or steps),
/// then the `inner` schedule, started afresh: PyTorch's
/// `SequentialLR([LinearLR(start_factor, 1, warmup), inner], milestones=[warmup])`.
///
/// lr(t) = base_lr · (start + (1 − start) · t / warmup) for t < warmup, inner(t − warmup) after.
/// Build `inner` with the same `base_lr`. With `warmup` 0 it is `inner` alone.
///
/// ```
/// use nabla_nn::schedule::{CosineAnnealingLR, LinearWarmup, LrScheduler};
/// let cosine = CosineAnnealingLR::new(0.1, 10, 0.0).unwrap();
/// let mut s = LinearWarmup::new(0.1, 0.25, 3, Box::new(cosine)).unwrap();
/// let lrs: Vec<f64> = std::iter::once(s.lr()).chain((0..4).map(|_| s.step(None))).collect();
/// let want = [0.025, 0.05, 0.075, 0.1, 0.1 * (1.0 + (std::f64::consts::PI / 10.0).cos()) / 2.0];
/// for (a, b) in lrs.iter().zip(want) { assert!((a - b).abs() < 1e-12); }
/// ```
pub struct LinearWarmup {
    base_lr: f64,
    start_factor: f64,
    warmup: u64,
    epoch: u64,
    inner: Box<dyn LrScheduler>,
}

impl LinearWarmup {
    pub fn new(base_lr: f64, start_factor: f64, warmup: u64, inner: Box<dyn LrScheduler>) -> Result<LinearWarmup> {
        const OP: &str = "LinearWarmup::new";
        check_lr(OP, "base_lr", base_lr)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return arg(OP, format!("start_factor must be in (0, 1], got {start_factor}"));
        }
        Ok(LinearWarmup {
            base_lr,
            start_factor,
            warmup,
            epoch: 0,
            inner,
        })
    }
}

impl LrScheduler for LinearWarmup {
    fn step(&mut self, metric: Option<f64>) -> f64 {
        self.epoch += 1;
        // The inner schedule starts at its own t = 0 on the epoch the warm-up ends, so it is
        // stepped only from the epoch after.
        if self.epoch > self.warmup {
            self.inner.step(metric);
        }
        self.lr()
    }

    fn lr(&self) -> f64 {
        if self.epoch < self.warmup {
            let frac = self.epoch as f64 / self.warmup as f64;
            self.base_lr * (self.start_factor + (1.0 - self.start_factor) * frac)
        } else {
            self.inner.lr()
        }
    }

    fn state(&self) -> BTreeMap<String, f64> {
        let mut s = BTreeMap::from([("epoch".to_string(), self.epoch as f64)]);
        for (k, v) in self.inner.state() {
            s.insert(format!("inner.{k}"), v);
        }
        s
    }

    fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()> {
        let epoch = read_count("LinearWarmup::load_state", state, "epoch")?;
        let inner: BTreeMap<String, f64> = state
            .iter()
            .filter_map(|(k, &v)| k.strip_prefix("inner.").map(|k| (k.to_string(), v)))
            .collect();
        self.inner.load_state(&inner)?;
        self.epoch = epoch;
        Ok(())
    }
}

// ------------------------------------------------------------------------------ ReduceLROnPlateau

/// Whether a lower or a higher metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlateauMode {
    /// A loss: lower is better.
    #[default]
    Min,
    /// An accuracy: higher is better.
    Max,
}

/// How `threshold` defines a significant improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdMode {
    /// Better than best · (1 ∓ threshold).
    #[default]
    Rel,
    /// Better than best ∓ threshold.
    Abs,
}

/// Settings of [`ReduceLROnPlateau`]; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateauConfig {
    pub mode: PlateauMode,
    /// The rate is multiplied by `factor` (< 1) on a plateau (0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated before reducing (10).
    pub patience: u64,
    /// Smallest improvement that counts (1e-4).
    pub threshold: f64,
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting bad epochs again (0).
    pub cooldown: u64,
    /// Lower bound of the rate (0).
    pub min_lr: f64,
    /// Reductions smaller than this are skipped (1e-8).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

impl PlateauConfig {
    pub fn mode(mut self, mode: PlateauMode) -> Self {
        self.mode = mode;
        self
    }
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    pub fn patience(mut self, patience: u64) -> Self {
        self.patience = patience;
        self
    }
    pub fn threshold(mut self, threshold: f64, mode: ThresholdMode) -> Self {
        self.threshold = threshold;
        self.threshold_mode = mode;
        self
    }
    pub fn cooldown(mut self, cooldown: u64) -> Self {
        self.cooldown = cooldown;
        self
    }
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
}

/// Divides the rate by 1/factor when the metric has not improved for more than `patience`
/// epochs (PyTorch's `ReduceLROnPlateau`). Call `step(Some(metric))` once per epoch; a call
/// without a metric changes nothing (the counter does not move). A NaN metric counts as a
/// bad epoch, as in PyTorch.
///
/// ```
/// use nabla_nn::schedule::{LrScheduler, PlateauConfig, ReduceLROnPlateau};
/// let mut s = ReduceLROnPlateau::new(1.0, PlateauConfig::default().patience(1).factor(0.5)).unwrap();
/// let lrs: Vec<f64> = [3.0, 2.0, 2.0, 2.0, 1.0].iter().map(|&loss| s.step(Some(loss))).collect();
/// assert_eq!(lrs, vec![1.0, 1.0, 1.0, 0.5, 0.5]);
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    cfg: PlateauConfig,
    lr: f64,
    best: f64,
    num_bad_epochs: u64,
    cooldown_counter: u64,
    epoch: u64,
}

impl ReduceLROnPlateau {
    pub fn new(initial_lr: f64, cfg: PlateauConfig) -> Result<ReduceLROnPlateau> {
        const OP: &str = "ReduceLROnPlateau::new";
        check_lr(OP, "initial_lr", initial_lr)?;
        check_positive(OP, "factor", cfg.factor)?;
        if cfg.factor >= 1.0 {
            return arg(OP, format!("factor must be < 1, got {}", cfg.factor));
        }
        check_lr(OP, "threshold", cfg.threshold)?;
        check_lr(OP, "min_lr", cfg.min_lr)?;
        check_lr(OP, "eps", cfg.eps)?;
        Ok(ReduceLROnPlateau {
            cfg,
            lr: initial_lr,
            best: Self::worst(cfg.mode),
            num_bad_epochs: 0,
            cooldown_counter: 0,
            epoch: 0,
        })
    }

    fn worst(mode: PlateauMode) -> f64 {
        match mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        }
    }

    /// The best metric seen so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    fn is_better(&self, a: f64) -> bool {
        let (best, th) = (self.best, self.cfg.threshold);
        match (self.cfg.mode, self.cfg.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - th),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - th,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (1.0 + th),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + th,
        }
    }
}

impl LrScheduler for ReduceLROnPlateau {
    fn step(&mut self, metric: Option<f64>) -> f64 {
        let Some(current) = metric else {
            return self.lr;
        };
        self.epoch += 1;
        if self.is_better(current) {
            self.best = current;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0; // bad epochs in cooldown do not count
        }
        if self.num_bad_epochs > self.cfg.patience {
            let new_lr = (self.lr * self.cfg.factor).max(self.cfg.min_lr);
            if self.lr - new_lr > self.cfg.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.cfg.cooldown;
            self.num_bad_epochs = 0;
        }
        self.lr
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn state(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("epoch".to_string(), self.epoch as f64),
            ("lr".to_string(), self.lr),
            ("best".to_string(), self.best),
            ("num_bad_epochs".to_string(), self.num_bad_epochs as f64),
            ("cooldown_counter".to_string(), self.cooldown_counter as f64),
        ])
    }

    fn load_state(&mut self, state: &BTreeMap<String, f64>) -> Result<()> {
        const OP: &str = "ReduceLROnPlateau::load_state";
        let epoch = read_count(OP, state, "epoch")?;
        let lr = read_value(OP, state, "lr")?;
        check_lr(OP, "lr", lr)?;
        let best = read_value(OP, state, "best")?;
        let num_bad_epochs = read_count(OP, state, "num_bad_epochs")?;
        let cooldown_counter = read_count(OP, state, "cooldown_counter")?;
        *self = ReduceLROnPlateau {
            cfg: self.cfg,
            lr,
            best,
            num_bad_epochs,
            cooldown_counter,
            epoch,
        };
        Ok(())
    }
}
