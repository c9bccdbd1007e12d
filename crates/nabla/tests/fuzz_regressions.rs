//! Replays the fuzz targets' seed corpora (`fuzz/corpus/<target>/`) and every reproducer of a
//! bug found by fuzzing (`fuzz/regressions/<target>/`) through the same target bodies, on the
//! stable toolchain: a parser that panics on any of these files fails here, without libFuzzer.
//! See docs/RELIABILITY.md.

// The bodies use only crates this crate depends on (nabla-core, -nn, -data, -models, -train).
#[path = "../../../fuzz/src/lib.rs"]
mod bodies;

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<set>/<target>/`, sorted; none when the folder does not exist.
fn files(set: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(set).join(target)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Runs `target`'s body on each of its seeds and reproducers; fails naming every file that
/// panics.
fn replay(target: &str) {
    let body = bodies::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|&(_, body)| body)
        .unwrap();
    let seeds = files("corpus", target);
    assert!(!seeds.is_empty(), "no seeds in fuzz/corpus/{target}/");
    let mut panicked = Vec::new();
    for file in seeds.iter().chain(&files("regressions", target)) {
        let bytes = std::fs::read(file).unwrap();
        if catch_unwind(|| body(&bytes)).is_err() {
            panicked.push(file.display().to_string());
        }
    }
    assert!(panicked.is_empty(), "{target}: these inputs panic: {panicked:#?}");
}

#[test]
fn idx_files_replay_without_panics() {
    replay("idx");
}

#[test]
fn cifar_files_replay_without_panics() {
    replay("cifar");
}

#[test]
fn csv_files_replay_without_panics() {
    replay("csv");
}

#[test]
fn image_files_replay_without_panics() {
    replay("image");
}

#[test]
fn checkpoint_files_replay_without_panics() {
    replay("checkpoint");
}

#[test]
fn archfile_files_replay_without_panics() {
    replay("archfile");
}
