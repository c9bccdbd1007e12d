//! A table made ready for training: the seeded 80/20 split into training and test rows, the
//! validation rows held out of training, and standardisation with the training rows'
//! statistics, z = (x − μ) / σ per feature (and, for regression, of the target, so that one
//! learning rate suits a target in any unit).
//!
//! The statistics come from the training rows alone and are applied unchanged to the
//! validation and test rows (and, through a checkpoint, to any later table): fitting them on
//! rows the model is judged on would leak those rows into training.

use crate::csv::{TabularDataset, Task, read_csv, scale_of};
use nabla_core::{Error, Result};
use std::path::Path;

/// The share of a table's rows kept for testing.
pub const TEST_FRACTION: f64 = 0.2;

/// How a table is split.
#[derive(Debug, Clone, Copy)]
pub struct SplitOptions {
    /// Seeds the 80/20 split and the validation hold-out.
    pub seed: u64,
    /// Keep only the first N training rows (0: all).
    pub train_subset: usize,
    /// Keep only the first N test rows (0: all).
    pub test_subset: usize,
}

/// The training and test rows of the table at `path` (the test rows are [`TEST_FRACTION`] of
/// them, chosen by `opts.seed`), or an error naming the file when either part would be empty.
pub fn read_split(
    path: &Path,
    target: &str,
    task: Task,
    opts: SplitOptions,
) -> Result<(TabularDataset, TabularDataset)> {
    let table = read_csv(path, target, task)?;
    let (mut train, mut test) = table.split(TEST_FRACTION, opts.seed);
    if opts.train_subset > 0 {
        train = train.take(opts.train_subset);
    }
    if opts.test_subset > 0 {
        test = test.take(opts.test_subset);
    }
    if train.labels.is_empty() || test.labels.is_empty() {
        return Err(Error::File {
            path: path.display().to_string(),
            msg: format!(
                "{} rows give {} for training and {} for testing (an 80/20 split): at least 5 rows are needed",
                table.labels.len(),
                train.labels.len(),
                test.labels.len()
            ),
        });
    }
    Ok((train, test))
}

/// The parts of a prepared table, standardised, and the statistics that standardised them.
#[derive(Debug, Clone)]
pub struct PreparedTable {
    pub train: TabularDataset,
    /// The rows held out of training for validation (`None` when none are).
    pub val: Option<TabularDataset>,
    pub test: TabularDataset,
    /// (μ, σ) of each feature over the training rows (σ = 1 for a constant column).
    pub feature_stats: Vec<(f64, f64)>,
    /// (μ, σ) of the regression target over the training rows; `None` for classification.
    pub target_scale: Option<(f64, f64)>,
}

/// Holds `val_fraction` of `train`'s rows out (chosen by `seed`, see
/// [`crate::holdout_split`]), then standardises every part with the remaining training rows'
/// statistics.
pub fn prepare(train: TabularDataset, test: TabularDataset, val_fraction: f64, seed: u64) -> PreparedTable {
    let (kept, held) = crate::holdout_split(train.labels.len(), val_fraction, seed);
    let mut val = (!held.is_empty()).then(|| train.select(&held));
    let mut train = train.select(&kept);
    let mut test = test;
    let feature_stats = train.feature_stats();
    let target_scale = (train.task == Task::Regression).then(|| target_stats(&train.targets));
    for part in [Some(&mut train), Some(&mut test), val.as_mut()].into_iter().flatten() {
        part.standardize(&feature_stats);
        if let Some(scale) = target_scale {
            part.standardize_target(scale);
        }
    }
    PreparedTable {
        train,
        val,
        test,
        feature_stats,
        target_scale,
    }
}

/// (μ, σ) of `targets` (σ = 1 when they are constant).
pub fn target_stats(targets: &[f32]) -> (f64, f64) {
    let n = targets.len().max(1) as f64;
    let mean = targets.iter().map(|&t| t as f64).sum::<f64>() / n;
    let var = targets.iter().map(|&t| (t as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, scale_of(var.sqrt()))
}

impl TabularDataset {
    /// (t − μ) / σ for every regression target, with (μ, σ) from elsewhere (the training rows).
    pub fn standardize_target(&mut self, (mean, std): (f64, f64)) {
        for t in self.targets.iter_mut() {
            *t = ((*t as f64 - mean) / std) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::parse_csv;

    fn table(task: Task) -> TabularDataset {
        let text = "a,b,y\n1,10,2\n2,10,4\n3,10,6\n4,10,8\n5,10,10\n6,10,12\n7,10,14\n8,10,16\n9,10,18\n10,10,20\n";
        parse_csv(text.as_bytes(), "t.csv", "y", task).unwrap()
    }

    #[test]
    fn training_statistics_standardise_every_part() {
        let (train, test) = table(Task::Regression).split(TEST_FRACTION, 3);
        let raw_test = test.clone();
        let p = prepare(train.clone(), test, 0.25, 3);
        let val = p.val.as_ref().unwrap();
        assert_eq!(p.train.labels.len() + val.labels.len(), train.labels.len());
        // μ, σ of column a over the kept training rows, computed here from their raw values.
        let (kept, _) = crate::holdout_split(train.labels.len(), 0.25, 3);
        let a: Vec<f64> = kept.iter().map(|&i| train.row(i)[0] as f64).collect();
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        let std = (a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        assert!((p.feature_stats[0].0 - mean).abs() < 1e-12 && (p.feature_stats[0].1 - std).abs() < 1e-12);
        // The constant column b keeps σ = 1 rather than dividing by 0.
        assert_eq!(p.feature_stats[1], (10.0, 1.0));
        let expect = ((raw_test.row(0)[0] as f64 - mean) / std) as f32;
        assert_eq!(p.test.row(0)[0], expect);
        // y = 2a, so the standardised target equals the standardised feature a.
        let (tm, ts) = p.target_scale.unwrap();
        assert!((tm - 2.0 * mean).abs() < 1e-9 && (ts - 2.0 * std).abs() < 1e-9);
        for part in [&p.train, val, &p.test] {
            for i in 0..part.labels.len() {
                assert!((part.targets[i] - part.row(i)[0]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn classification_has_no_target_scale_and_no_validation_without_a_fraction() {
        let (train, test) = table(Task::Classification).split(TEST_FRACTION, 1);
        let p = prepare(train, test, 0.0, 1);
        assert!(p.val.is_none() && p.target_scale.is_none());
        assert_eq!(p.train.labels.len(), 8);
    }

    #[test]
    fn a_table_too_small_to_split_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.csv");
        std::fs::write(&path, "x,y\n1,0\n2,1\n").unwrap();
        let opts = SplitOptions {
            seed: 0,
            train_subset: 0,
            test_subset: 0,
        };
        let err = read_split(&path, "y", Task::Classification, opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tiny.csv") && err.contains("at least 5 rows"), "{err}");
    }
}
