//! Initialisers: the mean, standard deviation and range of large samples against the formulas
//! of `torch.nn.init`, and the layers' default initialisation, PyTorch's U(±1/√fan_in).
//!
//! With n ≥ 65 536 samples the sample mean is within 5σ/√n ≤ 0.02σ of the true mean and the
//! sample std within 2% of the true std, with overwhelming probability; the seeds are fixed.

use nabla_core::{DType, Generator, Tensor, manual_seed};
use nabla_nn::init::{FanMode, Init, Nonlinearity, fans};
use nabla_nn::{BatchNorm, Conv2dConfig, Linear, LinearConfig, Module};

struct Stats {
    mean: f64,
    std: f64,
    min: f64,
    max: f64,
}

fn stats(t: &Tensor) -> Stats {
    let v = t.to_vec_f64().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Stats {
        mean,
        std: var.sqrt(),
        min,
        max,
    }
}

fn sample(init: Init, dims: &[usize], seed: u64) -> Tensor {
    let t = init
        .sample(dims, DType::F32, &mut Generator::seed_from_u64(seed))
        .unwrap();
    assert_eq!(t.dims(), dims);
    assert_eq!(t.dtype(), DType::F32);
    t
}

/// Mean ≈ `mean`, std ≈ `std`.
#[track_caller]
fn check_moments(what: &str, s: &Stats, n: usize, mean: f64, std: f64) {
    let mean_tol = 5.0 * std / (n as f64).sqrt();
    assert!(
        (s.mean - mean).abs() <= mean_tol,
        "{what}: mean {} expected {mean} ± {mean_tol}",
        s.mean
    );
    assert!((s.std / std - 1.0).abs() < 0.02, "{what}: std {} expected {std}", s.std);
}

/// U(−bound, bound): mean 0, std bound/√3, every value inside, the extremes near ±bound.
#[track_caller]
fn check_uniform(what: &str, t: &Tensor, bound: f64) {
    let s = stats(t);
    check_moments(what, &s, t.elem_count(), 0.0, bound / 3f64.sqrt());
    assert!(
        s.min >= -bound * (1.0 + 1e-6) && s.max <= bound * (1.0 + 1e-6),
        "{what}: range [{}, {}] bound {bound}",
        s.min,
        s.max
    );
    assert!(
        s.min < -0.99 * bound && s.max > 0.99 * bound,
        "{what}: range [{}, {}] bound {bound}",
        s.min,
        s.max
    );
}

/// N(0, std²).
#[track_caller]
fn check_normal(what: &str, t: &Tensor, std: f64) {
    let s = stats(t);
    check_moments(what, &s, t.elem_count(), 0.0, std);
    // A normal sample of this size reaches beyond 3.5σ on both sides (each with probability
    // 1 − e^−17 for n = 73 728); a uniform one would not pass √3σ.
    assert!(
        s.max > 3.5 * std && s.min < -3.5 * std,
        "{what}: not normal-looking, range [{}, {}]",
        s.min,
        s.max
    );
}

const W2: [usize; 2] = [512, 256]; // fan_in 256, fan_out 512
const W4: [usize; 4] = [128, 64, 3, 3]; // fan_in 576, fan_out 1152

#[test]
fn fans_are_pytorchs() {
    assert_eq!(fans(&W2).unwrap(), (256, 512));
    assert_eq!(fans(&W4).unwrap(), (576, 1152));
    assert_eq!(fans(&[10, 3, 11, 11]).unwrap(), (363, 1210));
    assert!(fans(&[5]).is_err());
    assert!(
        Init::XavierUniform { gain: 1.0 }
            .sample(&[5], DType::F32, &mut Generator::seed_from_u64(0))
            .is_err()
    );
}

#[test]
fn gains_are_pytorchs_calculate_gain() {
    assert_eq!(Nonlinearity::Linear.gain(), 1.0);
    assert_eq!(Nonlinearity::Sigmoid.gain(), 1.0);
    assert!((Nonlinearity::Tanh.gain() - 5.0 / 3.0).abs() < 1e-15);
    assert!((Nonlinearity::Relu.gain() - 2f64.sqrt()).abs() < 1e-15);
    assert!((Nonlinearity::LeakyRelu(0.01).gain() - (2.0 / 1.0001f64).sqrt()).abs() < 1e-15);
    assert!((Nonlinearity::LeakyRelu(0.2).gain() - (2.0 / 1.04f64).sqrt()).abs() < 1e-15);
    // kaiming_uniform(a = √5): gain √(1/3), PyTorch's default for Linear and Conv weights.
    assert!((Nonlinearity::LeakyRelu(5f64.sqrt()).gain() - (1.0 / 3f64).sqrt()).abs() < 1e-15);
}

#[test]
fn constant() {
    let t = sample(Init::Constant(0.25), &[64, 64], 0);
    assert!(t.to_vec_f64().unwrap().iter().all(|&v| v == 0.25));
    let t = sample(Init::Constant(1.0), &[7], 0);
    assert!(t.to_vec_f64().unwrap().iter().all(|&v| v == 1.0));
}

