//! nabla-nn's layers against PyTorch: each test names a case of
//! `tests/fixtures/layers.safetensors` (written by `tools/fixtures/nn.py`), builds the
//! equivalent nabla layer from the case's hyper-parameters, loads PyTorch's parameters into it
//! with `load_state_dict` (so the layer's names must be PyTorch's state_dict keys), and compares
//! the output, the input gradient and the parameter gradients for a fixed upstream gradient:
//! max |nabla − torch| ≤ 1e-5 · max(1, max |torch|).
//!
//! Batch norm is checked in training mode (output, gradients), after three training batches
//! (running_mean, running_var, num_batches_tracked) and then in evaluation mode.

mod common;

use common::{Case, assert_close, fixtures};
use nabla_core::{DType, PaddingMode, Tensor};
use nabla_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv2d, Conv2dConfig, Dropout, Flatten, LeakyReLU, Linear, LinearConfig,
    LocalResponseNorm, LogSoftmax, MaxPool2d, Module, ReLU, Sequential, Sigmoid, Softmax, Tanh,
};

/// The nabla layer described by a fixture case's hyper-parameters (PyTorch's defaults otherwise).
fn build(case: &Case) -> Box<dyn Module> {
    match case.str("kind") {
        "linear" => Box::new(
            LinearConfig::new(case.usize("in"), case.usize("out"))
                .bias(case.bool("bias"))
                .init()
                .unwrap(),
        ),
        "conv2d" => {
            let mode: PaddingMode = case.str("padding_mode").parse().unwrap();
            let conv = Conv2dConfig::new(case.usize("in"), case.usize("out"), case.usize("kernel"))
                .stride(case.usize("stride"))
                .padding(case.usize("padding"))
                .padding_mode(mode)
                .dilation(case.usize("dilation"))
                .groups(case.usize("groups"))
                .bias(case.bool("bias"))
                .init()
                .unwrap();
            Box::new(conv)
        }
        "max_pool2d" => Box::new(
            MaxPool2d::new(case.usize("kernel"))
                .stride(case.usize("stride"))
                .padding(case.usize("padding")),
        ),
        "avg_pool2d" => Box::new(
            AvgPool2d::new(case.usize("kernel"))
                .stride(case.usize("stride"))
                .padding(case.usize("padding")),
        ),
        "adaptive_avg_pool2d" => {
            let o = &case.params["output"];
            Box::new(AdaptiveAvgPool2d::new(
                o[0].as_u64().unwrap() as usize,
                o[1].as_u64().unwrap() as usize,
            ))
        }
        "lrn" => Box::new(LocalResponseNorm {
            size: case.usize("size"),
            alpha: case.f64("alpha"),
            beta: case.f64("beta"),
            k: case.f64("k"),
        }),
        kind @ ("batchnorm1d" | "batchnorm2d") => {
            let c = case.usize("channels");
            let bn = if kind == "batchnorm1d" {
                BatchNorm::new_1d(c)
            } else {
                BatchNorm::new_2d(c)
            };
            Box::new(bn.eps(case.f64("eps")).momentum(case.params["momentum"].as_f64()))
        }
        "dropout" => Box::new(Dropout::new(case.f64("p")).unwrap()),
        "flatten" => Box::new(Flatten),
        "relu" => Box::new(ReLU),
        "leaky_relu" => {
            let slope = case.f64("slope");
            if slope == 0.01 {
                Box::new(LeakyReLU::default())
            } else {
                Box::new(LeakyReLU(slope))
            }
        }
        "sigmoid" => Box::new(Sigmoid),
        "tanh" => Box::new(Tanh),
        "softmax" => Box::new(Softmax(case.params["dim"].as_i64().unwrap() as isize)),
        "log_softmax" => Box::new(LogSoftmax(case.params["dim"].as_i64().unwrap() as isize)),
        other => panic!("{}: unknown layer kind {other}", case.name),
    }
}

/// A layer whose forward pass does not depend on the mode: parameters, one forward/backward.
fn layer_case(name: &'static str) {
    let case = Case::load(name);
    let layer = build(&case);
    case.load_params(&layer);
    case.check_forward_backward(&layer, "");
}

macro_rules! layer_tests {
    ($($test:ident => $case:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                layer_case($case);
            }
        )*
    };
}

