//! Moving tensors between devices.
//!
//! `to_device` is an op like any other (PyTorch's `x.to(device)`): a new tensor on the target
//! device, recorded for autograd so that δ flows back to the source device. `move_to_` moves a
//! buffer in place, for parameters: every handle and view sharing the buffer follows it, so a
//! model's layers, its optimiser and its `GradStore` keys stay valid.

use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::{Device, Tensor};

/// A copy of `storage` (the part `t`'s layout covers, made contiguous) on `device`.
fn storage_on(t: &Tensor, device: Device) -> Result<Storage> {
    let src = t.contiguous()?;
    let storage = src.storage();
    let range = src.layout().contiguous_range().expect("contiguous");
    match (&*storage, device) {
        (Storage::Cpu(s), Device::Cpu) => Ok(Storage::Cpu(slice_of(s, range))),
        #[cfg(feature = "cuda")]
        (Storage::Cpu(s), Device::Cuda(n)) => Ok(Storage::Cuda(crate::cuda::CudaStorage::from_cpu(
            n,
            &slice_of(s, range),
        )?)),
        #[cfg(feature = "cuda")]
        (Storage::Cuda(s), Device::Cpu) => Ok(Storage::Cpu(slice_of(&s.to_cpu()?, range))),
        #[cfg(feature = "cuda")]
        (Storage::Cuda(s), Device::Cuda(n)) => {
            // Between GPUs through the host: simple, and rare in this framework (no model parallelism).
            let host = slice_of(&s.to_cpu()?, range);
            Ok(Storage::Cuda(crate::cuda::CudaStorage::from_cpu(n, &host)?))
        }
        #[cfg(not(feature = "cuda"))]
        (_, Device::Cuda(_)) => Err(not_built()),
    }
}

/// The values of `range`, as a buffer of their own.
fn slice_of(s: &crate::storage::CpuStorage, range: std::ops::Range<usize>) -> crate::storage::CpuStorage {
    use crate::storage::CpuStorage;
    match s {
        CpuStorage::F32(v) => CpuStorage::F32(v[range].to_vec()),
        CpuStorage::F64(v) => CpuStorage::F64(v[range].to_vec()),
        CpuStorage::I64(v) => CpuStorage::I64(v[range].to_vec()),
    }
}

#[cfg(not(feature = "cuda"))]
fn not_built() -> Error {
    Error::Argument {
        op: "to_device",
        msg: "this build of nabla has no CUDA support: rebuild with `--features cuda`".into(),
    }
}

impl Tensor {
    /// This tensor on `device` (itself when it is already there). Differentiable: δ is moved
    /// back to this tensor's device.
    ///
    /// ```
    /// use nabla_core::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1f32, 2.], (2,)).unwrap();
    /// assert_eq!(t.to_device(Device::Cpu).unwrap().to_vec::<f32>().unwrap(), vec![1., 2.]);
    /// # #[cfg(not(feature = "cuda"))]
    /// assert!(t.to_device(Device::Cuda(0)).is_err());
    /// ```
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        let from = self.device();
        if from == device {
            return Ok(self.clone());
        }
        let out = Tensor::from_any_storage(storage_on(self, device)?, self.shape().clone());
        Ok(out.record("to_device", &[self], move |g| Ok(vec![Some(g.to_device(from)?)])))
    }

    /// Moves this tensor's buffer to `device` in place: every handle and view that shares it
    /// follows (a parameter keeps its identity). Nothing is recorded for autograd.
    pub fn move_to_(&self, device: Device) -> Result<()> {
        if self.device() == device {
            return Ok(());
        }
        #[cfg(not(feature = "cuda"))]
        return Err(not_built());
        #[cfg(feature = "cuda")]
        {
            // The whole buffer moves, whatever part of it this handle's layout covers.
            let mut storage = self.storage_mut();
            let moved = match (&*storage, device) {
                (Storage::Cpu(s), Device::Cuda(n)) => Storage::Cuda(crate::cuda::CudaStorage::from_cpu(n, s)?),
                (Storage::Cuda(s), Device::Cpu) => Storage::Cpu(s.to_cpu()?),
                (Storage::Cuda(s), Device::Cuda(n)) => {
                    Storage::Cuda(crate::cuda::CudaStorage::from_cpu(n, &s.to_cpu()?)?)
                }
                (Storage::Cpu(_), Device::Cpu) => unreachable!("same device returned above"),
            };
            *storage = moved;
            Ok(())
        }
    }

    /// Fails unless every tensor is on one device; returns it.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn same_device(op: &'static str, tensors: &[&Tensor]) -> Result<Device> {
        let first = tensors.first().map_or(Device::Cpu, |t| t.device());
        for t in tensors.iter().skip(1) {
            let d = t.device();
            if d != first {
                return Err(Error::DeviceMismatch { op, lhs: first, rhs: d });
            }
        }
        Ok(first)
    }
}
