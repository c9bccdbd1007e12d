//! What the zoo's models share: the initialisers the papers and torchvision use, and the
//! output-size arithmetic of convolutions and pooling (for layers whose size follows from the
//! input). Parameters, buffers and mode come from `Module`'s defaults over `children()`.

use nabla_core::{Error, Result};
use nabla_nn::init::{FanMode, Init, Nonlinearity};

/// He et al. (2015): N(0, 2/fan_out) for a convolution followed by ReLU, torchvision's
/// `kaiming_normal_(w, mode="fan_out", nonlinearity="relu")` for ResNet and VGG.
pub const KAIMING_FAN_OUT: Init = Init::KaimingNormal {
    nonlinearity: Nonlinearity::Relu,
    mode: FanMode::FanOut,
};

/// N(0, 0.01²): AlexNet's weights (Krizhevsky et al., 2012, §5), ZFNet's, VGG's and
/// torchvision's fully connected layers in VGG.
pub const NORMAL_001: Init = Init::Normal { mean: 0.0, std: 0.01 };

/// The size of one spatial axis after a window of `k` with stride `s` and padding `p`
/// (convolution, or pooling with `ceil` mode as PyTorch computes it). An error names `op`
/// and the input size if the window does not fit.
pub fn out_size(op: &'static str, n: usize, k: usize, s: usize, p: usize, ceil: bool) -> Result<usize> {
    if n + 2 * p < k {
        return Err(Error::Shape {
            op,
            msg: format!("a {k}×{k} window (padding {p}) does not fit an input of {n}: the input is too small"),
        });
    }
    let num = n + 2 * p - k;
    let mut out = if ceil { num.div_ceil(s) } else { num / s } + 1;
    // PyTorch: with ceil_mode the last window must start inside the input or its left padding.
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::out_size;

    #[test]
    fn output_sizes() {
        // AlexNet conv1 (11×11, stride 4, padding 2) on 224 → 55, pooling 3/2 → 27.
        assert_eq!(out_size("t", 224, 11, 4, 2, false).unwrap(), 55);
        assert_eq!(out_size("t", 55, 3, 2, 0, false).unwrap(), 27);
        // ZFNet's pooling with ceil mode: 110 → 55, 26 → 13.
        assert_eq!(out_size("t", 110, 3, 2, 0, true).unwrap(), 55);
        assert_eq!(out_size("t", 26, 3, 2, 0, true).unwrap(), 13);
        assert!(out_size("t", 2, 3, 2, 0, false).is_err());
    }
}
