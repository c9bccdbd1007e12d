//! Normalisation layers: batch normalisation and local response normalisation.

use crate::module::{Mode, Module, join};
use nabla_core::{DType, Error, Result, Tensor};

/// Batch normalisation (Ioffe & Szegedy, 2015) over `[N, C]`, `[N, C, L]` or `[N, C, H, W]`:
///
/// y = γ·(x − μ)/√(σ² + ε) + β, with μ, σ² the batch statistics per channel in training
/// (σ² biased) and the running statistics in evaluation. After each training batch:
/// running ← (1 − m)·running + m·batch (the running variance uses the unbiased σ²).
///
/// Training runs `Tensor::batch_norm_train`, one fused op with a hand-written backward,
/// δx = (γ/σ)·(δy − mean(δy) − x̂·mean(δy·x̂)) (cuDNN's on a GPU); evaluation is composed of
/// element-wise ops with the running statistics.
///
/// By hand, in training: one channel holding 1, 3 over a batch of 2 has mean 2 and biased
/// variance 1, so x̂ = ∓1/√(1 + ε); the running mean moves 0.1 of the way to 2.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let bn = BatchNorm::new_1d(1);
/// let y = bn.forward(&Tensor::from_vec(vec![1.0f32, 3.0], (2, 1)).unwrap()).unwrap();
/// let expected = 1.0 / (1.0f32 + 1e-5).sqrt();
/// assert!((y.to_vec::<f32>().unwrap()[1] - expected).abs() < 1e-6);
/// assert!((bn.running_mean.to_vec::<f32>().unwrap()[0] - 0.2).abs() < 1e-7);
/// ```
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    pub eps: f64,
    /// None: a cumulative moving average, as PyTorch's `momentum=None`.
    pub momentum: Option<f64>,
    /// The rank of the expected input: 2 or 3 (BatchNorm1d), 4 (BatchNorm2d).
    ranks: &'static [usize],
    mode: Mode,
}

impl BatchNorm {
    fn new(channels: usize, ranks: &'static [usize]) -> Self {
        BatchNorm {
            weight: Tensor::ones((channels,), DType::F32).requires_grad_(),
            bias: Tensor::zeros((channels,), DType::F32).requires_grad_(),
            running_mean: Tensor::zeros((channels,), DType::F32),
            running_var: Tensor::ones((channels,), DType::F32),
            num_batches_tracked: Tensor::zeros((), DType::I64),
            eps: 1e-5,
            momentum: Some(0.1),
            ranks,
            mode: Mode::default(),
        }
    }
    /// For `[N, C]` or `[N, C, L]` inputs (PyTorch's BatchNorm1d).
    pub fn new_1d(channels: usize) -> Self {
        BatchNorm::new(channels, &[2, 3])
    }
    /// For `[N, C, H, W]` inputs (PyTorch's BatchNorm2d).
    pub fn new_2d(channels: usize) -> Self {
        BatchNorm::new(channels, &[4])
    }
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    pub fn momentum(mut self, m: Option<f64>) -> Self {
        self.momentum = m;
        self
    }
}

