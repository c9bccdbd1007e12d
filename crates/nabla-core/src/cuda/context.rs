//! Per-device state, created once per process on first use: the primary context, one stream,
//! the compiled kernels, and (lazily) a cuBLAS and a cuDNN handle.
//!
//! Libraries are found at run time. cudarc *panics* when a library cannot be loaded or lacks a
//! symbol, so every library is probed first ([`Library::require`]) and the first calls into it
//! run under `catch_unwind`: a missing library is an [`Error::Cuda`] naming it, never a panic.

use std::collections::HashMap;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::sys as blas_sys;
use cudarc::cudnn::sys as dnn_sys;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};

use crate::cuda::allocator::Pool;
use crate::cuda::kernels::{self, KernelModule};
use crate::device::Device;
use crate::error::{Error, Result};

/// A shared library that the CUDA backend loads at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// libcuda, the driver (comes with the NVIDIA driver, not the toolkit).
    Driver,
    /// libnvrtc, the run-time compiler of the element-wise kernels.
    Nvrtc,
    /// libcublas, for matrix products.
    Cublas,
    /// libcudnn, for convolution, pooling, LRN and batch norm.
    Cudnn,
}

impl Library {
    /// The name cudarc searches for (`lib{name}.so`, `lib{name}.so.13`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Library::Driver => "cuda",
            Library::Nvrtc => "nvrtc",
            Library::Cublas => "cublas",
            Library::Cudnn => "cudnn",
        }
    }

    /// True when the library can be loaded. Probed once per process; never panics.
    pub fn is_present(self) -> bool {
        static PROBES: [OnceLock<bool>; 4] = [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = match self {
            Library::Driver => &PROBES[0],
            Library::Nvrtc => &PROBES[1],
            Library::Cublas => &PROBES[2],
            Library::Cudnn => &PROBES[3],
        };
        *slot.get_or_init(|| {
            // SAFETY: `is_culib_present` only tries `dlopen` on candidate names.
            let probe = || unsafe {
                match self {
                    Library::Driver => cudarc::driver::sys::is_culib_present(),
                    Library::Nvrtc => cudarc::nvrtc::sys::is_culib_present(),
                    Library::Cublas => cudarc::cublas::sys::is_culib_present(),
                    Library::Cudnn => cudarc::cudnn::sys::is_culib_present(),
                }
            };
            catch_unwind(probe).unwrap_or(false)
        })
    }

    /// `Ok(())` when the library loads, otherwise an error that names it and what to do.
    pub fn require(self, op: &'static str, device: Device) -> Result<()> {
        if self.is_present() {
            return Ok(());
        }
        let candidates = cudarc::get_lib_name_candidates(self.name());
        Err(Error::Cuda {
            op,
            device,
            msg: format!(
                "could not load the {} library (searched {}); install it and put its folder on LD_LIBRARY_PATH",
                self.describe(),
                candidates.join(", ")
            ),
        })
    }

    fn describe(self) -> &'static str {
        match self {
            Library::Driver => "CUDA driver (libcuda)",
            Library::Nvrtc => "NVRTC (libnvrtc)",
            Library::Cublas => "cuBLAS (libcublas)",
            Library::Cudnn => "cuDNN (libcudnn)",
        }
    }
}

/// Maps any cudarc error (driver, NVRTC, cuBLAS, cuDNN) to [`Error::Cuda`], prefixed with the
/// library that reported it.
pub(crate) fn cuda_err(op: &'static str, ordinal: usize, lib: Library, e: impl Display) -> Error {
    let mut msg = format!("{}: {e}", lib.describe());
    let text = msg.to_ascii_uppercase();
    // NOTE: NVRTC newer than the driver writes PTX the driver's JIT cannot read.
    if text.contains("UNSUPPORTED_PTX_VERSION") {
        msg.push_str(" (libnvrtc is newer than the driver: use the NVRTC of the driver's CUDA version)");
    }
    if text.contains("OUT_OF_MEMORY") || text.contains("ALLOC_FAILED") {
        msg.push_str(" (out of device memory: try a smaller batch, or cuda::empty_cache)");
    }
    Error::Cuda {
        op,
        device: Device::Cuda(ordinal),
        msg,
    }
}

