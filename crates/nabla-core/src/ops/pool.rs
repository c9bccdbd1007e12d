//! Pooling: max (overlapping windows such as AlexNet's 3×3 stride 2 included, ceil_mode,
//! padding, dilation), average (count_include_pad, divisor_override) and adaptive average.

use crate::Tensor;
use crate::cpu::pool::{self as k, PoolGeometry};
use crate::error::{Error, Result, arg_err, shape_err};
use crate::storage::CpuStorage;

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

/// PyTorch's pooling output size: ⌊ or ⌈ (in + 2p − d(k−1) − 1)/s ⌉ + 1, and with ceil_mode the
/// last window must start inside the input or its left padding.
fn pool_out_size(op: &'static str, input: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Result<usize> {
    if k == 0 || s == 0 || d == 0 {
        return arg_err(op, format!("kernel {k}, stride {s} and dilation {d} must be positive"));
    }
    if p * 2 > k {
        return arg_err(op, format!("padding {p} should be at most half of the kernel size {k}"));
    }
    let span = d * (k - 1) + 1;
    if input + 2 * p < span {
        return shape_err(
            op,
            format!("window of {span} does not fit the padded input of {}", input + 2 * p),
        );
    }
    let num = input + 2 * p - span;
    let mut out = if ceil { num.div_ceil(s) } else { num / s } + 1;
    if ceil && (out - 1) * s >= input + p {
        out -= 1;
    }
    Ok(out)
}

impl Tensor {
    fn pool_geometry(
        &self,
        op: &'static str,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil: bool,
    ) -> Result<PoolGeometry> {
        if self.rank() != 4 && self.rank() != 3 {
            return shape_err(op, format!("expected [N, C, H, W] or [C, H, W], got {}", self.shape()));
        }
        let r = self.rank();
        let (h, w) = (self.dims()[r - 2], self.dims()[r - 1]);
        let oh = pool_out_size(op, h, kernel[0], stride[0], padding[0], dilation[0], ceil)
            .map_err(|e| with_shape(e, self))?;
        let ow = pool_out_size(op, w, kernel[1], stride[1], padding[1], dilation[1], ceil)
            .map_err(|e| with_shape(e, self))?;
        let planes = self.dims()[..r - 2].iter().product();
        Ok(PoolGeometry {
            planes,
            h,
            w,
            kernel,
            stride,
            padding,
            dilation,
            oh,
            ow,
        })
    }

    fn pooled_shape(&self, g: &PoolGeometry) -> Vec<usize> {
        let r = self.rank();
        let mut dims = self.dims()[..r - 2].to_vec();
        dims.extend([g.oh, g.ow]);
        dims
    }

