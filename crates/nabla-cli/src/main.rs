//! `nabla`: train, evaluate and inspect neural networks from the command line.

mod bench;
mod bench_timed;
mod common;
mod data;
mod eval;
mod export;
mod predict;
mod summary;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "nabla", version, about = "Train, evaluate and inspect neural networks", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (default: LeNet-5 on the bundled Fashion-MNIST).
    Train(Box<train::TrainArgs>),
    /// Evaluate checkpoints (top-1/top-5, loss, confusion matrix; ensembles; test-time augmentation).
    Eval(eval::EvalArgs),
    /// Write a trained model's weights as a state dict PyTorch loads (`--weights-only`).
    Export(export::ExportArgs),
    /// Classify image files with a trained checkpoint (top-5 classes).
    Predict(predict::PredictArgs),
    /// Print a model's layers, output shapes and parameter counts.
    Summary(summary::SummaryArgs),
    /// Measure training and inference speed (the benchmark of docs/BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Download and inspect datasets.
    Data(data::DataArgs),
}

impl Command {
    /// `--threads`, checked: the pool is built once, before the command runs.
    fn threads(&self) -> nabla_core::Result<Option<usize>> {
        let asked = match self {
            Command::Train(a) => a.threads,
            Command::Eval(a) => a.threads,
            _ => None,
        };
        asked
            .map(|n| nabla_core::limits::check_threads(Some(n), "--threads", &n.to_string()))
            .transpose()
    }
}

fn fail(e: nabla_core::Error) -> ! {
    // A rank of a data-parallel job that stops alone would leave the others waiting in their
    // next collective: it ends them all.
    if let Some(c) = common::COLLECTIVE.get().filter(|c| c.world_size() > 1) {
        eprintln!("error on rank {} of {}: {e}", c.rank(), c.world_size());
        c.abort(1);
    }
    eprintln!("error: {e}");
    std::process::exit(1);
}

fn main() {
    nabla_core::runtime::keep_freed_memory();
    let cli = Cli::parse();
    // Settings from the environment are checked before anything uses them.
    if let Err(e) = nabla_core::limits::check_env() {
        fail(e);
    }
    let threads = cli.command.threads().unwrap_or_else(|e| fail(e));
    let run = move || match cli.command {
        Command::Train(args) => train::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Summary(args) => summary::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Data(args) => data::run(args),
    };
    // On a thread of the pool, so that no op pays a hand-off to it (see run_in_pool).
    if let Err(e) = nabla_core::runtime::run_in_pool(threads, run) {
        fail(e);
    }
    common::finalize();
}
