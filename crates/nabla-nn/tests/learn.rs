//! End to end: small networks built from nabla-nn's layers and losses learn XOR and a noisy
//! 1-D regression to a low loss, with plain gradient descent written out here
//! (w ← w − lr·∂L/∂w through `copy_` under `no_grad`), independently of `nabla_nn::optim`.

use nabla_core::{DType, Generator, Tensor, manual_seed, no_grad};
use nabla_nn::loss::{Reduction, binary_cross_entropy_with_logits, mse_loss};
use nabla_nn::{Linear, Module, Sequential, Tanh};

/// One step of plain SGD on every parameter of `net` for the scalar `loss`.
fn sgd_step(net: &dyn Module, loss: &Tensor, lr: f64) {
    let grads = loss.backward().unwrap();
    no_grad(|| {
        for (name, p) in net.named_parameters() {
            let g = grads.get(&p).unwrap_or_else(|| panic!("no gradient for {name}"));
            p.copy_(&p.sub(&g.mul_scalar(lr).unwrap()).unwrap()).unwrap();
        }
    });
}

#[test]
fn a_two_layer_network_learns_xor() {
    manual_seed(1);
    let net = Sequential::new()
        .add(Linear::new(2, 8).unwrap())
        .add(Tanh)
        .add(Linear::new(8, 1).unwrap());
    let x = Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], (4, 2)).unwrap();
    let y = Tensor::from_vec(vec![0f32, 1., 1., 0.], (4, 1)).unwrap();
    let first = binary_cross_entropy_with_logits(&net.forward(&x).unwrap(), &y, Reduction::Mean)
        .unwrap()
        .item()
        .unwrap();
    let mut last = first;
    for _ in 0..2000 {
        let loss = binary_cross_entropy_with_logits(&net.forward(&x).unwrap(), &y, Reduction::Mean).unwrap();
        last = loss.item().unwrap();
        sgd_step(&net, &loss, 0.5);
    }
    assert!(last < 0.02, "XOR: loss {first} → {last}");
    let logits = net.forward(&x).unwrap().to_vec_f64().unwrap();
    let predicted: Vec<f64> = logits.iter().map(|&z| if z > 0.0 { 1.0 } else { 0.0 }).collect();
    assert_eq!(predicted, [0.0, 1.0, 1.0, 0.0], "logits {logits:?}");
}

#[test]
fn a_small_network_fits_a_noisy_sine() {
    manual_seed(2);
    let mut g = Generator::seed_from_u64(3);
    let n = 128;
    let xs: Vec<f32> = (0..n).map(|i| -3.0 + 6.0 * i as f32 / (n - 1) as f32).collect();
    let noise_std = 0.1;
    let ys: Vec<f32> = xs.iter().map(|&x| x.sin() + (noise_std * g.normal()) as f32).collect();
    let x = Tensor::from_vec(xs.clone(), (n, 1)).unwrap();
    let y = Tensor::from_vec(ys, (n, 1)).unwrap();
    let net = Sequential::new()
        .add(Linear::new(1, 32).unwrap())
        .add(Tanh)
        .add(Linear::new(32, 1).unwrap());
    let first = mse_loss(&net.forward(&x).unwrap(), &y, Reduction::Mean)
        .unwrap()
        .item()
        .unwrap();
    let mut last = first;
    for _ in 0..3000 {
        let loss = mse_loss(&net.forward(&x).unwrap(), &y, Reduction::Mean).unwrap();
        last = loss.item().unwrap();
        sgd_step(&net, &loss, 0.1);
    }
    // The noise alone costs σ² = 0.01; the sine itself has mean square 0.5.
    assert!(last < 0.02, "regression: loss {first} → {last}");
    // Against the noiseless function the fit is close too.
    let clean = Tensor::from_vec(xs.iter().map(|x| x.sin()).collect::<Vec<f32>>(), (n, 1)).unwrap();
    net.eval();
    let err = mse_loss(&net.forward(&x).unwrap(), &clean, Reduction::Mean)
        .unwrap()
        .item()
        .unwrap();
    assert!(err < 0.01, "mean squared error to sin(x): {err}");
    assert_eq!(net.forward(&x).unwrap().dtype(), DType::F32);
}
