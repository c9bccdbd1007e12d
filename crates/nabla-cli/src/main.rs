//! `nabla`: train, evaluate and inspect neural networks from the command line.

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
    Train(train::TrainArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