layer_tests! {
    linear_with_bias => "linear/bias",
    linear_without_bias => "linear/nobias",
    linear_on_a_batch_of_sequences => "linear/3d",
    conv2d_zero_padding => "conv2d/zeros_p1",
    conv2d_reflect_padding => "conv2d/reflect_p1",
    conv2d_replicate_padding => "conv2d/replicate_p2",
    conv2d_circular_padding => "conv2d/circular_p1",
    conv2d_reflect_padding_stride_2 => "conv2d/reflect_s2",
    conv2d_stride_2_padding_2 => "conv2d/zeros_s2_p2",
    conv2d_dilation => "conv2d/dilation2",
    conv2d_groups => "conv2d/groups2",
    conv2d_depthwise_replicate => "conv2d/depthwise",
    conv2d_without_bias => "conv2d/nobias",
    conv2d_alexnet_first_layer_shape => "conv2d/alexnet_conv1",
    max_pool2d_alexnet_overlapping => "max_pool2d/k3s2",
    max_pool2d_2x2 => "max_pool2d/k2",
    avg_pool2d_2x2 => "avg_pool2d/k2",
    avg_pool2d_padded_count_include_pad => "avg_pool2d/k3s2p1",
    adaptive_avg_pool2d_uneven => "adaptive_avg_pool2d/3x2",
    adaptive_avg_pool2d_alexnet_6x6 => "adaptive_avg_pool2d/6x6",
    local_response_norm_alexnet => "lrn/alexnet",
    flatten => "flatten/4d",
    relu_including_the_kink => "relu/with_zeros",
    leaky_relu_default_slope_including_the_kink => "leaky_relu/default",
    leaky_relu_slope_0_2 => "leaky_relu/0.2",
    sigmoid => "sigmoid/wide",
    tanh => "tanh/wide",
    softmax_dim_1 => "softmax/dim1",
    softmax_last_dim_of_3d => "softmax/dim-1_3d",
    log_softmax_dim_1 => "log_softmax/dim1",
    log_softmax_large_logits => "log_softmax/large",
}

#[test]
fn dropout_in_eval_mode_is_the_identity() {
    let case = Case::load("dropout/eval");
    let layer = build(&case);
    layer.eval();
    case.check_forward_backward(&layer, "");
}

#[test]
fn dropout_in_training_mode_drops_and_rescales() {
    nabla_core::manual_seed(7);
    let d = Dropout::new(0.25).unwrap();
    let x = Tensor::ones((200, 100), DType::F32).requires_grad_();
    let y = d.forward(&x).unwrap();
    let v = y.to_vec_f64().unwrap();
    let zeros = v.iter().filter(|&&a| a == 0.0).count() as f64 / v.len() as f64;
    assert!((zeros - 0.25).abs() < 0.02, "dropped fraction {zeros}");
    assert!(
        v.iter().all(|&a| a == 0.0 || (a - 1.0 / 0.75).abs() < 1e-6),
        "survivors are scaled by 1/(1 − p)"
    );
    // The gradient is the same mask and scale.
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&x).unwrap().to_vec_f64().unwrap(), v);
    // Dropout(0) and Dropout in eval mode change nothing; p outside [0, 1] is an error.
    let x = Tensor::randn((3, 4), DType::F32).unwrap();
    assert_eq!(
        Dropout::new(0.0).unwrap().forward(&x).unwrap().to_vec_f64().unwrap(),
        x.to_vec_f64().unwrap()
    );
    d.eval();
    assert_eq!(d.forward(&x).unwrap().to_vec_f64().unwrap(), x.to_vec_f64().unwrap());
    assert!(Dropout::new(1.5).is_err());
    assert!(Dropout::new(-0.1).is_err());
}

