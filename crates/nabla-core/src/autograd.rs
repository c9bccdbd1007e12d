//! Reverse-mode differentiation (backpropagation), define-by-run.
//!
//! Each op whose inputs track gradients records a `Node`: its inputs and a closure that maps
//! the gradient of its output, δ = ∂L/∂out, to the gradients of its inputs (the δ rule).
//! [`Tensor::backward`] walks the recorded graph once in reverse topological order. Each node's
//! closure is consumed as the walk passes it, so the activations it saved are freed at once,
//! and the gradient of an intermediate tensor is dropped as soon as it has been pushed back.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{Error, Result, Tensor, TensorId};

/// Maps δout to one optional gradient per input (None: no gradient flows to that input).
pub(crate) type BackwardFn = Box<dyn FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// One recorded op of the graph.
pub(crate) struct Node {
    pub(crate) op: &'static str,
    /// The layer that recorded this op, when profiling.
    pub(crate) scope: Option<std::sync::Arc<str>>,
    pub(crate) inputs: Mutex<Vec<Tensor>>,
    pub(crate) backward: Mutex<Option<BackwardFn>>,
}

impl Drop for Node {
    /// NOTE: the default drop recurses (node → input tensor → its node → ...) and overflowed
    /// the stack for graphs a few ten thousand ops deep that were dropped without a backward
    /// pass (a running `total = total.add(&loss)`, say). The inputs of nodes that become
    /// unreachable are unlinked here with an explicit stack instead.
    fn drop(&mut self) {
        let mut pending = std::mem::take(self.inputs.get_mut().unwrap_or_else(|e| e.into_inner()));
        while let Some(t) = pending.pop() {
            if let Some(mut node) = t.into_last_node().and_then(Arc::into_inner) {
                pending.append(node.inputs.get_mut().unwrap_or_else(|e| e.into_inner()));
            }
        }
    }
}

thread_local! {
    static NO_GRAD_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// True unless inside a [`no_grad`] scope.
pub fn is_grad_enabled() -> bool {
    NO_GRAD_DEPTH.with(|d| d.get() == 0)
}

/// While alive, ops record nothing (inference, optimiser updates). Nested guards are fine.
pub struct NoGradGuard(());

impl NoGradGuard {
    pub fn new() -> Self {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() + 1));
        NoGradGuard(())
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` without recording a graph, like PyTorch's `with torch.no_grad():`.
///
/// ```
/// use nabla_core::{no_grad, DType, Tensor};
/// let w = Tensor::ones((2,), DType::F32).requires_grad_();
/// let y = no_grad(|| w.mul_scalar(3.0)).unwrap();
/// assert!(!y.tracks_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

/// The gradients of the leaves of one backward pass, looked up by tensor.
#[derive(Default)]
pub struct GradStore(HashMap<TensorId, Tensor>);

impl GradStore {
    /// ∂L/∂t for a leaf `t` that contributed to the loss.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.0.get(&t.id())
    }
    pub fn get_id(&self, id: TensorId) -> Option<&Tensor> {
        self.0.get(&id)
    }
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.0.remove(&t.id())
    }
    pub fn insert(&mut self, t: &Tensor, grad: Tensor) {
        self.0.insert(t.id(), grad);
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn ids(&self) -> impl Iterator<Item = &TensorId> {
        self.0.keys()
    }
}

/// The tensors with a recorded op reachable from `root`, in topological order (inputs first).
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = std::collections::HashSet::new();
    // Iterative post-order DFS: deep networks would overflow a recursive one.
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let Some(node) = t.node() else { continue };
        stack.push((t.clone(), true));
        let inputs = node.inputs.lock().unwrap_or_else(|e| e.into_inner());
        for input in inputs.iter() {
            if input.node().is_some() && !visited.contains(&input.id()) {
                stack.push((input.clone(), false));
            }
        }
    }
    order
}

impl Tensor {
    /// Backpropagates from this scalar: returns ∂self/∂leaf for every leaf that requires grad
    /// and contributed. The graph is consumed; call the forward pass again for another backward.
    pub fn backward(&self) -> Result<GradStore> {
        if self.elem_count() != 1 {
            return Err(Error::Backward(format!(
                "expected a scalar (one element) to start from, got shape {}; reduce it first (sum, mean) or use backward_with",
                self.shape()
            )));
        }
        let seed = Tensor::ones_like(self)?;
        self.backward_with(&seed)
    }

    /// Backpropagates with an explicit δ for this tensor (of its shape).
    pub fn backward_with(&self, grad: &Tensor) -> Result<GradStore> {
        if grad.shape() != self.shape() {
            return Err(Error::Backward(format!(
                "gradient shape {} does not match tensor shape {}",
                grad.shape(),
                self.shape()
            )));
        }
        let _guard = NoGradGuard::new();
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        if !self.tracks_grad() {
            return Err(Error::Backward(
                "the tensor does not require grad: no input of the computation was marked with requires_grad_()".into(),
            ));
        }
        grads.insert(self.id(), grad.detach());
        let order = topological_order(self);
        for t in order.iter().rev() {
            let node = t.node().expect("topological_order yields tensors with nodes");
            let Some(delta) = grads.remove(&t.id()) else { continue };
            let backward = node.backward.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| {
                Error::Backward(format!(
                    "the graph through `{}` was already used by a backward pass and freed; run the forward pass again",
                    node.op
                ))
            })?;
            let inputs = std::mem::take(&mut *node.inputs.lock().unwrap_or_else(|e| e.into_inner()));
            let started = node.scope.as_ref().map(|_| std::time::Instant::now());
            let input_grads = backward(&delta)?;
            if let (Some(scope), Some(t)) = (&node.scope, started) {
                crate::profile::add_backward(scope, t.elapsed());
            }
            drop(delta);
            for (input, g) in inputs.iter().zip(input_grads) {
                let Some(g) = g else { continue };
                if !input.tracks_grad() {
                    continue;
                }
                if g.shape() != input.shape() {
                    return Err(Error::Backward(format!(
                        "internal error in the backward of `{}`: gradient shape {} for an input of shape {}",
                        node.op,
                        g.shape(),
                        input.shape()
                    )));
                }
                let g = if g.dtype() != input.dtype() {
                    g.to_dtype(input.dtype())?
                } else {
                    g
                };
                match grads.remove(&input.id()) {
                    Some(acc) => grads.insert(input.id(), acc.add(&g)?),
                    None => grads.insert(input.id(), g),
                };
            }
        }
        // Only leaves remain: the gradient of every intermediate tensor was removed when visited.
        Ok(GradStore(grads))
    }
}
