//! Optimisers and gradient clipping.
//!
//! * PyTorch reference runs: `tests/fixtures/optim.safetensors`, written by
//!   `tools/fixtures/optim.py` (the problem, the cases and their PyTorch calls are
//!   described there and in each case's metadata). Each case is run here in f32 and f64 and
//!   compared after every one of its 5 steps.
//! * The lecture's exponential momentum (no PyTorch equivalent): hand-computed values.
//! * Save/restore: 3 steps, state through safetensors bytes, a fresh optimiser, 2 steps ==
//!   5 straight steps, bit for bit.
//! * Convergence on XOR and on an ill-conditioned quadratic; errors on bad input; clipping.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use nabla_core::{DType, Generator, GradStore, Tensor};
use nabla_nn::clip::{clip_grad_norm, clip_grad_value};
use nabla_nn::optim::{
    Adam, AdamConfig, AdamW, AdamWConfig, MomentumForm, Optimizer, OptimizerState, ParamGroup, RMSprop, RMSpropConfig,
    Sgd, SgdConfig, is_bias_or_norm,
};
use nabla_nn::schedule::{ExponentialLR, LrScheduler};
use safetensors::{Dtype, SafeTensors, View};
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim.safetensors");

// ------------------------------------------------------------------------------ helpers

struct Fixture {
    tensors: HashMap<String, Tensor>,
    meta: HashMap<String, Value>,
}

fn fixture() -> Fixture {
    let bytes = std::fs::read(FIXTURE).expect("fixture missing: run python3 tools/make_fixtures.py optim");
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let t = match view.dtype() {
            Dtype::F64 => {
                let v: Vec<f64> = view
                    .data()
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                Tensor::from_vec(v, shape).unwrap()
            }
            Dtype::F32 => {
                let v: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                Tensor::from_vec(v, shape).unwrap()
            }
            d => panic!("unexpected dtype {d:?} for {name}"),
        };
        tensors.insert(name, t);
    }
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_str(&v).unwrap()))
        .collect();
    Fixture { tensors, meta }
}

impl Fixture {
    fn get(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no tensor {name}"))
    }
    fn optim_cases(&self) -> Vec<(String, Value)> {
        let mut cases: Vec<_> = self
            .meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("optim/").map(|c| (c.to_string(), v.clone())))
            .collect();
        cases.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(
            cases.len() >= 16,
            "expected the optimiser cases in the fixture, got {}",
            cases.len()
        );
        cases
    }
}

#[track_caller]
fn assert_close(actual: &[f64], expected: &[f64], tol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol * (1.0 + e.abs()),
            "{what}: element {i}: got {a}, expected {e} (tolerance {tol})\n  actual:   {actual:?}\n  expected: {expected:?}"
        );
    }
}

/// The fixture's problem: loss = Σ(X Wᵀ + b − Y)² / 5 + 0.1·Σ W⁴.
struct Problem {
    x: Tensor,
    y: Tensor,
}

impl Problem {
    fn loss(&self, w: &Tensor, b: &Tensor) -> Tensor {
        let n = self.x.dims()[0] as f64;
        let fit = self
            .x
            .matmul(&w.t().unwrap())
            .unwrap()
            .add(b)
            .unwrap()
            .sub(&self.y)
            .unwrap();
        let fit = fit
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .div(&Tensor::scalar(n, w.dtype()))
            .unwrap();
        let reg = w
            .sqr()
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .mul_scalar(0.1)
            .unwrap();
        fit.add(&reg).unwrap()
    }

    fn grads(&self, w: &Tensor, b: &Tensor) -> GradStore {
        self.loss(w, b).backward().unwrap()
    }
}

fn setup(fx: &Fixture, dtype: DType) -> (Problem, Tensor, Tensor) {
    // NOTE: a fresh copy: `to_dtype` to the same dtype shares storage, and the optimiser
    // writes into its parameters, which would change the fixture under the next case.
    let conv = |name: &str| {
        let t = fx.get(name);
        Tensor::from_vec(t.to_vec_f64().unwrap(), t.dims().to_vec())
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    };
    let w = conv("problem/w0").requires_grad_();
    let b = conv("problem/b0").requires_grad_();
    (
        Problem {
            x: conv("problem/x"),
            y: conv("problem/y"),
        },
        w,
        b,
    )
}

