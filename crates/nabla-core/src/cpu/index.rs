//! Index kernels on host memory: index_select, index_add, gather and scatter_add.

use crate::Shape;

/// (outer, size, inner) of a contiguous shape split around `dim`.
pub(crate) fn split_at(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        dims[..dim].iter().product(),
        dims[dim],
        dims[dim + 1..].iter().product(),
    )
}

pub(crate) fn index_select_kernel<T: Copy + Default>(x: &[T], dims: &[usize], dim: usize, idx: &[usize]) -> Vec<T> {
    let (outer, size, inner) = split_at(dims, dim);
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in idx {
            let start = (o * size + j) * inner;
            out.extend_from_slice(&x[start..start + inner]);
        }
    }
    out
}

/// `out[.., idx[k], ..] += g[.., k, ..]` along `dim` of contiguous `out` of shape `dims`.
pub(crate) fn index_add_into<T: Copy + std::ops::AddAssign>(
    out: &mut [T],
    g: &[T],
    dims: &[usize],
    dim: usize,
    idx: &[usize],
) {
    let (outer, size, inner) = split_at(dims, dim);
    for o in 0..outer {
        for (k, &j) in idx.iter().enumerate() {
            let src = (o * idx.len() + k) * inner;
            let dst = (o * size + j) * inner;
            out[dst..dst + inner]
                .iter_mut()
                .zip(&g[src..src + inner])
                .for_each(|(a, &b)| *a += b);
        }
    }
}

/// For each position of `index` (contiguous, shape `idx_dims`), the flat offset into a
/// contiguous tensor of shape `dims` with the coordinate along `dim` replaced by the index.
pub(crate) fn gather_offsets(dims: &[usize], idx_dims: &[usize], dim: usize, idx: &[usize]) -> Vec<usize> {
    let strides = Shape::from(dims).contiguous_strides();
    let mut coord = vec![0usize; idx_dims.len()];
    let mut offsets = Vec::with_capacity(idx.len());
    for &j in idx {
        let mut off = 0;
        for d in 0..dims.len() {
            off += if d == dim { j } else { coord[d] } * strides[d];
        }
        offsets.push(off);
        for d in (0..idx_dims.len()).rev() {
            coord[d] += 1;
            if coord[d] < idx_dims[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    offsets
}
