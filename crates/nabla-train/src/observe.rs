//! What watches a run without steering it: progress on the terminal, the run directory's
//! metrics.csv, confusion.csv and plots, TensorBoard events, the GPU's memory. Each is an
//! [`Observer`] the caller attaches to the `Trainer`; the loop calls them in order and never
//! depends on which are there. (The checkpoints and summary.json are the loop's own: resuming
//! depends on them; see trainer.rs.)

use crate::metrics::{EpochMetrics, Evaluation};
use nabla_core::Result;
use nabla_nn::Module;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// One optimisation step, as the observers see it.
pub struct StepEvent {
    /// 0-based epoch and batch.
    pub epoch: usize,
    pub batch: usize,
    /// Steps of one epoch.
    pub batches: usize,
    /// This step's mean loss (summed over the ranks).
    pub loss: f64,
    pub lr: f64,
    /// The epoch so far: mean loss, accuracy (NaN for regression), samples per second.
    pub epoch_loss: f64,
    pub epoch_accuracy: f64,
    pub samples_per_s: f64,
}

/// The end of an epoch (or of the run), as the observers see it.
pub struct EpochEnd<'a> {
    /// This epoch's row (the last of `history`).
    pub metrics: &'a EpochMetrics,
    /// Every epoch so far, this one included.
    pub history: &'a [EpochMetrics],
    /// The evaluation the epoch was judged by: the validation split's, else the test set's;
    /// at the run's end, the test set's with the best weights.
    pub evaluation: &'a Evaluation,
    pub classes: &'a [String],
    pub model: &'a dyn Module,
}

