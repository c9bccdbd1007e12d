//! One training step of every model of the zoo on a batch of two samples: forward, softmax
//! cross-entropy, backward, one SGD update. Checks the output shape, a finite loss, a gradient
//! for every parameter (each is reached by the backward pass), and that the update moved them.
//!
//! Inputs are as small as each architecture allows while keeping its shape: 32×32 for the
//! CIFAR networks, VGG and NIN; 64×64 for the ImageNet ResNets (adaptive average pooling),
//! GoogLeNet, torchvision's AlexNet (adaptive pooling) and ZFNet; the paper AlexNets at
//! 224×224, where fc6 has its 9216 inputs.

use nabla_core::{DType, Tensor, manual_seed};
use nabla_models::googlenet::GoogLeNetConfig;
use nabla_models::zoo::build_zoo;
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, cross_entropy};
use nabla_nn::optim::{Optimizer, Sgd, SgdConfig};

const BATCH: usize = 2;

/// Runs one SGD step of `net` on `loss_of(x, target)`, checking gradients and the update.
/// Parameters under the prefixes `unused` are not part of that loss.
fn step(
    name: &str,
    net: &dyn Module,
    input: [usize; 3],
    classes: usize,
    unused: &[&str],
    loss_of: impl Fn(&Tensor, &Tensor) -> Tensor,
) {
    let [c, h, w] = input;
    net.train();
    let x = Tensor::randn((BATCH, c, h, w), DType::F32).unwrap();
    let target = Tensor::from_vec(vec![0i64, classes as i64 - 1], (BATCH,)).unwrap();
    let loss = loss_of(&x, &target);
    let value = loss.item().unwrap();
    assert!(value.is_finite(), "{name}: loss {value}");
    let grads = loss.backward().unwrap();
    let params = net.named_parameters();
    let used: Vec<&(String, Tensor)> = params
        .iter()
        .filter(|(n, _)| !unused.iter().any(|u| n.starts_with(u)))
        .collect();
    let without: Vec<&str> = used
        .iter()
        .filter(|(_, p)| grads.get(p).is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(without.is_empty(), "{name}: no gradient for {without:?}");
    // The classifier's bias moves by lr·(softmax − onehot), never 0 for two different targets.
    let (last_name, last) = (*used.last().unwrap()).clone();
    let before = last.to_vec::<f32>().unwrap();
    let mut opt = Sgd::new(params, SgdConfig::new(0.01)).unwrap();
    opt.step(&grads).unwrap();
    assert_ne!(
        before,
        last.to_vec::<f32>().unwrap(),
        "{name}: {last_name} did not move"
    );
}

/// One training step of zoo model `name` for `input` and `classes`.
fn train_step(name: &str, input: [usize; 3], classes: usize) {
    manual_seed(7);
    let t = std::time::Instant::now();
    let net = build_zoo(name, input, classes).unwrap().unwrap();
    let built = t.elapsed();
    // GoogLeNet's forward leaves out its auxiliary classifiers (trained by `training_loss`).
    let unused: &[&str] = if name.starts_with("googlenet") {
        &["aux1.", "aux2."]
    } else {
        &[]
    };
    step(name, net.as_ref(), input, classes, unused, |x, target| {
        let logits = net.forward(x).unwrap();
        assert_eq!(logits.dims(), &[BATCH, classes], "{name}: logits");
        cross_entropy(&logits, target, &CrossEntropyOptions::default()).unwrap()
    });
    eprintln!(
        "{name} {input:?}: built in {:.2} s, step in {:.2} s",
        built.as_secs_f64(),
        (t.elapsed() - built).as_secs_f64()
    );
}

macro_rules! train_steps {
    ($($test:ident: $name:literal, $input:expr, $classes:expr;)*) => {
        $(
            #[test]
            fn $test() {
                train_step($name, $input, $classes);
            }
        )*
    };
}

train_steps! {
    alexnet: "alexnet", [3, 224, 224], 10;
    alexnet_two_stream: "alexnet-two-stream", [3, 224, 224], 10;
    alexnet_torchvision: "alexnet-torchvision", [3, 64, 64], 10;
    zfnet: "zfnet", [3, 64, 64], 10;
    vgg11: "vgg11", [3, 32, 32], 10;
    vgg13: "vgg13", [3, 32, 32], 10;
    vgg16: "vgg16", [3, 32, 32], 10;
    vgg19: "vgg19", [3, 32, 32], 10;
    vgg11_bn: "vgg11-bn", [3, 32, 32], 10;
    vgg13_bn: "vgg13-bn", [3, 32, 32], 10;
    vgg16_bn: "vgg16-bn", [3, 32, 32], 10;
    vgg19_bn: "vgg19-bn", [3, 32, 32], 10;
    nin: "nin", [3, 32, 32], 10;
    googlenet: "googlenet", [3, 64, 64], 10;
    googlenet_5x5: "googlenet-5x5", [3, 64, 64], 10;
    resnet18: "resnet18", [3, 64, 64], 10;
    resnet34: "resnet34", [3, 64, 64], 10;
    resnet50: "resnet50", [3, 64, 64], 10;
    resnet101: "resnet101", [3, 64, 64], 10;
    resnet152: "resnet152", [3, 64, 64], 10;
    resnet20: "resnet20", [3, 32, 32], 10;
    resnet32: "resnet32", [3, 32, 32], 10;
    resnet44: "resnet44", [3, 32, 32], 10;
    resnet56: "resnet56", [3, 32, 32], 10;
    resnet110: "resnet110", [3, 32, 32], 10;
    resnet20_b: "resnet20-b", [3, 32, 32], 10;
    resnet32_b: "resnet32-b", [3, 32, 32], 10;
    resnet44_b: "resnet44-b", [3, 32, 32], 10;
    resnet56_b: "resnet56-b", [3, 32, 32], 10;
    resnet110_b: "resnet110-b", [3, 32, 32], 10;
    plain18: "plain18", [3, 64, 64], 10;
    plain34: "plain34", [3, 64, 64], 10;
    plain20: "plain20", [3, 32, 32], 10;
    plain32: "plain32", [3, 32, 32], 10;
    plain44: "plain44", [3, 32, 32], 10;
    plain56: "plain56", [3, 32, 32], 10;
    plain110: "plain110", [3, 32, 32], 10;
    se_resnet18: "se-resnet18", [3, 64, 64], 10;
    se_resnet50: "se-resnet50", [3, 64, 64], 10;
    mnist_resnet20: "resnet20", [1, 28, 28], 10;
}

#[test]
fn googlenet_with_auxiliary_classifiers() {
    // L = L_main + 0.3·(L_aux1 + L_aux2): every parameter, the heads' included, gets a gradient.
    manual_seed(7);
    let input = [3, 64, 64];
    let net = GoogLeNetConfig::new(3, 10).init().unwrap();
    step("googlenet (aux)", &net, input, 10, &[], |x, target| {
        let (logits, aux1, aux2) = net.forward_train(x).unwrap();
        for t in [&logits, &aux1, &aux2] {
            assert_eq!(t.dims(), &[BATCH, 10]);
        }
        net.training_loss(x, target).unwrap()
    });
}

#[test]
fn googlenet_evaluation_skips_the_heads() {
    manual_seed(7);
    let mut net = GoogLeNetConfig::new(3, 10).init().unwrap();
    net.eval();
    let x = Tensor::randn((1, 3, 64, 64), DType::F32).unwrap();
    let with_heads = net.forward(&x).unwrap();
    net.drop_aux_heads();
    assert_eq!(
        with_heads.to_vec::<f32>().unwrap(),
        net.forward(&x).unwrap().to_vec::<f32>().unwrap()
    );
    assert!(net.forward_train(&x).is_err());
}
