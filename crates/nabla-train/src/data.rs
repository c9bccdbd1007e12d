//! A run's data from its configuration: the training, validation and test loaders, the class
//! names, the model's input shape and what a checkpoint must carry to prepare new inputs the
//! same way (normalisation, a table's feature columns). The preparation itself is nabla-data's
//! ([`nabla_data::tabular`], [`nabla_data::ImagePipeline`]); this wires it to a `TrainConfig`.

use crate::checkpoint::{ModelCard, Normalization};
use crate::config::TrainConfig;
use nabla_core::{Error, Result};
use nabla_data::tabular::{self, SplitOptions};
use nabla_data::{DataLoader, ImageDataset, ImagePipeline, LoaderConfig, Split, TabularDataset, Task};
use std::path::Path;
use std::sync::Arc;

/// What [`loaders`] prepares.
pub struct RunData {
    pub train: DataLoader,
    /// The held-out validation split (`TrainConfig::val_split` > 0).
    pub val: Option<DataLoader>,
    pub test: DataLoader,
    pub classes: Vec<String>,
    /// `[C, H, W]`, or `[F, 1, 1]` for a table of F features.
    pub input: [usize; 3],
    /// Normalisation and features, for the checkpoints.
    pub card: ModelCard,
}

/// The first `n` images of `ds`, or all of them when `n` is 0.
fn subset(ds: ImageDataset, n: usize) -> ImageDataset {
    if n > 0 { ds.take(n) } else { ds }
}

/// The training images a run with `config` trains on (its `train_subset` applied; the
/// validation split not yet held out).
pub fn training_set(config: &TrainConfig, dir: Option<&Path>) -> Result<ImageDataset> {
    Ok(subset(
        nabla_data::open(&config.dataset, dir, Split::Train, config.input)?,
        config.train_subset,
    ))
}

/// The test images, the first `n` only when `n` > 0.
pub fn test_set(config: &TrainConfig, dir: Option<&Path>, n: usize) -> Result<ImageDataset> {
    Ok(subset(
        nabla_data::open(&config.dataset, dir, Split::Test, config.input)?,
        n,
    ))
}

/// A table (`csv:PATH`) split as a run with `config` splits it: the training and test rows,
/// not yet standardised. `None` for image datasets.
pub fn table_split(config: &TrainConfig) -> Result<Option<(TabularDataset, TabularDataset)>> {
    let Some(path) = config.dataset.strip_prefix("csv:") else {
        return Ok(None);
    };
    let target = config.target.as_deref().ok_or_else(|| Error::Argument {
        op: "data",
        msg: "--dataset csv:PATH needs --target COLUMN".into(),
    })?;
    let task = if config.regression {
        Task::Regression
    } else {
        Task::Classification
    };
    let opts = SplitOptions {
        seed: config.seed,
        train_subset: config.train_subset,
        test_subset: config.test_subset,
    };
    tabular::read_split(Path::new(path), target, task, opts).map(Some)
}

/// The loaders of `config`'s dataset (from `data_dir`, or where nabla-data finds it). A
/// regression table also sets `config.target_scale`, the target's (μ, σ), so that errors can
/// be reported in the target's units and predictions scaled back.
pub fn loaders(config: &mut TrainConfig, data_dir: Option<&Path>) -> Result<RunData> {
    let train_cfg = LoaderConfig {
        batch_size: config.batch_size,
        shuffle: true,
        drop_last: false,
        seed: config.seed,
        workers: 1,
        prefetch: 4,
        shard: (0, 1),
    };
    let eval_cfg = LoaderConfig {
        batch_size: 1000,
        shuffle: false,
        ..train_cfg
    };
    if let Some((train, test)) = table_split(config)? {
        let target = train.target_name.clone();
        let p = tabular::prepare(train, test, config.val_split, config.seed);
        config.target_scale = p.target_scale;
        let card = ModelCard {
            architecture: None,
            normalization: Some(Normalization {
                mean: p.feature_stats.iter().map(|s| s.0).collect(),
                std: p.feature_stats.iter().map(|s| s.1).collect(),
            }),
            features: Some(p.train.feature_names.clone()),
        };
        let classes = if config.regression {
            vec![target]
        } else {
            p.train.classes.clone()
        };
        return Ok(RunData {
            input: [p.train.num_features(), 1, 1],
            train: DataLoader::new(Arc::new(p.train), None, train_cfg),
            val: p.val.map(|v| DataLoader::new(Arc::new(v), None, eval_cfg)),
            test: DataLoader::new(Arc::new(p.test), None, eval_cfg),
            classes,
            card,
        });
    }
    if config.regression {
        return Err(Error::Argument {
            op: "train",
            msg: "--regression needs a table: --dataset csv:PATH --target COLUMN".into(),
        });
    }
    let all = training_set(config, data_dir)?;
    let (kept, held) = nabla_data::holdout_split(all.labels.len(), config.val_split, config.seed);
    let val = (!held.is_empty()).then(|| all.select(&held));
    let train = if held.is_empty() { all } else { all.select(&kept) };
    let test = test_set(config, data_dir, config.test_subset)?;
    let pipeline = ImagePipeline::fit(&train, config.input, config.augment);
    let card = ModelCard {
        architecture: None,
        normalization: Some(Normalization {
            mean: pipeline.normalize.mean.iter().map(|&v| v as f64).collect(),
            std: pipeline.normalize.std.iter().map(|&v| v as f64).collect(),
        }),
        features: None,
    };
    Ok(RunData {
        classes: train.classes.clone(),
        input: pipeline.input,
        val: val.map(|v| {
            let tf = pipeline.evaluation(v.shape);
            DataLoader::new(Arc::new(v), Some(tf), eval_cfg)
        }),
        test: {
            let tf = pipeline.evaluation(test.shape);
            DataLoader::new(Arc::new(test), Some(tf), eval_cfg)
        },
        train: {
            let tf = pipeline.training(train.shape);
            DataLoader::new(Arc::new(train), Some(tf), train_cfg)
        },
        card,
    })
}
