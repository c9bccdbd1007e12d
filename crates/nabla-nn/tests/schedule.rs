//! Learning-rate schedules.
//!
//! * PyTorch reference sequences: `tests/fixtures/optim.safetensors`, written by
//!   `tools/fixtures/optim.py`: for every case, the rate at epoch 0 and after each of 12
//!   `scheduler.step()` calls; the case's metadata holds its PyTorch call and arguments.
//! * State save/restore in the middle of every schedule; bad arguments are errors.

use std::collections::{BTreeMap, HashMap};

use nabla_nn::schedule::{
    ConstantLR, CosineAnnealingLR, ExponentialLR, LinearLR, LinearWarmup, LrScheduler, MultiStepLR, PlateauConfig,
    PlateauMode, ReduceLROnPlateau, StepLR, ThresholdMode,
};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/optim.safetensors");

/// (case name, metadata, the 13 PyTorch learning rates) for every schedule case.
fn cases() -> Vec<(String, Value, Vec<f64>)> {
    let bytes = std::fs::read(FIXTURE).expect("fixture missing: run python3 tools/make_fixtures.py optim");
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
    let mut out = Vec::new();
    for (key, json) in meta {
        let Some(name) = key.strip_prefix("schedule/") else {
            continue;
        };
        let view = st.tensor(&format!("schedule/{name}/lr")).unwrap();
        assert_eq!(view.dtype(), Dtype::F64);
        let lrs = view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.push((name.to_string(), serde_json::from_str(&json).unwrap(), lrs));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 10,
        "expected the schedule cases in the fixture, got {}",
        out.len()
    );
    out
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no number `{key}` in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no integer `{key}` in {v}"))
}

/// The schedule a fixture case describes.
fn build(case: &Value, base_lr: f64) -> Box<dyn LrScheduler> {
    match case["kind"].as_str().unwrap() {
        "constant" => Box::new(ConstantLR::new(base_lr, f(case, "factor"), u(case, "total_iters")).unwrap()),
        "step" => Box::new(StepLR::new(base_lr, u(case, "step_size"), f(case, "gamma")).unwrap()),
        "multistep" => {
            let ms: Vec<u64> = case["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect();
            Box::new(MultiStepLR::new(base_lr, &ms, f(case, "gamma")).unwrap())
        }
        "exponential" => Box::new(ExponentialLR::new(base_lr, f(case, "gamma")).unwrap()),
        "cosine" => Box::new(CosineAnnealingLR::new(base_lr, u(case, "t_max"), f(case, "eta_min")).unwrap()),
        "linear" => Box::new(
            LinearLR::new(
                base_lr,
                f(case, "start_factor"),
                f(case, "end_factor"),
                u(case, "total_iters"),
            )
            .unwrap(),
        ),
        "warmup" => {
            let inner = build(&case["inner"], base_lr);
            Box::new(LinearWarmup::new(base_lr, f(case, "start_factor"), u(case, "warmup"), inner).unwrap())
        }
        "plateau" => {
            let mode = match case["mode"].as_str().unwrap() {
                "min" => PlateauMode::Min,
                _ => PlateauMode::Max,
            };
            let tmode = match case["threshold_mode"].as_str().unwrap() {
                "rel" => ThresholdMode::Rel,
                _ => ThresholdMode::Abs,
            };
            let cfg = PlateauConfig::default()
                .mode(mode)
                .factor(f(case, "factor"))
                .patience(u(case, "patience"))
                .threshold(f(case, "threshold"), tmode)
                .cooldown(u(case, "cooldown"))
                .min_lr(f(case, "min_lr"));
            Box::new(ReduceLROnPlateau::new(base_lr, cfg).unwrap())
        }
        k => panic!("unknown schedule kind {k}"),
    }
}

fn metrics(case: &Value) -> Vec<Option<f64>> {
    match case.get("metrics") {
        Some(m) => m.as_array().unwrap().iter().map(|x| x.as_f64()).collect(),
        None => vec![None; 12],
    }
}

#[track_caller]
fn assert_lrs(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (e, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{name}: epoch {e}: got {g}, expected {w}\n  got:      {got:?}\n  expected: {want:?}"
        );
    }
}

#[test]
fn every_schedule_matches_pytorch() {
    for (name, case, want) in cases() {
        let mut s = build(&case, f(&case, "base_lr"));
        let mut got = vec![s.lr()];
        for m in metrics(&case) {
            let lr = s.step(m);
            assert_eq!(lr, s.lr(), "{name}: step returns the new rate");
            got.push(lr);
        }
        assert_lrs(&name, &got, &want);
    }
}

