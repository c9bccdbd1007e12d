//! Test-time augmentation: classify several crops of each test image and average the softmax
//! outputs. Centre crop; AlexNet's 5 and 10 crops (Krizhevsky et al., 2012: the four corners
//! and the centre, and their mirror images); GoogLeNet's 144 multi-scale crops (Szegedy et al.,
//! 2014, §7: 4 scales × 3 squares × 6 crops × 2 mirrors).

use std::str::FromStr;

use crate::transforms::{Sample, Transform, center_crop, crop, hflip, resize_bilinear, shorter_side_to};
use nabla_core::{Error, Generator, Result, Tensor};

/// Which crops to classify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtaMode {
    /// The central window only.
    Center,
    /// The four corners and the centre.
    FiveCrop,
    /// The five crops and their mirror images.
    TenCrop,
    /// GoogLeNet's 144 crops at four scales.
    MultiScale,
}

impl TtaMode {
    /// How many crops one image gives.
    pub fn crops_per_image(self) -> usize {
        match self {
            TtaMode::Center => 1,
            TtaMode::FiveCrop => 5,
            TtaMode::TenCrop => 10,
            TtaMode::MultiScale => 144,
        }
    }

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            TtaMode::Center => "center",
            TtaMode::FiveCrop => "5crop",
            TtaMode::TenCrop => "10crop",
            TtaMode::MultiScale => "multiscale",
        }
    }
}

impl FromStr for TtaMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_lowercase().as_str() {
            "center" | "centre" => Ok(TtaMode::Center),
            "5crop" | "five" | "5" => Ok(TtaMode::FiveCrop),
            "10crop" | "ten" | "10" => Ok(TtaMode::TenCrop),
            "multiscale" | "googlenet" | "144crop" => Ok(TtaMode::MultiScale),
            _ => Err(format!(
                "unknown test-time augmentation '{s}' (center, 5crop, 10crop, multiscale)"
            )),
        }
    }
}

/// Top-left, top-right, bottom-left, bottom-right and centre windows of `size` (torchvision's
/// `five_crop` order). The image must be at least `size`.
pub fn five_crop(s: &Sample, size: [usize; 2]) -> Vec<Sample> {
    let [_, h, w] = s.shape;
    let [ch, cw] = size;
    let (b, r) = (h.saturating_sub(ch), w.saturating_sub(cw));
    vec![
        crop(s, 0, 0, ch, cw),
        crop(s, 0, r, ch, cw),
        crop(s, b, 0, ch, cw),
        crop(s, b, r, ch, cw),
        center_crop(s, size),
    ]
}

/// torchvision's `ten_crop`: the five crops of the image, then the five crops of its mirror
/// image (the sixth is the mirrored top-right corner, not the mirrored top-left one).
pub fn ten_crop(s: &Sample, size: [usize; 2]) -> Vec<Sample> {
    let mut out = five_crop(s, size);
    out.extend(five_crop(&hflip(s), size));
    out
}

/// The shorter side torchvision's evaluation protocol resizes to before cropping `crop`
/// pixels: 256 for 224 (`Resize(256)` then `CenterCrop(224)`/`TenCrop(224)`), in proportion
/// otherwise (32 for 28).
pub fn resize_before_crop(crop: usize) -> usize {
    ((crop * 256) as f64 / 224.0).round() as usize
}

/// GoogLeNet's scales for a `crop`-pixel input: shorter sides 256, 288, 320 and 352 for 224,
/// scaled in proportion otherwise (rounded).
pub fn googlenet_scales(crop: usize) -> Vec<usize> {
    [256, 288, 320, 352]
        .iter()
        .map(|&s| ((s * crop) as f64 / 224.0).round() as usize)
        .collect()
}