fn num(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The optimiser a fixture case describes (see tools/fixtures/optim.py), over w and b.
fn build(case: &Value, w: &Tensor, b: &Tensor) -> Box<dyn Optimizer> {
    let named = |n: &str| -> (String, Tensor) {
        match n {
            "weight" => ("weight".into(), w.clone()),
            "bias" => ("bias".into(), b.clone()),
            _ => panic!("unknown parameter {n}"),
        }
    };
    let groups: Vec<ParamGroup> = match case.get("groups") {
        Some(gs) => gs
            .as_array()
            .unwrap()
            .iter()
            .map(|g| ParamGroup {
                params: g["params"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| named(n.as_str().unwrap()))
                    .collect(),
                lr: g.get("lr").and_then(Value::as_f64),
                weight_decay: g.get("weight_decay").and_then(Value::as_f64),
            })
            .collect(),
        None => vec![ParamGroup::new(vec![named("weight"), named("bias")])],
    };
    let betas = case
        .get("betas")
        .map(|b| (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()))
        .unwrap_or((0.9, 0.999));
    let lr = num(case, "lr", f64::NAN);
    match case["optim"].as_str().unwrap() {
        "sgd" => {
            let cfg = SgdConfig::new(lr)
                .momentum(num(case, "momentum", 0.0))
                .dampening(num(case, "dampening", 0.0))
                .nesterov(flag(case, "nesterov"))
                .weight_decay(num(case, "weight_decay", 0.0));
            Box::new(Sgd::with_groups(groups, cfg).unwrap())
        }
        "adam" => {
            let cfg = AdamConfig::new(lr)
                .betas(betas.0, betas.1)
                .eps(num(case, "eps", 1e-8))
                .weight_decay(num(case, "weight_decay", 0.0))
                .amsgrad(flag(case, "amsgrad"));
            Box::new(Adam::with_groups(groups, cfg).unwrap())
        }
        "adamw" => {
            let cfg = AdamWConfig::new(lr)
                .betas(betas.0, betas.1)
                .eps(num(case, "eps", 1e-8))
                .weight_decay(num(case, "weight_decay", 1e-2))
                .amsgrad(flag(case, "amsgrad"));
            Box::new(AdamW::with_groups(groups, cfg).unwrap())
        }
        "rmsprop" => {
            let cfg = RMSpropConfig::new(lr)
                .alpha(num(case, "alpha", 0.99))
                .eps(num(case, "eps", 1e-8))
                .weight_decay(num(case, "weight_decay", 0.0))
                .momentum(num(case, "momentum", 0.0))
                .centered(flag(case, "centered"));
            Box::new(RMSprop::with_groups(groups, cfg).unwrap())
        }
        o => panic!("unknown optimiser {o}"),
    }
}

/// Runs `steps` steps of a fixture case from its current parameters, stepping the case's
/// exponential schedule (if any) after each step.
fn run(opt: &mut dyn Optimizer, sched: &mut Option<ExponentialLR>, p: &Problem, w: &Tensor, b: &Tensor) {
    opt.step(&p.grads(w, b)).unwrap();
    if let Some(s) = sched {
        opt.set_lr(s.step(None));
    }
}

/// The case's ExponentialLR over its initial learning rate, if it has one.
fn schedule_of(case: &Value) -> Option<ExponentialLR> {
    case.get("exp_lr_gamma")
        .and_then(Value::as_f64)
        .map(|g| ExponentialLR::new(num(case, "lr", f64::NAN), g).unwrap())
}

// ------------------------------------------------------------------------------ PyTorch

fn check_against_pytorch(dtype: DType, tag: &str, tol: f64) {
    let fx = fixture();
    for (name, case) in fx.optim_cases() {
        let (p, w, b) = setup(&fx, dtype);
        let mut opt = build(&case, &w, &b);
        let mut sched = schedule_of(&case);
        for k in 1..=5 {
            run(opt.as_mut(), &mut sched, &p, &w, &b);
            assert_eq!(w.dtype(), dtype, "{name}: the parameter keeps its dtype");
            for (t, role) in [(&w, "weight"), (&b, "bias")] {
                let key = format!("optim/{name}/{tag}/step{k}/{role}");
                assert_close(&t.to_vec_f64().unwrap(), &fx.get(&key).to_vec_f64().unwrap(), tol, &key);
            }
        }
    }
}

#[test]
fn every_optimizer_matches_pytorch_in_f64() {
    check_against_pytorch(DType::F64, "f64", 1e-12);
}

#[test]
fn every_optimizer_matches_pytorch_in_f32() {
    check_against_pytorch(DType::F32, "f32", 1e-5);
}

// ------------------------------------------------------------------------------ exponential momentum

/// L = ½ Σ aᵢ wᵢ², so g = a ⊙ w. Returns the gradients for the current w.
fn quadratic_grads(w: &Tensor, a: &[f64]) -> GradStore {
    let a = Tensor::from_vec(a.to_vec(), w.dims().to_vec())
        .unwrap()
        .to_dtype(w.dtype())
        .unwrap();
    w.sqr()
        .unwrap()
        .mul(&a)
        .unwrap()
        .sum_all()
        .unwrap()
        .mul_scalar(0.5)
        .unwrap()
        .backward()
        .unwrap()
}

#[test]
fn exponential_momentum_matches_hand_computed_steps() {
    // w₀ = (1, −2), a = (1, 3), α = 0.1, β = 0.9; v ← βv + (1 − β)g, v₀ = 0; w ← w − αv.
    // step 1: g = (1, −6)            v = (0.1, −0.6)         w = (0.99, −1.94)
    // step 2: g = (0.99, −5.82)      v = (0.189, −1.122)     w = (0.9711, −1.8278)
    // step 3: g = (0.9711, −5.4834)  v = (0.26721, −1.55814) w = (0.944379, −1.671986)
    let w = Tensor::from_vec(vec![1.0f64, -2.0], (2,)).unwrap().requires_grad_();
    let cfg = SgdConfig::new(0.1)
        .momentum(0.9)
        .momentum_form(MomentumForm::Exponential);
    let mut opt = Sgd::new(vec![("w".into(), w.clone())], cfg).unwrap();
    let expected = [[0.99, -1.94], [0.9711, -1.8278], [0.944379, -1.671986]];
    for (k, want) in expected.iter().enumerate() {
        opt.step(&quadratic_grads(&w, &[1.0, 3.0])).unwrap();
        assert_close(&w.to_vec_f64().unwrap(), want, 1e-12, &format!("step {}", k + 1));
    }
    // The buffer is the lecture's v after step 3.
    let state = opt.state();
    let (name, v) = &state.tensors[0];
    assert_eq!(name, "w.momentum_buffer");
    assert_close(&v.to_vec_f64().unwrap(), &[0.26721, -1.55814], 1e-12, "v3");
}

#[test]
fn exponential_momentum_with_weight_decay_adds_lambda_w_to_the_gradient() {
    // λ = 0.5: g = a ⊙ w + λw = (1.5, −7), v = 0.2·g = (0.3, −1.4), w = w − 0.1·v.
    let w = Tensor::from_vec(vec![1.0f64, -2.0], (2,)).unwrap().requires_grad_();
    let cfg = SgdConfig::new(0.1)
        .momentum(0.8)
        .weight_decay(0.5)
        .momentum_form(MomentumForm::Exponential);
    let mut opt = Sgd::new(vec![("w".into(), w.clone())], cfg).unwrap();
    opt.step(&quadratic_grads(&w, &[1.0, 3.0])).unwrap();
    assert_close(&w.to_vec_f64().unwrap(), &[0.97, -1.86], 1e-12, "step 1");
}

#[test]
fn weight_decay_is_coupled_l2_shrinking_the_weights() {
    // No momentum: w ← (1 − αλ)·w − α·∂J/∂w.  α = 0.1, λ = 0.5, ∂J/∂w = a ⊙ w.
    let w = Tensor::from_vec(vec![1.0f64, -2.0], (2,)).unwrap().requires_grad_();
    let mut opt = Sgd::new(vec![("w".into(), w.clone())], SgdConfig::new(0.1).weight_decay(0.5)).unwrap();
    opt.step(&quadratic_grads(&w, &[1.0, 3.0])).unwrap();
    let want = [0.95 * 1.0 - 0.1 * 1.0, 0.95 * -2.0 - 0.1 * -6.0];
    assert_close(&w.to_vec_f64().unwrap(), &want, 1e-12, "step 1");
}

// ------------------------------------------------------------------------------ save / restore

/// A tensor's bytes for safetensors.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_bytes(t: &Tensor) -> Bytes {
    let (dtype, data) = match t.dtype() {
        DType::F32 => (
            Dtype::F32,
            t.to_vec::<f32>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::F64 => (
            Dtype::F64,
            t.to_vec::<f64>()
                .unwrap()
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        d => panic!("unexpected dtype {d:?}"),
    };
    Bytes {
        dtype,
        shape: t.dims().to_vec(),
        data,
    }
}

fn from_view(view: &safetensors::tensor::TensorView<'_>) -> Tensor {
    let shape = view.shape().to_vec();
    match view.dtype() {
        Dtype::F32 => Tensor::from_vec(
            view.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape,
        )
        .unwrap(),
        Dtype::F64 => Tensor::from_vec(
            view.data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
            shape,
        )
        .unwrap(),
        d => panic!("unexpected dtype {d:?}"),
    }
}

/// What a checkpoint does: tensors as safetensors data, scalars as header metadata (text).
fn through_safetensors(state: &OptimizerState) -> OptimizerState {
    let bytes: Vec<(String, Bytes)> = state.tensors.iter().map(|(n, t)| (n.clone(), to_bytes(t))).collect();
    let meta: HashMap<String, String> = state
        .scalars
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect();
    let blob = safetensors::serialize(bytes.iter().map(|(n, b)| (n.as_str(), b)), Some(meta)).unwrap();
    let st = SafeTensors::deserialize(&blob).unwrap();
    let tensors = st.tensors().into_iter().map(|(n, v)| (n, from_view(&v))).collect();
    let (_, header) = SafeTensors::read_metadata(&blob).unwrap();
    let scalars: BTreeMap<String, f64> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    OptimizerState { tensors, scalars }
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec_f64().unwrap().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn state_restores_every_optimizer_exactly() {
    let fx = fixture();
    for dtype in [DType::F32, DType::F64] {
        for (name, case) in fx.optim_cases() {
            // Five straight steps.
            let (p, w, b) = setup(&fx, dtype);
            let mut opt = build(&case, &w, &b);
            let mut sched = schedule_of(&case);
            for _ in 0..5 {
                run(opt.as_mut(), &mut sched, &p, &w, &b);
            }

            // Three steps, a checkpoint, a fresh model and optimiser, two more steps.
            let (p2, w2, b2) = setup(&fx, dtype);
            let mut opt2 = build(&case, &w2, &b2);
            let mut sched2 = schedule_of(&case);
            for _ in 0..3 {
                run(opt2.as_mut(), &mut sched2, &p2, &w2, &b2);
            }
            let saved = through_safetensors(&opt2.state());
            let sched_saved = sched2.as_ref().map(|s| s.state());
            let w3 = Tensor::from_vec(w2.to_vec_f64().unwrap(), w2.dims().to_vec())
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
                .requires_grad_();
            let b3 = Tensor::from_vec(b2.to_vec_f64().unwrap(), b2.dims().to_vec())
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
                .requires_grad_();
            drop(opt2);
            let mut opt3 = build(&case, &w3, &b3);
            opt3.load_state(&saved).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut sched3 = schedule_of(&case);
            if let (Some(s), Some(st)) = (sched3.as_mut(), sched_saved) {
                s.load_state(&st).unwrap();
                assert_eq!(s.lr(), opt3.lr(), "{name}: the schedule and the restored lr agree");
            }
            for _ in 0..2 {
                run(opt3.as_mut(), &mut sched3, &p2, &w3, &b3);
            }
            assert_eq!(
                bits(&w3),
                bits(&w),
                "{name} {dtype:?}: weight after 3 + restore + 2 == 5 steps"
            );
            assert_eq!(
                bits(&b3),
                bits(&b),
                "{name} {dtype:?}: bias after 3 + restore + 2 == 5 steps"
            );
        }
    }
}

#[test]
fn state_names_follow_pytorch_buffers() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0], (2,)).unwrap().requires_grad_();
    let named = vec![("layer.weight".to_string(), w.clone())];
    let grads = quadratic_grads(&w, &[1.0, 1.0]);

    let mut adam = Adam::new(named.clone(), AdamConfig::new(0.1).amsgrad(true)).unwrap();
    assert!(adam.state().tensors.is_empty(), "no buffers before the first step");
    adam.step(&grads).unwrap();
    let s = adam.state();
    let mut names: Vec<&str> = s.tensors.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "layer.weight.exp_avg",
            "layer.weight.exp_avg_sq",
            "layer.weight.max_exp_avg_sq"
        ]
    );
    assert_eq!(s.scalars.get("layer.weight.step"), Some(&1.0));
    assert_eq!(s.scalars.get("lr"), Some(&0.1));
    assert!(s.tensors.iter().all(|(_, t)| t.dtype() == DType::F32));

    let mut rms = RMSprop::new(named, RMSpropConfig::new(0.1).momentum(0.5).centered(true)).unwrap();
    rms.step(&grads).unwrap();
    let mut names: Vec<String> = rms.state().tensors.into_iter().map(|(n, _)| n).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "layer.weight.grad_avg",
            "layer.weight.momentum_buffer",
            "layer.weight.square_avg"
        ]
    );
}

