//! AlexNet (Krizhevsky, Sutskever & Hinton, 2012, "ImageNet classification with deep
//! convolutional neural networks", NeurIPS), in three layouts.
//!
//! **The paper** (§3, Fig. 2), on 224×224 RGB crops:
//!
//! | layer | paper | parameter name |
//! | --- | --- | --- |
//! | conv1 | 96 kernels 11×11, stride 4 → 55×55; ReLU; LRN; max pool 3×3/2 → 27×27 | `features.0` |
//! | conv2 | 256 kernels 5×5, padding 2; ReLU; LRN; max pool 3×3/2 → 13×13 | `features.4` |
//! | conv3 | 384 kernels 3×3 | `features.8` |
//! | conv4 | 384 kernels 3×3 | `features.10` |
//! | conv5 | 256 kernels 3×3; max pool 3×3/2 → 6×6 | `features.12` |
//! | fc6, fc7 | 4096 units, ReLU, dropout 0.5 | `classifier.0`, `classifier.3` |
//! | fc8 | one unit per class (softmax in the loss) | `classifier.6` |
//!
//! - Local response normalisation b = a / (k + α/n·Σa²)^β with k = 2, n = 5, α = 1e-4,
//!   β = 0.75 (§3.3), after the ReLU of conv1 and conv2, before their pooling.
//! - Overlapping max pooling, 3×3 windows with stride 2 (§3.4).
//! - Dropout 0.5 on the outputs of fc6 and fc7 (§4.2).
//! - Weights N(0, 0.01²); biases 1 in conv2, conv4, conv5, fc6 and fc7 (to give ReLUs positive
//!   inputs early), 0 in conv1, conv3 and fc8 (§5).
//!
//! [`AlexNetLayout::TwoStream`] is the network as it was trained, split over two GPUs: conv2,
//! conv4 and conv5 see only the kernel maps of their own GPU (grouped convolutions with
//! groups = 2), conv3 and the fully connected layers see both, and each GPU normalises its own
//! 48 (conv1) or 128 (conv2) maps. 60,965,224 parameters for 1000 classes.
//! [`AlexNetLayout::SingleTower`] connects every layer to all maps of the previous one
//! (62,378,344 parameters). Both use dense fc layers: the paper's GPUs exchange their halves there.
//!
//! Kept from the paper: every size above, LRN, pooling, dropout, initialisation. Changed: conv1
//! pads its input by 2 so that 224 gives 55 (the paper's numbers only work for 227 unpadded);
//! fc6's fan-in follows the input size (256·6·6 = 9216 at 224×224), so other sizes build a
//! network of the same shape up to fc6. PCA colour augmentation and the learning-rate schedule
//! belong to the data pipeline and the trainer.
//!
//! **[`AlexNetLayout::Torchvision`]** is `torchvision.models.alexnet`, after Krizhevsky's
//! "One weird trick" (2014) single-GPU version: 64, 192, 384, 256, 256 kernels, no LRN, an
//! adaptive 6×6 average pool before the classifier (so any input of at least 63×63 works),
//! dropout on the inputs of fc6 and fc7, PyTorch's default initialisation, and torchvision's
//! names (`features.0`, `features.3`, …, `classifier.1`, `classifier.4`, `classifier.6`):
//! 61,100,840 parameters for 1000 classes.

use nabla_core::{Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::init::Init;
use nabla_nn::linear::LinearConfig;
use nabla_nn::{AdaptiveAvgPool2d, Dropout, LocalResponseNorm, MaxPool2d, Module, ReLU, Sequential};

use crate::common::{NORMAL_001, out_size};

/// Which AlexNet to build (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlexNetLayout {
    /// The paper's network on one device: every layer sees all maps of the previous one.
    SingleTower,
    /// The paper's two-GPU network: groups = 2 in conv2, conv4 and conv5.
    TwoStream,
    /// `torchvision.models.alexnet`.
    Torchvision,
}

pub struct AlexNet {
    pub features: Sequential,
    /// torchvision's `AdaptiveAvgPool2d((6, 6))`; the paper's layouts have none.
    pub avgpool: Option<AdaptiveAvgPool2d>,
    pub classifier: Sequential,
    pub layout: AlexNetLayout,
}

/// LRN applied to each GPU's maps separately, as in the two-GPU network: a channel window never
/// reaches across the two halves. With one stream it is plain LRN.
#[derive(Debug, Clone, Copy)]
pub struct StreamLrn {
    pub lrn: LocalResponseNorm,
    pub streams: usize,
}

