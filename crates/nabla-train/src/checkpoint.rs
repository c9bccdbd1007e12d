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
        let (tensors, meta) = from_safetensors_bytes(&bytes, path)?;
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
        Ok(Checkpoint { meta, model, optimizer })
    }

    pub fn optimizer_state(&self) -> OptimizerState {
        OptimizerState {
            tensors: self.optimizer.clone(),
            scalars: self.meta.optimizer_scalars.clone(),
        }
    }
}
