//! # nabla-nn
//!
//! The building blocks of neural networks on top of `nabla-core`: the [`Module`] trait with
//! PyTorch's parameter names, layers, initialisers, losses, optimisers, learning-rate
//! schedules, gradient clipping, and safetensors state dicts that PyTorch can read.

pub mod activation;
pub mod clip;
pub mod container;
pub mod conv;
pub mod dropout;
pub mod init;
pub mod linear;
pub mod loss;
pub mod module;
pub mod norm;
pub mod onnx;
pub mod optim;
pub mod pool;
pub mod schedule;
pub mod state;

pub use activation::{Flatten, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use container::Sequential;
pub use conv::{Conv2d, Conv2dConfig};
pub use dropout::{Dropout, Dropout2d};
pub use init::Init;
pub use linear::{Linear, LinearConfig};
pub use loss::Reduction;
pub use module::Module;
pub use norm::{BatchNorm, LocalResponseNorm};
pub use optim::{Adam, AdamW, Optimizer, OptimizerState, ParamGroup, RMSprop, Sgd};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use schedule::LrScheduler;
