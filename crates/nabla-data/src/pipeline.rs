//! The transforms a run applies to images, fitted once on its training images: conversion to
//! the model's input (channels, size), the random crops and flips of data augmentation in
//! training, and normalisation x ← (x − μ_c) / σ_c with the training images' channel
//! statistics, the same for training, validation, test and later predictions.

use crate::dataset::ImageDataset;
use crate::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform, fit_input};
use std::sync::Arc;

/// The padding of random crops during training, and of the shifted crops of test-time
/// augmentation: 2 pixels for images up to 28×28, 4 for larger ones (CIFAR's 32×32).
pub fn crop_padding(height: usize) -> usize {
    if height <= 28 { 2 } else { 4 }
}

/// (x − mean) / std per channel with the statistics of `train`'s images (std at least 1e-6),
/// for a model input of `channels` channels: repeated when grey images are turned into RGB,
/// averaged when RGB becomes grey.
pub fn normalization(train: &ImageDataset, channels: usize) -> Normalize {
    let stats = train.channel_stats();
    let mean: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
    let std: Vec<f32> = stats.iter().map(|s| s.1.max(1e-6) as f32).collect();
    if train.shape[0] == channels {
        return Normalize { mean, std };
    }
    let avg = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    Normalize {
        mean: vec![avg(&mean); channels],
        std: vec![avg(&std); channels],
    }
}

/// What is done to every image on its way into the model.
#[derive(Debug, Clone)]
pub struct ImagePipeline {
    /// The model's input `[C, H, W]`.
    pub input: [usize; 3],
    pub normalize: Normalize,
    /// Random crops (edge replicated, [`crop_padding`]) and, for colour images, horizontal
    /// flips during training.
    pub augment: bool,
}

impl ImagePipeline {
    /// Fitted on `train`: the model's input is `input`, or the images' own shape.
    pub fn fit(train: &ImageDataset, input: Option<[usize; 3]>, augment: bool) -> ImagePipeline {
        let input = input.unwrap_or(train.shape);
        ImagePipeline {
            input,
            normalize: normalization(train, input[0]),
            augment,
        }
    }

    /// For training images of `shape`: fitted to the input, augmented, normalised.
    pub fn training(&self, shape: [usize; 3]) -> Arc<dyn Transform> {
        let mut steps = fit_input(shape, self.input);
        if self.augment {
            let [c, h, w] = self.input;
            steps.push(Box::new(RandomCrop {
                size: [h, w],
                padding: crop_padding(h),
                mode: nabla_core::PaddingMode::Replicate,
            }));
            if c == 3 {
                // Natural images (CIFAR, photo folders) may be mirrored; digits and clothes
                // stay as they are.
                steps.push(Box::new(RandomHorizontalFlip(0.5)));
            }
        }
        steps.push(Box::new(self.normalize.clone()));
        Arc::new(Compose(steps))
    }

    /// For images of `shape` that are evaluated: fitted to the input and normalised.
    pub fn evaluation(&self, shape: [usize; 3]) -> Arc<dyn Transform> {
        let mut steps = fit_input(shape, self.input);
        steps.push(Box::new(self.normalize.clone()));
        Arc::new(Compose(steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::Sample;

    fn images() -> ImageDataset {
        // Two 1×1×2 grey images: pixels 0, 255 and 255, 255 → mean 191.25/255, std by hand.
        ImageDataset::new(
            vec![0, 255, 255, 255],
            [1, 1, 2],
            vec![0, 1],
            vec!["a".into(), "b".into()],
        )
        .unwrap()
    }

    #[test]
    fn normalisation_uses_the_training_channel_statistics() {
        let n = normalization(&images(), 1);
        let mean = 0.75f64;
        let std = ((0.75f64 * 0.75 + 3.0 * 0.25 * 0.25) / 4.0).sqrt();
        assert!((n.mean[0] as f64 - mean).abs() < 1e-6 && (n.std[0] as f64 - std).abs() < 1e-6);
        // Grey statistics repeated for an RGB input.
        let rgb = normalization(&images(), 3);
        assert_eq!(rgb.mean, vec![n.mean[0]; 3]);
    }

    #[test]
    fn evaluation_normalises_and_fits_the_input() {
        let p = ImagePipeline::fit(&images(), Some([3, 1, 2]), false);
        let s = Sample {
            data: vec![0.0, 1.0],
            shape: [1, 1, 2],
        };
        let out = p
            .evaluation([1, 1, 2])
            .apply(s, &mut nabla_core::Generator::seed_from_u64(0));
        assert_eq!(out.shape, [3, 1, 2]);
        let z = (0.0 - p.normalize.mean[0]) / p.normalize.std[0];
        assert!((out.data[0] - z).abs() < 1e-6 && (out.data[4] - z).abs() < 1e-6);
    }
}