#[test]
fn load_state_rejects_a_state_that_does_not_fit() {
    let w = Tensor::from_vec(vec![1.0f64, 2.0], (2,)).unwrap().requires_grad_();
    let named = vec![("w".to_string(), w.clone())];
    let mut opt = Sgd::new(named.clone(), SgdConfig::new(0.1).momentum(0.9)).unwrap();
    opt.step(&quadratic_grads(&w, &[1.0, 1.0])).unwrap();
    let good = opt.state();

    let mut fresh = Sgd::new(named.clone(), SgdConfig::new(0.1).momentum(0.9)).unwrap();
    // A buffer of the wrong shape.
    let mut bad = good.clone();
    bad.tensors[0].1 = Tensor::zeros((3,), DType::F64);
    assert!(fresh.load_state(&bad).unwrap_err().to_string().contains("shape"));
    // A buffer for a parameter this optimiser does not have.
    let mut bad = good.clone();
    bad.tensors[0].0 = "other.momentum_buffer".into();
    assert!(
        fresh
            .load_state(&bad)
            .unwrap_err()
            .to_string()
            .contains("other.momentum_buffer")
    );
    // No learning rate.
    let mut bad = good.clone();
    bad.scalars.clear();
    assert!(fresh.load_state(&bad).is_err());
    // Adam's buffers without a step count.
    let mut adam = Adam::new(named.clone(), AdamConfig::new(0.1)).unwrap();
    adam.step(&quadratic_grads(&w, &[1.0, 1.0])).unwrap();
    let mut bad = adam.state();
    bad.scalars.remove("w.step");
    let mut fresh_adam = Adam::new(named, AdamConfig::new(0.1)).unwrap();
    assert!(fresh_adam.load_state(&bad).is_err());
    // A failed load leaves the optimiser as it was; a good one works.
    fresh.load_state(&good).unwrap();
    assert_eq!(fresh.lr(), 0.1);
}

