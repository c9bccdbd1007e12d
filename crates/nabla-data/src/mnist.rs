//! MNIST-style datasets (MNIST, Fashion-MNIST, KMNIST) from IDX files, and the bundled
//! Fashion-MNIST that makes `nabla train` work offline on a fresh clone.

use std::path::{Path, PathBuf};

use crate::dataset::ImageDataset;
use crate::idx::{IdxArray, read_idx};
use nabla_core::{Error, Result};

/// Fashion-MNIST's class names (Xiao et al., 2017).
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

fn file_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// Pairs an images array `[N, H, W]` with a labels array `[N]`.
pub fn from_idx(images: IdxArray, labels: IdxArray, classes: Vec<String>, origin: &str) -> Result<ImageDataset> {
    if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
        return Err(Error::File {
            path: origin.to_string(),
            msg: format!(
                "expected images [N, H, W] and labels [N], got {:?} and {:?}",
                images.dims, labels.dims
            ),
        });
    }
    if images.dims[1] == 0 || images.dims[2] == 0 || images.dims[0] == 0 {
        return Err(Error::File {
            path: origin.to_string(),
            msg: format!("images [N, H, W] = {:?} has a zero size", images.dims),
        });
    }
    let labels: Vec<i64> = labels.data.iter().map(|&l| l as i64).collect();
    ImageDataset::new(images.data, [1, images.dims[1], images.dims[2]], labels, classes)
}

/// Reads `split` from a folder holding the four IDX files (`.gz` or not).
pub fn load_dir(dir: &Path, split: Split, classes: Vec<String>) -> Result<ImageDataset> {
    let (img, lab) = file_names(split);
    let find = |stem: &str| -> Result<PathBuf> {
        [format!("{stem}.gz"), stem.to_string()]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| Error::File {
                path: dir.join(format!("{stem}.gz")).display().to_string(),
                msg: "not found (looked for the .gz and the uncompressed file)".into(),
            })
    };
    let (ip, lp) = (find(img)?, find(lab)?);
    from_idx(read_idx(&ip)?, read_idx(&lp)?, classes, &ip.display().to_string())
}

/// The Fashion-MNIST files compiled into the binary (30 MB, MIT licence; see data/fashion-mnist/README.md).
#[cfg(feature = "embedded-data")]
mod embedded {
    pub static TRAIN_IMAGES: &[u8] = include_bytes!("../../../data/fashion-mnist/train-images-idx3-ubyte.gz");
    pub static TRAIN_LABELS: &[u8] = include_bytes!("../../../data/fashion-mnist/train-labels-idx1-ubyte.gz");
    pub static TEST_IMAGES: &[u8] = include_bytes!("../../../data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    pub static TEST_LABELS: &[u8] = include_bytes!("../../../data/fashion-mnist/t10k-labels-idx1-ubyte.gz");
}

fn fashion_classes() -> Vec<String> {
    FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Fashion-MNIST as bundled with nabla: works offline, needs no file on disk.
#[cfg(feature = "embedded-data")]
pub fn fashion_mnist_embedded(split: Split) -> Result<ImageDataset> {
    let (i, l, name) = match split {
        Split::Train => (
            embedded::TRAIN_IMAGES,
            embedded::TRAIN_LABELS,
            "embedded fashion-mnist train",
        ),
        Split::Test => (
            embedded::TEST_IMAGES,
            embedded::TEST_LABELS,
            "embedded fashion-mnist test",
        ),
    };
    use crate::idx::parse_idx;
    from_idx(parse_idx(i, name)?, parse_idx(l, name)?, fashion_classes(), name)
}

/// Without the `embedded-data` feature there is no bundled copy: an error that says where to
/// find the files.
#[cfg(not(feature = "embedded-data"))]
pub fn fashion_mnist_embedded(_split: Split) -> Result<ImageDataset> {
    Err(Error::File {
        path: "data/fashion-mnist".into(),
        msg: "this build has no Fashion-MNIST compiled in (feature `embedded-data` off): \
              pass --data-dir data/fashion-mnist"
            .into(),
    })
}

/// Fashion-MNIST from `dir` if given, else the bundled copy.
pub fn fashion_mnist(dir: Option<&Path>, split: Split) -> Result<ImageDataset> {
    match dir {
        Some(d) => load_dir(d, split, fashion_classes()),
        None => fashion_mnist_embedded(split),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_copy_has_the_published_sizes() {
        let test = fashion_mnist_embedded(Split::Test).unwrap();
        assert_eq!(test.labels.len(), 10_000);
        assert_eq!(test.shape, [1, 28, 28]);
        // Every class has exactly 1,000 test images (Xiao et al., 2017).
        for c in 0..10 {
            assert_eq!(test.labels.iter().filter(|&&l| l == c).count(), 1000);
        }
    }
}
