//! A multi-layer perceptron: Flatten, then Linear layers with ReLU between them.

use nabla_core::{Result, Tensor};
use nabla_nn::{Flatten, Linear, Module, ReLU, Sequential};

/// `sizes = [784, 512, 256, 10]` gives 784 → 512 → ReLU → 256 → ReLU → 10 (the benchmark MLP).
pub struct Mlp {
    pub layers: Sequential,
}

impl Mlp {
    pub fn new(sizes: &[usize]) -> Result<Mlp> {
        if sizes.len() < 2 {
            return Err(nabla_core::Error::Argument {
                op: "Mlp",
                msg: format!("needs at least input and output sizes, got {sizes:?}"),
            });
        }
        if sizes.contains(&0) {
            return Err(nabla_core::Error::Argument {
                op: "Mlp",
                msg: format!("layer sizes must be positive, got {sizes:?}"),
            });
        }
        let mut layers = Sequential::new().add(Flatten);
        for (i, pair) in sizes.windows(2).enumerate() {
            layers = layers.add(Linear::new(pair[0], pair[1])?);
            if i + 2 < sizes.len() {
                layers = layers.add(ReLU);
            }
        }
        Ok(Mlp { layers })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.forward(x)
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        g.child("layers", &self.layers, x)
    }
    fn describe(&self) -> String {
        "MLP".into()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("layers".into(), &self.layers as &dyn Module)]
    }
}
