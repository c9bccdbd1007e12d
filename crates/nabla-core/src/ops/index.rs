//! Joining and indexing: cat, stack, index_select, gather (and scatter_add, their backward).

use crate::error::{Error, Result, arg_err, shape_err};
use crate::{DType, Tensor};

/// An index tensor checked entry by entry against `size`, negative entries counted from the
/// end (as PyTorch), as a fresh contiguous i64 tensor on `device`.
///
/// NOTE: the indices are read on the host, also for a GPU tensor: one copy buys the same
/// errors and the same negative-index rule on every device, and a view's offset and strides
/// cannot be lost on the way to a kernel.
fn checked_indices(op: &'static str, index: &Tensor, dim: usize, size: usize, device: crate::Device) -> Result<Tensor> {
    if index.dtype() != DType::I64 {
        return arg_err(op, format!("indices must be i64, got {:?}", index.dtype()));
    }
    let idx = index
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
                Ok(j)
            }
        })
        .collect::<Result<Vec<i64>>>()?;
    Tensor::from_vec(idx, index.shape().clone())?.to_device(device)
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
            t.storage()
                .copy_strided(t.layout(), &mut out.storage_mut(), view.layout())?;
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

    /// The entries `indices` (1-D i64; negative counts from the end) along `dim`.
    /// δx = δ added back at the selected indices (index_add).
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        let d = self.shape().dim("index_select", dim)?;
        if indices.rank() != 1 {
            return shape_err(
                "index_select",
                format!("indices must be 1-D, got shape {}", indices.shape()),
            );
        }
        let idx = checked_indices("index_select", indices, d, self.dims()[d], self.device())?;
        let mut dims = self.dims().to_vec();
        dims[d] = idx.elem_count();
        let out = self.storage().index_select(self.layout(), d, &idx.storage())?;
        let out = Tensor::from_any_storage(out, dims);
        let in_shape = self.shape().clone();
        Ok(out.record("index_select", &[self], move |g| {
            let full = Tensor::full_on(0.0, in_shape.clone(), g.dtype(), g.device())?;
            full.storage_mut()
                .index_add(in_shape.dims(), d, &idx.storage(), &g.storage(), g.layout())?;
            Ok(vec![Some(full)])
        }))
    }

    /// `out[i][j][k] = x[i][index[i][j][k]][k]` for `dim = 1` (and likewise for other dims), as
    /// `torch.gather`. `index` has the rank of `x`, and no larger size outside `dim`.
    /// δx = scatter_add of δ at the gathered positions.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = self.shape().dim("gather", dim)?;
        self.check_index_shape("gather", d, index)?;
        let idx = checked_indices("gather", index, d, self.dims()[d], self.device())?;
        let out = self.storage().gather(self.layout(), d, &idx.storage(), idx.dims())?;
        let out = Tensor::from_any_storage(out, idx.shape().clone());
        let in_shape = self.shape().clone();
        Ok(out.record("gather", &[self], move |g| {
            let zeros = Tensor::full_on(0.0, in_shape.clone(), g.dtype(), g.device())?;
            Ok(vec![Some(zeros.scatter_add(d as isize, &idx, g)?)])
        }))
    }

    /// A copy of this tensor with `src[i][j][k]` added at `[i][index[i][j][k]][k]` for `dim = 1`
    /// (and likewise for other dims), as `torch.scatter_add`; `index` and `src` have one shape.
    /// δself = δ, δsrc = gather of δ at the same positions.
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let d = self.shape().dim("scatter_add", dim)?;
        self.check_index_shape("scatter_add", d, index)?;
        if src.shape() != index.shape() || src.dtype() != self.dtype() {
            return shape_err(
                "scatter_add",
                format!(
                    "src {} {:?} must have the index's shape {} and the input's dtype {:?}",
                    src.shape(),
                    src.dtype(),
                    index.shape(),
                    self.dtype()
                ),
            );
        }
        let idx = checked_indices("scatter_add", index, d, self.dims()[d], self.device())?;
        let out = self.detach().contiguous_copy()?;
        out.storage_mut()
            .scatter_add(self.dims(), d, &idx.storage(), idx.dims(), &src.storage(), src.layout())?;
        Ok(out.record("scatter_add", &[self, src], move |g| {
            Ok(vec![Some(g.clone()), Some(g.gather(d as isize, &idx)?)])
        }))
    }

    fn check_index_shape(&self, op: &'static str, d: usize, index: &Tensor) -> Result<()> {
        let bad = index.rank() != self.rank()
            || index
                .dims()
                .iter()
                .zip(self.dims())
                .enumerate()
                .any(|(i, (a, b))| i != d && a > b);
        if bad {
            return shape_err(
                op,
                format!(
                    "index {} does not fit input {} along dimension {d}",
                    index.shape(),
                    self.shape()
                ),
            );
        }
        Ok(())
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
