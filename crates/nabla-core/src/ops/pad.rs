//! Padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaddingMode { #[default] Zeros, Reflect, Replicate, Circular }
