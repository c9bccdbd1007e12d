//! Whole networks on a GPU against the CPU: the same weights (built twice from one seed), one
//! batch, forward, softmax cross-entropy, backward and one SGD step with momentum, then an
//! evaluation-mode forward (batch-norm running statistics). Reported as skipped where there is
//! no GPU (`nabla_core::testing`); the CPU runs of these models are the other suites' subject.
//!
//! Tolerances, in f32, relative to each tensor's largest magnitude: logits and loss 1e-4,
//! gradients and updated weights 1e-3 (cuDNN's algorithms and atomics sum in another order than
//! the CPU's kernels; a wrong kernel is off by far more). AlexNet's gradients get 2e-2: the
//! weight gradient of its 11×11 stride-4 first layer sums 12,100 products per weight that
//! cancel to 1/1000 of their size, and cuDNN's and the CPU's sums then differ by 1.2e-2 of the
//! result (measured on an H200, 2026-12-04: 1.8e-5 on a gradient of 1.5e-3).

use nabla_core::testing::assert_close_to_scale;
use nabla_core::{DType, Device, Result, Tensor, manual_seed};
use nabla_models::registry::{ModelSpec, build_model};
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, cross_entropy};
use nabla_nn::optim::{Optimizer, Sgd, SgdConfig};

/// What one step of `name` gives on `device`: logits, loss, gradients, updated weights and
/// evaluation-mode logits.
struct Step {
    logits: Tensor,
    loss: Tensor,
    grads: Vec<(String, Tensor)>,
    weights: Vec<(String, Tensor)>,
    eval_logits: Tensor,
}

fn step(name: &str, input: [usize; 3], train_mode: bool, device: Device) -> Result<Step> {
    manual_seed(11);
    let net = build_model(name, &ModelSpec { input, classes: 10 })?;
    net.to_device(device)?;
    manual_seed(12);
    let [c, h, w] = input;
    let x = Tensor::randn((4, c, h, w), DType::F32)?.to_device(device)?;
    let target = Tensor::from_vec(vec![0i64, 3, 9, 3], (4,))?.to_device(device)?;
    if train_mode {
        net.train();
    } else {
        net.eval(); // models with dropout: its masks are drawn differently on each device
    }
    let logits = net.forward(&x)?;
    let loss = cross_entropy(&logits, &target, &CrossEntropyOptions::default())?;
    let g = loss.backward()?;
    let params = net.named_parameters();
    // GoogLeNet's auxiliary heads are not in its forward pass: they get no gradient.
    let grads = params
        .iter()
        .filter_map(|(n, p)| Some((n.clone(), g.get(p)?.clone())))
        .collect();
    let mut opt = Sgd::new(params, SgdConfig::new(0.05).momentum(0.9).weight_decay(5e-4))?;
    opt.step(&g)?;
    net.eval();
    let eval_logits = net.forward(&x)?;
    Ok(Step {
        logits: logits.detach(),
        loss: loss.detach(),
        grads,
        weights: net.state_dict(),
        eval_logits,
    })
}

fn compare(name: &str, input: [usize; 3], train_mode: bool, grad_tol: f64) {
    let Some(gpu) = nabla_core::testing::gpu_or_skip(&format!("devices::{name}")) else {
        return;
    };
    let (a, b) = (
        step(name, input, train_mode, gpu).unwrap(),
        step(name, input, train_mode, Device::Cpu).unwrap(),
    );
    assert_close_to_scale(&format!("{name} logits"), &a.logits, &b.logits, 1e-4);
    assert_close_to_scale(&format!("{name} loss"), &a.loss, &b.loss, 1e-4);
    for ((n, ga), (_, gb)) in a.grads.iter().zip(&b.grads) {
        assert_eq!(ga.device(), gpu, "{name}: the gradient of {n} left the GPU");
        assert_close_to_scale(&format!("{name} δ{n}"), ga, gb, grad_tol);
    }
    for ((n, wa), (_, wb)) in a.weights.iter().zip(&b.weights) {
        assert_close_to_scale(&format!("{name} {n} after one step"), wa, wb, grad_tol);
    }
    assert_close_to_scale(
        &format!("{name} evaluation logits"),
        &a.eval_logits,
        &b.eval_logits,
        1e-3,
    );
}

#[test]
fn lenet5_on_the_gpu_equals_the_cpu() {
    compare("lenet5", [1, 28, 28], true, 1e-3);
}

#[test]
fn resnet20_option_a_on_the_gpu_equals_the_cpu() {
    // Batch norm in training mode (cuDNN's), option-A shortcuts (narrow + zero channels).
    compare("resnet20", [1, 28, 28], true, 1e-3);
}

#[test]
fn alexnet_lrn_and_overlapping_pooling_on_the_gpu_equal_the_cpu() {
    compare("alexnet", [3, 224, 224], false, 2e-2);
}

#[test]
fn googlenet_concatenation_on_the_gpu_equals_the_cpu() {
    compare("googlenet", [3, 64, 64], false, 1e-3);
}
