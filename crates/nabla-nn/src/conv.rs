//! The convolution layer: a weight `[out, in/groups, kH, kW]`, an optional bias, and the
//! options of `nabla_core::Tensor::conv2d` (stride, padding per side and mode, dilation, groups).

use crate::init::{Init, parameter};
use crate::module::{Module, join};
use nabla_core::{Conv2dOptions, Error, PaddingMode, Result, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct Conv2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub options: Conv2dOptions,
    pub bias: bool,
    pub weight_init: Init,
    /// None: PyTorch's U(±1/√fan_in).
    pub bias_init: Option<Init>,
}

impl Conv2dConfig {
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel: [kernel, kernel],
            options: Conv2dOptions::default(),
            bias: true,
            weight_init: Init::PytorchDefaultWeight,
            bias_init: None,
        }
    }
    pub fn kernel_hw(mut self, kh: usize, kw: usize) -> Self {
        self.kernel = [kh, kw];
        self
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.options = self.options.stride(s);
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.options = self.options.padding(p);
        self
    }
    pub fn padding_sides(mut self, sides: [usize; 4]) -> Self {
        self.options = self.options.padding_sides(sides);
        self
    }
    pub fn padding_mode(mut self, mode: PaddingMode) -> Self {
        self.options = self.options.padding_mode(mode);
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.options = self.options.dilation(d);
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.options = self.options.groups(g);
        self
    }
    pub fn bias(mut self, on: bool) -> Self {
        self.bias = on;
        self
    }
    pub fn weight_init(mut self, init: Init) -> Self {
        self.weight_init = init;
        self
    }
    pub fn bias_init(mut self, init: Init) -> Self {
        self.bias_init = Some(init);
        self
    }
    pub fn init(&self) -> Result<Conv2d> {
        if self.in_channels == 0 || self.out_channels == 0 || self.kernel.contains(&0) {
            return Err(Error::Argument {
                op: "Conv2d",
                msg: format!(
                    "in_channels {}, out_channels {} and kernel {}×{} must be positive",
                    self.in_channels, self.out_channels, self.kernel[0], self.kernel[1]
                ),
            });
        }
        let g = self.options.groups;
        if g == 0 || self.in_channels.checked_rem(g) != Some(0) || self.out_channels.checked_rem(g) != Some(0) {
            return Err(Error::Argument {
                op: "Conv2d",
                msg: format!(
                    "groups = {g} must divide in_channels {} and out_channels {}",
                    self.in_channels, self.out_channels
                ),
            });
        }
        let dims = [self.out_channels, self.in_channels / g, self.kernel[0], self.kernel[1]];
        let what = format!(
            "Conv2d({} → {}, {}×{}) weight",
            self.in_channels, self.out_channels, self.kernel[0], self.kernel[1]
        );
        nabla_core::limits::check_tensor(&dims, 4, &what)?;
        let weight = parameter(self.weight_init, &dims)?;
        let fan_in = dims[1] * dims[2] * dims[3];
        let bias_init = self.bias_init.unwrap_or(Init::PytorchDefaultBias { fan_in });
        let bias = self
            .bias
            .then(|| parameter(bias_init, &[self.out_channels]))
            .transpose()?;
        Ok(Conv2d {
            weight,
            bias,
            options: self.options,
        })
    }
}

/// A 2-D convolution (cross-correlation, as in PyTorch). By hand: a 2×2 kernel of ones over a
/// 3×3 input 1…9 sums each 2×2 window: 1+2+4+5 = 12, 2+3+5+6 = 16, 24, 28.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let mut conv = Conv2dConfig::new(1, 1, 2).bias(false).init().unwrap();
/// conv.weight = Tensor::ones((1, 1, 2, 2), nabla_core::DType::F32);
/// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect::<Vec<_>>(), (1, 1, 3, 3)).unwrap();
/// assert_eq!(conv.forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![12.0, 16.0, 24.0, 28.0]);
/// ```
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub options: Conv2dOptions,
}

impl Conv2d {
    /// `in → out` channels, a square kernel, PyTorch's defaults otherwise.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Result<Conv2d> {
        Conv2dConfig::new(in_channels, out_channels, kernel).init()
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv2d(&self.weight, self.bias.as_ref(), &self.options)
    }
    /// `Conv` (pads, strides, dilations, group); padding other than zeros as a `Pad` before it.
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        use crate::onnx::Attr;
        let o = &self.options;
        let zeros = o.padding_mode == nabla_core::PaddingMode::Zeros;
        let y = self.forward(&x.sample)?;
        let x = if zeros {
            x.clone()
        } else {
            g.pad2d(x, o.padding, o.padding_mode)?
        };
        let [t, b, l, r] = if zeros { o.padding } else { [0; 4] };
        let d = self.weight.dims();
        let mut inputs = vec![x.name.clone(), g.weight("weight", &self.weight)?];
        if let Some(bias) = &self.bias {
            inputs.push(g.weight("bias", bias)?);
        }
        let ints = |v: &[usize]| Attr::Ints(v.iter().map(|&i| i as i64).collect());
        let attrs = vec![
            ("kernel_shape", ints(&d[2..])),
            ("strides", ints(&o.stride)),
            ("pads", ints(&[t, l, b, r])),
            ("dilations", ints(&o.dilation)),
            ("group", Attr::Int(o.groups as i64)),
        ];
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(g.op("Conv", &inputs, attrs, y))
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
        if let Some(b) = &self.bias {
            f(join(prefix, "bias"), b);
        }
    }
    fn describe(&self) -> String {
        let d = self.weight.dims();
        let o = &self.options;
        let mut s = format!("Conv2d({} → {}, {}×{}", d[1] * o.groups, d[0], d[2], d[3]);
        if o.stride != [1, 1] {
            s += &format!(", stride {}", crate::pool::pair(o.stride));
        }
        let [t, b, l, r] = o.padding;
        if o.padding != [0; 4] {
            s += &if t == b && l == r {
                format!(", padding {}", crate::pool::pair([t, l]))
            } else {
                format!(", padding (top {t}, bottom {b}, left {l}, right {r})")
            };
            if o.padding_mode != nabla_core::PaddingMode::Zeros {
                s += &format!(" {}", format!("{:?}", o.padding_mode).to_lowercase());
            }
        }
        if o.dilation != [1, 1] {
            s += &format!(", dilation {}", crate::pool::pair(o.dilation));
        }
        if o.groups != 1 {
            s += &format!(", groups {}", o.groups);
        }
        s + ")"
    }
}
