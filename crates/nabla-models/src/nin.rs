//! Network in Network (Lin, Chen & Yan, 2014, "Network in network", ICLR), the CIFAR-10
//! network of §4.2: three mlpconv layers and global average pooling instead of fully
//! connected layers.
//!
//! An mlpconv layer is a convolution followed by a small multilayer perceptron applied at
//! every position, i.e. 1×1 convolutions ("cascaded cross-channel parametric pooling"), each
//! with ReLU. The last one produces one map per class, and the average of each map over the
//! image is that class's score (§3.2): no fully connected layer, nothing to overfit there.
//!
//! | block | layers (CIFAR-10, 32×32 input) | parameter names |
//! | --- | --- | --- |
//! | mlpconv1 | 192 5×5 (padding 2), 160 1×1, 96 1×1; max pool 3×3/2 → 16×16; dropout 0.5 | `mlpconv1.0`, `.2`, `.4` |
//! | mlpconv2 | 192 5×5 (padding 2), 192 1×1, 192 1×1; max pool 3×3/2 → 8×8; dropout 0.5 | `mlpconv2.0`, `.2`, `.4` |
//! | mlpconv3 | 192 3×3 (padding 1), 192 1×1, classes 1×1 | `mlpconv3.0`, `.2`, `.4` |
//! | | global average pooling → one score per class | |
//!
//! The channel widths and kernels are those of the authors' released CIFAR-10 model (the
//! paper gives the structure, not the widths): 966,986 parameters for 10 classes.
//! Kept from the paper: max pooling after the first two mlpconv layers, dropout on the outputs
//! of all but the last one. NOTE: the last mlpconv keeps its ReLU, as in the released model, so
//! the scores are non-negative; softmax cross-entropy trains it all the same. The initialisation
//! (not given in the paper) is Kaiming normal with zero biases.

use nabla_core::{Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::init::Init;
use nabla_nn::{AdaptiveAvgPool2d, Dropout, MaxPool2d, Module, ReLU, Sequential};

use crate::common::KAIMING_FAN_OUT;

pub struct Nin {
    pub mlpconv1: Sequential,
    pub pool1: MaxPool2d,
    pub dropout1: Dropout,
    pub mlpconv2: Sequential,
    pub pool2: MaxPool2d,
    pub dropout2: Dropout,
    pub mlpconv3: Sequential,
    pub avgpool: AdaptiveAvgPool2d,
}

/// A k×k convolution to `widths[0]`, then 1×1 convolutions to the other widths, each with ReLU.
fn mlpconv(in_channels: usize, kernel: usize, widths: [usize; 3]) -> Result<Sequential> {
    let mut s = Sequential::new();
    let mut c = in_channels;
    for (i, w) in widths.into_iter().enumerate() {
        let k = if i == 0 { kernel } else { 1 };
        s.push(Box::new(
            Conv2dConfig::new(c, w, k)
                .padding(k / 2)
                .weight_init(KAIMING_FAN_OUT)
                .bias_init(Init::Constant(0.0))
                .init()?,
        ));
        s.push(Box::new(ReLU));
        c = w;
    }
    Ok(s)
}

impl Nin {
    /// NIN for `in_channels`-channel images (32×32 in the paper; any size of at least 6×6
    /// works, the average pooling is global) and `classes` outputs.
    ///
    /// ```
    /// use nabla_models::nin::Nin;
    /// use nabla_nn::Module;
    /// let net = Nin::new(3, 10).unwrap();
    /// assert_eq!(net.num_parameters(), 966_986);
    /// ```
    pub fn new(in_channels: usize, classes: usize) -> Result<Nin> {
        let pool = MaxPool2d::new(3).stride(2).ceil_mode(true);
        Ok(Nin {
            mlpconv1: mlpconv(in_channels, 5, [192, 160, 96])?,
            pool1: pool,
            dropout1: Dropout::new(0.5)?,
            mlpconv2: mlpconv(96, 5, [192, 192, 192])?,
            pool2: pool,
            dropout2: Dropout::new(0.5)?,
            mlpconv3: mlpconv(192, 3, [192, 192, classes])?,
            avgpool: AdaptiveAvgPool2d::new(1, 1),
        })
    }
}

impl Module for Nin {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (_, layer) in self.children() {
            h = layer.forward(&h)?;
        }
        h.flatten(1, -1)
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let h = g.chain(self.children(), x)?;
        g.flatten(&h)
    }
    fn describe(&self) -> String {
        "Network in Network (Lin et al. 2014)".into()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("mlpconv1".into(), &self.mlpconv1 as &dyn Module),
            ("pool1".into(), &self.pool1),
            ("dropout1".into(), &self.dropout1),
            ("mlpconv2".into(), &self.mlpconv2),
            ("pool2".into(), &self.pool2),
            ("dropout2".into(), &self.dropout2),
            ("mlpconv3".into(), &self.mlpconv3),
            ("avgpool".into(), &self.avgpool),
        ]
    }
}
