//! # nabla-data
//!
//! Datasets read from standard formats, a batching loader with seeded shuffling and worker
//! threads, and the transforms of data augmentation.

pub mod dataset;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod transforms;

pub use dataset::{Dataset, ImageDataset};
pub use loader::{Batch, DataLoader, LoaderConfig};
pub use transforms::Transform;
