//! Residual networks (He, Zhang, Ren & Sun, 2016, "Deep residual learning for image
//! recognition", CVPR): the ImageNet ResNets of Table 1, the CIFAR-10 ResNets of §4.2, and the
//! plain networks they were compared with.
//!
//! A residual block learns F(x) and outputs ReLU(F(x) + shortcut(x)): when the identity is
//! close to the best mapping, pushing F towards 0 is easier than fitting the identity with a
//! stack of non-linear layers, and the gradient reaches early layers through the shortcuts.
//!
//! **ImageNet** ([`ResNetConfig::imagenet`]; torchvision's layout and names): `conv1` 7×7/2
//! (64), `bn1`, ReLU, `maxpool` 3×3/2, then four stages `layer1` … `layer4` (64, 128, 256, 512
//! channels, stride 2 at the start of each but the first), global average pooling and `fc`.
//!
//! | depth | block | blocks per stage | parameters (1000 classes) |
//! | --- | --- | --- | --- |
//! | 18 | basic | 2, 2, 2, 2 | 11,689,512 |
//! | 34 | basic | 3, 4, 6, 3 | 21,797,672 |
//! | 50 | bottleneck | 3, 4, 6, 3 | 25,557,032 |
//! | 101 | bottleneck | 3, 4, 23, 3 | 44,549,160 |
//! | 152 | bottleneck | 3, 8, 36, 3 | 60,192,808 |
//!
//! - Basic block (`conv1`, `bn1`, `conv2`, `bn2`): two 3×3 convolutions.
//! - Bottleneck (`conv1`, `bn1`, `conv2`, `bn2`, `conv3`, `bn3`): 1×1 reducing to the stage's
//!   width, 3×3, 1×1 expanding 4×. NOTE: the stride sits in the 3×3 convolution (torchvision,
//!   "ResNet v1.5"); the paper puts it in the first 1×1, which then skips three pixels in four.
//! - Shortcuts are the identity, and a projection (`downsample.0` 1×1 convolution with the
//!   block's stride, `downsample.1` batch norm) where the shape changes: the paper's option B.
//! - Convolutions have no bias (batch norm follows); initialisation as torchvision: Kaiming
//!   normal (fan out, ReLU) convolutions, batch norm γ = 1, β = 0, PyTorch's default for `fc`.
//!
//! **CIFAR-10** ([`ResNetConfig::cifar`], §4.2): `conv1` 3×3 (16), `bn1`, ReLU, three stages of
//! n basic blocks (16, 32, 64 channels, 32×32, 16×16, 8×8 maps), global average pooling and
//! `fc`: 6n + 2 layers, ResNet-20/32/44/56/110 for n = 3, 5, 7, 9, 18. Shortcuts where the
//! shape changes are option A (identity subsampled by 2, the new channels zero: no parameters;
//! ResNet-20 has 269,722 parameters, ResNet-56 853,018, as the paper's 0.27 M and 0.85 M) or
//! option B (projections). The names follow the ImageNet ones (`layer1.0.conv1.weight`, …).
//!
//! **Plain networks** ([`Shortcut::None`]): the same layers without any shortcut, the
//! "plain-18/34" of Fig. 4 and "plain-20…110" of Fig. 6, whose training error grows with depth
//! (the degradation problem that motivated residual learning).
//!
//! SE-ResNets ([`crate::senet`]) are these networks with a squeeze-and-excitation block after the
//! last batch norm of every residual block ([`ResNetConfig::squeeze_excitation`]).

use nabla_core::{Error, Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::onnx::{OnnxGraph, OnnxValue};
use nabla_nn::{AdaptiveAvgPool2d, BatchNorm, Conv2d, Linear, MaxPool2d, Module, ReLU, Sequential};

use crate::common::KAIMING_FAN_OUT;
use crate::senet::SqueezeExcitation;

/// How a block whose output shape differs from its input's joins the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// Option A: the input subsampled by the stride, zero channels appended. No parameters.
    ZeroPad,
    /// Option B: a 1×1 convolution with the stride and batch norm (`downsample.0`, `.1`).
    Projection,
    /// No shortcut at all, even where shapes agree: a plain network.
    None,
}

