//! Walking strided layouts: copy to contiguous, element-wise maps with broadcasting.

use crate::error::{Error, Result};
use crate::storage::CpuStorage;
use crate::{Layout, WithDType};
use rayon::prelude::*;

/// Below this many elements, element-wise kernels stay on one thread.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// The elements of `layout` in row-major order, as a new vector.
pub fn gather_contiguous<T: Copy>(data: &[T], layout: &Layout) -> Vec<T> {
    if let Some(r) = layout.contiguous_range() {
        return data[r].to_vec();
    }
    let (dims, strides) = layout.collapsed();
    let inner = *dims.last().unwrap();
    let inner_stride = *strides.last().unwrap();
    let mut out = Vec::with_capacity(layout.elem_count());
    for_each_row(&dims, &strides, layout.offset(), |base| {
        if inner_stride == 1 {
            out.extend_from_slice(&data[base..base + inner]);
        } else {
            out.extend((0..inner).map(|i| data[base + i * inner_stride]));
        }
    });
    out
}

/// The elements `layout` sees, borrowed when they are one dense run of `data`, else gathered.
/// NOTE: the kernels that index into a whole tensor (index_select on a data set of 188 MB per
/// batch) must not copy it: an unconditional gather made MLP training 10× slower.
pub fn dense_or_gathered<'a, T: Copy>(data: &'a [T], layout: &Layout) -> std::borrow::Cow<'a, [T]> {
    match layout.contiguous_range() {
        Some(r) => std::borrow::Cow::Borrowed(&data[r]),
        None => std::borrow::Cow::Owned(gather_contiguous(data, layout)),
    }
}

/// Calls `f(offset)` with the storage offset of the start of every innermost row.
#[inline]
pub fn for_each_row(dims: &[usize], strides: &[usize], offset: usize, mut f: impl FnMut(usize)) {
    let outer = &dims[..dims.len() - 1];
    if outer.contains(&0) || dims.last() == Some(&0) {
        return;
    }
    let mut index = vec![0usize; outer.len()];
    let mut base = offset;
    loop {
        f(base);
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < outer[d] {
                base += strides[d];
                break;
            }
            base -= (outer[d] - 1) * strides[d];
            index[d] = 0;
        }
    }
}

/// Writes the values of `src` (laid out by `src_layout`) into `dst` at the positions of `dst_layout`.
pub fn scatter_into(dst: &mut CpuStorage, dst_layout: &Layout, src: &CpuStorage, src_layout: &Layout) -> Result<()> {
    fn go<T: Copy>(dst: &mut [T], dl: &Layout, src: &[T], sl: &Layout) {
        let values = dense_or_gathered(src, sl);
        if values.is_empty() {
            return;
        }
        if let Some(r) = dl.contiguous_range() {
            dst[r].copy_from_slice(&values);
            return;
        }
        // Row by row (as `gather_contiguous` reads): a slice copy where the rows are dense, as
        // into `cat`'s output along a channel dimension (ResNet's option-A shortcut).
        let (dims, strides) = dl.collapsed();
        let (inner, inner_stride) = (*dims.last().unwrap(), *strides.last().unwrap());
        let mut rows = values.chunks_exact(inner);
        for_each_row(&dims, &strides, dl.offset(), |base| {
            let row = rows.next().expect("as many rows as the layout has");
            if inner_stride == 1 {
                dst[base..base + inner].copy_from_slice(row);
            } else {
                for (i, &v) in row.iter().enumerate() {
                    dst[base + i * inner_stride] = v;
                }
            }
        });
    }
    match (dst, src) {
        (CpuStorage::F32(d), CpuStorage::F32(s)) => go(d, dst_layout, s, src_layout),
        (CpuStorage::F64(d), CpuStorage::F64(s)) => go(d, dst_layout, s, src_layout),
        (CpuStorage::I64(d), CpuStorage::I64(s)) => go(d, dst_layout, s, src_layout),
        (d, s) => {
            return Err(Error::DTypeMismatch {
                op: "copy_",
                lhs: d.dtype(),
                rhs: s.dtype(),
            });
        }
    }
    Ok(())
}

