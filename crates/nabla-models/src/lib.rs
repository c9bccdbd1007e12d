//! # nabla-models
//!
//! The model zoo, one small file per architecture, built only from `nabla-nn` parts.

pub mod archfile;
pub mod lenet;
pub mod mlp;
pub mod registry;

pub use archfile::{GraphNet, load_archfile, parse_archfile};
pub use lenet::{LeNet5, LeNetStyle};
pub use mlp::Mlp;
pub use registry::{ModelSpec, build_model, model_names};
