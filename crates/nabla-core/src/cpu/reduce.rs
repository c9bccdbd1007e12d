//! Reductions on host memory: Σ, mean, max/min and their indices over any set of dims.
//!
//! Σ over a leading block, or over a leading and a trailing block around kept middle dims, reads
//! the input in place (the bias gradients of dense and convolution layers); everything else
//! first moves the reduced dims last (one strided copy) and reduces rows.

use super::strided::gather_contiguous;
use crate::backend::params::ReduceOp;
use crate::error::{Error, Result};
use crate::shape::Layout;
use crate::storage::CpuStorage;
use crate::{DType, Float};

/// Σ of a contiguous run with eight partial sums (vectorisable, and a smaller rounding error
/// than one running sum).
fn sum_run<T: crate::Float>(run: &[T]) -> T {
    let mut part = [T::zero(); 8];
    let chunks = run.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (p, &x) in part.iter_mut().zip(c) {
            *p += x;
        }
    }
    let mut total = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for &x in rest {
        total += x;
    }
    total
}

/// Reduces `v` seen through `l` over the dims where `mask` is true.
fn reduce_float<T: Float>(v: &[T], l: &Layout, mask: &[bool], op: ReduceOp) -> CpuStorage {
    let dims = l.dims();
    let rank = dims.len();
    if (op == ReduceOp::Sum || op == ReduceOp::Mean)
        && let Some(out) = sum_in_place(v, l, mask)
    {
        return T::into_storage(mean_of(out, dims, mask, op));
    }
    // Move the reduced dims last and reduce rows.
    let mut perm: Vec<usize> = (0..rank).filter(|&d| !mask[d]).collect();
    perm.extend((0..rank).filter(|&d| mask[d]));
    let moved = gather_contiguous(v, &l.permute(&perm));
    let row: usize = (0..rank).filter(|&d| mask[d]).map(|d| dims[d]).product();
    let rows: usize = (0..rank).filter(|&d| !mask[d]).map(|d| dims[d]).product();
    let rows_of = |f: &dyn Fn(&[T]) -> T| -> Vec<T> { (0..rows).map(|r| f(&moved[r * row..(r + 1) * row])).collect() };
    // NaN wins, as in PyTorch: it propagates; the first extremum on ties.
    let best = |r: &[T], is_max: bool| -> usize {
        let mut best = 0;
        for (i, &x) in r.iter().enumerate() {
            let better = if is_max { x > r[best] } else { x < r[best] };
            if (better || x.is_nan()) && !r[best].is_nan() {
                best = i;
            }
        }
        best
    };
    match op {
        ReduceOp::Sum => T::into_storage(rows_of(&|r| r.iter().copied().sum())),
        ReduceOp::Mean => T::into_storage(mean_of(rows_of(&|r| r.iter().copied().sum()), dims, mask, op)),
        ReduceOp::Max => T::into_storage(rows_of(&|r| r[best(r, true)])),
        ReduceOp::Min => T::into_storage(rows_of(&|r| r[best(r, false)])),
        ReduceOp::ArgMax | ReduceOp::ArgMin => {
            let is_max = op == ReduceOp::ArgMax;
            CpuStorage::I64(
                (0..rows)
                    .map(|r| best(&moved[r * row..(r + 1) * row], is_max) as i64)
                    .collect(),
            )
        }
    }
}

/// Divides sums by the count for `Mean`.
fn mean_of<T: Float>(mut sums: Vec<T>, dims: &[usize], mask: &[bool], op: ReduceOp) -> Vec<T> {
    if op == ReduceOp::Mean {
        let count: usize = dims.iter().zip(mask).filter(|(_, m)| **m).map(|(d, _)| d).product();
        let inv = T::from_f64(1.0 / count as f64);
        sums.iter_mut().for_each(|s| *s *= inv);
    }
    sums
}

/// Σ over a leading block, or a leading and a trailing block, of a contiguous input, in place.
fn sum_in_place<T: Float>(v: &[T], l: &Layout, mask: &[bool]) -> Option<Vec<T>> {
    let range = l.contiguous_range()?;
    let v = &v[range];
    let d = l.dims();
    let rank = d.len();
    let lead = mask.iter().take_while(|&&m| m).count();
    // [A, B] → [B]: bias gradients of dense layers (Σ over the batch).
    if lead > 0 && lead < rank && mask[lead..].iter().all(|&m| !m) {
        let inner: usize = d[lead..].iter().product();
        let mut acc = vec![T::zero(); inner];
        for row in v.chunks_exact(inner.max(1)) {
            acc.iter_mut().zip(row).for_each(|(a, &x)| *a += x);
        }
        return Some(acc);
    }
    // [A, B, C] → [B]: conv bias gradients (Σ over n, h, w); row sums when A = 1.
    let kept_run = mask[lead..].iter().take_while(|&&m| !m).count();
    if kept_run > 0 && lead + kept_run < rank && mask[lead + kept_run..].iter().all(|&m| m) {
        let b: usize = d[lead..lead + kept_run].iter().product();
        let c: usize = d[lead + kept_run..].iter().product();
        let mut acc = vec![T::zero(); b];
        if b > 0 && c > 0 {
            for block in v.chunks_exact(b * c) {
                for (sum, run) in acc.iter_mut().zip(block.chunks_exact(c)) {
                    *sum += sum_run(run);
                }
            }
        }
        return Some(acc);
    }
    None
}

pub(crate) fn reduce(x: &CpuStorage, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<CpuStorage> {
    let mut mask = vec![false; l.dims().len()];
    for &d in dims {
        mask[d] = true;
    }
    Ok(match x {
        CpuStorage::F32(v) => reduce_float(v, l, &mask, op),
        CpuStorage::F64(v) => reduce_float(v, l, &mask, op),
        CpuStorage::I64(v) => {
            // Integers: Σ only (counting correct predictions), exact, wrapping as PyTorch.
            if op != ReduceOp::Sum {
                return Err(Error::UnsupportedDType {
                    op: "reduce",
                    dtype: DType::I64,
                });
            }
            let rank = l.dims().len();
            let mut perm: Vec<usize> = (0..rank).filter(|&d| !mask[d]).collect();
            perm.extend((0..rank).filter(|&d| mask[d]));
            let moved = gather_contiguous(v, &l.permute(&perm));
            let row: usize = (0..rank).filter(|&d| mask[d]).map(|d| l.dims()[d]).product();
            let rows: usize = (0..rank).filter(|&d| !mask[d]).map(|d| l.dims()[d]).product();
            CpuStorage::I64(
                (0..rows)
                    .map(|r| {
                        moved[r * row..(r + 1) * row]
                            .iter()
                            .fold(0i64, |a, &x| a.wrapping_add(x))
                    })
                    .collect(),
            )
        }
    })
}
