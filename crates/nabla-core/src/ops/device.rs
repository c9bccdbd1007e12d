//! Moving tensors between devices.
//!
//! `to_device` is an op like any other (PyTorch's `x.to(device)`): a new tensor on the target
//! device, recorded for autograd so that δ flows back to the source device. `move_to_` moves a
//! buffer in place, for parameters: every handle and view sharing the buffer follows it, so a
//! model's layers, its optimiser and its `GradStore` keys stay valid.

use crate::error::{Error, Result};
use crate::{Device, Tensor};

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
        let src = self.contiguous()?;
        let range = src.layout().contiguous_range().expect("contiguous");
        let moved = src.storage().copy_to(range, device)?;
        let out = Tensor::from_any_storage(moved, self.shape().clone());
        Ok(out.record("to_device", &[self], move |g| Ok(vec![Some(g.to_device(from)?)])))
    }

    /// Moves this tensor's buffer to `device` in place: every handle and view that shares it
    /// follows (a parameter keeps its identity). Nothing is recorded for autograd.
    pub fn move_to_(&self, device: Device) -> Result<()> {
        if self.device() == device {
            return Ok(());
        }
        // The whole buffer moves, whatever part of it this handle's layout covers.
        let mut storage = self.storage_mut();
        let len = storage.len();
        *storage = storage.copy_to(0..len, device)?;
        Ok(())
    }

    /// Fails unless every tensor is on one device; returns it.
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