/// `out[i] = f(x[i])` over a strided input, in row-major order.
pub fn unary_map<T: Copy + Send + Sync, U: Copy + Send + Sync>(
    data: &[T],
    layout: &Layout,
    f: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    if let Some(r) = layout.contiguous_range() {
        let src = &data[r];
        if src.len() >= PARALLEL_THRESHOLD {
            return src.par_iter().with_min_len(4096).map(|&x| f(x)).collect();
        }
        return src.iter().map(|&x| f(x)).collect();
    }
    gather_contiguous(data, layout).into_iter().map(f).collect()
}

/// `out[i] = f(a[i], b[i])` where both layouts already have the output's shape (broadcast
/// dimensions have stride 0).
pub fn binary_map<T: Copy + Send + Sync, U: Copy + Send + Sync + Default>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    f: impl Fn(T, T) -> U + Sync,
) -> Vec<U> {
    let n = al.elem_count();
    if let (Some(ra), Some(rb)) = (al.contiguous_range(), bl.contiguous_range()) {
        let (a, b) = (&a[ra], &b[rb]);
        if n >= PARALLEL_THRESHOLD {
            return a
                .par_iter()
                .zip(b.par_iter())
                .with_min_len(4096)
                .map(|(&x, &y)| f(x, y))
                .collect();
        }
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    // Walk the output shape row by row; each operand's innermost stride is 0 or any value.
    let dims = al.dims();
    let rank = dims.len();
    if rank == 0 {
        return vec![f(a[al.offset()], b[bl.offset()])];
    }
    let inner = dims[rank - 1];
    let (sa, sb) = (al.strides()[rank - 1], bl.strides()[rank - 1]);
    let mut out = vec![U::default(); n];
    if n == 0 {
        return out;
    }
    let row = |out_row: &mut [U], ia: usize, ib: usize| match (sa, sb) {
        (1, 1) => out_row
            .iter_mut()
            .zip(a[ia..ia + inner].iter().zip(&b[ib..ib + inner]))
            .for_each(|(o, (&x, &y))| *o = f(x, y)),
        (1, 0) => {
            let y = b[ib];
            out_row
                .iter_mut()
                .zip(&a[ia..ia + inner])
                .for_each(|(o, &x)| *o = f(x, y))
        }
        (0, 1) => {
            let x = a[ia];
            out_row
                .iter_mut()
                .zip(&b[ib..ib + inner])
                .for_each(|(o, &y)| *o = f(x, y))
        }
        _ => out_row
            .iter_mut()
            .enumerate()
            .for_each(|(i, o)| *o = f(a[ia + i * sa], b[ib + i * sb])),
    };
    let outer_dims = &dims[..rank - 1];
    let row_starts = |r: usize| -> (usize, usize) {
        let (mut ia, mut ib, mut rem) = (al.offset(), bl.offset(), r);
        for d in (0..outer_dims.len()).rev() {
            let i = rem % outer_dims[d];
            rem /= outer_dims[d];
            ia += i * al.strides()[d];
            ib += i * bl.strides()[d];
        }
        (ia, ib)
    };
    if n >= PARALLEL_THRESHOLD && inner > 0 {
        out.par_chunks_mut(inner).enumerate().for_each(|(r, o)| {
            let (ia, ib) = row_starts(r);
            row(o, ia, ib)
        });
    } else {
        for (r, o) in out.chunks_mut(inner.max(1)).enumerate() {
            let (ia, ib) = row_starts(r);
            row(o, ia, ib)
        }
    }
    out
}

/// Converts between element types (f32 ↔ f64 ↔ i64, truncating toward zero into i64).
pub fn cast<T: WithDType, U: WithDType>(data: &[T], layout: &Layout) -> Vec<U> {
    unary_map(data, layout, |x| U::from_f64(x.to_f64()))
}
