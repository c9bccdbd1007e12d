//! CIFAR-10/100 binary readers on small record files written here.

use std::path::Path;

use nabla_data::Dataset;
use nabla_data::Split;
use nabla_data::cifar::{self, CIFAR_PIXELS, Cifar100Label};

/// A record: the label bytes then pixels whose value encodes (record, channel).
fn record(labels: &[u8], seed: u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3u8 {
        r.extend(std::iter::repeat_n(seed.wrapping_mul(10).wrapping_add(c), 1024));
    }
    r
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn cifar10_tree(root: &Path, with_meta: bool) -> std::path::PathBuf {
    let dir = root.join("cifar-10-batches-bin");
    for b in 1..=5u8 {
        let mut bytes = record(&[b], b);
        bytes.extend(record(&[9], b + 100));
        write(&dir.join(format!("data_batch_{b}.bin")), &bytes);
    }
    write(&dir.join("test_batch.bin"), &record(&[3], 7));
    if with_meta {
        let names = "plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
        write(&dir.join("batches.meta.txt"), names.as_bytes());
    }
    dir
}

#[test]
fn cifar10_reads_all_batches_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    cifar10_tree(tmp.path(), true);
    // The folder holding cifar-10-batches-bin/ works as well as the folder itself.
    let train = cifar::cifar10(tmp.path(), Split::Train).unwrap();
    assert_eq!(train.shape, [3, 32, 32]);
    assert_eq!(train.labels, vec![1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
    assert_eq!(train.classes[1], "car");
    assert_eq!(train.pixels.len(), 10 * CIFAR_PIXELS);
    // Planar layout: channel c of record 0 (seed 1) is 10 + c.
    let (x, y) = train.get(0);
    assert_eq!(y, 1);
    assert_eq!(x[0], 10.0 / 255.0);
    assert_eq!(x[1024], 11.0 / 255.0);
    assert_eq!(x[2048 + 1023], 12.0 / 255.0);
    let test = cifar::cifar10(&tmp.path().join("cifar-10-batches-bin"), Split::Test).unwrap();
    assert_eq!(test.labels, vec![3]);
}

#[test]
fn cifar10_without_meta_uses_the_published_names() {
    let tmp = tempfile::tempdir().unwrap();
    cifar10_tree(tmp.path(), false);
    let test = cifar::cifar10(tmp.path(), Split::Test).unwrap();
    assert_eq!(test.classes[0], "airplane");
    assert_eq!(test.classes[9], "truck");
}

#[test]
fn cifar10_truncated_file_names_path_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cifar10_tree(tmp.path(), true);
    let path = dir.join("data_batch_3.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = cifar::cifar10(tmp.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin: truncated"), "{e}");
    assert!(
        e.contains("record 1 at byte offset 3073 has 2973 of its 3073 bytes"),
        "{e}"
    );
}

#[test]
fn cifar_bad_inputs_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing there.
    let e = cifar::cifar10(tmp.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("no data_batch_1.bin"), "{e}");
    // A label byte outside the classes.
    let dir = cifar10_tree(tmp.path(), true);
    write(&dir.join("test_batch.bin"), &record(&[42], 0));
    let e = cifar::cifar10(tmp.path(), Split::Test).unwrap_err().to_string();
    assert!(e.contains("label 42 is outside the 10 classes"), "{e}");
    // A meta file with the wrong number of names.
    write(&dir.join("batches.meta.txt"), b"a\nb\n");
    let e = cifar::cifar10(tmp.path(), Split::Train).unwrap_err().to_string();
    assert!(e.contains("batches.meta.txt: 2 class names, expected 10"), "{e}");
    // An empty file.
    write(&dir.join("test_batch.bin"), b"");
    let e = cifar::parse_records(b"", "e.bin", 1, 0, 10).unwrap_err().to_string();
    assert!(e.contains("empty file"), "{e}");
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar-100-binary");
    let mut train = record(&[4, 99], 1);
    train.extend(record(&[19, 0], 2));
    write(&dir.join("train.bin"), &train);
    write(&dir.join("test.bin"), &record(&[0, 57], 3));
    let fine_names: String = (0..100).map(|i| format!("fine{i}\n")).collect();
    write(&dir.join("fine_label_names.txt"), fine_names.as_bytes());

    let fine = cifar::cifar100(tmp.path(), Split::Train, Cifar100Label::Fine).unwrap();
    assert_eq!(fine.labels, vec![99, 0]);
    assert_eq!(fine.classes.len(), 100);
    assert_eq!(fine.classes[99], "fine99");
    assert_eq!(fine.pixels[0], 10);
    // No coarse_label_names.txt: the classes are the label numbers.
    let coarse = cifar::cifar100(&dir, Split::Train, Cifar100Label::Coarse).unwrap();
    assert_eq!(coarse.labels, vec![4, 19]);
    assert_eq!(coarse.classes, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
    let test = cifar::cifar100(tmp.path(), Split::Test, Cifar100Label::Fine).unwrap();
    assert_eq!(test.labels, vec![57]);

    // 3,074-byte records: a CIFAR-10 file read as CIFAR-100 does not divide evenly.
    write(&dir.join("test.bin"), &record(&[1], 0));
    let e = cifar::cifar100(tmp.path(), Split::Test, Cifar100Label::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test.bin: truncated: record 0 at byte offset 0 has 3073 of its 3074 bytes"),
        "{e}"
    );
}
