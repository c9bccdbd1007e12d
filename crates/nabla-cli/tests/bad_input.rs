//! Bad input from a user: one clear line naming what and where, a non-zero exit code, no
//! panic, and nothing already written lost.

use std::path::PathBuf;
use std::process::{Command, Output};

fn nabla(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .env("NABLA_NUM_THREADS", "1")
        .output()
        .expect("the nabla binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-bad-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `args`, expects exit code 1 and a single `error:` line containing `needle`.
fn fails_with(args: &[&str], needle: &str) -> String {
    let o = nabla(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{needle:?} not in {err}"
    );
    err
}

#[test]
fn architecture_files_with_unknown_layers_or_bad_shapes() {
    let d = scratch("arch");
    let unknown = d.join("unknown.toml");
    std::fs::write(
        &unknown,
        "[[layer]]\ntype = \"flatten\"\n\n[[layer]]\ntype = \"dense_relu\"\nout = 10\n",
    )
    .unwrap();
    fails_with(
        &[
            "train",
            "--model",
            unknown.to_str().unwrap(),
            "--out",
            d.join("r1").to_str().unwrap(),
        ],
        "line 4: layer 1 (dense_relu): unknown layer type 'dense_relu'",
    );
    let shapes = d.join("shapes.toml");
    std::fs::write(
        &shapes,
        "[[layer]]\ntype = \"flatten\"\n\n[[layer]]\ntype = \"conv2d\"\nout = 4\nkernel = 3\n",
    )
    .unwrap();
    fails_with(
        &[
            "train",
            "--model",
            shapes.to_str().unwrap(),
            "--out",
            d.join("r2").to_str().unwrap(),
        ],
        "line 4: layer 1 (conv2d): does not fit its input [1, 784]",
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_wrong_idx_magic_number_names_the_file_and_the_byte() {
    let d = scratch("idx");
    let data = d.join("fashion-mnist");
    std::fs::create_dir_all(&data).unwrap();
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(data.join(f), [0x12u8, 0x34, 0x08, 0x03, 0, 0, 0, 0]).unwrap();
    }
    fails_with(
        &[
            "train",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            d.join("r").to_str().unwrap(),
        ],
        "wrong IDX magic number at byte 0",
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn resuming_with_another_architecture_is_refused_and_keeps_the_checkpoint() {
    let d = scratch("resume");
    let run = d.join("run");
    let r = run.to_str().unwrap();
    let o = nabla(&[
        "train",
        "--quiet",
        "--train-subset",
        "300",
        "--test-subset",
        "100",
        "--epochs",
        "1",
        "--out",
        r,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ck = run.join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    fails_with(
        &["train", "--resume", "--model", "mlp", "--out", r],
        "--model is mlp (the run has lenet5)",
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before, "the checkpoint is untouched");
    // A checkpoint that is not one: a clear error, nothing else.
    std::fs::write(run.join("checkpoint.safetensors"), b"not a checkpoint").unwrap();
    fails_with(&["train", "--resume", "--out", r], "checkpoint.safetensors");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn short_training_on_a_fashion_mnist_subset_beats_a_threshold() {
    let d = scratch("short");
    let r = d.join("run");
    let o = nabla(&[
        "train",
        "--quiet",
        "--train-subset",
        "5000",
        "--test-subset",
        "1000",
        "--epochs",
        "2",
        "--optimizer",
        "adam",
        "--out",
        r.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("summary.json")).unwrap()).unwrap();
    let top1 = summary["test_top1"].as_f64().unwrap();
    // LeNet-5 on 5,000 images for two epochs: well above 70% (chance is 10%).
    assert!(top1 > 0.7, "test top-1 {top1}");
    for key in [
        "test_top1",
        "test_top5",
        "test_loss",
        "train_samples_per_s",
        "epochs",
        "seed",
    ] {
        assert!(!summary[key].is_null(), "summary.json lacks {key}");
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Without the `cuda` feature, asking for a GPU is one clear error (and no run is started);
/// a device name that is not one is refused by the argument parser.
#[cfg(not(feature = "cuda"))]
#[test]
fn a_gpu_without_the_cuda_build_is_a_clear_error() {
    let d = scratch("device");
    let out = d.join("run");
    fails_with(
        &[
            "train",
            "--device",
            "cuda",
            "--epochs",
            "1",
            "--train-subset",
            "64",
            "--test-subset",
            "64",
            "--out",
            out.to_str().unwrap(),
        ],
        "rebuild with `--features cuda`",
    );
    assert!(!out.join("checkpoint.safetensors").exists());
    let o = nabla(&["train", "--device", "gpu"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown device \"gpu\""), "{err}");
}
