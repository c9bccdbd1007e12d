//! `nabla export`: a trained model for use elsewhere, as a plain state dict under PyTorch's
//! names (`--weights-only`: no `model/` prefix, no optimiser state, for
//! `model.load_state_dict(load_file(path))`) or as an ONNX inference graph (`--format onnx`:
//! opset 17, a dynamic batch dimension, the class names and input normalisation in the
//! model's metadata).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use nabla_core::{DType, Error, NoGradGuard, Result, Tensor};
use nabla_models::ModelSpec;
use nabla_nn::Module;
use nabla_nn::onnx::OnnxMetadata;
use nabla_train::checkpoint::Checkpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A safetensors state dict (the same as --weights-only)
    Safetensors,
    /// An ONNX model (opset 17) for onnxruntime, TensorRT, browsers
    Onnx,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint written by `nabla train`
    #[arg(long, value_name = "PATH", required_unless_present = "model")]
    checkpoint: Option<PathBuf>,
    /// Instead of a checkpoint: an untrained model (a zoo name or PATH.toml), initialised with
    /// --seed, for trying the export of an architecture
    #[arg(long, conflicts_with = "checkpoint", requires = "input")]
    model: Option<String>,
    /// With --model: its input as CxHxW
    #[arg(long, value_parser = crate::common::parse_input)]
    input: Option<[usize; 3]>,
    /// With --model: the number of classes
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// With --model: the seed of the initial weights
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// What to write: a safetensors state dict or an ONNX model
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write the weights alone (and batch-norm statistics) as a safetensors state dict
    #[arg(long, conflicts_with = "format")]
    weights_only: bool,
    /// Also write, as safetensors, a batch of 2 test inputs (`input`) and the logits nabla
    /// computes for them (`logits`), to check the exported model against; and the inputs
    /// changed by 2⁻²⁰ relative with their logits (`input_nudged`, `logits_nudged`)
    #[arg(long, value_name = "FILE")]
    sample: Option<PathBuf>,
    /// The file to write (its folder must exist; an existing file is replaced only with --force)
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Replace the output file if it exists
    #[arg(long)]
    force: bool,
}

fn refuse_overwrite(path: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        return Err(Error::File {
            path: path.display().to_string(),
            msg: "exists already; pass --force to replace it".into(),
        });
    }
    Ok(())
}

/// The model to export and what the checkpoint says of it (none for an untrained model).
fn source(args: &ExportArgs) -> Result<(Box<dyn Module>, Option<Checkpoint>, String, [usize; 3])> {
    match (&args.checkpoint, &args.model, args.input) {
        (Some(path), _, _) => {
            let (model, ck) = crate::common::load_model(path, nabla_core::Device::Cpu)?;
            let (name, input) = (ck.meta.config.model.clone(), ck.meta.input);
            Ok((model, Some(ck), name, input))
        }
        (None, Some(name), Some(input)) => {
            nabla_core::rng::manual_seed(args.seed);
            let spec = ModelSpec {
                input,
                classes: args.classes,
            };
            let model = nabla_models::build_model(name, &spec)?;
            calibrate_batch_norm(model.as_ref(), input)?;
            Ok((model, None, name.clone(), input))
        }
        _ => Err(Error::Argument {
            op: "export",
            msg: "pass --checkpoint PATH, or --model NAME with --input CxHxW".into(),
        }),
    }
}

/// Batch-norm running statistics set to those of 8 random inputs (one training-mode pass,
/// statistics averaged as with PyTorch's `momentum=None`). Untrained, the statistics are 0 and 1 and deep networks with small initial weights (GoogLeNet's
/// N(0, 0.01)) shrink every input to the same logits; calibrated, the graph carries a signal
/// that a comparison of runtimes can see.
fn calibrate_batch_norm(model: &dyn Module, input: [usize; 3]) -> Result<()> {
    let _guard = NoGradGuard::new();
    let [c, h, w] = input;
    let mut rng = nabla_core::Generator::seed_from_u64(23);
    let x = Tensor::uniform_with(-1.0, 1.0, vec![8, c, h, w], DType::F32, &mut rng)?;
    model.train();
    nabla_nn::norm::with_cumulative_statistics(|| model.forward(&x))?;
    model.eval();
    Ok(())
}

