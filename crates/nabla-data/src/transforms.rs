//! Transforms on one `[C, H, W]` sample of f32 values, composed per dataset. Random ones draw
//! from the generator they are given, so a seed fixes every augmentation.
//!
//! Geometry: [`Normalize`], [`RandomHorizontalFlip`], [`RandomCrop`] (with padding),
//! [`Resize`] (shorter side, bilinear), [`CenterCrop`], [`RandomResizedCrop`] (torchvision's
//! scale/ratio sampling). Colour, for values in [0, 1]: [`ColorJitter`] (brightness, contrast)
//! and [`Lighting`], AlexNet's PCA lighting noise. Plain functions ([`crop`], [`pad`],
//! [`hflip`], [`resize_bilinear`], [`center_crop`]) serve the test-time crops of `tta`.

use crate::dataset::ImageDataset;
use nabla_core::{Error, Generator, PaddingMode, Result};

/// One image in channel-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub data: Vec<f32>,
    pub shape: [usize; 3],
}

/// A step of preprocessing or augmentation.
pub trait Transform: Send + Sync {
    fn apply(&self, s: Sample, rng: &mut Generator) -> Sample;
}

/// Transforms applied in order.
pub struct Compose(pub Vec<Box<dyn Transform>>);

impl Transform for Compose {
    fn apply(&self, mut s: Sample, rng: &mut Generator) -> Sample {
        for t in &self.0 {
            s = t.apply(s, rng);
        }
        s
    }
}

/// (x − mean_c) / std_c per channel.
#[derive(Debug, Clone)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Transform for Normalize {
    fn apply(&self, mut s: Sample, _: &mut Generator) -> Sample {
        let hw = s.shape[1] * s.shape[2];
        for (c, plane) in s.data.chunks_mut(hw.max(1)).enumerate() {
            let (m, d) = (self.mean[c % self.mean.len()], self.std[c % self.std.len()]);
            plane.iter_mut().for_each(|v| *v = (*v - m) / d);
        }
        s
    }
}

/// Mirrors left–right with probability p.
pub struct RandomHorizontalFlip(pub f64);

impl Transform for RandomHorizontalFlip {
    fn apply(&self, mut s: Sample, rng: &mut Generator) -> Sample {
        if rng.next_f64() < self.0 {
            let w = s.shape[2];
            s.data.chunks_mut(w.max(1)).for_each(|row| row.reverse());
        }
        s
    }
}

/// Pads by `padding` on each side in `mode`, then cuts a random `size`×`size` window
/// (the standard CIFAR augmentation: pad 4, crop 32).
pub struct RandomCrop {
    pub size: [usize; 2],
    pub padding: usize,
    pub mode: PaddingMode,
}

/// The source index along an axis for padded position `i` (None: zero).
fn source(i: isize, n: usize, mode: PaddingMode) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match mode {
        PaddingMode::Zeros => None,
        PaddingMode::Reflect => {
            let period = 2 * (n - 1).max(1);
            let m = i.rem_euclid(period);
            Some(if m < n { m } else { period - m } as usize)
        }
        PaddingMode::Replicate => Some(i.clamp(0, n - 1) as usize),
        PaddingMode::Circular => Some(i.rem_euclid(n) as usize),
    }
}

impl Transform for RandomCrop {
    fn apply(&self, s: Sample, rng: &mut Generator) -> Sample {
        let [c, h, w] = s.shape;
        let [ch, cw] = self.size;
        let p = self.padding as isize;
        let max_y = (h + 2 * self.padding).saturating_sub(ch);
        let max_x = (w + 2 * self.padding).saturating_sub(cw);
        let oy = rng.below(max_y as u64 + 1) as isize - p;
        let ox = rng.below(max_x as u64 + 1) as isize - p;
        let mut out = vec![0.0; c * ch * cw];
        for k in 0..c {
            for y in 0..ch {
                let Some(sy) = source(oy + y as isize, h, self.mode) else {
                    continue;
                };
                for x in 0..cw {
                    if let Some(sx) = source(ox + x as isize, w, self.mode) {
                        out[(k * ch + y) * cw + x] = s.data[(k * h + sy) * w + sx];
                    }
                }
            }
        }
        Sample {
            data: out,
            shape: [c, ch, cw],
        }
    }
}

