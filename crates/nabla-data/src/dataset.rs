//! Datasets: anything that can hand out (sample, label) pairs by index.

use nabla_core::{Error, Result};

/// An indexed collection of samples with integer class labels (and, for regression tables, a
/// real target).
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The shape of one sample: `[C, H, W]` for images (e.g. `[1, 28, 28]`), `[features]` for
    /// tables.
    fn sample_shape(&self) -> Vec<usize>;
    /// Sample `i` as f32 values (row-major `sample_shape`) and its label. Images give pixel
    /// values scaled to [0, 1]; tables give their numbers as written. A regression dataset
    /// has no classes and gives label 0 (its target is [`Dataset::target`]).
    fn get(&self, i: usize) -> (Vec<f32>, i64);
    /// Class names, index = label (empty for regression).
    fn classes(&self) -> Vec<String>;
    /// The regression target of sample `i`, for datasets that have one.
    fn target(&self, _i: usize) -> Option<f32> {
        None
    }
}

/// Images held in memory as bytes `[N, C, H, W]` (0–255) with their labels.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    pub pixels: Vec<u8>,
    pub shape: [usize; 3],
    pub labels: Vec<i64>,
    pub classes: Vec<String>,
}

impl ImageDataset {
    pub fn new(pixels: Vec<u8>, shape: [usize; 3], labels: Vec<i64>, classes: Vec<String>) -> Result<Self> {
        if shape.contains(&0) {
            return Err(Error::Argument {
                op: "ImageDataset",
                msg: format!("image shape {shape:?} has a zero size"),
            });
        }
        if labels.is_empty() {
            return Err(Error::Argument {
                op: "ImageDataset",
                msg: "no images".into(),
            });
        }
        let per = shape.iter().product::<usize>();
        if Some(pixels.len()) != per.checked_mul(labels.len()) {
            return Err(Error::Argument {
                op: "ImageDataset",
                msg: format!(
                    "{} pixel bytes do not make {} images of shape {shape:?}",
                    pixels.len(),
                    labels.len()
                ),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l < 0 || l as usize >= classes.len()) {
            return Err(Error::Argument {
                op: "ImageDataset",
                msg: format!("label {bad} is outside the {} classes", classes.len()),
            });
        }
        Ok(ImageDataset {
            pixels,
            shape,
            labels,
            classes,
        })
    }

    /// The samples at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Self {
        let per = self.shape.iter().product::<usize>();
        ImageDataset {
            pixels: rows
                .iter()
                .flat_map(|&i| self.pixels[i * per..(i + 1) * per].iter().copied())
                .collect(),
            shape: self.shape,
            labels: rows.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        }
    }

    /// The first `n` samples (or all if fewer): quick runs and tests.
    pub fn take(mut self, n: usize) -> Self {
        let n = n.min(self.labels.len());
        self.pixels.truncate(n * self.shape.iter().product::<usize>());
        self.labels.truncate(n);
        self
    }

    /// Per-channel mean and standard deviation of the pixel values scaled to [0, 1].
    pub fn channel_stats(&self) -> Vec<(f64, f64)> {
        let [c, h, w] = self.shape;
        let hw = h * w;
        (0..c)
            .map(|ch| {
                let (mut s, mut s2, mut n) = (0.0, 0.0, 0usize);
                for img in self.pixels.chunks_exact(c * hw) {
                    for &p in &img[ch * hw..(ch + 1) * hw] {
                        let v = p as f64 / 255.0;
                        s += v;
                        s2 += v * v;
                        n += 1;
                    }
                }
                let mean = s / n.max(1) as f64;
                (mean, (s2 / n.max(1) as f64 - mean * mean).max(0.0).sqrt())
            })
            .collect()
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_shape(&self) -> Vec<usize> {
        self.shape.to_vec()
    }
    fn get(&self, i: usize) -> (Vec<f32>, i64) {
        let per = self.shape.iter().product::<usize>();
        let px = &self.pixels[i * per..(i + 1) * per];
        (px.iter().map(|&p| p as f32 / 255.0).collect(), self.labels[i])
    }
    fn classes(&self) -> Vec<String> {
        self.classes.clone()
    }
}