#[test]
fn normal() {
    let t = sample(Init::Normal { mean: 1.0, std: 0.1 }, &[512, 512], 1);
    let s = stats(&t);
    check_moments("N(1, 0.1²)", &s, t.elem_count(), 1.0, 0.1);
    let t = sample(Init::Normal { mean: 0.0, std: 0.01 }, &[512, 512], 2); // AlexNet's
    check_normal("N(0, 0.01²)", &t, 0.01);
}

#[test]
fn uniform() {
    let t = sample(Init::Uniform { lo: -2.0, hi: 3.0 }, &[512, 512], 3);
    let s = stats(&t);
    check_moments("U(−2, 3)", &s, t.elem_count(), 0.5, 5.0 / 12f64.sqrt());
    assert!(s.min >= -2.0 && s.max < 3.0 && s.min < -1.99 && s.max > 2.99);
}

#[test]
fn xavier_uniform() {
    for (dims, gain) in [(&W2[..], 1.0), (&W4[..], 5.0 / 3.0)] {
        let (fi, fo) = fans(dims).unwrap();
        let t = sample(Init::XavierUniform { gain }, dims, 4);
        let bound = gain * (6.0 / (fi + fo) as f64).sqrt();
        check_uniform(&format!("xavier_uniform {dims:?} gain {gain}"), &t, bound);
    }
}

#[test]
fn xavier_normal() {
    for (dims, gain) in [(&W2[..], 1.0), (&W4[..], 2f64.sqrt())] {
        let (fi, fo) = fans(dims).unwrap();
        let t = sample(Init::XavierNormal { gain }, dims, 5);
        check_normal(
            &format!("xavier_normal {dims:?} gain {gain}"),
            &t,
            gain * (2.0 / (fi + fo) as f64).sqrt(),
        );
    }
}

fn kaiming_cases() -> Vec<(Nonlinearity, FanMode, &'static [usize])> {
    let mut v: Vec<(Nonlinearity, FanMode, &'static [usize])> = Vec::new();
    for nl in [
        Nonlinearity::Relu,
        Nonlinearity::LeakyRelu(0.2),
        Nonlinearity::LeakyRelu(0.01),
    ] {
        for mode in [FanMode::FanIn, FanMode::FanOut] {
            v.push((nl, mode, &W2));
            v.push((nl, mode, &W4));
        }
    }
    v
}

fn fan(dims: &[usize], mode: FanMode) -> f64 {
    let (fi, fo) = fans(dims).unwrap();
    (if mode == FanMode::FanIn { fi } else { fo }) as f64
}

#[test]
fn kaiming_uniform() {
    for (i, (nonlinearity, mode, dims)) in kaiming_cases().into_iter().enumerate() {
        let t = sample(Init::KaimingUniform { nonlinearity, mode }, dims, 100 + i as u64);
        let bound = nonlinearity.gain() * (3.0 / fan(dims, mode)).sqrt();
        check_uniform(
            &format!("kaiming_uniform {nonlinearity:?} {mode:?} {dims:?}"),
            &t,
            bound,
        );
    }
    // He et al.: with ReLU and fan_in, Var = 2/fan_in.
    let t = sample(
        Init::KaimingUniform {
            nonlinearity: Nonlinearity::Relu,
            mode: FanMode::FanIn,
        },
        &W2,
        6,
    );
    assert!((stats(&t).std.powi(2) * 256.0 / 2.0 - 1.0).abs() < 0.04);
}

#[test]
fn kaiming_normal() {
    for (i, (nonlinearity, mode, dims)) in kaiming_cases().into_iter().enumerate() {
        let t = sample(Init::KaimingNormal { nonlinearity, mode }, dims, 200 + i as u64);
        let std = nonlinearity.gain() / fan(dims, mode).sqrt();
        check_normal(&format!("kaiming_normal {nonlinearity:?} {mode:?} {dims:?}"), &t, std);
    }
}

#[test]
fn pytorch_default_weight_and_bias() {
    for (i, dims) in [&W2[..], &W4[..]].into_iter().enumerate() {
        let t = sample(Init::PytorchDefaultWeight, dims, 300 + i as u64);
        let bound = 1.0 / (fans(dims).unwrap().0 as f64).sqrt();
        check_uniform(&format!("pytorch default weight {dims:?}"), &t, bound);
        // It is kaiming_uniform with a = √5 and fan_in.
        let k = sample(
            Init::KaimingUniform {
                nonlinearity: Nonlinearity::LeakyRelu(5f64.sqrt()),
                mode: FanMode::FanIn,
            },
            dims,
            300 + i as u64,
        );
        let (a, b) = (t.to_vec_f64().unwrap(), k.to_vec_f64().unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-6 * bound));
    }
    let t = sample(Init::PytorchDefaultBias { fan_in: 100 }, &[512, 512], 7);
    check_uniform("pytorch default bias, fan_in 100", &t, 0.1);
}

