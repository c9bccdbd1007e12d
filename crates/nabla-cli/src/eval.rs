//! `nabla eval`: top-1, top-5, loss and the confusion matrix of one checkpoint or an ensemble
//! on the test split, with optional test-time augmentation.
//!
//! The arithmetic (ensembles, test-time augmentation) is `nabla_train::ensemble`'s; this
//! loads the models, refuses crops a model never saw, compares the augmentation with the
//! centre crop, and prints.

use std::path::PathBuf;

use clap::Args;
use nabla_core::{Error, Result};
use nabla_data::ImageDataset;
use nabla_data::tta::TtaMode;
use nabla_train::Evaluation;
use nabla_train::ensemble::{self, Member};

use crate::common;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A checkpoint written by `nabla train`; repeat for an ensemble
    #[arg(long = "checkpoint", value_name = "PATH", required_unless_present = "weights")]
    checkpoints: Vec<PathBuf>,
    /// Ensemble weights, one per checkpoint, comma-separated (default: equal)
    #[arg(long, value_delimiter = ',', value_name = "W1,W2,...")]
    ensemble_weights: Option<Vec<f64>>,
    /// Instead of a checkpoint: a state dict (PyTorch's or `nabla export`'s) for --model,
    /// evaluated on --dataset and normalised with its training images' statistics
    #[arg(long, value_name = "FILE", conflicts_with = "checkpoints", requires = "model")]
    weights: Option<PathBuf>,
    /// With --weights: the model the state dict belongs to (a zoo name or PATH.toml)
    #[arg(long)]
    model: Option<String>,
    /// With --weights: the model's input as CxHxW [default: the dataset's images]
    #[arg(long, value_parser = crate::common::parse_input)]
    input: Option<[usize; 3]>,
    /// Test-time augmentation: center, 5crop, 10crop (torchvision's FiveCrop/TenCrop) or
    /// multiscale (GoogLeNet's 144). Crops are cut as training cut them (from the image padded
    /// as --augment pads it; for --weights, from the image resized by 256/224 as torchvision
    /// evaluates), and only crops the model saw in training are allowed
    #[arg(long, default_value = "center")]
    tta: TtaMode,
    /// Use --tta's crops even where the model never saw such inputs in training (shifted crops
    /// without --augment, mirrored crops without flips, rescaled crops)
    #[arg(long)]
    tta_anyway: bool,
    /// Evaluate on this dataset instead of the test split of the one the model was trained on
    /// (same names as `train --dataset`; a table is read whole, an image dataset's test split)
    #[arg(long)]
    dataset: Option<String>,
    /// Folder with the dataset's files (default: the bundled copy)
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Evaluate on the first N test images only
    #[arg(long)]
    test_subset: Option<usize>,
    /// Crops per forward pass
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Threads for the computation (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the results as JSON
    #[arg(long)]
    json: bool,
    /// Where to compute: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`)
    #[arg(long, default_value = "cpu", value_parser = crate::common::parse_device)]
    device: nabla_core::Device,
    /// Matrix products (Linear layers) in f32, or bf16 with f32 sums (mixed precision, as
    /// torch.autocast)
    #[arg(long, value_parser = crate::common::parse_precision, default_value = "f32")]
    precision: nabla_core::autocast::Precision,
}

fn bad(msg: String) -> Error {
    Error::Argument { op: "eval", msg }
}

/// Loads the checkpoints, checks that they agree on data, and pairs each with its weight and
/// normalisation.
fn members(args: &EvalArgs) -> Result<Vec<Member>> {
    if let (Some(path), Some(model)) = (&args.weights, &args.model) {
        let dataset = args.dataset.as_deref().unwrap_or("fashion-mnist");
        let (model, ck) =
            common::model_from_weights(path, model, dataset, args.input, args.data_dir.as_deref(), args.device)?;
        let normalize = common::checkpoint_normalization(&ck, args.data_dir.as_deref())?;
        return Ok(vec![Member {
            name: path.display().to_string(),
            foreign: true,
            model,
            ck,
            normalize,
            weight: 1.0,
        }]);
    }
    let weights = ensemble::member_weights(args.checkpoints.len(), args.ensemble_weights.as_deref())?;
    let mut out: Vec<Member> = Vec::new();
    for (path, weight) in args.checkpoints.iter().zip(weights) {
        let (model, ck) = common::load_model(path, args.device)?;
        let normalize = common::checkpoint_normalization(&ck, args.data_dir.as_deref())?;
        out.push(Member {
            name: path.display().to_string(),
            foreign: false,
            model,
            ck,
            normalize,
            weight,
        });
        ensemble::check_same_data(&out)?;
    }
    Ok(out)
}

