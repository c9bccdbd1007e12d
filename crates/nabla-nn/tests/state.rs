//! State dicts: saving and loading nabla modules as safetensors under PyTorch's names, the
//! error for a mismatched state dict, and a file written by PyTorch
//! (`tests/fixtures/torch_state.safetensors`, with its input and eval output in the case
//! "torch_state" of `tests/fixtures/layers.safetensors`; see `tools/fixtures/nn.py`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{Case, TORCH_STATE_FILE, assert_close};
use nabla_core::{DType, Tensor, manual_seed, no_grad};
use nabla_nn::state::{load_module, load_safetensors, load_state_dict, save_module, save_safetensors};
use nabla_nn::{BatchNorm, Conv2dConfig, Flatten, Linear, Module, ReLU, Sequential};

/// nn.Sequential(Conv2d(2, 3, 3, padding=1), BatchNorm2d(3), ReLU(), Flatten(), Linear(48, 5)):
/// the network of `torch_state_net` in the fixture script.
fn net() -> Sequential {
    Sequential::new()
        .add(Conv2dConfig::new(2, 3, 3).padding(1).init().unwrap())
        .add(BatchNorm::new_2d(3))
        .add(ReLU)
        .add(Flatten)
        .add(Linear::new(3 * 4 * 4, 5).unwrap())
}

/// A network with non-trivial parameters and batch-norm statistics.
fn trained_net(seed: u64) -> Sequential {
    manual_seed(seed);
    let n = net();
    n.train();
    for _ in 0..3 {
        n.forward(&Tensor::randn((4, 2, 4, 4), DType::F32).unwrap()).unwrap();
    }
    n.eval();
    n
}

/// A fresh folder under the system's temporary directory.
fn temp_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-nn-state-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_saved_module_loads_into_a_freshly_built_one() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("model.safetensors");
    let a = trained_net(1);
    save_module(&a, &path).unwrap();
    assert!(
        !dir.join("model.safetensors.tmp").exists(),
        "the temporary file is renamed away"
    );

    let b = trained_net(2);
    let x = Tensor::randn((2, 2, 4, 4), DType::F32).unwrap();
    assert_ne!(
        a.forward(&x).unwrap().to_vec_f64().unwrap(),
        b.forward(&x).unwrap().to_vec_f64().unwrap()
    );
    load_module(&b, &path).unwrap();
    for ((na, ta), (nb, tb)) in a.state_dict().iter().zip(b.state_dict()) {
        assert_eq!(*na, nb);
        assert_eq!(ta.dims(), tb.dims(), "{na}");
        assert_eq!(ta.dtype(), tb.dtype(), "{na}");
        assert_eq!(ta.to_vec_f64().unwrap(), tb.to_vec_f64().unwrap(), "{na}");
    }
    assert_eq!(
        b.named_buffers()
            .iter()
            .find(|(n, _)| n == "1.num_batches_tracked")
            .unwrap()
            .1
            .item()
            .unwrap(),
        3.0
    );
    assert_eq!(
        a.forward(&x).unwrap().to_vec_f64().unwrap(),
        b.forward(&x).unwrap().to_vec_f64().unwrap()
    );
    // Loading copies values: the parameters keep their identity and still train.
    let w = &b.named_parameters()[0].1;
    assert!(w.requires_grad());
    let g = b.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(g.get(w).is_some());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_mismatched_state_dict_gives_one_error_listing_every_problem() {
    let model = net();
    let before: Vec<Vec<f64>> = model
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec_f64().unwrap())
        .collect();
    let mut sd: Vec<(String, Tensor)> = model
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, Tensor::full(0.5, t.shape(), t.dtype())))
        .collect();
    // A wrong shape, a missing name and an unexpected name.
    let i = sd.iter().position(|(n, _)| n == "0.weight").unwrap();
    sd[i].1 = Tensor::zeros((3, 2, 5, 5), DType::F32);
    sd.retain(|(n, _)| n != "1.running_var");
    sd.push(("2.weight".to_string(), Tensor::zeros((3,), DType::F32)));
    let err = load_state_dict(&model, &sd, "bad.safetensors").unwrap_err().to_string();
    assert!(err.starts_with("bad.safetensors: "), "{err}");
    assert!(
        err.contains("'0.weight'") && err.contains("[3, 2, 5, 5]") && err.contains("[3, 2, 3, 3]"),
        "{err}"
    );
    assert!(err.contains("missing '1.running_var'"), "{err}");
    assert!(err.contains("unexpected '2.weight'"), "{err}");
    assert_eq!(err.matches("'").count(), 6, "exactly three problems: {err}");
    // Nothing was changed.
    let after: Vec<Vec<f64>> = model
        .state_dict()
        .iter()
        .map(|(_, t)| t.to_vec_f64().unwrap())
        .collect();
    assert_eq!(before, after);

    // A dtype mismatch is reported too.
    let mut sd: Vec<(String, Tensor)> = model.state_dict();
    let i = sd.iter().position(|(n, _)| n == "1.num_batches_tracked").unwrap();
    sd[i].1 = Tensor::zeros((), DType::F32);
    let err = load_state_dict(&model, &sd, "x").unwrap_err().to_string();
    assert!(
        err.contains("'1.num_batches_tracked'") && err.contains("F32") && err.contains("I64"),
        "{err}"
    );
}

