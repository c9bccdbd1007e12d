//! [`CudaStorage`]: a typed, dense buffer of `len` elements on one GPU.
//!
//! The bytes live in an allocator [`Buffer`] (returned to the device's pool on drop). Element
//! `i` is at `device_ptr() + i · dtype.size_in_bytes()`. All copies are queued on the device's
//! one stream; [`CudaStorage::to_cpu`] waits for them.

use std::sync::Arc;

use crate::cuda::allocator::{self, Buffer};
use crate::cuda::context::{self, CudaDevice, Library};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::storage::CpuStorage;

/// A buffer of `len` elements of one dtype on one CUDA device.
#[derive(Debug)]
pub struct CudaStorage {
    buf: Buffer,
    dtype: DType,
    len: usize,
}

impl CudaStorage {
    /// `len` elements with undefined contents (every kernel writes all of its output).
    pub(crate) fn uninit(dev: &Arc<CudaDevice>, op: &'static str, dtype: DType, len: usize) -> Result<Self> {
        let buf = allocator::alloc(dev, op, len * dtype.size_in_bytes())?;
        Ok(CudaStorage { buf, dtype, len })
    }

    /// A copy of `cpu` on device `ordinal`.
    pub fn from_cpu(ordinal: usize, cpu: &CpuStorage) -> Result<Self> {
        const OP: &str = "to_device";
        let dev = context::device(ordinal)?;
        let out = Self::uninit(&dev, OP, cpu.dtype(), cpu.len())?;
        dev.bind(OP)?;
        let stream = dev.stream().cu_stream();
        // SAFETY: the destination holds `len` elements of this dtype. NOTE: from pageable host
        // memory the driver stages the data before returning, so `cpu` may be dropped at once.
        let r = unsafe {
            match cpu {
                _ if cpu.is_empty() => Ok(()),
                CpuStorage::F32(v) => cudarc::driver::result::memcpy_htod_async(out.device_ptr(), v, stream),
                CpuStorage::F64(v) => cudarc::driver::result::memcpy_htod_async(out.device_ptr(), v, stream),
                CpuStorage::I64(v) => cudarc::driver::result::memcpy_htod_async(out.device_ptr(), v, stream),
            }
        };
        r.map_err(|e| dev.err(OP, Library::Driver, e))?;
        Ok(out)
    }

    /// A copy in host memory (waits for the work queued on the device).
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        const OP: &str = "to_cpu";
        let dev = self.cuda_device();
        let mut out = CpuStorage::zeros(self.dtype, self.len);
        if self.len == 0 {
            return Ok(out);
        }
        dev.bind(OP)?;
        let stream = dev.stream().cu_stream();
        let src = self.device_ptr();
        // SAFETY: `out` has exactly `len` elements of this dtype; we synchronise before it is read.
        let r = unsafe {
            match &mut out {
                CpuStorage::F32(v) => cudarc::driver::result::memcpy_dtoh_async(v, src, stream),
                CpuStorage::F64(v) => cudarc::driver::result::memcpy_dtoh_async(v, src, stream),
                CpuStorage::I64(v) => cudarc::driver::result::memcpy_dtoh_async(v, src, stream),
            }
        };
        r.map_err(|e| dev.err(OP, Library::Driver, e))?;
        dev.synchronize()?;
        Ok(out)
    }

    /// `len` zeros (all-zero bits, which is 0 for f32, f64 and i64).
    pub fn zeros(ordinal: usize, dtype: DType, len: usize) -> Result<Self> {
        const OP: &str = "zeros";
        let dev = context::device(ordinal)?;
        let out = Self::uninit(&dev, OP, dtype, len)?;
        if len > 0 {
            dev.bind(OP)?;
            // SAFETY: the buffer holds at least `len · size` bytes.
            unsafe {
                cudarc::driver::result::memset_d8_async(
                    out.device_ptr(),
                    0,
                    len * dtype.size_in_bytes(),
                    dev.stream().cu_stream(),
                )
            }
            .map_err(|e| dev.err(OP, Library::Driver, e))?;
        }
        Ok(out)
    }

    /// `len` copies of `value` (converted to `dtype`; truncated toward zero for i64).
    pub fn full(ordinal: usize, dtype: DType, len: usize, value: f64) -> Result<Self> {
        let dev = context::device(ordinal)?;
        let mut out = Self::uninit(&dev, "full", dtype, len)?;
        crate::cuda::ops::fill(&mut out, value)?;
        Ok(out)
    }

    /// A copy on the same device.
    pub fn try_clone(&self) -> Result<Self> {
        const OP: &str = "clone";
        let dev = self.cuda_device();
        let out = Self::uninit(dev, OP, self.dtype, self.len)?;
        if self.len > 0 {
            dev.bind(OP)?;
            // SAFETY: both buffers hold `len` elements of this dtype.
            unsafe {
                cudarc::driver::result::memcpy_dtod_async(
                    out.device_ptr(),
                    self.device_ptr(),
                    self.len * self.dtype.size_in_bytes(),
                    dev.stream().cu_stream(),
                )
            }
            .map_err(|e| dev.err(OP, Library::Driver, e))?;
        }
        Ok(out)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn ordinal(&self) -> usize {
        self.buf.device().ordinal()
    }
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal())
    }
    /// The per-device state (stream, handles) this buffer belongs to.
    pub fn cuda_device(&self) -> &Arc<CudaDevice> {
        self.buf.device()
    }
    /// The device address of element 0 (a `CUdeviceptr`, usable as a kernel argument).
    pub fn device_ptr(&self) -> u64 {
        self.buf.ptr()
    }
    /// The device address of element `index`.
    pub fn elem_ptr(&self, index: usize) -> u64 {
        self.buf.ptr() + (index * self.dtype.size_in_bytes()) as u64
    }
}
