//! Batch normalisation, both modes: gradient checks in f64 (central differences, PyTorch's
//! tolerances) on every device (`nabla_core::device_test!`), on contiguous and strided inputs,
//! values worked out by hand, and the arguments each op refuses. The layers' outputs and
//! gradients against PyTorch are in nabla-nn's tests/layers.rs (`batchnorm*` cases).

use nabla_core::{DType, Device, Generator, GradcheckOptions, Result, Tensor, gradcheck};

/// Uniform values in [lo, hi) from a seeded generator, f64.
fn uniform(lo: f64, hi: f64, shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform_with(lo, hi, shape.to_vec(), DType::F64, &mut Generator::seed_from_u64(seed)).unwrap()
}

/// Runs the gradient check on `device` (the inputs moved there) and panics with its message.
#[track_caller]
fn check(device: Device, what: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    let inputs: Vec<Tensor> = inputs.iter().map(|x| x.to_device(device).unwrap()).collect();
    if let Err(e) = gradcheck(f, &inputs, GradcheckOptions::default()) {
        panic!("{what} on {device}: {e}");
    }
}

/// [C] running statistics: a mean in [-1, 1) and a variance in [0.5, 2).
fn statistics(c: usize, device: Device) -> (Tensor, Tensor) {
    let mean = uniform(-1.0, 1.0, &[c], 11).to_device(device).unwrap();
    let var = uniform(0.5, 2.0, &[c], 12).to_device(device).unwrap();
    (mean, var)
}

nabla_core::device_test! {
    batch_norm_train_gradients_in_f64: |d| {
        for (shape, seed) in [(vec![3, 4, 2, 3], 1), (vec![5, 3], 2), (vec![2, 2, 5], 3)] {
            let c = shape[1];
            let inputs = [uniform(-2.0, 2.0, &shape, seed), uniform(0.5, 1.5, &[c], seed + 10), uniform(-1.0, 1.0, &[c], seed + 20)];
            check(d, &format!("batch_norm_train {shape:?}"), |t| t[0].batch_norm_train(&t[1], &t[2], None, 0.1, 1e-5), &inputs);
        }
        // A strided input: the op's gradient flows back through the transposed view.
        let inputs = [uniform(-2.0, 2.0, &[3, 4, 5], 4), uniform(0.5, 1.5, &[5], 5), uniform(-1.0, 1.0, &[5], 6)];
        check(d, "batch_norm_train on a transposed view", |t| {
            t[0].transpose(1, 2)?.batch_norm_train(&t[1], &t[2], None, 0.1, 1e-3)
        }, &inputs);
        Ok(())
    };
    batch_norm_eval_gradients_in_f64: |d| {
        for (shape, seed) in [(vec![3, 4, 2, 3], 1), (vec![5, 3], 2), (vec![2, 2, 5], 3)] {
            let c = shape[1];
            let (mean, var) = statistics(c, d);
            let inputs = [uniform(-2.0, 2.0, &shape, seed), uniform(0.5, 1.5, &[c], seed + 10), uniform(-1.0, 1.0, &[c], seed + 20)];
            check(d, &format!("batch_norm_eval {shape:?}"), |t| t[0].batch_norm_eval(&t[1], &t[2], &mean, &var, 1e-5), &inputs);
        }
        let (mean, var) = statistics(5, d);
        let inputs = [uniform(-2.0, 2.0, &[3, 4, 5], 4), uniform(0.5, 1.5, &[5], 5), uniform(-1.0, 1.0, &[5], 6)];
        check(d, "batch_norm_eval on a transposed view", |t| {
            t[0].transpose(1, 2)?.batch_norm_eval(&t[1], &t[2], &mean, &var, 1e-3)
        }, &inputs);
        Ok(())
    };
    batch_norm_eval_by_hand: |d| {
        // x [2 samples, 2 channels]; a = γ/√(σ² + ε) = [2/√4, 0.5/√1] = [1, 0.5].
        let t = |v: Vec<f64>, s: &[usize]| Tensor::from_vec(v, s.to_vec()).unwrap().to_device(d).unwrap();
        let x = t(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).requires_grad_();
        let (w, b) = (t(vec![2.0, 0.5], &[2]).requires_grad_(), t(vec![1.0, -1.0], &[2]).requires_grad_());
        let (mean, var) = (t(vec![1.0, 2.0], &[2]), t(vec![3.0, 0.0], &[2]));
        let y = x.batch_norm_eval(&w, &b, &mean, &var, 1.0)?;
        // y = (x − μ)·a + β: [(1−1)·1+1, (2−2)·0.5−1, (3−1)·1+1, (4−2)·0.5−1].
        assert_eq!(y.to_vec::<f64>()?, vec![1.0, -1.0, 3.0, 0.0]);
        let up = t(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let g = y.mul(&up)?.sum_all()?.backward()?;
        // δx = a·δy; δγ = Σ δy·x̂ with x̂ = [[0, 0], [1, 2]]; δβ = Σ δy.
        assert_eq!(g.get(&x).unwrap().to_vec::<f64>()?, vec![1.0, 1.0, 3.0, 2.0]);
        assert_eq!(g.get(&w).unwrap().to_vec::<f64>()?, vec![3.0, 8.0]);
        assert_eq!(g.get(&b).unwrap().to_vec::<f64>()?, vec![4.0, 6.0]);
        Ok(())
    };
}

#[test]
fn batch_norm_eval_refuses_what_pytorch_refuses() {
    let x = Tensor::zeros((2, 3, 4), DType::F32);
    let three = || Tensor::ones((3,), DType::F32);
    let ok = x.batch_norm_eval(&three(), &three(), &three(), &three(), 1e-5);
    assert!(ok.is_ok(), "{ok:?}");
    let four = Tensor::ones((4,), DType::F32);
    let err = x
        .batch_norm_eval(&three(), &three(), &four, &three(), 1e-5)
        .unwrap_err();
    assert!(err.to_string().contains("running mean [4]"), "{err}");
    let err = x
        .batch_norm_eval(&four, &three(), &three(), &three(), 1e-5)
        .unwrap_err();
    assert!(err.to_string().contains("weight [4]"), "{err}");
    let f64s = Tensor::ones((3,), DType::F64);
    assert!(x.batch_norm_eval(&three(), &three(), &three(), &f64s, 1e-5).is_err());
    for eps in [0.0, -1.0, f64::NAN] {
        let err = x
            .batch_norm_eval(&three(), &three(), &three(), &three(), eps)
            .unwrap_err();
        assert!(err.to_string().contains("eps"), "{err}");
    }
    let err = Tensor::zeros((3,), DType::F32)
        .batch_norm_eval(&three(), &three(), &three(), &three(), 1e-5)
        .unwrap_err();
    assert!(err.to_string().contains("[N, C, ...]"), "{err}");
}
