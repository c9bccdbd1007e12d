//! `nabla data` (being written).

use clap::Args;
use nabla_core::{Error, Result};

#[derive(Args, Debug)]
pub struct DataArgs {}

pub fn run(_args: DataArgs) -> Result<()> {
    Err(Error::Argument {
        op: "data",
        msg: "not available yet".into(),
    })
}
