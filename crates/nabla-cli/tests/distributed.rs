//! Data-parallel training over MPI: `mpirun -n 2 nabla train` on this machine (two ranks,
//! one compute thread each). Needs a build with `--features mpi` and Open MPI's `mpirun`
//! (`.ci/run` installs libopenmpi-dev and openmpi-bin and runs
//! `cargo test -p nabla-cli --features mpi --test distributed`); built without the feature the
//! tests are listed as ignored with that command, and without `mpirun` they say SKIPPED.
//!
//! - 2 ranks × half batches give parameters bit-identical to one process accumulating the two
//!   halves (`--accumulate 2`), and within 1e-5 of one process on whole batches after one step,
//!   with the same loss over 20 steps;
//! - every rank holds the same parameters after every step (`--check-replicas`);
//! - a world of one is the same run as no MPI; a rank killed mid-run ends the job, on every
//!   rank, without a hang; `--resume` continues a data-parallel run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn skip() -> Option<&'static str> {
    if !cfg!(feature = "mpi") {
        return Some("built without the mpi feature (cargo test -p nabla-cli --features mpi --test distributed)");
    }
    let found = Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (!found).then_some("no mpirun on this machine (apt-get install openmpi-bin libopenmpi-dev)")
}

macro_rules! skip_without_mpi {
    () => {
        if let Some(why) = skip() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `mpirun -n ranks nabla args…` (ranks = 0: nabla alone), one compute thread per process.
fn command(ranks: usize, args: &[&str]) -> Command {
    let mut c = if ranks == 0 {
        Command::new(env!("CARGO_BIN_EXE_nabla"))
    } else {
        let mut c = Command::new("mpirun");
        c.args(["-n", &ranks.to_string(), "--oversubscribe", "-x", "NABLA_NUM_THREADS"]);
        c.arg(env!("CARGO_BIN_EXE_nabla"));
        c
    };
    c.args(args)
        .env("NABLA_NUM_THREADS", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c
}

fn run(ranks: usize, args: &[&str]) -> Output {
    let o = command(ranks, args).output().expect("mpirun runs");
    assert!(
        o.status.success(),
        "{ranks} ranks {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The model's tensors of a run's checkpoint, by name.
fn weights(run: &Path) -> Vec<(String, Vec<f32>)> {
    let (tensors, _) = nabla_nn::state::load_safetensors(run.join("checkpoint.safetensors")).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = tensors
        .into_iter()
        .filter(|(n, _)| n.starts_with("model/"))
        .map(|(n, t)| (n, t.to_vec::<f32>().unwrap()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The largest |a − b| over the largest |b|, over all tensors.
fn relative(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f64 {
    let scale = b.iter().flat_map(|(_, v)| v).fold(0f32, |m, x| m.max(x.abs())) as f64;
    let diff = a
        .iter()
        .zip(b)
        .flat_map(|((_, x), (_, y))| x.iter().zip(y).map(|(p, q)| (p - q).abs() as f64))
        .fold(0.0, f64::max);
    diff / scale
}

fn train_args<'a>(out: &'a Path, subset: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--quiet",
        "--train-subset",
        subset,
        "--test-subset",
        "100",
        "--batch-size",
        "64",
        "--epochs",
        epochs,
        "--warmup-epochs",
        "0",
        "--out",
        s(out),
    ]
}

#[test]
#[cfg_attr(
    not(feature = "mpi"),
    ignore = "needs a build with --features mpi and mpirun: cargo test -p nabla-cli --features mpi --test distributed"
)]
fn two_ranks_equal_one_process_accumulating_the_two_halves() {
    skip_without_mpi!();
    let d = scratch("halves");
    // One step: 64 samples, one batch of 64 (32 per rank).
    let (two, acc, one) = (d.join("two"), d.join("acc"), d.join("one"));
    run(2, &train_args(&two, "64", "1"));
    let mut a = train_args(&acc, "64", "1");
    a.extend(["--accumulate", "2"]);
    run(0, &a);
    run(0, &train_args(&one, "64", "1"));
    let (w2, wa, w1) = (weights(&two), weights(&acc), weights(&one));
    assert_eq!(
        w2, wa,
        "2 ranks × 32 and one process accumulating 2 × 32 must agree bit for bit"
    );
    let err = relative(&w2, &w1);
    assert!(err <= 1e-5, "one step against the whole batch: relative error {err:e}");
    assert!(w2 != w1 || err == 0.0);
}

#[test]
#[cfg_attr(
    not(feature = "mpi"),
    ignore = "needs a build with --features mpi and mpirun: cargo test -p nabla-cli --features mpi --test distributed"
)]
fn twenty_steps_follow_the_loss_of_one_process_and_replicas_stay_equal() {
    skip_without_mpi!();
    let d = scratch("twenty");
    let (two, one) = (d.join("two"), d.join("one"));
    // 20 epochs of one batch each: metrics.csv has the loss of every step.
    let mut a = train_args(&two, "64", "20");
    a.push("--check-replicas");
    run(2, &a);
    run(0, &train_args(&one, "64", "20"));
    let losses = |run: &Path| -> Vec<f64> {
        let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "train_loss").unwrap();
        lines.map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect()
    };
    let (l2, l1) = (losses(&two), losses(&one));
    assert_eq!(l2.len(), 20);
    for (i, (a, b)) in l2.iter().zip(&l1).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs(),
            "step {}: loss {a} with 2 ranks, {b} with one",
            i + 1
        );
    }
    let err = relative(&weights(&two), &weights(&one));
    assert!(err <= 1e-4, "after 20 steps: relative error {err:e}");
}

