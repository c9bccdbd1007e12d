//! `nabla train`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common;
use clap::Args;
use nabla_core::{Error, Result, manual_seed};
use nabla_models::ModelSpec;
use nabla_train::checkpoint::Checkpoint;
use nabla_train::{BestBy, OptimizerKind, ScheduleKind, TrainConfig, Trainer};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model: lenet5 (default), lenet5-classic, mlp, mlp:H1,H2,..., a zoo name, or an architecture file PATH.toml
    #[arg(long)]
    model: Option<String>,
    /// Dataset: fashion-mnist (default, bundled), mnist, cifar10, cifar100, folder:PATH (PATH/train
    /// and PATH/test, one sub-folder per class; read as 32×32 RGB, or at --input's size and
    /// colour), csv:PATH (with --target)
    #[arg(long)]
    dataset: Option<String>,
    /// Folder with the dataset's files (default: the bundled copy)
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Passes over the training set [default: 12]
    #[arg(long)]
    epochs: Option<usize>,
    /// Images (or rows) per training step [default: 64]
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimiser: sgd, adam, adamw or rmsprop [default: sgd]
    #[arg(long, value_parser = parse_optimizer)]
    optimizer: Option<OptimizerKind>,
    /// Peak learning rate [default: 0.05 for sgd, 0.001 for adam, adamw and rmsprop]
    #[arg(long)]
    lr: Option<f64>,
    /// Momentum of sgd and rmsprop, in [0, 1) [default: 0.9]
    #[arg(long)]
    momentum: Option<f64>,
    /// Turn Nesterov momentum off (SGD)
    #[arg(long)]
    no_nesterov: bool,
    /// L2 penalty on weights (not on biases or normalisation parameters) [default: 0.0005]
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Learning-rate schedule per epoch: constant, step (×0.1 every third of the run),
    /// exponential (×0.9 per epoch) or cosine (to 0 at the end) [default: cosine]
    #[arg(long, value_parser = parse_schedule)]
    schedule: Option<ScheduleKind>,
    /// Epochs of linear warm-up from lr/10 to lr before the schedule [default: 1]
    #[arg(long)]
    warmup_epochs: Option<usize>,
    /// Label smoothing of the cross-entropy, in [0, 1) [default: 0]
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Random crops (replicate padding: 2 pixels up to 28×28, 4 above) during training, and
    /// horizontal flips of colour images
    #[arg(long)]
    augment: bool,
    /// Seed of the initialisation, the shuffle, augmentation, dropout and the table split [default: 42]
    #[arg(long)]
    seed: Option<u64>,
    /// Threads for the computation (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Train on the first N images only
    #[arg(long)]
    train_subset: Option<usize>,
    /// Evaluate on the first N test images only
    #[arg(long)]
    test_subset: Option<usize>,
    /// Run directory (default: runs/<model>-<dataset>-seed<seed>)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Hold out this fraction of the training set (chosen by --seed) to validate on after every
    /// epoch; the test set is then evaluated once, at the end, with the best weights [default: 0]
    #[arg(long)]
    val_split: Option<f64>,
    /// Stop when the validation metric has not improved for N epochs (needs --val-split)
    #[arg(long)]
    early_stop: Option<usize>,
    /// The validation metric that picks best.safetensors and early stopping: loss or top1
    /// [default: loss]
    #[arg(long, value_parser = parse_best_by)]
    best_by: Option<BestBy>,
    /// With --val-split, evaluate the test set after every epoch as well
    #[arg(long)]
    test_every_epoch: bool,
    /// Start from these weights: a safetensors state dict under the model's names (PyTorch's
    /// and torchvision's load as they are)
    #[arg(long, value_name = "FILE")]
    weights: Option<String>,
    /// With --weights: re-initialise the last layer when its shape differs (another number of
    /// classes) and train everything from there
    #[arg(long)]
    finetune: bool,
    /// Also write TensorBoard event files to OUT/tensorboard (view with `tensorboard --logdir OUT`)
    #[arg(long)]
    tensorboard: bool,
    /// Continue the run saved in the output directory's checkpoint
    #[arg(long)]
    resume: bool,
    /// Replace the run already in the output directory (its checkpoint is deleted)
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Also save a checkpoint every N training steps (default: at the end of each epoch only)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    save_every: Option<u64>,
    /// For --dataset csv:PATH: the target column
    #[arg(long)]
    target: Option<String>,
    /// For --dataset csv:PATH: predict a number with a linear output and mean squared error
    #[arg(long)]
    regression: bool,
    /// The model's input as CxHxW (e.g. 3x224x224 for AlexNet); images are converted and
    /// resized to it [default: the images' own shape]
    #[arg(long, value_parser = crate::common::parse_input)]
    input: Option<[usize; 3]>,
    /// Print nothing but errors
    #[arg(long, short)]
    quiet: bool,
    /// Stop as if interrupted after N steps (for testing --resume)
    #[arg(long, hide = true)]
    stop_after_steps: Option<usize>,
    /// After every step, check that all ranks hold the same parameters (for tests)
    #[arg(long, hide = true)]
    check_replicas: bool,
    /// Gradient accumulation: run each batch (each rank's part of it) as K micro-batches and
    /// sum their gradients, weighted by size: the same step as the whole batch up to rounding,
    /// with the memory of a batch K times smaller (batch norm sees the micro-batches)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=65536))]
    accumulate: u64,
    /// Where to train: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`)
    #[arg(long, default_value = "cpu", value_parser = crate::common::parse_device)]
    device: nabla_core::Device,
    /// Matrix products (Linear layers) in f32, or bf16 with f32 sums (mixed precision, as
    /// torch.autocast; activations, losses, batch norm, the optimiser and the weights stay
    /// f32) [default: f32]
    #[arg(long, value_parser = crate::common::parse_precision)]
    precision: Option<nabla_core::autocast::Precision>,
}

