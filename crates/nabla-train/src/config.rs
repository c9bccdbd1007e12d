//! Everything that defines a training run, serialisable to the run directory and checkpoints.

use nabla_core::autocast::Precision;
use nabla_core::{Error, Result, Tensor};
use nabla_nn::optim::{
    Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, ParamGroup, RMSprop, RMSpropConfig, Sgd, SgdConfig,
};
use nabla_nn::schedule::{CosineAnnealingLR, ExponentialLR, LinearWarmup, LrScheduler, StepLR};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
}

impl OptimizerKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Rmsprop => "rmsprop",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Constant,
    /// ×0.1 every third of the run.
    Step,
    /// ×0.9 per epoch.
    Exponential,
    /// Cosine annealing to 0 over the run.
    Cosine,
}

/// A training run's settings (the command line fills it; `config.json` in the run directory records it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: String,
    pub dataset: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: ScheduleKind,
    /// Epochs of linear warm-up from lr/10 before the schedule.
    pub warmup_epochs: usize,
    pub label_smoothing: f64,
    /// Random crop (pad 2 for 28×28, 4 for 32×32) and, for natural images, horizontal flips.
    pub augment: bool,
    pub seed: u64,
    /// Use only the first N training images (0: all).
    pub train_subset: usize,
    /// Use only the first N test images (0: all).
    pub test_subset: usize,
    /// For `csv:PATH` datasets: the target column.
    #[serde(default)]
    pub target: Option<String>,
    /// For `csv:PATH` datasets: predict a number (mean squared error) instead of a class.
    #[serde(default)]
    pub regression: bool,
    /// For regression: the (mean, std) the targets were standardised with; predictions in the
    /// target's units are mean + std·output.
    #[serde(default)]
    pub target_scale: Option<(f64, f64)>,
    /// The model's input [C, H, W] when it differs from the images' (they are converted and
    /// resized to it, in training and evaluation alike).
    #[serde(default)]
    pub input: Option<[usize; 3]>,
    /// The fraction of the training set held out for validation (0: none), chosen by `seed`.
    #[serde(default)]
    pub val_split: f64,
    /// Stop when the validation metric has not improved for this many epochs (0: never).
    #[serde(default)]
    pub early_stop: usize,
    /// The validation metric that picks `best.safetensors` and drives early stopping.
    #[serde(default)]
    pub best_by: BestBy,
    /// With a validation split, evaluate the test set after every epoch too (else once, at
    /// the end, with the best weights).
    #[serde(default)]
    pub test_every_epoch: bool,
    /// The state dict the weights started from (`--weights`), as given.
    #[serde(default)]
    pub weights: Option<String>,
    /// Whether the last layer was re-initialised for this run's classes (`--finetune`).
    #[serde(default)]
    pub finetune: bool,
    /// The arithmetic of the matrix products (`--precision`): f32, or bf16 with f32 sums
    /// (autocast; everything else and the master weights stay f32).
    #[serde(default, with = "precision_name")]
    pub precision: Precision,
}

/// A precision in JSON as its name (`"f32"`, `"bf16"`).
mod precision_name {
    use nabla_core::autocast::Precision;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(p: &Precision, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
        let name = String::deserialize(d)?;
        Precision::parse(&name).ok_or_else(|| D::Error::custom(format!("unknown precision '{name}' (f32, bf16)")))
    }
}

impl BestBy {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BestBy::Loss => "loss",
            BestBy::Top1 => "top1",
        }
    }
}

/// Which validation metric is best.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BestBy {
    /// The lowest loss.
    #[default]
    Loss,
    /// The highest top-1 accuracy.
    Top1,
}

impl Default for TrainConfig {
    /// The defaults of `nabla train`: LeNet-5 on Fashion-MNIST, SGD with Nesterov momentum and a
    /// cosine schedule, chosen to pass 90% test accuracy in a few minutes on two cores.
    fn default() -> Self {
        TrainConfig {
            model: "lenet5".into(),
            dataset: "fashion-mnist".into(),
            epochs: 12,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            schedule: ScheduleKind::Cosine,
            warmup_epochs: 1,
            label_smoothing: 0.0,
            augment: false,
            seed: 42,
            train_subset: 0,
            test_subset: 0,
            target: None,
            regression: false,
            target_scale: None,
            input: None,
            val_split: 0.0,
            early_stop: 0,
            best_by: BestBy::Loss,
            test_every_epoch: false,
            weights: None,
            finetune: false,
            precision: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// The optimiser over `params`; weight decay spares biases and normalisation parameters.
    pub fn optimizer(&self, params: Vec<(String, Tensor)>) -> Result<Box<dyn Optimizer>> {
        let groups = ParamGroup::split_decay(params, self.weight_decay, nabla_nn::optim::is_bias_or_norm);
        Ok(match self.optimizer {
            OptimizerKind::Sgd => {
                let cfg = SgdConfig::new(self.lr)
                    .momentum(self.momentum)
                    .nesterov(self.nesterov && self.momentum > 0.0);
                Box::new(Sgd::with_groups(groups, cfg)?)
            }
            OptimizerKind::Adam => Box::new(Adam::with_groups(groups, AdamConfig::new(self.lr))?),
            OptimizerKind::Adamw => Box::new(AdamW::with_groups(groups, AdamWConfig::new(self.lr))?),
            OptimizerKind::Rmsprop => Box::new(RMSprop::with_groups(
                groups,
                RMSpropConfig::new(self.lr).momentum(self.momentum),
            )?),
        })
    }

    /// The per-epoch learning-rate schedule.
    pub fn scheduler(&self) -> Result<Box<dyn LrScheduler>> {
        let epochs = self.epochs.max(1) as u64;
        let warm = (self.warmup_epochs as u64).min(epochs.saturating_sub(1));
        let rest = (epochs - warm).max(1);
        let inner: Box<dyn LrScheduler> = match self.schedule {
            ScheduleKind::Constant => Box::new(nabla_nn::schedule::ConstantLR::constant(self.lr)?),
            ScheduleKind::Step => Box::new(StepLR::new(self.lr, rest.div_ceil(3).max(1), 0.1)?),
            ScheduleKind::Exponential => Box::new(ExponentialLR::new(self.lr, 0.9)?),
            ScheduleKind::Cosine => Box::new(CosineAnnealingLR::new(self.lr, rest, 0.0)?),
        };
        if warm == 0 {
            return Ok(inner);
        }
        Ok(Box::new(LinearWarmup::new(self.lr, 0.1, warm, inner)?))
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Argument { op: "train", msg });
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be a positive number, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("--momentum must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay must be a number ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "--label-smoothing must be in [0, 1), got {}",
                self.label_smoothing
            ));
        }
        if !(0.0..1.0).contains(&self.val_split) {
            return bad(format!("--val-split must be in [0, 1), got {}", self.val_split));
        }
        if self.early_stop > 0 && self.val_split == 0.0 {
            return bad("--early-stop needs a validation split (--val-split)".into());
        }
        if self.best_by == BestBy::Top1 && self.regression {
            return bad("--best-by top1 does not apply to regression; use loss".into());
        }
        if self.finetune && self.weights.is_none() {
            return bad("--finetune needs --weights FILE.safetensors".into());
        }
        if let Some(input) = self.input {
            nabla_core::limits::check_tensor(&input, 4, "--input")?;
        }
        Ok(())
    }
}