/// The ensemble on `test` with test-time augmentation `mode`.
fn evaluate(members: &[Member], test: &ImageDataset, args: &EvalArgs, mode: TtaMode) -> Result<Evaluation> {
    ensemble::evaluate(members, test, mode, args.batch_size, args.device)
}

pub fn run(args: EvalArgs) -> Result<()> {
    let _precision = nabla_core::autocast::AutocastGuard::new(args.precision);
    let members = members(&args)?;
    let meta = &members[0].ck.meta;
    let mut config = meta.config.clone();
    if let Some(d) = &args.dataset {
        config.dataset = nabla_data::canonical_name(d);
    }
    if config.dataset.starts_with("csv:") || meta.card.features.is_some() {
        return run_table(&args, &members, &config);
    }
    let test = nabla_train::data::test_set(&config, args.data_dir.as_deref(), args.test_subset.unwrap_or(0))?;
    if let Some(why) = ensemble::tta_mismatch(args.tta, &members) {
        if !args.tta_anyway {
            return Err(bad(format!(
                "{why}; use --tta center (or 5crop after training with --augment), or add --tta-anyway to evaluate them all the same"
            )));
        }
        eprintln!("warning: {why}");
    }
    let eval = evaluate(&members, &test, &args, args.tta)?;
    // Test-time augmentation is checked against the plain centre crop, on held-out validation
    // images where the models have them: a choice that lowers accuracy is said, not left for
    // the user to find.
    let center = if args.tta == TtaMode::Center {
        None
    } else {
        Some(evaluate(&members, &test, &args, TtaMode::Center)?)
    };
    let mut comparison = None;
    if let Some(center) = &center {
        let held_out = match args.dataset {
            Some(_) => None,
            None => ensemble::comparison_set(&members, args.data_dir.as_deref())?,
        };
        let (with, without, on) = match held_out {
            Some((val, what)) => (
                evaluate(&members, &val, &args, args.tta)?.top1(),
                evaluate(&members, &val, &args, TtaMode::Center)?.top1(),
                what,
            ),
            None => (eval.top1(), center.top1(), format!("these {} test images", eval.count)),
        };
        if with < without {
            eprintln!(
                "warning: --tta {} lowers top-1 from {:.2}% (centre crop) to {:.2}% on {on}; use --tta center",
                args.tta.name(),
                100.0 * without,
                100.0 * with,
            );
        }
        comparison = Some(serde_json::json!({ "on": on, "tta_top1": with, "center_top1": without }));
    }
    if args.json {
        let json = serde_json::json!({
            "checkpoints": members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "models": members.iter().map(|m| m.ck.meta.config.model.clone()).collect::<Vec<_>>(),
            "weights": members.iter().map(|m| m.weight).collect::<Vec<_>>(),
            "dataset": meta.config.dataset,
            "tta": args.tta.name(),
            "crops_per_image": args.tta.crops_per_image(),
            "center_top1": center.as_ref().map(|c| c.top1()),
            "tta_check": comparison,
            "samples": eval.count,
            "top1": eval.top1(),
            "top5": eval.top5(),
            "loss": eval.loss(),
            "classes": meta.classes,
            "confusion": eval.confusion,
        });
        println!("{}", serde_json::to_string_pretty(&json).expect("JSON serialises"));
        return Ok(());
    }
    for m in &members {
        let c = &m.ck.meta;
        if args.weights.is_some() {
            println!("weights {} ({} on {})", m.name, c.config.model, c.config.dataset);
            continue;
        }
        println!(
            "checkpoint {} ({} on {}, {} of {} epochs){}",
            m.name,
            c.config.model,
            c.config.dataset,
            c.epoch,
            c.config.epochs,
            if members.len() > 1 {
                format!(", weight {:.3}", m.weight)
            } else {
                String::new()
            }
        );
    }
    println!(
        "{} test images, test-time augmentation: {} ({} crop{} each)",
        eval.count,
        args.tta.name(),
        args.tta.crops_per_image(),
        if args.tta.crops_per_image() == 1 { "" } else { "s" }
    );
    println!(
        "top-1 {:.2}%  top-5 {:.2}%  loss {:.4}",
        100.0 * eval.top1(),
        100.0 * eval.top5(),
        eval.loss()
    );
    println!("\nconfusion matrix (rows: true class, columns: predicted class)");
    print!("{}", confusion_table(&eval, &meta.classes));
    Ok(())
}

