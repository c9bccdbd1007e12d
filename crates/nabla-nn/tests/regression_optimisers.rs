//! Each optimiser fits a noisy regression: y = sin(3x) + N(0, 0.1²) on x ∈ [−1, 1], with a
//! 1-32-1 tanh network and mean squared error. The noise floor of the MSE is 0.01; every
//! optimiser must get below 0.02 against the noisy targets.

use nabla_core::{Generator, Tensor, manual_seed};
use nabla_nn::loss::{Reduction, mse_loss};
use nabla_nn::optim::{
    Adam, AdamConfig, AdamW, AdamWConfig, MomentumForm, Optimizer, RMSprop, RMSpropConfig, Sgd, SgdConfig,
};
use nabla_nn::{Linear, Module, Sequential, Tanh};

fn data() -> (Tensor, Tensor) {
    let mut rng = Generator::seed_from_u64(7);
    let n = 128;
    let xs: Vec<f32> = (0..n).map(|i| -1.0 + 2.0 * i as f32 / (n - 1) as f32).collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|&x| (3.0 * x).sin() + 0.1 * rng.normal() as f32)
        .collect();
    (
        Tensor::from_vec(xs, (n, 1)).unwrap(),
        Tensor::from_vec(ys, (n, 1)).unwrap(),
    )
}

fn fit(make: &dyn Fn(Vec<(String, Tensor)>) -> Box<dyn Optimizer>, steps: usize) -> f64 {
    manual_seed(3);
    let net = Sequential::new()
        .add(Linear::new(1, 32).unwrap())
        .add(Tanh)
        .add(Linear::new(32, 1).unwrap());
    let mut opt = make(net.named_parameters());
    let (x, y) = data();
    let mut last = f64::INFINITY;
    for _ in 0..steps {
        let loss = mse_loss(&net.forward(&x).unwrap(), &y, Reduction::Mean).unwrap();
        last = loss.item().unwrap();
        opt.step(&loss.backward().unwrap()).unwrap();
    }
    last
}

#[test]
fn every_optimiser_fits_a_noisy_regression() {
    let cases: Vec<(&str, Box<dyn Fn(Vec<(String, Tensor)>) -> Box<dyn Optimizer>>, usize)> = vec![
        (
            "sgd",
            Box::new(|p| Box::new(Sgd::new(p, SgdConfig::new(0.05)).unwrap())),
            4000,
        ),
        (
            "sgd momentum",
            Box::new(|p| Box::new(Sgd::new(p, SgdConfig::new(0.05).momentum(0.9)).unwrap())),
            1500,
        ),
        (
            "sgd nesterov",
            Box::new(|p| Box::new(Sgd::new(p, SgdConfig::new(0.05).momentum(0.9).nesterov(true)).unwrap())),
            1500,
        ),
        (
            "sgd exponential momentum",
            Box::new(|p| {
                Box::new(
                    Sgd::new(
                        p,
                        SgdConfig::new(0.05)
                            .momentum(0.9)
                            .momentum_form(MomentumForm::Exponential),
                    )
                    .unwrap(),
                )
            }),
            4000,
        ),
        (
            "adam",
            Box::new(|p| Box::new(Adam::new(p, AdamConfig::new(0.01)).unwrap())),
            1000,
        ),
        (
            "adamw",
            Box::new(|p| Box::new(AdamW::new(p, AdamWConfig::new(0.01).weight_decay(1e-4)).unwrap())),
            1000,
        ),
        (
            "rmsprop",
            Box::new(|p| Box::new(RMSprop::new(p, RMSpropConfig::new(0.003)).unwrap())),
            1500,
        ),
    ];
    for (name, make, steps) in cases {
        let mse = fit(make.as_ref(), steps);
        assert!(mse < 0.02, "{name}: MSE {mse} after {steps} steps");
    }
}

#[test]
fn the_fit_is_not_trivial() {
    // Predicting the mean leaves an MSE of about var(sin 3x) ≈ 0.4: far above the threshold.
    let (_, y) = data();
    let v = y.to_vec_f64().unwrap();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|t| (t - m).powi(2)).sum::<f64>() / v.len() as f64;
    assert!(var > 0.3, "{var}");
}
