//! Joining and indexing: cat, stack, index_select, gather (and scatter_add, their backward).

use crate::error::{Error, Result, arg_err, shape_err};
use crate::storage::CpuStorage;
use crate::{DType, Shape, Tensor};

/// (outer, size, inner) of a contiguous shape split around `dim`.
fn split_at(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        dims[..dim].iter().product(),
        dims[dim],
        dims[dim + 1..].iter().product(),
    )
}

/// Reads an i64 index tensor, checking every entry against `size`.
fn read_indices(op: &'static str, index: &Tensor, dim: usize, size: usize) -> Result<Vec<usize>> {
    if index.dtype() != DType::I64 {
        return arg_err(op, format!("indices must be i64, got {:?}", index.dtype()));
    }
    index
        .to_vec::<i64>()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + size as i64 } else { i };
            if j < 0 || j >= size as i64 {
                Err(Error::IndexOutOfRange {
                    op,
                    index: i,
                    dim,
                    size,
                })
            } else {
                Ok(j as usize)
            }
        })
        .collect()
}

fn index_select_kernel<T: Copy + Default>(x: &[T], dims: &[usize], dim: usize, idx: &[usize]) -> Vec<T> {
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

fn index_add_kernel<T: Copy + Default + std::ops::AddAssign>(
    g: &[T],
    dims: &[usize],
    dim: usize,
    idx: &[usize],
) -> Vec<T> {
    let (outer, size, inner) = split_at(dims, dim);
    let mut out = vec![T::default(); outer * size * inner];
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
    out
}

/// For each position of `index` (contiguous, shape `idx_dims`), the flat offset into a
/// contiguous tensor of shape `dims` with the coordinate along `dim` replaced by the index.
fn gather_offsets(dims: &[usize], idx_dims: &[usize], dim: usize, idx: &[usize]) -> Vec<usize> {
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

macro_rules! any_dtype {
    ($storage:expr, |$v:ident| $body:expr) => {
        match $storage {
            CpuStorage::F32($v) => CpuStorage::F32($body),
            CpuStorage::F64($v) => CpuStorage::F64($body),
            CpuStorage::I64($v) => CpuStorage::I64($body),
        }
    };
}

impl Tensor {
    /// Joins tensors along `dim`; all other sizes must agree.  δxᵢ = the slice of δ that xᵢ filled.
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors.first().ok_or(Error::Argument {
            op: "cat",
            msg: "needs at least one tensor".into(),
        })?;
        let d = first.shape().dim("cat", dim)?;
        let mut total = 0;
        for t in tensors {
            let same = t.rank() == first.rank()
                && t.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !same {
                return shape_err(
                    "cat",
                    format!("{} and {} differ outside dimension {d}", first.shape(), t.shape()),
                );
            }
            if t.dtype() != first.dtype() {
                return Err(Error::DTypeMismatch {
                    op: "cat",
                    lhs: first.dtype(),
                    rhs: t.dtype(),
                });
            }
            total += t.dims()[d];
        }
        let mut dims = first.dims().to_vec();
        dims[d] = total;
        let device = Tensor::same_device("cat", tensors)?;
        let out = Tensor::full_on(0.0, dims, first.dtype(), device)?;
        let mut start = 0;
        let mut sizes = Vec::with_capacity(tensors.len());
        for t in tensors {
            let len = t.dims()[d];
            let view = out.with_layout(out.layout().narrow(d, start, len));
            #[cfg(feature = "cuda")]
            if device.is_cuda() {
                super::on_cuda::copy_into(&view, t)?;
                sizes.push(len);
                start += len;
                continue;
            }
            let src = t.storage();
            crate::cpu::strided::scatter_into(
                out.storage_mut().cpu_mut("cat")?,
                view.layout(),
                src.cpu("cat")?,
                t.layout(),
            )?;
            sizes.push(len);
            start += len;
        }
        Ok(out.record("cat", tensors, move |g| {
            let mut start = 0;
            let mut grads = Vec::with_capacity(sizes.len());
            for len in &sizes {
                grads.push(Some(g.narrow(d as isize, start, *len)?));
                start += len;
            }
            Ok(grads)
        }))
    }

    /// Stacks equally shaped tensors along a new dimension `dim`.
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors.first().ok_or(Error::Argument {
            op: "stack",
            msg: "needs at least one tensor".into(),
        })?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return shape_err(
                "stack",
                format!(
                    "all tensors must have one shape, got {} and {}",
                    first.shape(),
                    t.shape()
                ),
            );
        }
        let expanded = tensors.iter().map(|t| t.unsqueeze(dim)).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&expanded.iter().collect::<Vec<_>>(), dim)
    }

    /// The entries `indices` (1-D i64) along `dim`.  δx = δ added back at the selected indices.
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        let d = self.shape().dim("index_select", dim)?;
        if indices.rank() != 1 {
            return shape_err(
                "index_select",
                format!("indices must be 1-D, got shape {}", indices.shape()),
            );
        }
        let idx = read_indices("index_select", indices, d, self.dims()[d])?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return self.index_select_cuda(d, indices);
        }
        let x = self.contiguous()?.detach();
        let storage = x.storage();
        let off = x.layout().offset();
        let n = x.elem_count();
        let out = any_dtype!(storage.cpu("index_select")?, |v| index_select_kernel(
            &v[off..off + n],
            x.dims(),
            d,
            &idx
        ));
        drop(storage);
        let mut dims = self.dims().to_vec();
        dims[d] = idx.len();
        let out = Tensor::from_storage(out, dims);
        let in_dims = self.dims().to_vec();
        Ok(out.record("index_select", &[self], move |g| {
            let g = g.contiguous()?;
            let s = g.storage();
            let off = g.layout().offset();
            let out = match s.cpu("index_select")? {
                CpuStorage::F32(v) => CpuStorage::F32(index_add_kernel(&v[off..], &in_dims, d, &idx)),
                CpuStorage::F64(v) => CpuStorage::F64(index_add_kernel(&v[off..], &in_dims, d, &idx)),
                CpuStorage::I64(_) => {
                    return Err(Error::UnsupportedDType {
                        op: "index_select backward",
                        dtype: DType::I64,
                    });
                }
            };
            Ok(vec![Some(Tensor::from_storage(out, in_dims))])
        }))
    }

    /// `out[i][j][k] = x[i][index[i][j][k]][k]` for `dim = 1` (and likewise for other dims), as
    /// `torch.gather`. `index` has the rank of `x`, and no larger size outside `dim`.
    /// δx = scatter_add of δ at the gathered positions.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = self.shape().dim("gather", dim)?;
        let bad = index.rank() != self.rank()
            || index
                .dims()
                .iter()
                .zip(self.dims())
                .enumerate()
                .any(|(i, (a, b))| i != d && a > b);
        if bad {
            return shape_err(
                "gather",
                format!(
                    "index {} does not fit input {} along dimension {d}",
                    index.shape(),
                    self.shape()
                ),
            );
        }
        let idx = read_indices("gather", index, d, self.dims()[d])?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return self.gather_cuda(d, index);
        }
        let offsets = gather_offsets(self.dims(), index.dims(), d, &idx);
        let x = self.contiguous()?.detach();
        let storage = x.storage();
        let off = x.layout().offset();
        let out = any_dtype!(storage.cpu("gather")?, |v| offsets
            .iter()
            .map(|&o| v[off + o])
            .collect());
        drop(storage);
        let out = Tensor::from_storage(out, index.shape().clone());
        let (in_shape, dtype) = (self.shape().clone(), self.dtype());
        Ok(out.record("gather", &[self], move |g| {
            let g = g.to_vec_f64();
            let mut full = vec![0.0; in_shape.elem_count()];
            for (&o, gv) in offsets.iter().zip(g) {
                full[o] += gv;
            }
            Ok(vec![Some(Tensor::from_vec(full, in_shape)?.to_dtype(dtype)?)])
        }))
    }

    /// Splits into pieces of `size` along `dim` (the last may be smaller), as views.
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.shape().dim("split", dim)?;
        if size == 0 {
            return arg_err("split", "size must be positive");
        }
        let n = self.dims()[d];
        (0..n)
            .step_by(size)
            .map(|s| self.narrow(d as isize, s, size.min(n - s)))
            .collect()
    }
}

