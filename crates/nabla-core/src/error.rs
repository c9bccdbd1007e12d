//! Errors are values: every message names the op and the shapes involved.

use crate::{DType, Device, Shape};

/// Everything that can go wrong in `nabla-core`. A user's mistake is one of these, never a panic.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Shapes that do not fit together, with a message naming both.
    #[error("{op}: {msg}")]
    Shape { op: &'static str, msg: String },

    /// A dimension index outside `[-rank, rank)`.
    #[error("{op}: dimension {dim} out of range for shape {shape} (rank {rank})", rank = shape.rank())]
    DimOutOfRange { op: &'static str, dim: isize, shape: Shape },

    /// An index outside the size of the dimension it selects from.
    #[error("{op}: index {index} out of range for dimension {dim} of size {size}")]
    IndexOutOfRange {
        op: &'static str,
        index: i64,
        dim: usize,
        size: usize,
    },

    /// Operands of different dtypes.
    #[error("{op}: dtype mismatch: lhs {lhs:?}, rhs {rhs:?}")]
    DTypeMismatch { op: &'static str, lhs: DType, rhs: DType },

    /// An op that has no kernel for this dtype (for example `exp` on an i64 tensor).
    #[error("{op}: not supported for dtype {dtype:?}")]
    UnsupportedDType { op: &'static str, dtype: DType },

    /// Operands on different devices.
    #[error("{op}: device mismatch: {lhs:?} and {rhs:?}")]
    DeviceMismatch { op: &'static str, lhs: Device, rhs: Device },

    /// An invalid argument (a negative size, a probability outside [0, 1], ...).
    #[error("{op}: {msg}")]
    Argument { op: &'static str, msg: String },

    /// A file that could not be read or written, or whose contents are not what was expected.
    #[error("{path}: {msg}")]
    File { path: String, msg: String },

    /// An op that has no kernel on this device. There is no silent fallback to another device.
    #[error("{op}: not implemented on {device}")]
    Unimplemented { op: &'static str, device: Device },

    /// A failure of the CUDA driver or of one of its libraries (cuBLAS, cuDNN, NVRTC), or a
    /// library that could not be loaded.
    #[error("{op} on {device}: {msg}")]
    Cuda {
        op: &'static str,
        device: Device,
        msg: String,
    },

    /// Misuse of the autograd machinery (backward on a non-scalar, twice through one graph, ...).
    #[error("backward: {0}")]
    Backward(String),
}

/// `Result` with nabla's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for a shape error: `shape_err("matmul", format!(...))`.
pub(crate) fn shape_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape { op, msg: msg.into() })
}

/// Shorthand for an argument error.
pub(crate) fn arg_err<T>(op: &'static str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Argument { op, msg: msg.into() })
}