#[test]
fn missing_and_corrupt_files_are_errors() {
    let dir = temp_dir("corrupt");
    let model = net();
    assert!(load_module(&model, dir.join("nope.safetensors")).is_err());
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not a safetensors file").unwrap();
    let err = load_module(&model, &bad).unwrap_err().to_string();
    assert!(err.contains("bad.safetensors"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn safetensors_keep_dtypes_shapes_and_metadata() {
    let dir = temp_dir("meta");
    let path = dir.join("t.safetensors");
    let tensors = vec![
        (
            "a".to_string(),
            Tensor::from_vec(vec![1.5f32, -2.0, 3.25], (3,)).unwrap(),
        ),
        (
            "b.c".to_string(),
            Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], (2, 2)).unwrap(),
        ),
        ("n".to_string(), Tensor::from_vec(vec![7i64], ()).unwrap()),
        // A non-contiguous view is written in row-major order.
        (
            "t".to_string(),
            Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3))
                .unwrap()
                .t()
                .unwrap(),
        ),
    ];
    let meta = HashMap::from([("epoch".to_string(), "3".to_string())]);
    save_safetensors(&path, &tensors, Some(meta.clone())).unwrap();
    let (back, mut back_meta) = load_safetensors(&path).unwrap();
    // The content hash is added to the metadata (64 hex digits of SHA-256).
    let hash = back_meta.remove(nabla_nn::state::HASH_KEY).unwrap();
    assert_eq!(hash.len(), 64);
    assert_eq!(back_meta, meta);
    assert_eq!(back.len(), 4);
    for ((n, t), (m, u)) in tensors.iter().zip(&back) {
        assert_eq!(n, m);
        assert_eq!(t.dims(), u.dims());
        assert_eq!(t.dtype(), u.dtype());
        assert_eq!(t.to_vec_f64().unwrap(), u.to_vec_f64().unwrap());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_state_dict_written_by_pytorch_loads_and_gives_pytorchs_output() {
    let case = Case::load("torch_state");
    let model = net();
    let (file_tensors, _) = load_safetensors(TORCH_STATE_FILE).unwrap();
    let mut file_keys: Vec<String> = file_tensors.iter().map(|(n, _)| n.clone()).collect();
    let mut torch_keys = case.strings("state_dict_keys");
    let mut own_keys: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    file_keys.sort();
    torch_keys.sort();
    own_keys.sort();
    assert_eq!(file_keys, torch_keys);
    assert_eq!(own_keys, torch_keys);

    load_module(&model, TORCH_STATE_FILE).unwrap();
    model.eval();
    let out = no_grad(|| model.forward(&case.get("input"))).unwrap();
    assert_close("torch_state out (eval)", &out, &case.get("out"));
}

/// Writes a trained network (`model.safetensors`) and a fixed input with its eval-mode output
/// (`io.safetensors`) to `$NABLA_STATE_OUT`, for `python3 tools/make_fixtures.py nn
/// --check-nabla`, which loads them into PyTorch (the other direction of the test above).
#[test]
#[ignore = "run by python3 tools/make_fixtures.py nn --check-nabla"]
fn write_state_for_pytorch() {
    let dir = PathBuf::from(std::env::var("NABLA_STATE_OUT").expect("set NABLA_STATE_OUT to a folder"));
    let model = trained_net(11);
    save_module(&model, dir.join("model.safetensors")).unwrap();
    let x = Tensor::randn((3, 2, 4, 4), DType::F32).unwrap();
    let out = model.forward(&x).unwrap();
    save_safetensors(
        dir.join("io.safetensors"),
        &[("input".to_string(), x), ("out".to_string(), out)],
        None,
    )
    .unwrap();
}

#[test]
fn batch_norm_counters_may_be_missing_or_extra_as_in_pytorch() {
    let model = net();
    let full: Vec<(String, Tensor)> = model
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, Tensor::full(0.25, t.shape(), t.dtype())))
        .collect();
    // Without the counter (torchvision's older files): loads, the model keeps its own count.
    let without: Vec<(String, Tensor)> = full
        .iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    assert!(without.len() < full.len());
    load_state_dict(&model, &without, "old.safetensors").unwrap();
    let w = model.state_dict().into_iter().find(|(n, _)| n == "0.weight").unwrap().1;
    assert!(w.to_vec_f64().unwrap().iter().all(|&v| v == 0.25));
    // A counter for a layer that exists only in the file is ignored; other extras are not.
    let mut extra = full.clone();
    extra.push(("7.num_batches_tracked".into(), Tensor::zeros((), DType::I64)));
    load_state_dict(&model, &extra, "extra.safetensors").unwrap();
    extra.push(("7.weight".into(), Tensor::zeros((2,), DType::F32)));
    let e = load_state_dict(&model, &extra, "x").unwrap_err().to_string();
    assert!(e.contains("unexpected '7.weight'") && !e.contains("num_batches"), "{e}");
}