#[cfg(feature = "cuda")]
impl Tensor {
    /// index_select on a GPU (indices already checked); δx = index_add of δ.
    fn index_select_cuda(&self, d: usize, indices: &Tensor) -> Result<Tensor> {
        const OP: &str = "index_select";
        let device = self.device();
        let indices = indices.to_device(device)?.contiguous()?;
        let mut dims = self.dims().to_vec();
        dims[d] = indices.elem_count();
        let out = {
            let is = indices.storage();
            let ic = is.cuda(OP)?;
            super::on_cuda(self, OP, dims, |s, l| crate::cuda::ops::index_select(s, l, d, ic))?.expect("on a GPU")
        };
        let (in_shape, dtype) = (self.shape().clone(), self.dtype());
        Ok(out.record(OP, &[self], move |g| {
            let g = g.contiguous()?;
            let full = Tensor::full_on(0.0, in_shape.clone(), dtype, device)?;
            {
                let mut dst = full.storage_mut();
                let (gs, is) = (g.storage(), indices.storage());
                let crate::storage::Storage::Cuda(dst) = &mut *dst else {
                    unreachable!("made on the GPU above")
                };
                crate::cuda::ops::index_add(dst, in_shape.dims(), d, is.cuda(OP)?, gs.cuda(OP)?)?;
            }
            Ok(vec![Some(full)])
        }))
    }

    /// gather on a GPU (index already checked); δx = scatter_add of δ.
    fn gather_cuda(&self, d: usize, index: &Tensor) -> Result<Tensor> {
        const OP: &str = "gather";
        let device = self.device();
        let index = index.to_device(device)?.contiguous()?;
        let idims = index.dims().to_vec();
        let out = {
            let is = index.storage();
            let ic = is.cuda(OP)?;
            super::on_cuda(self, OP, idims.clone(), |s, l| {
                crate::cuda::ops::gather(s, l, d, ic, &idims)
            })?
            .expect("on a GPU")
        };
        let (in_shape, dtype) = (self.shape().clone(), self.dtype());
        Ok(out.record(OP, &[self], move |g| {
            let g = g.contiguous()?;
            let full = Tensor::full_on(0.0, in_shape.clone(), dtype, device)?;
            {
                let mut dst = full.storage_mut();
                let (gs, is) = (g.storage(), index.storage());
                let crate::storage::Storage::Cuda(dst) = &mut *dst else {
                    unreachable!("made on the GPU above")
                };
                crate::cuda::ops::scatter_add(dst, in_shape.dims(), d, is.cuda(OP)?, &idims, gs.cuda(OP)?)?;
            }
            Ok(vec![Some(full)])
        }))
    }
}
