//! Metrics: top-1 and top-5 accuracy, mean loss and the confusion matrix of an evaluation.

use serde::{Deserialize, Serialize};

/// One row of `metrics.csv`.
///
/// NOTE: JSON has no NaN: serde_json writes it as `null` (a regression run's accuracy), so
/// every number reads `null` back as NaN; a regression checkpoint could not be loaded before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    #[serde(deserialize_with = "nan_if_null")]
    pub train_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub train_acc: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_top1: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_top5: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub lr: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub train_samples_per_s: f64,
    /// On the validation split (NaN without one).
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub val_loss: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub val_top1: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub val_top5: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// A number, or NaN for `null`.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl EpochMetrics {
    pub const CSV_HEADER: &'static str = "epoch,train_loss,train_acc,test_loss,test_top1,test_top5,lr,seconds,train_samples_per_s,val_loss,val_top1,val_top5";
    pub fn csv_row(&self) -> String {
        format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.8},{:.3},{:.1},{:.6},{:.6},{:.6}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.test_loss,
            self.test_top1,
            self.test_top5,
            self.lr,
            self.seconds,
            self.train_samples_per_s,
            self.val_loss,
            self.val_top1,
            self.val_top5
        )
    }
}

/// Accumulates predictions over an evaluation.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub classes: usize,
    pub count: usize,
    pub loss_sum: f64,
    pub top1: usize,
    pub top5: usize,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// A regression: the loss is the mean squared error, and accuracies are NaN.
    pub regression: bool,
    /// A regression's (true, predicted) pairs, for the scatter plot.
    pub pairs: Vec<(f32, f32)>,
}

impl Evaluation {
    pub fn new(classes: usize) -> Self {
        Evaluation {
            classes,
            confusion: vec![vec![0; classes]; classes],
            ..Default::default()
        }
    }

    /// Adds a batch: logits `[B, C]` row-major, labels, and the batch's summed loss.
    pub fn add(&mut self, logits: &[f32], labels: &[i64], loss_sum: f64) {
        let c = self.classes;
        for (row, &y) in logits.chunks_exact(c).zip(labels) {
            let y = y as usize;
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap_or(std::cmp::Ordering::Equal));
            if order[0] == y {
                self.top1 += 1;
            }
            if order.iter().take(5).any(|&k| k == y) {
                self.top5 += 1;
            }
            self.confusion[y][order[0]] += 1;
        }
        self.count += labels.len();
        self.loss_sum += loss_sum;
    }

    /// Adds a regression batch's (true, predicted) values.
    pub fn add_predictions(&mut self, truth: &[f32], predicted: &[f32]) {
        self.pairs.extend(truth.iter().copied().zip(predicted.iter().copied()));
    }

    /// Adds a regression batch: its summed squared error over `n` targets.
    pub fn add_regression(&mut self, squared_error_sum: f64, n: usize) {
        self.regression = true;
        self.count += n;
        self.loss_sum += squared_error_sum;
    }

    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }
    pub fn top1(&self) -> f64 {
        if self.regression {
            return f64::NAN;
        }
        self.top1 as f64 / self.count.max(1) as f64
    }
    pub fn top5(&self) -> f64 {
        if self.regression {
            return f64::NAN;
        }
        self.top5 as f64 / self.count.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_by_hand() {
        let mut e = Evaluation::new(6);
        // Sample 1: true 2, best 2. Sample 2: true 0 ranked sixth (last): wrong in top-1 and top-5.
        e.add(
            &[0.1, 0.2, 0.9, 0.0, 0.0, 0.0, 0.0, 0.5, 0.4, 0.3, 0.2, 0.1],
            &[2, 0],
            3.0,
        );
        assert_eq!((e.top1, e.top5, e.count), (1, 1, 2));
        assert_eq!(e.confusion[0][1], 1);
        assert_eq!(e.loss(), 1.5);
    }
}
