//! Pooling layers: thin wrappers over the core ops, with no parameters.

use crate::module::Module;
use nabla_core::{AvgPool2dOptions, MaxPool2dOptions, Result, Tensor};

/// Max pooling; `MaxPool2d::new(3).stride(2)` is AlexNet's overlapping pooling. By hand: 2×2 windows, stride 2, over a 2×4 input.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let x = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 7.0, 6.0], (1, 1, 2, 4)).unwrap();
/// let y = MaxPool2d::new(2).stride(2).forward(&x).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![5.0, 7.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d(pub MaxPool2dOptions);

impl MaxPool2d {
    pub fn new(kernel: usize) -> Self {
        MaxPool2d(MaxPool2dOptions::new(kernel))
    }
    pub fn stride(self, s: usize) -> Self {
        MaxPool2d(self.0.stride(s))
    }
    pub fn padding(self, p: usize) -> Self {
        MaxPool2d(self.0.padding(p))
    }
    pub fn ceil_mode(self, on: bool) -> Self {
        MaxPool2d(self.0.ceil_mode(on))
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.max_pool2d(&self.0)
    }
    /// `MaxPool` (kernel, strides, pads, dilations, ceil_mode).
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        let o = &self.0;
        let mut attrs = window_attrs(o.kernel, o.stride, o.padding, o.ceil_mode);
        attrs.push(("dilations", ints(&o.dilation)));
        let y = self.forward(&x.sample)?;
        Ok(g.op("MaxPool", &[&x.name], attrs, y))
    }
    fn describe(&self) -> String {
        let o = &self.0;
        let mut s = format!("MaxPool2d({}, stride {}", pair(o.kernel), pair(o.stride));
        if o.padding != [0, 0] {
            s += &format!(", padding {}", pair(o.padding));
        }
        if o.dilation != [1, 1] {
            s += &format!(", dilation {}", pair(o.dilation));
        }
        if o.ceil_mode {
            s += ", ceil mode";
        }
        s + ")"
    }
}

/// Average pooling. By hand: 2×2 windows, stride 2, over a 2×4 input: (1+5+3+4)/4, (2+0+7+6)/4.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let x = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 7.0, 6.0], (1, 1, 2, 4)).unwrap();
/// let y = AvgPool2d::new(2).forward(&x).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![3.25, 3.75]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d(pub AvgPool2dOptions);

impl AvgPool2d {
    pub fn new(kernel: usize) -> Self {
        AvgPool2d(AvgPool2dOptions::new(kernel))
    }
    pub fn stride(self, s: usize) -> Self {
        AvgPool2d(self.0.stride(s))
    }
    pub fn padding(self, p: usize) -> Self {
        AvgPool2d(self.0.padding(p))
    }
    pub fn ceil_mode(self, on: bool) -> Self {
        AvgPool2d(self.0.ceil_mode(on))
    }
    pub fn count_include_pad(self, on: bool) -> Self {
        AvgPool2d(self.0.count_include_pad(on))
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.avg_pool2d(&self.0)
    }
    /// `AveragePool` (kernel, strides, pads, ceil_mode, count_include_pad); a divisor override
    /// has no ONNX attribute.
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        let o = &self.0;
        if o.divisor_override.is_some() {
            return Err(g.unsupported(&self.describe(), "ONNX AveragePool has no divisor override"));
        }
        let mut attrs = window_attrs(o.kernel, o.stride, o.padding, o.ceil_mode);
        attrs.push(("count_include_pad", crate::onnx::Attr::Int(o.count_include_pad as i64)));
        let y = self.forward(&x.sample)?;
        Ok(g.op("AveragePool", &[&x.name], attrs, y))
    }
    fn describe(&self) -> String {
        let o = &self.0;
        let mut s = format!("AvgPool2d({}, stride {}", pair(o.kernel), pair(o.stride));
        if o.padding != [0, 0] {
            s += &format!(", padding {}", pair(o.padding));
        }
        s + ")"
    }
}

/// Average pooling to a fixed output size, whatever the input size. By hand: a 1×1 output is the plane's mean.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let x = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 0.0, 3.0, 4.0, 7.0, 6.0], (1, 1, 2, 4)).unwrap();
/// assert_eq!(AdaptiveAvgPool2d::new(1, 1).forward(&x).unwrap().to_vec::<f32>().unwrap(), vec![3.5]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveAvgPool2d(pub [usize; 2]);

impl AdaptiveAvgPool2d {
    pub fn new(h: usize, w: usize) -> Self {
        AdaptiveAvgPool2d([h, w])
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.adaptive_avg_pool2d(self.0)
    }
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        g.adaptive_avg_pool2d(x, self.0)
    }
    fn describe(&self) -> String {
        format!("AdaptiveAvgPool2d({})", pair(self.0))
    }
}

/// `3` for `[3, 3]`, `3×2` for `[3, 2]`: sizes as a reader writes them.
fn ints(v: &[usize]) -> crate::onnx::Attr {
    crate::onnx::Attr::Ints(v.iter().map(|&i| i as i64).collect())
}

/// The attributes ONNX's pooling operators share; PyTorch's symmetric padding `[h, w]` is
/// ONNX's `[top, left, bottom, right]`.
fn window_attrs(
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
) -> Vec<(&'static str, crate::onnx::Attr)> {
    let [ph, pw] = padding;
    vec![
        ("kernel_shape", ints(&kernel)),
        ("strides", ints(&stride)),
        ("pads", ints(&[ph, pw, ph, pw])),
        ("ceil_mode", crate::onnx::Attr::Int(ceil_mode as i64)),
    ]
}

pub(crate) fn pair(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("{}×{}", v[0], v[1])
    }
}