/// The two residual blocks of the paper (Fig. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convolutions; output channels = the stage's width.
    Basic,
    /// 1×1, 3×3, 1×1; output channels = 4 × the stage's width.
    Bottleneck,
}

impl BlockKind {
    fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The stem before the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stem {
    /// 7×7/2 convolution with 64 maps, batch norm, ReLU, 3×3/2 max pooling (224×224 inputs).
    ImageNet,
    /// 3×3 convolution with 16 maps, batch norm, ReLU (32×32 inputs).
    Cifar,
}

/// A ResNet's shape: the stem, the block, blocks and width per stage, the shortcut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    pub stem: Stem,
    pub block: BlockKind,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Width of each stage (the 3×3 convolutions' channels).
    pub widths: Vec<usize>,
    /// The shortcut used where shapes change (the identity is used elsewhere, except for `None`).
    pub shortcut: Shortcut,
    /// Squeeze-and-excitation with this reduction after each block's last batch norm.
    pub se_reduction: Option<usize>,
    pub in_channels: usize,
    pub classes: usize,
}

impl ResNetConfig {
    /// ResNet-18, 34, 50, 101 or 152 for ImageNet-sized inputs (Table 1), torchvision's layout.
    pub fn imagenet(depth: usize, in_channels: usize, classes: usize) -> Result<ResNetConfig> {
        let (block, depths) = match depth {
            18 => (BlockKind::Basic, vec![2, 2, 2, 2]),
            34 => (BlockKind::Basic, vec![3, 4, 6, 3]),
            50 => (BlockKind::Bottleneck, vec![3, 4, 6, 3]),
            101 => (BlockKind::Bottleneck, vec![3, 4, 23, 3]),
            152 => (BlockKind::Bottleneck, vec![3, 8, 36, 3]),
            _ => {
                return Err(Error::Argument {
                    op: "ResNetConfig::imagenet",
                    msg: format!("ImageNet ResNets have depths 18, 34, 50, 101 and 152, not {depth}"),
                });
            }
        };
        Ok(ResNetConfig {
            stem: Stem::ImageNet,
            block,
            depths,
            widths: vec![64, 128, 256, 512],
            shortcut: Shortcut::Projection,
            se_reduction: None,
            in_channels,
            classes,
        })
    }

    /// The CIFAR-10 ResNet with 6n + 2 layers (`depth` = 20, 32, 44, 56, 110, …), §4.2.
    pub fn cifar(depth: usize, shortcut: Shortcut, in_channels: usize, classes: usize) -> Result<ResNetConfig> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(Error::Argument {
                op: "ResNetConfig::cifar",
                msg: format!("CIFAR ResNets have 6n + 2 layers (20, 32, 44, 56, 110, ...), not {depth}"),
            });
        }
        let n = (depth - 2) / 6;
        Ok(ResNetConfig {
            stem: Stem::Cifar,
            block: BlockKind::Basic,
            depths: vec![n; 3],
            widths: vec![16, 32, 64],
            shortcut,
            se_reduction: None,
            in_channels,
            classes,
        })
    }

    /// The same network without shortcuts: a plain network.
    pub fn plain(mut self) -> Self {
        self.shortcut = Shortcut::None;
        self
    }

    /// Adds a squeeze-and-excitation block with this reduction to every residual block.
    pub fn squeeze_excitation(mut self, reduction: usize) -> Self {
        self.se_reduction = Some(reduction);
        self
    }

    pub fn init(&self) -> Result<ResNet> {
        ResNet::new(self)
    }
}

/// A convolution without bias and with torchvision's Kaiming initialisation.
fn conv(cin: usize, cout: usize, k: usize, stride: usize) -> Result<Conv2d> {
    Conv2dConfig::new(cin, cout, k)
        .stride(stride)
        .padding(k / 2)
        .bias(false)
        .weight_init(KAIMING_FAN_OUT)
        .init()
}

