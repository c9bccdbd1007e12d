//! The guard of the training loop: a step whose loss or gradients are not finite ends the run
//! with a diagnosis of where the trouble came from.

use std::sync::Arc;

use nabla_data::csv::{TabularDataset, Task};
use nabla_data::{DataLoader, LoaderConfig};
use nabla_train::{TrainConfig, Trainer};

fn table(rows: usize, poison: Option<usize>) -> TabularDataset {
    let mut features: Vec<f32> = (0..rows * 2).map(|i| (i % 7) as f32 / 7.0).collect();
    if let Some(r) = poison {
        features[2 * r] = f32::NAN;
    }
    TabularDataset {
        features,
        feature_names: vec!["a".into(), "b".into()],
        target_name: "y".into(),
        task: Task::Classification,
        labels: (0..rows as i64).map(|i| i % 2).collect(),
        targets: Vec::new(),
        classes: vec!["no".into(), "yes".into()],
    }
}

fn trainer(ds: TabularDataset, out: &str) -> Trainer {
    nabla_core::manual_seed(0);
    let config = TrainConfig {
        model: "mlp:4".into(),
        epochs: 2,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let model = nabla_models::build_model(
        "mlp:4",
        &nabla_models::ModelSpec {
            input: [2, 1, 1],
            classes: 2,
        },
    )
    .unwrap();
    let loader = |shuffle| {
        DataLoader::new(
            Arc::new(ds.clone()),
            None,
            LoaderConfig {
                batch_size: 4,
                shuffle,
                drop_last: false,
                seed: 1,
                workers: 1,
                prefetch: 2,
                shard: (0, 1),
            },
        )
    };
    let data = nabla_train::data::RunData {
        train: loader(false),
        val: None,
        test: loader(false),
        classes: vec!["no".into(), "yes".into()],
        input: [2, 1, 1],
        card: Default::default(),
    };
    let out = std::env::temp_dir().join(format!("nabla-guard-{out}-{}", std::process::id()));
    Trainer::new(config, model, data, out).unwrap()
}

#[test]
fn a_nan_in_the_data_is_blamed_on_the_data_not_the_learning_rate() {
    // Row 9 is in the third batch of the first epoch.
    let mut t = trainer(table(16, Some(9)), "data");
    let e = t.run((0, 0, Default::default())).unwrap_err().to_string();
    assert!(e.starts_with("train: epoch 1 step 3: the input batch holds NaN"), "{e}");
    assert!(!e.contains("--lr"), "{e}");
    assert!(e.contains("No checkpoint was saved before this step"), "{e}");
}

#[test]
fn after_a_saved_epoch_the_message_names_the_checkpoint() {
    let mut clean = trainer(table(16, None), "later");
    assert_eq!(clean.run((0, 0, Default::default())).unwrap().epochs, 2);
    let saved = clean.checkpoint_path();
    assert!(saved.exists());
    let mut t = trainer(table(16, Some(0)), "later");
    let e = t.run((0, 0, Default::default())).unwrap_err().to_string();
    assert!(
        e.contains(&format!("The last good state is {}", saved.display())),
        "{e}"
    );
}
