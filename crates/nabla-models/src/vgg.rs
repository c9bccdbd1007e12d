//! VGG (Simonyan & Zisserman, 2015, "Very deep convolutional networks for large-scale image
//! recognition", ICLR, Table 1): stacks of 3×3 convolutions (stride 1, padding 1) with ReLU,
//! 2×2 max pooling with stride 2 after each stack, and three fully connected layers.
//!
//! | depth | configuration | convolutions per stack (64, 128, 256, 512, 512 channels) |
//! | --- | --- | --- |
//! | 11 | A | 1, 1, 2, 2, 2 |
//! | 13 | B | 2, 2, 2, 2, 2 |
//! | 16 | D | 2, 2, 3, 3, 3 |
//! | 19 | E | 2, 2, 4, 4, 4 |
//!
//! torchvision's layout and names: `features.N` (conv, [batch norm,] ReLU, …, max pool),
//! `avgpool` (an adaptive 7×7 average pool: 224×224 inputs arrive at 7×7 already, smaller ones
//! are stretched, so any input of at least 32×32 works), and `classifier.0`, `classifier.3`,
//! `classifier.6` (4096, 4096, classes; ReLU and dropout 0.5 after the first two).
//! Parameters for 1000 classes: VGG-11 132,863,336, VGG-13 133,047,848, VGG-16 138,357,544,
//! VGG-19 143,667,240; with batch norm (not in the paper, Ioffe & Szegedy 2015) 2 per channel
//! more, e.g. VGG-16-BN 138,365,992.
//!
//! Kept: configurations A, B, D, E, dropout 0.5 in fc6 and fc7. Not here: configuration A-LRN
//! and C (1×1 convolutions in the last three stacks); the paper's initialisation (A trained from
//! N(0, 0.01²), deeper nets started from A's layers) is replaced by torchvision's: Kaiming normal
//! (fan out, ReLU) convolutions, N(0, 0.01²) fully connected weights, zero biases.

use nabla_core::{Error, Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::init::Init;
use nabla_nn::linear::LinearConfig;
use nabla_nn::{AdaptiveAvgPool2d, BatchNorm, Dropout, MaxPool2d, Module, ReLU, Sequential};

use crate::common::{KAIMING_FAN_OUT, NORMAL_001};

/// Convolutions per stack of 64, 128, 256, 512, 512 channels (Table 1).
fn stacks(depth: usize) -> Option<[usize; 5]> {
    match depth {
        11 => Some([1, 1, 2, 2, 2]),
        13 => Some([2, 2, 2, 2, 2]),
        16 => Some([2, 2, 3, 3, 3]),
        19 => Some([2, 2, 4, 4, 4]),
        _ => None,
    }
}

pub struct Vgg {
    pub features: Sequential,
    pub avgpool: AdaptiveAvgPool2d,
    pub classifier: Sequential,
    pub depth: usize,
    pub batch_norm: bool,
}

impl Vgg {
    /// VGG-`depth` (11, 13, 16 or 19), optionally with batch norm after each convolution.
    ///
    /// ```
    /// use nabla_models::vgg::Vgg;
    /// use nabla_nn::Module;
    /// let net = Vgg::new(11, false, 3, 10).unwrap();
    /// let y = net.forward(&nabla_core::Tensor::zeros((1, 3, 32, 32), nabla_core::DType::F32)).unwrap();
    /// assert_eq!(y.dims(), &[1, 10]);
    /// ```
    pub fn new(depth: usize, batch_norm: bool, in_channels: usize, classes: usize) -> Result<Vgg> {
        let per_stack = stacks(depth).ok_or_else(|| Error::Argument {
            op: "Vgg::new",
            msg: format!("VGG has depths 11, 13, 16 and 19, not {depth}"),
        })?;
        let mut features = Sequential::new();
        let mut c = in_channels;
        for (convs, width) in per_stack.into_iter().zip([64, 128, 256, 512, 512]) {
            for _ in 0..convs {
                features.push(Box::new(
                    Conv2dConfig::new(c, width, 3)
                        .padding(1)
                        .weight_init(KAIMING_FAN_OUT)
                        .bias_init(Init::Constant(0.0))
                        .init()?,
                ));
                if batch_norm {
                    features.push(Box::new(BatchNorm::new_2d(width)));
                }
                features.push(Box::new(ReLU));
                c = width;
            }
            features.push(Box::new(MaxPool2d::new(2).stride(2)));
        }
        let fc = |fan_in, out| {
            LinearConfig::new(fan_in, out)
                .weight_init(NORMAL_001)
                .bias_init(Init::Constant(0.0))
                .init()
        };
        let classifier = Sequential::new()
            .add(fc(512 * 7 * 7, 4096)?)
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(fc(4096, 4096)?)
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(fc(4096, classes)?);
        Ok(Vgg {
            features,
            avgpool: AdaptiveAvgPool2d::new(7, 7),
            classifier,
            depth,
            batch_norm,
        })
    }
}

impl Module for Vgg {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.avgpool.forward(&self.features.forward(x)?)?;
        self.classifier.forward(&h.flatten(1, -1)?)
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let h = g.child("features", &self.features, x)?;
        let h = g.child("avgpool", &self.avgpool, &h)?;
        g.flatten_into("classifier", &self.classifier, &h)
    }
    fn describe(&self) -> String {
        let bn = if self.batch_norm { " with batch norm" } else { "" };
        format!("VGG-{}{bn} (Simonyan & Zisserman 2015)", self.depth)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("features".into(), &self.features as &dyn Module),
            ("avgpool".into(), &self.avgpool),
            ("classifier".into(), &self.classifier),
        ]
    }
}
