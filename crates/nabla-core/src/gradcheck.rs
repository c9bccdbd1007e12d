//! Gradient checking by central differences in f64, with PyTorch's default tolerances.
//!
//! For a function f of several tensors, the check draws a fixed random direction r over f's
//! output and compares, for every input element xᵢ, the analytic ∂(r·f)/∂xᵢ from
//! backpropagation with the numeric (r·f(x + εeᵢ) − r·f(x − εeᵢ)) / 2ε.

use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::{DType, Tensor, no_grad};

/// Tolerances: |analytic − numeric| ≤ atol + rtol·|numeric| (PyTorch: ε = 1e-6, atol = 1e-5, rtol = 1e-3).
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOptions {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

/// Checks the gradient of `f` at `inputs` (f64 tensors). Returns the largest absolute error,
/// or an error naming the input, the element and both values at the first mismatch.
///
/// ```
/// use nabla_core::{gradcheck, GradcheckOptions, Tensor};
/// let x = Tensor::from_vec(vec![0.5f64, -1.0, 2.0], (3,)).unwrap();
/// gradcheck(|xs| xs[0].tanh()?.mul(&xs[0]), &[x], GradcheckOptions::default()).unwrap();
/// ```
pub fn gradcheck(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], opts: GradcheckOptions) -> Result<f64> {
    for (i, x) in inputs.iter().enumerate() {
        if x.dtype() != DType::F64 {
            return Err(Error::Argument {
                op: "gradcheck",
                msg: format!("input {i} is {:?}; gradients are checked in f64", x.dtype()),
            });
        }
    }
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|x| x.contiguous().map(|c| c.detach().requires_grad_()))
        .collect::<Result<_>>()?;
    let out = f(&leaves)?;
    let mut rng = Generator::seed_from_u64(opts.seed);
    // Everything on the inputs' device: the check runs wherever the op does.
    let direction =
        Tensor::uniform_with(0.5, 1.5, out.shape().clone(), DType::F64, &mut rng)?.to_device(out.device())?;
    let grads = out.mul(&direction)?.sum_all()?.backward()?;
    let project = |xs: &[Tensor]| -> Result<f64> { no_grad(|| f(xs)?.mul(&direction)?.sum_all()?.item()) };

    let mut worst: f64 = 0.0;
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = match grads.get(leaf) {
            Some(g) => g.to_vec::<f64>()?,
            None => vec![0.0; leaf.elem_count()],
        };
        let base = leaf.to_vec::<f64>()?;
        for j in 0..base.len() {
            let shifted = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs: Vec<Tensor> = leaves.iter().map(|l| l.detach()).collect();
                xs[i] = Tensor::from_vec(v, leaf.shape().clone())?.to_device(leaf.device())?;
                project(&xs)
            };
            let numeric = (shifted(opts.eps)? - shifted(-opts.eps)?) / (2.0 * opts.eps);
            let err = (analytic[j] - numeric).abs();
            worst = worst.max(err);
            if err > opts.atol + opts.rtol * numeric.abs() {
                return Err(Error::Argument {
                    op: "gradcheck",
                    msg: format!(
                        "input {i} {} element {j}: analytic {} vs numeric {numeric}",
                        leaf.shape(),
                        analytic[j]
                    ),
                });
            }
        }
    }
    Ok(worst)
}
