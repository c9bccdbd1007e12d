//! Storage: the buffer behind one or more tensors, one variant per device.

#[cfg(feature = "cuda")]
use crate::error::Error;
use crate::error::Result;
use crate::{DType, Device};

/// A buffer in host memory.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::I64(_) => DType::I64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A zero-filled buffer.
    pub fn zeros(dtype: DType, len: usize) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; len]),
            DType::F64 => CpuStorage::F64(vec![0.0; len]),
            DType::I64 => CpuStorage::I64(vec![0; len]),
        }
    }
}

/// The storage of a tensor on some device: host memory always, NVIDIA GPUs with the `cuda`
/// feature. Kernels take their device's variant through [`Storage::cpu`] (or `cuda`), which is
/// an error, not a silent copy, when the tensor lives elsewhere.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.device(),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The host buffer, or an error naming `op` when the storage is on another device.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn cpu(&self, op: &'static str) -> Result<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s),
            #[cfg(feature = "cuda")]
            other => Err(Error::Unimplemented {
                op,
                device: other.device(),
            }),
        }
    }
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn cpu_mut(&mut self, op: &'static str) -> Result<&mut CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s),
            #[cfg(feature = "cuda")]
            other => Err(Error::Unimplemented {
                op,
                device: other.device(),
            }),
        }
    }
    /// The GPU buffer, or an error naming `op` when the storage is on the host.
    #[cfg(feature = "cuda")]
    pub fn cuda(&self, op: &'static str) -> Result<&crate::cuda::CudaStorage> {
        match self {
            Storage::Cuda(s) => Ok(s),
            other => Err(Error::Unimplemented {
                op,
                device: other.device(),
            }),
        }
    }
}
