//! # nabla-models
//!
//! The model zoo, one small file per architecture, built only from `nabla-nn` parts.

pub mod lenet;
pub mod mlp;
pub mod registry;

pub use lenet::{LeNet5, LeNetStyle};
pub use mlp::Mlp;
pub use registry::{ModelSpec, build_model, model_names};