/// Evaluates a model trained on a table: on the test rows of its own split, or on every row
/// of another table (`--dataset csv:PATH`), standardised with the checkpoint's statistics.
fn run_table(args: &EvalArgs, members: &[Member], config: &nabla_train::TrainConfig) -> Result<()> {
    let [m] = members else {
        return Err(bad(
            "ensembles of models trained on tables are not supported; pass one --checkpoint".into(),
        ));
    };
    if args.tta != TtaMode::Center {
        return Err(bad("test-time augmentation applies to images, not tables".into()));
    }
    let meta = &m.ck.meta;
    let (Some(features), Some(norm)) = (&meta.card.features, &meta.card.normalization) else {
        return Err(bad(format!(
            "{} does not record its feature columns (it was written before checkpoints carried them); train it again to evaluate it on a table",
            m.name
        )));
    };
    let path = config.dataset.strip_prefix("csv:").ok_or_else(|| {
        bad(format!(
            "{} was trained on a table; evaluate it on one (--dataset csv:PATH), not {}",
            m.name, config.dataset
        ))
    })?;
    let table = if *config == meta.config {
        match nabla_train::data::table_split(config)? {
            Some((_, test)) => test,
            None => return Err(bad(format!("{} is not a table (csv:PATH)", config.dataset))),
        }
    } else {
        let target = meta.config.target.as_deref().unwrap_or_default();
        let task = if meta.config.regression {
            nabla_data::csv::Task::Regression
        } else {
            nabla_data::csv::Task::Classification
        };
        nabla_data::csv::read_csv(std::path::Path::new(path), target, task)?
    };
    let mut table = table.with_features(features, path)?;
    if !meta.config.regression {
        table = table.relabel(&meta.classes, path)?;
    }
    if let Some(n) = args.test_subset {
        table = table.take(n);
    }
    let stats: Vec<(f64, f64)> = norm.mean.iter().copied().zip(norm.std.iter().copied()).collect();
    table.standardize(&stats);
    if let Some(scale) = meta.config.target_scale {
        table.standardize_target(scale);
    }
    let loader = nabla_data::DataLoader::new(
        std::sync::Arc::new(table),
        None,
        nabla_data::LoaderConfig {
            batch_size: args.batch_size.max(1),
            shuffle: false,
            drop_last: false,
            seed: 0,
            workers: 1,
            prefetch: 2,
            shard: (0, 1),
        },
    );
    let eval = nabla_train::evaluate(m.model.as_ref(), &loader, meta.classes.len())?;
    let scale = meta.config.target_scale.map_or(1.0, |s| s.1);
    if args.json {
        let mut json = serde_json::json!({
            "checkpoints": [m.name.clone()],
            "dataset": config.dataset,
            "samples": eval.count,
            "loss": eval.loss(),
        });
        if eval.regression {
            json["rmse"] = serde_json::json!(eval.loss().sqrt() * scale);
        } else {
            json["top1"] = serde_json::json!(eval.top1());
            json["top5"] = serde_json::json!(eval.top5());
            json["classes"] = serde_json::json!(meta.classes);
            json["confusion"] = serde_json::json!(eval.confusion);
        }
        println!("{}", serde_json::to_string_pretty(&json).expect("JSON serialises"));
        return Ok(());
    }
    println!(
        "checkpoint {} ({} on {}), {} rows of {}",
        m.name, meta.config.model, meta.config.dataset, eval.count, config.dataset
    );
    if eval.regression {
        println!(
            "MSE {:.4} (standardised target), RMSE {:.4} in target units",
            eval.loss(),
            eval.loss().sqrt() * scale
        );
    } else {
        println!(
            "top-1 {:.2}%  top-5 {:.2}%  loss {:.4}",
            100.0 * eval.top1(),
            100.0 * eval.top5(),
            eval.loss()
        );
        println!("\nconfusion matrix (rows: true class, columns: predicted class)");
        print!("{}", confusion_table(&eval, &meta.classes));
    }
    Ok(())
}

/// The confusion matrix as aligned text, class names on the rows and indices on the columns.
fn confusion_table(eval: &Evaluation, classes: &[String]) -> String {
    let width = eval
        .confusion
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    let name_w = classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).min(20) + 4;
    let mut s = format!("{:name_w$}", "");
    for p in 0..eval.confusion.len() {
        s.push_str(&format!(" {p:>width$}"));
    }
    s.push('\n');
    for (t, row) in eval.confusion.iter().enumerate() {
        let name: String = classes.get(t).map_or(String::new(), |c| c.chars().take(20).collect());
        s.push_str(&format!("{:<name_w$}", format!("{t:>2} {name}")));
        for v in row {
            s.push_str(&format!(" {v:>width$}"));
        }
        s.push('\n');
    }
    s
}
