//! ZFNet (Zeiler & Fergus, 2014, "Visualizing and understanding convolutional networks",
//! ECCV, Fig. 3): AlexNet with a smaller, denser first layer, found by looking at what the
//! first layers of AlexNet learned (§4.2: 11×11 stride-4 filters gave aliasing and dead filters).
//!
//! | layer | paper (224×224 input) | parameter name |
//! | --- | --- | --- |
//! | 1 | 96 filters 7×7, stride 2 → 110×110; ReLU; max pool 3×3/2 → 55×55; contrast norm. | `features.0` |
//! | 2 | 256 filters 5×5, stride 2 → 26×26; ReLU; max pool 3×3/2 → 13×13; contrast norm. | `features.4` |
//! | 3, 4 | 384 filters 3×3 | `features.8`, `features.10` |
//! | 5 | 256 filters 3×3; max pool 3×3/2 → 6×6 | `features.12` |
//! | 6, 7 | 4096 units, ReLU, dropout 0.5 | `classifier.0`, `classifier.3` |
//! | output | one unit per class | `classifier.6` |
//!
//! Kept: every size above, dense connections (one GPU, no groups), "weights initialised to
//! 10⁻², biases to 0" read as N(0, 0.01²). Chosen where the paper is silent: padding 1 in
//! layer 1 and ceil-mode pooling (Caffe's, which the paper's map sizes 110 → 55 → 26 → 13
//! need); the "contrast normalisation across feature maps" is AlexNet's LRN (k = 2, n = 5,
//! α = 1e-4, β = 0.75), after the pooling as in Fig. 3. Not here: renormalising filters whose
//! RMS exceeds 0.1 (a training-time constraint). fc6's fan-in follows the input size
//! (256·6·6 at 224×224): 62,357,608 parameters for 1000 classes.

use nabla_core::{Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::init::Init;
use nabla_nn::linear::LinearConfig;
use nabla_nn::{Dropout, LocalResponseNorm, MaxPool2d, Module, ReLU, Sequential};

use crate::common::{NORMAL_001, out_size};

pub struct ZfNet {
    pub features: Sequential,
    pub classifier: Sequential,
}

impl ZfNet {
    /// ZFNet for `input = [channels, height, width]` (224×224 in the paper) and `classes` outputs.
    pub fn new([c, h, w]: [usize; 3], classes: usize) -> Result<ZfNet> {
        let conv = |cin, cout, k, stride, pad| {
            Conv2dConfig::new(cin, cout, k)
                .stride(stride)
                .padding(pad)
                .weight_init(NORMAL_001)
                .bias_init(Init::Constant(0.0))
                .init()
        };
        let fc = |fan_in, out| {
            LinearConfig::new(fan_in, out)
                .weight_init(NORMAL_001)
                .bias_init(Init::Constant(0.0))
                .init()
        };
        let pool = MaxPool2d::new(3).stride(2).ceil_mode(true);
        let norm = LocalResponseNorm::alexnet();
        let features = Sequential::new()
            .add(conv(c, 96, 7, 2, 1)?) // layer 1
            .add(ReLU)
            .add(pool)
            .add(norm)
            .add(conv(96, 256, 5, 2, 0)?) // layer 2
            .add(ReLU)
            .add(pool)
            .add(norm)
            .add(conv(256, 384, 3, 1, 1)?) // layer 3
            .add(ReLU)
            .add(conv(384, 384, 3, 1, 1)?) // layer 4
            .add(ReLU)
            .add(conv(384, 256, 3, 1, 1)?) // layer 5
            .add(ReLU)
            .add(pool);
        let side = |n: usize| -> Result<usize> {
            let n = out_size("ZFNet layer 1", n, 7, 2, 1, false)?;
            let n = out_size("ZFNet pool 1", n, 3, 2, 0, true)?;
            let n = out_size("ZFNet layer 2", n, 5, 2, 0, false)?;
            let n = out_size("ZFNet pool 2", n, 3, 2, 0, true)?;
            out_size("ZFNet pool 5", n, 3, 2, 0, true)
        };
        let fan_in = 256 * side(h)? * side(w)?;
        let classifier = Sequential::new()
            .add(fc(fan_in, 4096)?) // layer 6
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(fc(4096, 4096)?) // layer 7
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(fc(4096, classes)?);
        Ok(ZfNet { features, classifier })
    }
}

impl Module for ZfNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.classifier.forward(&self.features.forward(x)?.flatten(1, -1)?)
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let h = g.child("features", &self.features, x)?;
        g.flatten_into("classifier", &self.classifier, &h)
    }
    fn describe(&self) -> String {
        "ZFNet (Zeiler & Fergus 2014)".into()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("features".into(), &self.features as &dyn Module),
            ("classifier".into(), &self.classifier),
        ]
    }
}
