//! The CUDA C sources of the NVRTC-compiled kernels, one module per purpose, and their
//! compilation. A device compiles a module the first time one of its kernels is asked for and
//! keeps it for the life of the process (`context::CudaDevice::function`).
//!
//! Every module is [`common::COMMON`] followed by its own source; kernels are `extern "C"` so
//! their names survive (`unary_f32`, `reduce_block_f64`, `copy_f32_i64`, ...).

pub mod common;
pub mod elementwise;
pub mod index;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod softmax;

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

/// One NVRTC translation unit.
#[derive(Debug)]
pub struct KernelModule {
    /// Unique name, also the NVRTC program name.
    pub name: &'static str,
    /// The module's CUDA C, without the common header.
    pub source: &'static str,
    /// Whether NVRTC may contract `a·b + c` into fused multiply-adds.
    pub fmad: bool,
}

impl KernelModule {
    /// The full translation unit: the common header, then this module.
    pub fn full_source(&self) -> String {
        format!("{}\n{}", common::COMMON, self.source)
    }
}

/// Every kernel module, for the compile-everything test and `tools/nvrtc_check.sh`.
pub static MODULES: [&KernelModule; 10] = [
    &elementwise::UNARY,
    &elementwise::BINARY,
    &elementwise::WHERE,
    &elementwise::COPY,
    &reduce::REDUCE,
    &softmax::SOFTMAX,
    &random::RANDOM,
    &optim::OPTIM,
    &index::INDEX,
    &pool::POOL,
];

/// Compiles `module` to PTX for `arch` (`compute_XY`; NVRTC's default, the oldest supported
/// architecture, when `None`). PTX of an older architecture runs on newer GPUs through the
/// driver's JIT.
pub fn compile(module: &KernelModule, arch: Option<&'static str>) -> Result<Ptx, CompileError> {
    let opts = CompileOptions {
        fmad: Some(module.fmad),
        arch,
        name: Some(format!("{}.cu", module.name)),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(module.full_source(), opts)
}

/// The NVRTC architecture name for compute capability `major.minor`, when NVRTC 13 knows it.
pub fn arch_name(major: i32, minor: i32) -> Option<&'static str> {
    Some(match (major, minor) {
        (7, 5) => "compute_75",
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 7) => "compute_87",
        (8, 9) => "compute_89",
        (9, 0) => "compute_90",
        (10, 0) => "compute_100",
        (10, 3) => "compute_103",
        (11, 0) => "compute_110",
        (12, 0) => "compute_120",
        (12, 1) => "compute_121",
        _ => return None,
    })
}