/// Option A: `x` subsampled by `stride` (x[:, :, ::s, ::s]) with `extra` zero channels appended.
/// Built from differentiable views: the gradient flows back to the kept positions.
pub fn zero_pad_shortcut(x: &Tensor, stride: usize, extra: usize) -> Result<Tensor> {
    // x[:, :, ::s, ::s]: a view; the one copy is the concatenation with the zero channels.
    let h = x.slice(2, 0, usize::MAX, stride)?.slice(3, 0, usize::MAX, stride)?;
    if extra == 0 {
        return h.contiguous();
    }
    let mut zeros = h.dims().to_vec();
    zeros[1] = extra;
    Tensor::cat(&[&h, &Tensor::full_on(0.0, zeros, h.dtype(), h.device())?], 1)
}

/// The shortcut branch of one block, as built.
enum ShortcutPath {
    Identity,
    ZeroPad {
        stride: usize,
        extra: usize,
    },
    /// `downsample`: 1×1 convolution with the stride, batch norm.
    Projection(Sequential),
    None,
}

impl ShortcutPath {
    fn new(kind: Shortcut, cin: usize, cout: usize, stride: usize) -> Result<ShortcutPath> {
        if kind == Shortcut::None {
            return Ok(ShortcutPath::None);
        }
        if stride == 1 && cin == cout {
            return Ok(ShortcutPath::Identity);
        }
        match kind {
            Shortcut::ZeroPad if cout >= cin => Ok(ShortcutPath::ZeroPad {
                stride,
                extra: cout - cin,
            }),
            Shortcut::ZeroPad => Err(Error::Argument {
                op: "ResNet",
                msg: format!("a zero-padding shortcut cannot reduce {cin} channels to {cout}"),
            }),
            _ => Ok(ShortcutPath::Projection(
                Sequential::new()
                    .add(conv(cin, cout, 1, stride)?)
                    .add(BatchNorm::new_2d(cout)),
            )),
        }
    }

    /// F(x) + shortcut(x), then ReLU.
    fn join(&self, residual: Tensor, x: &Tensor) -> Result<Tensor> {
        let sum = match self {
            ShortcutPath::Identity => residual.add(x)?,
            ShortcutPath::ZeroPad { stride, extra } => residual.add(&zero_pad_shortcut(x, *stride, *extra)?)?,
            ShortcutPath::Projection(p) => residual.add(&p.forward(x)?)?,
            ShortcutPath::None => residual,
        };
        sum.relu()
    }

    /// `residual + shortcut(x)` and `Relu` in ONNX: option A as a strided `Slice` of each
    /// axis and a zero `Pad` of the channels, option B through its convolution.
    fn join_onnx(&self, g: &mut OnnxGraph, residual: OnnxValue, x: &OnnxValue) -> Result<OnnxValue> {
        let sum = match self {
            ShortcutPath::Identity => g.add(&residual, x)?,
            ShortcutPath::ZeroPad { stride, extra } => {
                let mut h = x.clone();
                if *stride > 1 {
                    for axis in [2, 3] {
                        let n = h.sample.dims()[axis];
                        h = g.slice(&h, axis, 0, n, *stride)?;
                    }
                }
                if *extra > 0 {
                    let pads = g.constant_i64("pads", &[0, 0, 0, 0, 0, *extra as i64, 0, 0]);
                    let y = zero_pad_shortcut(&x.sample, *stride, *extra)?;
                    h = g.op("Pad", &[&h.name, &pads], vec![], y);
                }
                g.add(&residual, &h)?
            }
            ShortcutPath::Projection(p) => {
                let s = g.child("downsample", p, x)?;
                g.add(&residual, &s)?
            }
            ShortcutPath::None => residual,
        };
        g.relu(&sum)
    }

    fn child(&self) -> Option<(String, &dyn Module)> {
        match self {
            ShortcutPath::Projection(p) => Some(("downsample".into(), p as &dyn Module)),
            _ => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            ShortcutPath::Identity => "identity shortcut",
            ShortcutPath::ZeroPad { .. } => "zero-padding shortcut (option A)",
            ShortcutPath::Projection(_) => "projection shortcut (option B)",
            ShortcutPath::None => "no shortcut (plain)",
        }
    }
}

/// Two 3×3 convolutions with batch norm: ReLU(bn2(conv2(ReLU(bn1(conv1 x)))) + shortcut(x)).
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub se: Option<SqueezeExcitation>,
    shortcut: ShortcutPath,
}

