//! nabla-nn's losses against PyTorch: each test names a case of
//! `tests/fixtures/layers.safetensors` (written by `tools/fixtures/nn.py`) and compares the
//! loss and the gradient of its input with `torch.nn.functional`'s:
//! max |nabla − torch| ≤ 1e-5 · max(1, max |torch|). Scalar losses are differentiated
//! directly; reduction "none" backpropagates the stored `grad_out`. For float targets (mse,
//! bce, bce_with_logits) the gradient of the target is compared too.

mod common;

use common::{Case, assert_close, backward_with, grad_of};
use nabla_core::{DType, Tensor};
use nabla_nn::loss::{
    CrossEntropyOptions, Reduction, binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, mse_loss,
    nll_loss,
};

fn reduction(case: &Case) -> Reduction {
    match case.str("reduction") {
        "mean" => Reduction::Mean,
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        other => panic!("{}: unknown reduction {other}", case.name),
    }
}

fn loss_case(name: &'static str) {
    let case = Case::load(name);
    let red = reduction(&case);
    let input = case.get("input").requires_grad_();
    let target = case.get("target");
    let target = if case.try_get("grad_target").is_some() {
        target.requires_grad_()
    } else {
        target
    };
    let weight = case.try_get("weight");
    let out = match case.str("kind") {
        "mse" => mse_loss(&input, &target, red),
        "bce" => binary_cross_entropy(&input, &target, red),
        "bce_with_logits" => binary_cross_entropy_with_logits(&input, &target, red),
        "cross_entropy" => {
            assert_eq!(case.bool("weight"), weight.is_some());
            let opts = CrossEntropyOptions {
                reduction: red,
                weight,
                label_smoothing: case.f64("label_smoothing"),
            };
            cross_entropy(&input, &target, &opts)
        }
        "nll" => {
            assert_eq!(case.bool("weight"), weight.is_some());
            nll_loss(&input, &target, weight.as_ref(), red)
        }
        other => panic!("{name}: unknown loss {other}"),
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_close(&format!("{name} out"), &out, &case.get("out"));
    let grads = match red {
        Reduction::None => backward_with(&out, &case.get("grad_out")),
        _ => {
            assert_eq!(out.elem_count(), 1, "{name}: a reduced loss is a scalar");
            out.backward().unwrap()
        }
    };
    assert_close(
        &format!("{name} grad_input"),
        &grad_of(&grads, &input),
        &case.get("grad_input"),
    );
    if let Some(expected) = case.try_get("grad_target") {
        assert_close(&format!("{name} grad_target"), &grad_of(&grads, &target), &expected);
    }
}

macro_rules! loss_tests {
    ($($test:ident => $case:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                loss_case($case);
            }
        )*
    };
}

loss_tests! {
    mse_mean => "mse/mean",
    mse_sum => "mse/sum",
    mse_none => "mse/none",
    bce_mean => "bce/mean",
    bce_sum => "bce/sum",
    bce_none => "bce/none",
    bce_saturated_probabilities_0_and_1 => "bce/saturated",
    bce_with_logits_mean_including_0_and_plus_minus_100 => "bce_with_logits/mean",
    bce_with_logits_sum => "bce_with_logits/sum",
    bce_with_logits_none => "bce_with_logits/none",
    cross_entropy_mean => "cross_entropy/plain",
    cross_entropy_sum => "cross_entropy/sum",
    cross_entropy_none => "cross_entropy/none",
    cross_entropy_class_weights => "cross_entropy/weight",
    cross_entropy_class_weights_sum => "cross_entropy/weight_sum",
    cross_entropy_label_smoothing => "cross_entropy/smoothing",
    cross_entropy_label_smoothing_none => "cross_entropy/smoothing_none",
    cross_entropy_weights_and_label_smoothing => "cross_entropy/weight_smoothing",
    cross_entropy_weights_and_label_smoothing_sum => "cross_entropy/weight_smoothing_sum",
    cross_entropy_weights_and_label_smoothing_none => "cross_entropy/weight_smoothing_none",
    nll_mean => "nll/plain",
    nll_class_weights => "nll/weight",
    nll_sum => "nll/sum",
    nll_class_weights_none => "nll/weight_none",
}

