//! `nabla train` on the bundled tables: a logistic-style classifier and a linear regression
//! from the command line, and a diverging run that stops with a clear message.

use std::process::Command;

fn nabla(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .env("NABLA_NUM_THREADS", "1")
        .output()
        .expect("the nabla binary runs")
}

fn data(name: &str) -> String {
    format!("csv:{}/../../data/tabular/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("nabla-tabular-{name}-{}", std::process::id()))
        .display()
        .to_string()
}

fn summary(dir: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{dir}/summary.json")).unwrap()).unwrap()
}

#[test]
fn breast_cancer_classification_from_the_command_line() {
    let out = tmp("bc");
    let ds = data("breast_cancer.csv");
    let o = nabla(&[
        "train",
        "--quiet",
        "--dataset",
        &ds,
        "--target",
        "malignant",
        "--model",
        "mlp:16",
        "--epochs",
        "20",
        "--batch-size",
        "32",
        "--optimizer",
        "adam",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let top1 = summary(&out)["test_top1"].as_f64().unwrap();
    // A constant guess gets 63% (357 benign of 569); a fitted model gets above 90%.
    assert!(top1 > 0.9, "test top-1 {top1}");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn diabetes_regression_from_the_command_line() {
    let out = tmp("diab");
    let ds = data("diabetes.csv");
    let o = nabla(&[
        "train",
        "--quiet",
        "--dataset",
        &ds,
        "--target",
        "progression",
        "--regression",
        "--model",
        "mlp:32",
        "--epochs",
        "30",
        "--batch-size",
        "32",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Test MSE of the standardised target: predicting the mean gives about 1; a fit explains
    // roughly half the variance (R² ≈ 0.4–0.5 on this data set).
    let mse = summary(&out)["test_loss"].as_f64().unwrap();
    assert!(mse < 0.75, "test MSE {mse}");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_table_needs_a_target_column() {
    let ds = data("diabetes.csv");
    let o = nabla(&[
        "train",
        "--quiet",
        "--dataset",
        &ds,
        "--model",
        "mlp:8",
        "--out",
        &tmp("nt"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: data: --dataset csv:PATH needs --target COLUMN"
    );
    let o = nabla(&[
        "train",
        "--quiet",
        "--dataset",
        &ds,
        "--target",
        "nope",
        "--model",
        "mlp:8",
        "--out",
        &tmp("nc"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
}
