//! A checkpoint is enough to use a model: from another folder, after the architecture file or
//! the training data has gone, on tables as on images.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs nabla in `dir`, whatever its exit status.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .current_dir(dir)
        .env("NABLA_NUM_THREADS", "1")
        .output()
        .expect("the nabla binary runs")
}

/// Runs nabla in `dir` and checks that it succeeded.
fn nabla_in(dir: &Path, args: &[&str]) -> Output {
    let o = run_in(dir, args);
    assert!(
        o.status.success(),
        "nabla {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("portable-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

fn table(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/tabular")
        .join(name)
}

#[test]
fn a_table_model_evaluates_and_predicts_from_another_folder() {
    let d = scratch("table");
    // Trained with a relative path, from the data's own folder.
    let data_dir = table("");
    let run = d.join("run");
    nabla_in(
        &data_dir,
        &[
            "train",
            "--quiet",
            "--dataset",
            "csv:breast_cancer.csv",
            "--target",
            "malignant",
            "--model",
            "mlp:16",
            "--optimizer",
            "adam",
            "--epochs",
            "3",
            "--out",
            s(&run),
        ],
    );
    let elsewhere = d.join("elsewhere");
    let ck = run.join("checkpoint.safetensors");
    // The test rows of the training split, found again: the same top-1 as training reported.
    let e = json(&nabla_in(&elsewhere, &["eval", "--checkpoint", s(&ck), "--json"]));
    assert_eq!(e["top1"], summary(&run)["test_top1"]);
    assert_eq!(e["samples"], 114);
    // New rows, columns in another order and without the target: predicted by name.
    let text = std::fs::read_to_string(table("breast_cancer.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.take(3).map(|l| l.split(',').collect()).collect();
    let keep: Vec<usize> = (0..header.len()).rev().filter(|&i| header[i] != "malignant").collect();
    let mut csv = keep.iter().map(|&i| header[i]).collect::<Vec<_>>().join(",") + "\n";
    for r in &rows {
        csv += &(keep.iter().map(|&i| r[i]).collect::<Vec<_>>().join(",") + "\n");
    }
    std::fs::write(elsewhere.join("rows.csv"), csv).unwrap();
    let p = json(&nabla_in(
        &elsewhere,
        &["predict", "--checkpoint", s(&ck), "rows.csv", "--json"],
    ));
    assert_eq!(p.as_array().unwrap().len(), 3);
    for row in p.as_array().unwrap() {
        let probs: f64 = row["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["probability"].as_f64().unwrap())
            .sum();
        assert!((probs - 1.0).abs() < 1e-6, "{row}");
    }
    // The same rows with their target, as a table to evaluate on.
    std::fs::write(
        elsewhere.join("labelled.csv"),
        text.lines().take(21).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let e = json(&nabla_in(
        &elsewhere,
        &[
            "eval",
            "--checkpoint",
            s(&ck),
            "--dataset",
            "csv:labelled.csv",
            "--json",
        ],
    ));
    assert_eq!(e["samples"], 20);
}

#[test]
fn a_regression_checkpoint_loads_evaluates_and_predicts_in_target_units() {
    let d = scratch("regression");
    let run = d.join("run");
    let ds = format!("csv:{}", s(&table("diabetes.csv")));
    nabla_in(
        &d,
        &[
            "train",
            "--quiet",
            "--dataset",
            &ds,
            "--target",
            "progression",
            "--regression",
            "--model",
            "mlp:32",
            "--optimizer",
            "adam",
            "--lr",
            "0.003",
            "--epochs",
            "2",
            "--out",
            s(&run),
        ],
    );
    let ck = run.join("checkpoint.safetensors");
    // Plots that fit the task: predicted against true, no accuracy or confusion matrix.
    assert!(run.join("predictions.png").exists() && run.join("loss.png").exists());
    for absent in ["accuracy.png", "confusion.png", "confusion.csv"] {
        assert!(!run.join(absent).exists(), "{absent}");
    }
    // The history's accuracy is NaN for regression: written as JSON null, it must read back.
    let e = json(&nabla_in(
        &d.join("elsewhere"),
        &["eval", "--checkpoint", s(&ck), "--json"],
    ));
    let (loss, reported) = (
        e["loss"].as_f64().unwrap(),
        summary(&run)["test_loss"].as_f64().unwrap(),
    );
    assert!((loss - reported).abs() <= 1e-9 * reported, "{loss} vs {reported}");
    let text = std::fs::read_to_string(table("diabetes.csv")).unwrap();
    std::fs::write(d.join("rows.csv"), text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let p = json(&nabla_in(
        &d,
        &["predict", "--checkpoint", s(&ck), "rows.csv", "--json"],
    ));
    for row in p.as_array().unwrap() {
        // Diabetes progression is 25..346 in the data; a standardised output would be near 0.
        let v = row["value"].as_f64().unwrap();
        assert!((20.0..400.0).contains(&v), "{row}");
    }
    // And the run resumes (its checkpoint's history is read back).
    nabla_in(&d, &["train", "--quiet", "--resume", "--out", s(&run), "--epochs", "3"]);
}

#[test]
fn an_architecture_file_model_needs_no_file_after_training() {
    let d = scratch("arch");
    let arch = d.join("net.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/archs/tiny-resnet.toml"),
        &arch,
    )
    .unwrap();
    let run = d.join("run");
    nabla_in(
        &d,
        &[
            "train",
            "--quiet",
            "--model",
            "net.toml",
            "--train-subset",
            "300",
            "--test-subset",
            "100",
            "--epochs",
            "1",
            "--out",
            s(&run),
        ],
    );
    std::fs::remove_file(&arch).unwrap();
    let e = json(&nabla_in(
        &d.join("elsewhere"),
        &[
            "eval",
            "--checkpoint",
            s(&run.join("checkpoint.safetensors")),
            "--test-subset",
            "100",
            "--json",
        ],
    ));
    assert_eq!(e["top1"], summary(&run)["test_top1"]);
}

#[test]
fn export_writes_a_plain_state_dict_under_pytorch_names() {
    let d = scratch("export");
    let run = d.join("run");
    nabla_in(
        &d,
        &[
            "train",
            "--quiet",
            "--train-subset",
            "64",
            "--test-subset",
            "20",
            "--epochs",
            "1",
            "--out",
            s(&run),
        ],
    );
    let ck = run.join("checkpoint.safetensors");
    let out = d.join("lenet5.safetensors");
    nabla_in(&d, &["export", "--checkpoint", s(&ck), "--weights-only", "-o", s(&out)]);
    let (exported, _) = nabla_nn::state::load_safetensors(&out).unwrap();
    let checkpoint = nabla_train::checkpoint::Checkpoint::load(&ck).unwrap();
    let names = |v: &[(String, nabla_core::Tensor)]| {
        let mut n: Vec<String> = v.iter().map(|(n, _)| n.clone()).collect();
        n.sort();
        n
    };
    // The model's tensors and nothing else (no optimiser state), under the model's own names.
    assert_eq!(names(&exported), names(&checkpoint.model));
    assert!(names(&exported).contains(&"features.0.weight".to_string()));
    for ((_, a), (_, b)) in exported.iter().zip(&checkpoint.model) {
        assert_eq!(a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    }
    // An existing file is kept unless --force.
    let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["export", "--checkpoint", s(&ck), "--weights-only", "-o", s(&out)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pass --force"));

    // ONNX: the graph's weights under the same names, the classes and the input normalisation
    // of the checkpoint in the model's metadata.
    use nabla_nn::onnx::proto::{Model, ProtobufMessage};
    let onnx_path = d.join("lenet5.onnx");
    nabla_in(
        &d,
        &[
            "export",
            "--checkpoint",
            s(&ck),
            "--format",
            "onnx",
            "-o",
            s(&onnx_path),
        ],
    );
    let onnx = Model::parse_from_bytes(&std::fs::read(&onnx_path).unwrap()).unwrap();
    let meta: std::collections::HashMap<&str, &str> = onnx
        .metadata_props
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    let classes: Vec<String> = serde_json::from_str(meta["nabla.classes"]).unwrap();
    assert_eq!(classes, checkpoint.meta.classes);
    let mean: Vec<f64> = serde_json::from_str(meta["nabla.normalize.mean"]).unwrap();
    assert_eq!(
        Some(mean),
        checkpoint.meta.card.normalization.as_ref().map(|n| n.mean.clone())
    );
    assert_eq!(meta["nabla.input"], "1x28x28");
    let graph = onnx.graph.as_ref().unwrap();
    let mut inits: Vec<String> = graph
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .filter(|n| !n.contains('/'))
        .collect();
    inits.sort();
    assert_eq!(inits, names(&exported), "the weights of LeNet-5 (it has no batch norm)");
    // A format must be named, and the file is not overwritten without --force.
    let o = run_in(&d, &["export", "--checkpoint", s(&ck), "-o", s(&d.join("x"))]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--format onnx, or --weights-only"));
    let o = run_in(
        &d,
        &[
            "export",
            "--checkpoint",
            s(&ck),
            "--format",
            "onnx",
            "-o",
            s(&onnx_path),
        ],
    );
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("pass --force"));
}

/// `dir/pics/{train,test}/{dark,light}/*.png`: 40×36 colour images of two classes.
fn two_class_folder(dir: &Path) {
    for (split, n) in [("train", 6), ("test", 2)] {
        for (class, v) in [("dark", 30u8), ("light", 220)] {
            let dir = dir.join("pics").join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let px = image::Rgb([v, v.wrapping_add(i as u8), v]);
                image::RgbImage::from_pixel(40, 36, px)
                    .save(dir.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
}

#[test]
fn lenet5_trains_on_a_folder_of_colour_images_at_their_size_or_at_input() {
    let d = scratch("folder");
    two_class_folder(&d);
    let ds = format!("folder:{}", s(&d.join("pics")));
    for (input, out) in [(None, "rgb32"), (Some("1x16x16"), "grey16")] {
        let run = d.join(out);
        let mut args = vec!["train", "--quiet", "--dataset", &ds, "--epochs", "1", "--out", s(&run)];
        if let Some(i) = input {
            args.extend(["--input", i]);
        }
        nabla_in(&d, &args);
        let ck = nabla_train::checkpoint::Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
        let expected = if input.is_some() { [1, 16, 16] } else { [3, 32, 32] };
        assert_eq!(ck.meta.input, expected);
        assert_eq!(ck.meta.classes, vec!["dark", "light"]);
    }
}

/// metrics.csv as rows of named numbers.
fn metrics(run: &Path) -> Vec<std::collections::HashMap<String, f64>> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(|v| v.parse::<f64>().unwrap()))
                .collect()
        })
        .collect()
}

#[test]
fn a_validation_split_picks_the_best_epoch_and_tests_it_once() {
    let d = scratch("val");
    let run = d.join("run");
    let common = [
        "train",
        "--quiet",
        "--train-subset",
        "1000",
        "--test-subset",
        "200",
        "--epochs",
        "3",
        "--val-split",
        "0.2",
    ];
    let mut args = common.to_vec();
    args.extend(["--out", s(&run)]);
    nabla_in(&d, &args);
    let rows = metrics(&run);
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert!(r["val_loss"].is_finite() && r["val_top1"].is_finite(), "{r:?}");
        assert!(r["test_loss"].is_nan(), "the test set waits for the end: {r:?}");
    }
    // The best epoch is the one with the lowest validation loss, and its weights are tested.
    let best = rows
        .iter()
        .min_by(|a, b| a["val_loss"].total_cmp(&b["val_loss"]))
        .unwrap()["epoch"] as u64;
    let sum = summary(&run);
    assert_eq!(sum["best_epoch"], best);
    let e = json(&nabla_in(
        &d,
        &[
            "eval",
            "--checkpoint",
            s(&run.join("best.safetensors")),
            "--test-subset",
            "200",
            "--json",
        ],
    ));
    assert_eq!(e["top1"], sum["test_top1"]);
    // Early stopping: with a learning rate too small to change a prediction, validation top-1
    // never improves on epoch 1, and --early-stop 1 ends the run after epoch 2.
    let stopped = d.join("stopped");
    let mut args = common.to_vec();
    args.extend([
        "--lr",
        "1e-12",
        "--best-by",
        "top1",
        "--early-stop",
        "1",
        "--out",
        s(&stopped),
    ]);
    nabla_in(&d, &args);
    let sum = summary(&stopped);
    assert_eq!(
        (sum["epochs"].as_u64(), sum["stopped_early"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(sum["best_epoch"], 1);
}

#[test]
fn weights_start_a_run_and_finetune_replaces_only_the_classifier() {
    let d = scratch("weights");
    two_class_folder(&d);
    // A 10-class Fashion-MNIST LeNet-5, exported as a plain state dict.
    let run = d.join("fmnist");
    let common = ["train", "--quiet", "--epochs", "1"];
    let mut args = common.to_vec();
    args.extend(["--train-subset", "64", "--test-subset", "20", "--out", s(&run)]);
    nabla_in(&d, &args);
    let sd = d.join("lenet5.safetensors");
    let ck = run.join("checkpoint.safetensors");
    nabla_in(&d, &["export", "--checkpoint", s(&ck), "--weights-only", "-o", s(&sd)]);
    let ds = format!("folder:{}", s(&d.join("pics")));
    let base = [
        "--dataset",
        &ds,
        "--input",
        "1x28x28",
        "--weights",
        s(&sd),
        "--lr",
        "1e-12",
    ];
    // Two classes: the 10-class classifier does not fit without --finetune.
    let o = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(common.iter().chain(&base))
        .args(["--out", s(&d.join("strict"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("'classifier.5.weight': file has shape [10, 84], model expects [2, 84]"),
        "{err}"
    );
    let tuned = d.join("tuned");
    let mut args = common.to_vec();
    args.extend(base);
    args.extend(["--finetune", "--out", s(&tuned)]);
    nabla_in(&d, &args);
    let (exported, _) = nabla_nn::state::load_safetensors(&sd).unwrap();
    let after = nabla_train::checkpoint::Checkpoint::load(&tuned.join("checkpoint.safetensors")).unwrap();
    let get = |v: &[(String, nabla_core::Tensor)], n: &str| v.iter().find(|(k, _)| k == n).unwrap().1.clone();
    // The features start from the file (an lr of 1e-12 leaves them where they started) …
    let (a, b) = (
        get(&exported, "features.0.weight"),
        get(&after.model, "features.0.weight"),
    );
    for (x, y) in a.to_vec_f64().unwrap().iter().zip(b.to_vec_f64().unwrap()) {
        assert!((x - y).abs() <= 1e-9, "{x} vs {y}");
    }
    // … and the classifier is new, for two classes.
    assert_eq!(get(&after.model, "classifier.5.weight").dims(), &[2, 84]);
    // The state dict alone evaluates and predicts, given its model and data.
    let e = json(&nabla_in(
        &d,
        &[
            "eval",
            "--weights",
            s(&sd),
            "--model",
            "lenet5",
            "--test-subset",
            "50",
            "--json",
        ],
    ));
    assert_eq!(e["samples"], 50);
    let png = d.join("pics/test/dark/0.png");
    let p = json(&nabla_in(
        &d,
        &[
            "predict",
            "--weights",
            s(&sd),
            "--model",
            "lenet5",
            "--dataset",
            "fashion-mnist",
            s(&png),
            "--json",
        ],
    ));
    let preds = p[0]["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 5);
    assert!(preds.iter().all(|v| v["class"].as_str().is_some()));
}

#[test]
fn tensorboard_events_hold_the_steps_the_epochs_and_the_filters() {
    let d = scratch("tensorboard");
    let run = d.join("run");
    nabla_in(
        &d,
        &[
            "train",
            "--quiet",
            "--tensorboard",
            "--train-subset",
            "320",
            "--test-subset",
            "50",
            "--batch-size",
            "32",
            "--epochs",
            "2",
            "--out",
            s(&run),
        ],
    );
    let files: Vec<PathBuf> = std::fs::read_dir(run.join("tensorboard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // Every record's checksums are verified while reading.
    let events = nabla_train::tensorboard::read_events(&files[0]).unwrap();
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    let values = |tag: &str| -> Vec<(i64, f32)> {
        events
            .iter()
            .flat_map(|e| {
                e.summary
                    .iter()
                    .flat_map(move |s| s.value.iter().map(move |v| (e.step, v)))
            })
            .filter(|(_, v)| v.tag == tag)
            .map(|(step, v)| (step, v.simple_value.unwrap()))
            .collect()
    };
    // 10 steps per epoch, numbered through the run.
    let steps: Vec<i64> = values("train/loss").iter().map(|p| p.0).collect();
    assert_eq!(steps, (1..=20).collect::<Vec<_>>());
    let rows = metrics(&run);
    for (tag, column) in [("epoch/train_loss", "train_loss"), ("epoch/test_top1", "test_top1")] {
        let got = values(tag);
        assert_eq!(got.len(), 2, "{tag}");
        for ((step, v), row) in got.iter().zip(&rows) {
            assert_eq!(*step as f64, row["epoch"]);
            assert!(
                (*v as f64 - row[column]).abs() <= 1e-6 * row[column].abs().max(1.0),
                "{tag}"
            );
        }
    }
    let images = events
        .iter()
        .filter_map(|e| e.summary.as_ref())
        .flat_map(|s| &s.value)
        .filter(|v| v.tag == "filters/first_layer")
        .count();
    assert_eq!(images, 2);
}

#[test]
fn tta_is_applied_only_as_training_cut_its_crops_and_checked_on_the_validation_images() {
    let d = scratch("tta");
    let train = |run: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--quiet",
            "--train-subset",
            "500",
            "--test-subset",
            "100",
            "--epochs",
            "1",
            "--out",
            s(run),
        ];
        args.extend_from_slice(extra);
        nabla_in(&d, &args);
        run.join("checkpoint.safetensors")
    };
    let eval = |ck: &Path, extra: &[&str]| {
        let mut args = vec!["eval", "--checkpoint", s(ck), "--test-subset", "200", "--json"];
        args.extend_from_slice(extra);
        run_in(&d, &args)
    };

    // Trained without --augment: shifted crops are refused, and evaluated only when asked for
    // anyway, with the warning and the centre crop on the same test images.
    let plain = train(&d.join("plain"), &[]);
    let center = json(&eval(&plain, &[]));
    let refused = eval(&plain, &["--tta", "5crop"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("trained without --augment: the shifted crops of 5crop") && err.contains("--tta-anyway"),
        "{err}"
    );
    let o = eval(&plain, &["--tta", "10crop", "--tta-anyway"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: ") && err.contains("shifted crops of 10crop"),
        "{err}"
    );
    let ten = json(&o);
    assert_eq!(ten["center_top1"], center["top1"]);
    let check = &ten["tta_check"];
    assert_eq!(check["on"], "these 200 test images");
    assert_eq!(
        (&check["tta_top1"], &check["center_top1"]),
        (&ten["top1"], &center["top1"])
    );
    let lower = ten["top1"].as_f64() < center["top1"].as_f64();
    assert_eq!(err.contains("lowers top-1"), lower, "{err}");

    // Trained with --augment (grey images: shifts, no flips) and a validation split: 5crop is
    // allowed and compared on the 100 held-out images, 10crop's mirrored crops are refused.
    let aug = train(&d.join("aug"), &["--augment", "--val-split", "0.2"]);
    let o = eval(&aug, &["--tta", "5crop"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let five = json(&o);
    let check = &five["tta_check"];
    assert_eq!(check["on"], "the 100 validation images held out in training");
    let lower = check["tta_top1"].as_f64() < check["center_top1"].as_f64();
    assert_eq!(err.contains("lowers top-1"), lower, "{err}");
    assert_eq!(err.contains("validation images held out"), lower, "{err}");
    let refused = eval(&aug, &["--tta", "10crop"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("without horizontal flips"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!eval(&aug, &["--tta", "multiscale"]).status.success());
}
