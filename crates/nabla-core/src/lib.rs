//! # nabla-core
//!
//! Tensors on the CPU (and, with the `cuda` feature, NVIDIA GPUs), reverse-mode automatic
//! differentiation, and every tensor operation the networks of a neural-network course need:
//! element-wise maths with broadcasting, reductions, matrix products, convolutions with
//! zero/reflect/replicate/circular padding, pooling, local response normalisation, dropout.
//!
//! ```
//! use nabla_core::{DType, Tensor};
//! let w = Tensor::from_vec(vec![1.0f64, -2.0], (2,)).unwrap().requires_grad_();
//! let x = Tensor::from_vec(vec![3.0f64, 4.0], (2,)).unwrap();
//! let loss = w.mul(&x).unwrap().sum_all().unwrap(); // L = w·x
//! let grads = loss.backward().unwrap();
//! assert_eq!(grads.get(&w).unwrap().to_vec::<f64>().unwrap(), vec![3.0, 4.0]); // ∂L/∂w = x
//! ```

pub mod autocast;
pub mod autograd;
pub mod backend;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod device;
mod display;
mod dtype;
mod error;
pub mod gradcheck;
pub mod limits;
pub mod ops;
pub mod profile;
pub mod rng;
pub mod runtime;
mod shape;
pub mod storage;
mod tensor;
pub mod testing;

pub use autograd::{GradStore, NoGradGuard, is_grad_enabled, no_grad};
pub use device::Device;
pub use dtype::{DType, Float, WithDType};
pub use error::{Error, Result};
pub use gradcheck::{GradcheckOptions, gradcheck};
pub use ops::{AdamUpdate, AvgPool2dOptions, Conv2dOptions, MaxPool2dOptions, PaddingMode, SgdUpdate};
pub use rng::{Generator, manual_seed};
pub use runtime::set_num_threads;
pub use shape::{Layout, Shape};
pub use tensor::{Tensor, TensorId};
