//! Ensembles and test-time augmentation: the evaluation of several models (or one) on an
//! image test set, each image normalised as each model's training normalised it.
//!
//! An ensemble averages the models' softmax outputs with weights w_m (Σ w_m = 1):
//! p(y | x) = Σ_m w_m · p_m(y | x). Test-time augmentation averages each model's softmax over
//! the crops of one image first (torchvision's FiveCrop/TenCrop, GoogLeNet's multi-scale crops;
//! see [`nabla_data::tta`]). The loss is −log p(true class | x), the cross-entropy for one model
//! without augmentation.

use crate::checkpoint::Checkpoint;
use crate::metrics::Evaluation;
use nabla_core::{Error, NoGradGuard, PaddingMode, Result};
use nabla_data::pipeline::crop_padding;
use nabla_data::transforms::{Normalize, Sample, pad, resize_bilinear, shorter_side_to};
use nabla_data::tta::{self, TtaMode};
use nabla_data::{Dataset, ImageDataset};
use nabla_nn::Module;

/// One model of an ensemble.
pub struct Member {
    /// Where it came from (a checkpoint's or a state dict's path), for messages.
    pub name: String,
    /// Weights from elsewhere (a state dict): how they were trained is unknown, and taken to
    /// be torchvision's way (random resized crops and flips).
    pub foreign: bool,
    pub model: Box<dyn Module>,
    /// Its checkpoint (or one describing a state dict): classes, input, training settings.
    pub ck: Checkpoint,
    /// The normalisation of its training.
    pub normalize: Normalize,
    /// Its share of the averaged probabilities.
    pub weight: f64,
}

fn bad(msg: String) -> Error {
    Error::Argument { op: "eval", msg }
}

/// `[C, H, W]` as `C×H×W`.
fn shape(s: [usize; 3]) -> String {
    format!("{}×{}×{}", s[0], s[1], s[2])
}

/// The weights of `n` members: equal without `given`, else `given` scaled to sum to 1 (one per
/// member, non-negative, with a positive sum).
pub fn member_weights(n: usize, given: Option<&[f64]>) -> Result<Vec<f64>> {
    match given {
        None => Ok(vec![1.0 / n as f64; n]),
        Some(w) if w.len() != n => Err(bad(format!("{} weights for {n} checkpoints", w.len()))),
        Some(w) if w.iter().any(|v| !v.is_finite() || *v < 0.0) || w.iter().sum::<f64>() <= 0.0 => {
            Err(bad("weights must be non-negative numbers with a positive sum".into()))
        }
        Some(w) => Ok(w.iter().map(|v| v / w.iter().sum::<f64>()).collect()),
    }
}

/// An error unless every member was trained on the same data (dataset, input shape, classes):
/// averaging probabilities over different class lists would mean nothing.
pub fn check_same_data(members: &[Member]) -> Result<()> {
    let Some(first) = members.first() else {
        return Err(bad("an ensemble needs at least one model".into()));
    };
    for m in &members[1..] {
        let (a, b) = (&first.ck.meta, &m.ck.meta);
        if a.classes != b.classes || a.input != b.input || a.config.dataset != b.config.dataset {
            return Err(bad(format!(
                "{} and {} were trained on different data ({} {}, {} classes vs {} {}, {} classes)",
                first.name,
                m.name,
                a.config.dataset,
                shape(a.input),
                a.classes.len(),
                b.config.dataset,
                shape(b.input),
                b.classes.len()
            )));
        }
    }
    Ok(())
}

/// The image test-time crops are cut from, made from an image the size of the model's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropSource {
    /// The image itself (the centre crop, and GoogLeNet's crops, which rescale themselves).
    AsIs,
    /// Padded by this many pixels on every side (replicating the edge), as `--augment`'s random
    /// crops pad it: the five crops are the extreme shifts training drew from.
    Padded(usize),
    /// Resized so its shorter side has this many pixels, torchvision's evaluation protocol
    /// (`Resize(256)` before `TenCrop(224)`), for weights trained elsewhere.
    Resized(usize),
}

impl CropSource {
    /// Where `mode`'s crops are cut from for `members` of input `input`.
    pub fn for_mode(mode: TtaMode, members: &[Member], input: [usize; 3]) -> CropSource {
        match mode {
            TtaMode::Center | TtaMode::MultiScale => CropSource::AsIs,
            TtaMode::FiveCrop | TtaMode::TenCrop if members.iter().all(|m| m.foreign) => {
                CropSource::Resized(tta::resize_before_crop(input[1].min(input[2])))
            }
            TtaMode::FiveCrop | TtaMode::TenCrop => CropSource::Padded(crop_padding(input[1])),
        }
    }

    pub fn apply(self, s: Sample) -> Sample {
        match self {
            CropSource::AsIs => s,
            CropSource::Padded(p) => pad(&s, p, PaddingMode::Replicate),
            CropSource::Resized(side) => {
                let [h, w] = shorter_side_to(s.shape[1], s.shape[2], side);
                resize_bilinear(&s, h, w)
            }
        }
    }
}