impl BasicBlock {
    pub fn new(cin: usize, width: usize, stride: usize, shortcut: Shortcut, se: Option<usize>) -> Result<Self> {
        Ok(BasicBlock {
            conv1: conv(cin, width, 3, stride)?,
            bn1: BatchNorm::new_2d(width),
            conv2: conv(width, width, 3, 1)?,
            bn2: BatchNorm::new_2d(width),
            se: se.map(|r| SqueezeExcitation::new(width, r)).transpose()?,
            shortcut: ShortcutPath::new(shortcut, cin, width, stride)?,
        })
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let mut h = self.bn2.forward(&self.conv2.forward(&h)?)?;
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        self.shortcut.join(h, x)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        let h = g.child("conv1", &self.conv1, x)?;
        let h = g.child("bn1", &self.bn1, &h)?;
        let h = g.relu(&h)?;
        let h = g.child("conv2", &self.conv2, &h)?;
        let mut h = g.child("bn2", &self.bn2, &h)?;
        if let Some(se) = &self.se {
            h = g.child("se", se, &h)?;
        }
        self.shortcut.join_onnx(g, h, x)
    }
    fn describe(&self) -> String {
        let d = self.conv1.weight.dims();
        format!("BasicBlock({} → {}, {})", d[1], d[0], self.shortcut.describe())
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            ("conv1".into(), &self.conv1),
            ("bn1".into(), &self.bn1),
            ("conv2".into(), &self.conv2),
            ("bn2".into(), &self.bn2),
        ];
        if let Some(se) = &self.se {
            out.push(("se".into(), se));
        }
        out.extend(self.shortcut.child());
        out
    }
}

/// 1×1 reduce, 3×3 (with the stride), 1×1 expand ×4, batch norm after each.
pub struct Bottleneck {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Conv2d,
    pub bn3: BatchNorm,
    pub se: Option<SqueezeExcitation>,
    shortcut: ShortcutPath,
}

impl Bottleneck {
    pub fn new(cin: usize, width: usize, stride: usize, shortcut: Shortcut, se: Option<usize>) -> Result<Self> {
        let cout = width * BlockKind::Bottleneck.expansion();
        Ok(Bottleneck {
            conv1: conv(cin, width, 1, 1)?,
            bn1: BatchNorm::new_2d(width),
            conv2: conv(width, width, 3, stride)?,
            bn2: BatchNorm::new_2d(width),
            conv3: conv(width, cout, 1, 1)?,
            bn3: BatchNorm::new_2d(cout),
            se: se.map(|r| SqueezeExcitation::new(cout, r)).transpose()?,
            shortcut: ShortcutPath::new(shortcut, cin, cout, stride)?,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let h = self.bn2.forward(&self.conv2.forward(&h)?)?.relu()?;
        let mut h = self.bn3.forward(&self.conv3.forward(&h)?)?;
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        self.shortcut.join(h, x)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        let mut h = x.clone();
        for (i, (conv, bn)) in [
            (&self.conv1, &self.bn1),
            (&self.conv2, &self.bn2),
            (&self.conv3, &self.bn3),
        ]
        .into_iter()
        .enumerate()
        {
            h = g.child(&format!("conv{}", i + 1), conv, &h)?;
            h = g.child(&format!("bn{}", i + 1), bn, &h)?;
            if i < 2 {
                h = g.relu(&h)?;
            }
        }
        if let Some(se) = &self.se {
            h = g.child("se", se, &h)?;
        }
        self.shortcut.join_onnx(g, h, x)
    }
    fn describe(&self) -> String {
        let (cin, cout) = (self.conv1.weight.dims()[1], self.conv3.weight.dims()[0]);
        format!("Bottleneck({cin} → {cout}, {})", self.shortcut.describe())
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            ("conv1".into(), &self.conv1),
            ("bn1".into(), &self.bn1),
            ("conv2".into(), &self.conv2),
            ("bn2".into(), &self.bn2),
            ("conv3".into(), &self.conv3),
            ("bn3".into(), &self.bn3),
        ];
        if let Some(se) = &self.se {
            out.push(("se".into(), se));
        }
        out.extend(self.shortcut.child());
        out
    }
}

pub struct ResNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub relu: ReLU,
    /// The ImageNet stem's 3×3/2 max pool; none in the CIFAR stem.
    pub maxpool: Option<MaxPool2d>,
    /// `layer1`, `layer2`, …: the stages, each a `Sequential` of blocks.
    pub layers: Vec<Sequential>,
    pub avgpool: AdaptiveAvgPool2d,
    pub fc: Linear,
    names: Vec<String>,
    description: String,
}

