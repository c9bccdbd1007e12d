//! `Sequential`: modules applied one after another, named "0", "1", … as in PyTorch.

use crate::module::{Module, join};
use nabla_core::{Result, Tensor};

/// Layers applied in order. By hand: Linear(1 → 1) with w = −2, b = 0, then ReLU, on x = 3, −3.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let mut fc = Linear::new(1, 1).unwrap();
/// fc.weight = Tensor::from_vec(vec![-2.0f32], (1, 1)).unwrap();
/// fc.bias = Some(Tensor::from_vec(vec![0.0f32], (1,)).unwrap());
/// let net = Sequential::new().add(fc).add(ReLU);
/// let y = net.forward(&Tensor::from_vec(vec![3.0f32, -3.0], (2, 1)).unwrap()).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 6.0]);
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }
    /// Appends a layer (builder style).
    // NOTE: a builder, not `std::ops::Add`; the name is the one every example uses.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Module + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }
    pub fn push(&mut self, layer: Box<dyn Module>) {
        self.layers.push(layer);
    }
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = if nabla_core::profile::is_enabled() {
                nabla_core::profile::scope(&format!("{i}: {}", layer.describe()), || layer.forward(&h))?
            } else {
                layer.forward(&h)?
            };
        }
        Ok(h)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_parameters(&join(prefix, &i.to_string()), f);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (i, l) in self.layers.iter().enumerate() {
            l.visit_buffers(&join(prefix, &i.to_string()), f);
        }
    }
    fn set_training(&self, training: bool) {
        self.layers.iter().for_each(|l| l.set_training(training));
    }
    fn describe(&self) -> String {
        format!("Sequential({} layers)", self.layers.len())
    }
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        g.chain(self.children(), x)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.as_ref()))
            .collect()
    }
}