#[test]
fn state_is_a_snapshot() {
    // The state taken after one step does not move when the optimiser steps again.
    let w = Tensor::from_vec(vec![1.0f64, 2.0], (2,)).unwrap().requires_grad_();
    let mut opt = Adam::new(vec![("w".into(), w.clone())], AdamConfig::new(0.1)).unwrap();
    opt.step(&quadratic_grads(&w, &[1.0, 1.0])).unwrap();
    let s = opt.state();
    let before: Vec<Vec<f64>> = s.tensors.iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect();
    opt.step(&quadratic_grads(&w, &[1.0, 1.0])).unwrap();
    let after: Vec<Vec<f64>> = s.tensors.iter().map(|(_, t)| t.to_vec_f64().unwrap()).collect();
    assert_eq!(before, after);
}

// ------------------------------------------------------------------------------ behaviour

#[test]
fn parameters_keep_identity_and_parameters_without_gradients_are_skipped() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0], (2,)).unwrap().requires_grad_();
    let unused = Tensor::from_vec(vec![5.0f32], (1,)).unwrap().requires_grad_();
    let alias = w.clone();
    let named = vec![("w".to_string(), w.clone()), ("unused".to_string(), unused.clone())];
    let mut opt = Adam::new(named, AdamConfig::new(0.1)).unwrap();
    for _ in 0..3 {
        opt.step(&quadratic_grads(&w, &[1.0, 1.0])).unwrap();
    }
    assert_eq!(alias.id(), w.id());
    assert_eq!(
        alias.to_vec_f64().unwrap(),
        w.to_vec_f64().unwrap(),
        "the model's handle sees the update"
    );
    assert!(w.requires_grad() && w.grad_fn().is_none(), "still a leaf");
    assert_eq!(unused.to_vec::<f32>().unwrap(), vec![5.0], "no gradient, no update");
    let s = opt.state();
    assert!(
        !s.scalars.contains_key("unused.step"),
        "no state for a parameter never stepped"
    );
    assert_eq!(s.scalars.get("w.step"), Some(&3.0));
}

