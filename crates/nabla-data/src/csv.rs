//! Numeric tables in CSV (RFC 4180: comma-separated, optional double quotes, a header line
//! naming the columns), one sample per row.
//!
//! One column, named by the caller, is the target; every other column is a feature and must
//! hold finite numbers (anything Rust's `f32` parser takes but `NaN` and `inf`: one of them
//! would make its column's mean, and so every standardised row, NaN). The target is
//! either a class — its distinct values become the classes, sorted numerically when they are
//! all numbers and as strings otherwise, a class's index being its place in that order — or a
//! real number for regression. Errors name the file, the line and the column.

use std::io::Read;
use std::path::Path;

use crate::dataset::Dataset;
use nabla_core::{Error, Result};

/// What the target column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Class labels, mapped to indices.
    Classification,
    /// A real number per row.
    Regression,
}

/// A table in memory: features `[N, F]` (f32, as written in the file, not scaled) and the target.
#[derive(Debug, Clone)]
pub struct TabularDataset {
    /// Row-major `[N, F]`.
    pub features: Vec<f32>,
    pub feature_names: Vec<String>,
    pub target_name: String,
    pub task: Task,
    /// Class indices (classification); all 0 for regression.
    pub labels: Vec<i64>,
    /// Regression targets; empty for classification.
    pub targets: Vec<f32>,
    /// Class names, index = label (classification); empty for regression.
    pub classes: Vec<String>,
}

fn file_err(origin: &str, msg: impl Into<String>) -> Error {
    Error::File {
        path: origin.to_string(),
        msg: msg.into(),
    }
}

fn number(cell: &str, origin: &str, line: u64, column: &str) -> Result<f32> {
    if cell.is_empty() {
        return Err(file_err(origin, format!("line {line}, column '{column}': empty cell")));
    }
    let v = cell.parse::<f32>().map_err(|_| {
        file_err(
            origin,
            format!("line {line}, column '{column}': '{cell}' is not a number"),
        )
    })?;
    if !v.is_finite() {
        return Err(file_err(
            origin,
            format!("line {line}, column '{column}': '{cell}' is not a finite number"),
        ));
    }
    Ok(v)
}

/// The distinct values, sorted numerically if all are numbers, else as strings.
fn sorted_classes(values: &[String]) -> Vec<String> {
    let mut classes: Vec<String> = values.to_vec();
    classes.sort();
    classes.dedup();
    let nums: Option<Vec<f64>> = classes.iter().map(|c| c.parse::<f64>().ok()).collect();
    if let Some(nums) = nums {
        let mut pairs: Vec<(f64, String)> = nums.into_iter().zip(classes).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        classes = pairs.into_iter().map(|p| p.1).collect();
    }
    classes
}

/// Parses CSV text (header first); `origin` names it in errors.
pub fn parse_csv(reader: impl Read, origin: &str, target: &str, task: Task) -> Result<TabularDataset> {
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let csv_err = |e: ::csv::Error| {
        let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
        let msg = match e.kind() {
            ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("{len} fields, but the header has {expected_len}")
            }
            _ => e.to_string(),
        };
        file_err(origin, format!("{line}{msg}"))
    };
    let header: Vec<String> = rdr.headers().map_err(csv_err)?.iter().map(String::from).collect();
    if header.is_empty() || header.iter().all(|h| h.is_empty()) {
        return Err(file_err(
            origin,
            "empty file: expected a header line naming the columns",
        ));
    }
    let t = header
        .iter()
        .position(|h| h == target)
        .ok_or_else(|| file_err(origin, format!("no column '{target}' (columns: {})", header.join(", "))))?;
    let feature_names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != t)
        .map(|p| p.1.clone())
        .collect();
    let mut features = Vec::new();
    let mut raw_targets = Vec::new();
    let mut targets = Vec::new();
    let mut record = ::csv::StringRecord::new();
    while rdr.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, |p| p.line());
        for (i, cell) in record.iter().enumerate() {
            if i == t {
                match task {
                    Task::Classification => {
                        if cell.is_empty() {
                            return Err(file_err(origin, format!("line {line}, column '{target}': empty cell")));
                        }
                        raw_targets.push(cell.to_string());
                    }
                    Task::Regression => targets.push(number(cell, origin, line, target)?),
                }
            } else {
                features.push(number(cell, origin, line, &header[i])?);
            }
        }
    }
    let rows = raw_targets.len().max(targets.len());
    if rows == 0 {
        return Err(file_err(origin, "no data rows after the header"));
    }
    let (labels, classes) = match task {
        Task::Classification => {
            let classes = sorted_classes(&raw_targets);
            // By exact text: a binary search in an order that mixes numbers and words found
            // nothing and put such values into class 0.
            let index: std::collections::HashMap<&str, i64> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as i64))
                .collect();
            let labels = raw_targets.iter().map(|v| index[v.as_str()]).collect();
            (labels, classes)
        }
        Task::Regression => (vec![0; rows], Vec::new()),
    };
    Ok(TabularDataset {
        features,
        feature_names,
        target_name: target.to_string(),
        task,
        labels,
        targets,
        classes,
    })
}