#[test]
fn every_schedule_restores_its_state_mid_run() {
    for (name, case, want) in cases() {
        let base = f(&case, "base_lr");
        let ms = metrics(&case);
        for cut in [0, 1, 3, 5, 9] {
            let mut s = build(&case, base);
            for &m in &ms[..cut] {
                s.step(m);
            }
            let saved: BTreeMap<String, f64> = s.state();
            drop(s);
            let mut fresh = build(&case, base);
            fresh.load_state(&saved).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut got = want[..cut].to_vec();
            got.push(fresh.lr());
            for &m in &ms[cut..] {
                got.push(fresh.step(m));
            }
            assert_lrs(&format!("{name} restored after {cut}"), &got, &want);
        }
    }
}

#[test]
fn hand_computed_sequences() {
    // StepLR(0.1, step 2, γ 0.1): 0.1, 0.1, 0.01, 0.01, 0.001.
    let mut s = StepLR::new(0.1, 2, 0.1).unwrap();
    let lrs: Vec<f64> = std::iter::once(s.lr()).chain((0..4).map(|_| s.step(None))).collect();
    assert_lrs("step", &lrs, &[0.1, 0.1, 0.01, 0.01, 0.001]);

    // Cosine from 1 to 0 over 4 epochs: (1 + cos(πt/4)) / 2.
    let mut s = CosineAnnealingLR::new(1.0, 4, 0.0).unwrap();
    let lrs: Vec<f64> = std::iter::once(s.lr()).chain((0..4).map(|_| s.step(None))).collect();
    let h = 0.5f64.sqrt() / 2.0;
    assert_lrs("cosine", &lrs, &[1.0, 0.5 + h, 0.5, 0.5 - h, 0.0]);

    // Warm-up over 4 steps from 0 ... 1 (start 0.25) then constant.
    let inner = Box::new(ConstantLR::constant(1.0).unwrap());
    let mut s = LinearWarmup::new(1.0, 0.25, 4, inner).unwrap();
    let lrs: Vec<f64> = std::iter::once(s.lr()).chain((0..6).map(|_| s.step(None))).collect();
    assert_lrs("warmup", &lrs, &[0.25, 0.4375, 0.625, 0.8125, 1.0, 1.0, 1.0]);

    // No warm-up: the inner schedule alone.
    let mut s = LinearWarmup::new(1.0, 0.5, 0, Box::new(ExponentialLR::new(1.0, 0.5).unwrap())).unwrap();
    let lrs: Vec<f64> = std::iter::once(s.lr()).chain((0..2).map(|_| s.step(None))).collect();
    assert_lrs("warmup 0", &lrs, &[1.0, 0.5, 0.25]);
}

#[test]
fn plateau_without_a_metric_changes_nothing_and_respects_min_lr() {
    let cfg = PlateauConfig::default().patience(0).factor(0.5).min_lr(0.3);
    let mut s = ReduceLROnPlateau::new(1.0, cfg).unwrap();
    assert_eq!(s.step(None), 1.0);
    assert_eq!(s.state()["epoch"], 0.0);
    assert_eq!(s.step(Some(1.0)), 1.0); // first metric: an improvement on +inf
    assert_eq!(s.step(Some(1.0)), 0.5);
    assert_eq!(
        s.step(Some(f64::NAN)),
        0.3,
        "NaN is a bad epoch; the rate stops at min_lr"
    );
    assert_eq!(s.step(Some(2.0)), 0.3);
    assert_eq!(s.best(), 1.0);
}

#[test]
fn bad_arguments_are_errors() {
    assert!(StepLR::new(0.1, 0, 0.5).is_err());
    assert!(StepLR::new(-0.1, 1, 0.5).is_err());
    assert!(ExponentialLR::new(0.1, f64::NAN).is_err());
    assert!(CosineAnnealingLR::new(0.1, 0, 0.0).is_err());
    assert!(ConstantLR::new(0.1, 1.5, 3).is_err());
    assert!(LinearLR::new(0.1, 0.0, 1.0, 3).is_err());
    assert!(LinearLR::new(0.1, 0.5, 1.0, 0).is_err());
    assert!(LinearWarmup::new(0.1, 1.5, 3, Box::new(ConstantLR::constant(0.1).unwrap())).is_err());
    assert!(ReduceLROnPlateau::new(0.1, PlateauConfig::default().factor(1.0)).is_err());
    assert!(ReduceLROnPlateau::new(0.1, PlateauConfig::default().factor(0.0)).is_err());
    assert!(ReduceLROnPlateau::new(0.1, PlateauConfig::default().min_lr(-1.0)).is_err());

    // A state from another schedule or with a broken counter.
    let mut s = StepLR::new(0.1, 2, 0.5).unwrap();
    assert!(s.load_state(&BTreeMap::new()).is_err());
    assert!(s.load_state(&BTreeMap::from([("epoch".to_string(), -1.0)])).is_err());
    assert!(s.load_state(&BTreeMap::from([("epoch".to_string(), 1.5)])).is_err());
    let mut p = ReduceLROnPlateau::new(0.1, PlateauConfig::default()).unwrap();
    assert!(p.load_state(&s.state()).is_err());
}