#[test]
fn split_decay_groups_biases_and_1d_parameters_without_decay() {
    let named = vec![
        (
            "features.0.weight".to_string(),
            Tensor::ones((2, 2), DType::F64).requires_grad_(),
        ),
        (
            "features.0.bias".to_string(),
            Tensor::ones((2,), DType::F64).requires_grad_(),
        ),
        (
            "features.1.weight".to_string(),
            Tensor::ones((2,), DType::F64).requires_grad_(),
        ),
    ];
    let groups = ParamGroup::split_decay(named.clone(), 0.5, is_bias_or_norm);
    assert_eq!(groups.len(), 2);
    let names = |g: &ParamGroup| g.params.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&groups[0]), ["features.0.weight"]);
    assert_eq!(names(&groups[1]), ["features.0.bias", "features.1.weight"]);
    assert_eq!((groups[0].weight_decay, groups[1].weight_decay), (Some(0.5), Some(0.0)));

    // Zero gradients: only the decayed group moves, by the factor (1 − αλ).
    let mut opt = Sgd::with_groups(groups, SgdConfig::new(0.1)).unwrap();
    let mut grads = GradStore::default();
    for (_, t) in &named {
        grads.insert(t, Tensor::zeros_like(t).unwrap());
    }
    opt.step(&grads).unwrap();
    assert_close(&named[0].1.to_vec_f64().unwrap(), &[0.95; 4], 1e-15, "decayed");
    assert_eq!(named[1].1.to_vec_f64().unwrap(), vec![1.0; 2]);
    assert_eq!(named[2].1.to_vec_f64().unwrap(), vec![1.0; 2]);
}

