//! GoogLeNet, Inception v1 (Szegedy et al., 2015, "Going deeper with convolutions", CVPR,
//! Table 1 and Fig. 3), in torchvision's layout and names.
//!
//! An Inception module runs four branches side by side and concatenates their maps:
//! a 1×1 convolution (`branch1`); a 1×1 reduction then a 3×3 (`branch2`); a 1×1 reduction then
//! a "5×5" (`branch3`); a 3×3 max pool (stride 1) then a 1×1 projection (`branch4`). The 1×1
//! reductions are what keep 22 layers affordable.
//!
//! | stage | layers (224×224 input) | names |
//! | --- | --- | --- |
//! | stem | 7×7/2 conv 64 → max pool 3×3/2 → 1×1 conv 64 → 3×3 conv 192 → max pool 3×3/2 | `conv1`, `conv2`, `conv3` |
//! | 28×28 | inception (3a), (3b); max pool 3×3/2 | `inception3a`, `inception3b` |
//! | 14×14 | inception (4a)–(4e); max pool 2×2/2 | `inception4a` … `inception4e` |
//! | 7×7 | inception (5a), (5b); global average pool; dropout; linear | `inception5a`, `inception5b`, `fc` |
//! | auxiliary | on (4a) and (4d): 4×4 average pool, 1×1 conv 128, fc 1024, dropout 0.7, fc | `aux1`, `aux2` |
//!
//! Every convolution is torchvision's `BasicConv2d`: convolution without bias, batch norm
//! (ε = 0.001) and ReLU, names `….conv.weight`, `….bn.running_mean`, … Batch norm is not in the
//! paper (it came a year later, with Inception v2); torchvision's port of the original weights
//! has it, and so does this file.
//!
//! **The auxiliary classifiers** push gradient into the middle of the network during training
//! (§5): the total loss is L = L_main + 0.3·(L_aux1 + L_aux2) ([`AUX_LOSS_WEIGHT`]). At
//! evaluation they are dropped: [`Module::forward`] returns the main logits and never runs
//! them; [`GoogLeNet::forward_train`] returns `(logits, aux1, aux2)` and
//! [`GoogLeNet::training_loss`] the weighted sum. [`GoogLeNet::drop_aux_heads`] removes them,
//! leaving torchvision's `googlenet(aux_logits=False)`: 6,624,904 parameters for 1000 classes
//! (13,004,888 with the heads).
//!
//! Kept from torchvision, not the paper: `branch3` uses a 3×3 convolution where the paper has
//! 5×5 (a slip in the original port, kept for its weights; [`GoogLeNetConfig::paper_5x5`]
//! restores the paper's 5×5: 7,005,832 parameters without the heads); ceil-mode pooling; the
//! auxiliary heads' adaptive 4×4 average pool (the paper's 5×5/3 pool, identical at 224×224);
//! truncated-normal weights N(0, 0.01²). From the paper rather than torchvision: dropout 0.4
//! before `fc` (torchvision 0.2). Not here: torchvision's `transform_input` (a re-normalisation
//! for its ported weights).

use nabla_core::{Error, Result, Tensor};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::linear::LinearConfig;
use nabla_nn::loss::{CrossEntropyOptions, cross_entropy};
use nabla_nn::{AdaptiveAvgPool2d, BatchNorm, Conv2d, Dropout, Linear, MaxPool2d, Module, Sequential};

use crate::common::NORMAL_001;

/// The weight of each auxiliary classifier's loss in the training loss (Szegedy et al., §5).
pub const AUX_LOSS_WEIGHT: f64 = 0.3;

/// Convolution (no bias), batch norm with ε = 0.001, ReLU: torchvision's `BasicConv2d`.
pub struct BasicConv2d {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl BasicConv2d {
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, stride: usize, padding: usize) -> Result<Self> {
        Ok(BasicConv2d {
            conv: Conv2dConfig::new(in_channels, out_channels, kernel)
                .stride(stride)
                .padding(padding)
                .bias(false)
                .weight_init(NORMAL_001)
                .init()?,
            bn: BatchNorm::new_2d(out_channels).eps(1e-3),
        })
    }
}

impl Module for BasicConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)?.relu()
    }
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let h = g.child("conv", &self.conv, x)?;
        let h = g.child("bn", &self.bn, &h)?;
        g.relu(&h)
    }
    fn describe(&self) -> String {
        format!("BasicConv2d: {} + BN + ReLU", self.conv.describe())
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![("conv".into(), &self.conv as &dyn Module), ("bn".into(), &self.bn)]
    }
}

