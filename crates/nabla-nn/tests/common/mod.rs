//! Helpers shared by the integration tests: the PyTorch fixtures of
//! `tests/fixtures/layers.safetensors` (written by `tools/fixtures/nn.py`, whose docstring
//! describes the format) and the comparison max |nabla − torch| ≤ 1e-5 · max(1, max |torch|).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::OnceLock;

use nabla_core::{GradStore, Tensor};
use nabla_nn::Module;
use nabla_nn::state::{load_safetensors, load_state_dict};
use serde_json::Value;

pub const FIXTURE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/layers.safetensors");
pub const TORCH_STATE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_state.safetensors");
pub const RTOL: f64 = 1e-5;

/// The whole fixture file, decoded once.
pub struct Fixtures {
    pub tensors: HashMap<String, Tensor>,
    pub params: HashMap<String, Value>,
}

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let (tensors, meta) = load_safetensors(FIXTURE_FILE)
            .unwrap_or_else(|e| panic!("{e} (regenerate it with `python3 tools/make_fixtures.py nn`)"));
        let params = meta
            .into_iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .map(|(k, v)| {
                let v = serde_json::from_str(&v).unwrap_or_else(|e| panic!("metadata of {k}: {e}"));
                (k, v)
            })
            .collect();
        Fixtures {
            tensors: tensors.into_iter().collect(),
            params,
        }
    })
}

/// One case of the fixture file: `<layer or loss>/<variant>`.
pub struct Case {
    pub name: &'static str,
    pub params: &'static Value,
}

impl Case {
    pub fn load(name: &'static str) -> Case {
        let params = fixtures()
            .params
            .get(name)
            .unwrap_or_else(|| panic!("no fixture case {name} in {FIXTURE_FILE}"));
        Case { name, params }
    }

    /// The stored tensor `<case>/<role>`.
    pub fn get(&self, role: &str) -> Tensor {
        self.try_get(role)
            .unwrap_or_else(|| panic!("{}: no tensor {role} in the fixture", self.name))
    }

    pub fn try_get(&self, role: &str) -> Option<Tensor> {
        fixtures().tensors.get(&format!("{}/{role}", self.name)).cloned()
    }

    /// The stored tensors `<case>/<prefix><name>` as `(name, tensor)`, sorted by name.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let full = format!("{}/{prefix}", self.name);
        let mut v: Vec<(String, Tensor)> = fixtures()
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix(&full).map(|rest| (rest.to_string(), t.clone())))
            .filter(|(rest, _)| !rest.contains('/'))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn usize(&self, key: &str) -> usize {
        self.params[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: parameter {key} is not an integer", self.name)) as usize
    }
    pub fn f64(&self, key: &str) -> f64 {
        self.params[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: parameter {key} is not a number", self.name))
    }
    pub fn bool(&self, key: &str) -> bool {
        self.params[key]
            .as_bool()
            .unwrap_or_else(|| panic!("{}: parameter {key} is not a bool", self.name))
    }
    pub fn str(&self, key: &str) -> &'static str {
        self.params[key]
            .as_str()
            .unwrap_or_else(|| panic!("{}: parameter {key} is not a string", self.name))
    }
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.params[key]
            .as_array()
            .unwrap_or_else(|| panic!("{}: parameter {key} is not a list", self.name))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Loads the stored `param.*` tensors into `module` through `load_state_dict`, which also
    /// checks that the module's names are exactly PyTorch's state_dict keys.
    pub fn load_params(&self, module: &dyn Module) {
        let params = self.with_prefix("param.");
        load_state_dict(module, &params, self.name).unwrap_or_else(|e| panic!("{}: {e}", self.name));
    }

    /// Runs `module` on `<prefix>input`, backpropagates `<prefix>grad_out`, and compares the
    /// output, the input gradient and every parameter's gradient with PyTorch's.
    pub fn check_forward_backward(&self, module: &dyn Module, prefix: &str) {
        let x = self.get(&format!("{prefix}input")).requires_grad_();
        let out = module
            .forward(&x)
            .unwrap_or_else(|e| panic!("{}: forward: {e}", self.name));
        assert_close(
            &format!("{} {prefix}out", self.name),
            &out,
            &self.get(&format!("{prefix}out")),
        );
        let grads = backward_with(&out, &self.get(&format!("{prefix}grad_out")));
        assert_close(
            &format!("{} {prefix}grad_input", self.name),
            &grad_of(&grads, &x),
            &self.get(&format!("{prefix}grad_input")),
        );
        let expected = self.with_prefix(&format!("{prefix}grad."));
        let params = module.named_parameters();
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        let expected_names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, expected_names, "{}: parameter names", self.name);
        for (name, p) in &params {
            let e = &expected.iter().find(|(n, _)| n == name).unwrap().1;
            assert_close(&format!("{} {prefix}grad.{name}", self.name), &grad_of(&grads, p), e);
        }
    }
}

/// Backpropagates `grad_out` from `out`, i.e. differentiates Σ out·grad_out.
pub fn backward_with(out: &Tensor, grad_out: &Tensor) -> GradStore {
    out.mul(grad_out).unwrap().sum_all().unwrap().backward().unwrap()
}

/// The gradient of a leaf (zeros if it did not contribute).
pub fn grad_of(grads: &GradStore, t: &Tensor) -> Tensor {
    grads
        .get(t)
        .cloned()
        .unwrap_or_else(|| Tensor::zeros(t.shape(), t.dtype()))
}

/// max |actual − expected| ≤ 1e-5 · max(1, max |expected|), with equal shapes.
#[track_caller]
pub fn assert_close(what: &str, actual: &Tensor, expected: &Tensor) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shape");
    let a = actual.to_vec_f64().unwrap();
    let e = expected.to_vec_f64().unwrap();
    let scale = e.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let mut worst = (0.0f64, 0usize);
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        let d = (x - y).abs();
        if d.is_nan() || d > worst.0 {
            worst = (if d.is_nan() { f64::INFINITY } else { d }, i);
        }
    }
    assert!(
        worst.0 <= RTOL * scale,
        "{what}: max |nabla − torch| = {} at element {} (nabla {}, torch {}), allowed {}",
        worst.0,
        worst.1,
        a[worst.1],
        e[worst.1],
        RTOL * scale
    );
}
