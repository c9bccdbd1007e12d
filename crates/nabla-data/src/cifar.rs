//! CIFAR-10 and CIFAR-100 in their binary ("suitable for C programs") versions
//! (Krizhevsky, 2009, "Learning Multiple Layers of Features from Tiny Images";
//! layout documented at <https://www.cs.toronto.edu/~kriz/cifar.html>).
//!
//! Every record is the label byte(s) followed by 3,072 pixel bytes: the 1,024 red values of
//! the 32×32 image row by row, then the green, then the blue — already `[C, H, W]`.
//!
//! - CIFAR-10 (`cifar-10-batches-bin/`): 1 label byte (0–9) + 3,072 pixels = 3,073 bytes;
//!   `data_batch_1.bin` … `data_batch_5.bin` (10,000 records each) for training, `test_batch.bin`
//!   for testing, class names one per line in `batches.meta.txt`.
//! - CIFAR-100 (`cifar-100-binary/`): a coarse label byte (0–19), a fine label byte (0–99), then
//!   the 3,072 pixels = 3,074 bytes; `train.bin` (50,000) and `test.bin` (10,000), names in
//!   `fine_label_names.txt` and `coarse_label_names.txt`.

use std::path::{Path, PathBuf};

use crate::dataset::ImageDataset;
use crate::mnist::Split;
use nabla_core::{Error, Result};

/// Bytes of one image: 3 channels of 32×32.
pub const CIFAR_PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10's class names, as in `batches.meta.txt`.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which of CIFAR-100's two labels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cifar100Label {
    /// The 100 classes (`fine_label_names.txt`).
    #[default]
    Fine,
    /// The 20 superclasses (`coarse_label_names.txt`).
    Coarse,
}

fn file_err(path: &str, msg: impl Into<String>) -> Error {
    Error::File {
        path: path.to_string(),
        msg: msg.into(),
    }
}

/// Splits CIFAR binary records into pixels and one label per record.
///
/// `label_bytes` is 1 (CIFAR-10) or 2 (CIFAR-100); `label_index` picks which of them is the
/// label, and `classes` bounds it. A file whose length is not a whole number of records, or a
/// label out of range, is an error naming `origin` and the byte offset.
pub fn parse_records(
    bytes: &[u8],
    origin: &str,
    label_bytes: usize,
    label_index: usize,
    classes: usize,
) -> Result<(Vec<u8>, Vec<i64>)> {
    let record = label_bytes + CIFAR_PIXELS;
    let whole = bytes.len() / record;
    let offset = whole * record;
    if offset != bytes.len() {
        return Err(file_err(
            origin,
            format!(
                "truncated: record {whole} at byte offset {offset} has {} of its {record} bytes \
                 (file is {} bytes; CIFAR records are {label_bytes} label byte(s) + {CIFAR_PIXELS} pixels)",
                bytes.len() - offset,
                bytes.len()
            ),
        ));
    }
    if whole == 0 {
        return Err(file_err(origin, "empty file: no CIFAR records"));
    }
    let mut pixels = Vec::with_capacity(whole * CIFAR_PIXELS);
    let mut labels = Vec::with_capacity(whole);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[label_index] as usize;
        if label >= classes {
            return Err(file_err(
                origin,
                format!(
                    "record {i} at byte offset {}: label {label} is outside the {classes} classes",
                    i * record + label_index
                ),
            ));
        }
        labels.push(label as i64);
        pixels.extend_from_slice(&rec[label_bytes..]);
    }
    Ok((pixels, labels))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| file_err(&path.display().to_string(), e.to_string()))
}

/// Class names from a text file with one name per line (blank lines ignored); `fallback`
/// when the file does not exist.
fn read_names(path: &Path, expected: usize, fallback: impl FnOnce() -> Vec<String>) -> Result<Vec<String>> {
    if !path.exists() {
        return Ok(fallback());
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_err(&path.display().to_string(), e.to_string()))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != expected {
        return Err(file_err(
            &path.display().to_string(),
            format!("{} class names, expected {expected}", names.len()),
        ));
    }
    Ok(names)
}