/// The columns `names` of every row of CSV text (header first), as row-major `[N, names.len()]`
/// finite numbers; other columns (a target, an id) are ignored. For predicting on new rows.
pub fn read_columns(reader: impl Read, origin: &str, names: &[String]) -> Result<(Vec<f32>, usize)> {
    let mut rdr = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(::csv::Trim::All)
        .from_reader(reader);
    let err = |e: ::csv::Error| {
        let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
        file_err(origin, format!("{line}{e}"))
    };
    let header: Vec<String> = rdr.headers().map_err(err)?.iter().map(String::from).collect();
    let index: Vec<usize> = names
        .iter()
        .map(|n| {
            header.iter().position(|h| h == n).ok_or_else(|| {
                file_err(
                    origin,
                    format!("no column '{n}' (the model reads {})", names.join(", ")),
                )
            })
        })
        .collect::<Result<_>>()?;
    let (mut values, mut rows) = (Vec::new(), 0);
    let mut record = ::csv::StringRecord::new();
    while rdr.read_record(&mut record).map_err(err)? {
        let line = record.position().map_or(0, |p| p.line());
        for (&j, name) in index.iter().zip(names) {
            values.push(number(record.get(j).unwrap_or(""), origin, line, name)?);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(file_err(origin, "no data rows after the header"));
    }
    Ok((values, rows))
}

/// A standard deviation as a divisor: 1 where it is 0 (a constant column).
pub fn scale_of(std: f64) -> f64 {
    if std > 0.0 && std.is_finite() { std } else { 1.0 }
}

/// Reads a CSV file; see the module docs.
pub fn read_csv(path: &Path, target: &str, task: Task) -> Result<TabularDataset> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| file_err(&origin, e.to_string()))?;
    parse_csv(std::io::BufReader::new(file), &origin, target, task)
}