#[test]
fn group_learning_rates_follow_the_schedule_in_proportion() {
    let a = Tensor::ones((1,), DType::F64).requires_grad_();
    let b = Tensor::ones((1,), DType::F64).requires_grad_();
    let groups = vec![
        ParamGroup::new(vec![("a".into(), a.clone())]),
        ParamGroup::new(vec![("b".into(), b.clone())]).lr(0.01),
    ];
    let mut opt = Sgd::with_groups(groups, SgdConfig::new(0.1)).unwrap();
    opt.set_lr(0.05); // half the initial rate: group b runs at 0.005
    let mut grads = GradStore::default();
    grads.insert(&a, Tensor::ones((1,), DType::F64));
    grads.insert(&b, Tensor::ones((1,), DType::F64));
    opt.step(&grads).unwrap();
    assert_close(&a.to_vec_f64().unwrap(), &[0.95], 1e-15, "a");
    assert_close(&b.to_vec_f64().unwrap(), &[0.995], 1e-15, "b");
}

// ------------------------------------------------------------------------------ convergence

/// A 2-8-1 tanh network on XOR, full batch, mean squared error.
struct Xor {
    x: Tensor,
    y: Tensor,
    params: Vec<(String, Tensor)>,
}

impl Xor {
    fn new(seed: u64) -> Xor {
        let mut g = Generator::seed_from_u64(seed);
        let mut p = |name: &str, shape: (usize, usize), scale: f64| {
            let t = Tensor::normal_with(0.0, scale, shape, DType::F32, &mut g).unwrap();
            (name.to_string(), t.requires_grad_())
        };
        let params = vec![
            p("0.weight", (2, 8), 1.0),
            p("0.bias", (1, 8), 0.1),
            p("2.weight", (8, 1), 0.5),
            p("2.bias", (1, 1), 0.1),
        ];
        Xor {
            x: Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], (4, 2)).unwrap(),
            y: Tensor::from_vec(vec![0f32, 1., 1., 0.], (4, 1)).unwrap(),
            params,
        }
    }

    fn loss(&self) -> Tensor {
        let p = |i: usize| &self.params[i].1;
        let h = self.x.matmul(p(0)).unwrap().add(p(1)).unwrap().tanh().unwrap();
        let out = h.matmul(p(2)).unwrap().add(p(3)).unwrap();
        out.sub(&self.y).unwrap().sqr().unwrap().mean_all().unwrap()
    }

    fn train(&self, opt: &mut dyn Optimizer, steps: usize) -> (f64, f64) {
        let first = self.loss().item().unwrap();
        for _ in 0..steps {
            let grads = self.loss().backward().unwrap();
            opt.step(&grads).unwrap();
        }
        (first, self.loss().item().unwrap())
    }
}

#[test]
fn every_optimizer_learns_xor() {
    type Make = fn(Vec<(String, Tensor)>) -> Box<dyn Optimizer>;
    let cases: Vec<(&str, Make)> = vec![
        ("sgd", |p| Box::new(Sgd::new(p, SgdConfig::new(0.2)).unwrap())),
        ("sgd momentum", |p| {
            Box::new(Sgd::new(p, SgdConfig::new(0.1).momentum(0.9)).unwrap())
        }),
        ("sgd nesterov", |p| {
            Box::new(Sgd::new(p, SgdConfig::new(0.1).momentum(0.9).nesterov(true)).unwrap())
        }),
        ("sgd exponential", |p| {
            let cfg = SgdConfig::new(1.0)
                .momentum(0.9)
                .momentum_form(MomentumForm::Exponential);
            Box::new(Sgd::new(p, cfg).unwrap())
        }),
        ("adam", |p| Box::new(Adam::new(p, AdamConfig::new(0.05)).unwrap())),
        ("adam amsgrad", |p| {
            Box::new(Adam::new(p, AdamConfig::new(0.05).amsgrad(true)).unwrap())
        }),
        ("adamw", |p| Box::new(AdamW::new(p, AdamWConfig::new(0.05)).unwrap())),
        ("rmsprop", |p| {
            Box::new(RMSprop::new(p, RMSpropConfig::new(0.01)).unwrap())
        }),
        ("rmsprop centered momentum", |p| {
            Box::new(RMSprop::new(p, RMSpropConfig::new(0.005).momentum(0.5).centered(true)).unwrap())
        }),
    ];
    for (name, make) in cases {
        for seed in 0..3 {
            let net = Xor::new(seed);
            let mut opt = make(net.params.clone());
            let (first, last) = net.train(opt.as_mut(), 600);
            assert!(
                last < 0.01,
                "{name}, seed {seed}: XOR loss {first} -> {last}, expected < 0.01"
            );
        }
    }
}

