//! ONNX export checked by a runtime that is not ours: tract (pure Rust) loads the exported
//! LeNet-5, ResNet-20 (option A shortcuts: strided slices and channel padding), a VGG-style and
//! a GoogLeNet-style network (examples/archs: reflect, replicate and circular padding, dilated
//! and grouped convolutions, ceil-mode pooling, adaptive pooling that does not divide, LRN,
//! inception branches, a residual add), runs a batch of 3 through the dynamic batch dimension,
//! and must give nabla's logits within 1e-4 relative. The graph's names are the module paths
//! and the state dict's names.

use std::collections::BTreeSet;

use nabla_core::{DType, Generator, Tensor};
use nabla_models::{ModelSpec, build_model};
use nabla_nn::Module;
use nabla_nn::onnx::proto::{Model, ProtobufMessage};
use tract_onnx::prelude::*;

fn model(name: &str, input: [usize; 3]) -> Box<dyn Module> {
    nabla_core::rng::manual_seed(3);
    let m = build_model(name, &ModelSpec { input, classes: 10 }).unwrap();
    // Batch-norm statistics that are not the initial 0 and 1, so that the export of the running
    // averages is checked too: one forward pass in training mode moves them.
    m.train();
    let x = Tensor::uniform_with(
        -1.0,
        1.0,
        vec![4, input[0], input[1], input[2]],
        DType::F32,
        &mut Generator::seed_from_u64(5),
    )
    .unwrap();
    m.forward(&x).unwrap();
    m.eval();
    m
}

/// The largest |tract − nabla| over the largest |nabla| for a batch of 3.
fn tract_error(name: &str, input: [usize; 3]) -> f64 {
    let m = model(name, input);
    let bytes = nabla_nn::onnx::export(m.as_ref(), input, &Default::default()).unwrap();
    let [c, h, w] = input;
    let x = Tensor::uniform_with(
        -1.0,
        1.0,
        vec![3, c, h, w],
        DType::F32,
        &mut Generator::seed_from_u64(9),
    )
    .unwrap();
    let want = m.forward(&x).unwrap().to_vec::<f32>().unwrap();

    let plan = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .unwrap()
        .with_input_fact(0, f32::fact([3, c, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = tract_ndarray::Array4::from_shape_vec((3, c, h, w), x.to_vec::<f32>().unwrap()).unwrap();
    let out = plan.run(tvec!(input.into_tensor().into())).unwrap();
    let got: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    assert_eq!(got.len(), want.len(), "{name}: output size");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    // Different inputs give different logits (the comparison sees more than the biases).
    let spread = want[..10]
        .iter()
        .zip(&want[10..20])
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max);
    assert!(spread > 1e-3 * scale, "{name}: every input gives the same logits");
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs() as f64)
        .fold(0.0, f64::max)
        / scale
}

#[test]
fn tract_runs_the_exported_models_with_nablas_logits() {
    let arch = |f: &str| format!("{}/../../examples/archs/{f}", env!("CARGO_MANIFEST_DIR"));
    for (name, input) in [
        ("lenet5".to_string(), [1, 28, 28]),
        ("resnet20".to_string(), [3, 32, 32]),
        (arch("tiny-vgg.toml"), [1, 28, 28]),
        (arch("tiny-inception.toml"), [1, 28, 28]),
    ] {
        let err = tract_error(&name, input);
        eprintln!("{name}: tract vs nabla, relative error {err:.1e}");
        assert!(err <= 1e-4, "{name}: relative error {err:e}");
    }
}

#[test]
fn nodes_and_weights_keep_their_names() {
    let m = model("resnet20", [3, 32, 32]);
    let bytes = nabla_nn::onnx::export(m.as_ref(), [3, 32, 32], &Default::default()).unwrap();
    let onnx = Model::parse_from_bytes(&bytes).unwrap();
    let graph = onnx.graph.as_ref().unwrap();
    assert_eq!(onnx.opset_import[0].version, 17);
    // Every parameter and running statistic is an initializer of the same name (the step
    // counters of batch norm are not part of inference).
    let inits: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    for (name, _) in m.state_dict() {
        assert_eq!(
            inits.contains(name.as_str()),
            !name.ends_with("num_batches_tracked"),
            "{name}"
        );
    }
    let nodes: BTreeSet<&str> = graph.node.iter().map(|n| n.name.as_str()).collect();
    for layer in [
        "conv1",
        "bn1",
        "layer1.0.conv1",
        "layer2.0.bn2",
        "layer3.2.conv2",
        "fc",
        "logits",
    ] {
        assert!(nodes.contains(layer), "{layer} not among {nodes:?}");
    }
    // The batch dimension is a name, the others numbers.
    let dims = |v: &nabla_nn::onnx::proto::ValueInfo| -> Vec<String> {
        match &v.type_.as_ref().unwrap().value {
            Some(nabla_nn::onnx::proto::TypeValue::TensorType(t)) => {
                t.shape.dim.iter().map(|d| format!("{:?}", d.value)).collect()
            }
            _ => vec![],
        }
    };
    assert_eq!(dims(&graph.input[0]).len(), 4);
    assert!(dims(&graph.input[0])[0].contains("batch") && dims(&graph.output[0])[0].contains("batch"));
    assert!(dims(&graph.output[0])[1].contains("10"));
}

#[test]
fn a_layer_without_an_export_is_an_error_naming_it() {
    struct Custom;
    impl Module for Custom {
        fn forward(&self, x: &Tensor) -> nabla_core::Result<Tensor> {
            x.exp()
        }
    }
    let net = nabla_nn::Sequential::new().add(nabla_nn::Flatten).add(Custom);
    let err = nabla_nn::onnx::export(&net, [1, 2, 2], &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("layer '1' (Custom) cannot be exported"), "{err}");
    // LRN with an even window: ONNX centres it elsewhere.
    let lrn = nabla_nn::Sequential::new().add(nabla_nn::LocalResponseNorm::new(4));
    let err = nabla_nn::onnx::export(&lrn, [6, 2, 2], &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("layer '0'") && err.contains("even window"), "{err}");
}
