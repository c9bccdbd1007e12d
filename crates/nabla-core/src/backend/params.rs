//! The parameters of kernels, shared by the ops (which check and build them) and every device
//! (which runs them): a leaf module that imports nothing of `ops/`, `cpu/` or `cuda/`.

/// Element-wise functions of one tensor (formulas in `kernels::elementwise::UNARY`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Relu,
    Sigmoid,
    Tanh,
    Softplus,
    /// mul·x + add.
    Affine {
        mul: f64,
        add: f64,
    },
    /// xᵖ.
    Powf(f64),
    /// min(max(x, min), max); NaN passes through.
    Clamp {
        min: f64,
        max: f64,
    },
    Recip,
    Sqr,
    Sin,
    Cos,
    Sign,
}

impl UnaryOp {
    /// The op's name in error messages (PyTorch's spelling).
    pub fn name(self) -> &'static str {
        use UnaryOp::*;
        match self {
            Neg => "neg",
            Exp => "exp",
            Log => "log",
            Sqrt => "sqrt",
            Abs => "abs",
            Relu => "relu",
            Sigmoid => "sigmoid",
            Tanh => "tanh",
            Softplus => "softplus",
            Affine { .. } => "affine",
            Powf(_) => "pow",
            Clamp { .. } => "clamp",
            Recip => "reciprocal",
            Sqr => "square",
            Sin => "sin",
            Cos => "cos",
            Sign => "sign",
        }
    }
}

/// Element-wise functions of two tensors of one broadcast shape (formulas in
/// `kernels::elementwise::BINARY`). Comparisons give 1 or 0 in the input dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// a = x (the relu input), b = δy: δx = δy·𝟙(x > 0).
    ReluBackward,
    /// a = y = σ(x), b = δy: δx = δy·y(1 − y).
    SigmoidBackward,
    /// a = y = tanh x, b = δy: δx = δy(1 − y²).
    TanhBackward,
}

impl BinaryOp {
    /// The op's name in error messages (PyTorch's spelling).
    pub fn name(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            Maximum => "maximum",
            Minimum => "minimum",
            Pow => "pow",
            Eq => "eq",
            Ne => "ne",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
            ReluBackward => "relu_backward",
            SigmoidBackward => "sigmoid_backward",
            TanhBackward => "tanh_backward",
        }
    }
}

/// What to compute over the reduced dims (the output keeps each reduced dim with size 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    /// Sum / count (floats only).
    Mean,
    /// NaN-propagating.
    Max,
    Min,
    /// i64 output: the flat row-major index within the reduced dims (for one dim, the index
    /// along it); the first on ties and the first NaN.
    ArgMax,
    ArgMin,
}