/// Batch norm: a training step (output, gradients), buffers after three training batches,
/// then an evaluation step that uses the running statistics.
fn batchnorm_case(name: &'static str) {
    let case = Case::load(name);
    let bn = build(&case);
    case.load_params(&bn);
    bn.train();
    case.check_forward_backward(&bn, "train/");
    for step in ["step2", "step3"] {
        bn.forward(&case.get(&format!("{step}/input"))).unwrap();
    }
    let buffers = bn.named_buffers();
    let expected = case.with_prefix("after3.");
    assert_eq!(
        buffers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    assert_eq!(expected.len(), 3);
    for (name, t) in &buffers {
        let e = &expected.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(t.dtype(), e.dtype(), "{name}: dtype");
        assert_close(&format!("{} after 3 batches: {name}", case.name), t, e);
    }
    assert_eq!(bn.named_buffers()[2].1.to_scalar::<i64>().unwrap(), 3);
    bn.eval();
    case.check_forward_backward(&bn, "eval/");
    // Evaluation does not touch the buffers.
    for ((_, before), (_, after)) in buffers.iter().zip(bn.named_buffers()) {
        assert_eq!(before.to_vec_f64().unwrap(), after.to_vec_f64().unwrap());
    }
}

#[test]
fn batchnorm1d_on_n_c() {
    batchnorm_case("batchnorm1d/2d_input");
}

#[test]
fn batchnorm1d_on_n_c_l() {
    batchnorm_case("batchnorm1d/3d_input");
}

#[test]
fn batchnorm1d_cumulative_average_momentum_none() {
    batchnorm_case("batchnorm1d/cumulative");
}

#[test]
fn batchnorm2d_default() {
    batchnorm_case("batchnorm2d/default");
}

#[test]
fn batchnorm2d_cumulative_average_momentum_none() {
    batchnorm_case("batchnorm2d/cumulative");
}

#[test]
fn batchnorm2d_momentum_and_eps() {
    batchnorm_case("batchnorm2d/m0.3_eps1e-3");
}

#[test]
fn batchnorm_rejects_wrong_ranks_and_single_values_per_channel() {
    let bn = BatchNorm::new_2d(3);
    assert!(bn.forward(&Tensor::zeros((2, 3), DType::F32)).is_err());
    assert!(bn.forward(&Tensor::zeros((2, 4, 2, 2), DType::F32)).is_err());
    let bn1 = BatchNorm::new_1d(3);
    assert!(
        bn1.forward(&Tensor::zeros((1, 3), DType::F32)).is_err(),
        "PyTorch: expected more than 1 value per channel"
    );
    bn1.eval();
    assert!(bn1.forward(&Tensor::zeros((1, 3), DType::F32)).is_ok());
}

/// The network of the `sequential/conv_bn_relu_pool_linear` case.
fn small_net() -> Sequential {
    Sequential::new()
        .add(Conv2dConfig::new(2, 3, 3).padding(1).init().unwrap())
        .add(BatchNorm::new_2d(3))
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(Flatten)
        .add(Linear::new(12, 4).unwrap())
}

#[test]
fn sequential_names_outputs_and_gradients_match_pytorch() {
    let case = Case::load("sequential/conv_bn_relu_pool_linear");
    let net = small_net();
    // named_parameters: the same names in the same order as PyTorch's.
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, case.strings("parameter_names"));
    assert_eq!(
        names,
        ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]
    );
    // state_dict: the same keys as PyTorch's. (PyTorch lists each module's buffers right after
    // its parameters; nabla lists all parameters, then all buffers: same set, other order.)
    let mut keys: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
    let mut torch_keys = case.strings("state_dict_keys");
    keys.sort();
    torch_keys.sort();
    assert_eq!(keys, torch_keys);
    assert!(keys.contains(&"1.running_mean".to_string()) && keys.contains(&"1.num_batches_tracked".to_string()));

    case.load_params(&net);
    net.train();
    case.check_forward_backward(&net, "");
    for (name, t) in net.named_buffers() {
        assert_close(
            &format!("after one batch: {name}"),
            &t,
            &case.get(&format!("after.{name}")),
        );
    }
}

#[test]
fn pytorch_state_dict_names_of_a_conv_bn_relu_linear_sequential() {
    let net = Sequential::new()
        .add(Conv2d::new(1, 2, 3).unwrap())
        .add(BatchNorm::new_2d(2))
        .add(ReLU)
        .add(Linear::new(4, 3).unwrap());
    let keys: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    let mut expected = [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "3.weight",
        "3.bias",
    ];
    expected.sort();
    assert_eq!(sorted, expected);
    // Nested containers join names with dots, as PyTorch does (`features.0.weight` style).
    let outer = Sequential::new()
        .add(Sequential::new().add(Linear::new(2, 2).unwrap()))
        .add(ReLU);
    let names: Vec<String> = outer.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.0.weight", "0.0.bias"]);
}

#[test]
fn train_and_eval_reach_every_child() {
    let net = Sequential::new()
        .add(Sequential::new().add(Dropout::new(0.9).unwrap()))
        .add(BatchNorm::new_1d(2));
    net.eval();
    let x = Tensor::ones((4, 2), DType::F32);
    // In eval mode dropout is off and batch norm uses its running statistics (0, 1).
    let y = net.forward(&x).unwrap().to_vec_f64().unwrap();
    let expected = 1.0 / (1.0f64 + 1e-5).sqrt();
    assert!(y.iter().all(|v| (v - expected).abs() < 1e-6), "{y:?}");
    net.train();
    let y = net.forward(&x).unwrap().to_vec_f64().unwrap();
    // In training mode batch norm uses the batch's statistics: every channel has mean 0
    // whatever dropout did to the constant input (NOTE: dropout draws from the shared default
    // generator, so which units it drops depends on the other tests running beside this one).
    for c in 0..2 {
        let mean = (0..4).map(|r| y[r * 2 + c]).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-5, "training mode: channel {c} has mean {mean}: {y:?}");
    }
}

/// Every case of the fixture file is named by a test here, in losses.rs or in state.rs, and
/// every case those tests name exists.
#[test]
fn every_fixture_case_is_tested() {
    let sources = [
        include_str!("layers.rs"),
        include_str!("losses.rs"),
        include_str!("state.rs"),
    ];
    let mut untested: Vec<&String> = fixtures()
        .params
        .keys()
        .filter(|k| !sources.iter().any(|s| s.contains(&format!("\"{k}\""))))
        .collect();
    untested.sort();
    assert!(untested.is_empty(), "fixture cases without a test: {untested:?}");
}
