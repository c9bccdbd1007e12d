//! Activation layers (the functions and their derivatives live in nabla-core's
//! `ops/elementwise.rs` and `ops/softmax.rs`), plus Flatten and Identity.
//!
//! Each by hand, on x = [−1, 0, 2]:
//!
//! ```
//! use nabla_core::Tensor;
//! use nabla_nn::*;
//! let x = Tensor::from_vec(vec![-1.0f64, 0.0, 2.0], (1, 3)).unwrap();
//! let run = |m: &dyn Module| m.forward(&x).unwrap().to_vec::<f64>().unwrap();
//! assert_eq!(run(&ReLU), vec![0.0, 0.0, 2.0]);
//! assert_eq!(run(&LeakyReLU(0.1)), vec![-0.1, 0.0, 2.0]);
//! assert_eq!(run(&Identity), vec![-1.0, 0.0, 2.0]);
//! assert_eq!(run(&Sigmoid)[1], 0.5);
//! assert!((run(&Tanh)[2] - 0.964027580075817).abs() < 1e-12); // tanh 2
//! let e = [(-1.0f64).exp(), 1.0, 2.0f64.exp()];
//! let softmax: Vec<f64> = e.iter().map(|v| v / e.iter().sum::<f64>()).collect();
//! for (a, b) in run(&Softmax(1)).iter().zip(&softmax) { assert!((a - b).abs() < 1e-12) }
//! for (a, b) in run(&LogSoftmax(1)).iter().zip(&softmax) { assert!((a - b.ln()).abs() < 1e-12) }
//! let images = Tensor::zeros((2, 3, 4, 5), nabla_core::DType::F32);
//! assert_eq!(Flatten.forward(&images).unwrap().dims(), &[2, 60]);
//! ```

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
