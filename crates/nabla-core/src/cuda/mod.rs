//! The CUDA device (feature `cuda`): contexts, a caching allocator and kernels. cudarc loads
//! libcuda, cuBLAS, cuDNN and NVRTC at run time, so this compiles without the CUDA toolkit.
//!
//! The model, in one paragraph: each device ordinal has one process-wide [`context::CudaDevice`]
//! (created on first use) holding the primary context and **one stream**. Every kernel, copy,
//! cuBLAS and cuDNN call of that device is enqueued on that stream, so work runs in program
//! order and a buffer freed by the host can be reused by the next op without waiting (the
//! caching [`allocator`] relies on this). The host waits only when it reads data back
//! ([`CudaStorage::to_cpu`]) or calls [`synchronize`].
//!
//! - [`context`]: device state, library probing, error mapping, [`is_available`].
//! - [`allocator`]: the caching allocator, [`memory_stats`], [`empty_cache`].
//! - [`storage`]: [`CudaStorage`], a typed buffer on one device.
//! - [`kernels`]: the CUDA C sources (NVRTC, compiled once per process and device).
//! - [`ops`]: element-wise, broadcasting, reductions, softmax, losses, dropout, optimisers.
//! - [`matmul`]: batched products through cuBLAS.
//! - [`cudnn`]: convolution, pooling, LRN and batch norm through cuDNN.

pub mod allocator;
mod backend;
pub mod context;
pub mod cudnn;
pub mod kernels;
pub mod matmul;
pub mod ops;
pub mod storage;

pub use allocator::{MemoryStats, empty_cache, memory_stats, reset_peak};
pub use context::{device_count, is_available, synchronize};
pub use cudnn::{conv_tf32, set_conv_tf32};
pub use matmul::{matmul_tf32, set_matmul_tf32};
pub use storage::CudaStorage;
