//! The training loop: for each epoch, mini-batch SGD (or Adam, …) over the shuffled training
//! set ([`Trainer::epoch`], one [`Trainer::step`] per batch), then an evaluation, a metrics row
//! for the observers and a checkpoint ([`Trainer::end_epoch`]).
//!
//! The checkpoints are the loop's own, not an observer's: what `--resume` continues from must
//! be the state at exactly the step where the loop stopped (optimiser moments, schedule,
//! generator, partial sums), and `best.safetensors` and early stopping read them back. Everything
//! else a run writes or shows (metrics.csv, plots, progress, TensorBoard) is an observer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::checkpoint::{Checkpoint, CheckpointMeta, PartialEpoch};
use crate::config::TrainConfig;
use crate::evaluate::evaluate;
pub use crate::evaluate::model_device;
use crate::metrics::{EpochMetrics, Evaluation};
use crate::observe::{EpochEnd, StepEvent};
use crate::step::Objective;
use nabla_core::{Error, Result, Tensor};
use nabla_data::DataLoader;
use nabla_nn::Module;
use nabla_nn::loss::CrossEntropyOptions;
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

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

impl Trainer {
    /// A trainer for `model` on `data` with `config`'s optimiser and schedule, writing its
    /// checkpoints and summary to `out_dir`: one process, on the device of the model's
    /// parameters, no observers (attach [`crate::observe::RunFiles`] for metrics.csv and
    /// plots, [`crate::observe::Progress`] for a progress bar), quiet.
    pub fn new(
        config: TrainConfig,
        model: Box<dyn Module>,
        data: crate::data::RunData,
        out_dir: impl Into<PathBuf>,
    ) -> Result<Trainer> {
        config.validate()?;
        Ok(Trainer {
            optimizer: config.optimizer(model.named_parameters())?,
            scheduler: config.scheduler()?,
            device: model_device(model.as_ref()),
            config,
            model,
            train: data.train,
            val: data.val,
            test: data.test,
            classes: data.classes,
            input: data.input,
            card: data.card,
            out_dir: out_dir.into(),
            stop: Arc::new(AtomicBool::new(false)),
            history: Vec::new(),
            verbose: false,
            stop_after_steps: None,
            save_every: None,
            observers: Vec::new(),
            collective: Arc::new(nabla_dist::SingleProcess),
            accumulate: 1,
            check_replicas: false,
        })
    }

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
        let step = nabla_core::autocast::autocast(self.config.precision, || {
            crate::step::gradients(
                self.model.as_ref(),
                &batch.x,
                &batch.y,
                batch.global_len,
                objective,
                self.accumulate,
                count_correct,
            )
        })?;
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