/// The hyper-parameters of a convolution, PyTorch's defaults: stride 1, no padding,
/// dilation 1, one group, zero padding mode.
///
/// ```
/// use nabla_core::{Conv2dOptions, PaddingMode};
/// let o = Conv2dOptions::default().stride(2).padding(1).padding_mode(PaddingMode::Reflect);
/// assert_eq!(o.padding, [1, 1, 1, 1]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows, `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Padding `[top, bottom, left, right]`.
    pub padding: [usize; 4],
    pub padding_mode: PaddingMode,
    /// Spacing between kernel taps, `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Input and output channels are split into this many independent groups.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0; 4],
            padding_mode: PaddingMode::Zeros,
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    pub fn stride_hw(mut self, sh: usize, sw: usize) -> Self {
        self.stride = [sh, sw];
        self
    }
    /// The same padding on all four sides.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p; 4];
        self
    }
    /// `ph` above and below, `pw` left and right (PyTorch's `padding=(ph, pw)`).
    pub fn padding_hw(mut self, ph: usize, pw: usize) -> Self {
        self.padding = [ph, ph, pw, pw];
        self
    }
    /// Each side on its own: `[top, bottom, left, right]`.
    pub fn padding_sides(mut self, sides: [usize; 4]) -> Self {
        self.padding = sides;
        self
    }
    pub fn padding_mode(mut self, mode: PaddingMode) -> Self {
        self.padding_mode = mode;
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

/// Everything about one convolution's shapes. Input `[n, c_in, h, w]`, weight
/// `[c_out, c_in/groups, kh, kw]`, output `[n, c_out, oh, ow]`; zero padding `pad_top`/`pad_left`
/// (bottom and right padding only enter through `oh`/`ow`).
#[derive(Debug, Clone, Copy)]
pub struct ConvGeometry {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
    pub groups: usize,
    /// The arithmetic of an f32 convolution's products (bf16 under autocast; see
    /// `autocast.rs`); its backward passes keep it.
    pub precision: Precision,
}

/// Max pooling's hyper-parameters; the stride defaults to the kernel size, as in PyTorch.
///
/// ```
/// use nabla_core::MaxPool2dOptions;
/// let alexnet = MaxPool2dOptions::new(3).stride(2); // overlapping pooling (Krizhevsky et al., 2012)
/// assert_eq!(alexnet.stride, [2, 2]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxPool2dOptions {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Implicit −∞ padding `[vertical, horizontal]`, at most half the kernel.
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    /// Round the output size up, so a partial window at the end still yields an output.
    pub ceil_mode: bool,
}

impl MaxPool2dOptions {
    pub fn new(kernel: usize) -> Self {
        MaxPool2dOptions {
            kernel: [kernel; 2],
            stride: [kernel; 2],
            padding: [0; 2],
            dilation: [1; 2],
            ceil_mode: false,
        }
    }
    pub fn kernel_hw(kh: usize, kw: usize) -> Self {
        MaxPool2dOptions {
            kernel: [kh, kw],
            stride: [kh, kw],
            ..MaxPool2dOptions::new(1)
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
}

/// Average pooling's hyper-parameters (PyTorch's defaults: stride = kernel, count_include_pad).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2dOptions {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
    /// Count the zero padding in each window's divisor.
    pub count_include_pad: bool,
    /// Divide every window by this instead.
    pub divisor_override: Option<usize>,
}

impl AvgPool2dOptions {
    pub fn new(kernel: usize) -> Self {
        AvgPool2dOptions {
            kernel: [kernel; 2],
            stride: [kernel; 2],
            padding: [0; 2],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
    pub fn divisor_override(mut self, d: usize) -> Self {
        self.divisor_override = Some(d);
        self
    }
}

/// Window geometry shared by max and average pooling.
#[derive(Debug, Clone, Copy)]
pub struct PoolGeometry {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

/// How values outside the input are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingMode {
    /// 0 outside.
    #[default]
    Zeros,
    /// Mirror without repeating the edge: `d c b | a b c d | c b a` (padding < size).
    Reflect,
    /// Repeat the edge (the lecture's "copy-border"): `a a a | a b c d | d d d`.
    Replicate,
    /// Wrap around: `b c d | a b c d | a b c` (padding ≤ size).
    Circular,
}

impl PaddingMode {
    /// Fails unless this mode can pad a dimension of `size` by (`before`, `after`): reflect needs
    /// padding < size, circular ≤ size, replicate a non-empty dimension.
    pub fn check(self, op: &'static str, size: usize, before: usize, after: usize) -> crate::Result<()> {
        let ok = match self {
            PaddingMode::Zeros => true,
            PaddingMode::Reflect => before < size && after < size,
            PaddingMode::Replicate => size > 0,
            PaddingMode::Circular => before <= size && after <= size,
        };
        if ok {
            return Ok(());
        }
        Err(crate::Error::Argument {
            op,
            msg: format!("padding ({before}, {after}) is too large for {self:?} mode on a dimension of size {size}"),
        })
    }
}

impl std::str::FromStr for PaddingMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "zeros" => Ok(PaddingMode::Zeros),
            "reflect" => Ok(PaddingMode::Reflect),
            "replicate" => Ok(PaddingMode::Replicate),
            "circular" => Ok(PaddingMode::Circular),
            other => Err(format!(
                "unknown padding mode '{other}' (expected zeros, reflect, replicate or circular)"
            )),
        }
    }
}

