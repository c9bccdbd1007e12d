//! The binary under hostile input: absurd sizes from flags, files and checkpoints are errors
//! (never an abort), nothing falls back silently, and no run is overwritten or lost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nabla_core::Tensor;

fn nabla_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(binary());
    c.args(args).env("NABLA_NUM_THREADS", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the nabla binary runs")
}

fn nabla(args: &[&str]) -> Output {
    nabla_env(args, &[])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A user mistake: exit code 1 (or clap's 2), one `error:` line holding `needle`, no panic.
fn fails_with_env(args: &[&str], env: &[(&str, &str)], needle: &str) -> String {
    let o = nabla_env(args, env);
    let err = stderr(&o);
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "nabla {args:?}: {:?}\n{err}",
        o.status
    );
    assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "nabla {args:?}: one error line expected:\n{err}");
    assert!(err.contains(needle), "nabla {args:?}: '{needle}' not in:\n{err}");
    err
}

fn fails_with(args: &[&str], needle: &str) -> String {
    fails_with_env(args, &[], needle)
}

/// The binary under test: this build's, or `NABLA_TEST_BIN` (to show that a case fails on an
/// older build).
fn binary() -> String {
    std::env::var("NABLA_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nabla").to_string())
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A short LeNet-5 run into `out` (64 training and 50 test images, one epoch).
fn tiny_run(out: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "train",
        "--quiet",
        "--train-subset",
        "64",
        "--test-subset",
        "50",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        s(out),
    ];
    a.extend(extra);
    nabla(&a)
}

fn trained(name: &str) -> PathBuf {
    let out = scratch(name);
    let o = tiny_run(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    out.join("checkpoint.safetensors")
}

/// Rewrites a checkpoint with `edit` applied to its tensors and its metadata JSON (the content
/// hash is recomputed: these are valid files with bad contents).
fn rewrite(ck: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>, &mut serde_json::Value)) {
    let (mut tensors, mut meta): (Vec<(String, Tensor)>, HashMap<String, String>) =
        nabla_nn::state::load_safetensors(ck).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&meta["nabla_checkpoint"]).unwrap();
    edit(&mut tensors, &mut json);
    meta.insert("nabla_checkpoint".into(), json.to_string());
    meta.remove(nabla_nn::state::HASH_KEY);
    nabla_nn::state::save_safetensors(ck, &tensors, Some(meta)).unwrap();
}

#[test]
fn absurd_sizes_from_flags_are_errors_naming_the_value() {
    fails_with(
        &["summary", "--model", "mlp:1000000000000"],
        "Linear(784 → 1000000000000) weight",
    );
    fails_with(&["summary", "--model", "mlp:1000000000000"], "limit of 4.0 GiB");
    fails_with(
        &["summary", "--model", "lenet5", "--classes", "1000000000000"],
        "Linear(84 → 1000000000000)",
    );
    fails_with(&["summary", "--model", "lenet5", "--classes", "0"], "at least 1");
    fails_with(&["summary", "--model", "mlp:0"], "positive integers");
    fails_with(
        &["summary", "--model", "lenet5", "--input", "1x100000x100000"],
        "--input 1x100000x100000",
    );
    fails_with(&["train", "--input", "1x100000x100000"], "37.3 GiB");
    // Under the cap for one sample, over it in the first convolution's output.
    fails_with(
        &["summary", "--model", "resnet20", "--input", "1x30000x30000"],
        "conv2d output",
    );
    // LeNet-5 follows its input: there it is C5's weight that would be too large.
    fails_with(
        &["summary", "--model", "lenet5", "--input", "1x30000x30000"],
        "Linear(899520064 → 120)",
    );
    fails_with(
        &["train", "--model", "mlp:1000000000000", "--out", "/nonexistent/x"],
        "limit",
    );
    fails_with(&["train", "--threads", "100000"], "thread count from 1 to 1024");
    fails_with_env(&["summary"], &[("NABLA_NUM_THREADS", "100000")], "NABLA_NUM_THREADS");
    fails_with_env(
        &["summary"],
        &[("NABLA_MAX_TENSOR_BYTES", "lots")],
        "NABLA_MAX_TENSOR_BYTES",
    );
    // The cap is the user's to move.
    fails_with_env(
        &["summary", "--model", "mlp:100000"],
        &[("NABLA_MAX_TENSOR_BYTES", "64M")],
        "limit of 64.0 MiB",
    );
    assert!(nabla(&["summary", "--model", "mlp:100000"]).status.success());
}