/// A JSON array as text (a number that is not finite becomes `null`).
fn json_list(items: impl Iterator<Item = serde_json::Value>) -> String {
    serde_json::Value::Array(items.collect()).to_string()
}

/// The class names, input shape and normalisation, for the ONNX file's metadata.
fn metadata(ck: Option<&Checkpoint>, name: &str, input: [usize; 3]) -> OnnxMetadata {
    let mut entries = vec![
        ("nabla.model".to_string(), name.to_string()),
        (
            "nabla.input".to_string(),
            format!("{}x{}x{}", input[0], input[1], input[2]),
        ),
    ];
    if let Some(ck) = ck {
        let m = &ck.meta;
        entries.push(("nabla.dataset".into(), m.config.dataset.clone()));
        entries.push((
            "nabla.classes".into(),
            json_list(m.classes.iter().map(|c| serde_json::Value::from(c.as_str()))),
        ));
        if let Some(n) = &m.card.normalization {
            // The graph takes normalised inputs: (pixel in [0, 1] − mean) / std per channel.
            entries.push((
                "nabla.normalize.mean".into(),
                json_list(n.mean.iter().map(|&v| serde_json::Value::from(v))),
            ));
            entries.push((
                "nabla.normalize.std".into(),
                json_list(n.std.iter().map(|&v| serde_json::Value::from(v))),
            ));
        }
    }
    OnnxMetadata { entries }
}

/// Two inputs of the model's shape (a seeded uniform sample in [-1, 1)) and nabla's logits for them.
fn sample_io(model: &dyn Module, input: [usize; 3]) -> Result<Vec<(String, Tensor)>> {
    let _guard = NoGradGuard::new();
    let mut rng = nabla_core::Generator::seed_from_u64(17);
    let [c, h, w] = input;
    let x = Tensor::uniform_with(-1.0, 1.0, vec![2, c, h, w], DType::F32, &mut rng)?;
    let y = model.forward(&x)?;
    // The same inputs changed in the last bits (relative 2⁻²⁰): how far the model itself moves
    // under rounding-sized changes, the yardstick for another runtime's float32 results.
    let noise = Tensor::uniform_with(-1.0, 1.0, vec![2, c, h, w], DType::F32, &mut rng)?;
    let nudged = x.add(&x.mul(&noise)?.mul_scalar(2f64.powi(-20))?)?;
    let y_nudged = model.forward(&nudged)?;
    Ok(vec![
        ("input".into(), x),
        ("logits".into(), y),
        ("input_nudged".into(), nudged),
        ("logits_nudged".into(), y_nudged),
    ])
}

pub fn run(args: ExportArgs) -> Result<()> {
    let format = match (args.format, args.weights_only) {
        (Some(f), _) => f,
        (None, true) => Format::Safetensors,
        (None, false) => {
            return Err(Error::Argument {
                op: "export",
                msg: "say what to write: --format onnx, or --weights-only for a safetensors state dict".into(),
            });
        }
    };
    refuse_overwrite(&args.output, args.force)?;
    if let Some(s) = &args.sample {
        refuse_overwrite(s, args.force)?;
    }
    // Rebuilding the model checks that the weights fit it exactly (strictly, by name and shape).
    let (model, ck, name, input) = source(&args)?;
    model.eval();
    match format {
        Format::Safetensors => {
            let state = model.state_dict();
            nabla_nn::state::save_safetensors(&args.output, &state, None)?;
            eprintln!("wrote {} tensors of {name} to {}", state.len(), args.output.display());
        }
        Format::Onnx => {
            let bytes = nabla_nn::onnx::export(model.as_ref(), input, &metadata(ck.as_ref(), &name, input))?;
            nabla_nn::state::write_atomic(&args.output, &bytes)?;
            eprintln!(
                "wrote {name} as ONNX (opset {}, input [batch, {}, {}, {}]) to {} ({:.1} MB)",
                nabla_nn::onnx::OPSET,
                input[0],
                input[1],
                input[2],
                args.output.display(),
                bytes.len() as f64 / 1e6
            );
        }
    }
    if let Some(path) = &args.sample {
        nabla_nn::state::save_safetensors(path, &sample_io(model.as_ref(), input)?, None)?;
        eprintln!("wrote 2 test inputs and their logits to {}", path.display());
    }
    Ok(())
}
