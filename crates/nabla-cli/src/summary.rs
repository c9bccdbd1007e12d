//! `nabla summary` (being written).

use clap::Args;
use nabla_core::{Error, Result};

#[derive(Args, Debug)]
pub struct SummaryArgs {}

pub fn run(_args: SummaryArgs) -> Result<()> {
    Err(Error::Argument {
        op: "summary",
        msg: "not available yet".into(),
    })
}
