//! The fused in-place optimiser updates, against values worked out by hand.

use nabla_core::{AdamUpdate, SgdUpdate, Tensor};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape.to_vec()).unwrap()
}

fn close(a: &[f64], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_with_momentum_weight_decay_and_nesterov_by_hand() {
    // p = [1, -2], g = [0.5, 0.25], b = [0.1, 0.2], λ = 0.1, μ = 0.9, c = 0.8, η = 0.5.
    // d = g + λp = [0.6, 0.05]; b' = 0.9b + 0.8d = [0.57, 0.22];
    // Nesterov: d + μb' = [1.113, 0.248]; p' = p − 0.5·that = [0.4435, −2.124].
    let p = t(&[1.0, -2.0], &[2]);
    let b = t(&[0.1, 0.2], &[2]);
    let u = SgdUpdate {
        lr: 0.5,
        weight_decay: 0.1,
        momentum: 0.9,
        buffer_gain: 0.8,
        nesterov: true,
    };
    p.sgd_update_(&t(&[0.5, 0.25], &[2]), Some(&b), u).unwrap();
    close(&b.to_vec::<f64>().unwrap(), &[0.57, 0.22]);
    close(&p.to_vec::<f64>().unwrap(), &[0.4435, -2.124]);
}

#[test]
fn sgd_without_momentum_is_plain_gradient_descent() {
    let p = t(&[1.0, 2.0, 3.0], &[3]);
    let u = SgdUpdate {
        lr: 0.1,
        weight_decay: 0.0,
        momentum: 0.0,
        buffer_gain: 1.0,
        nesterov: false,
    };
    p.sgd_update_(&t(&[1.0, -1.0, 10.0], &[3]), None, u).unwrap();
    close(&p.to_vec::<f64>().unwrap(), &[0.9, 2.1, 2.0]);
}

#[test]
fn a_transposed_or_broadcast_gradient_gives_the_same_update() {
    let u = SgdUpdate {
        lr: 0.1,
        weight_decay: 0.0,
        momentum: 0.5,
        buffer_gain: 1.0,
        nesterov: false,
    };
    let g = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
    let (p1, b1) = (
        Tensor::ones((2, 3), nabla_core::DType::F64),
        Tensor::zeros((2, 3), nabla_core::DType::F64),
    );
    let (p2, b2) = (
        Tensor::ones((2, 3), nabla_core::DType::F64),
        Tensor::zeros((2, 3), nabla_core::DType::F64),
    );
    p1.sgd_update_(&g.t().unwrap(), Some(&b1), u).unwrap();
    p2.sgd_update_(&g.t().unwrap().contiguous().unwrap(), Some(&b2), u)
        .unwrap();
    assert_eq!(p1.to_vec::<f64>().unwrap(), p2.to_vec::<f64>().unwrap());
    close(&p1.to_vec::<f64>().unwrap(), &[0.9, 0.7, 0.5, 0.8, 0.6, 0.4]);
    // A gradient broadcast from one row.
    let p3 = Tensor::ones((2, 3), nabla_core::DType::F64);
    let row = t(&[1.0, 2.0, 3.0], &[3]).broadcast_to((2, 3)).unwrap();
    p3.sgd_update_(&row, Some(&Tensor::zeros((2, 3), nabla_core::DType::F64)), u)
        .unwrap();
    close(&p3.to_vec::<f64>().unwrap(), &[0.9, 0.8, 0.7, 0.9, 0.8, 0.7]);
}

#[test]
fn adam_first_and_second_step_by_hand() {
    // β₁ = 0.9, β₂ = 0.999, ε = 1e-8, η = 0.1, g = 2 twice.
    // Step 1: m = 0.2, v = 0.004; m̂ = 2, v̂ = 4 → p = 1 − 0.1·2/(2 + 1e-8).
    // Step 2: m = 0.38, v = 0.007996; m̂ = 0.38/0.19 = 2, v̂ = 0.007996/0.001999 = 4.
    let p = t(&[1.0], &[1]);
    let (m, v) = (t(&[0.0], &[1]), t(&[0.0], &[1]));
    let mut u = AdamUpdate {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
        step: 1,
    };
    p.adam_update_(&t(&[2.0], &[1]), &m, &v, None, u).unwrap();
    let step = 0.1 * 2.0 / (2.0 + 1e-8);
    close(&p.to_vec::<f64>().unwrap(), &[1.0 - step]);
    close(&m.to_vec::<f64>().unwrap(), &[0.2]);
    close(&v.to_vec::<f64>().unwrap(), &[0.004]);
    u.step = 2;
    p.adam_update_(&t(&[2.0], &[1]), &m, &v, None, u).unwrap();
    close(&m.to_vec::<f64>().unwrap(), &[0.38]);
    close(&v.to_vec::<f64>().unwrap(), &[0.007996]);
    close(&p.to_vec::<f64>().unwrap(), &[1.0 - 2.0 * step]);
}

#[test]
fn adamw_shrinks_and_amsgrad_keeps_the_maximum() {
    // AdamW, λ = 0.5, η = 0.1: p ← p·(1 − 0.05) before the step; g = 0 leaves m = v = 0, so
    // the step itself is 0/(0 + ε) = 0.
    let p = t(&[2.0], &[1]);
    let (m, v, vmax) = (t(&[0.0], &[1]), t(&[0.0], &[1]), t(&[5.0], &[1]));
    let u = AdamUpdate {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.5,
        decoupled: true,
        step: 1,
    };
    p.adam_update_(&t(&[0.0], &[1]), &m, &v, Some(&vmax), u).unwrap();
    close(&p.to_vec::<f64>().unwrap(), &[1.9]);
    close(&vmax.to_vec::<f64>().unwrap(), &[5.0]);
}

#[test]
fn mismatched_or_aliased_state_is_an_error() {
    let p = t(&[1.0, 2.0], &[2]);
    let u = SgdUpdate {
        lr: 0.1,
        weight_decay: 0.0,
        momentum: 0.9,
        buffer_gain: 1.0,
        nesterov: false,
    };
    let err = p
        .sgd_update_(&t(&[1.0], &[1]), Some(&t(&[0.0, 0.0], &[2])), u)
        .unwrap_err();
    assert!(err.to_string().contains("gradient [1]"), "{err}");
    let err = p.sgd_update_(&t(&[1.0, 1.0], &[2]), Some(&p.clone()), u).unwrap_err();
    assert!(err.to_string().contains("shares its storage"), "{err}");
    let err = p.sgd_update_(&t(&[1.0, 1.0], &[2]), None, u).unwrap_err();
    assert!(err.to_string().contains("needs a buffer"), "{err}");
}

/// A parameter large enough to be updated in chunks on several threads: every element must get
/// the same formula as the small case above, b' = μb + d and p' = p − η(d + μb') with
/// d = g + λp (worked out here element by element in f64).
#[test]
fn a_large_parameter_updated_in_parallel_chunks_matches_the_formula() {
    let n = 200_003; // not a multiple of the chunk size
    let val = |i: usize, s: usize| (((i + s) * 2654435761) % 1000) as f64 / 500.0 - 1.0;
    let (p0, g, b0): (Vec<f64>, Vec<f64>, Vec<f64>) = (
        (0..n).map(|i| val(i, 1)).collect(),
        (0..n).map(|i| val(i, 2)).collect(),
        (0..n).map(|i| val(i, 3)).collect(),
    );
    let (p, b) = (t(&p0, &[n]), t(&b0, &[n]));
    let u = SgdUpdate {
        lr: 0.05,
        weight_decay: 0.01,
        momentum: 0.9,
        buffer_gain: 1.0,
        nesterov: true,
    };
    p.sgd_update_(&t(&g, &[n]), Some(&b), u).unwrap();
    let (pv, bv) = (p.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    for i in 0..n {
        let d = g[i] + 0.01 * p0[i];
        let nb = b0[i] * 0.9 + d;
        let np = p0[i] + -0.05 * (d + nb * 0.9);
        assert!((bv[i] - nb).abs() < 1e-15 && (pv[i] - np).abs() < 1e-15, "element {i}");
    }
}