/// Pixel `(y, x)` positions outside the image read as zero.
fn crop_zero_padded(s: &Sample, top: isize, left: isize, ch: usize, cw: usize) -> Sample {
    let [c, h, w] = s.shape;
    let mut out = vec![0.0; c * ch * cw];
    for k in 0..c {
        for y in 0..ch {
            let Some(sy) = source(top + y as isize, h, PaddingMode::Zeros) else {
                continue;
            };
            for x in 0..cw {
                if let Some(sx) = source(left + x as isize, w, PaddingMode::Zeros) {
                    out[(k * ch + y) * cw + x] = s.data[(k * h + sy) * w + sx];
                }
            }
        }
    }
    Sample {
        data: out,
        shape: [c, ch, cw],
    }
}

/// The image with `padding` pixels added on each side, filled as `mode` says.
pub fn pad(s: &Sample, padding: usize, mode: PaddingMode) -> Sample {
    let [c, h, w] = s.shape;
    let (ph, pw, p) = (h + 2 * padding, w + 2 * padding, padding as isize);
    let mut out = vec![0.0; c * ph * pw];
    for k in 0..c {
        for y in 0..ph {
            let Some(sy) = source(y as isize - p, h, mode) else {
                continue;
            };
            for x in 0..pw {
                if let Some(sx) = source(x as isize - p, w, mode) {
                    out[(k * ph + y) * pw + x] = s.data[(k * h + sy) * w + sx];
                }
            }
        }
    }
    Sample {
        data: out,
        shape: [c, ph, pw],
    }
}

/// The `h`×`w` window whose top-left pixel is `(top, left)`; parts outside the image are zero.
pub fn crop(s: &Sample, top: usize, left: usize, h: usize, w: usize) -> Sample {
    crop_zero_padded(s, top as isize, left as isize, h, w)
}

/// The image mirrored left–right.
pub fn hflip(s: &Sample) -> Sample {
    let mut out = s.clone();
    out.data.chunks_mut(s.shape[2].max(1)).for_each(|row| row.reverse());
    out
}

