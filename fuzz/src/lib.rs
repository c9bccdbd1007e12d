//! The bodies of nabla's fuzz targets, one plain function per file format.
//!
//! Each body takes arbitrary bytes and hands them to a public parser. An `Err` is the right
//! answer to a bad file; a panic, an abort, a hang or an allocation larger than the cap set
//! here is a bug. The libFuzzer entry points in `fuzz_targets/` only call these functions, and
//! `crates/nabla/tests/fuzz_regressions.rs` includes this file to replay the seed corpus and
//! every reproducer in `fuzz/regressions/` on the stable toolchain.
//!
//! NOTE: this file is compiled both here and, through `#[path]`, inside the `nabla` crate's
//! tests: it may only use nabla-core, nabla-nn, nabla-data, nabla-models and nabla-train
//! (never libfuzzer-sys).

use std::path::Path;

use nabla_core::{DType, Tensor};
use nabla_data::csv::{Task, parse_csv};
use nabla_data::folder::{ColorMode, FolderOptions, decode_image};
use nabla_nn::Module;

/// The cap on one tensor or buffer inside the targets: 64 MiB, so that libFuzzer's
/// `-malloc_limit_mb` can sit just above it and catch any allocation that escapes the cap.
pub const MAX_TENSOR_BYTES: usize = 64 << 20;

fn cap() {
    nabla_core::limits::set_max_tensor_bytes(MAX_TENSOR_BYTES);
}

/// IDX arrays (MNIST's format), plain or gzipped: header, dimensions, gunzip bomb cap.
pub fn idx(data: &[u8]) {
    cap();
    let _ = nabla_data::idx::parse_idx(data, "fuzz.idx");
}

/// CIFAR binary records, as CIFAR-10 (one label byte, 10 classes) and as CIFAR-100 (two label
/// bytes, the fine one of 100 classes).
pub fn cifar(data: &[u8]) {
    cap();
    let _ = nabla_data::cifar::parse_records(data, "fuzz.bin", 1, 0, 10);
    let _ = nabla_data::cifar::parse_records(data, "fuzz.bin", 2, 1, 100);
}

/// CSV tables with the first header field as the target, as classes and as numbers; a table
/// that parses is also split, and standardised with its training rows' statistics.
pub fn csv(data: &[u8]) {
    cap();
    // The first field of the first line, the way a user would name the target column. A
    // quoted or odd header gives a name the parser does not find: an error, which is fine.
    let first = data
        .split(|&b| b == b',' || b == b'\n' || b == b'\r')
        .next()
        .unwrap_or(&[]);
    let target = String::from_utf8_lossy(first).trim().to_string();
    for task in [Task::Classification, Task::Regression] {
        if let Ok(table) = parse_csv(data, "fuzz.csv", &target, task) {
            let (mut train, mut test) = table.split(0.2, 1);
            let stats = train.feature_stats();
            train.standardize(&stats);
            test.standardize(&stats);
        }
    }
}

/// Pictures of an image folder (PNG, JPEG, by content), to grey 28×28 and to RGB 32×32.
pub fn image(data: &[u8]) {
    cap();
    let path = Path::new("fuzz.png");
    for (mode, size) in [(ColorMode::Grey, [28, 28]), (ColorMode::Rgb, [32, 32])] {
        let _ = decode_image(data, path, &FolderOptions { mode, size });
    }
}

/// Checkpoints (safetensors + JSON training state + content hash) and plain state dicts.
pub fn checkpoint(data: &[u8]) {
    cap();
    let path = Path::new("fuzz.safetensors");
    let _ = nabla_train::checkpoint::Checkpoint::from_bytes(data, path);
    let _ = nabla_nn::state::from_safetensors_bytes(data, path);
}

/// Architecture files (TOML): parsing, the graph, the layers' configs and the dry run that
/// infers shapes; a network that builds also runs forward once on a zero image.
pub fn archfile(data: &[u8]) {
    cap();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(net) = nabla_models::archfile::parse_archfile(text, "fuzz.toml", [1, 28, 28], 10) {
        let _ = net.forward(&Tensor::zeros((1, 1, 28, 28), DType::F32));
    }
}

/// A target's body: takes any bytes, must not panic.
pub type Body = fn(&[u8]);

/// The bodies by target name, for replaying a corpus folder named after its target.
pub const TARGETS: [(&str, Body); 6] = [
    ("idx", idx),
    ("cifar", cifar),
    ("csv", csv),
    ("image", image),
    ("checkpoint", checkpoint),
    ("archfile", archfile),
];
