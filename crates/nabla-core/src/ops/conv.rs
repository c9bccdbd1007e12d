//! 2-D convolution (cross-correlation, as in every framework): stride, dilation, groups,
//! optional bias, and padding per side in the modes zeros, reflect, replicate and circular.
//!
//! `y[n, o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] · x[n, g·C/G + c, i·s₀ + p·d₀ − pad_top, j·s₁ + q·d₁ − pad_left]`
//!
//! Backward (δ = ∂L/∂y): δx = the transposed convolution of δ with W (col2im(Wᵀ·δ)),
//! δW = Σₙ δₙ · im2col(xₙ)ᵀ, δb = Σ_{n,i,j} δ.

use crate::Tensor;
use crate::backend::params::{Conv2dOptions, ConvGeometry, PaddingMode};
use crate::error::{Error, Result, arg_err, shape_err};

/// Output size along one axis: ⌊(in + pads − d·(k − 1) − 1) / s⌋ + 1.
/// None when the window is larger than the padded input, or a size overflows.
pub(crate) fn conv_out_size(input: usize, pads: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    let span = d.checked_mul(k - 1)?.checked_add(1)?;
    let padded = input.checked_add(pads)?;
    (padded >= span).then(|| (padded - span) / s + 1)
}

impl Tensor {
    /// 2-D convolution of `[N, C_in, H, W]` by `[C_out, C_in/groups, kH, kW]`, plus `bias` `[C_out]`.
    ///
    /// ```
    /// use nabla_core::{Conv2dOptions, Tensor};
    /// // A 2×2 kernel of ones sums each 2×2 window.
    /// let x = Tensor::from_vec((1..=9).map(|v| v as f32).collect(), (1, 1, 3, 3)).unwrap();
    /// let w = Tensor::from_vec(vec![1f32; 4], (1, 1, 2, 2)).unwrap();
    /// let y = x.conv2d(&w, None, &Conv2dOptions::default()).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![12., 16., 24., 28.]);
    /// ```
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: &Conv2dOptions) -> Result<Tensor> {
        if opts.padding_mode != PaddingMode::Zeros && opts.padding != [0; 4] {
            // Any other mode: pad first (a differentiable op), then convolve without padding.
            let padded = self.pad2d(opts.padding, opts.padding_mode)?;
            let zero_pad = Conv2dOptions {
                padding: [0; 4],
                padding_mode: PaddingMode::Zeros,
                ..*opts
            };
            return padded.conv2d(weight, bias, &zero_pad);
        }
        let geom = self.conv_geometry(weight, bias, opts)?;
        let x = self.contiguous()?.detach();
        let w = weight.contiguous()?.detach();
        let b = bias.map(|b| b.contiguous().map(|b| b.detach())).transpose()?;
        // The weight gradient may reuse what the forward pass unfolded, when it is recorded.
        let keep = weight.tracks_grad() && crate::is_grad_enabled();
        let (out, saved) = {
            let (sx, sw) = (x.storage(), w.storage());
            let sb = b.as_ref().map(|b| b.storage());
            let bias = sb.as_ref().zip(b.as_ref()).map(|(s, b)| (&**s, b.layout()));
            sx.conv2d(x.layout(), &sw, w.layout(), bias, &geom, keep)?
        };
        let out = Tensor::from_any_storage(out, (geom.n, geom.c_out, geom.oh, geom.ow));
        let (tx, tw) = (self.tracks_grad(), weight.tracks_grad());
        let has_bias = bias.is_some();
        let mut inputs = vec![self, weight];
        if let Some(b) = bias {
            inputs.push(b);
        }
        Ok(out.record("conv2d", &inputs, move |g| {
            let g = g.contiguous()?;
            let dx = if tx {
                let s = g
                    .storage()
                    .conv2d_backward_input(g.layout(), &w.storage(), w.layout(), &geom)?;
                Some(Tensor::from_any_storage(s, x.shape().clone()))
            } else {
                None
            };
            let dw = if tw {
                let s = x
                    .storage()
                    .conv2d_backward_weight(x.layout(), &g.storage(), g.layout(), &geom, saved)?;
                Some(Tensor::from_any_storage(s, w.shape().clone()))
            } else {
                None
            };
            let mut grads = vec![dx, dw];
            if has_bias {
                grads.push(Some(g.sum(&[0, 2, 3], false)?));
            }
            Ok(grads)
        }))
    }

    fn conv_geometry(&self, weight: &Tensor, bias: Option<&Tensor>, opts: &Conv2dOptions) -> Result<ConvGeometry> {
        if self.rank() != 4 || weight.rank() != 4 {
            return shape_err(
                "conv2d",
                format!(
                    "expected input [N, C, H, W] and weight [C_out, C_in/groups, kH, kW], got {} and {}",
                    self.shape(),
                    weight.shape()
                ),
            );
        }
        if self.dtype() != weight.dtype() {
            return Err(Error::DTypeMismatch {
                op: "conv2d",
                lhs: self.dtype(),
                rhs: weight.dtype(),
            });
        }
        let (d, wd) = (self.dims(), weight.dims());
        let (n, c_in, h, w) = (d[0], d[1], d[2], d[3]);
        let (c_out, cin_g, kh, kw) = (wd[0], wd[1], wd[2], wd[3]);
        let groups = opts.groups;
        if groups == 0 || c_in % groups != 0 || c_out % groups != 0 {
            return arg_err(
                "conv2d",
                format!("groups = {groups} must divide input channels {c_in} and output channels {c_out}"),
            );
        }
        if cin_g * groups != c_in {
            return shape_err(
                "conv2d",
                format!(
                    "input {} has {c_in} channels but weight {} expects {} (= {cin_g} × {groups} groups)",
                    self.shape(),
                    weight.shape(),
                    cin_g * groups
                ),
            );
        }
        if self.elem_count() == 0 || weight.elem_count() == 0 {
            // NOTE: the kernels assume at least one channel and one sample (a direct
            // convolution over 0 input channels indexed outside its source; found by fuzzing).
            return shape_err(
                "conv2d",
                format!("input {} and weight {} must not be empty", self.shape(), weight.shape()),
            );
        }
        if opts.stride.contains(&0) || opts.dilation.contains(&0) || kh == 0 || kw == 0 {
            return arg_err(
                "conv2d",
                format!(
                    "stride {:?}, dilation {:?} and kernel {kh}×{kw} must be positive",
                    opts.stride, opts.dilation
                ),
            );
        }
        if let Some(b) = bias {
            if b.dims() != [c_out] {
                return shape_err(
                    "conv2d",
                    format!(
                        "bias {} does not match {c_out} output channels of weight {}",
                        b.shape(),
                        weight.shape()
                    ),
                );
            }
            if b.dtype() != self.dtype() {
                return Err(Error::DTypeMismatch {
                    op: "conv2d",
                    lhs: self.dtype(),
                    rhs: b.dtype(),
                });
            }
        }
        let [pt, pb, pl, pr] = opts.padding;
        let oh = conv_out_size(h, pt.saturating_add(pb), kh, opts.stride[0], opts.dilation[0]);
        let ow = conv_out_size(w, pl.saturating_add(pr), kw, opts.stride[1], opts.dilation[1]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return shape_err(
                "conv2d",
                format!(
                    "kernel {kh}×{kw} (dilation {:?}) is larger than the padded input {}×{} of {}",
                    opts.dilation,
                    h.saturating_add(pt).saturating_add(pb),
                    w.saturating_add(pl).saturating_add(pr),
                    self.shape()
                ),
            );
        };
        let esize = self.dtype().size_in_bytes();
        crate::limits::check_tensor(&[n, c_out, oh, ow], esize, "conv2d output")?;
        if opts.padding_mode != crate::PaddingMode::Zeros {
            // The padded copy of the input is a tensor of its own.
            let (hp, wp) = (h.saturating_add(pt + pb), w.saturating_add(pl + pr));
            crate::limits::check_tensor(&[n, c_in, hp, wp], esize, "conv2d padded input")?;
        }
        Ok(ConvGeometry {
            n,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride: opts.stride,
            dilation: opts.dilation,
            pad_top: pt,
            pad_left: pl,
            oh,
            ow,
            groups,
            precision: match self.dtype() {
                crate::DType::F32 => crate::autocast::current(),
                _ => crate::autocast::Precision::F32,
            },
        })
    }
}