    /// Trains from `start` (epoch, batch, partial sums) to the end, an early stop or a signal:
    /// [`epoch`](Self::epoch) after epoch, each followed by [`end_epoch`](Self::end_epoch);
    /// with a validation split, the test set once at the end with the best weights.
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
        let mut progress = LoopProgress::default();
        let mut ending = Ending::Finished;
        for epoch in first_epoch..self.config.epochs {
            let pass = self.epoch(epoch, first_batch, std::mem::take(&mut partial), &mut progress)?;
            first_batch = 0;
            if pass.interrupted {
                ending = Ending::Interrupted;
                break;
            }
            if self.end_epoch(epoch, &pass)? {
                ending = Ending::StoppedEarly;
                break;
            }
            if self.stop.load(Ordering::SeqCst) && epoch + 1 < self.config.epochs {
                // Stopped during the evaluation: the epoch's checkpoint is the saved state.
                ending = Ending::Interrupted;
                break;
            }
        }
        if ending == Ending::Interrupted && self.verbose {
            eprintln!(
                "interrupted: state saved to {} (continue with --resume)",
                self.checkpoint_path().display()
            );
        }
        let finished =
            ending == Ending::StoppedEarly || (ending == Ending::Finished && self.history.len() == self.config.epochs);
        let final_test = if finished { self.final_test()? } else { None };
        self.summary(final_test, ending, run_start.elapsed().as_secs_f64())
    }

    /// One pass over the training set from batch `first_batch` (after a resume inside the
    /// epoch), continuing the sums of `partial`: a [`step`](Self::step) per batch, the
    /// observers told of each, periodic checkpoints, and a checkpoint when a signal (or
    /// `stop_after_steps`) stops it.
    pub fn epoch(
        &mut self,
        epoch: usize,
        first_batch: usize,
        partial: PartialEpoch,
        progress: &mut LoopProgress,
    ) -> Result<EpochPass> {
        let root = self.is_root();
        self.model.train();
        let lr = self.scheduler.lr();
        self.optimizer.set_lr(lr);
        let t0 = Instant::now();
        let batches = self.train.num_batches();
        for o in &mut self.observers {
            o.epoch_start(epoch, first_batch, batches)?;
        }
        let classification = Objective::Classification(CrossEntropyOptions {
            label_smoothing: self.config.label_smoothing,
            ..Default::default()
        });
        let mut p = partial;
        let seconds_before = p.seconds;
        let elapsed = |t0: Instant| seconds_before + t0.elapsed().as_secs_f64();
        for batch in self.train.epoch(epoch, first_batch) {
            let mut batch = batch?;
            (batch.x, batch.y) = (batch.x.to_device(self.device)?, batch.y.to_device(self.device)?);
            let regression = batch.y.dtype() == nabla_core::DType::F32;
            let objective = if regression {
                &Objective::Regression
            } else {
                &classification
            };
            let outcome = self.step(&batch, objective, &mut progress.reference_loss, epoch)?;
            let n = batch.global_len;
            if !regression {
                p.correct += outcome.correct;
            }
            p.loss_sum += outcome.loss * n as f64;
            p.count += n;
            let event = StepEvent {
                epoch,
                batch: batch.index,
                batches,
                loss: outcome.loss,
                lr,
                epoch_loss: p.loss_sum / p.count as f64,
                epoch_accuracy: p.correct as f64 / p.count as f64,
                samples_per_s: p.count as f64 / elapsed(t0),
            };
            for o in &mut self.observers {
                o.step(&event)?;
            }
            progress.steps += 1;
            if self.stop_after_steps == Some(progress.steps) {
                self.stop.store(true, Ordering::SeqCst);
            }
            let stopping = self.stop.load(Ordering::SeqCst);
            let periodic =
                self.save_every.is_some_and(|n| progress.steps.is_multiple_of(n)) && batch.index + 1 < batches;
            if periodic || stopping {
                let saved = PartialEpoch {
                    seconds: elapsed(t0),
                    ..p.clone()
                };
                self.checkpoint(epoch, batch.index + 1, saved)
                    .save_if(root, &self.checkpoint_path())?;
            }
            if stopping {
                for o in &mut self.observers {
                    o.interrupted()?;
                }
                p.seconds = elapsed(t0);
                return Ok(EpochPass {
                    sums: p,
                    lr,
                    interrupted: true,
                });
            }
        }
        p.seconds = elapsed(t0);
        Ok(EpochPass {
            sums: p,
            lr,
            interrupted: false,
        })
    }

    /// After epoch `epoch`'s pass: the evaluation (the validation split, else the test set;
    /// both with `test_every_epoch`), its metrics in the history, the schedule's step, the
    /// observers, the checkpoint and `best.safetensors`. Returns whether early stopping ends
    /// the run here.
    pub fn end_epoch(&mut self, epoch: usize, pass: &EpochPass) -> Result<bool> {
        let root = self.is_root();
        let classes = self.classes.len();
        // With a validation split, it is the per-epoch monitor and the test set waits for the
        // end; without one, the test set is the monitor (as before validation existed).
        let _precision = nabla_core::autocast::AutocastGuard::new(self.config.precision);
        let val = match &self.val {
            Some(v) => Some(evaluate(self.model.as_ref(), v, classes)?),
            None => None,
        };
        let test = if val.is_none() || self.config.test_every_epoch {
            Some(evaluate(self.model.as_ref(), &self.test, classes)?)
        } else {
            None
        };
        let monitor = val.as_ref().or(test.as_ref()).expect("one evaluation per epoch");
        let p = &pass.sums;
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
            lr: pass.lr,
            seconds: p.seconds,
            train_samples_per_s: p.count as f64 / p.seconds.max(1e-9),
            val_loss: val.as_ref().map_or(f64::NAN, |e| e.loss()),
            val_top1: val.as_ref().map_or(f64::NAN, |e| e.top1()),
            val_top5: val.as_ref().map_or(f64::NAN, |e| e.top5()),
        };
        self.history.push(m);
        self.scheduler.step(Some(monitor.loss()));
        let end = EpochEnd {
            metrics: self.history.last().expect("just pushed"),
            history: &self.history,
            evaluation: monitor,
            classes: &self.classes,
            model: self.model.as_ref(),
        };
        for o in &mut self.observers {
            o.epoch_end(&end)?;
        }
        self.checkpoint(epoch + 1, 0, PartialEpoch::default())
            .save_if(root, &self.checkpoint_path())?;
        if self.val.is_none() {
            return Ok(false);
        }
        // No finite validation metric yet (every one NaN or infinite): nothing is best.
        let Some(best) = best_epoch(&self.history, self.config.best_by) else {
            return Ok(false);
        };
        if best == epoch + 1 && root {
            std::fs::copy(self.checkpoint_path(), self.best_path()).map_err(|e| io_err(&self.best_path(), e))?;
        }
        let stop_early = self.config.early_stop > 0 && epoch + 1 - best >= self.config.early_stop;
        if stop_early && self.verbose {
            eprintln!(
                "early stop: no better validation {} for {} epochs since epoch {best}",
                self.config.best_by.name(),
                self.config.early_stop
            );
        }
        Ok(stop_early)
    }

    /// With a validation split, the test set evaluated once, at the end, with the best weights
    /// (`best.safetensors`): the evaluation and the best epoch. `None` without one.
    fn final_test(&mut self) -> Result<Option<(Evaluation, usize)>> {
        if self.val.is_none() || !self.is_root() || !self.best_path().exists() {
            return Ok(None);
        }
        let best = Checkpoint::load(&self.best_path())?;
        nabla_nn::state::load_state_dict(self.model.as_ref(), &best.model, "best.safetensors")?;
        let _precision = nabla_core::autocast::AutocastGuard::new(self.config.precision);
        let eval = evaluate(self.model.as_ref(), &self.test, self.classes.len())?;
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
        if let Some(metrics) = self.history.last() {
            let end = EpochEnd {
                metrics,
                history: &self.history,
                evaluation: &eval,
                classes: &self.classes,
                model: self.model.as_ref(),
            };
            for o in &mut self.observers {
                o.final_test(&end)?;
            }
        }
        Ok(Some((eval, best.meta.epoch)))
    }

    /// `summary.json` (rank 0) and the summary it holds.
    fn summary(&self, final_test: Option<(Evaluation, usize)>, ending: Ending, seconds: f64) -> Result<RunSummary> {
        let last = self.history.last();
        let total_train_s: f64 = self.history.iter().map(|m| m.seconds).sum();
        let total_samples: f64 = self.history.iter().map(|m| m.train_samples_per_s * m.seconds).sum();
        let (test_top1, test_top5, test_loss) = match &final_test {
            Some((e, _)) => (e.top1(), e.top5(), e.loss()),
            None => (
                last.map_or(0.0, |m| m.test_top1),
                last.map_or(0.0, |m| m.test_top5),
                last.map_or(f64::NAN, |m| m.test_loss),
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
            stopped_early: ending == Ending::StoppedEarly,
            train_samples_per_s: total_samples / total_train_s.max(1e-9),
            parameters: self.model.num_parameters(),
            seconds,
            interrupted: ending == Ending::Interrupted,
        };
        if self.is_root() {
            let path = self.out_dir.join("summary.json");
            let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
            nabla_nn::state::write_atomic(&path, json.as_bytes())?;
        }
        Ok(summary)
    }

    pub fn best_path(&self) -> PathBuf {
        self.out_dir.join("best.safetensors")
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Finished,
    StoppedEarly,
    Interrupted,
}

/// What the loop carries from epoch to epoch within one process.
#[derive(Debug, Clone, Default)]
pub struct LoopProgress {
    /// Steps taken by this process (for `stop_after_steps` and `save_every`).
    pub steps: usize,
    /// The loss of this process's first step: a loss 10⁴ times larger means divergence.
    pub reference_loss: Option<f64>,
}

/// What one pass over the training set ([`Trainer::epoch`]) left.
#[derive(Debug, Clone)]
pub struct EpochPass {
    /// The epoch's sums (loss, correct, samples, seconds), from its start.
    pub sums: PartialEpoch,
    /// The learning rate of the epoch.
    pub lr: f64,
    /// A signal or `stop_after_steps` stopped it; the state is saved.
    pub interrupted: bool,
}
