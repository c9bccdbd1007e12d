//! torchvision's ResNet-18 weights in nabla's ResNet-18: the names, shapes and the eval-mode
//! logits agree.
//!
//! Fixtures (tools/make_model_fixtures.py): `fixtures/resnet18.safetensors` is
//! `safetensors.torch.save_file(torchvision.models.resnet18(num_classes=10).state_dict(), path)`
//! with seeded random weights and batch-norm statistics; `fixtures/resnet18_io.safetensors`
//! holds a fixed 1×3×64×64 `input` and torchvision's eval-mode `logits` for it.

use nabla_models::resnet::ResNetConfig;
use nabla_nn::Module;
use nabla_nn::state::{load_module, load_safetensors};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn torchvision_resnet18_gives_the_same_logits() {
    let net = ResNetConfig::imagenet(18, 3, 10).unwrap().init().unwrap();
    load_module(&net, fixture("resnet18.safetensors")).unwrap();
    net.eval();
    let (io, _) = load_safetensors(fixture("resnet18_io.safetensors")).unwrap();
    let get = |name: &str| io.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let (x, expected) = (get("input"), get("logits"));
    let y = net.forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 10]);
    let (y, expected) = (y.to_vec::<f32>().unwrap(), expected.to_vec::<f32>().unwrap());
    let max_diff = y
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff <= 1e-4,
        "max |Δ| = {max_diff:e}\n nabla {y:?}\n torch {expected:?}"
    );
}

#[test]
fn a_state_dict_that_does_not_fit_is_refused() {
    // ResNet-34 has more blocks than the file: every missing name is reported, nothing is loaded.
    let net = ResNetConfig::imagenet(34, 3, 10).unwrap().init().unwrap();
    let err = load_module(&net, fixture("resnet18.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing 'layer1.2.conv1.weight'"), "{err}");
}