fn parse_optimizer(s: &str) -> std::result::Result<OptimizerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("unknown optimizer '{s}' (sgd, adam, adamw, rmsprop)"))
}

fn parse_best_by(s: &str) -> std::result::Result<BestBy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("unknown metric '{s}' (loss, top1)"))
}

fn parse_schedule(s: &str) -> std::result::Result<ScheduleKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_lowercase()))
        .map_err(|_| format!("unknown schedule '{s}' (constant, step, exponential, cosine)"))
}

impl TrainArgs {
    /// The flags given on this command line whose values differ from the saved run's, as
    /// "--flag asked (the run has saved)". `--epochs` may differ: it extends or shortens a run.
    fn changed_from(&self, saved: &TrainConfig) -> Vec<String> {
        let asked = serde_json::to_value(self.config()).expect("config serialises");
        let saved = serde_json::to_value(saved).expect("config serialises");
        let given = [
            ("--model", "model", self.model.is_some()),
            ("--dataset", "dataset", self.dataset.is_some()),
            ("--batch-size", "batch_size", self.batch_size.is_some()),
            ("--optimizer", "optimizer", self.optimizer.is_some()),
            ("--lr", "lr", self.lr.is_some()),
            ("--momentum", "momentum", self.momentum.is_some()),
            ("--no-nesterov", "nesterov", self.no_nesterov),
            ("--weight-decay", "weight_decay", self.weight_decay.is_some()),
            ("--schedule", "schedule", self.schedule.is_some()),
            ("--warmup-epochs", "warmup_epochs", self.warmup_epochs.is_some()),
            ("--label-smoothing", "label_smoothing", self.label_smoothing.is_some()),
            ("--augment", "augment", self.augment),
            ("--seed", "seed", self.seed.is_some()),
            ("--train-subset", "train_subset", self.train_subset.is_some()),
            ("--test-subset", "test_subset", self.test_subset.is_some()),
            ("--target", "target", self.target.is_some()),
            ("--regression", "regression", self.regression),
            ("--input", "input", self.input.is_some()),
            ("--val-split", "val_split", self.val_split.is_some()),
            ("--early-stop", "early_stop", self.early_stop.is_some()),
            ("--best-by", "best_by", self.best_by.is_some()),
            ("--test-every-epoch", "test_every_epoch", self.test_every_epoch),
            ("--weights", "weights", self.weights.is_some()),
            ("--finetune", "finetune", self.finetune),
            ("--precision", "precision", self.precision.is_some()),
        ];
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        given
            .iter()
            .filter(|(_, field, set)| *set && asked[field] != saved[field])
            .map(|(flag, field, _)| {
                format!(
                    "{flag} is {} (the run has {})",
                    show(&asked[field]),
                    show(&saved[field])
                )
            })
            .collect()
    }