/// Called by `Trainer::run`; every method has a default that does nothing.
pub trait Observer {
    /// An epoch starts (at `first_batch` when resumed inside it).
    fn epoch_start(&mut self, _epoch: usize, _first_batch: usize, _batches: usize) -> Result<()> {
        Ok(())
    }
    /// A step ended.
    fn step(&mut self, _event: &StepEvent) -> Result<()> {
        Ok(())
    }
    /// An epoch ended and was evaluated.
    fn epoch_end(&mut self, _end: &EpochEnd) -> Result<()> {
        Ok(())
    }
    /// With a validation split, the run finished and the test set was evaluated with the best
    /// weights (`end.evaluation`).
    fn final_test(&mut self, _end: &EpochEnd) -> Result<()> {
        Ok(())
    }
    /// The run stops early (signal or `stop_after_steps`); the state is being saved.
    fn interrupted(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A progress bar per epoch on a terminal (plain output otherwise), and one line of metrics
/// at the end of each epoch.
pub struct Progress {
    epochs: usize,
    /// The regression target's (mean, std), to print errors in the target's units.
    target_scale: Option<(f64, f64)>,
    bar: Option<indicatif::ProgressBar>,
    tty: bool,
}

impl Progress {
    pub fn new(epochs: usize, target_scale: Option<(f64, f64)>) -> Progress {
        Progress {
            epochs,
            target_scale,
            bar: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// One epoch's line of progress.
    pub fn epoch_line(&self, m: &EpochMetrics, regression: bool) -> String {
        let head = format!("epoch {:>2}/{}", m.epoch, self.epochs);
        let tail = format!(
            "lr {:.4}  {:.1}s  {:.0} samples/s",
            m.lr, m.seconds, m.train_samples_per_s
        );
        let scale = self.target_scale.map_or(1.0, |(_, std)| std);
        let part = |name: &str, loss: f64, top1: f64, top5: f64| {
            if !loss.is_finite() && !top1.is_finite() {
                String::new()
            } else if regression {
                format!(
                    "  {name} MSE {loss:.4} (RMSE {:.3} in target units)",
                    loss.sqrt() * scale
                )
            } else {
                format!(
                    "  {name} loss {loss:.4} top-1 {:.2}% top-5 {:.2}%",
                    100.0 * top1,
                    100.0 * top5
                )
            }
        };
        let train = if regression {
            format!("  train MSE {:.4}", m.train_loss)
        } else {
            format!("  train loss {:.4} acc {:.2}%", m.train_loss, 100.0 * m.train_acc)
        };
        format!(
            "{head}{train}{}{}  {tail}",
            part("val", m.val_loss, m.val_top1, m.val_top5),
            part("test", m.test_loss, m.test_top1, m.test_top5)
        )
    }
}

impl Observer for Progress {
    fn epoch_start(&mut self, epoch: usize, first_batch: usize, batches: usize) -> Result<()> {
        self.bar = self.tty.then(|| {
            let b = indicatif::ProgressBar::new(batches as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_prefix(format!("{}/{}", epoch + 1, self.epochs));
            b.set_position(first_batch as u64);
            b
        });
        Ok(())
    }

    fn step(&mut self, e: &StepEvent) -> Result<()> {
        if let Some(b) = &self.bar {
            b.set_position(e.batch as u64 + 1);
            b.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} samples/s",
                e.epoch_loss,
                100.0 * e.epoch_accuracy,
                e.samples_per_s
            ));
        }
        Ok(())
    }

    fn epoch_end(&mut self, end: &EpochEnd) -> Result<()> {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        eprintln!("{}", self.epoch_line(end.metrics, end.evaluation.regression));
        Ok(())
    }

    fn interrupted(&mut self) -> Result<()> {
        if let Some(b) = self.bar.take() {
            b.abandon();
        }
        Ok(())
    }
}

/// The run directory's human-readable files after every epoch: `metrics.csv` (one row per
/// epoch), `confusion.csv` (rows: true class, columns: predicted class) and the plots (loss,
/// accuracy, confusion matrix, first-layer filters); at the end of a run with validation, the
/// confusion and plots of the final test. Attach it on the rank that writes (rank 0).
pub struct RunFiles {
    pub out_dir: PathBuf,
    /// Say when the plots cannot be drawn (they never stop training).
    pub verbose: bool,
}

impl RunFiles {
    fn write_evaluation(&self, end: &EpochEnd) -> Result<()> {
        if !end.evaluation.regression {
            write_confusion(&self.out_dir.join("confusion.csv"), end.evaluation, end.classes)?;
        }
        let plotted = crate::plots::write_run_plots(&self.out_dir, end.history, end.evaluation, end.classes, end.model);
        if let (Err(e), true) = (plotted, self.verbose) {
            eprintln!("warning: plots not written: {e}");
        }
        Ok(())
    }
}

impl Observer for RunFiles {
    fn epoch_end(&mut self, end: &EpochEnd) -> Result<()> {
        let mut csv = String::from(EpochMetrics::CSV_HEADER);
        csv.push('\n');
        for m in end.history {
            csv.push_str(&m.csv_row());
            csv.push('\n');
        }
        nabla_nn::state::write_atomic(&self.out_dir.join("metrics.csv"), csv.as_bytes())?;
        self.write_evaluation(end)
    }

    fn final_test(&mut self, end: &EpochEnd) -> Result<()> {
        self.write_evaluation(end)
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

/// TensorBoard events: loss and learning rate per step, the metrics per epoch, and the first
/// layer's filters (`filters.png` of the run directory, drawn by [`RunFiles`] when attached
/// before this) per epoch.
pub struct TensorBoard {
    pub events: crate::tensorboard::EventWriter,
    /// The run directory, where the plots are drawn.
    pub out_dir: PathBuf,
}

impl Observer for TensorBoard {
    fn step(&mut self, e: &StepEvent) -> Result<()> {
        let step = (e.epoch * e.batches + e.batch + 1) as u64;
        self.events.scalars(step, &[("train/loss", e.loss), ("train/lr", e.lr)])
    }

    fn epoch_end(&mut self, end: &EpochEnd) -> Result<()> {
        let m = end.metrics;
        let step = m.epoch as u64;
        self.events.scalars(
            step,
            &[
                ("epoch/train_loss", m.train_loss),
                ("epoch/train_acc", m.train_acc),
                ("epoch/val_loss", m.val_loss),
                ("epoch/val_top1", m.val_top1),
                ("epoch/val_top5", m.val_top5),
                ("epoch/test_loss", m.test_loss),
                ("epoch/test_top1", m.test_top1),
                ("epoch/test_top5", m.test_top5),
                ("epoch/lr", m.lr),
                ("epoch/samples_per_s", m.train_samples_per_s),
            ],
        )?;
        if let Ok(png) = std::fs::read(self.out_dir.join("filters.png")) {
            self.events.png(step, "filters/first_layer", &png)?;
        }
        self.events.flush()
    }

    fn interrupted(&mut self) -> Result<()> {
        self.events.flush()
    }
}

/// The caching allocator's figures for GPU `n` after each epoch (flat from epoch to epoch when
/// it reuses its blocks).
#[cfg(feature = "cuda")]
pub struct DeviceMemory(pub usize);

#[cfg(feature = "cuda")]
impl Observer for DeviceMemory {
    fn epoch_end(&mut self, _end: &EpochEnd) -> Result<()> {
        let s = nabla_core::cuda::memory_stats(self.0);
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        eprintln!(
            "          gpu memory: in use {:.1} MiB, cached {:.1} MiB, peak {:.1} MiB, device allocations {}",
            mib(s.in_use),
            mib(s.cached),
            mib(s.peak_in_use),
            s.device_allocations
        );
        Ok(())
    }
}
