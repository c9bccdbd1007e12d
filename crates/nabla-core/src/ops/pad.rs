//! Spatial padding of `[N, C, H, W]` tensors in PyTorch's four modes. Convolutions use it for
//! every mode but zeros (which their kernel handles without a copy).

use crate::error::{Result, arg_err, shape_err};
use crate::storage::CpuStorage;
use crate::{Float, Tensor};
use rayon::prelude::*;

/// How values outside the input are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingMode {
    /// 0 outside.
    #[default]
    Zeros,
    /// Mirror without repeating the edge: `d c b | a b c d | c b a` (padding < size).
    Reflect,
    /// Repeat the edge (the lecture's "copy-border"): `a a a | a b c d | d d d`.
    Replicate,
    /// Wrap around: `b c d | a b c d | a b c` (padding ≤ size).
    Circular,
}

impl std::str::FromStr for PaddingMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "zeros" => Ok(PaddingMode::Zeros),
            "reflect" => Ok(PaddingMode::Reflect),
            "replicate" => Ok(PaddingMode::Replicate),
            "circular" => Ok(PaddingMode::Circular),
            other => Err(format!(
                "unknown padding mode '{other}' (expected zeros, reflect, replicate or circular)"
            )),
        }
    }
}

/// For each output position along one axis, the input position it copies (None: zero).
fn source_map(
    op: &'static str,
    size: usize,
    before: usize,
    after: usize,
    mode: PaddingMode,
) -> Result<Vec<Option<usize>>> {
    let limit_ok = match mode {
        PaddingMode::Zeros => true,
        PaddingMode::Reflect => before < size && after < size,
        PaddingMode::Replicate => size > 0,
        PaddingMode::Circular => before <= size && after <= size,
    };
    if !limit_ok {
        return arg_err(
            op,
            format!("padding ({before}, {after}) is too large for {mode:?} mode on a dimension of size {size}"),
        );
    }
    let n = size as isize;
    Ok((0..before + size + after)
        .map(|o| {
            let i = o as isize - before as isize;
            if (0..n).contains(&i) {
                return Some(i as usize);
            }
            match mode {
                PaddingMode::Zeros => None,
                PaddingMode::Reflect => Some(if i < 0 { -i } else { 2 * (n - 1) - i } as usize),
                PaddingMode::Replicate => Some(i.clamp(0, n - 1) as usize),
                PaddingMode::Circular => Some(i.rem_euclid(n) as usize),
            }
        })
        .collect())
}

fn pad_forward<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
) -> Vec<T> {
    let (oh, ow) = (rows.len(), cols.len());
    let mut out = vec![T::zero(); planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, o)| {
        let src = &x[p * h * w..(p + 1) * h * w];
        for (r, sr) in rows.iter().enumerate() {
            let Some(sr) = sr else { continue };
            for (c, sc) in cols.iter().enumerate() {
                if let Some(sc) = sc {
                    o[r * ow + c] = src[sr * w + sc];
                }
            }
        }
    });
    out
}

/// The adjoint of `pad_forward`: every output gradient is added to the input it copied.
fn pad_backward<T: Float>(
    g: &[T],
    planes: usize,
    h: usize,
    w: usize,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
) -> Vec<T> {
    let (oh, ow) = (rows.len(), cols.len());
    let mut dx = vec![T::zero(); planes * h * w];
    dx.par_chunks_mut(h * w).enumerate().for_each(|(p, d)| {
        let src = &g[p * oh * ow..(p + 1) * oh * ow];
        for (r, sr) in rows.iter().enumerate() {
            let Some(sr) = sr else { continue };
            for (c, sc) in cols.iter().enumerate() {
                if let Some(sc) = sc {
                    d[sr * w + sc] += src[r * ow + c];
                }
            }
        }
    });
    dx
}

impl Tensor {
    /// Pads the last two dimensions by `[top, bottom, left, right]` in `mode`.
    /// δx = Σ of δ over every output position that copied each input (the adjoint).
    pub fn pad2d(&self, sides: [usize; 4], mode: PaddingMode) -> Result<Tensor> {
        if self.rank() < 2 {
            return shape_err(
                "pad2d",
                format!("expected at least 2 dimensions, got shape {}", self.shape()),
            );
        }
        if sides == [0; 4] {
            return Ok(self.clone());
        }
        let r = self.rank();
        let (h, w) = (self.dims()[r - 2], self.dims()[r - 1]);
        let planes: usize = self.dims()[..r - 2].iter().product();
        let rows = source_map("pad2d", h, sides[0], sides[1], mode)?;
        let cols = source_map("pad2d", w, sides[2], sides[3], mode)?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let mut dims = self.dims().to_vec();
            dims[r - 2] = rows.len();
            dims[r - 1] = cols.len();
            return super::on_cuda::pad2d(self, sides, mode, crate::Shape::new(dims));
        }
        let x = self.contiguous()?;
        let out = {
            let s = x.storage();
            let off = x.layout().offset();
            match s.cpu("pad2d")? {
                CpuStorage::F32(v) => CpuStorage::F32(pad_forward(&v[off..], planes, h, w, &rows, &cols)),
                CpuStorage::F64(v) => CpuStorage::F64(pad_forward(&v[off..], planes, h, w, &rows, &cols)),
                other => {
                    return Err(crate::Error::UnsupportedDType {
                        op: "pad2d",
                        dtype: other.dtype(),
                    });
                }
            }
        };
        let mut dims = self.dims().to_vec();
        dims[r - 2] = rows.len();
        dims[r - 1] = cols.len();
        let out = Tensor::from_storage(out, dims);
        let in_shape = self.shape().clone();
        Ok(out.record("pad2d", &[self], move |g| {
            let g = g.contiguous()?;
            let s = g.storage();
            let off = g.layout().offset();
            let dx = match s.cpu("pad2d")? {
                CpuStorage::F32(v) => CpuStorage::F32(pad_backward(&v[off..], planes, h, w, &rows, &cols)),
                CpuStorage::F64(v) => CpuStorage::F64(pad_backward(&v[off..], planes, h, w, &rows, &cols)),
                other => {
                    return Err(crate::Error::UnsupportedDType {
                        op: "pad2d",
                        dtype: other.dtype(),
                    });
                }
            };
            Ok(vec![Some(Tensor::from_storage(dx, in_shape))])
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_maps_by_hand() {
        let m = |mode| source_map("t", 4, 2, 2, mode).unwrap();
        assert_eq!(m(PaddingMode::Reflect), [2, 1, 0, 1, 2, 3, 2, 1].map(Some).to_vec());
        assert_eq!(m(PaddingMode::Replicate), [0, 0, 0, 1, 2, 3, 3, 3].map(Some).to_vec());
        assert_eq!(m(PaddingMode::Circular), [2, 3, 0, 1, 2, 3, 0, 1].map(Some).to_vec());
        assert_eq!(
            m(PaddingMode::Zeros),
            vec![None, None, Some(0), Some(1), Some(2), Some(3), None, None]
        );
        assert!(source_map("t", 2, 2, 0, PaddingMode::Reflect).is_err());
    }
}