    fn config(&self) -> TrainConfig {
        let d = TrainConfig::default();
        TrainConfig {
            model: self.model.clone().unwrap_or(d.model),
            dataset: self.dataset.as_deref().map_or(d.dataset, nabla_data::canonical_name),
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
            target: self.target.clone(),
            regression: self.regression,
            target_scale: None,
            input: self.input,
            train_subset: self.train_subset.unwrap_or(0),
            test_subset: self.test_subset.unwrap_or(0),
            val_split: self.val_split.unwrap_or(d.val_split),
            early_stop: self.early_stop.unwrap_or(d.early_stop),
            best_by: self.best_by.unwrap_or(d.best_by),
            test_every_epoch: self.test_every_epoch,
            weights: self.weights.clone(),
            finetune: self.finetune,
            precision: self.precision.unwrap_or_default(),
        }
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let out = args.out.clone().unwrap_or_else(|| {
        let model = args.model.as_deref().unwrap_or("lenet5");
        let model = model
            .trim_end_matches(".toml")
            .rsplit('/')
            .next()
            .unwrap_or("model")
            .replace([':', ','], "_");
        let dataset = args.dataset.as_deref().unwrap_or("fashion-mnist");
        let dataset = dataset
            .trim_end_matches(".csv")
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("data")
            .to_string();
        PathBuf::from(format!("runs/{model}-{dataset}-seed{}", args.seed.unwrap_or(42)))
    });
    // Data-parallel training under mpirun: every rank trains, rank 0 alone writes.
    let collective = common::collective(args.device != nabla_core::Device::Cpu)?;
    let (rank, world) = (collective.rank(), collective.world_size());
    // Under a launcher each rank drives the GPU of its local rank on the node.
    let mut args = args;
    if let (nabla_core::Device::Cuda(_), true) = (args.device, world > 1) {
        args.device = nabla_core::Device::Cuda(nabla_dist::local_rank());
    }
    let root = rank == 0;
    let quiet = args.quiet || !root;
    // One process per run directory; the lock goes with the process, however it ends.
    let _lock = if root {
        Some(nabla_train::rundir::lock(&out)?)
    } else {
        None
    };
    if root {
        nabla_train::rundir::remove_stale_temporaries(&out)?;
    }
    let checkpoint_path = out.join("checkpoint.safetensors");
    let checkpoint = if args.resume {
        if !checkpoint_path.exists() {
            return Err(Error::File {
                path: checkpoint_path.display().to_string(),
                msg: "no checkpoint to resume from".into(),
            });
        }
        Some(Checkpoint::load(&checkpoint_path)?)
    } else {
        None
    };
    let config = match &checkpoint {
        Some(ck) => {
            // A resumed run keeps its settings; asking for others is a mistake, not ignored.
            let saved = &ck.meta.config;
            let changed = args.changed_from(saved);
            if !changed.is_empty() {
                return Err(Error::Argument {
                    op: "train",
                    msg: format!(
                        "--resume continues the run in {} with its own settings, but {}; drop those flags, or start a new run with another --out (or --force to replace this one)",
                        out.display(),
                        changed.join(", ")
                    ),
                });
            }
            let epochs = args.epochs.unwrap_or(saved.epochs);
            if epochs < ck.meta.epoch {
                return Err(Error::Argument {
                    op: "train",
                    msg: format!(
                        "--epochs {epochs} is fewer than the {} epochs the run in {} has already trained",
                        ck.meta.epoch,
                        out.display()
                    ),
                });
            }
            if epochs != saved.epochs && !quiet {
                eprintln!(
                    "--epochs {epochs}: the run was planned for {} epochs; its learning-rate schedule is planned anew for {epochs} and continued from epoch {}",
                    saved.epochs, ck.meta.epoch
                );
            }
            TrainConfig {
                epochs,
                ..saved.clone()
            }
        }
        None => args.config(),
    };
    config.validate()?;
    if checkpoint.is_none() && root {
        nabla_train::rundir::claim(&out, args.force, !quiet)?;
    }
    manual_seed(config.seed);

    let mut config = config;
    let mut data = nabla_train::data::loaders(&mut config, args.data_dir.as_deref())?;
    // Each rank takes its part of every (global) batch; all ranks evaluate the whole sets.
    data.train.config.shard = (rank, world);
    // The architecture a run was started with stays its architecture, even if the file changes.
    data.card.architecture = match &checkpoint {
        Some(ck) if ck.meta.card.architecture.is_some() => ck.meta.card.architecture.clone(),
        _ if config.model.ends_with(".toml") => {
            Some(std::fs::read_to_string(&config.model).map_err(|e| Error::File {
                path: config.model.clone(),
                msg: e.to_string(),
            })?)
        }
        _ => None,
    };
    let outputs = if config.regression { 1 } else { data.classes.len() };
    let model = common::build_from_card(
        &config.model,
        &data.card,
        &ModelSpec {
            input: data.input,
            classes: outputs,
        },
    )?;
    if let (Some(path), None) = (&config.weights, &checkpoint) {
        // A resumed run has its weights in the checkpoint; a new one starts from the file.
        let (tensors, _) = nabla_nn::state::load_safetensors(path)?;
        if config.finetune {
            let replaced = nabla_nn::state::load_state_dict_for_finetuning(model.as_ref(), &tensors, path)?;
            if !quiet {
                eprintln!(
                    "weights from {path}; re-initialised for {outputs} outputs: {}",
                    if replaced.is_empty() {
                        "nothing".to_string()
                    } else {
                        replaced.join(", ")
                    }
                );
            }
        } else {
            nabla_nn::state::load_state_dict(model.as_ref(), &tensors, path)?;
        }
    }
    model.to_device(args.device)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // SIGINT (Ctrl-C), SIGTERM (`timeout`, `docker stop`, Slurm) and SIGHUP (a closed
        // terminal) all stop after the current step and save. A second signal does not cut the
        // save short: the state on disk is then the one of the step before, and SIGKILL is the
        // way to abandon it.
        let handler = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nalready stopping: the state is saved after the current step (SIGKILL abandons it)");
            }
        });
        if let Err(e) = handler {
            return Err(Error::Argument {
                op: "train",
                msg: format!("cannot install the handler that saves on Ctrl-C: {e}"),
            });
        }
    }
    let mut trainer = Trainer {
        stop,
        verbose: !quiet,
        stop_after_steps: args.stop_after_steps,
        observers: observers(&args, &config, &out, quiet, root)?,
        save_every: args.save_every.map(|n| n as usize),
        device: args.device,
        collective: collective.clone(),
        accumulate: args.accumulate as usize,
        check_replicas: args.check_replicas,
        ..Trainer::new(config.clone(), model, data, &out)?
    };
    let start = match &checkpoint {
        Some(ck) => trainer.restore(ck)?,
        None => (0, 0, Default::default()),
    };
    if rank > 0 {
        // Dropout masks of their own on the other ranks (the weights were drawn above with the
        // run's seed, and rank 0's are broadcast at the start anyway).
        manual_seed(config.seed ^ (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ start.0 as u64);
    }
    if world > 1 && !quiet {
        eprintln!(
            "data-parallel over {}: global batch {}, about {} per rank",
            collective.describe(),
            config.batch_size,
            config.batch_size.div_ceil(world)
        );
    }
    if !quiet {
        eprintln!(
            "training {} ({} parameters) on {} for {} epochs, batch {}, {} lr {}, {} threads; writing {}",
            config.model,
            trainer.model.num_parameters(),
            config.dataset,
            config.epochs,
            config.batch_size,
            config.optimizer.name(),
            config.lr,
            rayon::current_num_threads(),
            out.display()
        );
    }
    if let (Some(text), true) = (&trainer.card.architecture, root) {
        // The run directory keeps the architecture it was trained with (the checkpoint too).
        nabla_nn::state::write_atomic(&out.join("architecture.toml"), text.as_bytes())?;
    }
    let summary = trainer.run(start)?;
    if !quiet && config.regression {
        let std = config.target_scale.map_or(1.0, |s| s.1);
        println!(
            "test MSE {:.4} (standardised target), RMSE {:.3} in target units  ({:.0} s in all)",
            summary.test_loss,
            summary.test_loss.sqrt() * std,
            summary.seconds
        );
    } else if !quiet {
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
        common::finalize();
        std::process::exit(130);
    }
    Ok(())
}

