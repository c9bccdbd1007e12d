//! Spatial padding of `[N, C, H, W]` tensors in PyTorch's four modes. Convolutions use it for
//! every mode but zeros (which their kernel handles without a copy).

use crate::Tensor;
use crate::backend::params::{Pad2dParams, PaddingMode};
use crate::error::{Result, shape_err};

impl Tensor {
    /// Pads the last two dimensions by `[top, bottom, left, right]` in `mode`.
    /// δx = Σ of δ over every output position that copied each input (the adjoint).
    pub fn pad2d(&self, sides: [usize; 4], mode: PaddingMode) -> Result<Tensor> {
        if self.rank() < 2 {
            return shape_err(
                "pad2d",
                format!("expected at least 2 dimensions, got shape {}", self.shape()),
            );
        }
        if sides == [0; 4] {
            return Ok(self.clone());
        }
        let r = self.rank();
        let (h, w) = (self.dims()[r - 2], self.dims()[r - 1]);
        let planes: usize = self.dims()[..r - 2].iter().product();
        // The limits of each mode, checked on the host for every device.
        mode.check("pad2d", h, sides[0], sides[1])?;
        mode.check("pad2d", w, sides[2], sides[3])?;
        let out_h = h.checked_add(sides[0]).and_then(|v| v.checked_add(sides[1]));
        let out_w = w.checked_add(sides[2]).and_then(|v| v.checked_add(sides[3]));
        let (oh, ow) = (out_h.unwrap_or(usize::MAX), out_w.unwrap_or(usize::MAX));
        crate::limits::check_tensor(&[planes, oh, ow], self.dtype().size_in_bytes(), "pad2d output")?;
        let p = Pad2dParams {
            planes,
            h,
            w,
            sides,
            mode,
        };
        let x = self.contiguous()?;
        let out = x.storage().pad2d(x.layout(), &p)?;
        let mut dims = self.dims().to_vec();
        dims[r - 2] = p.out_h();
        dims[r - 1] = p.out_w();
        let out = Tensor::from_any_storage(out, dims);
        let in_shape = self.shape().clone();
        Ok(out.record("pad2d", &[self], move |g| {
            let g = g.contiguous()?;
            let dx = g.storage().pad2d_backward(g.layout(), &p)?;
            Ok(vec![Some(Tensor::from_any_storage(dx, in_shape.clone()))])
        }))
    }
}
