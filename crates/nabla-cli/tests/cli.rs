//! The `nabla` binary as a user runs it: train on real data, then evaluate (alone, as an
//! ensemble, with test-time augmentation), classify image files, summarise models, and fail
//! cleanly on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nabla_data::Dataset;
use nabla_data::mnist::{Split, fashion_mnist_embedded};
use serde_json::Value;

fn nabla(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .env("NABLA_NUM_THREADS", "2")
        .output()
        .expect("the nabla binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Succeeds, or shows what the command printed.
fn ok(args: &[&str]) -> Output {
    let out = nabla(args);
    assert!(out.status.success(), "nabla {args:?} failed:\n{}", stderr(&out));
    out
}

fn json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("nabla {args:?}: not JSON ({e}):\n{}", stdout(&out)))
}

/// A user mistake: non-zero exit, one line starting with "error:", `needle` in the message,
/// and no panic.
fn user_error(args: &[&str], needle: &str) -> String {
    let out = nabla(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "nabla {args:?} should fail");
    assert!(!err.contains("panicked"), "nabla {args:?} panicked:\n{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "nabla {args:?}: one error line expected:\n{err}");
    assert!(err.contains(needle), "nabla {args:?}: '{needle}' not in:\n{err}");
    // nabla's own errors (exit code 1) are the one line; clap's (2) add usage hints.
    if out.status.code() == Some(1) {
        assert_eq!(err.lines().count(), 1, "nabla {args:?}:\n{err}");
    }
    err
}

/// A fresh folder under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Test image `i` of Fashion-MNIST as a grey PNG, and enlarged to `w`×`h` in colour as a JPEG.
fn write_images(dir: &Path, i: usize) -> (PathBuf, PathBuf) {
    let test = fashion_mnist_embedded(Split::Test).unwrap();
    let (pixels, _) = test.get(i);
    let bytes: Vec<u8> = pixels.iter().map(|v| (v * 255.0).round() as u8).collect();
    let grey = image::GrayImage::from_raw(28, 28, bytes).unwrap();
    let png = dir.join("item.png");
    grey.save(&png).unwrap();
    let colour = image::DynamicImage::ImageLuma8(grey).resize_exact(70, 50, image::imageops::FilterType::Triangle);
    let jpg = dir.join("item-colour.jpg");
    colour.to_rgb8().save(&jpg).unwrap();
    (png, jpg)
}

#[test]
fn train_then_eval_predict_and_ensemble() {
    let dir = scratch("run");
    let run = dir.join("run");
    ok(&[
        "train",
        "--quiet",
        "--train-subset",
        "1000",
        "--test-subset",
        "500",
        "--epochs",
        "2",
        "--out",
        s(&run),
    ]);
    for f in ["loss.png", "accuracy.png", "confusion.png", "filters.png"] {
        let img = image::open(run.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(img.width() > 0 && img.height() > 0, "{f}");
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let ck = run.join("checkpoint.safetensors");

    // Evaluating the checkpoint on the same 500 images reproduces the training run's figures.
    let e = json(&["eval", "--checkpoint", s(&ck), "--test-subset", "500", "--json"]);
    assert_eq!(e["samples"], 500);
    let top1 = e["top1"].as_f64().unwrap();
    assert!(top1 > 0.2, "2 epochs on 1000 images beat chance: {top1}");
    assert!(
        (top1 - summary["test_top1"].as_f64().unwrap()).abs() <= 1.0 / 500.0,
        "{e} vs {summary}"
    );
    assert!((e["loss"].as_f64().unwrap() - summary["test_loss"].as_f64().unwrap()).abs() < 1e-3);
    let confusion: u64 = e["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(confusion, 500);
    let text = stdout(&ok(&["eval", "--checkpoint", s(&ck), "--test-subset", "200"]));
    assert!(
        text.contains("top-1") && text.contains("top-5") && text.contains("confusion matrix"),
        "{text}"
    );
    assert!(text.contains("Ankle boot"), "class names label the matrix:\n{text}");

    // An ensemble of a model with itself, weighted or not, is the model.
    let ens = json(&[
        "eval",
        "--checkpoint",
        s(&ck),
        "--checkpoint",
        s(&ck),
        "--ensemble-weights",
        "1,3",
        "--test-subset",
        "500",
        "--json",
    ]);
    assert_eq!(ens["top1"], e["top1"]);
    assert_eq!(ens["weights"], serde_json::json!([0.25, 0.75]));
    user_error(
        &[
            "eval",
            "--checkpoint",
            s(&ck),
            "--checkpoint",
            s(&ck),
            "--ensemble-weights",
            "1",
        ],
        "1 weights for 2 checkpoints",
    );

    // Ten crops per image (of a model that never saw shifted or mirrored inputs: only when
    // asked for anyway).
    let tta = json(&[
        "eval",
        "--checkpoint",
        s(&ck),
        "--test-subset",
        "50",
        "--tta",
        "10crop",
        "--tta-anyway",
        "--json",
    ]);
    assert_eq!(
        (tta["samples"].as_u64(), tta["crops_per_image"].as_u64()),
        (Some(50), Some(10))
    );
    user_error(&["eval", "--checkpoint", s(&ck), "--tta", "7crop"], "7crop");

    // Predict: a 28×28 grey PNG and a 70×50 colour JPEG of the same garment.
    let (png, jpg) = write_images(&dir, 0);
    let p = json(&["predict", "--checkpoint", s(&ck), "--json", s(&png), s(&jpg)]);
    let p = p.as_array().unwrap();
    assert_eq!(p.len(), 2);
    for item in p {
        let preds = item["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 5);
        let probs: Vec<f64> = preds.iter().map(|x| x["probability"].as_f64().unwrap()).collect();
        assert!(
            probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0 + 1e-9,
            "{item}"
        );
        assert!(preds[0]["class"].is_string());
    }
    assert_eq!(p[0]["file"], s(&png));
    let text = stdout(&ok(&["predict", "--checkpoint", s(&ck), s(&png)]));
    assert!(
        text.starts_with(s(&png)) && text.contains("  1. ") && text.contains("  5. "),
        "{text}"
    );

    // A file that is not an image: the error names it, and nothing else is printed.
    let not_image = dir.join("notes.png");
    std::fs::write(&not_image, "these are not pixels").unwrap();
    user_error(
        &["predict", "--checkpoint", s(&ck), s(&png), s(&not_image)],
        s(&not_image),
    );
    assert!(
        nabla(&["predict", "--checkpoint", s(&ck), s(&not_image)])
            .stdout
            .is_empty()
    );
    user_error(
        &["predict", "--checkpoint", s(&ck), s(&dir.join("missing.png"))],
        "missing.png",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn summary_lists_layers_shapes_and_parameters() {
    let j = json(&["summary", "--model", "lenet5", "--json"]);
    assert_eq!(j["parameters"], 61_706);
    let layers = j["layers"].as_array().unwrap();
    let conv1 = layers
        .iter()
        .find(|l| l["name"] == "features.0")
        .expect("features.0 listed");
    assert_eq!(conv1["output_shape"], serde_json::json!([6, 28, 28]));
    assert_eq!(conv1["parameters"], 156);
    let text = stdout(&ok(&["summary", "--model", "lenet5"]));
    assert!(
        text.contains("61,706") && text.contains("classifier.5") && text.contains("Linear(84 → 10)"),
        "{text}"
    );
    // Layers as a reader writes them, not Rust's debug output.
    assert!(
        text.contains("Conv2d(1 → 6, 5×5, padding 2)") && text.contains("MaxPool2d(2, stride 2)"),
        "{text}"
    );
    assert!(
        !text.contains('[') && !text.contains("Zeros") && !text.contains("Some("),
        "{text}"
    );
    // 784·512 + 512 + 512·256 + 256 + 256·10 + 10 for 10 classes; 3×32×32 input, 5 classes.
    assert_eq!(json(&["summary", "--model", "mlp", "--json"])["parameters"], 535_818);
    let small = json(&[
        "summary",
        "--model",
        "mlp:20",
        "--input",
        "3x32x32",
        "--classes",
        "5",
        "--json",
    ]);
    assert_eq!(small["parameters"], 3072 * 20 + 20 + 20 * 5 + 5);
    assert_eq!(small["output"], serde_json::json!([5]));
}

#[test]
fn bad_input_fails_with_one_error_line() {
    let dir = scratch("bad");
    user_error(&["summary", "--model", "nonet"], "unknown model 'nonet'");
    let out = dir.join("out");
    user_error(
        &["train", "--model", "nonet", "--epochs", "1", "--out", s(&out)],
        "unknown model 'nonet'",
    );
    user_error(&["summary", "--input", "3x32"], "CxHxW");
    user_error(
        &["summary", "--model", "vgg11", "--input", "1x28x28"],
        "vgg11 takes images of at least 32×32 pixels, not 1×28×28: pass --input 1x32x32",
    );
    let missing = dir.join("nothing.safetensors");
    user_error(&["eval", "--checkpoint", s(&missing)], s(&missing));
    user_error(&["predict", "--checkpoint", s(&missing), "x.png"], s(&missing));
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}").unwrap();
    user_error(&["eval", "--checkpoint", s(&corrupt)], s(&corrupt));
    std::fs::write(&corrupt, b"").unwrap();
    user_error(&["eval", "--checkpoint", s(&corrupt)], s(&corrupt));
    user_error(&["eval", "--bogus"], "--bogus");
    user_error(&["eval"], "--checkpoint");
    user_error(&["predict", "--checkpoint", s(&missing)], "FILE");
    std::fs::remove_dir_all(&dir).ok();
}

/// `nabla bench --model NAME --steps N` times any zoo model on random inputs; its JSON names
/// what was timed, and the figures are positive.
#[test]
fn bench_times_a_zoo_model_for_a_few_steps() {
    let j = json(&[
        "bench",
        "--model",
        "resnet20",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--json",
    ]);
    assert_eq!(j["model"], "resnet20");
    assert_eq!(j["input"], "1x28x28");
    assert_eq!(j["batch"], 4);
    assert!(j["train_samples_per_s"].as_f64().unwrap() > 0.0);
    assert!(j["infer_samples_per_s"].as_f64().unwrap() > 0.0);
    let j = json(&[
        "bench",
        "--model",
        "mlp",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--precision",
        "bf16",
        "--json",
    ]);
    assert_eq!(j["precision"], "bf16");
    // An ImageNet model defaults to 3×224×224; a smaller input is refused by name.
    let out = nabla(&["bench", "--model", "vgg11", "--steps", "1", "--input", "3x16x16"]);
    assert!(
        !out.status.success() && stderr(&out).contains("vgg11 takes images of at least"),
        "{}",
        stderr(&out)
    );
    let out = nabla(&["bench", "--model", "no-such-net", "--steps", "1"]);
    assert!(
        !out.status.success() && stderr(&out).contains("no-such-net"),
        "{}",
        stderr(&out)
    );
}