impl ResNet {
    /// Builds the network `cfg` describes.
    ///
    /// ```
    /// use nabla_models::resnet::{ResNetConfig, Shortcut};
    /// use nabla_nn::Module;
    /// let net = ResNetConfig::cifar(20, Shortcut::ZeroPad, 3, 10).unwrap().init().unwrap();
    /// assert_eq!(net.num_parameters(), 269_722);
    /// let y = net.forward(&nabla_core::Tensor::zeros((2, 3, 32, 32), nabla_core::DType::F32)).unwrap();
    /// assert_eq!(y.dims(), &[2, 10]);
    /// ```
    pub fn new(cfg: &ResNetConfig) -> Result<ResNet> {
        if cfg.depths.len() != cfg.widths.len() || cfg.depths.is_empty() {
            return Err(Error::Argument {
                op: "ResNet::new",
                msg: format!(
                    "needs as many stage depths as widths, got {:?} and {:?}",
                    cfg.depths, cfg.widths
                ),
            });
        }
        let (stem_width, conv1, maxpool) = match cfg.stem {
            Stem::ImageNet => (
                64,
                conv(cfg.in_channels, 64, 7, 2)?,
                Some(MaxPool2d::new(3).stride(2).padding(1)),
            ),
            Stem::Cifar => (16, conv(cfg.in_channels, 16, 3, 1)?, None),
        };
        let expansion = cfg.block.expansion();
        let mut c = stem_width;
        let mut layers = Vec::new();
        for (i, (&n, &width)) in cfg.depths.iter().zip(&cfg.widths).enumerate() {
            let mut stage = Sequential::new();
            for b in 0..n {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let block: Box<dyn Module> = match cfg.block {
                    BlockKind::Basic => Box::new(BasicBlock::new(c, width, stride, cfg.shortcut, cfg.se_reduction)?),
                    BlockKind::Bottleneck => {
                        Box::new(Bottleneck::new(c, width, stride, cfg.shortcut, cfg.se_reduction)?)
                    }
                };
                stage.push(block);
                c = width * expansion;
            }
            layers.push(stage);
        }
        Ok(ResNet {
            conv1,
            bn1: BatchNorm::new_2d(stem_width),
            relu: ReLU,
            maxpool,
            names: (1..=layers.len()).map(|i| format!("layer{i}")).collect(),
            layers,
            avgpool: AdaptiveAvgPool2d::new(1, 1),
            fc: Linear::new(c, cfg.classes)?,
            description: describe(cfg),
        })
    }
}

