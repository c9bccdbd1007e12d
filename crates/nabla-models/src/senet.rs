//! Squeeze-and-excitation networks (Hu, Shen & Sun, 2018, "Squeeze-and-excitation networks",
//! CVPR): SE-ResNet-18 and SE-ResNet-50.
//!
//! A squeeze-and-excitation block re-weights the channels of a feature map by a gate computed
//! from the map itself (§3, Fig. 3 "SE-ResNet module"):
//!
//! 1. squeeze: z = the global average of each channel, `[N, C, H, W] → [N, C]`;
//! 2. excitation: s = σ(W₂·ReLU(W₁·z)), W₁ reducing C to C/r, W₂ restoring C; r = 16 (§6.1);
//! 3. scale: each channel of the map times its s.
//!
//! In SE-ResNet the block sits on the residual branch, after the last batch norm of each
//! residual block and before the addition of the shortcut. The rest is ResNet
//! ([`crate::resnet`]) unchanged: torchvision's layout, with `layerX.Y.se.fc1` and
//! `layerX.Y.se.fc2` added. The two excitation layers are 1×1 convolutions with bias on the
//! pooled `[N, C, 1, 1]` map (as in timm's `SEModule`), the same as fully connected layers.
//! SE-ResNet-50 has 28,088,024 parameters for 1000 classes (ResNet-50 plus 2,530,992), as the
//! paper's Table 1 (28.09 M); SE-ResNet-18 11,778,592.

use nabla_core::{Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::{Conv2d, Module};

use crate::resnet::{ResNet, ResNetConfig};

/// The squeeze-and-excitation block: channel gates σ(W₂·ReLU(W₁·mean(x))) times x.
pub struct SqueezeExcitation {
    pub fc1: Conv2d,
    pub fc2: Conv2d,
}

impl SqueezeExcitation {
    /// For `channels` maps, reduced by `reduction` (16 in the paper) in the middle.
    pub fn new(channels: usize, reduction: usize) -> Result<SqueezeExcitation> {
        let hidden = (channels / reduction.max(1)).max(1);
        Ok(SqueezeExcitation {
            fc1: Conv2dConfig::new(channels, hidden, 1).init()?,
            fc2: Conv2dConfig::new(hidden, channels, 1).init()?,
        })
    }
}

impl Module for SqueezeExcitation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let z = x.mean(&[2, 3], true)?; // squeeze: [N, C, 1, 1]
        let s = self.fc2.forward(&self.fc1.forward(&z)?.relu()?)?.sigmoid()?; // excitation
        x.mul(&s) // scale (s broadcasts over H×W)
    }
    /// `GlobalAveragePool`, the two 1×1 convolutions with `Relu` and `Sigmoid`, `Mul`.
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let z = g.adaptive_avg_pool2d(x, [1, 1])?;
        let h = g.child("fc1", &self.fc1, &z)?;
        let h = g.relu(&h)?;
        let h = g.child("fc2", &self.fc2, &h)?;
        let s = g.unary("Sigmoid", &h, |t| t.sigmoid())?;
        g.mul(x, &s)
    }
    fn describe(&self) -> String {
        let (c, hidden) = (self.fc1.weight.dims()[1], self.fc1.weight.dims()[0]);
        format!("SqueezeExcitation({c} → {hidden} → {c})")
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("fc1".into(), &self.fc1 as &dyn Module), ("fc2".into(), &self.fc2)]
    }
}

/// SE-ResNet-18 or SE-ResNet-50 (`depth`; any ImageNet ResNet depth works) with reduction 16.
///
/// ```
/// use nabla_models::senet::se_resnet;
/// use nabla_nn::Module;
/// let net = se_resnet(18, 3, 10).unwrap();
/// let y = net.forward(&nabla_core::Tensor::zeros((2, 3, 32, 32), nabla_core::DType::F32)).unwrap();
/// assert_eq!(y.dims(), &[2, 10]);
/// ```
pub fn se_resnet(depth: usize, in_channels: usize, classes: usize) -> Result<ResNet> {
    ResNetConfig::imagenet(depth, in_channels, classes)?
        .squeeze_excitation(16)
        .init()
}