/// An Inception module: four branches whose maps are concatenated.
pub struct Inception {
    pub branch1: BasicConv2d,
    pub branch2: Sequential,
    pub branch3: Sequential,
    pub branch4: Sequential,
    out_channels: usize,
}

impl Inception {
    /// Widths as in Table 1: `#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj`;
    /// `k5` is the kernel of the "5×5" branch (3 in torchvision, 5 in the paper).
    pub fn new(in_channels: usize, widths: [usize; 6], k5: usize) -> Result<Inception> {
        let [c1, c3r, c3, c5r, c5, pool_proj] = widths;
        Ok(Inception {
            branch1: BasicConv2d::new(in_channels, c1, 1, 1, 0)?,
            branch2: Sequential::new()
                .add(BasicConv2d::new(in_channels, c3r, 1, 1, 0)?)
                .add(BasicConv2d::new(c3r, c3, 3, 1, 1)?),
            branch3: Sequential::new()
                .add(BasicConv2d::new(in_channels, c5r, 1, 1, 0)?)
                .add(BasicConv2d::new(c5r, c5, k5, 1, k5 / 2)?),
            branch4: Sequential::new()
                .add(MaxPool2d::new(3).stride(1).padding(1).ceil_mode(true))
                .add(BasicConv2d::new(in_channels, pool_proj, 1, 1, 0)?),
            out_channels: c1 + c3 + c5 + pool_proj,
        })
    }
}

impl Module for Inception {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b1 = self.branch1.forward(x)?;
        let b2 = self.branch2.forward(x)?;
        let b3 = self.branch3.forward(x)?;
        let b4 = self.branch4.forward(x)?;
        Tensor::cat(&[&b1, &b2, &b3, &b4], 1)
    }
    /// The four branches on the same input, joined by `Concat` along the channels.
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let branches = [
            g.child("branch1", &self.branch1, x)?,
            g.child("branch2", &self.branch2, x)?,
            g.child("branch3", &self.branch3, x)?,
            g.child("branch4", &self.branch4, x)?,
        ];
        g.concat(&branches, 1)
    }
    fn describe(&self) -> String {
        format!("Inception (4 branches → {} maps)", self.out_channels)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("branch1".into(), &self.branch1 as &dyn Module),
            ("branch2".into(), &self.branch2),
            ("branch3".into(), &self.branch3),
            ("branch4".into(), &self.branch4),
        ]
    }
}

/// An auxiliary classifier: 4×4 average pool, 1×1 conv to 128, fc 1024 + ReLU, dropout 0.7, fc.
pub struct InceptionAux {
    pub conv: BasicConv2d,
    pub fc1: Linear,
    pub fc2: Linear,
    pub dropout: Dropout,
}

impl InceptionAux {
    pub fn new(in_channels: usize, classes: usize) -> Result<InceptionAux> {
        Ok(InceptionAux {
            conv: BasicConv2d::new(in_channels, 128, 1, 1, 0)?,
            fc1: LinearConfig::new(128 * 4 * 4, 1024).weight_init(NORMAL_001).init()?,
            fc2: LinearConfig::new(1024, classes).weight_init(NORMAL_001).init()?,
            dropout: Dropout::new(0.7)?,
        })
    }
}

impl Module for InceptionAux {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv.forward(&x.adaptive_avg_pool2d([4, 4])?)?;
        let h = self.fc1.forward(&h.flatten(1, -1)?)?.relu()?;
        self.fc2.forward(&self.dropout.forward(&h)?)
    }
    fn describe(&self) -> String {
        "InceptionAux (auxiliary classifier)".into()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("conv".into(), &self.conv as &dyn Module),
            ("fc1".into(), &self.fc1),
            ("fc2".into(), &self.fc2),
            ("dropout".into(), &self.dropout),
        ]
    }
}

/// Options of [`GoogLeNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoogLeNetConfig {
    pub in_channels: usize,
    pub classes: usize,
    /// Build the two auxiliary classifiers (default true).
    pub aux_heads: bool,
    /// The paper's 5×5 convolution in `branch3` instead of torchvision's 3×3 (default false).
    pub paper_5x5: bool,
}

impl GoogLeNetConfig {
    pub fn new(in_channels: usize, classes: usize) -> Self {
        GoogLeNetConfig {
            in_channels,
            classes,
            aux_heads: true,
            paper_5x5: false,
        }
    }
    pub fn aux_heads(mut self, on: bool) -> Self {
        self.aux_heads = on;
        self
    }
    pub fn paper_5x5(mut self, on: bool) -> Self {
        self.paper_5x5 = on;
        self
    }
    pub fn init(&self) -> Result<GoogLeNet> {
        GoogLeNet::new(*self)
    }
}