#[test]
#[cfg_attr(
    not(feature = "mpi"),
    ignore = "needs a build with --features mpi and mpirun: cargo test -p nabla-cli --features mpi --test distributed"
)]
fn a_world_of_one_is_a_run_without_mpi_and_resume_continues_a_distributed_run() {
    skip_without_mpi!();
    let d = scratch("one");
    let (mpi1, plain) = (d.join("mpi1"), d.join("plain"));
    run(1, &train_args(&mpi1, "256", "1"));
    run(0, &train_args(&plain, "256", "1"));
    assert_eq!(weights(&mpi1), weights(&plain));

    // Stopped after 3 of 8 steps and resumed on 2 ranks = 8 steps in one go on 2 ranks.
    let (whole, parts) = (d.join("whole"), d.join("parts"));
    run(2, &train_args(&whole, "512", "1"));
    let mut a = train_args(&parts, "512", "1");
    a.extend(["--stop-after-steps", "3"]);
    let o = command(2, &a).output().unwrap();
    assert!(!o.status.success(), "an interrupted run exits with 130");
    let mut a = train_args(&parts, "512", "1");
    a.retain(|x| {
        ![
            "--train-subset",
            "512",
            "--test-subset",
            "100",
            "--batch-size",
            "64",
            "--epochs",
            "1",
            "--warmup-epochs",
            "0",
        ]
        .contains(x)
    });
    a.push("--resume");
    run(2, &a);
    assert_eq!(weights(&parts), weights(&whole));
}

#[test]
#[cfg_attr(
    not(feature = "mpi"),
    ignore = "needs a build with --features mpi and mpirun: cargo test -p nabla-cli --features mpi --test distributed"
)]
fn a_rank_that_dies_ends_the_job_on_every_rank() {
    skip_without_mpi!();
    let d = scratch("die");
    let out = d.join("run");
    let mut child = command(2, &train_args(&out, "60000", "5"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for both ranks to run, then kill one of them.
    let t0 = Instant::now();
    let ranks = loop {
        let o = Command::new("pgrep")
            .args(["-P", &child.id().to_string()])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect();
        if pids.len() >= 2 || t0.elapsed() > Duration::from_secs(30) {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ranks.len() >= 2, "two ranks started: {ranks:?}");
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill").args(["-9", &ranks[1]]).status().unwrap();
    let killed = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the job still ran 60 s after a rank was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    eprintln!(
        "job ended {:.1} s after a rank was killed",
        killed.elapsed().as_secs_f64()
    );
    // The other rank is gone too.
    let left = Command::new("pgrep").args(["-f", s(&out)]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "a rank outlived the job"
    );
}
