//! # nabla-data
//!
//! Datasets read from standard formats (IDX, CIFAR binary, image folders, CSV tables), the
//! catalogue of named datasets with their download and lookup, a table's split and
//! standardisation, the image pipeline a run fits on its training images, a batching loader with seeded
//! shuffling and worker threads, and the transforms of data augmentation and
//! test-time augmentation.

pub mod catalog;
pub mod cifar;
pub mod csv;
pub mod dataset;
pub mod download;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod open;
pub mod pipeline;
pub mod tabular;
pub mod transforms;
pub mod tta;

pub use crate::csv::{TabularDataset, Task};
pub use dataset::{Dataset, ImageDataset};
pub use folder::{ColorMode, FolderOptions};
pub use loader::{Batch, DataLoader, LoaderConfig};
pub use mnist::Split;
pub use open::{canonical_name, open};
pub use pipeline::ImagePipeline;
pub use transforms::Transform;

/// The row indices of a seeded split of `n` samples into (kept, held out), `fraction` of them
/// held out (rounded; at least one when the fraction is positive and `n` > 1). The same `seed`
/// gives the same split, whatever else the run does.
pub fn holdout_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    // A stream of its own: the split does not move when the shuffle of training does.
    nabla_core::Generator::seed_from_u64(seed ^ 0x76a1_5b11_7000_0001).shuffle(&mut order);
    let mut held = ((n as f64) * fraction).round() as usize;
    if fraction > 0.0 && n > 1 {
        held = held.clamp(1, n - 1);
    }
    let (out, kept) = order.split_at(held.min(n));
    let (mut kept, mut out) = (kept.to_vec(), out.to_vec());
    kept.sort_unstable();
    out.sort_unstable();
    (kept, out)
}
pub use tta::TtaMode;
