//! Tensor operations, one file per family, each op's backward written next to its forward.
//!
//! Every op checks its arguments, calls its kernel once through the device seam
//! ([`crate::backend::BackendStorage`], reached through [`crate::storage::Storage`]) and records
//! one backward pass written with tensor ops, so that it runs on every device.

pub mod conv;
pub mod device;
pub mod dropout;
pub mod elementwise;
pub mod index;
pub mod lrn;
pub mod matmul;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod update;
pub mod view;

pub use crate::backend::params::{
    AdamUpdate, AvgPool2dOptions, Conv2dOptions, MaxPool2dOptions, PaddingMode, SgdUpdate,
};

use crate::backend::params::{BinaryOp, UnaryOp};
use crate::error::{Error, Result};
use crate::{Shape, Tensor};

impl Tensor {
    /// y = f(x) through the device's kernel; nothing is recorded.
    pub(crate) fn map(&self, op: UnaryOp) -> Result<Tensor> {
        let out = self.storage().unary(self.layout(), op)?;
        Ok(Tensor::from_any_storage(out, self.shape().clone()))
    }

    /// y = f(a, b) with broadcasting through the device's kernel; nothing is recorded. A 0-d
    /// host tensor goes along with an operand on a GPU, as in PyTorch (scalars in formulas).
    pub(crate) fn zip(&self, rhs: &Tensor, op: BinaryOp, name: &'static str) -> Result<Tensor> {
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: name,
                lhs: self.dtype(),
                rhs: rhs.dtype(),
            });
        }
        let (da, db) = (self.device(), rhs.device());
        if da != db && (self.rank() == 0 || rhs.rank() == 0) {
            if rhs.rank() == 0 && db.is_cpu() {
                return self.zip(&rhs.to_device(da)?, op, name);
            }
            if self.rank() == 0 && da.is_cpu() {
                return self.to_device(db)?.zip(rhs, op, name);
            }
        }
        let shape = Shape::broadcast(name, self.shape(), rhs.shape())?;
        crate::limits::check_tensor(shape.dims(), self.dtype().size_in_bytes(), name)?;
        let (al, bl) = (
            self.layout().broadcast_to(name, &shape)?,
            rhs.layout().broadcast_to(name, &shape)?,
        );
        let out = {
            let (sa, sb) = (self.storage(), rhs.storage());
            sa.binary(&al, &sb, &bl, op)?
        };
        Ok(Tensor::from_any_storage(out, shape))
    }
}
