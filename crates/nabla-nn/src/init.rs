//! Weight initialisers, as `torch.nn.init`: they fill an existing tensor in place.
//!
//! Fans for a weight of shape `[out, in, k…]`: fan_in = in·∏k, fan_out = out·∏k.
//! - Xavier/Glorot (Glorot & Bengio, 2010): std = gain·√(2/(fan_in + fan_out)); uniform bound √3·std.
//! - He/Kaiming (He et al., 2015): std = gain/√fan, gain = √2 for ReLU; uniform bound √3·std.
//! - The lecture's N(0, 0.1), AlexNet's N(0, 0.01), and constant biases (AlexNet's 1 for ReLU layers).

use nabla_core::{Error, Generator, Result, Tensor, no_grad, rng::with_default_generator};

/// Which of fan_in or fan_out scales a Kaiming initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

/// The non-linearity that follows a layer, for its gain (PyTorch's `calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu(f64),
}

impl Nonlinearity {
    /// 1 for linear and sigmoid, 5/3 for tanh, √2 for ReLU, √(2/(1 + a²)) for leaky ReLU.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        }
    }
}

/// How to fill a tensor: layers take one for their weight and one for their bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Every element the same (0 for most biases; 1 for AlexNet's ReLU biases).
    Constant(f64),
    /// N(mean, std²).
    Normal {
        mean: f64,
        std: f64,
    },
    /// U(lo, hi).
    Uniform {
        lo: f64,
        hi: f64,
    },
    XavierUniform {
        gain: f64,
    },
    XavierNormal {
        gain: f64,
    },
    KaimingUniform {
        nonlinearity: Nonlinearity,
        mode: FanMode,
    },
    KaimingNormal {
        nonlinearity: Nonlinearity,
        mode: FanMode,
    },
    /// PyTorch's default for Linear and Conv weights: kaiming_uniform(a = √5), i.e. U(±1/√fan_in).
    PytorchDefaultWeight,
    /// PyTorch's default for Linear and Conv biases: U(±1/√fan_in) of the layer's weight.
    PytorchDefaultBias {
        fan_in: usize,
    },
}

/// (fan_in, fan_out) of a weight shape, as PyTorch computes them.
pub fn fans(dims: &[usize]) -> Result<(usize, usize)> {
    if dims.len() < 2 {
        return Err(Error::Argument {
            op: "init",
            msg: format!("fan in and fan out need at least 2 dimensions, got {dims:?}"),
        });
    }
    let receptive: usize = dims[2..].iter().product();
    Ok((dims[1] * receptive, dims[0] * receptive))
}

impl Init {
    /// The values for a tensor of `dims`, drawn from `rng`.
    pub fn sample(&self, dims: &[usize], dtype: nabla_core::DType, rng: &mut Generator) -> Result<Tensor> {
        let normal = |mean: f64, std: f64, rng: &mut Generator| Tensor::normal_with(mean, std, dims, dtype, rng);
        let uniform = |bound: f64, rng: &mut Generator| Tensor::uniform_with(-bound, bound, dims, dtype, rng);
        match *self {
            Init::Constant(c) => Ok(Tensor::full(c, dims, dtype)),
            Init::Normal { mean, std } => normal(mean, std, rng),
            Init::Uniform { lo, hi } => Tensor::uniform_with(lo, hi, dims, dtype, rng),
            Init::XavierUniform { gain } => {
                let (fi, fo) = fans(dims)?;
                uniform(gain * (6.0 / (fi + fo) as f64).sqrt(), rng)
            }
            Init::XavierNormal { gain } => {
                let (fi, fo) = fans(dims)?;
                normal(0.0, gain * (2.0 / (fi + fo) as f64).sqrt(), rng)
            }
            Init::KaimingUniform { nonlinearity, mode } => {
                let fan = pick(fans(dims)?, mode);
                uniform(nonlinearity.gain() * (3.0 / fan as f64).sqrt(), rng)
            }
            Init::KaimingNormal { nonlinearity, mode } => {
                let fan = pick(fans(dims)?, mode);
                normal(0.0, nonlinearity.gain() / (fan as f64).sqrt(), rng)
            }
            Init::PytorchDefaultWeight => {
                let (fi, _) = fans(dims)?;
                // gain for leaky_relu(a = √5) is √(2/6) = √(1/3); bound = gain·√(3/fan_in) = 1/√fan_in
                uniform(1.0 / (fi as f64).sqrt(), rng)
            }
            Init::PytorchDefaultBias { fan_in } => {
                uniform(if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 }, rng)
            }
        }
    }

    /// Overwrites `t` in place with fresh values from the default generator (see `manual_seed`).
    pub fn fill_(&self, t: &Tensor) -> Result<()> {
        let v = with_default_generator(|rng| self.sample(t.dims(), t.dtype(), rng))?;
        no_grad(|| t.copy_(&v))
    }
}

fn pick((fan_in, fan_out): (usize, usize), mode: FanMode) -> usize {
    match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    }
}

/// A new parameter of `dims` filled by `init` from the default generator.
pub fn parameter(init: Init, dims: &[usize]) -> Result<Tensor> {
    nabla_core::limits::check_tensor(dims, 4, "parameter")?;
    let t = with_default_generator(|rng| init.sample(dims, nabla_core::DType::F32, rng))?;
    Ok(t.requires_grad_())
}
