//! LeNet-5 (LeCun, Bottou, Bengio & Haffner, 1998, "Gradient-based learning applied to
//! document recognition", Fig. 2), on 28×28 inputs padded by 2 to the paper's 32×32.
//!
//! C1: 6 maps 5×5 → 28×28; S2: 2×2 subsampling → 14×14; C3: 16 maps 5×5 → 10×10;
//! S4: 2×2 → 5×5; C5: 120 units (5×5 over all of S4, i.e. fully connected); F6: 84; output.
//!
//! `Classic` keeps the paper's squashing function f(a) = 1.7159·tanh(2a/3) and average
//! subsampling. Changed, as nearly every reimplementation does: C3 connects to all six S2
//! maps (the paper's Table I connects each to a subset), S2/S4 have no trainable
//! coefficient and bias, and the output is a linear layer trained with softmax cross-entropy
//! instead of Euclidean RBF units. `Modern` uses ReLU and max pooling (the benchmark's LeNet-5).

use nabla_core::{Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::{AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeNetStyle {
    /// Scaled tanh and average pooling, as in 1998.
    Classic,
    /// ReLU and max pooling.
    Modern,
}

/// f(a) = 1.7159·tanh(2a/3) (LeCun et al., 1998, Appendix A).
#[derive(Debug, Clone, Copy)]
pub struct ScaledTanh;

impl Module for ScaledTanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.mul_scalar(2.0 / 3.0)?.tanh()?.mul_scalar(1.7159)
    }
    /// `Mul`, `Tanh`, `Mul`.
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let h = g.mul_scalar(x, 2.0 / 3.0)?;
        let h = g.unary("Tanh", &h, |t| t.tanh())?;
        g.mul_scalar(&h, 1.7159)
    }
}

pub struct LeNet5 {
    pub features: Sequential,
    pub classifier: Sequential,
}

impl LeNet5 {
    /// For `channels`-channel 28×28 inputs and `classes` outputs.
    pub fn new(channels: usize, classes: usize, style: LeNetStyle) -> Result<LeNet5> {
        LeNet5::for_input([channels, 28, 28], classes, style)
    }

    /// For `[C, H, W]` inputs: C5 takes S4's 16 maps of ⌊(⌊H/2⌋ − 4)/2⌋ × ⌊(⌊W/2⌋ − 4)/2⌋
    /// (5×5 for 28×28, 6×6 for CIFAR's 32×32), so the classifier follows the input.
    pub fn for_input(input: [usize; 3], classes: usize, style: LeNetStyle) -> Result<LeNet5> {
        let [channels, h, w] = input;
        let s4 = |n: usize| (n / 2).checked_sub(4).map(|v| v / 2).filter(|&v| v > 0);
        let (Some(sh), Some(sw)) = (s4(h), s4(w)) else {
            return Err(nabla_core::Error::Argument {
                op: "LeNet-5",
                msg: format!("inputs of {h}×{w} are too small: it needs at least 12×12"),
            });
        };
        let act = || -> Box<dyn Module> {
            match style {
                LeNetStyle::Classic => Box::new(ScaledTanh),
                LeNetStyle::Modern => Box::new(ReLU),
            }
        };
        let pool = || -> Box<dyn Module> {
            match style {
                LeNetStyle::Classic => Box::new(AvgPool2d::new(2)),
                LeNetStyle::Modern => Box::new(MaxPool2d::new(2)),
            }
        };
        let mut features = Sequential::new();
        features.push(Box::new(Conv2dConfig::new(channels, 6, 5).padding(2).init()?));
        features.push(act());
        features.push(pool());
        features.push(Box::new(Conv2d::new(6, 16, 5)?));
        features.push(act());
        features.push(pool());
        let mut classifier = Sequential::new().add(Flatten).add(Linear::new(16 * sh * sw, 120)?);
        classifier.push(act());
        classifier.push(Box::new(Linear::new(120, 84)?));
        classifier.push(act());
        classifier.push(Box::new(Linear::new(84, classes)?));
        Ok(LeNet5 { features, classifier })
    }
}

impl Module for LeNet5 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let f = nabla_core::profile::scope("features", || self.features.forward(x))?;
        nabla_core::profile::scope("classifier", || self.classifier.forward(&f))
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let f = g.child("features", &self.features, x)?;
        g.flatten_into("classifier", &self.classifier, &f)
    }
    fn describe(&self) -> String {
        "LeNet-5".into()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("features".into(), &self.features as &dyn Module),
            ("classifier".into(), &self.classifier),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_and_shapes() {
        // conv1 6·(25+1) + conv2 16·(6·25+1) + 400·120+120 + 120·84+84 + 84·10+10 = 61,706
        let net = LeNet5::new(1, 10, LeNetStyle::Modern).unwrap();
        assert_eq!(net.num_parameters(), 61_706);
        let y = net
            .forward(&Tensor::zeros((2, 1, 28, 28), nabla_core::DType::F32))
            .unwrap();
        assert_eq!(y.dims(), &[2, 10]);
    }
}
