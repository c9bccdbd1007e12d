//! # nabla-data
//!
//! Datasets read from standard formats (IDX, CIFAR binary, image folders, CSV tables), the
//! catalogue of named datasets with their download and lookup, a batching loader with seeded
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
pub mod transforms;
pub mod tta;

pub use crate::csv::{TabularDataset, Task};
pub use dataset::{Dataset, ImageDataset};
pub use folder::{ColorMode, FolderOptions};
pub use loader::{Batch, DataLoader, LoaderConfig};
pub use mnist::Split;
pub use transforms::Transform;
pub use tta::TtaMode;
