//! Runs that end abruptly: SIGINT, SIGTERM and SIGHUP save and exit with 130, a second
//! signal does not cut the save short, and SIGKILL at random moments never leaves a checkpoint
//! that does not load; every interrupted run resumes to the weights of an uninterrupted one,
//! bit for bit, with augmentation, dropout and batch norm in the network.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nabla_train::checkpoint::Checkpoint;

/// Conv → batch norm → ReLU → pool → dropout → linear: every source of randomness and every
/// buffer that a resumed run must restore.
const ARCH: &str = r#"
[[layer]]
type = "conv2d"
out = 6
kernel = 5
[[layer]]
type = "batchnorm"
[[layer]]
type = "relu"
[[layer]]
type = "maxpool2d"
kernel = 2
[[layer]]
type = "flatten"
[[layer]]
type = "dropout"
p = 0.3
[[layer]]
type = "linear"
"#;

/// The binary under test: this build's, or `NABLA_TEST_BIN` (to show that a case fails on an
/// older build).
fn binary() -> String {
    std::env::var("NABLA_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nabla").to_string())
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The arguments of the run every test interrupts: 2 epochs of 100 steps.
fn args(arch: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--quiet",
        "--model",
        s(arch),
        "--augment",
        "--train-subset",
        "3200",
        "--test-subset",
        "100",
        "--batch-size",
        "32",
        "--epochs",
        "2",
        "--out",
        s(out),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    a.extend(extra.iter().map(|v| v.to_string()));
    a
}

fn command(args: &[String]) -> Command {
    let mut c = Command::new(binary());
    c.args(args).env("NABLA_NUM_THREADS", "1");
    c
}

fn run(args: &[String]) -> Output {
    command(args).output().expect("the nabla binary runs")
}

fn spawn(args: &[String]) -> Child {
    command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the nabla binary starts")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{sig}");
}

/// Waits until `path` exists (the run has taken steps), or panics after a minute.
fn wait_for(path: &Path, child: &mut Child) {
    let t0 = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before writing {}", path.display());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no {} after a minute",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn weights(dir: &Path) -> Vec<(String, Vec<u64>)> {
    let ck = Checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    let mut w: Vec<(String, Vec<u64>)> = ck
        .model
        .iter()
        .map(|(n, t)| (n.clone(), t.to_vec_f64().unwrap().iter().map(|v| v.to_bits()).collect()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// The uninterrupted run: its folder, the architecture file, its weights and its duration.
fn setup(name: &str) -> (PathBuf, PathBuf, Vec<(String, Vec<u64>)>, Duration) {
    let d = scratch(name);
    let arch = d.join("net.toml");
    std::fs::write(&arch, ARCH).unwrap();
    let full = d.join("full");
    let t0 = Instant::now();
    let o = run(&args(&arch, &full, &[]));
    let took = t0.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let w = weights(&full);
    assert!(
        w.iter().any(|(n, _)| n.contains("running_mean")),
        "batch norm buffers are checkpointed"
    );
    (d, arch, w, took)
}

fn resume_and_compare(arch: &Path, out: &Path, expected: &[(String, Vec<u64>)]) {
    let o = run(&args(arch, out, &["--resume"]));
    assert!(o.status.success(), "resume: {}", String::from_utf8_lossy(&o.stderr));
    let got = weights(out);
    assert_eq!(got.len(), expected.len());
    for ((na, a), (nb, b)) in got.iter().zip(expected) {
        assert_eq!(na, nb);
        assert!(a == b, "{na} differs from the uninterrupted run after resuming");
    }
}

#[test]
fn sigint_sigterm_and_sighup_save_and_a_second_signal_waits_for_the_save() {
    let (d, arch, expected, _) = setup("signals");
    for (sig, twice) in [("INT", true), ("TERM", false), ("HUP", true)] {
        let out = d.join(format!("cut-{sig}"));
        // --save-every 1: the checkpoint appears after the first step, so the run is training.
        let mut child = spawn(&args(&arch, &out, &["--save-every", "1"]));
        wait_for(&out.join("checkpoint.safetensors"), &mut child);
        signal(&child, sig);
        if twice {
            signal(&child, sig);
        }
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "SIG{sig}: {err}");
        // (Two signals sent at once may merge into one, as POSIX allows: the message that a
        // second one prints is not asserted; that the save was not cut short is.)
        let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
        assert!(ck.meta.epoch < 2, "stopped before the end");
        resume_and_compare(&arch, &out, &expected);
    }
}

#[test]
fn sigkill_at_random_moments_leaves_a_checkpoint_that_loads_and_resumes_exactly() {
    let (d, arch, expected, took) = setup("kill");
    // xorshift, seeded from the clock and printed so that a failure can be replayed.
    let mut state = std::env::var("NABLA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {state} (NABLA_CRASH_SEED replays it)");
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let out = d.join("killed");
    let (mut kills, mut saved) = (0, 0);
    // Kills anywhere in a run's time: start-up, steps, saves, evaluation.
    let window = (took.as_millis() as u64 * 6 / 10).max(20);
    for round in 0..16 {
        let resume = out.join("checkpoint.safetensors").exists();
        // A run killed before its first checkpoint left only its config: start it over.
        let extra: &[&str] = if resume {
            &["--save-every", "3", "--resume"]
        } else {
            &["--save-every", "3", "--force"]
        };
        let mut child = spawn(&args(&arch, &out, extra));
        std::thread::sleep(Duration::from_millis(next() % window));
        if child.try_wait().unwrap().is_some() {
            break; // the run finished before the kill
        }
        signal(&child, "KILL");
        child.wait().unwrap();
        kills += 1;
        let path = out.join("checkpoint.safetensors");
        if path.exists() {
            // Whatever moment the kill hit, the file on disk is a whole checkpoint.
            let ck = Checkpoint::load(&path).unwrap_or_else(|e| panic!("round {round}: {e}"));
            eprintln!(
                "round {round}: killed; checkpoint at epoch {} batch {}",
                ck.meta.epoch, ck.meta.next_batch
            );
            saved += 1;
        }
    }
    eprintln!("{kills} SIGKILLs, {saved} of them after a checkpoint; run time {took:?}");
    assert!(kills > 0, "no kill landed");
    if out.join("checkpoint.safetensors").exists() {
        resume_and_compare(&arch, &out, &expected);
    } else {
        // Every kill came before the first save: the run starts over and must still match.
        let o = run(&args(&arch, &out, &["--force"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(weights(&out), expected);
    }
}
