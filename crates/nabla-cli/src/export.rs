//! `nabla export`: a trained model's weights as a plain state dict, under PyTorch's names
//! (no `model/` prefix, no optimiser state), for `model.load_state_dict(load_file(path))`.

use std::path::PathBuf;

use clap::Args;
use nabla_core::{Error, Result};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint written by `nabla train`
    #[arg(long, value_name = "PATH")]
    checkpoint: PathBuf,
    /// Write the weights alone (and batch-norm statistics) as a safetensors state dict
    #[arg(long, required = true)]
    weights_only: bool,
    /// The file to write (its folder must exist; an existing file is replaced only with --force)
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Replace the output file if it exists
    #[arg(long)]
    force: bool,
}

pub fn run(args: ExportArgs) -> Result<()> {
    if args.output.exists() && !args.force {
        return Err(Error::File {
            path: args.output.display().to_string(),
            msg: "exists already; pass --force to replace it".into(),
        });
    }
    // Rebuilding the model checks that the weights fit it exactly (strictly, by name and shape).
    let (_, ck) = crate::common::load_model(&args.checkpoint, nabla_core::Device::Cpu)?;
    nabla_nn::state::save_safetensors(&args.output, &ck.model, None)?;
    eprintln!(
        "wrote {} tensors of {} to {}",
        ck.model.len(),
        ck.meta.config.model,
        args.output.display()
    );
    Ok(())
}
