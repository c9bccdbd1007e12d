//! Models by name, for the command line.

use crate::{LeNet5, LeNetStyle, Mlp};
use nabla_core::{Error, Result};
use nabla_nn::Module;

/// What a model is built for: input `[C, H, W]` and number of classes.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub input: [usize; 3],
    pub classes: usize,
}

impl ModelSpec {
    /// At least one class, positive input sizes, and one f32 input sample under the cap on one
    /// tensor ([`nabla_core::limits`]): checked before any layer is built for them.
    pub fn validate(&self) -> Result<()> {
        if self.classes == 0 {
            return Err(Error::Argument {
                op: "model",
                msg: "the number of classes must be at least 1".into(),
            });
        }
        if self.input.contains(&0) {
            return Err(Error::Argument {
                op: "model",
                msg: format!("input shape {:?} has a zero size", self.input),
            });
        }
        nabla_core::limits::check_tensor(&self.input, 4, "model input").map(|_| ())
    }
}

/// The names `build_model` knows.
pub fn model_names() -> &'static [&'static str] {
    &[
        "lenet5",
        "lenet5-classic",
        "mlp",
        "mlp:H1,H2,...",
        "PATH.toml (an architecture file)",
    ]
}

/// Builds a model by name: `lenet5`, `lenet5-classic`, `mlp` (784-512-256-10 on MNIST-sized
/// input) or `mlp:300,100` (hidden sizes given).
pub fn build_model(name: &str, spec: &ModelSpec) -> Result<Box<dyn Module>> {
    spec.validate()?;
    let [c, h, w] = spec.input;
    if let Some(min) = crate::zoo::smallest_input(name).filter(|&min| h.min(w) < min) {
        return Err(Error::Argument {
            op: "model",
            msg: format!(
                "{name} takes images of at least {min}×{min} pixels, not {c}×{h}×{w}: pass --input {c}x{min}x{min} (or larger), and the images are resized to it"
            ),
        });
    }
    if let Some(model) = crate::zoo::build_zoo(name, spec.input, spec.classes) {
        return model;
    }
    match name {
        "lenet5" | "lenet" => Ok(Box::new(LeNet5::for_input(
            spec.input,
            spec.classes,
            LeNetStyle::Modern,
        )?)),
        "lenet5-classic" => Ok(Box::new(LeNet5::for_input(
            spec.input,
            spec.classes,
            LeNetStyle::Classic,
        )?)),
        "mlp" => Ok(Box::new(Mlp::new(&[c * h * w, 512, 256, spec.classes])?)),
        other if other.starts_with("mlp:") => {
            let hidden: std::result::Result<Vec<usize>, _> =
                other[4..].split(',').map(|s| s.trim().parse::<usize>()).collect();
            let hidden = hidden.ok().filter(|h| !h.contains(&0)).ok_or_else(|| Error::Argument {
                op: "model",
                msg: format!("'{other}': expected mlp:H1,H2,... with positive integers"),
            })?;
            let mut sizes = vec![c * h * w];
            sizes.extend(hidden);
            sizes.push(spec.classes);
            Ok(Box::new(Mlp::new(&sizes)?))
        }
        other if other.ends_with(".toml") => Ok(Box::new(crate::archfile::load_archfile(
            std::path::Path::new(other),
            spec.input,
            spec.classes,
        )?)),
        other => Err(Error::Argument {
            op: "model",
            msg: format!(
                "unknown model '{other}' (known: {}, {})",
                model_names().join(", "),
                crate::zoo::zoo_names().join(", ")
            ),
        }),
    }
}
