//! `nabla train`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common;
use clap::Args;
use nabla_core::{Error, Result, manual_seed};
use nabla_data::transforms::{Compose, RandomCrop, Transform};
use nabla_data::{DataLoader, Dataset, LoaderConfig};
use nabla_models::{ModelSpec, build_model};
use nabla_train::checkpoint::Checkpoint;
use nabla_train::{OptimizerKind, ScheduleKind, TrainConfig, Trainer};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model name: lenet5, lenet5-classic, mlp, mlp:H1,H2,...
    #[arg(long, default_value = "lenet5")]
    model: String,
    /// Dataset: fashion-mnist (bundled)
    #[arg(long, default_value = "fashion-mnist")]
    dataset: String,
    /// Folder with the dataset's files (default: the bundled copy)
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// sgd, adam, adamw, rmsprop
    #[arg(long, value_parser = parse_optimizer)]
    optimizer: Option<OptimizerKind>,
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    momentum: Option<f64>,
    /// Turn Nesterov momentum off (SGD)
    #[arg(long)]
    no_nesterov: bool,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// constant, step, exponential, cosine
    #[arg(long, value_parser = parse_schedule)]
    schedule: Option<ScheduleKind>,
    #[arg(long)]
    warmup_epochs: Option<usize>,
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Random crops (padding 2, replicate) during training
    #[arg(long)]
    augment: bool,
    #[arg(long)]
    seed: Option<u64>,
    /// Threads for the computation (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
    /// Train on the first N images only
    #[arg(long)]
    train_subset: Option<usize>,
    /// Evaluate on the first N test images only
    #[arg(long)]
    test_subset: Option<usize>,
    /// Run directory (default: runs/<model>-<dataset>-seed<seed>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run saved in the output directory's checkpoint
    #[arg(long)]
    resume: bool,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
    /// Stop as if interrupted after N steps (for testing --resume)
    #[arg(long, hide = true)]
    stop_after_steps: Option<usize>,
}

fn parse_optimizer(s: &str) -> std::result::Result<OptimizerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("unknown optimizer '{s}' (sgd, adam, adamw, rmsprop)"))
}

fn parse_schedule(s: &str) -> std::result::Result<ScheduleKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("unknown schedule '{s}' (constant, step, exponential, cosine)"))
}

impl TrainArgs {
    fn config(&self) -> TrainConfig {
        let d = TrainConfig::default();
        TrainConfig {
            model: self.model.clone(),
            dataset: self.dataset.clone(),
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            optimizer: self.optimizer.unwrap_or(d.optimizer),
            lr: self.lr.unwrap_or(
                if matches!(
                    self.optimizer,
                    Some(OptimizerKind::Adam | OptimizerKind::Adamw | OptimizerKind::Rmsprop)
                ) {
                    1e-3
                } else {
                    d.lr
                },
            ),
            momentum: self.momentum.unwrap_or(d.momentum),
            nesterov: !self.no_nesterov && d.nesterov,
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            schedule: self.schedule.unwrap_or(d.schedule),
            warmup_epochs: self.warmup_epochs.unwrap_or(d.warmup_epochs),
            label_smoothing: self.label_smoothing.unwrap_or(d.label_smoothing),
            augment: self.augment || d.augment,
            seed: self.seed.unwrap_or(d.seed),
            train_subset: self.train_subset.unwrap_or(0),
            test_subset: self.test_subset.unwrap_or(0),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    if let Some(t) = args.threads {
        nabla_core::set_num_threads(t);
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/{}-{}-seed{}",
            args.model
                .trim_end_matches(".toml")
                .rsplit('/')
                .next()
                .unwrap_or("model")
                .replace([':', ','], "_"),
            args.dataset,
            args.seed.unwrap_or(42)
        ))
    });
    let checkpoint = if args.resume {
        let path = out.join("checkpoint.safetensors");
        if !path.exists() {
            return Err(Error::File {
                path: path.display().to_string(),
                msg: "no checkpoint to resume from".into(),
            });
        }
        Some(Checkpoint::load(&path)?)
    } else {
        None
    };
    let config = match &checkpoint {
        Some(ck) => TrainConfig {
            epochs: args.epochs.unwrap_or(ck.meta.config.epochs),
            ..ck.meta.config.clone()
        },
        None => args.config(),
    };
    config.validate()?;
    manual_seed(config.seed);

    let train = common::training_set(&config, args.data_dir.as_deref())?;
    let test = common::test_set(&config, args.data_dir.as_deref(), config.test_subset)?;
    let normalize = common::normalization(&train);
    let mut train_tf: Vec<Box<dyn Transform>> = Vec::new();
    if config.augment {
        let [_, h, w] = train.shape;
        train_tf.push(Box::new(RandomCrop {
            size: [h, w],
            padding: common::crop_padding(h),
            mode: nabla_core::PaddingMode::Replicate,
        }));
    }
    train_tf.push(Box::new(normalize.clone()));
    let classes = train.classes();
    let input = train.shape;
    let spec = ModelSpec {
        input,
        classes: classes.len(),
    };
    let model = build_model(&config.model, &spec)?;
    let optimizer = config.optimizer(model.named_parameters())?;
    let scheduler = config.scheduler()?;
    let loader_cfg = LoaderConfig {
        batch_size: config.batch_size,
        shuffle: true,
        drop_last: false,
        seed: config.seed,
        workers: 1,
        prefetch: 4,
    };
    let train_loader = DataLoader::new(Arc::new(train), Some(Arc::new(Compose(train_tf))), loader_cfg);
    let test_loader = DataLoader::new(
        Arc::new(test),
        Some(Arc::new(Compose(vec![Box::new(normalize)]))),
        LoaderConfig {
            batch_size: 1000,
            shuffle: false,
            ..loader_cfg
        },
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while saving falls through to the default handler, which exits.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let mut trainer = Trainer {
        config: config.clone(),
        model,
        optimizer,
        scheduler,
        train: train_loader,
        test: test_loader,
        classes,
        input,
        out_dir: out.clone(),
        stop,
        history: Vec::new(),
        verbose: !args.quiet,
        stop_after_steps: args.stop_after_steps,
    };
    let start = match &checkpoint {
        Some(ck) => trainer.restore(ck)?,
        None => (0, 0, Default::default()),
    };
    if !args.quiet {
        eprintln!(
            "training {} ({} parameters) on {} for {} epochs, batch {}, {:?} lr {}; writing {}",
            config.model,
            trainer.model.num_parameters(),
            config.dataset,
            config.epochs,
            config.batch_size,
            config.optimizer,
            config.lr,
            out.display()
        );
    }
    let summary = trainer.run(start)?;
    if !args.quiet {
        println!(
            "test top-1 {:.2}%  top-5 {:.2}%  loss {:.4}  ({:.0} training samples/s, {:.0} s in all)",
            100.0 * summary.test_top1,
            100.0 * summary.test_top5,
            summary.test_loss,
            summary.train_samples_per_s,
            summary.seconds
        );
    }
    if summary.interrupted {
        std::process::exit(130);
    }
    Ok(())
}
