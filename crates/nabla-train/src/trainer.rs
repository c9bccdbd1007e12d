//! The training loop: for each epoch, mini-batch SGD (or Adam, …) over the shuffled training
//! set, then an evaluation on the test set, a metrics row and a checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::checkpoint::{Checkpoint, CheckpointMeta, PartialEpoch};
use crate::config::TrainConfig;
use crate::metrics::{EpochMetrics, Evaluation};
use crate::observe::StepEvent;
use crate::step::Objective;
use nabla_core::{Error, Result, Tensor};
use nabla_data::DataLoader;
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
use nabla_nn::optim::Optimizer;
use nabla_nn::schedule::LrScheduler;
use serde::Serialize;

/// The epoch (1-based) with the best validation metric in `history`; the earliest on a tie.
pub fn best_epoch(history: &[EpochMetrics], by: crate::config::BestBy) -> Option<usize> {
    let score = |m: &EpochMetrics| match by {
        crate::config::BestBy::Loss => -m.val_loss,
        crate::config::BestBy::Top1 => m.val_top1,
    };
    history
        .iter()
        .filter(|m| score(m).is_finite())
        .fold(None, |best: Option<&EpochMetrics>, m| match best {
            Some(b) if score(b) >= score(m) => Some(b),
            _ => Some(m),
        })
        .map(|m| m.epoch)
}

/// A loss this many times the first step's (or 1, if larger) ends the run as diverged.
pub const DIVERGENCE_FACTOR: f64 = 1e4;

/// What `summary.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub model: String,
    pub dataset: String,
    pub epochs: usize,
    pub seed: u64,
    pub test_top1: f64,
    pub test_top5: f64,
    pub test_loss: f64,
    /// With a validation split: the epoch whose weights were tested (`best.safetensors`).
    pub best_epoch: Option<usize>,
    /// Whether `--early-stop` ended the run.
    pub stopped_early: bool,
    pub train_samples_per_s: f64,
    pub parameters: usize,
    pub seconds: f64,
    pub interrupted: bool,
}

/// What one step left, for the epoch's sums and the observers.
#[derive(Debug, Clone, Copy)]
pub struct StepOutcome {
    /// The step's mean loss over the global batch (summed over the ranks).
    pub loss: f64,
    /// Correct predictions over the global batch (classification).
    pub correct: usize,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub model: Box<dyn Module>,
    pub optimizer: Box<dyn Optimizer>,
    pub scheduler: Box<dyn LrScheduler>,
    pub train: DataLoader,
    /// The validation split, evaluated after every epoch (see `TrainConfig::val_split`).
    pub val: Option<DataLoader>,
    pub test: DataLoader,
    pub classes: Vec<String>,
    pub input: [usize; 3],
    pub out_dir: PathBuf,
    /// Set (by Ctrl-C) to stop after the current step and save.
    pub stop: Arc<AtomicBool>,
    pub history: Vec<EpochMetrics>,
    /// Print progress (bars on a terminal, plain lines otherwise).
    pub verbose: bool,
    /// Behave as if Ctrl-C came after this many steps of this process (tests of resuming).
    pub stop_after_steps: Option<usize>,
    /// Also save a checkpoint every this many steps (not only at the end of each epoch).
    pub save_every: Option<usize>,
    /// Where the model and each batch live (the model is moved there by the caller).
    pub device: nabla_core::Device,
    /// What the checkpoints carry besides weights (architecture, normalisation, features).
    pub card: crate::checkpoint::ModelCard,
    /// What watches the run: progress, TensorBoard, device memory (see observe.rs).
    pub observers: Vec<Box<dyn crate::observe::Observer>>,
    /// The ranks of data-parallel training (`SingleProcess` for one): gradients are summed
    /// over them each step, only rank 0 writes files.
    pub collective: Arc<dyn nabla_dist::Collective>,
    /// Micro-batches per batch on each rank (gradient accumulation); 1: the whole part at once.
    pub accumulate: usize,
    /// After every step, check that every rank holds the same parameters (a checksum of their
    /// bits against rank 0's); an error on a mismatch. For tests of data-parallel training.
    pub check_replicas: bool,
}

