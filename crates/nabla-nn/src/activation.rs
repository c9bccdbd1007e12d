//! Activation layers (the functions and their derivatives live in nabla-core's
//! `ops/elementwise.rs` and `ops/softmax.rs`), plus Flatten and Identity.

use crate::module::Module;
use crate::onnx::{Attr, OnnxGraph, OnnxValue};
use nabla_core::{Result, Tensor};

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $onnx:literal, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;
        impl Module for $name {
            fn forward(&self, $x: &Tensor) -> Result<Tensor> {
                $body
            }
            fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
                g.unary($onnx, x, |t| self.forward(t))
            }
        }
    };
}

activation!(
    /// max(x, 0).
    ReLU, "Relu", |x| x.relu());
activation!(
    /// 1/(1 + e⁻ˣ): the logistic output of the lecture's binary classifier.
    Sigmoid, "Sigmoid", |x| x.sigmoid());
activation!(
    /// tanh x.
    Tanh, "Tanh", |x| x.tanh());
activation!(
    /// The input unchanged.
    Identity, "Identity", |x| Ok(x.clone()));

/// x for x > 0, slope·x otherwise (PyTorch's default slope 0.01).
#[derive(Debug, Clone, Copy)]
pub struct LeakyReLU(pub f64);

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU(0.01)
    }
}

impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.0)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        let y = self.forward(&x.sample)?;
        Ok(g.op("LeakyRelu", &[&x.name], vec![("alpha", Attr::Float(self.0 as f32))], y))
    }
}

/// softmax over a dimension.
#[derive(Debug, Clone, Copy)]
pub struct Softmax(pub isize);

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softmax(self.0)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        let y = self.forward(&x.sample)?;
        Ok(g.op("Softmax", &[&x.name], vec![("axis", Attr::Int(self.0 as i64))], y))
    }
}

/// log softmax over a dimension.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax(pub isize);

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.log_softmax(self.0)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        let y = self.forward(&x.sample)?;
        Ok(g.op("LogSoftmax", &[&x.name], vec![("axis", Attr::Int(self.0 as i64))], y))
    }
}

/// `[N, C, H, W] → [N, C·H·W]` (PyTorch's `Flatten()`: dims 1 to −1).
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() <= 1 {
            return Ok(x.clone());
        }
        x.flatten(1, -1)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        g.flatten(x)
    }
}