/// Why test-time augmentation `mode` shows a model inputs unlike those of its training, if it
/// does: shifted crops need training with random crops (`--augment`), mirrored crops training
/// with flips (`--augment` on colour images), rescaled crops training that rescales (nabla's
/// training never does).
pub fn tta_mismatch(mode: TtaMode, members: &[Member]) -> Option<String> {
    if mode == TtaMode::Center {
        return None;
    }
    members.iter().filter(|m| !m.foreign).find_map(|m| {
        let (name, config) = (&m.name, &m.ck.meta.config);
        let flips = config.augment && m.ck.meta.input[0] == 3;
        if mode == TtaMode::MultiScale {
            Some(format!(
                "{name} was trained at one scale: the rescaled crops of {} are inputs it never saw",
                mode.name()
            ))
        } else if !config.augment {
            Some(format!(
                "{name} was trained without --augment: the shifted crops of {} are inputs it never saw",
                mode.name()
            ))
        } else if mode == TtaMode::TenCrop && !flips {
            Some(format!(
                "{name} was trained without horizontal flips (--augment flips colour images only): the mirrored crops of {} are inputs it never saw",
                mode.name()
            ))
        } else {
            None
        }
    })
}

/// The images on which test-time augmentation is compared with the centre crop: the
/// validation images every member held out of its training (`--val-split`, same seed), and
/// what they are; `None` when the members share no such hold-out.
pub fn comparison_set(
    members: &[Member],
    data_dir: Option<&std::path::Path>,
) -> Result<Option<(ImageDataset, String)>> {
    let config = &members[0].ck.meta.config;
    let same_holdout = members.iter().all(|m| {
        let c = &m.ck.meta.config;
        !m.foreign
            && c.val_split > 0.0
            && (c.dataset.as_str(), c.val_split, c.seed, c.train_subset, c.input)
                == (
                    config.dataset.as_str(),
                    config.val_split,
                    config.seed,
                    config.train_subset,
                    config.input,
                )
    });
    if !same_holdout {
        return Ok(None);
    }
    let all = crate::data::training_set(config, data_dir)?;
    let (_, held) = nabla_data::holdout_split(all.labels.len(), config.val_split, config.seed);
    let n = held.len();
    Ok(Some((
        all.select(&held),
        format!("the {n} validation images held out in training"),
    )))
}

/// The ensemble's top-1, top-5, loss and confusion on `test` with test-time augmentation
/// `mode`, `batch_size` crops per forward pass, on `device`.
pub fn evaluate(
    members: &[Member],
    test: &ImageDataset,
    mode: TtaMode,
    batch_size: usize,
    device: nabla_core::Device,
) -> Result<Evaluation> {
    let meta = &members[0].ck.meta;
    let (classes, input) = (meta.classes.len(), meta.input);
    let source = CropSource::for_mode(mode, members, input);
    let mut eval = Evaluation::new(classes);
    let per_batch = (batch_size / mode.crops_per_image()).max(1);
    let _guard = NoGradGuard::new();
    let indices: Vec<usize> = (0..test.len()).collect();
    // Images of another size or colour mode than the model's input are converted as in training.
    let fit = nabla_data::transforms::fit_input(test.shape, input);
    let mut rng = nabla_core::Generator::seed_from_u64(0);
    for chunk in indices.chunks(per_batch) {
        let mut labels = Vec::with_capacity(chunk.len());
        let images: Vec<Sample> = chunk
            .iter()
            .map(|&i| {
                let (data, y) = test.get(i);
                labels.push(y);
                let s = Sample {
                    data,
                    shape: test.shape,
                };
                source.apply(fit.iter().fold(s, |s, t| t.apply(s, &mut rng)))
            })
            .collect();
        let mut probs = vec![0.0; chunk.len() * classes];
        for m in members {
            let p = tta::predict(
                |x| m.model.forward(&x.to_device(device)?),
                &images,
                mode,
                [input[1], input[2]],
                Some(&m.normalize),
            )?;
            probs.iter_mut().zip(p).for_each(|(a, b)| *a += m.weight * b);
        }
        let loss: f64 = labels
            .iter()
            .enumerate()
            .map(|(r, &y)| -probs[r * classes + y as usize].max(1e-12).ln())
            .sum();
        let as_f32: Vec<f32> = probs.iter().map(|&v| v as f32).collect();
        eval.add(&as_f32, &labels, loss);
    }
    Ok(eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_equal_or_scaled_to_one() {
        assert_eq!(member_weights(4, None).unwrap(), vec![0.25; 4]);
        assert_eq!(member_weights(2, Some(&[1.0, 3.0])).unwrap(), vec![0.25, 0.75]);
        for bad in [&[1.0][..], &[-1.0, 2.0], &[0.0, 0.0], &[f64::NAN, 1.0]] {
            assert!(member_weights(2, Some(bad)).is_err(), "{bad:?}");
        }
    }
}