#[test]
fn absurd_sizes_in_architecture_files_are_errors_at_their_line() {
    let d = scratch("arch");
    let cases = [
        (
            "out.toml",
            "[[layer]]\ntype = \"conv2d\"\nout = 1000000000000\nkernel = 3\n",
            "line 1: layer 0 (conv2d)",
        ),
        (
            "kernel.toml",
            "[[layer]]\ntype = \"conv2d\"\nout = 4\nkernel = 4294967296\n",
            "layer 0 (conv2d)",
        ),
        (
            "linear.toml",
            "[[layer]]\ntype = \"flatten\"\n\n[[layer]]\ntype = \"linear\"\nout = 1000000000000\n",
            "line 4: layer 1 (linear)",
        ),
        (
            "padding.toml",
            "[[layer]]\ntype = \"conv2d\"\nout = 4\nkernel = 3\npadding = 1000000000\n",
            "conv2d output",
        ),
        (
            "reflect.toml",
            "[[layer]]\ntype = \"conv2d\"\nout = 4\nkernel = 3\npadding = 1000000000\npadding_mode = \"replicate\"\n",
            "layer 0 (conv2d)",
        ),
    ];
    for (name, text, needle) in cases {
        let f = d.join(name);
        std::fs::write(&f, text).unwrap();
        fails_with(&["summary", "--model", s(&f)], needle);
        fails_with(&["summary", "--model", s(&f)], "limit");
    }
}

#[test]
fn a_long_architecture_file_parses_in_linear_time() {
    // 200,000 layers took more than a minute when each layer's line was counted from the
    // start of the text; 60 s here is a guard against that, not a speed measurement.
    let d = scratch("long");
    let f = d.join("long.toml");
    let mut text = String::new();
    for _ in 0..200_000 {
        text.push_str("[[layer]]\ntype = \"identity\"\n");
    }
    text.push_str("[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"linear\"\n");
    std::fs::write(&f, text).unwrap();
    let t0 = std::time::Instant::now();
    let o = nabla(&["summary", "--model", s(&f), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(t0.elapsed().as_secs() < 60, "{:?}", t0.elapsed());
}

#[test]
fn absurd_or_damaged_checkpoints_are_errors_not_aborts() {
    let ck = trained("ck");
    let eval = |ck: &Path| vec!["eval".to_string(), "--checkpoint".into(), s(ck).into()];
    let eval_fails = |ck: &Path, needle: &str| {
        let args = eval(ck);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, needle);
        fails_with(&["predict", "--checkpoint", s(ck), "no-such-image.png"], needle);
    };
    let dir = ck.parent().unwrap().to_path_buf();
    let copy = |name: &str| {
        let p = dir.join(name);
        std::fs::copy(&ck, &p).unwrap();
        p
    };
    // Sizes in the metadata.
    let huge_input = copy("huge-input.safetensors");
    rewrite(&huge_input, |_, m| m["input"] = serde_json::json!([1, 100000, 100000]));
    eval_fails(&huge_input, "checkpoint input shape");
    let no_classes = copy("no-classes.safetensors");
    rewrite(&no_classes, |_, m| m["classes"] = serde_json::json!([]));
    eval_fails(&no_classes, "no classes");
    let huge_model = copy("huge-model.safetensors");
    rewrite(&huge_model, |_, m| m["config"]["model"] = "mlp:1000000000000".into());
    eval_fails(&huge_model, "limit");
    // Weights: NaN, and one flipped bit (caught by the content hash).
    let nan = copy("nan.safetensors");
    rewrite(&nan, |t, _| {
        let (name, w) = t.iter_mut().find(|(n, _)| n.starts_with("model/")).unwrap();
        let mut v = w.to_vec::<f32>().unwrap();
        v[0] = f32::NAN;
        *w = Tensor::from_vec(v, w.dims().to_vec()).unwrap();
        assert!(name.starts_with("model/"));
    });
    eval_fails(&nan, "holds NaN or infinite values");
    let flipped = copy("flipped.safetensors");
    let mut bytes = std::fs::read(&flipped).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x10;
    std::fs::write(&flipped, bytes).unwrap();
    eval_fails(&flipped, "the file is damaged");
}

#[test]
fn a_data_dir_without_the_dataset_is_an_error_not_the_bundled_copy() {
    let d = scratch("datadir");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = d.join("run");
    fails_with(
        &["train", "--data-dir", s(&empty), "--out", s(&out)],
        "--data-dir does not hold a complete copy of fashion-mnist",
    );
    fails_with(
        &["train", "--data-dir", s(&d.join("missing")), "--out", s(&out)],
        "does not fall back",
    );
    // An IDX file whose sizes multiply past 2^64 (and wrap to 0), or with H = 0.
    let idx = |dims: &[u32]| {
        let mut b = vec![0u8, 0, 8, dims.len() as u8];
        for &d in dims {
            b.extend(d.to_be_bytes());
        }
        b
    };
    for (name, images) in [("wrap", idx(&[65536, 65536, 65536, 65536])), ("h0", idx(&[10, 0, 28]))] {
        let dir = d.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train-images-idx3-ubyte"), &images).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), &images).unwrap();
        for f in ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"] {
            let mut l = idx(&[10]);
            l.extend([0u8; 10]);
            std::fs::write(dir.join(f), l).unwrap();
        }
        let needle = if name == "wrap" {
            "past the address space"
        } else {
            "zero size"
        };
        fails_with(&["train", "--data-dir", s(&dir), "--out", s(&out)], needle);
    }
}

