//! Local response normalisation across channels (Krizhevsky et al., 2012, §3.3), with
//! PyTorch's convention of dividing α by the window size n:
//!
//! b_c = a_c / s_c^β,  s_c = k + (α/n) Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} a_{c'}²   (channels outside are 0)
//!
//! AlexNet's values are n = 5, α = 1e-4, β = 0.75, k = 2. Backward:
//! δa_j = δb_j s_j^−β − (2αβ/n) a_j Σ_{c: j ∈ window(c)} δb_c a_c s_c^(−β−1).

use crate::Tensor;
use crate::backend::params::LrnParams;
use crate::error::{Result, arg_err, shape_err};

impl Tensor {
    /// Local response normalisation over dimension 1 of `[N, C, ...]` (see the module docs).
    pub fn local_response_norm(&self, size: usize, alpha: f64, beta: f64, k: f64) -> Result<Tensor> {
        if self.rank() < 3 {
            return shape_err(
                "local_response_norm",
                format!("expected [N, C, ...] with at least 3 dimensions, got {}", self.shape()),
            );
        }
        if size == 0 {
            return arg_err("local_response_norm", "size must be positive");
        }
        if self.elem_count() == 0 {
            return Ok(self.clone());
        }
        let p = LrnParams {
            n: self.dims()[0],
            c: self.dims()[1],
            s: self.dims()[2..].iter().product(),
            size,
            alpha,
            beta,
            k,
        };
        let x = self.contiguous()?.detach();
        let (out, scale) = x.storage().lrn(x.layout(), &p)?;
        let shape = self.shape().clone();
        let out = Tensor::from_any_storage(out, shape.clone());
        let scale = Tensor::from_any_storage(scale, shape.clone());
        Ok(out.record("local_response_norm", &[self], move |g| {
            let g = g.contiguous()?;
            let dx = x
                .storage()
                .lrn_backward(x.layout(), &scale.storage(), &g.storage(), g.layout(), &p)?;
            Ok(vec![Some(Tensor::from_any_storage(dx, shape.clone()))])
        }))
    }
}
