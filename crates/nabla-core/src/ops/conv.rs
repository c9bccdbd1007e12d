//! 2-D convolution (cross-correlation, as in every framework): stride, dilation, groups,
//! optional bias, and padding per side in the modes zeros, reflect, replicate and circular.
//!
//! y[n, o, i, j] = b[o] + Σ_{c, p, q} W[o, c, p, q] · x[n, g·C/G + c, i·s₀ + p·d₀ − pad_top, j·s₁ + q·d₁ − pad_left]
//!
//! Backward (δ = ∂L/∂y): δx = the transposed convolution of δ with W (col2im(Wᵀ·δ)),
//! δW = Σₙ δₙ · im2col(xₙ)ᵀ, δb = Σ_{n,i,j} δ.

use super::pad::PaddingMode;
use crate::Tensor;
use crate::cpu::conv::{ConvGeometry, conv2d_backward_input, conv2d_backward_weight, conv2d_forward_saving};
use crate::error::{Error, Result, arg_err, shape_err};
use crate::storage::CpuStorage;

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

/// Unfolded inputs kept from the forward pass for the weight gradient.
enum SavedCols {
    F32(crate::cpu::conv::SavedColumns<f32>),
    F64(crate::cpu::conv::SavedColumns<f64>),
}

/// Output size along one axis: ⌊(in + pads − d·(k − 1) − 1) / s⌋ + 1.
pub(crate) fn conv_out_size(input: usize, pads: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    let span = d * (k - 1) + 1;
    (input + pads >= span).then(|| (input + pads - span) / s + 1)
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
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            // cuDNN pads in every mode itself (a pad kernel in front for the non-zero ones).
            let zero = Conv2dOptions {
                padding_mode: PaddingMode::Zeros,
                ..*opts
            };
            let g = self.conv_geometry(weight, bias, &zero)?;
            return super::on_cuda::conv2d(
                self,
                weight,
                bias,
                opts,
                crate::Shape::new(vec![g.n, g.c_out, g.oh, g.ow]),
            );
        }
        if opts.padding_mode != PaddingMode::Zeros && opts.padding != [0; 4] {
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
        // The weight gradient reuses the forward pass's unfolded input when it is recorded.
        let keep = weight.tracks_grad() && crate::is_grad_enabled();
        let (out, saved) = {
            let (sx, sw) = (x.storage(), w.storage());
            let sb = b.as_ref().map(|b| b.storage());
            let (ox, ow) = (x.layout().offset(), w.layout().offset());
            let ob = b.as_ref().map_or(0, |b| b.layout().offset());
            match (sx.cpu("conv2d")?, sw.cpu("conv2d")?) {
                (CpuStorage::F32(xv), CpuStorage::F32(wv)) => {
                    let bv = match sb.as_ref().map(|s| s.cpu("conv2d")).transpose()? {
                        Some(CpuStorage::F32(v)) => Some(&v[ob..]),
                        None => None,
                        _ => unreachable!("dtype checked in conv_geometry"),
                    };
                    let (y, cols) = conv2d_forward_saving(&xv[ox..], &wv[ow..], bv, &geom, keep);
                    (CpuStorage::F32(y), cols.map(SavedCols::F32))
                }
                (CpuStorage::F64(xv), CpuStorage::F64(wv)) => {
                    let bv = match sb.as_ref().map(|s| s.cpu("conv2d")).transpose()? {
                        Some(CpuStorage::F64(v)) => Some(&v[ob..]),
                        None => None,
                        _ => unreachable!("dtype checked in conv_geometry"),
                    };
                    let (y, cols) = conv2d_forward_saving(&xv[ox..], &wv[ow..], bv, &geom, keep);
                    (CpuStorage::F64(y), cols.map(SavedCols::F64))
                }
                (a, _) => {
                    return Err(Error::UnsupportedDType {
                        op: "conv2d",
                        dtype: a.dtype(),
                    });
                }
            }
        };
        let out = Tensor::from_storage(out, (geom.n, geom.c_out, geom.oh, geom.ow));
        let saved = std::sync::Mutex::new(saved);
        let (tx, tw) = (self.tracks_grad(), weight.tracks_grad());
        let has_bias = bias.is_some();
        let mut inputs = vec![self, weight];
        if let Some(b) = bias {
            inputs.push(b);
        }
        Ok(out.record("conv2d", &inputs, move |g| {
            let g = g.contiguous()?;
            let (sg, sx, sw) = (g.storage(), x.storage(), w.storage());
            let (og, ox, ow) = (g.layout().offset(), x.layout().offset(), w.layout().offset());
            let (dx, dw) = match (sg.cpu("conv2d")?, sx.cpu("conv2d")?, sw.cpu("conv2d")?) {
                (CpuStorage::F32(gv), CpuStorage::F32(xv), CpuStorage::F32(wv)) => (
                    tx.then(|| CpuStorage::F32(conv2d_backward_input(&gv[og..], &wv[ow..], &geom))),
                    tw.then(|| {
                        let cols = match saved.lock().unwrap_or_else(|e| e.into_inner()).take() {
                            Some(SavedCols::F32(c)) => Some(c),
                            _ => None,
                        };
                        CpuStorage::F32(conv2d_backward_weight(&xv[ox..], &gv[og..], &geom, cols.as_ref()))
                    }),
                ),
                (CpuStorage::F64(gv), CpuStorage::F64(xv), CpuStorage::F64(wv)) => (
                    tx.then(|| CpuStorage::F64(conv2d_backward_input(&gv[og..], &wv[ow..], &geom))),
                    tw.then(|| {
                        let cols = match saved.lock().unwrap_or_else(|e| e.into_inner()).take() {
                            Some(SavedCols::F64(c)) => Some(c),
                            _ => None,
                        };
                        CpuStorage::F64(conv2d_backward_weight(&xv[ox..], &gv[og..], &geom, cols.as_ref()))
                    }),
                ),
                (a, _, _) => {
                    return Err(Error::UnsupportedDType {
                        op: "conv2d backward",
                        dtype: a.dtype(),
                    });
                }
            };
            drop((sg, sx, sw));
            let mut grads = vec![
                dx.map(|d| Tensor::from_storage(d, x.shape().clone())),
                dw.map(|d| Tensor::from_storage(d, w.shape().clone())),
            ];
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
        let oh = conv_out_size(h, pt + pb, kh, opts.stride[0], opts.dilation[0]);
        let ow = conv_out_size(w, pl + pr, kw, opts.stride[1], opts.dilation[1]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            return shape_err(
                "conv2d",
                format!(
                    "kernel {kh}×{kw} (dilation {:?}) is larger than the padded input {}×{} of {}",
                    opts.dilation,
                    h + pt + pb,
                    w + pl + pr,
                    self.shape()
                ),
            );
        };
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
        })
    }
}