/// "ResNet-50", "plain-20", "SE-ResNet-18", "ResNet-20 (option A)", … from the configuration.
fn describe(cfg: &ResNetConfig) -> String {
    let per_block = match cfg.block {
        BlockKind::Basic => 2,
        BlockKind::Bottleneck => 3,
    };
    let depth = per_block * cfg.depths.iter().sum::<usize>() + 2;
    let family = match (cfg.shortcut, cfg.se_reduction) {
        (Shortcut::None, _) => "plain",
        (_, Some(_)) => "SE-ResNet",
        _ => "ResNet",
    };
    let option = match (cfg.stem, cfg.shortcut) {
        (Stem::Cifar, Shortcut::ZeroPad) => ", CIFAR, option A",
        (Stem::Cifar, Shortcut::Projection) => ", CIFAR, option B",
        (Stem::Cifar, Shortcut::None) => ", CIFAR",
        (Stem::ImageNet, Shortcut::ZeroPad) => ", option A",
        _ => "",
    };
    format!("{family}-{depth} (He et al. 2016{option})")
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        if let Some(p) = &self.maxpool {
            h = p.forward(&h)?;
        }
        for stage in &self.layers {
            h = stage.forward(&h)?;
        }
        self.fc.forward(&self.avgpool.forward(&h)?.flatten(1, -1)?)
    }
    fn to_onnx(&self, g: &mut OnnxGraph, x: &OnnxValue) -> Result<OnnxValue> {
        let body: Vec<(String, &dyn Module)> = self
            .children()
            .into_iter()
            .take_while(|(name, _)| name != "avgpool")
            .collect();
        let h = g.chain(body, x)?;
        let h = g.child("avgpool", &self.avgpool, &h)?;
        g.flatten_into("fc", &self.fc, &h)
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            ("conv1".into(), &self.conv1),
            ("bn1".into(), &self.bn1),
            ("relu".into(), &self.relu),
        ];
        if let Some(p) = &self.maxpool {
            out.push(("maxpool".into(), p));
        }
        for (name, stage) in self.names.iter().zip(&self.layers) {
            out.push((name.clone(), stage));
        }
        out.push(("avgpool".into(), &self.avgpool));
        out.push(("fc".into(), &self.fc));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::DType;

    #[test]
    fn zero_pad_shortcut_subsamples_and_pads() {
        // x[n, c, h, w] = 100c + 10h + w on a 2×5×5 map: keep rows and columns 0, 2, 4.
        let v: Vec<f64> = (0..2 * 25)
            .map(|i| (100 * (i / 25) + 10 * ((i / 5) % 5) + i % 5) as f64)
            .collect();
        let x = Tensor::from_vec(v, (1, 2, 5, 5)).unwrap().requires_grad_();
        let y = zero_pad_shortcut(&x, 2, 2).unwrap();
        assert_eq!(y.dims(), &[1, 4, 3, 3]);
        let y_v = y.to_vec::<f64>().unwrap();
        assert_eq!(&y_v[..9], &[0., 2., 4., 20., 22., 24., 40., 42., 44.]);
        assert_eq!(&y_v[9..12], &[100., 102., 104.]);
        assert!(y_v[18..].iter().all(|&v| v == 0.0));
        // δx is 1 at the kept positions, 0 elsewhere.
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = g.get(&x).unwrap().to_vec::<f64>().unwrap();
        assert_eq!(gx.iter().sum::<f64>(), 18.0);
        assert_eq!(gx[0], 1.0);
        assert_eq!(gx[1], 0.0);
        assert_eq!(gx[2], 1.0);
        assert_eq!(gx[5], 0.0);
    }

    #[test]
    fn bottlenecks_stride_in_the_3x3_convolution() {
        // torchvision's ResNet v1.5: layer2.0 halves the map in conv2 (3×3) and downsample.0.
        let net = ResNetConfig::imagenet(50, 3, 10).unwrap().init().unwrap();
        let layer2 = net.children().into_iter().find(|(n, _)| n == "layer2").unwrap().1;
        let block = layer2.children()[0].1;
        let stride_of = |name: &str| {
            let (_, m) = block.children().into_iter().find(|(n, _)| n == name).unwrap();
            m.describe()
        };
        // Stride 1 is not written out; stride 2 is.
        assert!(!stride_of("conv1").contains("stride"), "{}", stride_of("conv1"));
        assert!(stride_of("conv2").contains("stride 2"), "{}", stride_of("conv2"));
        let x = Tensor::zeros((1, 3, 64, 64), DType::F32);
        assert_eq!(net.forward(&x).unwrap().dims(), &[1, 10]);
    }

    #[test]
    fn names_follow_torchvision() {
        let net = ResNetConfig::cifar(20, Shortcut::Projection, 3, 10)
            .unwrap()
            .init()
            .unwrap();
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"layer2.0.downsample.0.weight".to_string()));
        assert!(names.contains(&"layer3.2.bn2.bias".to_string()));
        let buffers: Vec<String> = net.named_buffers().into_iter().map(|(n, _)| n).collect();
        assert!(buffers.contains(&"bn1.running_mean".to_string()));
        let x = Tensor::zeros((1, 3, 32, 32), DType::F32);
        assert_eq!(net.forward(&x).unwrap().dims(), &[1, 10]);
    }
}
