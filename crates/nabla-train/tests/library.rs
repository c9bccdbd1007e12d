//! The trainer and the ensemble as a library: what a program that does not go through the
//! command line sees. Expected values are worked out here in plain f64 arithmetic.

use nabla_core::Tensor;
use nabla_data::transforms::Normalize;
use nabla_data::tta::TtaMode;
use nabla_data::{DataLoader, ImageDataset, LoaderConfig, TabularDataset, Task};
use nabla_nn::{Flatten, Linear, Module, Sequential};
use nabla_train::checkpoint::{Checkpoint, CheckpointMeta};
use nabla_train::ensemble::{self, Member};
use nabla_train::observe::RunFiles;
use nabla_train::{TrainConfig, Trainer};
use std::sync::Arc;

/// A linear model on 1×1×2 images with weights `w` (2 classes × 2 pixels) and bias `b`.
fn linear(w: [f32; 4], b: [f32; 2]) -> Box<dyn Module> {
    let mut fc = Linear::new(2, 2).unwrap();
    fc.weight = Tensor::from_vec(w.to_vec(), (2, 2)).unwrap();
    fc.bias = Some(Tensor::from_vec(b.to_vec(), (2,)).unwrap());
    Box::new(Sequential::new().add(Flatten).add(fc))
}

fn member(w: [f32; 4], b: [f32; 2], weight: f64) -> Member {
    let meta = CheckpointMeta {
        format: 1,
        config: TrainConfig::default(),
        epoch: 1,
        next_batch: 0,
        partial: Default::default(),
        optimizer_scalars: Default::default(),
        schedule: Default::default(),
        rng: [0; 4],
        history: Vec::new(),
        input: [1, 1, 2],
        classes: vec!["a".into(), "b".into()],
        card: Default::default(),
    };
    Member {
        name: "m".into(),
        foreign: false,
        model: linear(w, b),
        ck: Checkpoint {
            meta,
            model: Vec::new(),
            optimizer: Vec::new(),
        },
        normalize: Normalize {
            mean: vec![0.5],
            std: vec![0.25],
        },
        weight,
    }
}

#[test]
fn an_ensemble_averages_the_members_probabilities_by_weight() {
    let pixels = [0u8, 255, 255, 51, 102, 204];
    let labels = [1i64, 0, 0];
    let test = ImageDataset::new(
        pixels.to_vec(),
        [1, 1, 2],
        labels.to_vec(),
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    let ws = [[1.0f32, -2.0, 0.5, 0.5], [-1.0, 1.0, 2.0, 0.0]];
    let bs = [[0.1f32, -0.1], [0.0, 0.3]];
    let shares = [0.25, 0.75];
    let members: Vec<Member> = (0..2).map(|m| member(ws[m], bs[m], shares[m])).collect();
    let eval = ensemble::evaluate(&members, &test, TtaMode::Center, 2, nabla_core::Device::Cpu).unwrap();

    let (mut loss, mut correct) = (0.0, 0);
    for (i, &y) in labels.iter().enumerate() {
        let x: Vec<f64> = (0..2)
            .map(|j| (pixels[2 * i + j] as f64 / 255.0 - 0.5) / 0.25)
            .collect();
        let mut p = [0.0f64; 2];
        for m in 0..2 {
            let z: Vec<f64> = (0..2)
                .map(|k| ws[m][2 * k] as f64 * x[0] + ws[m][2 * k + 1] as f64 * x[1] + bs[m][k] as f64)
                .collect();
            let e: Vec<f64> = z.iter().map(|v| v.exp()).collect();
            for k in 0..2 {
                p[k] += shares[m] * e[k] / (e[0] + e[1]);
            }
        }
        loss -= p[y as usize].ln();
        correct += ((p[1] > p[0]) as i64 == y) as usize;
    }
    assert_eq!(eval.count, 3);
    assert!(
        (eval.loss() - loss / 3.0).abs() < 1e-5,
        "{} vs {}",
        eval.loss(),
        loss / 3.0
    );
    assert!((eval.top1() - correct as f64 / 3.0).abs() < 1e-12);
}

#[test]
fn members_trained_on_other_data_are_refused() {
    let mut other = member([0.0; 4], [0.0; 2], 0.5);
    other.ck.meta.classes.push("c".into());
    other.name = "other".into();
    let e = ensemble::check_same_data(&[member([0.0; 4], [0.0; 2], 0.5), other]).unwrap_err();
    assert!(
        e.to_string().contains("m and other were trained on different data"),
        "{e}"
    );
}

/// y = [x₀ > x₁] on 200 rows: a linear model separates it.
fn separable(rows: usize) -> TabularDataset {
    let mut rng = nabla_core::Generator::seed_from_u64(7);
    let features: Vec<f32> = (0..rows * 2).map(|_| rng.next_f64() as f32).collect();
    TabularDataset {
        labels: features.chunks(2).map(|r| (r[0] > r[1]) as i64).collect(),
        features,
        feature_names: vec!["x0".into(), "x1".into()],
        target_name: "y".into(),
        task: Task::Classification,
        targets: Vec::new(),
        classes: vec!["no".into(), "yes".into()],
    }
}

#[test]
fn a_trainer_built_from_parts_learns_and_writes_what_its_observers_write() {
    nabla_core::manual_seed(0);
    let dir = tempfile::tempdir().unwrap();
    let loader = |ds: TabularDataset, shuffle| {
        let cfg = LoaderConfig {
            batch_size: 20,
            shuffle,
            drop_last: false,
            seed: 1,
            workers: 1,
            prefetch: 2,
            shard: (0, 1),
        };
        DataLoader::new(Arc::new(ds), None, cfg)
    };
    let data = nabla_train::data::RunData {
        train: loader(separable(200), true),
        val: None,
        test: loader(separable(100), false),
        classes: vec!["no".into(), "yes".into()],
        input: [2, 1, 1],
        card: Default::default(),
    };
    let config = TrainConfig {
        model: "logistic".into(),
        epochs: 3,
        batch_size: 20,
        lr: 0.5,
        warmup_epochs: 0,
        ..TrainConfig::default()
    };
    let model: Box<dyn Module> = Box::new(Linear::new(2, 2).unwrap());
    let mut trainer = Trainer::new(config, model, data, dir.path()).unwrap();
    trainer.observers.push(Box::new(RunFiles {
        out_dir: dir.path().to_path_buf(),
        verbose: false,
    }));
    let summary = trainer.run((0, 0, Default::default())).unwrap();
    assert!(summary.test_top1 > 0.9, "{summary:?}");
    let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 1 + 3, "{metrics}");
    // The confusion matrix sums to the 100 test rows.
    let confusion = std::fs::read_to_string(dir.path().join("confusion.csv")).unwrap();
    let total: usize = confusion
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').skip(1).map(|v| v.parse::<usize>().unwrap()))
        .sum();
    assert_eq!(total, 100);
    // The top-1 the summary reports is the confusion matrix's diagonal.
    let diagonal: usize = confusion
        .lines()
        .skip(1)
        .enumerate()
        .map(|(i, l)| l.split(',').nth(i + 1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert!((summary.test_top1 - diagonal as f64 / 100.0).abs() < 1e-12);
    assert!(dir.path().join("checkpoint.safetensors").exists() && dir.path().join("summary.json").exists());
}
