//! Pooling: max (overlapping windows such as AlexNet's 3×3 stride 2 included, ceil_mode,
//! padding, dilation), average (count_include_pad, divisor_override) and adaptive average.

use crate::Tensor;
use crate::backend::params::{AvgPool2dOptions, MaxPool2dOptions, PoolGeometry, PoolKind};
use crate::error::{Error, Result, arg_err, shape_err};

/// PyTorch's pooling output size: ⌊ or ⌈ (in + 2p − d(k−1) − 1)/s ⌉ + 1, and with ceil_mode the
/// last window must start inside the input or its left padding.
fn pool_out_size(op: &'static str, input: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Result<usize> {
    if k == 0 || s == 0 || d == 0 {
        return arg_err(op, format!("kernel {k}, stride {s} and dilation {d} must be positive"));
    }
    if p * 2 > k {
        return arg_err(op, format!("padding {p} should be at most half of the kernel size {k}"));
    }
    let span = d.saturating_mul(k - 1).saturating_add(1);
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
        crate::limits::check_tensor(&[planes, oh, ow], self.dtype().size_in_bytes(), op)?;
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
        self.pool("max_pool2d", PoolKind::Max, &g)
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
        if opts.divisor_override == Some(0) {
            return arg_err("avg_pool2d", "divisor_override must be positive");
        }
        let kind = PoolKind::Avg {
            count_include_pad: opts.count_include_pad,
            divisor_override: opts.divisor_override,
        };
        self.pool("avg_pool2d", kind, &g)
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
        let planes = self.dims()[..r - 2].iter().product();
        let esize = self.dtype().size_in_bytes();
        crate::limits::check_tensor(&[planes, output[0], output[1]], esize, "adaptive_avg_pool2d output")?;
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
        self.pool("adaptive_avg_pool2d", PoolKind::AdaptiveAvg, &g)
    }

    /// Runs one pooling kernel through the device seam and records its backward pass.
    fn pool(&self, op: &'static str, kind: PoolKind, g: &PoolGeometry) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype(),
            });
        }
        let x = self.contiguous()?.detach();
        let (out, saved) = x.storage().pool2d(x.layout(), kind, g)?;
        let out = Tensor::from_any_storage(out, self.pooled_shape(g));
        let (in_shape, g) = (self.shape().clone(), *g);
        Ok(out.record(op, &[self], move |dy| {
            let dy = dy.contiguous()?;
            let dx = x
                .storage()
                .pool2d_backward(x.layout(), &dy.storage(), dy.layout(), kind, &g, saved.as_ref())?;
            Ok(vec![Some(Tensor::from_any_storage(dx, in_shape.clone()))])
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
