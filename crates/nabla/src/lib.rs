//! # nabla
//!
//! One dependency for the whole framework: re-exports of `nabla-core` (tensors, autograd),
//! `nabla-nn` (layers, losses, optimisers), `nabla-data`, `nabla-models` and `nabla-train`,
//! and a [`prelude`].
//!
//! ```
//! use nabla::prelude::*;
//! let net = Sequential::new().add(Linear::new(4, 3).unwrap()).add(ReLU).add(Linear::new(3, 1).unwrap());
//! assert_eq!(net.num_parameters(), 4 * 3 + 3 + 3 + 1);
//! ```

pub use nabla_core as core;
pub use nabla_data as data;
pub use nabla_models as models;
pub use nabla_nn as nn;
pub use nabla_train as train;

/// The names most programs need.
pub mod prelude {
    pub use nabla_core::{DType, Device, Error, Generator, Result, Shape, Tensor, manual_seed, no_grad};
    pub use nabla_nn::loss::{self, Reduction};
    pub use nabla_nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
    pub use nabla_nn::{
        BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, Sigmoid, Softmax, Tanh,
    };
}
