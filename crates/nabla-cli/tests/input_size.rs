//! `--input` trains a model on images converted to its input (grey 28×28 → RGB 32×32 for a
//! CIFAR ResNet), and `eval` converts the test images the same way.

use std::process::Command;

fn nabla(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .env("NABLA_NUM_THREADS", "2")
        .output()
        .expect("the nabla binary runs")
}

#[test]
fn a_cifar_resnet_trains_and_evaluates_on_resized_fashion_mnist() {
    let dir = std::env::temp_dir().join(format!("nabla-input-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    let o = nabla(&[
        "train",
        "--quiet",
        "--model",
        "resnet20",
        "--input",
        "3x32x32",
        "--train-subset",
        "256",
        "--test-subset",
        "100",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--out",
        out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let ck = dir.join("checkpoint.safetensors");
    let o = nabla(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--test-subset",
        "100",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, b) = (e["top1"].as_f64().unwrap(), summary["test_top1"].as_f64().unwrap());
    assert!((a - b).abs() <= 0.011, "eval {a} vs training's evaluation {b}");
    std::fs::remove_dir_all(&dir).ok();
}