thread_local! {
    static CUMULATIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every batch norm of this thread averaging its running statistics over all
/// batches seen (PyTorch's `momentum=None`) whatever its momentum: one pass over a batch then
/// sets the statistics of a fresh layer to that batch's. For calibrating an untrained model.
pub fn with_cumulative_statistics<R>(f: impl FnOnce() -> R) -> R {
    /// Switches the mode back even when `f` unwinds.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CUMULATIVE.with(|c| c.set(false));
        }
    }
    CUMULATIVE.with(|c| c.set(true));
    let _reset = Reset;
    f()
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.elem_count();
        if !self.ranks.contains(&x.rank()) || x.dims()[1] != c {
            return Err(Error::Shape {
                op: "BatchNorm",
                msg: format!(
                    "expected an input of rank {:?} with {c} channels in dimension 1, got {}",
                    self.ranks,
                    x.shape()
                ),
            });
        }
        if self.mode.is_training() {
            // One fused op on every device (cuDNN on a GPU): statistics, normalisation and the
            // running averages; its backward is written by hand.
            let tracked = self.num_batches_tracked.to_scalar::<i64>()? + 1;
            self.num_batches_tracked.copy_(&Tensor::from_vec(vec![tracked], ())?)?;
            let cumulative = CUMULATIVE.with(|c| c.get());
            let m = if cumulative {
                1.0 / tracked as f64
            } else {
                self.momentum.unwrap_or(1.0 / tracked as f64)
            };
            let running = (&self.running_mean, &self.running_var);
            return x.batch_norm_train(&self.weight, &self.bias, Some(running), m, self.eps);
        }
        // Evaluation: one multiply-add per value from the running statistics.
        x.batch_norm_eval(
            &self.weight,
            &self.bias,
            &self.running_mean,
            &self.running_var,
            self.eps,
        )
    }

    /// `BatchNormalization` with the running statistics (evaluation mode).
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        let y = self.forward(&x.sample)?;
        let inputs = [
            x.name.clone(),
            g.weight("weight", &self.weight)?,
            g.weight("bias", &self.bias)?,
            g.weight("running_mean", &self.running_mean)?,
            g.weight("running_var", &self.running_var)?,
        ];
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let attrs = vec![("epsilon", crate::onnx::Attr::Float(self.eps as f32))];
        Ok(g.op("BatchNormalization", &inputs, attrs, y))
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "weight"), &self.weight);
        f(join(prefix, "bias"), &self.bias);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        f(join(prefix, "running_mean"), &self.running_mean);
        f(join(prefix, "running_var"), &self.running_var);
        f(join(prefix, "num_batches_tracked"), &self.num_batches_tracked);
    }
    fn set_training(&self, training: bool) {
        self.mode.set(training)
    }
    fn describe(&self) -> String {
        format!(
            "BatchNorm({} channels, eps {}, momentum {:?})",
            self.weight.elem_count(),
            self.eps,
            self.momentum
        )
    }
}

/// Local response normalisation across channels (Krizhevsky et al., 2012, §3.3), PyTorch's
/// convention: b = a / (k + α/n · Σ a²)^β over a window of n channels.
///
/// By hand: size 1, α = 1, β = 1, k = 1 gives b = a / (1 + a²): 2 → 0.4.
///
/// ```
/// use nabla_core::Tensor;
/// use nabla_nn::*;
/// let lrn = LocalResponseNorm { size: 1, alpha: 1.0, beta: 1.0, k: 1.0 };
/// let y = lrn.forward(&Tensor::from_vec(vec![2.0f32], (1, 1, 1, 1)).unwrap()).unwrap();
/// assert!((y.to_vec::<f32>().unwrap()[0] - 0.4).abs() < 1e-7);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LocalResponseNorm {
    pub size: usize,
    pub alpha: f64,
    pub beta: f64,
    pub k: f64,
}

impl LocalResponseNorm {
    /// PyTorch's defaults: α = 1e-4, β = 0.75, k = 1.
    pub fn new(size: usize) -> Self {
        LocalResponseNorm {
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        }
    }
    /// AlexNet's values: n = 5, α = 1e-4, β = 0.75, k = 2 (Krizhevsky et al., 2012).
    pub fn alexnet() -> Self {
        LocalResponseNorm {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            k: 2.0,
        }
    }
}

impl Module for LocalResponseNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.local_response_norm(self.size, self.alpha, self.beta, self.k)
    }
    /// ONNX `LRN`. For an even size ONNX centres the window one channel later than PyTorch
    /// (⌊(n−1)/2⌋ before instead of ⌊n/2⌋), so only odd sizes are exported.
    fn to_onnx(&self, g: &mut crate::onnx::OnnxGraph, x: &crate::onnx::OnnxValue) -> Result<crate::onnx::OnnxValue> {
        use crate::onnx::Attr;
        if self.size.is_multiple_of(2) {
            return Err(g.unsupported(
                &self.describe(),
                "ONNX LRN places an even window one channel off PyTorch's; use an odd size",
            ));
        }
        let y = self.forward(&x.sample)?;
        let attrs = vec![
            ("size", Attr::Int(self.size as i64)),
            ("alpha", Attr::Float(self.alpha as f32)),
            ("beta", Attr::Float(self.beta as f32)),
            ("bias", Attr::Float(self.k as f32)),
        ];
        Ok(g.op("LRN", &[&x.name], attrs, y))
    }
    fn describe(&self) -> String {
        format!(
            "LocalResponseNorm(size {}, α {}, β {}, k {})",
            self.size, self.alpha, self.beta, self.k
        )
    }
}