#[test]
fn threads_flag_sizes_the_pool() {
    let out = scratch("threads");
    let o = nabla(&[
        "train",
        "--threads",
        "3",
        "--train-subset",
        "32",
        "--test-subset",
        "10",
        "--epochs",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // NABLA_NUM_THREADS=1 is set too: the flag wins.
    assert!(stderr(&o).contains(", 3 threads;"), "{}", stderr(&o));
}

#[test]
fn a_second_run_into_a_run_directory_is_refused_unless_forced() {
    let out = scratch("again");
    assert!(tiny_run(&out, &[]).status.success());
    let ck = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    fails_with(
        &["train", "--out", s(&out), "--epochs", "1"],
        "already holds a run (checkpoint.safetensors",
    );
    assert_eq!(std::fs::read(out.join("checkpoint.safetensors")).unwrap(), ck, "kept");
    // A leftover of a save cut short is removed by the next run into the folder.
    std::fs::write(out.join("checkpoint.safetensors.tmp"), b"half a save").unwrap();
    let o = tiny_run(&out, &["--force", "--seed", "7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("checkpoint.safetensors.tmp").exists());
    assert_ne!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        ck,
        "replaced"
    );
    let o = nabla(&["train", "--out", s(&out), "--epochs", "1", "--force"]);
    assert!(!o.status.success() || stderr(&o).contains("--force: replacing"));
}

#[test]
fn resume_refuses_changed_flags_and_extends_a_finished_run() {
    let out = scratch("resume");
    assert!(tiny_run(&out, &[]).status.success());
    let err = fails_with(
        &[
            "train",
            "--resume",
            "--out",
            s(&out),
            "--lr",
            "0.1",
            "--batch-size",
            "16",
        ],
        "--lr is 0.1 (the run has 0.05)",
    );
    assert!(!err.contains("--batch-size"), "an unchanged flag is not named: {err}");
    // A finished 1-epoch run continued to 2 epochs: the cosine schedule is planned anew.
    let o = nabla(&["train", "--resume", "--out", s(&out), "--epochs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("planned anew for 2"), "{}", stderr(&o));
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    fails_with(
        &["train", "--resume", "--out", s(&out), "--epochs", "1"],
        "fewer than the 2 epochs",
    );
}

#[test]
fn tables_and_folders_do_not_succeed_quietly_on_bad_data() {
    let d = scratch("tables");
    let out = d.join("run");
    let tiny = d.join("tiny.csv");
    std::fs::write(&tiny, "a,b,y\n1,2,0\n3,4,1\n").unwrap();
    fails_with(
        &[
            "train",
            "--dataset",
            &format!("csv:{}", s(&tiny)),
            "--target",
            "y",
            "--out",
            s(&out),
        ],
        "at least 5 rows",
    );
    let nan = d.join("nan.csv");
    std::fs::write(&nan, "a,b,y\n1,2,0\nNaN,4,1\n").unwrap();
    fails_with(
        &[
            "train",
            "--dataset",
            &format!("csv:{}", s(&nan)),
            "--target",
            "y",
            "--out",
            s(&out),
        ],
        "line 3, column 'a': 'NaN' is not a finite number",
    );
    // folder: a test split with a class the training split lacks.
    let root = d.join("pics");
    let png = |dir: PathBuf, v: u8| {
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([v]))
            .save(dir.join("p.png"))
            .unwrap();
    };
    png(root.join("train/cat"), 10);
    png(root.join("train/dog"), 200);
    png(root.join("test/dog"), 200);
    png(root.join("test/emu"), 90);
    fails_with(
        &["train", "--dataset", &format!("folder:{}", s(&root)), "--out", s(&out)],
        "class 'emu' is not one of the training classes",
    );
}

#[test]
fn diverging_runs_stop_with_a_diagnosis() {
    let d = scratch("diverge");
    let ds = format!("csv:{}/../../data/tabular/diabetes.csv", env!("CARGO_MANIFEST_DIR"));
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
        "3",
        "--lr",
        "1e30",
        "--warmup-epochs",
        "0",
        "--out",
        s(&d.join("run")),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: train: epoch 1 step"), "{err}");
    // In the first epoch there is no checkpoint yet, and the message does not claim one.
    assert!(err.contains("No checkpoint was saved before this step"), "{err}");
    assert!(err.contains("try a lower --lr"), "{err}");
    // A loss that grows without becoming infinite (it ran to the end at 3.7e19 before).
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
        "--lr",
        "0.5",
        "--warmup-epochs",
        "0",
        "--out",
        s(&d.join("run2")),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the loss diverged to") && err.contains("× the first step's loss"),
        "{err}"
    );
}

#[test]
fn bench_stops_on_a_diverging_loss() {
    fails_with(
        &["bench", "--model", "mlp", "--epochs", "1", "--lr", "1e6"],
        "the run diverged",
    );
    fails_with(
        &["bench", "--batch-size", "100000000000"],
        "larger than the training set",
    );
}

#[test]
fn predict_refuses_an_image_that_decodes_past_the_cap() {
    let ck = trained("bigimage");
    let png = ck.parent().unwrap().join("big.png");
    // 3000×3000 grey: 9 MB once decoded, a few KB in the file.
    image::GrayImage::new(3000, 3000).save(&png).unwrap();
    fails_with_env(
        &["predict", "--checkpoint", s(&ck), s(&png)],
        &[("NABLA_MAX_TENSOR_BYTES", "4M")],
        "big.png: cannot decode image",
    );
    let o = nabla(&["predict", "--checkpoint", s(&ck), s(&png)]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn train_help_gives_every_flag_a_sentence_and_its_default() {
    let o = nabla(&["train", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = help.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("--") {
            let text = lines.get(i + 1).map_or("", |n| n.trim());
            assert!(
                !text.is_empty() && !text.starts_with("--"),
                "{l} has no help text:\n{help}"
            );
        }
    }
    for default in [
        "[default: 12]",
        "[default: 64]",
        "[default: 0.0005]",
        "[default: 42]",
        "[default: cosine]",
    ] {
        assert!(help.contains(default), "{default} not in:\n{help}");
    }
}

#[test]
fn a_fetch_without_network_says_where_to_put_the_files_by_hand() {
    let d = scratch("offline");
    // A proxy that refuses every connection stands in for a machine without network.
    let proxy = [
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("ALL_PROXY", "http://127.0.0.1:9"),
    ];
    let err = fails_with_env(
        &["data", "fetch", "mnist", "--data-dir", s(&d), "--plain"],
        &proxy,
        "by hand",
    );
    assert!(
        err.contains("train-images-idx3-ubyte.gz") && err.contains(&d.join("mnist").display().to_string()),
        "{err}"
    );
}
