//! The lecture's worked example: n inputs, hidden layers of 3 and 2 sigmoid units, one
//! sigmoid output, log loss. Backpropagation must give the gradients derived by hand:
//!
//!   δ[3] = a[3] − y,                 ∂L/∂W[3] = δ[3]·a[2]ᵀ
//!   δ[2] = diag(g′(z[2]))·W[3]ᵀ·δ[3], ∂L/∂W[2] = δ[2]·a[1]ᵀ
//!   δ[1] = diag(g′(z[1]))·W[2]ᵀ·δ[2], ∂L/∂W[1] = δ[1]·xᵀ
//!
//! with g = σ and g′(z) = σ(z)(1 − σ(z)). The hand computation below uses plain loops in f64.

use nabla_core::{Tensor, manual_seed};
use nabla_nn::loss::{Reduction, binary_cross_entropy};
use nabla_nn::{Linear, Module, Sequential, Sigmoid};

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// W·a + b, then σ, with W given row-major [out, in].
fn layer(w: &[f64], b: &[f64], a: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let z: Vec<f64> = b
        .iter()
        .enumerate()
        .map(|(i, bi)| bi + (0..a.len()).map(|j| w[i * a.len() + j] * a[j]).sum::<f64>())
        .collect();
    let act = z.iter().map(|&z| sigmoid(z)).collect();
    (z, act)
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

#[test]
fn backprop_matches_the_hand_derived_gradients() {
    manual_seed(3);
    let n = 4;
    let net = Sequential::new()
        .add(Linear::new(n, 3).unwrap())
        .add(Sigmoid)
        .add(Linear::new(3, 2).unwrap())
        .add(Sigmoid)
        .add(Linear::new(2, 1).unwrap())
        .add(Sigmoid);
    assert_eq!(net.num_parameters(), 3 * n + 14);
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    );

    let x = [0.5f32, -1.0, 2.0, 0.25];
    let y = 1.0f32;
    let xt = Tensor::from_vec(x.to_vec(), (1, n)).unwrap();
    let yt = Tensor::from_vec(vec![y], (1, 1)).unwrap();
    let a3 = net.forward(&xt).unwrap();
    let loss = binary_cross_entropy(&a3, &yt, Reduction::Mean).unwrap();
    let grads = loss.backward().unwrap();

    // The same network by hand.
    let p: Vec<Vec<f64>> = net.parameters().iter().map(values).collect();
    let (w1, b1, w2, b2, w3, b3) = (&p[0], &p[1], &p[2], &p[3], &p[4], &p[5]);
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (_, a1) = layer(w1, b1, &x);
    let (_, a2) = layer(w2, b2, &a1);
    let (_, out) = layer(w3, b3, &a2);
    let delta3 = out[0] - y as f64; // σ output + log loss: ∂L/∂z[3] = a[3] − y
    let dw3: Vec<f64> = a2.iter().map(|a| delta3 * a).collect();
    let delta2: Vec<f64> = (0..2).map(|i| a2[i] * (1.0 - a2[i]) * w3[i] * delta3).collect();
    let dw2: Vec<f64> = (0..2)
        .flat_map(|i| a1.iter().map(|a| delta2[i] * a).collect::<Vec<_>>())
        .collect();
    let delta1: Vec<f64> = (0..3)
        .map(|j| a1[j] * (1.0 - a1[j]) * (0..2).map(|i| w2[i * 3 + j] * delta2[i]).sum::<f64>())
        .collect();
    let dw1: Vec<f64> = (0..3)
        .flat_map(|i| x.iter().map(|xv| delta1[i] * xv).collect::<Vec<_>>())
        .collect();

    let params = net.parameters();
    let check = |t: &Tensor, expected: &[f64], what: &str| {
        let got = values(grads.get(t).unwrap());
        assert_eq!(got.len(), expected.len(), "{what}");
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{what}: backprop {g} vs hand {e}");
        }
    };
    assert!((values(&a3)[0] - out[0]).abs() < 1e-6);
    check(&params[4], &dw3, "∂L/∂W[3]");
    check(&params[5], &[delta3], "∂L/∂b[3]");
    check(&params[2], &dw2, "∂L/∂W[2]");
    check(&params[3], &delta2, "∂L/∂b[2]");
    check(&params[0], &dw1, "∂L/∂W[1]");
    check(&params[1], &delta1, "∂L/∂b[1]");
}

#[test]
fn parameter_count_is_3n_plus_14() {
    for n in [1, 2, 10, 784] {
        let net = Sequential::new()
            .add(Linear::new(n, 3).unwrap())
            .add(Linear::new(3, 2).unwrap())
            .add(Linear::new(2, 1).unwrap());
        assert_eq!(net.num_parameters(), 3 * n + 14);
    }
}
