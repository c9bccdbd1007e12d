//! An interrupted and resumed run ends with exactly the weights of an uninterrupted one.

use std::path::Path;
use std::process::Command;

fn nabla(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(args)
        .env("NABLA_NUM_THREADS", "2")
        .output()
        .expect("the nabla binary runs")
}

fn weights(dir: &Path) -> Vec<(String, Vec<f64>)> {
    let ck = nabla_train::checkpoint::Checkpoint::load(&dir.join("checkpoint.safetensors")).expect("checkpoint loads");
    let mut w: Vec<(String, Vec<f64>)> = ck
        .model
        .iter()
        .map(|(n, t)| (n.clone(), t.to_vec_f64().unwrap()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn resume_after_an_interruption_gives_the_same_weights() {
    let tmp = std::env::temp_dir().join(format!("nabla-resume-{}", std::process::id()));
    let (full, cut) = (tmp.join("full"), tmp.join("cut"));
    let common = [
        "train",
        "--quiet",
        "--train-subset",
        "600",
        "--test-subset",
        "200",
        "--batch-size",
        "50",
        "--epochs",
        "2",
        "--optimizer",
        "adam",
    ];
    let run = |dir: &Path, extra: &[&str]| {
        let mut a: Vec<&str> = common.to_vec();
        let d = dir.to_str().unwrap().to_string();
        a.extend(["--out", &d]);
        a.extend(extra);
        nabla(&a)
    };
    let out = run(&full, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 12 steps per epoch: stop in the middle of the second epoch, then resume.
    let out = run(&cut, &["--stop-after-steps", "17"]);
    assert_eq!(
        out.status.code(),
        Some(130),
        "an interrupted run exits with 130: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nabla(&[
        "train",
        "--quiet",
        "--resume",
        "--out",
        cut.to_str().unwrap(),
        "--train-subset",
        "600",
        "--test-subset",
        "200",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (weights(&full), weights(&cut));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "{na} differs after resuming");
    }
    let metrics = std::fs::read_to_string(cut.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "header and two epochs:\n{metrics}");
    std::fs::remove_dir_all(&tmp).ok();
}