impl Module for StreamLrn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.streams == 1 {
            return self.lrn.forward(x);
        }
        let per = x.dims()[1] / self.streams;
        let parts = (0..self.streams)
            .map(|s| self.lrn.forward(&x.narrow(1, s * per, per)?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), 1)
    }
    /// One `LRN` per stream, on its slice of the channels, concatenated.
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let per = x.sample.dims()[1] / self.streams;
        let mut parts = Vec::new();
        for s in 0..self.streams {
            let part = if self.streams == 1 {
                x.clone()
            } else {
                g.slice(x, 1, s * per, (s + 1) * per, 1)?
            };
            parts.push(self.lrn.to_onnx(g, &part)?);
        }
        g.concat(&parts, 1)
    }
    fn describe(&self) -> String {
        format!("{} per stream, {} streams", self.lrn.describe(), self.streams)
    }
}

impl AlexNet {
    /// AlexNet for `input = [channels, height, width]` and `classes` outputs.
    ///
    /// ```
    /// use nabla_core::{DType, Tensor};
    /// use nabla_models::alexnet::{AlexNet, AlexNetLayout};
    /// use nabla_nn::Module;
    /// // 224×224 gives the paper's network (60,965,224 parameters for 1000 classes); 63×63 is
    /// // the smallest input it takes, with 1×1 maps after pool5.
    /// let net = AlexNet::new(AlexNetLayout::TwoStream, [3, 63, 63], 10).unwrap();
    /// assert_eq!(net.classifier.layers().len(), 7);
    /// let y = net.forward(&Tensor::zeros((2, 3, 63, 63), DType::F32)).unwrap();
    /// assert_eq!(y.dims(), &[2, 10]);
    /// ```
    pub fn new(layout: AlexNetLayout, input: [usize; 3], classes: usize) -> Result<AlexNet> {
        match layout {
            AlexNetLayout::SingleTower => AlexNet::paper(1, input, classes),
            AlexNetLayout::TwoStream => AlexNet::paper(2, input, classes),
            AlexNetLayout::Torchvision => AlexNet::torchvision(input[0], classes),
        }
    }

    fn paper(streams: usize, [c, h, w]: [usize; 3], classes: usize) -> Result<AlexNet> {
        // The paper's initialisation: N(0, 0.01²) weights, the given constant bias.
        let conv = |cin, cout, k, stride, pad, groups, bias| {
            Conv2dConfig::new(cin, cout, k)
                .stride(stride)
                .padding(pad)
                .groups(groups)
                .weight_init(NORMAL_001)
                .bias_init(Init::Constant(bias))
                .init()
        };
        let fc = |fan_in, out, bias| {
            LinearConfig::new(fan_in, out)
                .weight_init(NORMAL_001)
                .bias_init(Init::Constant(bias))
                .init()
        };
        let lrn = StreamLrn {
            lrn: LocalResponseNorm::alexnet(),
            streams,
        };
        let pool = MaxPool2d::new(3).stride(2);
        let g = streams;
        let features = Sequential::new()
            .add(conv(c, 96, 11, 4, 2, 1, 0.0)?) // conv1
            .add(ReLU)
            .add(lrn)
            .add(pool)
            .add(conv(96, 256, 5, 1, 2, g, 1.0)?) // conv2
            .add(ReLU)
            .add(lrn)
            .add(pool)
            .add(conv(256, 384, 3, 1, 1, 1, 0.0)?) // conv3: all of conv2's maps
            .add(ReLU)
            .add(conv(384, 384, 3, 1, 1, g, 1.0)?) // conv4
            .add(ReLU)
            .add(conv(384, 256, 3, 1, 1, g, 1.0)?) // conv5
            .add(ReLU)
            .add(pool);
        // pool5's side: conv1, then three 3×3/2 poolings (the 5×5 and 3×3 convolutions keep the size).
        let side = |n: usize| -> Result<usize> {
            let mut n = out_size("AlexNet conv1", n, 11, 4, 2, false)?;
            for name in ["AlexNet pool1", "AlexNet pool2", "AlexNet pool5"] {
                n = out_size(name, n, 3, 2, 0, false)?;
            }
            Ok(n)
        };
        let fan_in = 256 * side(h)? * side(w)?;
        let classifier = Sequential::new()
            .add(fc(fan_in, 4096, 1.0)?) // fc6
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(fc(4096, 4096, 1.0)?) // fc7
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(fc(4096, classes, 0.0)?); // fc8
        Ok(AlexNet {
            features,
            avgpool: None,
            classifier,
            layout: if streams == 1 {
                AlexNetLayout::SingleTower
            } else {
                AlexNetLayout::TwoStream
            },
        })
    }