impl TabularDataset {
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// The features of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        let f = self.num_features();
        &self.features[i * f..(i + 1) * f]
    }

    /// The regression targets, one per row (`None` for classification).
    pub fn targets(&self) -> Option<&[f32]> {
        (self.task == Task::Regression).then_some(&self.targets[..])
    }

    /// The same rows with the feature columns `names`, in that order (a model's input order):
    /// a column the table lacks is an error naming it; other columns are dropped.
    pub fn with_features(&self, names: &[String], origin: &str) -> Result<Self> {
        let index: Vec<usize> = names
            .iter()
            .map(|n| {
                self.feature_names.iter().position(|f| f == n).ok_or_else(|| {
                    file_err(
                        origin,
                        format!("no feature column '{n}' (the model reads {})", names.join(", ")),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let f = self.num_features();
        let features = (0..self.labels.len())
            .flat_map(|r| index.iter().map(move |&j| self.features[r * f + j]))
            .collect();
        Ok(TabularDataset {
            features,
            feature_names: names.to_vec(),
            labels: self.labels.clone(),
            targets: self.targets.clone(),
            ..self.clone_meta()
        })
    }

    /// The same rows labelled with the indices of `classes` (a model's classes), by name: a
    /// class the model does not know is an error naming it.
    pub fn relabel(&self, classes: &[String], origin: &str) -> Result<Self> {
        let map: Vec<i64> = self
            .classes
            .iter()
            .map(|c| {
                classes.iter().position(|k| k == c).map(|i| i as i64).ok_or_else(|| {
                    file_err(
                        origin,
                        format!("class '{c}' is not one of the model's classes {classes:?}"),
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(TabularDataset {
            labels: self.labels.iter().map(|&l| map[l as usize]).collect(),
            features: self.features.clone(),
            targets: self.targets.clone(),
            classes: classes.to_vec(),
            ..self.clone_meta()
        })
    }

    /// The first `n` rows (or all if fewer).
    pub fn take(mut self, n: usize) -> Self {
        let n = n.min(self.labels.len());
        self.features.truncate(n * self.num_features());
        self.labels.truncate(n);
        self.targets.truncate(n);
        self
    }

    /// The rows at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Self {
        let f = self.num_features();
        TabularDataset {
            features: rows
                .iter()
                .flat_map(|&i| self.features[i * f..(i + 1) * f].iter().copied())
                .collect(),
            labels: rows.iter().map(|&i| self.labels[i]).collect(),
            targets: if self.targets.is_empty() {
                Vec::new()
            } else {
                rows.iter().map(|&i| self.targets[i]).collect()
            },
            ..self.clone_meta()
        }
    }

    fn clone_meta(&self) -> Self {
        TabularDataset {
            features: Vec::new(),
            feature_names: self.feature_names.clone(),
            target_name: self.target_name.clone(),
            task: self.task,
            labels: Vec::new(),
            targets: Vec::new(),
            classes: self.classes.clone(),
        }
    }

    /// A seeded random split into (train, test) with `test_fraction` of the rows in test.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Self, Self) {
        let n = self.labels.len();
        let mut order: Vec<usize> = (0..n).collect();
        nabla_core::Generator::seed_from_u64(seed).shuffle(&mut order);
        let n_test = ((n as f64) * test_fraction).round() as usize;
        (self.select(&order[n_test..]), self.select(&order[..n_test]))
    }

    /// (x − mean) / std per feature, with statistics computed elsewhere (the training rows).
    pub fn standardize(&mut self, stats: &[(f64, f64)]) {
        let f = self.num_features();
        for row in self.features.chunks_mut(f.max(1)) {
            for (v, (m, s)) in row.iter_mut().zip(stats) {
                *v = ((*v as f64 - m) / s) as f32;
            }
        }
    }

    /// Mean and scale of each feature column (for [`standardize`](Self::standardize)): the
    /// standard deviation, or 1 for a column constant in these rows, as scikit-learn's
    /// `StandardScaler` does. (Dividing by a floor of 1e-12 instead turned a test row that
    /// differs from the constant into values near 10¹², and the test loss into 7·10⁷.)
    pub fn feature_stats(&self) -> Vec<(f64, f64)> {
        let f = self.num_features();
        let n = self.labels.len().max(1) as f64;
        (0..f)
            .map(|j| {
                let column = || self.features[j..].iter().step_by(f).map(|&v| v as f64);
                // Two passes: a constant column gets a variance of exactly 0.
                let mean = column().sum::<f64>() / n;
                let var = column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                (mean, scale_of(var.sqrt()))
            })
            .collect()
    }
}

impl Dataset for TabularDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_shape(&self) -> Vec<usize> {
        vec![self.num_features()]
    }
    fn get(&self, i: usize) -> (Vec<f32>, i64) {
        (self.row(i).to_vec(), self.labels[i])
    }
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn target(&self, i: usize) -> Option<f32> {
        self.targets().map(|t| t[i])
    }
}
