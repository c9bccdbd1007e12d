//! What every algorithm derives from a [`ConvGeometry`]: group sizes, the im2col matrix's
//! dimensions, and the transposed problem that turns δx into a forward pass.

use super::ConvGeometry;

impl ConvGeometry {
    /// Input channels per group.
    pub(super) fn cin_g(&self) -> usize {
        self.c_in / self.groups
    }
    /// Output channels per group.
    pub(super) fn cout_g(&self) -> usize {
        self.c_out / self.groups
    }
    /// Rows of the im2col matrix per group: c_in/groups · kh · kw.
    pub(crate) fn k(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }
    /// Columns of the im2col matrix: output positions.
    pub(super) fn l(&self) -> usize {
        self.oh * self.ow
    }
    /// A 1×1, stride-1, unpadded convolution reads the input directly as its im2col matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad_top == 0
            && self.pad_left == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// The range of output columns `ox` whose input column `ox·s + kj·d − pad` lies in [0, w).
    pub(super) fn valid_range(out: usize, inp: usize, s: usize, offset: isize) -> (usize, usize) {
        // smallest ox with ox·s + offset ≥ 0, and smallest ox with ox·s + offset ≥ inp.
        let lo = if offset >= 0 {
            0
        } else {
            ((-offset) as usize).div_ceil(s)
        };
        let hi = if (inp as isize) - offset <= 0 {
            0
        } else {
            ((inp as isize - offset) as usize).div_ceil(s)
        };
        (lo.min(out), hi.min(out).max(lo.min(out)))
    }

    /// Whether δx can be computed as a forward pass ([`ConvGeometry::transposed`]): stride 1,
    /// no groups, and padding at most (k − 1)·d on the top and left, so that δy's padding is
    /// not negative.
    pub(super) fn backward_input_is_a_forward_pass(&self) -> bool {
        self.groups == 1
            && self.stride == [1, 1]
            && self.kh >= 1
            && self.kw >= 1
            && self.pad_top <= (self.kh - 1) * self.dilation[0]
            && self.pad_left <= (self.kw - 1) * self.dilation[1]
    }

    /// The forward problem whose output is δx: δy's C_out planes in, C_in planes out, padded
    /// by (k − 1)·d − pad, with the weight transposed and flipped:
    ///
    /// δx[c, i] = Σ_o Σ_k W[o, c, k] · δy[o, i + pad − k·d]
    pub(super) fn transposed(&self) -> ConvGeometry {
        ConvGeometry {
            n: self.n,
            c_in: self.c_out,
            h: self.oh,
            w: self.ow,
            c_out: self.c_in,
            kh: self.kh,
            kw: self.kw,
            stride: [1, 1],
            dilation: self.dilation,
            // (k − 1)·d − pad, which backward_input_is_a_forward_pass checks is not negative.
            pad_top: (self.kh.saturating_sub(1) * self.dilation[0]).saturating_sub(self.pad_top),
            pad_left: (self.kw.saturating_sub(1) * self.dilation[1]).saturating_sub(self.pad_left),
            oh: self.h,
            ow: self.w,
            groups: 1,
            precision: self.precision,
        }
    }
}