/// The device of a model's parameters (the CPU for a model without any).
pub fn model_device(model: &dyn Module) -> nabla_core::Device {
    model
        .parameters()
        .first()
        .map_or(nabla_core::Device::Cpu, |p| p.device())
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

impl Trainer {
    /// Rank 0 of data-parallel training (or the one process): the rank that writes files.
    pub fn is_root(&self) -> bool {
        self.collective.rank() == 0
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.out_dir.join("checkpoint.safetensors")
    }

    fn checkpoint(&self, epoch: usize, next_batch: usize, partial: PartialEpoch) -> Checkpoint {
        let opt = self.optimizer.state();
        Checkpoint {
            meta: CheckpointMeta {
                format: 1,
                config: self.config.clone(),
                epoch,
                next_batch,
                partial,
                optimizer_scalars: opt.scalars,
                schedule: self.scheduler.state(),
                rng: nabla_core::rng::default_generator_state(),
                history: self.history.clone(),
                input: self.input,
                classes: self.classes.clone(),
                card: self.card.clone(),
            },
            model: self.model.state_dict(),
            optimizer: opt.tensors,
        }
    }

    /// Restores model, optimiser, schedule, generator and history; returns (epoch, batch, partial).
    ///
    /// A run continued with another number of epochs (`--resume --epochs N`) has its schedule
    /// planned anew for N epochs and advanced to the checkpoint's epoch: the saved state
    /// belongs to a schedule of another length (a cosine over 1 epoch has no warm-up, one over
    /// 2 has), so it cannot be loaded into this one.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(usize, usize, PartialEpoch)> {
        nabla_nn::state::load_state_dict(self.model.as_ref(), &ck.model, "checkpoint")?;
        self.optimizer.load_state(&ck.optimizer_state())?;
        if ck.meta.config.epochs == self.config.epochs {
            self.scheduler.load_state(&ck.meta.schedule)?;
        } else {
            for m in ck.meta.history.iter().take(ck.meta.epoch) {
                self.scheduler.step(Some(m.test_loss));
            }
        }
        nabla_core::rng::set_default_generator_state(ck.meta.rng);
        self.history = ck.meta.history.clone();
        Ok((ck.meta.epoch, ck.meta.next_batch, ck.meta.partial.clone()))
    }

    /// Top-1/top-5/loss/confusion of the model on `loader`, in evaluation mode.
    pub fn evaluate(model: &dyn Module, loader: &DataLoader, classes: usize) -> Result<Evaluation> {
        model.eval();
        let mut eval = Evaluation::new(classes);
        let _guard = nabla_core::NoGradGuard::new();
        let device = model_device(model);
        for batch in loader.epoch(0, 0) {
            let mut batch = batch?;
            (batch.x, batch.y) = (batch.x.to_device(device)?, batch.y.to_device(device)?);
            let out = model.forward(&batch.x)?;
            if batch.y.dtype() == nabla_core::DType::F32 {
                // Regression: the summed squared error; accuracy does not apply.
                let loss = mse_loss(&out, &batch.y, Reduction::Sum)?;
                eval.add_regression(loss.item()?, batch.y.elem_count());
                eval.add_predictions(&batch.y.to_vec::<f32>()?, &out.to_vec::<f32>()?);
                continue;
            }
            let opts = CrossEntropyOptions {
                reduction: Reduction::Sum,
                ..Default::default()
            };
            let loss = cross_entropy(&out, &batch.y, &opts)?;
            eval.add(&out.to_vec::<f32>()?, &batch.y.to_vec::<i64>()?, loss.item()?);
        }
        Ok(eval)
    }

    /// Compares a hash of every parameter's bits (FNV-1a over the f32 values in state-dict
    /// order) with rank 0's.
    fn check_replicas_agree(&self, epoch: usize, index: usize) -> Result<()> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (_, p) in self.model.named_parameters() {
            for v in p.to_dtype(nabla_core::DType::F32)?.to_vec::<f32>()? {
                for b in v.to_le_bytes() {
                    h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        let mut bytes = h.to_le_bytes().to_vec();
        self.collective.broadcast_bytes(&mut bytes, 0)?;
        if bytes != h.to_le_bytes() {
            return Err(Error::Argument {
                op: "train",
                msg: format!(
                    "epoch {} step {}: the parameters of rank {} differ from rank 0's",
                    epoch + 1,
                    index + 1,
                    self.collective.rank()
                ),
            });
        }
        Ok(())
    }

    /// Whether every gradient is finite, from one sum over all of them (NaN and ±∞ survive a
    /// sum): one value read back per step, on the GPU too, instead of every gradient.
    fn gradients_finite(&self, grads: &nabla_core::GradStore) -> Result<bool> {
        let mut total: Option<Tensor> = None;
        for p in self.model.parameters() {
            if let Some(g) = grads.get(&p) {
                let s = g.sum_all()?.to_dtype(nabla_core::DType::F64)?;
                total = Some(match total {
                    Some(t) => t.add(&s)?,
                    None => s,
                });
            }
        }
        // NOTE: a finite sum that overflows f64 would need gradients near 1e308; a false alarm
        // then only runs the exact check below.
        Ok(match total {
            Some(t) => t.item()?.is_finite() || self.all_gradients_finite(grads),
            None => true,
        })
    }

    /// The exact check: every element of every gradient.
    fn all_gradients_finite(&self, grads: &nabla_core::GradStore) -> bool {
        self.model.parameters().iter().all(|p| {
            grads
                .get(p)
                .is_none_or(|g| g.to_vec_f64().is_ok_and(|v| v.iter().all(|x| x.is_finite())))
        })
    }

    /// What went wrong in a step whose loss or gradients are not finite, or whose loss
    /// diverged: the data (an input that is not finite), the forward pass (a loss that
    /// overflowed) or the backward pass (the parameter nearest the output whose gradient is
    /// not finite: backpropagation starts there, so that is where the overflow began).
    fn diagnose(&self, x: &Tensor, loss: f64, first: f64, grads: &nabla_core::GradStore) -> Result<String> {
        if !x.to_vec_f64()?.iter().all(|v| v.is_finite()) {
            return Ok(format!(
                "the input batch holds NaN or infinite values (loss {loss}): the data is at fault, not the training; check the dataset"
            ));
        }
        if let Some(bad) = self
            .model
            .named_parameters()
            .into_iter()
            .find(|(_, p)| p.to_vec_f64().is_ok_and(|v| v.iter().any(|x| !x.is_finite())))
        {
            return Ok(format!("parameter '{}' holds NaN or infinite values", bad.0));
        }
        if loss.is_finite() && loss > DIVERGENCE_FACTOR * first.max(1.0) {
            return Ok(format!(
                "the loss diverged to {loss:.3e}, more than {DIVERGENCE_FACTOR:.0e} × the first step's loss of {first:.4}; try a lower --lr"
            ));
        }
        if !loss.is_finite() {
            return Ok(format!(
                "the loss is {loss}: the model's outputs overflowed; try a lower --lr"
            ));
        }
        let named = self.model.named_parameters();
        let bad: Vec<&String> = named
            .iter()
            .filter(|(_, p)| {
                // A gradient that cannot be read counts as not finite: it is named either way.
                grads
                    .get(p)
                    .is_some_and(|g| !g.to_vec_f64().is_ok_and(|v| v.iter().all(|x| x.is_finite())))
            })
            .map(|(n, _)| n)
            .collect();
        Ok(match bad.last() {
            Some(last) => format!(
                "the loss is finite ({loss}) but {} of {} gradients are not; the one nearest the output is '{last}'; try a lower --lr or gradient clipping",
                bad.len(),
                named.len()
            ),
            None => format!("the gradients overflowed in their sum (loss {loss})"),
        })
    }

    /// Where the last good state is, for an error that ends the run.
    fn last_checkpoint(&self) -> String {
        let path = self.checkpoint_path();
        if path.exists() {
            format!("The last good state is {}", path.display())
        } else {
            "No checkpoint was saved before this step".to_string()
        }
    }

    /// One optimisation step on `batch` (this rank's part of it): the gradients
    /// ([`crate::step::gradients`]), their sum over the ranks, the divergence guard (against
    /// `reference_loss`, this process's first loss), the optimiser step, and the ranks' buffers
    /// made equal. An error ends the run, naming what diverged and the last good checkpoint.
    pub fn step(
        &mut self,
        batch: &nabla_data::Batch,
        objective: &Objective,
        reference_loss: &mut Option<f64>,
        epoch: usize,
    ) -> Result<StepOutcome> {
        let count_correct = matches!(objective, Objective::Classification(_));
        let step = crate::step::gradients(
            self.model.as_ref(),
            &batch.x,
            &batch.y,
            batch.global_len,
            objective,
            self.accumulate,
            count_correct,
        )?;
        let (mut grads, mut loss_v, mut correct) = (step.grads, step.loss, step.correct);
        let weight = step.weight;
        if self.collective.world_size() > 1 {
            // One collective per bucket: the gradients, and riding in the first bucket
            // the loss, the correct predictions and whether any rank was asked to stop,
            // so that every rank sees the same numbers and stops at the same step.
            let stop = self.stop.load(Ordering::SeqCst) as u8 as f32;
            let mut extra = [(loss_v * weight) as f32, correct as f32, stop];
            let params = self.model.parameters();
            nabla_dist::all_reduce_gradients(
                self.collective.as_ref(),
                &params,
                &mut grads,
                weight as f32,
                &mut extra,
                nabla_dist::BUCKET_ELEMENTS,
            )?;
            (loss_v, correct) = (extra[0] as f64, extra[1].round() as usize);
            if extra[2] > 0.0 {
                self.stop.store(true, Ordering::SeqCst);
            }
        }
        let first = *reference_loss.get_or_insert(loss_v);
        let diverged = loss_v.is_finite() && first.is_finite() && loss_v > DIVERGENCE_FACTOR * first.max(1.0);
        if diverged || !loss_v.is_finite() || !self.gradients_finite(&grads)? {
            let what = self.diagnose(&batch.x, loss_v, first, &grads)?;
            return Err(Error::Argument {
                op: "train",
                msg: format!(
                    "epoch {} step {}: {what}. {}",
                    epoch + 1,
                    batch.index + 1,
                    self.last_checkpoint()
                ),
            });
        }
        self.optimizer.step(&grads)?;
        if self.check_replicas {
            self.check_replicas_agree(epoch, batch.index)?;
        }
        if self.collective.world_size() > 1 {
            // Batch-norm running statistics: rank 0's, as DDP's broadcast_buffers.
            let buffers: Vec<(String, Tensor)> = self
                .model
                .named_buffers()
                .into_iter()
                .filter(|(_, t)| t.dtype().is_float())
                .collect();
            nabla_dist::broadcast_tensors(self.collective.as_ref(), &buffers, 0)?;
        }
        Ok(StepOutcome { loss: loss_v, correct })
    }

    /// Trains from `start` (epoch, batch, partial sums) to the end or until stopped.
    pub fn run(&mut self, start: (usize, usize, PartialEpoch)) -> Result<RunSummary> {
        let root = self.is_root();
        if root {
            std::fs::create_dir_all(&self.out_dir).map_err(|e| io_err(&self.out_dir, e))?;
            let cfg_path = self.out_dir.join("config.json");
            let cfg_json = serde_json::to_string_pretty(&self.config).expect("config serialises");
            nabla_nn::state::write_atomic(&cfg_path, cfg_json.as_bytes())?;
        }
        if self.collective.world_size() > 1 {
            // Every rank starts from rank 0's parameters and buffers (the same seed gives the
            // same initialisation, but a resumed or loaded state must agree too).
            nabla_dist::broadcast_tensors(self.collective.as_ref(), &self.model.state_dict(), 0)?;
        }
        let run_start = Instant::now();
        let (first_epoch, mut first_batch, mut partial) = start;
        let ce = CrossEntropyOptions {
            label_smoothing: self.config.label_smoothing,
            ..Default::default()
        };
        let classification = Objective::Classification(ce);
        let batches = self.train.num_batches();
        let mut interrupted = false;
        let mut stopped_early = false;
        let mut steps = 0usize;
        // The loss of this process's first step: a loss 10⁴ times larger means divergence.
        let mut reference_loss: Option<f64> = None;
        for epoch in first_epoch..self.config.epochs {
            self.model.train();
            let lr = self.scheduler.lr();
            self.optimizer.set_lr(lr);
            let t0 = Instant::now();
            for o in &mut self.observers {
                o.epoch_start(epoch, first_batch, batches)?;
            }
            let mut p = std::mem::take(&mut partial);
            let seconds_before = p.seconds;
            for batch in self.train.epoch(epoch, first_batch) {
                let mut batch = batch?;
                (batch.x, batch.y) = (batch.x.to_device(self.device)?, batch.y.to_device(self.device)?);
                let regression = batch.y.dtype() == nabla_core::DType::F32;
                let objective = if regression {
                    &Objective::Regression
                } else {
                    &classification
                };
                let StepOutcome { loss: loss_v, correct } = self.step(&batch, objective, &mut reference_loss, epoch)?;
                let n = batch.global_len;
                if !regression {
                    p.correct += correct;
                }
                p.loss_sum += loss_v * n as f64;
                p.count += n;
                let event = StepEvent {
                    epoch,
                    batch: batch.index,
                    batches,
                    loss: loss_v,
                    lr,
                    epoch_loss: p.loss_sum / p.count as f64,
                    epoch_accuracy: p.correct as f64 / p.count as f64,
                    samples_per_s: p.count as f64 / (seconds_before + t0.elapsed().as_secs_f64()),
                };
                for o in &mut self.observers {
                    o.step(&event)?;
                }
                steps += 1;
                if self.stop_after_steps == Some(steps) {
                    self.stop.store(true, Ordering::SeqCst);
                }
                let periodic = self.save_every.is_some_and(|n| steps.is_multiple_of(n)) && batch.index + 1 < batches;
                if periodic && !self.stop.load(Ordering::SeqCst) {
                    let mut p = p.clone();
                    p.seconds = seconds_before + t0.elapsed().as_secs_f64();
                    self.checkpoint(epoch, batch.index + 1, p)
                        .save_if(root, &self.checkpoint_path())?;
                }
                if self.stop.load(Ordering::SeqCst) {
                    for o in &mut self.observers {
                        o.interrupted()?;
                    }
                    p.seconds = seconds_before + t0.elapsed().as_secs_f64();
                    self.checkpoint(epoch, batch.index + 1, p.clone())
                        .save_if(root, &self.checkpoint_path())?;
                    interrupted = true;
                    break;
                }
            }
            if interrupted {
                if self.verbose {
                    eprintln!(
                        "interrupted: state saved to {} (continue with --resume)",
                        self.checkpoint_path().display()
                    );
                }
                break;
            }
            first_batch = 0;
            let seconds = seconds_before + t0.elapsed().as_secs_f64();
            // With a validation split, it is the per-epoch monitor and the test set waits for
            // the end; without one, the test set is the monitor (as before validation existed).
            let classes = self.classes.len();
            let val = match &self.val {
                Some(v) => Some(Trainer::evaluate(self.model.as_ref(), v, classes)?),
                None => None,
            };
            let test = if val.is_none() || self.config.test_every_epoch {
                Some(Trainer::evaluate(self.model.as_ref(), &self.test, classes)?)
            } else {
                None
            };
            let monitor = val.as_ref().or(test.as_ref()).expect("one evaluation per epoch");
            let m = EpochMetrics {
                epoch: epoch + 1,
                train_loss: p.loss_sum / p.count.max(1) as f64,
                train_acc: if monitor.regression {
                    f64::NAN
                } else {
                    p.correct as f64 / p.count.max(1) as f64
                },
                test_loss: test.as_ref().map_or(f64::NAN, |e| e.loss()),
                test_top1: test.as_ref().map_or(f64::NAN, |e| e.top1()),
                test_top5: test.as_ref().map_or(f64::NAN, |e| e.top5()),
                lr,
                seconds,
                train_samples_per_s: p.count as f64 / seconds.max(1e-9),
                val_loss: val.as_ref().map_or(f64::NAN, |e| e.loss()),
                val_top1: val.as_ref().map_or(f64::NAN, |e| e.top1()),
                val_top5: val.as_ref().map_or(f64::NAN, |e| e.top5()),
            };
            let regression = monitor.regression;
            self.history.push(m.clone());
            self.scheduler.step(Some(monitor.loss()));
            if root {
                self.write_metrics()?;
                self.write_evaluation(monitor)?;
            }
            // After the plots: the TensorBoard observer reads the filters drawn.
            for o in &mut self.observers {
                o.epoch_end(&m, regression, self.model.as_ref())?;
            }
            self.checkpoint(epoch + 1, 0, PartialEpoch::default())
                .save_if(root, &self.checkpoint_path())?;
            if self.val.is_some() {
                let best = best_epoch(&self.history, self.config.best_by).expect("a validation metric");
                if best == epoch + 1 && root {
                    std::fs::copy(self.checkpoint_path(), self.best_path())
                        .map_err(|e| io_err(&self.best_path(), e))?;
                }
                if self.config.early_stop > 0 && epoch + 1 - best >= self.config.early_stop {
                    if self.verbose {
                        eprintln!(
                            "early stop: no better validation {} for {} epochs since epoch {best}",
                            self.config.best_by.name(),
                            self.config.early_stop
                        );
                    }
                    stopped_early = true;
                    break;
                }
            }
            if self.stop.load(Ordering::SeqCst) && epoch + 1 < self.config.epochs {
                // Stopped during the evaluation: the epoch's checkpoint is the saved state.
                if self.verbose {
                    eprintln!(
                        "interrupted: state saved to {} (continue with --resume)",
                        self.checkpoint_path().display()
                    );
                }
                interrupted = true;
                break;
            }
        }
        // With validation, the test set is evaluated once, at the end, with the best weights.
        let mut final_test = None;
        let finished = !interrupted && (stopped_early || self.history.len() == self.config.epochs);
        if self.val.is_some() && finished && root && self.best_path().exists() {
            let best = crate::checkpoint::Checkpoint::load(&self.best_path())?;
            nabla_nn::state::load_state_dict(self.model.as_ref(), &best.model, "best.safetensors")?;
            let eval = Trainer::evaluate(self.model.as_ref(), &self.test, self.classes.len())?;
            self.write_evaluation(&eval)?;
            if self.verbose {
                eprintln!(
                    "test (best epoch {}): {}",
                    best.meta.epoch,
                    if eval.regression {
                        format!("loss {:.4}", eval.loss())
                    } else {
                        format!(
                            "loss {:.4} top-1 {:.2}% top-5 {:.2}%",
                            eval.loss(),
                            100.0 * eval.top1(),
                            100.0 * eval.top5()
                        )
                    }
                );
            }
            final_test = Some((eval, best.meta.epoch));
        }
        let last = self.history.last().cloned();
        let total_train_s: f64 = self.history.iter().map(|m| m.seconds).sum();
        let total_samples: f64 = self.history.iter().map(|m| m.train_samples_per_s * m.seconds).sum();
        let (test_top1, test_top5, test_loss) = match &final_test {
            Some((e, _)) => (e.top1(), e.top5(), e.loss()),
            None => (
                last.as_ref().map_or(0.0, |m| m.test_top1),
                last.as_ref().map_or(0.0, |m| m.test_top5),
                last.as_ref().map_or(f64::NAN, |m| m.test_loss),
            ),
        };
        let summary = RunSummary {
            model: self.config.model.clone(),
            dataset: self.config.dataset.clone(),
            epochs: self.history.len(),
            seed: self.config.seed,
            test_top1,
            test_top5,
            test_loss,
            best_epoch: final_test.as_ref().map(|f| f.1),
            stopped_early,
            train_samples_per_s: total_samples / total_train_s.max(1e-9),
            parameters: self.model.num_parameters(),
            seconds: run_start.elapsed().as_secs_f64(),
            interrupted,
        };
        if root {
            let path = self.out_dir.join("summary.json");
            let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
            nabla_nn::state::write_atomic(&path, json.as_bytes())?;
        }
        Ok(summary)
    }

    pub fn best_path(&self) -> PathBuf {
        self.out_dir.join("best.safetensors")
    }

    /// `confusion.csv` and the plots, from `eval` (the latest evaluation).
    fn write_evaluation(&self, eval: &Evaluation) -> Result<()> {
        if !eval.regression {
            write_confusion(&self.out_dir.join("confusion.csv"), eval, &self.classes)?;
        }
        // Pictures are for people: a failure to draw them never stops training.
        let plotted =
            crate::plots::write_run_plots(&self.out_dir, &self.history, eval, &self.classes, self.model.as_ref());
        if let (Err(e), true) = (plotted, self.verbose) {
            eprintln!("warning: plots not written: {e}");
        }
        Ok(())
    }

    fn write_metrics(&self) -> Result<()> {
        let path = self.out_dir.join("metrics.csv");
        let mut s = String::from(EpochMetrics::CSV_HEADER);
        s.push('\n');
        for m in &self.history {
            s.push_str(&m.csv_row());
            s.push('\n');
        }
        nabla_nn::state::write_atomic(&path, s.as_bytes())
    }
}

/// `confusion.csv`: one row per true class, one column per predicted class.
fn write_confusion(path: &Path, eval: &Evaluation, classes: &[String]) -> Result<()> {
    let mut s = String::from("true\\predicted");
    for c in classes {
        s.push(',');
        s.push_str(c);
    }
    s.push('\n');
    for (c, row) in classes.iter().zip(&eval.confusion) {
        s.push_str(c);
        for v in row {
            s.push_str(&format!(",{v}"));
        }
        s.push('\n');
    }
    nabla_nn::state::write_atomic(path, s.as_bytes())
}