/// The folder holding the `.bin` files: `dir` itself or its sub-folder `inner` (the name the
/// archive unpacks to).
fn bin_dir(dir: &Path, inner: &str, probe: &str) -> Result<PathBuf> {
    [dir.to_path_buf(), dir.join(inner)]
        .into_iter()
        .find(|d| d.join(probe).is_file())
        .ok_or_else(|| {
            file_err(
                &dir.display().to_string(),
                format!("no {probe} here or in {inner}/ (is this the extracted binary version?)"),
            )
        })
}

/// Reads CIFAR-10 record files into one dataset.
pub fn read_cifar10_files(paths: &[PathBuf], classes: Vec<String>) -> Result<ImageDataset> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for p in paths {
        let (px, lb) = parse_records(&read(p)?, &p.display().to_string(), 1, 0, classes.len())?;
        pixels.extend(px);
        labels.extend(lb);
    }
    ImageDataset::new(pixels, [3, 32, 32], labels, classes)
}

/// The files of a CIFAR-10 split, in the order the dataset defines.
pub fn cifar10_files(split: Split) -> Vec<String> {
    match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".into()],
    }
}

/// CIFAR-10 from `dir` (the extracted `cifar-10-batches-bin/` or the folder holding it).
/// Class names come from `batches.meta.txt`, or the published ones when it is missing.
pub fn cifar10(dir: &Path, split: Split) -> Result<ImageDataset> {
    let d = bin_dir(dir, "cifar-10-batches-bin", &cifar10_files(split)[0])?;
    let classes = read_names(&d.join("batches.meta.txt"), 10, || {
        CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
    })?;
    let paths: Vec<PathBuf> = cifar10_files(split).iter().map(|f| d.join(f)).collect();
    read_cifar10_files(&paths, classes)
}

/// The file of a CIFAR-100 split.
pub fn cifar100_file(split: Split) -> &'static str {
    match split {
        Split::Train => "train.bin",
        Split::Test => "test.bin",
    }
}

/// Reads one CIFAR-100 record file.
pub fn read_cifar100_file(path: &Path, label: Cifar100Label, classes: Vec<String>) -> Result<ImageDataset> {
    let index = match label {
        Cifar100Label::Coarse => 0,
        Cifar100Label::Fine => 1,
    };
    let (pixels, labels) = parse_records(&read(path)?, &path.display().to_string(), 2, index, classes.len())?;
    ImageDataset::new(pixels, [3, 32, 32], labels, classes)
}

/// CIFAR-100 from `dir` (the extracted `cifar-100-binary/` or the folder holding it), with
/// fine (100) or coarse (20) labels. Class names come from `fine_label_names.txt` /
/// `coarse_label_names.txt`, or are the label numbers when the file is missing.
pub fn cifar100(dir: &Path, split: Split, label: Cifar100Label) -> Result<ImageDataset> {
    let d = bin_dir(dir, "cifar-100-binary", cifar100_file(split))?;
    let (names, n) = match label {
        Cifar100Label::Fine => ("fine_label_names.txt", 100),
        Cifar100Label::Coarse => ("coarse_label_names.txt", 20),
    };
    let classes = read_names(&d.join(names), n, || (0..n).map(|i| i.to_string()).collect())?;
    read_cifar100_file(&d.join(cifar100_file(split)), label, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_into_planes_and_labels() {
        let mut b = vec![7u8];
        b.extend((0..CIFAR_PIXELS).map(|i| (i % 251) as u8));
        b.push(2);
        b.extend(std::iter::repeat_n(9u8, CIFAR_PIXELS));
        let (px, lb) = parse_records(&b, "t", 1, 0, 10).unwrap();
        assert_eq!(lb, vec![7, 2]);
        assert_eq!(px.len(), 2 * CIFAR_PIXELS);
        assert_eq!(px[1024], (1024 % 251) as u8);
        let e = parse_records(&b[..CIFAR_PIXELS + 10], "x.bin", 1, 0, 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.bin: truncated: record 1 at byte offset 3073 has 9 of its 3073 bytes"),
            "{e}"
        );
        let e = parse_records(&b, "y.bin", 1, 0, 5).unwrap_err().to_string();
        assert!(
            e.contains("record 0 at byte offset 0: label 7 is outside the 5 classes"),
            "{e}"
        );
    }
}