pub struct GoogLeNet {
    pub conv1: BasicConv2d,
    pub maxpool1: MaxPool2d,
    pub conv2: BasicConv2d,
    pub conv3: BasicConv2d,
    pub maxpool2: MaxPool2d,
    pub inception3a: Inception,
    pub inception3b: Inception,
    pub maxpool3: MaxPool2d,
    pub inception4a: Inception,
    pub inception4b: Inception,
    pub inception4c: Inception,
    pub inception4d: Inception,
    pub inception4e: Inception,
    pub maxpool4: MaxPool2d,
    pub inception5a: Inception,
    pub inception5b: Inception,
    pub avgpool: AdaptiveAvgPool2d,
    pub dropout: Dropout,
    pub fc: Linear,
    /// On (4a)'s output; `None` once dropped.
    pub aux1: Option<InceptionAux>,
    /// On (4d)'s output; `None` once dropped.
    pub aux2: Option<InceptionAux>,
    paper_5x5: bool,
}

impl GoogLeNet {
    /// GoogLeNet for `cfg` (224×224 inputs in the paper; any input of at least 15×15 works).
    ///
    /// ```
    /// use nabla_models::googlenet::GoogLeNetConfig;
    /// use nabla_nn::Module;
    /// let mut net = GoogLeNetConfig::new(3, 1000).init().unwrap();
    /// net.drop_aux_heads();
    /// assert_eq!(net.num_parameters(), 6_624_904);
    /// ```
    pub fn new(cfg: GoogLeNetConfig) -> Result<GoogLeNet> {
        let k5 = if cfg.paper_5x5 { 5 } else { 3 };
        let inception = |c, widths| Inception::new(c, widths, k5);
        let pool = MaxPool2d::new(3).stride(2).ceil_mode(true);
        let aux = |c| cfg.aux_heads.then(|| InceptionAux::new(c, cfg.classes)).transpose();
        Ok(GoogLeNet {
            conv1: BasicConv2d::new(cfg.in_channels, 64, 7, 2, 3)?,
            maxpool1: pool,
            conv2: BasicConv2d::new(64, 64, 1, 1, 0)?,
            conv3: BasicConv2d::new(64, 192, 3, 1, 1)?,
            maxpool2: pool,
            inception3a: inception(192, [64, 96, 128, 16, 32, 32])?,
            inception3b: inception(256, [128, 128, 192, 32, 96, 64])?,
            maxpool3: pool,
            inception4a: inception(480, [192, 96, 208, 16, 48, 64])?,
            inception4b: inception(512, [160, 112, 224, 24, 64, 64])?,
            inception4c: inception(512, [128, 128, 256, 24, 64, 64])?,
            inception4d: inception(512, [112, 144, 288, 32, 64, 64])?,
            inception4e: inception(528, [256, 160, 320, 32, 128, 128])?,
            maxpool4: MaxPool2d::new(2).stride(2).ceil_mode(true),
            inception5a: inception(832, [256, 160, 320, 32, 128, 128])?,
            inception5b: inception(832, [384, 192, 384, 48, 128, 128])?,
            avgpool: AdaptiveAvgPool2d::new(1, 1),
            dropout: Dropout::new(0.4)?,
            fc: LinearConfig::new(1024, cfg.classes).weight_init(NORMAL_001).init()?,
            aux1: aux(512)?,
            aux2: aux(528)?,
            paper_5x5: cfg.paper_5x5,
        })
    }

    /// Removes the auxiliary classifiers (for evaluation or export): what is left is
    /// torchvision's `googlenet(aux_logits=False)`.
    pub fn drop_aux_heads(&mut self) {
        self.aux1 = None;
        self.aux2 = None;
    }