/// One SGD step for one parameter tensor (Sutskever et al., 2013; PyTorch's `torch.optim.SGD`):
///
/// ```text
/// d ← g + λ·p                      (coupled L2, the gradient of J + λ/2‖p‖²)
/// b ← μ·b + c·d                    (momentum buffer; c = 1 − dampening, or 1 − μ for the
///                                    exponential-average form, or 1 on PyTorch's first step)
/// d ← d + μ·b  (Nesterov)  or  b
/// p ← p − η·d
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SgdUpdate {
    pub lr: f64,
    pub weight_decay: f64,
    /// μ; 0 means no buffer is read or written.
    pub momentum: f64,
    /// c, the weight of the new direction in the buffer update.
    pub buffer_gain: f64,
    pub nesterov: bool,
}

/// One Adam/AdamW step (Kingma & Ba, 2015; Loshchilov & Hutter, 2019), PyTorch's order:
///
/// ```text
/// p ← p·(1 − η·λ)              (AdamW)      or   g ← g + λ·p   (Adam's coupled L2)
/// m ← m + (1 − β₁)(g − m)      (lerp)
/// v ← β₂·v + (1 − β₂)·g²
/// v̄ ← max(v̄, v)                (AMSGrad; v̄ replaces v in the denominator)
/// p ← p − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AdamUpdate {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    /// t, counted from 1.
    pub step: u64,
}

/// Which pooling a [`PoolGeometry`] runs. Max pooling's δ goes to each window's first maximum;
/// average pooling divides by the window's count (with or without padding) or an override;
/// adaptive pooling's window i covers [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉) (kernel, stride and padding unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg {
        count_include_pad: bool,
        divisor_override: Option<usize>,
    },
    AdaptiveAvg,
}

/// Local response normalisation across channels of a contiguous `[N, C, S]` block (S = H·W):
/// b_c = a_c / s_c^β, s_c = k + (α/n) Σ a_{c'}² over c' ∈ [c − ⌊n/2⌋, c + ⌊(n−1)/2⌋].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrnParams {
    pub n: usize,
    pub c: usize,
    pub s: usize,
    pub size: usize,
    pub alpha: f64,
    pub beta: f64,
    pub k: f64,
}

/// Padding of a contiguous `[planes, h, w]` block on four sides in one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pad2dParams {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    /// `[top, bottom, left, right]`.
    pub sides: [usize; 4],
    pub mode: PaddingMode,
}

impl Pad2dParams {
    pub fn out_h(&self) -> usize {
        self.h + self.sides[0] + self.sides[1]
    }
    pub fn out_w(&self) -> usize {
        self.w + self.sides[2] + self.sides[3]
    }
}

/// Batch normalisation in training mode over a contiguous `[N, C, S]` block (S = H·W, or 1):
/// y = γ·(x − μ_c)/√(σ²_c + ε) + β with the batch's μ_c and biased σ²_c; the running statistics
/// move by r ← (1 − m)·r + m·batch (the variance unbiased, n/(n − 1)·σ²), as PyTorch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormParams {
    pub n: usize,
    pub c: usize,
    pub s: usize,
    pub eps: f64,
    /// m, the weight of this batch in the running statistics.
    pub momentum: f64,
}

/// The arithmetic of an f32 matrix product (see `autocast.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// f32 operands and sums.
    #[default]
    F32,
    /// Operands rounded to bfloat16 (8 bits of mantissa), products summed in f32.
    Bf16,
}

impl Precision {
    /// `f32` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Parses `f32`/`fp32`/`float32` or `bf16`/`bfloat16`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Some(Precision::F32),
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}