/// What watches the run: the run directory's metrics and plots (rank 0), progress unless
/// `--quiet`, TensorBoard with `--tensorboard` (rank 0), the GPU's memory after each epoch on
/// a GPU.
fn observers(
    args: &TrainArgs,
    config: &TrainConfig,
    out: &std::path::Path,
    quiet: bool,
    root: bool,
) -> Result<Vec<Box<dyn nabla_train::observe::Observer>>> {
    use nabla_train::observe;
    let mut list: Vec<Box<dyn observe::Observer>> = Vec::new();
    if root {
        // Before TensorBoard: it reads the filters drawn.
        list.push(Box::new(observe::RunFiles {
            out_dir: out.to_path_buf(),
            verbose: !quiet,
        }));
    }
    if !quiet {
        list.push(Box::new(observe::Progress::new(config.epochs, config.target_scale)));
    }
    if args.tensorboard && root {
        list.push(Box::new(observe::TensorBoard {
            events: nabla_train::tensorboard::EventWriter::create(&out.join("tensorboard"))?,
            out_dir: out.to_path_buf(),
        }));
    }
    #[cfg(feature = "cuda")]
    if let (false, nabla_core::Device::Cuda(n)) = (quiet, args.device) {
        list.push(Box::new(observe::DeviceMemory(n)));
    }
    Ok(list)
}