#[test]
fn batch_gradient_descent_solves_an_ill_conditioned_quadratic() {
    // L = ½ Σ aᵢ wᵢ² with condition number 100: plain GD needs α < 2/100, and the flattest
    // direction then shrinks by only (1 − α) per step; momentum converges several times faster.
    // The exponential form with α/(1 − β) follows exactly the PyTorch form's trajectory.
    let a = [1.0, 10.0, 100.0];
    let solve = |cfg: SgdConfig, steps: usize| {
        let w = Tensor::from_vec(vec![1.0f64, 1.0, 1.0], (3,)).unwrap().requires_grad_();
        let mut opt = Sgd::new(vec![("w".into(), w.clone())], cfg).unwrap();
        for _ in 0..steps {
            opt.step(&quadratic_grads(&w, &a)).unwrap();
        }
        w.to_vec_f64().unwrap().iter().map(|x| x.abs()).fold(0.0, f64::max)
    };
    assert!(solve(SgdConfig::new(0.015), 1500) < 1e-8);
    assert!(
        solve(SgdConfig::new(0.015), 300) > 1e-3,
        "plain GD is still far after 300 steps"
    );
    assert!(solve(SgdConfig::new(0.01).momentum(0.8), 300) < 1e-8);
    assert!(solve(SgdConfig::new(0.01).momentum(0.8).nesterov(true), 300) < 1e-8);
    assert!(
        solve(
            SgdConfig::new(0.05)
                .momentum(0.8)
                .momentum_form(MomentumForm::Exponential),
            300
        ) < 1e-8
    );
}

// ------------------------------------------------------------------------------ errors

#[test]
fn bad_hyper_parameters_are_errors() {
    let p = || vec![("w".to_string(), Tensor::ones((2,), DType::F32).requires_grad_())];
    let sgd = |cfg: SgdConfig| Sgd::new(p(), cfg).err().map(|e| e.to_string());
    assert!(sgd(SgdConfig::new(-0.1)).unwrap().contains("lr"));
    assert!(sgd(SgdConfig::new(f64::NAN)).is_some());
    assert!(sgd(SgdConfig::new(0.1).momentum(1.0)).unwrap().contains("momentum"));
    assert!(sgd(SgdConfig::new(0.1).momentum(-0.5)).is_some());
    assert!(sgd(SgdConfig::new(0.1).nesterov(true)).unwrap().contains("Nesterov"));
    assert!(sgd(SgdConfig::new(0.1).momentum(0.9).dampening(0.1).nesterov(true)).is_some());
    assert!(sgd(SgdConfig::new(0.1).weight_decay(-1.0)).is_some());
    assert!(
        sgd(SgdConfig::new(0.1)
            .momentum(0.9)
            .dampening(0.5)
            .momentum_form(MomentumForm::Exponential))
        .is_some()
    );
    assert!(sgd(SgdConfig::new(0.1).momentum(0.9)).is_none());

    assert!(Adam::new(p(), AdamConfig::new(0.1).betas(1.0, 0.999)).is_err());
    assert!(Adam::new(p(), AdamConfig::new(0.1).betas(0.9, -0.1)).is_err());
    assert!(Adam::new(p(), AdamConfig::new(0.1).eps(-1.0)).is_err());
    assert!(AdamW::new(p(), AdamWConfig::new(0.1).weight_decay(-0.1)).is_err());
    assert!(RMSprop::new(p(), RMSpropConfig::new(0.1).alpha(1.5)).is_err());
    assert!(RMSprop::new(p(), RMSpropConfig::new(0.1).momentum(1.0)).is_err());

    // Groups: a bad override, a name twice, a tensor twice, an integer parameter.
    let t = Tensor::ones((2,), DType::F32).requires_grad_();
    let g = |v: Vec<(&str, Tensor)>| ParamGroup::new(v.into_iter().map(|(n, t)| (n.to_string(), t)).collect());
    assert!(Sgd::with_groups(vec![g(vec![("a", t.clone())]).lr(-1.0)], SgdConfig::new(0.1)).is_err());
    let two = Tensor::ones((2,), DType::F32).requires_grad_();
    assert!(Sgd::with_groups(vec![g(vec![("a", t.clone()), ("a", two)])], SgdConfig::new(0.1)).is_err());
    assert!(
        Sgd::with_groups(
            vec![g(vec![("a", t.clone())]), g(vec![("b", t.clone())])],
            SgdConfig::new(0.1)
        )
        .is_err()
    );
    assert!(Sgd::new(vec![("i".into(), Tensor::ones((2,), DType::I64))], SgdConfig::new(0.1)).is_err());
}

#[test]
fn a_bad_learning_rate_or_gradient_fails_the_step_without_panicking() {
    let w = Tensor::ones((2,), DType::F32).requires_grad_();
    let mut opt = Sgd::new(vec![("w".into(), w.clone())], SgdConfig::new(0.1)).unwrap();
    let grads = quadratic_grads(&w, &[1.0, 1.0]);
    opt.set_lr(-1.0);
    assert!(opt.step(&grads).is_err());
    opt.set_lr(f64::INFINITY);
    assert!(opt.step(&grads).is_err());
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![1.0, 1.0], "nothing moved");
    opt.set_lr(0.1);
    let mut wrong = GradStore::default();
    wrong.insert(&w, Tensor::ones((3,), DType::F32));
    assert!(opt.step(&wrong).unwrap_err().to_string().contains("does not match"));
    opt.step(&grads).unwrap();
}