#[test]
fn cross_entropy_equals_nll_of_log_softmax() {
    let logits = Tensor::from_vec(vec![1.0f64, 2.0, 0.5, -1.0, 0.0, 3.0], (2, 3)).unwrap();
    let target = Tensor::from_vec(vec![1i64, 2], (2,)).unwrap();
    let ce = cross_entropy(&logits, &target, &CrossEntropyOptions::default())
        .unwrap()
        .item()
        .unwrap();
    let nll = nll_loss(&logits.log_softmax(1).unwrap(), &target, None, Reduction::Mean)
        .unwrap()
        .item()
        .unwrap();
    assert!((ce - nll).abs() < 1e-12);
    // By hand: −log softmax(z)[y], averaged.
    let lse = |z: &[f64]| z.iter().map(|v| v.exp()).sum::<f64>().ln();
    let by_hand = ((lse(&[1.0, 2.0, 0.5]) - 2.0) + (lse(&[-1.0, 0.0, 3.0]) - 3.0)) / 2.0;
    assert!((ce - by_hand).abs() < 1e-12);
}

#[test]
fn losses_reject_bad_targets() {
    let logits = Tensor::zeros((2, 3), DType::F32);
    let out_of_range = Tensor::from_vec(vec![0i64, 3], (2,)).unwrap();
    assert!(cross_entropy(&logits, &out_of_range, &CrossEntropyOptions::default()).is_err());
    let negative = Tensor::from_vec(vec![-1i64, 0], (2,)).unwrap();
    assert!(nll_loss(&logits, &negative, None, Reduction::Mean).is_err());
    let float_targets = Tensor::zeros((2,), DType::F32);
    assert!(cross_entropy(&logits, &float_targets, &CrossEntropyOptions::default()).is_err());
    let wrong_len = Tensor::from_vec(vec![0i64, 1, 2], (3,)).unwrap();
    assert!(cross_entropy(&logits, &wrong_len, &CrossEntropyOptions::default()).is_err());
    let opts = CrossEntropyOptions {
        label_smoothing: 1.5,
        ..Default::default()
    };
    assert!(cross_entropy(&logits, &Tensor::from_vec(vec![0i64, 1], (2,)).unwrap(), &opts).is_err());
    let a = Tensor::zeros((2, 3), DType::F32);
    let b = Tensor::zeros((3, 2), DType::F32);
    assert!(mse_loss(&a, &b, Reduction::Mean).is_err());
    assert!(binary_cross_entropy(&a, &b, Reduction::Mean).is_err());
    assert!(binary_cross_entropy_with_logits(&a, &b, Reduction::Mean).is_err());
}

/// A sigmoid output that rounds to exactly 1 in f32 (z = 20) must not turn the gradients into
/// NaN: PyTorch's δp = (p − y)/max(p(1 − p), 1e-12) is 0 for p = y = 1.
#[test]
fn bce_after_a_saturated_sigmoid_has_finite_gradients() {
    let z = Tensor::from_vec(vec![20.0f32, -20.0, 20.0, 0.0], (4,))
        .unwrap()
        .requires_grad_();
    let p = z.sigmoid().unwrap();
    assert_eq!(p.to_vec_f64().unwrap()[0], 1.0);
    let y = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], (4,)).unwrap();
    let loss = binary_cross_entropy(&p, &y, Reduction::Mean).unwrap();
    assert!(
        (loss.item().unwrap() - (100.0 + 2f64.ln()) / 4.0).abs() < 1e-4,
        "{:?}",
        loss.item()
    );
    let g = loss.backward().unwrap().get(&z).unwrap().to_vec_f64().unwrap();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert_eq!(g[0], 0.0);
    assert!((g[3] + 0.125).abs() < 1e-6, "σ(0) − 1 over 4: {g:?}");
    // Without autograd the value is the same.
    let v = nabla_core::no_grad(|| binary_cross_entropy(&p.detach(), &y, Reduction::Mean)).unwrap();
    assert_eq!(v.item().unwrap(), loss.item().unwrap());
}
