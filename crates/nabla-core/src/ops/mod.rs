//! Tensor operations, one file per family, each op's backward written next to its forward.

pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod index;
pub mod lrn;
pub mod matmul;
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
macro_rules! map_float {
    ($t:expr, $op:expr, |$x:ident : $T:ident| $body:expr) => {{
        let t: &$crate::Tensor = $t;
        let storage = t.storage();
        let out = match storage.cpu() {
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
macro_rules! zip_float {
    ($a:expr, $b:expr, $op:expr, |$x:ident : $T:ident, $y:ident| $body:expr) => {{
        let (a, b): (&$crate::Tensor, &$crate::Tensor) = ($a, $b);
        let shape = $crate::Shape::broadcast($op, a.shape(), b.shape())?;
        let (al, bl) = (
            a.layout().broadcast_to($op, &shape)?,
            b.layout().broadcast_to($op, &shape)?,
        );
        let (sa, sb) = (a.storage(), b.storage());
        let out = match (sa.cpu(), sb.cpu()) {
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
        match storage.cpu() {
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
