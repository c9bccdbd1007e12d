//! torchvision's ResNet-18 in nabla's ResNet-18: the names, shapes and the eval-mode logits agree.
//!
//! The weights are not stored: tools/fixtures/models.py (PyTorch) and this test (Rust) both
//! compute every entry of `torchvision.models.resnet18(num_classes=10).state_dict()` from one
//! formula, to the same float32 bits. `fixtures/resnet18_io.safetensors` (written by that script)
//! holds a fixed 1×3×64×64 `input`, torchvision's eval-mode `logits` for it, and `probe`, three
//! values of each entry (first, middle, last), which tell a formula that drifted apart from a
//! model that computes differently.
//!
//! The formula. Entry k is the k-th of `state_dict()` in torchvision's order (0 = `conv1.weight`,
//! 1 = `bn1.weight`, …, 121 = `fc.bias`; the `num_batches_tracked` entries count), the order of
//! the `resnet18` lines of `fixtures/torchvision_state_dicts.txt`, which this test reads (their
//! shapes are for 1000 classes; `fc`'s first dimension becomes 10). Element i is the flat
//! row-major index. With wrapping u64 arithmetic,
//!
//! ```text
//! splitmix64(x): z = x + 0x9E3779B97F4A7C15
//!                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//!                z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//!                return z ^ (z >> 31)
//! u = ((splitmix64(k * 2^32 + i) >> 40) - 2^23) / 2^23       24 bits, exact, in [-1, 1)
//! value = f32(a + s * u), computed in f64 and rounded once, where (a, s) is
//!   conv and fc weight (rank ≥ 2)       (0, 1.5 / sqrt(fan_in)), fan_in = elements / dims[0]
//!   batch norm weight, running_var      (1, 0.5)      in [0.5, 1.5)
//!   bias (batch norm, fc), running_mean (0, 0.2)
//!   num_batches_tracked                 int64 scalar 0
//! ```
//!
//! Every step is exact or one IEEE-754 rounding, so Python (numpy) and Rust get identical
//! bits. The expected logits come from PyTorch, not from nabla.

use nabla_core::Tensor;
use nabla_models::resnet::ResNetConfig;
use nabla_nn::Module;
use nabla_nn::state::{load_module, load_safetensors, load_state_dict, save_safetensors};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Entry k's element i, uniform in [-1, 1) on a grid of 2⁻²³ (exact in f32 and f64).
fn uniform(k: u64, i: u64) -> f64 {
    assert!(i < 1 << 32);
    let h = splitmix64((k << 32) | i);
    ((h >> 40) as f64 - 8_388_608.0) / 8_388_608.0
}

/// State-dict entry number `k`, called `name`, of shape `dims`, by the formula.
fn formula_entry(k: u64, name: &str, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let leaf = name.rsplit('.').next().unwrap();
    if leaf == "num_batches_tracked" {
        return Tensor::from_vec(vec![0i64; n], dims).unwrap();
    }
    let (a, s) = match leaf {
        "weight" if dims.len() >= 2 => (0.0, 1.5 / ((n / dims[0]) as f64).sqrt()),
        "weight" | "running_var" => (1.0, 0.5),
        "bias" | "running_mean" => (0.0, 0.2),
        _ => panic!("no formula for {name}"),
    };
    let values: Vec<f32> = (0..n as u64).map(|i| (a + s * uniform(k, i)) as f32).collect();
    Tensor::from_vec(values, dims).unwrap()
}

/// torchvision's `resnet18(num_classes=classes).state_dict()` filled by the formula, in its order.
fn formula_resnet18(classes: usize) -> Vec<(String, Tensor)> {
    let listing = std::fs::read_to_string(fixture("torchvision_state_dicts.txt")).unwrap();
    let entries: Vec<(String, Tensor)> = listing
        .lines()
        .filter_map(|line| line.strip_prefix("resnet18 "))
        .enumerate()
        .map(|(k, rest)| {
            let mut fields = rest.split(' ');
            let name = fields.next().unwrap();
            let mut dims: Vec<usize> = match fields.next() {
                Some(shape) => shape.split('x').map(|d| d.parse().unwrap()).collect(),
                None => Vec::new(), // a scalar
            };
            if name.starts_with("fc.") {
                dims[0] = classes;
            }
            (name.to_string(), formula_entry(k as u64, name, &dims))
        })
        .collect();
    assert_eq!(entries.len(), 122, "resnet18 lines of torchvision_state_dicts.txt");
    entries
}

#[test]
fn torchvision_resnet18_gives_the_same_logits() {
    let state = formula_resnet18(10);
    let (io, _) = load_safetensors(fixture("resnet18_io.safetensors")).unwrap();
    let get = |name: &str| io.iter().find(|(n, _)| n == name).unwrap().1.clone();

    // The formula gives the same bits as in Python.
    let probe = get("probe");
    assert_eq!(probe.dims(), &[state.len(), 3]);
    let probe = probe.to_vec::<f32>().unwrap();
    for (k, (name, t)) in state.iter().enumerate() {
        let v: Vec<f32> = match t.to_vec::<f32>() {
            Ok(v) => v,
            Err(_) => t.to_vec::<i64>().unwrap().iter().map(|&x| x as f32).collect(),
        };
        let ours = [v[0], v[v.len() / 2], v[v.len() - 1]];
        let theirs = &probe[3 * k..3 * k + 3];
        assert!(
            ours.iter().zip(theirs).all(|(a, b)| a.to_bits() == b.to_bits()),
            "entry {k} '{name}': formula gives {ours:?}, PyTorch's script {theirs:?}"
        );
    }

    let net = ResNetConfig::imagenet(18, 3, 10).unwrap().init().unwrap();
    load_state_dict(&net, &state, "formula weights").unwrap(); // every name, shape and dtype
    net.eval();
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
    // ResNet-34 has more blocks than a ResNet-18 file: every missing name is reported, nothing
    // is loaded.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("formula_resnet18.safetensors");
    save_safetensors(&path, &formula_resnet18(10), None).unwrap();
    let net = ResNetConfig::imagenet(34, 3, 10).unwrap().init().unwrap();
    let before = net.state_dict()[0].1.to_vec::<f32>().unwrap();
    let err = load_module(&net, &path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(err.contains("missing 'layer1.2.conv1.weight'"), "{err}");
    assert!(err.contains("missing 'layer4.2.bn2.running_var'"), "{err}");
    assert_eq!(net.state_dict()[0].1.to_vec::<f32>().unwrap(), before);
}
