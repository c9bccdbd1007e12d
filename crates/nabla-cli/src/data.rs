//! `nabla data`: download datasets into the cache and show where each one is found.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use nabla_core::{Error, Result};
use nabla_data::catalog::{self, DATASETS, Origin};
use nabla_data::download::Progress;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Download a dataset (mnist, fashion-mnist, cifar10, cifar100), verify its SHA-256 and
    /// unpack it into DIR/<name> (default: $NABLA_DATA, else ~/.cache/nabla).
    Fetch {
        /// mnist, fashion-mnist, cifar10 or cifar100
        name: String,
        /// Root folder to download into
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Plain progress lines even on a terminal
        #[arg(long)]
        plain: bool,
    },
    /// Show where each dataset is found (--data-dir, $NABLA_DATA, the user cache,
    /// /usr/share/datasets, the bundled copy).
    List {
        /// Root folder searched first
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Fetch { name, data_dir, plain } => fetch(&name, data_dir, plain),
        DataCommand::List { data_dir } => list(data_dir),
    }
}

fn fetch(name: &str, data_dir: Option<PathBuf>, plain: bool) -> Result<()> {
    let info = catalog::info(name).ok_or_else(|| Error::Argument {
        op: "data fetch",
        msg: format!(
            "unknown dataset '{name}' (available: {})",
            DATASETS.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let root = catalog::download_root(data_dir.as_deref())?;
    for f in info.files.iter().filter(|f| f.sha256.is_none()) {
        eprintln!("warning: no known checksum for {}; it will not be verified", f.file);
    }
    let progress = if plain { Progress::Plain } else { Progress::Auto };
    let dir = catalog::fetch(info, &root, progress).map_err(|e| {
        // Without a network, the files can be put in place by hand: say which and where.
        let files: Vec<String> = info.files.iter().map(|f| format!("{} ({})", f.file, f.url)).collect();
        let how = if info.archive {
            format!("unpack {} into", files.join(", "))
        } else {
            format!("put {} in", files.join(", "))
        };
        Error::Argument {
            op: "data fetch",
            msg: format!(
                "{e}. To install {} by hand, {how} {} (or pass that folder as --data-dir)",
                info.name,
                root.join(info.name).display()
            ),
        }
    })?;
    println!("{}: {}", info.name, dir.display());
    Ok(())
}

fn list(data_dir: Option<PathBuf>) -> Result<()> {
    let roots = catalog::search_roots(data_dir.as_deref());
    println!("searched, in order:");
    for (origin, root) in &roots {
        println!("  {:<12} {}", origin.to_string(), root.display());
    }
    println!(
        "  {:<12} fashion-mnist, compiled into nabla",
        Origin::Bundled.to_string()
    );
    println!();
    for info in &DATASETS {
        let found = match catalog::locate_in(info, &roots) {
            Some(loc) => match (loc.origin, loc.path) {
                (Origin::Bundled, _) | (_, None) => "bundled with nabla".to_string(),
                (origin, Some(p)) => format!("{} ({origin})", p.display()),
            },
            None => format!("not found (nabla data fetch {})", info.name),
        };
        println!("{:<14} {found}", info.name);
    }
    Ok(())
}