/// For output position `dst`: the two source positions and the weight of the second, with
/// half-pixel centres (PyTorch's `align_corners=False`): src = (dst + ½)·in/out − ½, clamped at 0.
fn bilinear_taps(dst: usize, n_in: usize, n_out: usize) -> (usize, usize, f32) {
    let src = ((dst as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(n_in - 1);
    (i0, (i0 + 1).min(n_in - 1), (src - i0 as f64) as f32)
}

/// Bilinear resampling to exactly `h`×`w` (as `F.interpolate(mode="bilinear",
/// align_corners=False, antialias=False)`).
pub fn resize_bilinear(s: &Sample, h: usize, w: usize) -> Sample {
    let [c, ih, iw] = s.shape;
    if [ih, iw] == [h, w] || ih == 0 || iw == 0 {
        return s.clone();
    }
    let xs: Vec<_> = (0..w).map(|x| bilinear_taps(x, iw, w)).collect();
    let mut out = Vec::with_capacity(c * h * w);
    for k in 0..c {
        let plane = &s.data[k * ih * iw..(k + 1) * ih * iw];
        for y in 0..h {
            let (y0, y1, fy) = bilinear_taps(y, ih, h);
            let (r0, r1) = (&plane[y0 * iw..(y0 + 1) * iw], &plane[y1 * iw..(y1 + 1) * iw]);
            for &(x0, x1, fx) in &xs {
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
                out.push(top + (bottom - top) * fy);
            }
        }
    }
    Sample {
        data: out,
        shape: [c, h, w],
    }
}

/// Scales the image so that its shorter side is `size`, keeping the aspect ratio (the longer
/// side becomes ⌊size·long/short⌋, as in torchvision), bilinearly.
pub struct Resize {
    pub size: usize,
}

/// The `[h, w]` that [`Resize`] gives an `h`×`w` image.
pub fn shorter_side_to(h: usize, w: usize, size: usize) -> [usize; 2] {
    if h <= w {
        [size, (size * w) / h.max(1)]
    } else {
        [(size * h) / w.max(1), size]
    }
}

impl Transform for Resize {
    fn apply(&self, s: Sample, _: &mut Generator) -> Sample {
        let [h, w] = shorter_side_to(s.shape[1], s.shape[2], self.size);
        resize_bilinear(&s, h, w)
    }
}

/// Converts to `channels` channels: grey to RGB by repeating the plane, RGB to grey by the
/// Rec. 709 luma weights (as the image readers do); otherwise unchanged.
pub struct ToChannels(pub usize);

impl Transform for ToChannels {
    fn apply(&self, s: Sample, _: &mut Generator) -> Sample {
        let [c, h, w] = s.shape;
        let hw = h * w;
        match (c, self.0) {
            (1, n) if n > 1 => Sample {
                data: s.data.repeat(n),
                shape: [n, h, w],
            },
            (3, 1) => {
                let grey = (0..hw)
                    .map(|i| 0.2126 * s.data[i] + 0.7152 * s.data[hw + i] + 0.0722 * s.data[2 * hw + i])
                    .collect();
                Sample {
                    data: grey,
                    shape: [1, h, w],
                }
            }
            _ => s,
        }
    }
}

/// Makes images of `from` = [C, H, W] fit a model's `to` input: channels converted, then the
/// shorter side resized to cover the target and the centre cut out. Empty when they agree.
pub fn fit_input(from: [usize; 3], to: [usize; 3]) -> Vec<Box<dyn Transform>> {
    let mut steps: Vec<Box<dyn Transform>> = Vec::new();
    if from[0] != to[0] {
        steps.push(Box::new(ToChannels(to[0])));
    }
    if from[1] != to[1] || from[2] != to[2] {
        // Scale so that both sides cover the target, then crop the centre.
        let scale = (to[1] as f64 / from[1] as f64).max(to[2] as f64 / from[2] as f64);
        let shorter = (from[1].min(from[2]) as f64 * scale).ceil() as usize;
        steps.push(Box::new(Resize { size: shorter }));
        steps.push(Box::new(CenterCrop { size: [to[1], to[2]] }));
    }
    steps
}

/// The central `size` window (torchvision's rounding: top = round((H − h)/2), ties to even);
/// zero-padded where the image is smaller than the window.
pub struct CenterCrop {
    pub size: [usize; 2],
}

/// The top-left corner of the central `ch`×`cw` window of an `h`×`w` image (may be negative).
pub fn center_offset(h: usize, w: usize, ch: usize, cw: usize) -> (isize, isize) {
    let off = |n: usize, c: usize| ((n as f64 - c as f64) / 2.0).round_ties_even() as isize;
    (off(h, ch), off(w, cw))
}

/// The central window of `s` (see [`CenterCrop`]).
pub fn center_crop(s: &Sample, size: [usize; 2]) -> Sample {
    let (top, left) = center_offset(s.shape[1], s.shape[2], size[0], size[1]);
    crop_zero_padded(s, top, left, size[0], size[1])
}

impl Transform for CenterCrop {
    fn apply(&self, s: Sample, _: &mut Generator) -> Sample {
        center_crop(&s, self.size)
    }
}

/// A random window covering a fraction `scale` of the area with aspect ratio (w/h) in `ratio`
/// (log-uniform), resized to `size` — the Inception / ResNet ImageNet augmentation, with
/// torchvision's sampling: ten tries, then the whole image cut to the nearest allowed ratio.
pub struct RandomResizedCrop {
    pub size: [usize; 2],
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
}

impl RandomResizedCrop {
    /// torchvision's defaults: scale (0.08, 1), ratio (3/4, 4/3).
    pub fn new(size: [usize; 2]) -> Self {
        RandomResizedCrop {
            size,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        }
    }

    /// The window `(top, left, h, w)` for an `h`×`w` image.
    pub fn window(&self, h: usize, w: usize, rng: &mut Generator) -> (usize, usize, usize, usize) {
        let area = (h * w) as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * rng.uniform(self.scale.0, self.scale.1);
            let aspect = rng.uniform(lr0, lr1).exp();
            let cw = (target * aspect).sqrt().round_ties_even() as usize;
            let ch = (target / aspect).sqrt().round_ties_even() as usize;
            if (1..=w).contains(&cw) && (1..=h).contains(&ch) {
                let top = rng.below((h - ch + 1) as u64) as usize;
                let left = rng.below((w - cw + 1) as u64) as usize;
                return (top, left, ch, cw);
            }
        }
        let in_ratio = w as f64 / h as f64;
        let (ch, cw) = if in_ratio < self.ratio.0 {
            ((w as f64 / self.ratio.0).round_ties_even() as usize, w)
        } else if in_ratio > self.ratio.1 {
            (h, (h as f64 * self.ratio.1).round_ties_even() as usize)
        } else {
            (h, w)
        };
        ((h - ch) / 2, (w - cw) / 2, ch, cw)
    }
}

impl Transform for RandomResizedCrop {
    fn apply(&self, s: Sample, rng: &mut Generator) -> Sample {
        let (top, left, h, w) = self.window(s.shape[1], s.shape[2], rng);
        resize_bilinear(&crop(&s, top, left, h, w), self.size[0], self.size[1])
    }
}

/// x·f clamped to [0, 1] (torchvision's `adjust_brightness`).
pub fn adjust_brightness(mut s: Sample, f: f32) -> Sample {
    s.data.iter_mut().for_each(|v| *v = (*v * f).clamp(0.0, 1.0));
    s
}

/// f·x + (1 − f)·m clamped to [0, 1], m the mean grey level of the image (ITU-R 601 luma
/// 0.299 R + 0.587 G + 0.114 B for three channels, the plain mean otherwise), as torchvision.
pub fn adjust_contrast(mut s: Sample, f: f32) -> Sample {
    let hw = (s.shape[1] * s.shape[2]).max(1);
    let mean = if s.shape[0] == 3 {
        let p = |c: usize| s.data[c * hw..(c + 1) * hw].iter().sum::<f32>();
        (0.299 * p(0) + 0.587 * p(1) + 0.114 * p(2)) / hw as f32
    } else {
        s.data.iter().sum::<f32>() / s.data.len().max(1) as f32
    };
    s.data
        .iter_mut()
        .for_each(|v| *v = (f * *v + (1.0 - f) * mean).clamp(0.0, 1.0));
    s
}

/// Random brightness and contrast: factors drawn uniformly from [max(0, 1 − b), 1 + b] and
/// [max(0, 1 − c), 1 + c], applied in random order (torchvision's `ColorJitter`, for
/// values in [0, 1]).
pub struct ColorJitter {
    pub brightness: f64,
    pub contrast: f64,
}

impl Transform for ColorJitter {
    fn apply(&self, s: Sample, rng: &mut Generator) -> Sample {
        let factor = |rng: &mut Generator, x: f64| rng.uniform((1.0 - x).max(0.0), 1.0 + x) as f32;
        let b = factor(rng, self.brightness);
        let c = factor(rng, self.contrast);
        if rng.next_f64() < 0.5 {
            adjust_contrast(adjust_brightness(s, b), c)
        } else {
            adjust_brightness(adjust_contrast(s, c), b)
        }
    }
}

/// AlexNet's PCA colour augmentation (Krizhevsky, Sutskever & Hinton, 2012, §4.1): to every
/// RGB pixel add Σᵢ pᵢ·αᵢ·λᵢ, with pᵢ, λᵢ the eigenvectors and eigenvalues of the 3×3
/// covariance of RGB values over the training set and αᵢ ~ N(0, `alpha_std`), drawn once per
/// image. Images that do not have three channels pass unchanged.
pub struct Lighting {
    pub alpha_std: f64,
    /// λ₁ ≥ λ₂ ≥ λ₃.
    pub eigval: [f32; 3],
    /// `eigvec[channel][i]`: eigenvector i in column i.
    pub eigvec: [[f32; 3]; 3],
}

impl Lighting {
    /// The ImageNet eigen-decomposition for values in [0, 1] (as published with
    /// fb.resnet.torch and used by most reimplementations), α ~ N(0, 0.1).
    pub fn imagenet() -> Self {
        Lighting {
            alpha_std: 0.1,
            eigval: [0.2175, 0.0188, 0.0045],
            eigvec: [
                [-0.5675, 0.7192, 0.4009],
                [-0.5808, -0.0045, -0.8140],
                [-0.5836, -0.6948, 0.4203],
            ],
        }
    }

    /// From a training set's RGB covariance (values scaled to [0, 1]).
    pub fn fit(ds: &ImageDataset, alpha_std: f64) -> Result<Self> {
        let [c, h, w] = ds.shape;
        if c != 3 {
            return Err(Error::Argument {
                op: "Lighting::fit",
                msg: format!("PCA lighting needs RGB images, got {c} channels"),
            });
        }
        let hw = h * w;
        let (mut sum, mut sq, mut n) = ([0f64; 3], [[0f64; 3]; 3], 0f64);
        for img in ds.pixels.chunks_exact(3 * hw) {
            for p in 0..hw {
                let v = [0, 1, 2].map(|k| img[k * hw + p] as f64 / 255.0);
                for i in 0..3 {
                    sum[i] += v[i];
                    for j in 0..3 {
                        sq[i][j] += v[i] * v[j];
                    }
                }
                n += 1.0;
            }
        }
        let n = n.max(1.0);
        let cov = std::array::from_fn(|i| std::array::from_fn(|j| sq[i][j] / n - sum[i] * sum[j] / (n * n)));
        let (val, vec) = symmetric_eigen3(cov);
        Ok(Lighting {
            alpha_std,
            eigval: val.map(|v| v as f32),
            eigvec: vec.map(|r| r.map(|v| v as f32)),
        })
    }

    /// The RGB offset Σᵢ pᵢ·αᵢ·λᵢ for given α.
    pub fn offset(&self, alpha: [f32; 3]) -> [f32; 3] {
        std::array::from_fn(|c| (0..3).map(|i| self.eigvec[c][i] * alpha[i] * self.eigval[i]).sum())
    }
}

impl Transform for Lighting {
    fn apply(&self, mut s: Sample, rng: &mut Generator) -> Sample {
        if s.shape[0] != 3 || self.alpha_std == 0.0 {
            return s;
        }
        let alpha = [0; 3].map(|_| (rng.normal() * self.alpha_std) as f32);
        let off = self.offset(alpha);
        let hw = (s.shape[1] * s.shape[2]).max(1);
        for (c, plane) in s.data.chunks_mut(hw).enumerate() {
            plane.iter_mut().for_each(|v| *v += off[c]);
        }
        s
    }
}

/// Eigenvalues (descending) and eigenvectors (columns) of a symmetric 3×3 matrix by cyclic
/// Jacobi rotations.
pub fn symmetric_eigen3(mut a: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..50 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off < 1e-30 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-300 {
                continue;
            }
            // The rotation by θ that zeroes a[p][q]: t = tan θ from cot 2θ = (a_qq − a_pp)/(2 a_pq).
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    let mut order = [0, 1, 2];
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    (order.map(|i| a[i][i]), std::array::from_fn(|r| order.map(|i| v[r][i])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_and_crop_by_hand() {
        let s = Sample {
            data: vec![1., 2., 3., 4., 5., 6.],
            shape: [1, 2, 3],
        };
        let mut rng = Generator::seed_from_u64(0);
        let f = RandomHorizontalFlip(1.0).apply(s.clone(), &mut rng);
        assert_eq!(f.data, vec![3., 2., 1., 6., 5., 4.]);
        // A crop of the full size without padding is the identity.
        let c = RandomCrop {
            size: [2, 3],
            padding: 0,
            mode: PaddingMode::Zeros,
        }
        .apply(s.clone(), &mut rng);
        assert_eq!(c, s);
        // Replicate padding by 1 and a 4×5 crop: the only window is the whole padded image.
        let c = RandomCrop {
            size: [4, 5],
            padding: 1,
            mode: PaddingMode::Replicate,
        }
        .apply(s.clone(), &mut rng);
        assert_eq!(&c.data[..5], &[1., 1., 2., 3., 3.]);
        assert_eq!(&c.data[15..], &[4., 4., 5., 6., 6.]);
        // `pad` is that whole padded image; zero padding by 1 of a 1×2 row.
        assert_eq!(pad(&s, 1, PaddingMode::Replicate).data, c.data);
        let row = Sample {
            data: vec![1., 2.],
            shape: [1, 1, 2],
        };
        assert_eq!(
            pad(&row, 1, PaddingMode::Zeros).data,
            vec![0., 0., 0., 0., 0., 1., 2., 0., 0., 0., 0., 0.]
        );
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    fn ramp(shape: [usize; 3]) -> Sample {
        Sample {
            data: (0..shape.iter().product::<usize>()).map(|v| v as f32).collect(),
            shape,
        }
    }

    #[test]
    fn bilinear_resize_by_hand() {
        // 2 → 4 taps at src = (d + ½)/2 − ½ = −¼ (clamped to 0), ¼, ¾, 1¼ (clamped to the edge).
        let up = resize_bilinear(&ramp([1, 1, 2]), 1, 4);
        close(&up.data, &[0.0, 0.25, 0.75, 1.0]);
        // 4 → 2: src = 0.5 and 2.5, halfway between neighbours.
        close(&resize_bilinear(&ramp([1, 1, 4]), 1, 2).data, &[0.5, 2.5]);
        // 2×2 → 3×3 of v = 2y + x: src positions 0, ½, 1 on both axes.
        let s = resize_bilinear(&ramp([1, 2, 2]), 3, 3);
        close(&s.data, &[0., 0.5, 1., 1., 1.5, 2., 2., 2.5, 3.]);
        assert_eq!(s.shape, [1, 3, 3]);
    }

    #[test]
    fn resize_keeps_the_aspect_ratio() {
        let mut rng = Generator::seed_from_u64(0);
        assert_eq!(Resize { size: 4 }.apply(ramp([3, 2, 4]), &mut rng).shape, [3, 4, 8]);
        assert_eq!(Resize { size: 2 }.apply(ramp([1, 6, 3]), &mut rng).shape, [1, 4, 2]);
        // 5×7 → shorter side 3: 7·3/5 = 4.2 → 4.
        assert_eq!(shorter_side_to(5, 7, 3), [3, 4]);
    }

    #[test]
    fn center_crop_by_hand() {
        // 3×4 image 0..12; a 1×2 window starts at (1, 1).
        let s = ramp([1, 3, 4]);
        assert_eq!(center_crop(&s, [1, 2]).data, vec![5., 6.]);
        // (3 − 2)/2 = 0.5 rounds to 0 (ties to even, as torchvision's Python round).
        assert_eq!(center_crop(&s, [2, 2]).data, vec![1., 2., 5., 6.]);
        // A window wider than the image is zero-padded on both sides.
        let row = Sample {
            data: vec![1., 2., 3., 4.],
            shape: [1, 1, 4],
        };
        let mut rng = Generator::seed_from_u64(0);
        let c = CenterCrop { size: [1, 6] }.apply(row, &mut rng);
        assert_eq!(c.data, vec![0., 1., 2., 3., 4., 0.]);
    }

    #[test]
    fn random_resized_crop_windows() {
        let mut rng = Generator::seed_from_u64(3);
        // Scale 1, ratio 1 on a square: the whole 4×4 image (v = 4y + x) resized to 2×2, whose
        // taps are at 0.5 and 2.5.
        let whole = RandomResizedCrop {
            size: [2, 2],
            scale: (1.0, 1.0),
            ratio: (1.0, 1.0),
        };
        close(&whole.apply(ramp([1, 4, 4]), &mut rng).data, &[2.5, 4.5, 10.5, 12.5]);
        // A quarter of a 10×10 image at ratio 1 is a 5×5 window, copied as it is.
        let quarter = RandomResizedCrop {
            size: [5, 5],
            scale: (0.25, 0.25),
            ratio: (1.0, 1.0),
        };
        for _ in 0..20 {
            let c = quarter.apply(ramp([1, 10, 10]), &mut rng);
            let base = c.data[0];
            for y in 0..5 {
                for x in 0..5 {
                    assert_eq!(c.data[y * 5 + x], base + (10 * y + x) as f32);
                }
            }
        }
        // An impossible ratio (4) falls back to the whole width and height round(10/4) = 2
        // (ties to even), centred.
        let wide = RandomResizedCrop {
            size: [2, 10],
            scale: (0.9, 1.0),
            ratio: (4.0, 4.0),
        };
        assert_eq!(wide.window(10, 10, &mut rng), (4, 0, 2, 10));
        assert_eq!(
            RandomResizedCrop::new([8, 8]).apply(ramp([3, 20, 30]), &mut rng).shape,
            [3, 8, 8]
        );
    }

    #[test]
    fn brightness_and_contrast_by_hand() {
        let s = Sample {
            data: vec![0.2, 0.6],
            shape: [1, 1, 2],
        };
        close(&adjust_brightness(s, 2.0).data, &[0.4, 1.0]); // 1.2 clamps to 1
        let s = Sample {
            data: vec![0.0, 0.5, 1.0],
            shape: [1, 1, 3],
        };
        // Mean 0.5, factor 0.5: 0.5·x + 0.25.
        close(&adjust_contrast(s.clone(), 0.5).data, &[0.25, 0.5, 0.75]);
        // Pure red: grey mean 0.299; factor 0 makes every channel that grey.
        let red = Sample {
            data: vec![1.0, 0.0, 0.0],
            shape: [3, 1, 1],
        };
        close(&adjust_contrast(red, 0.0).data, &[0.299; 3]);
        // Zero-strength jitter is the identity.
        let mut rng = Generator::seed_from_u64(1);
        let j = ColorJitter {
            brightness: 0.0,
            contrast: 0.0,
        };
        assert_eq!(j.apply(s.clone(), &mut rng), s);
    }

    #[test]
    fn pca_lighting_by_hand() {
        let l = Lighting::imagenet();
        // α = (1, 0, 0): λ₁·p₁ = 0.2175 · (−0.5675, −0.5808, −0.5836).
        close(&l.offset([1.0, 0.0, 0.0]), &[-0.12343125, -0.126324, -0.126933]);
        // α = (0, 1, −1): 0.0188·p₂ − 0.0045·p₃.
        close(&l.offset([0.0, 1.0, -1.0]), &[0.01171691, 0.0035784, -0.01495359]);
        // One α per image: both pixels of a channel move by the same amount.
        let mut rng = Generator::seed_from_u64(7);
        let s = Sample {
            data: vec![0.5; 6],
            shape: [3, 1, 2],
        };
        let out = l.apply(s.clone(), &mut rng);
        for c in 0..3 {
            assert_eq!(out.data[2 * c], out.data[2 * c + 1]);
        }
        assert_ne!(out, s);
        // Grey images pass unchanged.
        let grey = Sample {
            data: vec![0.5; 2],
            shape: [1, 1, 2],
        };
        assert_eq!(l.apply(grey.clone(), &mut rng), grey);
    }

    #[test]
    fn eigen_and_fit_by_hand() {
        // [[2,1,0],[1,2,0],[0,0,1]]: eigenvalues 3 (along (1,1,0)/√2), 1, 1.
        let (val, vec) = symmetric_eigen3([[2., 1., 0.], [1., 2., 0.], [0., 0., 1.]]);
        assert!((val[0] - 3.0).abs() < 1e-12 && (val[1] - 1.0).abs() < 1e-12 && (val[2] - 1.0).abs() < 1e-12);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((vec[0][0].abs() - h).abs() < 1e-12 && (vec[1][0].abs() - h).abs() < 1e-12);
        assert!(vec[2][0].abs() < 1e-12);
        // A black and a white pixel: every covariance entry is ¼, so λ₁ = ¾ along (1,1,1)/√3.
        let ds = ImageDataset::new(vec![0, 0, 0, 255, 255, 255], [3, 1, 1], vec![0, 0], vec!["x".into()]).unwrap();
        let l = Lighting::fit(&ds, 0.1).unwrap();
        assert!((l.eigval[0] - 0.75).abs() < 1e-6 && l.eigval[1].abs() < 1e-6 && l.eigval[2].abs() < 1e-6);
        for c in 0..3 {
            assert!((l.eigvec[c][0].abs() - 1.0 / 3f32.sqrt()).abs() < 1e-6);
        }
    }
}

#[cfg(test)]
mod fit_input_tests {
    use super::*;

    #[test]
    fn grey_becomes_rgb_and_sizes_are_covered() {
        let mut rng = Generator::seed_from_u64(0);
        let s = Sample {
            data: vec![0.25; 4],
            shape: [1, 2, 2],
        };
        let rgb = ToChannels(3).apply(s.clone(), &mut rng);
        assert_eq!((rgb.shape, rgb.data.len()), ([3, 2, 2], 12));
        let grey = ToChannels(1).apply(rgb, &mut rng);
        assert!(grey.data.iter().all(|v| (v - 0.25).abs() < 1e-6), "{:?}", grey.data);
        let fitted = fit_input([1, 2, 2], [3, 4, 4])
            .iter()
            .fold(s, |s, t| t.apply(s, &mut rng));
        assert_eq!(fitted.shape, [3, 4, 4]);
        assert!(fitted.data.iter().all(|v| (v - 0.25).abs() < 1e-6));
        assert!(fit_input([3, 32, 32], [3, 32, 32]).is_empty());
    }
}
