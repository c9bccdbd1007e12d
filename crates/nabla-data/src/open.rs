//! Datasets by the names the command line takes: `fashion-mnist` (bundled), the catalogue's
//! (`mnist`, `kmnist`, `cifar10`, `cifar100`, …; see `nabla data list`), and `folder:PATH`.

use crate::dataset::ImageDataset;
use crate::folder::{ColorMode, FolderOptions, list_image_folder, load_image_folder_as};
use crate::mnist::{Split, fashion_mnist};
use nabla_core::Result;
use std::path::Path;

/// One split of an image dataset by name: `fashion-mnist` (bundled), a catalogue name (looked
/// up in `dir`, $NABLA_DATA, the user cache and /usr/share/datasets), or `folder:PATH`
/// (PATH/train and PATH/test with one sub-folder per class, read as 32×32 RGB, or at the size
/// and colour of `input`).
pub fn open(name: &str, dir: Option<&Path>, split: Split, input: Option<[usize; 3]>) -> Result<ImageDataset> {
    if let Some(root) = name.strip_prefix("folder:") {
        let part = match split {
            Split::Train => "train",
            Split::Test => "test",
        };
        let opts = match input {
            Some([1, h, w]) => FolderOptions {
                mode: ColorMode::Grey,
                size: [h, w],
            },
            Some([_, h, w]) => FolderOptions {
                mode: ColorMode::Rgb,
                size: [h, w],
            },
            None => FolderOptions {
                mode: ColorMode::Rgb,
                size: [32, 32],
            },
        };
        // The test split is labelled with the training split's classes: its own sub-folders
        // may be fewer, and must not be other ones.
        let classes = match split {
            Split::Train => None,
            Split::Test => Some(list_image_folder(&Path::new(root).join("train"))?.1),
        };
        return load_image_folder_as(&Path::new(root).join(part), &opts, classes.as_deref());
    }
    match name {
        "fashion-mnist" | "fashion_mnist" | "fashion" if dir.is_none() => fashion_mnist(None, split),
        other => crate::catalog::load(other, dir, split),
    }
}

/// A dataset name with the path of `csv:PATH` and `folder:PATH` made absolute (when it
/// exists), so that a run's configuration and checkpoint name it from any folder.
pub fn canonical_name(name: &str) -> String {
    for kind in ["csv:", "folder:"] {
        if let Some(path) = name.strip_prefix(kind)
            && let Ok(abs) = std::fs::canonicalize(path)
        {
            return format!("{kind}{}", abs.display());
        }
    }
    name.to_string()
}