#[test]
fn fill_overwrites_in_place_and_manual_seed_reproduces() {
    let p = Tensor::zeros((256, 256), DType::F32).requires_grad_();
    let id = p.id();
    manual_seed(42);
    Init::XavierNormal { gain: 1.0 }.fill_(&p).unwrap();
    assert_eq!(p.id(), id);
    assert!(p.requires_grad());
    check_normal("fill_ xavier_normal", &p, (2.0 / 512.0f64).sqrt());
    let first = p.to_vec_f64().unwrap();
    manual_seed(42);
    Init::XavierNormal { gain: 1.0 }.fill_(&p).unwrap();
    assert_eq!(p.to_vec_f64().unwrap(), first);
}

/// Every parameter of a layer is U(±1/√fan_in) by default, fan_in = in_features for Linear,
/// in_channels/groups · kH · kW for Conv2d, for the weight and the bias alike.
#[test]
fn layer_defaults_are_pytorchs_bound() {
    manual_seed(5);
    let lin = Linear::new(400, 512).unwrap();
    check_uniform("Linear(400, 512).weight", &lin.weight, 1.0 / 20.0);
    let b = stats(lin.bias.as_ref().unwrap());
    assert!(
        b.max <= 0.05 && b.min >= -0.05 && b.max > 0.04 && b.min < -0.04,
        "Linear bias [{}, {}]",
        b.min,
        b.max
    );

    let conv = Conv2dConfig::new(16, 256, 5).init().unwrap(); // fan_in 400
    assert_eq!(conv.weight.dims(), &[256, 16, 5, 5]);
    check_uniform("Conv2d(16, 256, 5).weight", &conv.weight, 0.05);
    let b = stats(conv.bias.as_ref().unwrap());
    assert!(
        b.max <= 0.05 && b.min >= -0.05 && b.max > 0.04 && b.min < -0.04,
        "Conv2d bias [{}, {}]",
        b.min,
        b.max
    );

    let grouped = Conv2dConfig::new(64, 256, 3).groups(4).init().unwrap(); // fan_in 16·9 = 144
    assert_eq!(grouped.weight.dims(), &[256, 16, 3, 3]);
    check_uniform("Conv2d(64, 256, 3, groups 4).weight", &grouped.weight, 1.0 / 12.0);
    let b = stats(grouped.bias.as_ref().unwrap());
    assert!(
        b.max <= 1.0 / 12.0 && b.min >= -1.0 / 12.0 && b.max > 0.06 && b.min < -0.06,
        "grouped bias [{}, {}]",
        b.min,
        b.max
    );

    for (name, p) in lin.named_parameters().into_iter().chain(conv.named_parameters()) {
        assert!(p.requires_grad(), "{name}");
        assert_eq!(p.dtype(), DType::F32, "{name}");
    }
    assert!(LinearConfig::new(3, 2).bias(false).init().unwrap().bias.is_none());
    assert!(Conv2dConfig::new(3, 2, 3).bias(false).init().unwrap().bias.is_none());
    assert!(Conv2dConfig::new(3, 2, 3).groups(2).init().is_err());
}

#[test]
fn batchnorm_defaults_are_pytorchs() {
    let bn = BatchNorm::new_2d(4);
    let sd = bn.state_dict();
    let get = |n: &str| sd.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("weight").to_vec_f64().unwrap(), [1.0; 4]);
    assert_eq!(get("bias").to_vec_f64().unwrap(), [0.0; 4]);
    assert_eq!(get("running_mean").to_vec_f64().unwrap(), [0.0; 4]);
    assert_eq!(get("running_var").to_vec_f64().unwrap(), [1.0; 4]);
    assert_eq!(get("num_batches_tracked").dtype(), DType::I64);
    assert_eq!(get("num_batches_tracked").dims(), &[] as &[usize]);
    assert_eq!(bn.eps, 1e-5);
    assert_eq!(bn.momentum, Some(0.1));
}

#[test]
fn configs_take_other_initialisers() {
    let lin = LinearConfig::new(3, 2)
        .weight_init(Init::Constant(0.5))
        .bias_init(Init::Constant(1.0))
        .init()
        .unwrap();
    assert_eq!(lin.weight.to_vec_f64().unwrap(), [0.5; 6]);
    assert_eq!(lin.bias.as_ref().unwrap().to_vec_f64().unwrap(), [1.0; 2]);
    // AlexNet: N(0, 0.01²) weights, constant-1 biases.
    manual_seed(9);
    let conv = Conv2dConfig::new(96, 256, 5)
        .weight_init(Init::Normal { mean: 0.0, std: 0.01 })
        .bias_init(Init::Constant(1.0))
        .init()
        .unwrap();
    check_normal("AlexNet conv2", &conv.weight, 0.01);
    assert_eq!(conv.bias.as_ref().unwrap().to_vec_f64().unwrap(), [1.0; 256]);
}