    /// Max pooling.  δx[argmax of each window] += δy (windows that overlap add up).
    pub fn max_pool2d(&self, opts: &MaxPool2dOptions) -> Result<Tensor> {
        let g = self.pool_geometry(
            "max_pool2d",
            opts.kernel,
            opts.stride,
            opts.padding,
            opts.dilation,
            opts.ceil_mode,
        )?;
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return super::on_cuda::max_pool2d(self, opts, crate::Shape::new(self.pooled_shape(&g)));
        }
        let x = self.contiguous()?;
        let (out, idx) = {
            let s = x.storage();
            let off = x.layout().offset();
            match s.cpu("max_pool2d")? {
                CpuStorage::F32(v) => {
                    let (o, i) = k::max_pool2d_forward(&v[off..], &g);
                    (CpuStorage::F32(o), i)
                }
                CpuStorage::F64(v) => {
                    let (o, i) = k::max_pool2d_forward(&v[off..], &g);
                    (CpuStorage::F64(o), i)
                }
                o => {
                    return Err(Error::UnsupportedDType {
                        op: "max_pool2d",
                        dtype: o.dtype(),
                    });
                }
            }
        };
        let out = Tensor::from_storage(out, self.pooled_shape(&g));
        let in_shape = self.shape().clone();
        Ok(out.record("max_pool2d", &[self], move |dy| {
            let dy = dy.contiguous()?;
            let s = dy.storage();
            let off = dy.layout().offset();
            let dx = match s.cpu("max_pool2d")? {
                CpuStorage::F32(v) => CpuStorage::F32(k::max_pool2d_backward(&v[off..], &idx, &g)),
                CpuStorage::F64(v) => CpuStorage::F64(k::max_pool2d_backward(&v[off..], &idx, &g)),
                o => {
                    return Err(Error::UnsupportedDType {
                        op: "max_pool2d",
                        dtype: o.dtype(),
                    });
                }
            };
            Ok(vec![Some(Tensor::from_storage(dx, in_shape))])
        }))
    }

    /// Average pooling.  δx = δy / divisor spread over each window.
    pub fn avg_pool2d(&self, opts: &AvgPool2dOptions) -> Result<Tensor> {
        let g = self.pool_geometry(
            "avg_pool2d",
            opts.kernel,
            opts.stride,
            opts.padding,
            [1, 1],
            opts.ceil_mode,
        )?;
        let (cip, dov) = (opts.count_include_pad, opts.divisor_override);
        if dov == Some(0) {
            return arg_err("avg_pool2d", "divisor_override must be positive");
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            return super::on_cuda::avg_pool2d(self, opts, crate::Shape::new(self.pooled_shape(&g)));
        }
        self.pool_with(
            "avg_pool2d",
            &g,
            |v: &[f32], g| k::avg_pool2d_forward(v, g, cip, dov),
            |v: &[f64], g| k::avg_pool2d_forward(v, g, cip, dov),
            move |v: &[f32], g| k::avg_pool2d_backward(v, g, cip, dov),
            move |v: &[f64], g| k::avg_pool2d_backward(v, g, cip, dov),
        )
    }

    /// Adaptive average pooling to `[oh, ow]`: window i covers [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉).
    pub fn adaptive_avg_pool2d(&self, output: [usize; 2]) -> Result<Tensor> {
        if self.rank() != 4 && self.rank() != 3 {
            return shape_err(
                "adaptive_avg_pool2d",
                format!("expected [N, C, H, W] or [C, H, W], got {}", self.shape()),
            );
        }
        let r = self.rank();
        let (h, w) = (self.dims()[r - 2], self.dims()[r - 1]);
        if output.contains(&0) || h == 0 || w == 0 {
            return arg_err(
                "adaptive_avg_pool2d",
                format!("output size {output:?} and input {} must be non-empty", self.shape()),
            );
        }
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() && h % output[0] == 0 && w % output[1] == 0 {
            // Equal windows: plain average pooling (ResNet's global pooling is this case).
            let (kh, kw) = (h / output[0], w / output[1]);
            return self.avg_pool2d(&AvgPool2dOptions {
                kernel: [kh, kw],
                stride: [kh, kw],
                padding: [0, 0],
                ceil_mode: false,
                count_include_pad: true,
                divisor_override: None,
            });
        }
        let planes = self.dims()[..r - 2].iter().product();
        let g = PoolGeometry {
            planes,
            h,
            w,
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            oh: output[0],
            ow: output[1],
        };
        self.pool_with(
            "adaptive_avg_pool2d",
            &g,
            k::adaptive_avg_pool2d_forward::<f32>,
            k::adaptive_avg_pool2d_forward::<f64>,
            k::adaptive_avg_pool2d_backward::<f32>,
            k::adaptive_avg_pool2d_backward::<f64>,
        )
    }

    /// Runs a linear pooling kernel pair (forward, adjoint) in f32 or f64 and records it.
    fn pool_with(
        &self,
        op: &'static str,
        g: &PoolGeometry,
        f32_fwd: impl Fn(&[f32], &PoolGeometry) -> Vec<f32>,
        f64_fwd: impl Fn(&[f64], &PoolGeometry) -> Vec<f64>,
        f32_bwd: impl Fn(&[f32], &PoolGeometry) -> Vec<f32> + Send + Sync + 'static,
        f64_bwd: impl Fn(&[f64], &PoolGeometry) -> Vec<f64> + Send + Sync + 'static,
    ) -> Result<Tensor> {
        let x = self.contiguous()?;
        let out = {
            let s = x.storage();
            let off = x.layout().offset();
            match s.cpu("pool_with")? {
                CpuStorage::F32(v) => CpuStorage::F32(f32_fwd(&v[off..], g)),
                CpuStorage::F64(v) => CpuStorage::F64(f64_fwd(&v[off..], g)),
                o => return Err(Error::UnsupportedDType { op, dtype: o.dtype() }),
            }
        };
        let out = Tensor::from_storage(out, self.pooled_shape(g));
        let (in_shape, g) = (self.shape().clone(), *g);
        Ok(out.record(op, &[self], move |dy| {
            let dy = dy.contiguous()?;
            let s = dy.storage();
            let off = dy.layout().offset();
            let dx = match s.cpu("pool_with")? {
                CpuStorage::F32(v) => CpuStorage::F32(f32_bwd(&v[off..], &g)),
                CpuStorage::F64(v) => CpuStorage::F64(f64_bwd(&v[off..], &g)),
                o => return Err(Error::UnsupportedDType { op, dtype: o.dtype() }),
            };
            Ok(vec![Some(Tensor::from_storage(dx, in_shape))])
        }))
    }
}

/// Adds the input shape to a pooling size error.
fn with_shape(e: Error, t: &Tensor) -> Error {
    match e {
        Error::Shape { op, msg } => Error::Shape {
            op,
            msg: format!("{msg} (input {})", t.shape()),
        },
        Error::Argument { op, msg } => Error::Argument {
            op,
            msg: format!("{msg} (input {})", t.shape()),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_match_pytorch() {
        // AlexNet: 55 → 27 with 3×3 stride 2; ceil_mode adds the partial window: 6 → 3 (k=2, s=2 on 5).
        assert_eq!(pool_out_size("t", 55, 3, 2, 0, 1, false).unwrap(), 27);
        assert_eq!(pool_out_size("t", 5, 2, 2, 0, 1, false).unwrap(), 2);
        assert_eq!(pool_out_size("t", 5, 2, 2, 0, 1, true).unwrap(), 3);
        // ceil_mode never starts a window in the right padding: in 4, k 2, s 2, p 1 → 3 both ways.
        assert_eq!(pool_out_size("t", 4, 2, 2, 1, 1, true).unwrap(), 3);
        assert!(pool_out_size("t", 4, 2, 2, 2, 1, false).is_err());
    }
}
