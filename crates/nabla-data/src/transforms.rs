//! Transforms on one `[C, H, W]` sample of f32 values, composed per dataset. Random ones draw
//! from the generator they are given, so a seed fixes every augmentation.

use nabla_core::{Generator, PaddingMode};

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
        .apply(s, &mut rng);
        assert_eq!(&c.data[..5], &[1., 1., 2., 3., 3.]);
        assert_eq!(&c.data[15..], &[4., 4., 5., 6., 6.]);
    }
}
