//! Tensor operations, one file per family, each op's backward written next to its forward.

pub mod conv;
pub mod device;
pub mod dropout;
pub mod elementwise;
pub mod index;
pub mod lrn;
pub mod matmul;
#[cfg(feature = "cuda")]
pub(crate) mod on_cuda;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod update;
pub mod view;

pub use conv::Conv2dOptions;
pub use pad::PaddingMode;
pub use pool::{AvgPool2dOptions, MaxPool2dOptions};
pub use update::{AdamUpdate, SgdUpdate};

/// Applies `|x: T| body` to every element of a float tensor; `T` is f32 or f64 in the body.
///
/// With `cuda: op`, a tensor on a GPU runs the `cuda::ops::elementwise::UnaryOp` `op` instead;
/// without it, a GPU tensor is an `Unimplemented` error naming the op.
macro_rules! map_float {
    ($t:expr, $op:expr, cuda: $cop:expr, |$x:ident : $T:ident| $body:expr) => {{
        let t: &$crate::Tensor = $t;
        #[cfg(feature = "cuda")]
        if let Some(out) = $crate::ops::cuda_unary(t, $cop)? {
            out
        } else {
            $crate::ops::map_float!(t, $op, |$x: $T| $body)
        }
        #[cfg(not(feature = "cuda"))]
        $crate::ops::map_float!(t, $op, |$x: $T| $body)
    }};
    ($t:expr, $op:expr, |$x:ident : $T:ident| $body:expr) => {{
        let t: &$crate::Tensor = $t;
        let storage = t.storage();
        let out = match storage.cpu($op)? {
            $crate::storage::CpuStorage::F32(v) => {
                #[allow(dead_code)]
                type $T = f32;
                $crate::storage::CpuStorage::F32($crate::cpu::strided::unary_map(v, t.layout(), |$x: $T| $body))
            }
            $crate::storage::CpuStorage::F64(v) => {
                #[allow(dead_code)]
                type $T = f64;
                $crate::storage::CpuStorage::F64($crate::cpu::strided::unary_map(v, t.layout(), |$x: $T| $body))
            }
            s => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: s.dtype(),
                });
            }
        };
        drop(storage);
        $crate::Tensor::from_storage(out, t.shape().clone())
    }};
}

/// Applies `|x: T, y: T| body` element-wise to two float tensors broadcast to one shape.
///
/// With `cuda: op`, tensors on a GPU run the `cuda::ops::elementwise::BinaryOp` `op` on
/// (a, b) instead; with `cuda_swapped: op`, on (b, a).
macro_rules! zip_float {
    ($a:expr, $b:expr, $op:expr, cuda: $cop:expr, |$x:ident : $T:ident, $y:ident| $body:expr) => {{
        let (a, b): (&$crate::Tensor, &$crate::Tensor) = ($a, $b);
        #[cfg(feature = "cuda")]
        if let Some(out) = $crate::ops::cuda_binary($op, a, b, $cop, false)? {
            out
        } else {
            $crate::ops::zip_float!(a, b, $op, |$x: $T, $y| $body)
        }
        #[cfg(not(feature = "cuda"))]
        $crate::ops::zip_float!(a, b, $op, |$x: $T, $y| $body)
    }};
    ($a:expr, $b:expr, $op:expr, cuda_swapped: $cop:expr, |$x:ident : $T:ident, $y:ident| $body:expr) => {{
        let (a, b): (&$crate::Tensor, &$crate::Tensor) = ($a, $b);
        #[cfg(feature = "cuda")]
        if let Some(out) = $crate::ops::cuda_binary($op, a, b, $cop, true)? {
            out
        } else {
            $crate::ops::zip_float!(a, b, $op, |$x: $T, $y| $body)
        }
        #[cfg(not(feature = "cuda"))]
        $crate::ops::zip_float!(a, b, $op, |$x: $T, $y| $body)
    }};
    ($a:expr, $b:expr, $op:expr, |$x:ident : $T:ident, $y:ident| $body:expr) => {{
        let (a, b): (&$crate::Tensor, &$crate::Tensor) = ($a, $b);
        let shape = $crate::Shape::broadcast($op, a.shape(), b.shape())?;
        let (al, bl) = (
            a.layout().broadcast_to($op, &shape)?,
            b.layout().broadcast_to($op, &shape)?,
        );
        let (sa, sb) = (a.storage(), b.storage());
        let out = match (sa.cpu($op)?, sb.cpu($op)?) {
            ($crate::storage::CpuStorage::F32(va), $crate::storage::CpuStorage::F32(vb)) => {
                #[allow(dead_code)]
                type $T = f32;
                $crate::storage::CpuStorage::F32($crate::cpu::strided::binary_map(
                    va,
                    &al,
                    vb,
                    &bl,
                    |$x: $T, $y: $T| $body,
                ))
            }
            ($crate::storage::CpuStorage::F64(va), $crate::storage::CpuStorage::F64(vb)) => {
                #[allow(dead_code)]
                type $T = f64;
                $crate::storage::CpuStorage::F64($crate::cpu::strided::binary_map(
                    va,
                    &al,
                    vb,
                    &bl,
                    |$x: $T, $y: $T| $body,
                ))
            }
            (x, y) if x.dtype() != y.dtype() => {
                return Err($crate::Error::DTypeMismatch {
                    op: $op,
                    lhs: x.dtype(),
                    rhs: y.dtype(),
                });
            }
            (x, _) => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: x.dtype(),
                });
            }
        };
        drop((sa, sb));
        $crate::Tensor::from_storage(out, shape)
    }};
}