    /// The main logits and, when `with_aux`, the auxiliary ones.
    fn run(&self, x: &Tensor, with_aux: bool) -> Result<(Tensor, Option<Tensor>, Option<Tensor>)> {
        let aux = |head: &Option<InceptionAux>, h: &Tensor| match head {
            Some(a) if with_aux => a.forward(h).map(Some),
            _ => Ok(None),
        };
        let mut h = self.conv1.forward(x)?;
        for layer in [&self.maxpool1 as &dyn Module, &self.conv2, &self.conv3, &self.maxpool2] {
            h = layer.forward(&h)?;
        }
        for layer in [
            &self.inception3a as &dyn Module,
            &self.inception3b,
            &self.maxpool3,
            &self.inception4a,
        ] {
            h = layer.forward(&h)?;
        }
        let aux1 = aux(&self.aux1, &h)?;
        for layer in [&self.inception4b, &self.inception4c, &self.inception4d] {
            h = layer.forward(&h)?;
        }
        let aux2 = aux(&self.aux2, &h)?;
        for layer in [
            &self.inception4e as &dyn Module,
            &self.maxpool4,
            &self.inception5a,
            &self.inception5b,
        ] {
            h = layer.forward(&h)?;
        }
        let h = self.avgpool.forward(&h)?.flatten(1, -1)?;
        let logits = self.fc.forward(&self.dropout.forward(&h)?)?;
        Ok((logits, aux1, aux2))
    }

    /// `(logits, aux1, aux2)`: the main classifier's and the two auxiliary classifiers' logits,
    /// for training. An error if the heads were dropped.
    pub fn forward_train(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        match self.run(x, true)? {
            (logits, Some(a1), Some(a2)) => Ok((logits, a1, a2)),
            _ => Err(Error::Argument {
                op: "GoogLeNet::forward_train",
                msg: "this GoogLeNet has no auxiliary classifiers (built without them or dropped); use forward".into(),
            }),
        }
    }

    /// The training loss L = CE(logits) + 0.3·(CE(aux1) + CE(aux2)), mean over the batch, for
    /// class indices `target` `[N]` (i64).
    pub fn training_loss(&self, x: &Tensor, target: &Tensor) -> Result<Tensor> {
        let (logits, a1, a2) = self.forward_train(x)?;
        let ce = |z: &Tensor| cross_entropy(z, target, &CrossEntropyOptions::default());
        ce(&logits)?.add(&ce(&a1)?.add(&ce(&a2)?)?.mul_scalar(AUX_LOSS_WEIGHT)?)
    }
}

impl Module for GoogLeNet {
    /// The main logits; the auxiliary classifiers are not run.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, false)?.0)
    }
    /// The main path only: the auxiliary classifiers serve training.
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let main: Vec<(String, &dyn Module)> = self
            .children()
            .into_iter()
            .take_while(|(name, _)| name != "avgpool")
            .collect();
        let h = g.chain(main, x)?;
        let h = g.child("avgpool", &self.avgpool, &h)?;
        g.flatten_into("fc", &self.fc, &h)
    }
    /// In training mode, the main logits and both auxiliary heads with weight 0.3.
    fn forward_with_aux(&self, x: &Tensor) -> Result<(Tensor, Vec<(f64, Tensor)>)> {
        let (logits, a1, a2) = self.run(x, true)?;
        Ok((
            logits,
            [a1, a2].into_iter().flatten().map(|a| (AUX_LOSS_WEIGHT, a)).collect(),
        ))
    }
    fn describe(&self) -> String {
        let k = if self.paper_5x5 { ", 5×5 branches" } else { "" };
        let aux = if self.aux1.is_some() {
            ", auxiliary classifiers"
        } else {
            ""
        };
        format!("GoogLeNet (Szegedy et al. 2015{k}{aux})")
    }
    /// The main path in forward order, then the auxiliary classifiers (they branch off
    /// (4a) and (4d) and are not part of the chain).
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            ("conv1".into(), &self.conv1),
            ("maxpool1".into(), &self.maxpool1),
            ("conv2".into(), &self.conv2),
            ("conv3".into(), &self.conv3),
            ("maxpool2".into(), &self.maxpool2),
            ("inception3a".into(), &self.inception3a),
            ("inception3b".into(), &self.inception3b),
            ("maxpool3".into(), &self.maxpool3),
            ("inception4a".into(), &self.inception4a),
            ("inception4b".into(), &self.inception4b),
            ("inception4c".into(), &self.inception4c),
            ("inception4d".into(), &self.inception4d),
            ("inception4e".into(), &self.inception4e),
            ("maxpool4".into(), &self.maxpool4),
            ("inception5a".into(), &self.inception5a),
            ("inception5b".into(), &self.inception5b),
            ("avgpool".into(), &self.avgpool),
            ("dropout".into(), &self.dropout),
            ("fc".into(), &self.fc),
        ];
        if let Some(a) = &self.aux1 {
            out.push(("aux1".into(), a));
        }
        if let Some(a) = &self.aux2 {
            out.push(("aux2".into(), a));
        }
        out
    }
}