/// Runs `f`, turning a panic inside cudarc (a missing symbol in an old library) into an error.
pub(crate) fn guarded<T>(op: &'static str, ordinal: usize, lib: Library, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic inside cudarc".into());
            Err(cuda_err(op, ordinal, lib, text))
        }
    }
}

/// A raw handle owned by one device; used only under that device's mutex.
struct Handle<H>(H);
// SAFETY: cuBLAS and cuDNN handles may move between threads; the mutex around them makes sure
// that only one thread uses a handle at a time, which is what both libraries require.
unsafe impl<H> Send for Handle<H> {}

/// The state of one GPU: context, stream, allocator pool, kernels and library handles.
pub struct CudaDevice {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: Option<&'static str>,
    pub(crate) pool: Mutex<Pool>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    blas: Mutex<Option<Handle<blas_sys::cublasHandle_t>>>,
    dnn: Mutex<Option<Handle<dnn_sys::cudnnHandle_t>>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaDevice(cuda:{})", self.ordinal)
    }
}

fn registry() -> &'static Mutex<HashMap<usize, Arc<CudaDevice>>> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
    DEVICES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Locks a mutex, ignoring poisoning (the data behind these mutexes stays consistent: every
/// critical section is a single insert, remove or lookup).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The device state for `ordinal` if it was already created (never creates one).
pub(crate) fn existing_device(ordinal: usize) -> Option<Arc<CudaDevice>> {
    lock(registry()).get(&ordinal).cloned()
}

/// The number of CUDA devices, or an error naming the missing driver.
pub fn device_count() -> Result<usize> {
    const OP: &str = "cuda::device_count";
    Library::Driver.require(OP, Device::Cuda(0))?;
    guarded(OP, 0, Library::Driver, || {
        CudaContext::device_count()
            .map(|n| n.max(0) as usize)
            .map_err(|e| cuda_err(OP, 0, Library::Driver, e))
    })
}

/// True when libcuda loads and at least one device answers. Never panics.
///
/// ```
/// // On a machine without a GPU this is simply false.
/// let _ = nabla_core::cuda::is_available();
/// ```
pub fn is_available() -> bool {
    device_count().map(|n| n > 0).unwrap_or(false)
}

/// Waits until all work queued on device `ordinal` has finished.
pub fn synchronize(ordinal: usize) -> Result<()> {
    device(ordinal)?.synchronize()
}

/// The device state for `ordinal`, created on first use and kept for the life of the process.
pub fn device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    const OP: &str = "cuda::device";
    if let Some(d) = lock(registry()).get(&ordinal) {
        return Ok(d.clone());
    }
    Library::Driver.require(OP, Device::Cuda(ordinal))?;
    let count = device_count()?;
    if ordinal >= count {
        return Err(Error::Cuda {
            op: OP,
            device: Device::Cuda(ordinal),
            msg: format!("no such device: {count} CUDA device(s) visible"),
        });
    }
    let created = guarded(OP, ordinal, Library::Driver, || {
        let map = |e| cuda_err(OP, ordinal, Library::Driver, e);
        let ctx = CudaContext::new(ordinal).map_err(map)?;
        let stream = ctx.new_stream().map_err(map)?;
        let arch = ctx
            .compute_capability()
            .ok()
            .and_then(|(ma, mi)| kernels::arch_name(ma, mi));
        Ok(CudaDevice {
            ordinal,
            ctx,
            stream,
            arch,
            pool: Mutex::new(Pool::default()),
            functions: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            blas: Mutex::new(None),
            dnn: Mutex::new(None),
        })
    })?;
    // Another thread may have raced us here; keep the first one.
    let mut reg = lock(registry());
    Ok(reg.entry(ordinal).or_insert_with(|| Arc::new(created)).clone())
}