/// Runs `body` with `$v` bound to the float slice of a tensor's storage and `T` its type;
/// `body` returns a `CpuStorage`-compatible `Vec<T>` wrapped by the caller's choice.
macro_rules! with_float_slice {
    ($t:expr, $op:expr, |$v:ident : $T:ident| $body:expr) => {{
        let t: &$crate::Tensor = $t;
        let storage = t.storage();
        match storage.cpu($op)? {
            $crate::storage::CpuStorage::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::storage::CpuStorage::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            s => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    dtype: s.dtype(),
                });
            }
        }
    }};
}

pub(crate) use {map_float, with_float_slice, zip_float};

/// Runs `f` on a GPU tensor's storage and wraps the result with `shape`; `None` on the host.
#[cfg(feature = "cuda")]
pub(crate) fn on_cuda(
    t: &crate::Tensor,
    op: &'static str,
    shape: impl Into<crate::Shape>,
    f: impl FnOnce(&crate::cuda::CudaStorage, &crate::Layout) -> crate::Result<crate::cuda::CudaStorage>,
) -> crate::Result<Option<crate::Tensor>> {
    let storage = t.storage();
    if !matches!(&*storage, crate::storage::Storage::Cuda(_)) {
        return Ok(None);
    }
    let out = f(storage.cuda(op)?, t.layout())?;
    drop(storage);
    Ok(Some(crate::Tensor::from_any_storage(
        crate::storage::Storage::Cuda(out),
        shape,
    )))
}

/// The GPU arm of `map_float!`: `None` when the tensor is on the host.
#[cfg(feature = "cuda")]
pub(crate) fn cuda_unary(t: &crate::Tensor, op: crate::cuda::ops::UnaryOp) -> crate::Result<Option<crate::Tensor>> {
    let storage = t.storage();
    let crate::storage::Storage::Cuda(s) = &*storage else {
        return Ok(None);
    };
    let out = crate::cuda::ops::unary(op, s, t.layout())?;
    drop(storage);
    Ok(Some(crate::Tensor::from_any_storage(
        crate::storage::Storage::Cuda(out),
        t.shape().clone(),
    )))
}

/// The GPU arm of `zip_float!`: `None` when both tensors are on the host; an error when they
/// are on different devices.
#[cfg(feature = "cuda")]
pub(crate) fn cuda_binary(
    name: &'static str,
    a: &crate::Tensor,
    b: &crate::Tensor,
    op: crate::cuda::ops::BinaryOp,
    swapped: bool,
) -> crate::Result<Option<crate::Tensor>> {
    // A 0-d host tensor goes along with a GPU operand, as in PyTorch (scalars in formulas).
    let (da, db) = (a.device(), b.device());
    let moved;
    let (a, b) = match (da.is_cuda(), db.is_cuda()) {
        (true, false) if b.rank() == 0 => {
            moved = b.to_device(da)?;
            (a, &moved)
        }
        (false, true) if a.rank() == 0 => {
            moved = a.to_device(db)?;
            (&moved, b)
        }
        _ => (a, b),
    };
    let device = crate::Tensor::same_device(name, &[a, b])?;
    if device.is_cpu() {
        return Ok(None);
    }
    let shape = crate::Shape::broadcast(name, a.shape(), b.shape())?;
    let (al, bl) = (
        a.layout().broadcast_to(name, &shape)?,
        b.layout().broadcast_to(name, &shape)?,
    );
    let (sa, sb) = (a.storage(), b.storage());
    let (ca, cb) = (sa.cuda(name)?, sb.cuda(name)?);
    let out = if swapped {
        crate::cuda::ops::binary(op, cb, &bl, ca, &al)?
    } else {
        crate::cuda::ops::binary(op, ca, &al, cb, &bl)?
    };
    drop((sa, sb));
    Ok(Some(crate::Tensor::from_any_storage(
        crate::storage::Storage::Cuda(out),
        shape,
    )))
}
