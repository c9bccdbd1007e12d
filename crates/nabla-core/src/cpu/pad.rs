//! Spatial padding on host memory: each output position copies one input position (or is 0).

use crate::Float;
use crate::backend::params::PaddingMode;
use crate::error::Result;
use rayon::prelude::*;

/// For each output position along one axis, the input position it copies (None: zero).
pub(crate) fn source_map(
    op: &'static str,
    size: usize,
    before: usize,
    after: usize,
    mode: PaddingMode,
) -> Result<Vec<Option<usize>>> {
    mode.check(op, size, before, after)?;
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

pub(crate) fn pad_forward<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
) -> Vec<T> {
    let (oh, ow) = (rows.len(), cols.len());
    let mut out = vec![T::zero(); planes * oh * ow];
    out.par_chunks_mut((oh * ow).max(1)).enumerate().for_each(|(p, o)| {
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
pub(crate) fn pad_backward<T: Float>(
    g: &[T],
    planes: usize,
    h: usize,
    w: usize,
    rows: &[Option<usize>],
    cols: &[Option<usize>],
) -> Vec<T> {
    let (oh, ow) = (rows.len(), cols.len());
    let mut dx = vec![T::zero(); planes * h * w];
    dx.par_chunks_mut((h * w).max(1)).enumerate().for_each(|(p, d)| {
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
