//! # nabla-models
//!
//! The model zoo, one small file per architecture, built only from `nabla-nn` parts.

pub mod alexnet;
pub mod archfile;
mod common;
pub mod googlenet;
pub mod lenet;
pub mod mlp;
pub mod nin;
pub mod registry;
pub mod resnet;
pub mod senet;
pub mod vgg;
pub mod zfnet;
pub mod zoo;

pub use archfile::{GraphNet, load_archfile, parse_archfile};
pub use lenet::{LeNet5, LeNetStyle};
pub use mlp::Mlp;
pub use registry::{ModelSpec, build_model, model_names};
pub use zoo::{build_zoo, zoo_names};