// ------------------------------------------------------------------------------ clipping

#[test]
fn clip_grad_norm_scales_by_the_global_norm_like_pytorch() {
    // Gradients (3, 4) and (12): global norm 13.
    let a = Tensor::zeros((2,), DType::F32).requires_grad_();
    let b = Tensor::zeros((1,), DType::F32).requires_grad_();
    let unused = Tensor::zeros((1,), DType::F32).requires_grad_();
    let mut grads = GradStore::default();
    grads.insert(&a, Tensor::from_vec(vec![3f32, 4.], (2,)).unwrap());
    grads.insert(&b, Tensor::from_vec(vec![12f32], (1,)).unwrap());
    let params = [a.clone(), b.clone(), unused, a.clone()]; // a listed twice counts once
    let norm = clip_grad_norm(&mut grads, &params, 6.5).unwrap();
    assert!((norm - 13.0).abs() < 1e-12);
    // torch.nn.utils.clip_grad_norm_: coef = 6.5 / (13 + 1e-6)
    let coef = 6.5 / (13.0 + 1e-6);
    assert_close(
        &grads.get(&a).unwrap().to_vec_f64().unwrap(),
        &[3.0 * coef, 4.0 * coef],
        1e-7,
        "a",
    );
    assert_close(&grads.get(&b).unwrap().to_vec_f64().unwrap(), &[12.0 * coef], 1e-7, "b");
    assert_eq!(grads.get(&a).unwrap().dtype(), DType::F32);

    // Below the limit: untouched, the norm still reported.
    let norm = clip_grad_norm(&mut grads, &params, 100.0).unwrap();
    assert!((norm - 6.5).abs() < 1e-5);
    assert_close(
        &grads.get(&b).unwrap().to_vec_f64().unwrap(),
        &[12.0 * coef],
        1e-7,
        "b unchanged",
    );

    assert!(clip_grad_norm(&mut grads, &params, -1.0).is_err());
    assert!(clip_grad_norm(&mut grads, &params, f64::NAN).is_err());
    assert_eq!(clip_grad_norm(&mut GradStore::default(), &params, 1.0).unwrap(), 0.0);
}

#[test]
fn clip_grad_value_clamps_each_element() {
    let a = Tensor::zeros((4,), DType::F64).requires_grad_();
    let mut grads = GradStore::default();
    grads.insert(&a, Tensor::from_vec(vec![-3.0f64, -0.5, 0.25, 9.0], (4,)).unwrap());
    clip_grad_value(&mut grads, std::slice::from_ref(&a), 1.0).unwrap();
    assert_eq!(
        grads.get(&a).unwrap().to_vec::<f64>().unwrap(),
        vec![-1.0, -0.5, 0.25, 1.0]
    );
    assert!(clip_grad_value(&mut grads, &[a], -1.0).is_err());
}

#[test]
fn load_state_rejects_buffers_the_configuration_does_not_use() {
    let w = Tensor::from_vec(vec![1.0f64, 2.0], (2,)).unwrap().requires_grad_();
    let named = vec![("w".to_string(), w.clone())];
    let grads = quadratic_grads(&w, &[1.0, 1.0]);

    let mut with_momentum = Sgd::new(named.clone(), SgdConfig::new(0.1).momentum(0.9)).unwrap();
    with_momentum.step(&grads).unwrap();
    let mut plain = Sgd::new(named.clone(), SgdConfig::new(0.1)).unwrap();
    assert!(plain.load_state(&with_momentum.state()).is_err());

    let mut ams = Adam::new(named.clone(), AdamConfig::new(0.1).amsgrad(true)).unwrap();
    ams.step(&grads).unwrap();
    let mut adam = Adam::new(named.clone(), AdamConfig::new(0.1)).unwrap();
    assert!(adam.load_state(&ams.state()).is_err());
    // The other way round, a buffer is missing.
    let mut ams2 = Adam::new(named.clone(), AdamConfig::new(0.1).amsgrad(true)).unwrap();
    adam.step(&grads).unwrap();
    assert!(ams2.load_state(&adam.state()).is_err());

    let mut centered = RMSprop::new(named.clone(), RMSpropConfig::new(0.1).centered(true)).unwrap();
    centered.step(&grads).unwrap();
    let mut rms = RMSprop::new(named, RMSpropConfig::new(0.1)).unwrap();
    assert!(rms.load_state(&centered.state()).is_err());
}
