//! # nabla-train
//!
//! The training loop (`Trainer::run`, one `Trainer::step` per batch, the step's arithmetic in
//! `step::gradients`, observers for what watches it): optimiser and schedule from a config, per-epoch metrics (loss, top-1,
//! top-5, confusion matrix), crash-safe checkpoints that resume exactly, and run directories
//! with `metrics.csv`, `summary.json` and plots (loss, accuracy, confusion matrix, first-layer
//! filters).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod ensemble;
pub mod evaluate;
pub mod metrics;
pub mod observe;
pub mod plots;
pub mod rundir;
pub mod step;
pub mod tensorboard;
pub mod trainer;

pub use config::{BestBy, OptimizerKind, ScheduleKind, TrainConfig};
pub use evaluate::evaluate;
pub use metrics::{EpochMetrics, Evaluation};
pub use trainer::{RunSummary, Trainer};