impl CudaDevice {
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }
    /// The cudarc context (for calls this module does not wrap).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    /// The one stream on which all of this device's work is queued.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
    /// The `compute_XY` that kernels are compiled for, when the device's capability is known.
    pub fn arch(&self) -> Option<&'static str> {
        self.arch
    }

    /// Makes this device's context current on the calling thread (needed before raw driver,
    /// cuBLAS and cuDNN calls; cudarc's safe API does it itself).
    pub(crate) fn bind(&self, op: &'static str) -> Result<()> {
        self.ctx.bind_to_thread().map_err(|e| self.err(op, Library::Driver, e))
    }

    pub(crate) fn err(&self, op: &'static str, lib: Library, e: impl Display) -> Error {
        cuda_err(op, self.ordinal, lib, e)
    }

    /// Waits for all queued work on this device.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| self.err("cuda::synchronize", Library::Driver, e))
    }

    /// The kernel `name` of `module`, compiled by NVRTC on first use and cached.
    pub(crate) fn function(&self, op: &'static str, module: &'static KernelModule, name: &str) -> Result<CudaFunction> {
        if let Some(f) = lock(&self.functions).get(name) {
            return Ok(f.clone());
        }
        let loaded = lock(&self.modules).get(module.name).cloned();
        let m = match loaded {
            Some(m) => m,
            None => {
                Library::Nvrtc.require(op, self.device())?;
                let ptx = guarded(op, self.ordinal, Library::Nvrtc, || {
                    kernels::compile(module, self.arch).map_err(|e| self.err(op, Library::Nvrtc, e))
                })?;
                let m = self
                    .ctx
                    .load_module(ptx)
                    .map_err(|e| self.err(op, Library::Driver, format!("loading module {}: {e}", module.name)))?;
                lock(&self.modules).entry(module.name).or_insert(m).clone()
            }
        };
        let f = m.load_function(name).map_err(|e| {
            self.err(
                op,
                Library::Driver,
                format!("kernel {name} in module {}: {e}", module.name),
            )
        })?;
        lock(&self.functions).insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// Runs `f` with this device's cuBLAS handle (created on first use, bound to the stream).
    pub(crate) fn with_cublas<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(blas_sys::cublasHandle_t) -> Result<R>,
    ) -> Result<R> {
        Library::Cublas.require(op, self.device())?;
        self.bind(op)?;
        let mut guard = lock(&self.blas);
        if guard.is_none() {
            let h = guarded(op, self.ordinal, Library::Cublas, || {
                let h = cudarc::cublas::result::create_handle().map_err(|e| self.err(op, Library::Cublas, e))?;
                // SAFETY: `h` was just created and the stream lives as long as this device.
                unsafe { cudarc::cublas::result::set_stream(h, self.stream.cu_stream() as _) }
                    .map_err(|e| self.err(op, Library::Cublas, e))?;
                Ok(h)
            })?;
            *guard = Some(Handle(h));
        }
        let h = guard.as_ref().map(|h| h.0).expect("created above");
        guarded(op, self.ordinal, Library::Cublas, || f(h))
    }

    /// Runs `f` with this device's cuDNN handle (created on first use, bound to the stream).
    pub(crate) fn with_cudnn<R>(
        &self,
        op: &'static str,
        f: impl FnOnce(dnn_sys::cudnnHandle_t) -> Result<R>,
    ) -> Result<R> {
        Library::Cudnn.require(op, self.device())?;
        self.bind(op)?;
        let mut guard = lock(&self.dnn);
        if guard.is_none() {
            let h = guarded(op, self.ordinal, Library::Cudnn, || {
                let h = cudarc::cudnn::result::create_handle().map_err(|e| self.err(op, Library::Cudnn, e))?;
                // SAFETY: `h` was just created and the stream lives as long as this device.
                unsafe { cudarc::cudnn::result::set_stream(h, self.stream.cu_stream() as _) }
                    .map_err(|e| self.err(op, Library::Cudnn, e))?;
                Ok(h)
            })?;
            *guard = Some(Handle(h));
        }
        let h = guard.as_ref().map(|h| h.0).expect("created above");
        guarded(op, self.ordinal, Library::Cudnn, || f(h))
    }
}
