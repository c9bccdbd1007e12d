//! The fully connected layer: y = x·Wᵀ + b, W of shape `[out, in]` as in PyTorch.
//! Backward (from the ops it is built of): δx = δy·W, δW = δyᵀ·x, δb = Σ_batch δy.

use crate::init::{Init, parameter};
use crate::module::{Module, join};
use nabla_core::{Error, Result, Tensor};

/// Linear layer configuration (burn-style): sizes, bias, and initialisers (PyTorch's by default).
#[derive(Debug, Clone, Copy)]
pub struct LinearConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub bias: bool,
    pub weight_init: Init,
    /// None: PyTorch's U(±1/√in).
    pub bias_init: Option<Init>,
}

impl LinearConfig {
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
            weight_init: Init::PytorchDefaultWeight,
            bias_init: None,
        }
    }
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
    pub fn weight_init(mut self, init: Init) -> Self {
        self.weight_init = init;
        self
    }
    pub fn bias_init(mut self, init: Init) -> Self {
        self.bias_init = Some(init);
        self
    }
    pub fn init(&self) -> Result<Linear> {
        let (i, o) = (self.in_features, self.out_features);
        if i == 0 || o == 0 {
            return Err(Error::Argument {
                op: "Linear",
                msg: format!("in_features {i} and out_features {o} must be positive"),
            });
        }
        nabla_core::limits::check_tensor(&[o, i], 4, &format!("Linear({i} → {o}) weight"))?;
        let weight = parameter(self.weight_init, &[self.out_features, self.in_features])?;
        let bias_init = self.bias_init.unwrap_or(Init::PytorchDefaultBias {
            fan_in: self.in_features,
        });
        let bias = self
            .bias
            .then(|| parameter(bias_init, &[self.out_features]))
            .transpose()?;
        Ok(Linear { weight, bias })
    }
}

/// A fully connected layer. By hand: W = [2, −1], b = 0.5, x = [3, 4] gives y = 2·3 − 4 + 0.5.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let mut fc = Linear::new(2, 1).unwrap();
/// fc.weight = Tensor::from_vec(vec![2.0f32, -1.0], (1, 2)).unwrap();
/// fc.bias = Some(Tensor::from_vec(vec![0.5f32], (1,)).unwrap());
/// let y = fc.forward(&Tensor::from_vec(vec![3.0f32, 4.0], (1, 2)).unwrap()).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.5]);
/// ```
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer with PyTorch's default initialisation.
    pub fn new(in_features: usize, out_features: usize) -> Result<Linear> {
        LinearConfig::new(in_features, out_features).init()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (out_f, in_f) = (self.weight.dims()[0], self.weight.dims()[1]);
        if x.rank() == 0 || x.dims()[x.rank() - 1] != in_f {
            return Err(Error::Shape {
                op: "Linear",
                msg: format!(
                    "input {} does not end in {in_f} features (layer {in_f} → {out_f})",
                    x.shape()
                ),
            });
        }
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
    /// `Gemm(x, W, b)` with `transB = 1`, on `[N, in]` inputs.
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        if x.sample.rank() != 2 {
            return Err(g.unsupported(
                &self.describe(),
                &format!("Gemm takes [N, features]; this input is {}", x.sample.shape()),
            ));
        }
        let y = self.forward(&x.sample)?;
        let mut inputs = vec![x.name.clone(), g.weight("weight", &self.weight)?];
        if let Some(b) = &self.bias {
            inputs.push(g.weight("bias", b)?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(g.op("Gemm", &inputs, vec![("transB", crate::onnx::Attr::Int(1))], y))
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
    fn describe(&self) -> String {
        format!("Linear({} → {})", self.weight.dims()[1], self.weight.dims()[0])
    }
}
