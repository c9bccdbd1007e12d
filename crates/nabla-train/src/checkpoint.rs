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
