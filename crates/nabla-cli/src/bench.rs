//! `nabla bench` (being written).

use clap::Args;
use nabla_core::{Error, Result};

#[derive(Args, Debug)]
pub struct BenchArgs {}

pub fn run(_args: BenchArgs) -> Result<()> {
    Err(Error::Argument {
        op: "bench",
        msg: "not available yet".into(),
    })
}
