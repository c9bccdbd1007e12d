//! The `Module` trait: a forward pass, named parameters and buffers with PyTorch's dotted
//! names (`features.0.weight`, `layer1.0.bn1.running_mean`), and train/eval mode.

use nabla_core::{Device, Error, Result, Tensor};

/// A layer or a network. Parameters are leaf tensors that require grad; optimisers update
/// them in place, so a module's tensors keep their identity for its whole life.
pub trait Module: Send + Sync {
    /// The forward pass.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Calls `f(name, parameter)` for every trainable tensor, names prefixed by `prefix`.
    /// The default walks [`Module::children`] (`prefix.child.…`): a network states its parts
    /// once, in `children`; a layer that holds tensors itself (Linear, Conv2d) overrides this.
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (name, child) in self.children() {
            child.visit_parameters(&join(prefix, &name), f);
        }
    }

    /// Calls `f(name, buffer)` for every tensor of state that is not trained (batch-norm
    /// running statistics).
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for (name, child) in self.children() {
            child.visit_buffers(&join(prefix, &name), f);
        }
    }

    /// Switches training behaviour (dropout, batch norm) on or off, here and in children.
    fn set_training(&self, training: bool) {
        for (_, child) in self.children() {
            child.set_training(training);
        }
    }

    /// A short description for summaries, e.g. `Linear(784 → 10)`.
    fn describe(&self) -> String {
        std::any::type_name::<Self>()
            .rsplit("::")
            .next()
            .unwrap_or("Module")
            .to_string()
    }

    /// The forward pass of training with the weighted outputs of auxiliary classifiers
    /// (GoogLeNet's two heads, weight 0.3): the training loss is L(main) + Σ wᵢ·L(auxᵢ).
    /// Models without auxiliary heads return none.
    fn forward_with_aux(&self, x: &Tensor) -> Result<(Tensor, Vec<(f64, Tensor)>)> {
        Ok((self.forward(x)?, Vec::new()))
    }

    /// The direct sub-modules with their names (the parts of their parameter names), in the
    /// order the forward pass uses them; empty for a leaf layer. Summaries walk this tree.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// Writes this module's inference graph into `g` (ONNX operators, opset 17) reading `x`,
    /// and returns its output; see [`crate::onnx`]. Layers implement it next to `forward`;
    /// the default is an error naming the layer.
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, _x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        Err(g.unsupported(&self.describe(), "no ONNX export is written for this layer"))
    }

    /// Parameters with their dotted names, in registration order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit_parameters("", &mut |name, t| out.push((name, t.clone())));
        out
    }

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, t)| t).collect()
    }

    /// Moves every parameter and buffer to `device` in place (PyTorch's `module.to(device)`):
    /// the tensors keep their identity, so an optimiser built before the move still holds
    /// them. Stops at the first tensor that cannot move and says which.
    fn to_device(&self, device: Device) -> Result<()> {
        let mut first_error = None;
        let mut move_one = |name: String, t: &Tensor| {
            if first_error.is_none()
                && let Err(e) = t.move_to_(device)
            {
                first_error = Some(Error::Argument {
                    op: "Module::to_device",
                    msg: format!("`{name}`: {e}"),
                });
            }
        };
        self.visit_parameters("", &mut move_one);
        self.visit_buffers("", &mut move_one);
        first_error.map_or(Ok(()), Err)
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |name, t| out.push((name, t.clone())));
        out
    }

    /// The number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.elem_count()).sum()
    }

    /// Parameters and buffers by name: what PyTorch's `state_dict()` holds.
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut all = self.named_parameters();
        all.extend(self.named_buffers());
        all
    }

    /// Training mode (dropout active, batch norm uses and updates batch statistics).
    fn train(&self) {
        self.set_training(true)
    }

    /// Evaluation mode (dropout is the identity, batch norm uses running statistics).
    fn eval(&self) {
        self.set_training(false)
    }
}

/// `prefix.name`, or `name` at the top level.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        (**self).forward(x)
    }
    fn forward_with_aux(&self, x: &Tensor) -> Result<(Tensor, Vec<(f64, Tensor)>)> {
        (**self).forward_with_aux(x)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        (**self).visit_parameters(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        (**self).visit_buffers(prefix, f)
    }
    fn set_training(&self, training: bool) {
        (**self).set_training(training)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        (**self).children()
    }
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        (**self).to_onnx(g, x)
    }
}

/// A training-mode flag that can be flipped through `&self`.
#[derive(Debug)]
pub struct Mode(std::sync::atomic::AtomicBool);

impl Default for Mode {
    fn default() -> Self {
        Mode(std::sync::atomic::AtomicBool::new(true))
    }
}

impl Mode {
    pub fn is_training(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn set(&self, training: bool) {
        self.0.store(training, std::sync::atomic::Ordering::Relaxed)
    }
}
