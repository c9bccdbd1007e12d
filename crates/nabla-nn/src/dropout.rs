//! Dropout layers (Srivastava et al., 2014), inverted: in training each unit is kept with
//! probability 1 − p and scaled by 1/(1 − p); in evaluation they are the identity.
//!
//! The lecture's form keeps units unscaled in training and multiplies by (1 − p) (0.5 for
//! p = 0.5) at test time. Both give every unit the same expected value at test time as in
//! training; the inverted form moves the scaling into training so inference needs no change.

use crate::module::{Mode, Module};
use nabla_core::{Error, Result, Tensor, rng::with_default_generator};

fn check(p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(Error::Argument {
            op: "Dropout",
            msg: format!("p must be in [0, 1], got {p}"),
        })
    }
}

/// Element-wise dropout, drawing from the default generator (`nabla_core::manual_seed`).
///
/// In training each value is 0 or scaled by 1/(1 − p) (here 2); in evaluation the identity.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let drop = Dropout::new(0.5).unwrap();
/// let x = Tensor::ones((1000,), nabla_core::DType::F32);
/// let y = drop.forward(&x).unwrap().to_vec::<f32>().unwrap();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0) && y.contains(&0.0) && y.contains(&2.0));
/// drop.eval();
/// assert_eq!(drop.forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![1.0; 1000]);
/// ```
#[derive(Debug)]
pub struct Dropout {
    pub p: f64,
    mode: Mode,
}

impl Dropout {
    pub fn new(p: f64) -> Result<Self> {
        Ok(Dropout {
            p: check(p)?,
            mode: Mode::default(),
        })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.mode.is_training() || self.p == 0.0 {
            return Ok(x.clone());
        }
        with_default_generator(|rng| x.dropout(self.p, rng))
    }
    /// Nothing: dropout is the identity at inference.
    fn to_onnx(&self, _g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        Ok(x.clone())
    }
    fn set_training(&self, training: bool) {
        self.mode.set(training)
    }
    fn describe(&self) -> String {
        format!("Dropout(p = {})", self.p)
    }
}

/// Drops whole channels of `[N, C, H, W]` inputs.
///
/// A whole channel is dropped or kept (and scaled by 1/(1 − p)).
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let drop = Dropout2d::new(0.5).unwrap();
/// let y = drop.forward(&Tensor::ones((1, 64, 2, 2), nabla_core::DType::F32)).unwrap();
/// for channel in y.to_vec::<f32>().unwrap().chunks(4) {
///     assert!(channel == [0.0; 4] || channel == [2.0; 4]);
/// }
/// ```
#[derive(Debug)]
pub struct Dropout2d {
    pub p: f64,
    mode: Mode,
}

impl Dropout2d {
    pub fn new(p: f64) -> Result<Self> {
        Ok(Dropout2d {
            p: check(p)?,
            mode: Mode::default(),
        })
    }
}

impl Module for Dropout2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.mode.is_training() || self.p == 0.0 {
            return Ok(x.clone());
        }
        with_default_generator(|rng| x.dropout2d(self.p, rng))
    }
    /// Nothing: dropout is the identity at inference.
    fn to_onnx(&self, _g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        Ok(x.clone())
    }
    fn set_training(&self, training: bool) {
        self.mode.set(training)
    }
    fn describe(&self) -> String {
        format!("Dropout2d(p = {})", self.p)
    }
}
