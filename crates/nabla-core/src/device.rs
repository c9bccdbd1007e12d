//! Devices. The CPU path is always built; CUDA comes behind the `cuda` feature.
//!
//! `Device::Cuda(n)` exists in every build so that `--device cuda` parses everywhere; without
//! the feature, moving a tensor there is an error that says how to build with it.

use crate::error::{Error, Result};

/// Where a tensor's storage lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// The NVIDIA GPU with this ordinal (`cuda:0` is the first).
    Cuda(usize),
}

impl Device {
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }
    pub fn is_cuda(&self) -> bool {
        matches!(self, Device::Cuda(_))
    }

    /// Parses `cpu`, `cuda` (= `cuda:0`) or `cuda:N`, as PyTorch's `torch.device` does.
    ///
    /// ```
    /// use nabla_core::Device;
    /// assert_eq!(Device::parse("cuda:1").unwrap(), Device::Cuda(1));
    /// assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
    /// assert!(Device::parse("gpu").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Device> {
        let bad = || Error::Argument {
            op: "device",
            msg: format!("unknown device {text:?}: expected cpu, cuda or cuda:N"),
        };
        match text.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => {
                let n = other.strip_prefix("cuda:").ok_or_else(bad)?;
                n.parse().map(Device::Cuda).map_err(|_| bad())
            }
        }
    }

    /// True when this build can place tensors on CUDA devices (the `cuda` feature).
    pub fn cuda_built() -> bool {
        cfg!(feature = "cuda")
    }
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        Device::parse(s)
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}
