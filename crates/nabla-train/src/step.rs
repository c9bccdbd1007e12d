//! One training step's arithmetic, as a function of its own: forward pass, loss, backward pass
//! (backpropagation), over micro-batches when asked. `Trainer::step` adds the ranks' sum, the
//! divergence guard and the optimiser step; `nabla bench` times this same function.

use nabla_core::{GradStore, Result, Tensor, no_grad};
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};

/// What the loss is.
#[derive(Debug, Clone)]
pub enum Objective {
    /// Softmax cross-entropy on class indices (i64 targets); GoogLeNet's auxiliary classifiers
    /// add their weighted losses in training.
    Classification(CrossEntropyOptions),
    /// Mean squared error on f32 targets.
    Regression,
}

impl Objective {
    /// The loss of `output` (and the auxiliary outputs) against `y`.
    pub fn loss(&self, output: &Tensor, aux: &[(f64, Tensor)], y: &Tensor) -> Result<Tensor> {
        match self {
            Objective::Regression => mse_loss(output, y, Reduction::Mean),
            Objective::Classification(ce) => aux.iter().try_fold(cross_entropy(output, y, ce)?, |l, (w, a)| {
                l.add(&cross_entropy(a, y, ce)?.mul_scalar(*w)?)
            }),
        }
    }
}

/// What one batch contributes on this rank before the ranks sum it.
pub struct StepGradients {
    pub grads: GradStore,
    /// Σ over micro-batches of (share of the global batch) × mean loss, or without
    /// micro-batches the part's mean loss.
    pub loss: f64,
    /// Correct predictions (classification, when counted).
    pub correct: usize,
    /// The factor `grads` and `loss` still need: the part's share of the global batch without
    /// micro-batches (1 for one process), 1 when the micro-batches were weighted already.
    pub weight: f64,
}

/// The gradients of this rank's part (`x`, `y`) of a batch of `global_len` samples, in
/// `micro_batches` parts each weighted by its share of the global batch, so that summed over the
/// ranks they are the gradient of the mean loss over the global batch. One part (one process,
/// no accumulation) takes the plain gradient of the batch. `count_correct` also counts the
/// correct predictions (one argmax per step).
pub fn gradients(
    model: &dyn Module,
    x: &Tensor,
    y: &Tensor,
    global_len: usize,
    objective: &Objective,
    micro_batches: usize,
    count_correct: bool,
) -> Result<StepGradients> {
    let local = y.dims()[0];
    let parts = micro_batches.max(1).min(local.max(1));
    let mut out = StepGradients {
        grads: GradStore::default(),
        loss: 0.0,
        correct: 0,
        weight: 1.0,
    };
    for k in 0..parts {
        let r = nabla_dist::shard(local, k, parts);
        if r.is_empty() {
            continue;
        }
        let (x, y) = if parts == 1 {
            (x.clone(), y.clone())
        } else {
            (x.narrow(0, r.start, r.len())?, y.narrow(0, r.start, r.len())?)
        };
        let (output, aux) = model.forward_with_aux(&x)?;
        let loss = objective.loss(&output, &aux, &y)?;
        let loss_v = loss.item()?;
        let g = loss.backward()?;
        if count_correct {
            let pred = no_grad(|| output.argmax(1, false))?.to_vec::<i64>()?;
            out.correct += pred.iter().zip(y.to_vec::<i64>()?).filter(|(a, b)| **a == *b).count();
        }
        if parts == 1 {
            // The whole part at once: its weight is applied where the ranks sum (no copy).
            out.grads = g;
            out.loss = loss_v;
            out.weight = local as f64 / global_len as f64;
            break;
        }
        // This part's share of the global batch (0.5 for two equal halves: exact in floats).
        let w = r.len() as f64 / global_len as f64;
        out.loss += w * loss_v;
        for p in model.parameters() {
            if let Some(gp) = g.get(&p) {
                let scaled = gp.mul_scalar(w)?;
                let sum = match out.grads.remove(&p) {
                    Some(acc) => acc.add(&scaled)?,
                    None => scaled,
                };
                out.grads.insert(&p, sum);
            }
        }
    }
    Ok(out)
}