/// For each scale: the image resized so its shorter side is the scale; the left, centre and
/// right squares (top, centre and bottom for portrait images); from each square the four
/// corner and the centre `crop`×`crop` windows and the square itself resized to `crop`; then
/// those six mirrored. `scales.len()` × 36 crops, ordered scale, square, crop, mirror block.
pub fn multi_scale_crops(s: &Sample, crop_size: usize, scales: &[usize]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(scales.len() * 36);
    for &scale in scales {
        let [h, w] = shorter_side_to(s.shape[1], s.shape[2], scale);
        let img = resize_bilinear(s, h, w);
        let side = h.min(w);
        let (long, portrait) = (h.max(w), h > w);
        for start in [0, (long - side) / 2, long - side] {
            let (top, left) = if portrait { (start, 0) } else { (0, start) };
            let square = crop(&img, top, left, side, side);
            let mut six = five_crop(&square, [crop_size, crop_size]);
            six.push(resize_bilinear(&square, crop_size, crop_size));
            let mirrors: Vec<Sample> = six.iter().map(hflip).collect();
            out.extend(six);
            out.extend(mirrors);
        }
    }
    out
}

/// The 144 crops of GoogLeNet for a `crop`-pixel input.
pub fn googlenet_crops(s: &Sample, crop_size: usize) -> Vec<Sample> {
    multi_scale_crops(s, crop_size, &googlenet_scales(crop_size))
}

/// The crops of `mode` of size `size` (multi-scale needs a square `size`).
pub fn crops(s: &Sample, mode: TtaMode, size: [usize; 2]) -> Result<Vec<Sample>> {
    let [h, w] = [s.shape[1], s.shape[2]];
    if mode != TtaMode::MultiScale && (h < size[0] || w < size[1]) {
        return Err(Error::Argument {
            op: "tta",
            msg: format!("a {h}×{w} image is smaller than the {}×{} crops", size[0], size[1]),
        });
    }
    Ok(match mode {
        TtaMode::Center => vec![center_crop(s, size)],
        TtaMode::FiveCrop => five_crop(s, size),
        TtaMode::TenCrop => ten_crop(s, size),
        TtaMode::MultiScale => {
            if size[0] != size[1] {
                return Err(Error::Argument {
                    op: "tta",
                    msg: format!("multi-scale crops are square; the model takes {}×{}", size[0], size[1]),
                });
            }
            googlenet_crops(s, size[0])
        }
    })
}

/// Row-wise softmax of `[N, classes]` logits, stable (max subtracted), in f64.
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(classes.max(1)) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
        let z: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| v / z));
    }
    out
}

/// Logits `[N·k, classes]` of k consecutive crops per image → the mean of their softmax
/// outputs, `[N, classes]`.
pub fn average_softmax(logits: &[f32], crops_per_image: usize, classes: usize) -> Vec<f64> {
    let p = softmax_rows(logits, classes);
    let k = crops_per_image.max(1);
    p.chunks_exact(k * classes.max(1))
        .flat_map(|group| (0..classes).map(move |c| (0..k).map(|j| group[j * classes + c]).sum::<f64>() / k as f64))
        .collect()
}

