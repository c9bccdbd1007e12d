//! Checkpoints: everything needed to continue a run exactly — model, optimiser, schedule,
//! the default generator (dropout), the loader position, the epoch and the history — in one
//! safetensors file (tensors under `model/` and `optim/`, the rest as JSON metadata), written
//! crash-safely (temporary file, fsync, rename).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::config::TrainConfig;
use crate::metrics::EpochMetrics;
use nabla_core::{Error, Result, Tensor};
use nabla_nn::optim::OptimizerState;
use nabla_nn::state::{from_safetensors_bytes, to_safetensors_bytes, write_atomic};
use serde::{Deserialize, Serialize};

/// Sums over the part of an epoch done before an interruption.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    pub loss_sum: f64,
    pub correct: usize,
    pub count: usize,
    pub seconds: f64,
}

/// What a checkpoint holds besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: u32,
    pub config: TrainConfig,
    /// The epoch in progress (0-based); equals `config.epochs` when the run is complete.
    pub epoch: usize,
    /// The next batch of `epoch` to train on.
    pub next_batch: usize,
    pub partial: PartialEpoch,
    pub optimizer_scalars: BTreeMap<String, f64>,
    pub schedule: BTreeMap<String, f64>,
    pub rng: [u64; 4],
    pub history: Vec<EpochMetrics>,
    pub input: [usize; 3],
    pub classes: Vec<String>,
    /// What the model needs besides its weights, so that the checkpoint works from any folder.
    #[serde(flatten)]
    pub card: ModelCard,
}

/// Everything a checkpoint carries to be used on its own: the network's description, the
/// normalisation of its inputs, and a table's feature columns. (Checkpoints written before
/// these fields existed load with them empty; their users look the data up as before.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The architecture file's text, for models trained from one (`--model PATH.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// x ↦ (x − mean) / std, per channel of an image (after conversion to the model's input)
    /// or per feature of a table, with the training data's statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    /// A table's feature columns, in the model's input order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

/// Per-channel (or per-feature) mean and standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub model: Vec<(String, Tensor)>,
    pub optimizer: Vec<(String, Tensor)>,
}

const META_KEY: &str = "nabla_checkpoint";

impl CheckpointMeta {
    /// The sizes a model is rebuilt from, checked before anything is allocated for them.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Argument { op: "checkpoint", msg });
        if self.classes.is_empty() {
            return bad("no classes (a model needs at least one output)".into());
        }
        if self.input.contains(&0) {
            return bad(format!("input shape {:?} has a zero size", self.input));
        }
        nabla_core::limits::check_tensor(&self.input, 4, "checkpoint input shape")?;
        nabla_core::limits::check_tensor(&[self.classes.len()], 4, "checkpoint classes")?;
        self.config.validate()?;
        if let Some(n) = &self.card.normalization {
            let width = match &self.card.features {
                Some(f) => f.len(),
                None => self.input[0],
            };
            let ok = n.mean.len() == width
                && n.std.len() == width
                && n.mean.iter().chain(&n.std).all(|v| v.is_finite())
                && n.std.iter().all(|&s| s > 0.0);
            if !ok {
                return bad(format!(
                    "normalisation needs {width} finite means and positive standard deviations, got {} and {}",
                    n.mean.len(),
                    n.std.len()
                ));
            }
        }
        if self.epoch > self.config.epochs {
            return bad(format!(
                "epoch {} is past the run's {} epochs",
                self.epoch, self.config.epochs
            ));
        }
        Ok(())
    }
}

impl Checkpoint {
    /// [`Checkpoint::save`] when `write` (rank 0 of data-parallel training), else nothing.
    pub fn save_if(&self, write: bool, path: &Path) -> Result<()> {
        if write { self.save(path) } else { Ok(()) }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .model
            .iter()
            .map(|(n, t)| (format!("model/{n}"), t.clone()))
            .collect();
        tensors.extend(self.optimizer.iter().map(|(n, t)| (format!("optim/{n}"), t.clone())));
        let meta = serde_json::to_string(&self.meta).map_err(|e| Error::File {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let bytes = to_safetensors_bytes(&tensors, Some(HashMap::from([(META_KEY.to_string(), meta)])))?;
        write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::File {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// A checkpoint from the bytes of its file (`path` names it in errors). Everything in it
    /// is checked before use: the content hash of the tensors, the metadata's sizes (input
    /// shape, classes, epochs) against the limits, and the weights for NaN and infinity.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let (tensors, meta) = from_safetensors_bytes(bytes, path)?;
        let bad = |msg: String| Error::File {
            path: path.display().to_string(),
            msg,
        };
        let meta = meta
            .get(META_KEY)
            .ok_or_else(|| bad("not a nabla checkpoint (no training state in its metadata)".into()))?;
        let meta: CheckpointMeta =
            serde_json::from_str(meta).map_err(|e| bad(format!("checkpoint metadata is damaged: {e}")))?;
        let (mut model, mut optimizer) = (Vec::new(), Vec::new());
        for (name, t) in tensors {
            if let Some(n) = name.strip_prefix("model/") {
                model.push((n.to_string(), t));
            } else if let Some(n) = name.strip_prefix("optim/") {
                optimizer.push((n.to_string(), t));
            }
        }
        meta.validate().map_err(|e| bad(format!("checkpoint metadata: {e}")))?;
        for (name, t) in &model {
            let finite = t.to_vec_f64()?.iter().all(|v| v.is_finite());
            if !finite {
                return Err(bad(format!("weight '{name}' holds NaN or infinite values")));
            }
        }
        Ok(Checkpoint { meta, model, optimizer })
    }

    pub fn optimizer_state(&self) -> OptimizerState {
        OptimizerState {
            tensors: self.optimizer.clone(),
            scalars: self.meta.optimizer_scalars.clone(),
        }
    }
}