    fn torchvision(c: usize, classes: usize) -> Result<AlexNet> {
        let conv = |cin, cout, k, stride, pad| Conv2dConfig::new(cin, cout, k).stride(stride).padding(pad).init();
        let pool = MaxPool2d::new(3).stride(2);
        let features = Sequential::new()
            .add(conv(c, 64, 11, 4, 2)?)
            .add(ReLU)
            .add(pool)
            .add(conv(64, 192, 5, 1, 2)?)
            .add(ReLU)
            .add(pool)
            .add(conv(192, 384, 3, 1, 1)?)
            .add(ReLU)
            .add(conv(384, 256, 3, 1, 1)?)
            .add(ReLU)
            .add(conv(256, 256, 3, 1, 1)?)
            .add(ReLU)
            .add(pool);
        let classifier = Sequential::new()
            .add(Dropout::new(0.5)?)
            .add(nabla_nn::Linear::new(256 * 6 * 6, 4096)?)
            .add(ReLU)
            .add(Dropout::new(0.5)?)
            .add(nabla_nn::Linear::new(4096, 4096)?)
            .add(ReLU)
            .add(nabla_nn::Linear::new(4096, classes)?);
        Ok(AlexNet {
            features,
            avgpool: Some(AdaptiveAvgPool2d::new(6, 6)),
            classifier,
            layout: AlexNetLayout::Torchvision,
        })
    }
}

impl Module for AlexNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.features.forward(x)?;
        if let Some(p) = &self.avgpool {
            h = p.forward(&h)?;
        }
        self.classifier.forward(&h.flatten(1, -1)?)
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let mut h = g.child("features", &self.features, x)?;
        if let Some(p) = &self.avgpool {
            h = g.child("avgpool", p, &h)?;
        }
        g.flatten_into("classifier", &self.classifier, &h)
    }
    fn describe(&self) -> String {
        match self.layout {
            AlexNetLayout::SingleTower => "AlexNet (Krizhevsky et al. 2012, single tower)".into(),
            AlexNetLayout::TwoStream => "AlexNet (Krizhevsky et al. 2012, two streams)".into(),
            AlexNetLayout::Torchvision => "AlexNet (torchvision)".into(),
        }
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![("features".into(), &self.features)];
        if let Some(p) = &self.avgpool {
            out.push(("avgpool".into(), p));
        }
        out.push(("classifier".into(), &self.classifier));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::DType;

    #[test]
    fn two_stream_lrn_stays_within_each_stream() {
        let x = Tensor::randn((1, 8, 2, 2), DType::F64)
            .unwrap()
            .mul_scalar(30.0)
            .unwrap();
        let lrn = LocalResponseNorm::alexnet();
        let split = StreamLrn { lrn, streams: 2 }.forward(&x).unwrap();
        let halves = [0, 4].map(|s| lrn.forward(&x.narrow(1, s, 4).unwrap()).unwrap());
        let expected = Tensor::cat(&[&halves[0], &halves[1]], 1).unwrap();
        assert_eq!(split.to_vec::<f64>().unwrap(), expected.to_vec::<f64>().unwrap());
        // Across the boundary (channels 3 and 4) the windows differ from one LRN over all 8.
        assert_ne!(
            split.to_vec::<f64>().unwrap(),
            lrn.forward(&x).unwrap().to_vec::<f64>().unwrap()
        );
    }

    #[test]
    fn paper_initialisation_and_groups() {
        let net = AlexNet::new(AlexNetLayout::TwoStream, [3, 64, 64], 10).unwrap();
        let params: std::collections::HashMap<String, Tensor> = net.named_parameters().into_iter().collect();
        // Biases 1 in conv2, conv4, conv5, fc6, fc7; 0 in conv1, conv3, fc8 (§5).
        for (name, bias) in [
            ("features.0", 0.0),
            ("features.4", 1.0),
            ("features.8", 0.0),
            ("features.10", 1.0),
            ("features.12", 1.0),
            ("classifier.0", 1.0),
            ("classifier.3", 1.0),
            ("classifier.6", 0.0),
        ] {
            let b = params[&format!("{name}.bias")].to_vec::<f32>().unwrap();
            assert!(b.iter().all(|&v| v == bias), "{name}.bias should be {bias}");
        }
        // Weights N(0, 0.01²): the sample standard deviation of fc7's 16.8 M weights.
        let w = params["classifier.3.weight"].to_vec::<f32>().unwrap();
        let std = (w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        assert!((std - 0.01).abs() < 1e-4, "std {std}");
        // groups = 2 in conv2, conv4, conv5: each kernel sees half the maps.
        assert_eq!(params["features.4.weight"].dims(), &[256, 48, 5, 5]);
        assert_eq!(params["features.8.weight"].dims(), &[384, 256, 3, 3]);
        assert_eq!(params["features.10.weight"].dims(), &[384, 192, 3, 3]);
        assert_eq!(params["features.12.weight"].dims(), &[256, 192, 3, 3]);
    }
}