/// Classifies `images` with test-time augmentation: crops each, applies `per_crop` (the
/// normalisation of training) to every crop, runs `forward` once on all crops stacked
/// `[N·k, C, h, w]`, and returns the averaged softmax outputs `[N, classes]`.
pub fn predict(
    mut forward: impl FnMut(&Tensor) -> Result<Tensor>,
    images: &[Sample],
    mode: TtaMode,
    size: [usize; 2],
    per_crop: Option<&dyn Transform>,
) -> Result<Vec<f64>> {
    let mut data = Vec::new();
    let mut channels = 0;
    let mut rng = Generator::seed_from_u64(0);
    for img in images {
        for c in crops(img, mode, size)? {
            let c = match per_crop {
                Some(t) => t.apply(c, &mut rng),
                None => c,
            };
            channels = c.shape[0];
            data.extend_from_slice(&c.data);
        }
    }
    let k = mode.crops_per_image();
    let x = Tensor::from_vec(data, (images.len() * k, channels, size[0], size[1]))?;
    let logits = forward(&x)?;
    let classes = logits.dims().last().copied().unwrap_or(0);
    Ok(average_softmax(&logits.to_vec::<f32>()?, k, classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: [usize; 3]) -> Sample {
        Sample {
            data: (0..shape.iter().product::<usize>()).map(|v| v as f32).collect(),
            shape,
        }
    }

    #[test]
    fn five_and_ten_crops_by_hand() {
        // 3×3 image 0..9, 2×2 crops: corners start at 0, 1, 3, 4; the centre (offset ½ → 0,
        // ties to even) equals the top-left.
        let c = five_crop(&ramp([1, 3, 3]), [2, 2]);
        let firsts: Vec<f32> = c.iter().map(|s| s.data[0]).collect();
        assert_eq!(firsts, vec![0., 1., 3., 4., 0.]);
        assert_eq!(c[3].data, vec![4., 5., 7., 8.]);
        let t = ten_crop(&ramp([1, 3, 3]), [2, 2]);
        assert_eq!(t.len(), 10);
        // The mirror image is [2 1 0; 5 4 3; 8 7 6]: its top-left crop (the original's
        // top-right one mirrored) comes sixth, as in torchvision.
        assert_eq!(t[5].data, vec![2., 1., 5., 4.]);
        assert_eq!(t[6].data, vec![1., 0., 4., 3.]);
        assert_eq!(t[8].data, vec![4., 3., 7., 6.]);
        assert_eq!(resize_before_crop(224), 256);
        assert_eq!(resize_before_crop(28), 32);
        // On a 4×4 image the centre 2×2 crop starts at (1, 1).
        assert_eq!(five_crop(&ramp([1, 4, 4]), [2, 2])[4].data, vec![5., 6., 9., 10.]);
    }

    #[test]
    fn googlenet_144_crops() {
        assert_eq!(googlenet_scales(224), vec![256, 288, 320, 352]);
        assert_eq!(googlenet_scales(28), vec![32, 36, 40, 44]);
        // A 2×3 landscape image of v = 3y + x at scales [2]: shorter side stays 2, squares
        // at x = 0 (left), 0 (centre: ⌊(3−2)/2⌋) and 1 (right); crop 1.
        let c = multi_scale_crops(&ramp([1, 2, 3]), 1, &[2]);
        assert_eq!(c.len(), 36);
        let right: Vec<f32> = c[24..30].iter().map(|s| s.data[0]).collect();
        // Right square [[1,2],[4,5]]: corners 1, 2, 4, 5; centre (offset ½ → 0) 1; resized
        // to 1×1 (tap at 0.5, 0.5) 3.
        assert_eq!(right, vec![1., 2., 4., 5., 1., 3.]);
        assert_eq!(c[30..36].iter().map(|s| s.data[0]).collect::<Vec<_>>(), right); // 1×1 mirrors
        // Portrait images take top/centre/bottom squares; 144 crops of 224 from 256×300.
        let p = googlenet_crops(&ramp([3, 300, 256]), 224);
        assert_eq!(p.len(), TtaMode::MultiScale.crops_per_image());
        assert!(p.iter().all(|s| s.shape == [3, 224, 224]));
    }

    #[test]
    fn averaging_softmax_by_hand() {
        // Crop 1: logits (0, 0) → (½, ½); crop 2: (ln 3, 0) → (¾, ¼); mean (⅝, ⅜).
        let p = average_softmax(&[0.0, 0.0, 3f32.ln(), 0.0], 2, 2);
        assert!((p[0] - 0.625).abs() < 1e-7 && (p[1] - 0.375).abs() < 1e-7);
        // predict: a "model" that returns the mean pixel as logit of class 0 and 0 for class 1.
        let img = ramp([1, 3, 3]);
        let out = predict(
            |x: &Tensor| {
                let v = x.to_vec::<f32>()?;
                let n = x.dims()[0];
                let logits: Vec<f32> = v.chunks(4).flat_map(|c| [c.iter().sum::<f32>() / 4.0, 0.0]).collect();
                Tensor::from_vec(logits, (n, 2))
            },
            &[img.clone(), img],
            TtaMode::FiveCrop,
            [2, 2],
            None,
        )
        .unwrap();
        // Crop means 2, 3, 5, 6, 2 → softmax of (m, 0) is σ(m).
        let sig = |m: f64| 1.0 / (1.0 + (-m).exp());
        let want = (sig(2.) + sig(3.) + sig(5.) + sig(6.) + sig(2.)) / 5.0;
        assert_eq!(out.len(), 4);
        assert!((out[0] - want).abs() < 1e-6 && (out[2] - want).abs() < 1e-6);
        assert!("7crop".parse::<TtaMode>().is_err());
        assert_eq!("10crop".parse::<TtaMode>(), Ok(TtaMode::TenCrop));
    }
}
