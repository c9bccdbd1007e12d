//! Inverted dropout (Srivastava et al., 2014): in training, each element is kept with
//! probability 1 − p and scaled by 1/(1 − p), so evaluation is the identity. This equals the
//! paper's "multiply the weights by 1 − p at test time" in expectation.

use crate::error::{Result, arg_err};
use crate::rng::Generator;
use crate::{Shape, Tensor};

impl Tensor {
    /// y = x ⊙ m / (1 − p), m ~ Bernoulli(1 − p) drawn from `rng`.  δx = δ ⊙ m / (1 − p).
    pub fn dropout(&self, p: f64, rng: &mut Generator) -> Result<Tensor> {
        let mask = self.dropout_mask_on_device(self.shape(), p, rng)?;
        self.mul(&mask)
    }

    /// Channel dropout for `[N, C, ...]` inputs (PyTorch's `dropout2d`): whole feature maps are
    /// zeroed together.
    pub fn dropout2d(&self, p: f64, rng: &mut Generator) -> Result<Tensor> {
        if self.rank() < 2 {
            return arg_err(
                "dropout2d",
                format!("expected at least [N, C], got shape {}", self.shape()),
            );
        }
        let mut dims = vec![self.dims()[0], self.dims()[1]];
        dims.extend(std::iter::repeat_n(1, self.rank() - 2));
        let mask = self.dropout_mask_on_device(&Shape::new(dims), p, rng)?;
        self.mul(&mask)
    }

    /// The mask in this tensor's dtype on its device: drawn on the host from `rng`, or on a
    /// GPU by Philox seeded from `rng` (one draw), so a seeded run is reproducible on both.
    fn dropout_mask_on_device(&self, shape: &Shape, p: f64, rng: &mut Generator) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&p) {
            return arg_err("dropout", format!("probability must be in [0, 1], got {p}"));
        }
        let mask = self.storage().dropout_mask(self.dtype(), shape.elem_count(), p, rng)?;
        Ok(Tensor::from_any_storage(mask, shape.clone()))
    }
}
