//! `nabla predict` (being written).

use clap::Args;
use nabla_core::{Error, Result};

#[derive(Args, Debug)]
pub struct PredictArgs {}

pub fn run(_args: PredictArgs) -> Result<()> {
    Err(Error::Argument {
        op: "predict",
        msg: "not available yet".into(),
    })
}
