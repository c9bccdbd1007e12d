//! `nabla eval` (being written).

use clap::Args;
use nabla_core::{Error, Result};

#[derive(Args, Debug)]
pub struct EvalArgs {}

pub fn run(_args: EvalArgs) -> Result<()> {
    Err(Error::Argument {
        op: "eval",
        msg: "not available yet".into(),
    })
}
