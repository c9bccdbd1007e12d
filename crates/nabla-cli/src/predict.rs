//! `nabla predict`: the most probable classes of image files under a trained checkpoint.
//!
//! Each image (PNG or JPEG, any size and colour mode) is converted to the model's channels
//! (grey or RGB), scaled so that it covers the model's input (shorter side, antialiased),
//! cut to the central window, and normalised as in training.

use std::path::{Path, PathBuf};

use clap::Args;
use image::imageops::FilterType;
use nabla_core::{Error, NoGradGuard, Result, Tensor};
use nabla_data::Transform;
use nabla_data::transforms::{Sample, center_crop};
use nabla_data::tta::softmax_rows;
use nabla_nn::Module;

use crate::common;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A checkpoint written by `nabla train`
    #[arg(long, value_name = "PATH", required_unless_present = "weights")]
    checkpoint: Option<PathBuf>,
    /// Instead of a checkpoint: a state dict (PyTorch's or `nabla export`'s) for --model; the
    /// class names and normalisation come from --dataset
    #[arg(long, value_name = "FILE", conflicts_with = "checkpoint", requires_all = ["model", "dataset"])]
    weights: Option<PathBuf>,
    /// With --weights: the model the state dict belongs to (a zoo name or PATH.toml)
    #[arg(long)]
    model: Option<String>,
    /// With --weights: the dataset the model was trained on (same names as `train --dataset`)
    #[arg(long)]
    dataset: Option<String>,
    /// With --weights: the model's input as CxHxW [default: the dataset's images]
    #[arg(long, value_parser = crate::common::parse_input)]
    input: Option<[usize; 3]>,
    /// Image files (PNG, JPEG), or CSV files of rows for a model trained on a table
    #[arg(required = true, value_name = "FILE")]
    images: Vec<PathBuf>,
    /// How many classes to list per image
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Folder with the training data, for its normalisation (default: the bundled copy)
    #[arg(long)]
    data_dir: Option<PathBuf>,
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

/// Predicts every row of the CSV files given, for a model trained on a table: the top classes
/// (or, for regression, the value in the target's units). Columns are found by name; others
/// (the target, an id) are ignored.
fn predict_rows(
    args: &PredictArgs,
    model: &dyn Module,
    ck: &nabla_train::checkpoint::Checkpoint,
    features: &[String],
) -> Result<()> {
    let meta = &ck.meta;
    let norm = meta.card.normalization.as_ref().ok_or_else(|| Error::File {
        path: args
            .checkpoint
            .as_ref()
            .map_or(String::new(), |p| p.display().to_string()),
        msg: "a table model's checkpoint without its normalisation".into(),
    })?;
    let _guard = NoGradGuard::new();
    let mut out = Vec::new();
    for path in &args.images {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::File {
            path: origin.clone(),
            msg: format!("{e} (a model trained on a table predicts CSV rows)"),
        })?;
        let (mut x, rows) = nabla_data::csv::read_columns(std::io::BufReader::new(file), &origin, features)?;
        let f = features.len();
        for row in x.chunks_mut(f) {
            for ((v, m), s) in row.iter_mut().zip(&norm.mean).zip(&norm.std) {
                *v = ((*v as f64 - m) / s) as f32;
            }
        }
        let y = model
            .forward(&Tensor::from_vec(x, (rows, f))?.to_device(args.device)?)?
            .to_vec::<f32>()?;
        for (r, chunk) in y.chunks_exact(y.len() / rows).enumerate() {
            let row = serde_json::json!({"file": origin, "row": r + 1});
            out.push((row, chunk.to_vec()));
        }
    }
    let mut json = Vec::new();
    for (mut row, y) in out {
        if let Some((mean, std)) = meta.config.target_scale {
            let value = mean + std * y[0] as f64;
            if !args.json {
                println!(
                    "{} row {}: {} = {value:.4}",
                    row["file"].as_str().unwrap_or(""),
                    row["row"],
                    meta.classes[0]
                );
            }
            row["value"] = serde_json::json!(value);
        } else {
            let probs = softmax_rows(&y, meta.classes.len());
            let top = common::top_k(&probs, args.top.max(1));
            if !args.json {
                let best: Vec<String> = top
                    .iter()
                    .map(|&(i, p)| format!("{} {:.2}%", meta.classes[i], 100.0 * p))
                    .collect();
                println!(
                    "{} row {}: {}",
                    row["file"].as_str().unwrap_or(""),
                    row["row"],
                    best.join(", ")
                );
            }
            row["predictions"] = top
                .iter()
                .map(|&(i, p)| serde_json::json!({"class": meta.classes[i], "index": i, "probability": p}))
                .collect();
        }
        json.push(row);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json).expect("JSON serialises"));
    }
    Ok(())
}

/// Reads `path` as `[C, H, W]` values in [0, 1] sized for a model taking `input`.
pub fn read_image(path: &Path, input: [usize; 3]) -> Result<Sample> {
    let file_err = |msg: String| Error::File {
        path: path.display().to_string(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
    let img = nabla_data::folder::open_image(&bytes, path)?;
    let [c, h, w] = input;
    // Scale so the image covers h×w, then take the centre.
    let scale = (h as f64 / img.height() as f64).max(w as f64 / img.width() as f64);
    let (nw, nh) = (
        ((img.width() as f64 * scale).round() as u32).max(w as u32),
        ((img.height() as f64 * scale).round() as u32).max(h as u32),
    );
    let img = if (nw, nh) == (img.width(), img.height()) {
        img
    } else {
        img.resize_exact(nw, nh, FilterType::Triangle)
    };
    let (data, shape) = match c {
        1 => (img.to_luma8().into_raw(), [1, nh as usize, nw as usize]),
        3 => {
            // Interleaved RGB to channel planes.
            let rgb = img.to_rgb8().into_raw();
            let planes = (0..3).flat_map(|k| rgb.iter().skip(k).step_by(3).copied()).collect();
            (planes, [3, nh as usize, nw as usize])
        }
        _ => {
            return Err(file_err(format!(
                "the model takes {c} channels; predict reads grey or RGB images"
            )));
        }
    };
    let s = Sample {
        data: data.iter().map(|&v| v as f32 / 255.0).collect(),
        shape,
    };
    Ok(center_crop(&s, [h, w]))
}

pub fn run(args: PredictArgs) -> Result<()> {
    let _precision = nabla_core::autocast::AutocastGuard::new(args.precision);
    let (model, ck) = match (&args.checkpoint, &args.weights, &args.model, &args.dataset) {
        (Some(ck), _, _, _) => common::load_model(ck, args.device)?,
        (None, Some(w), Some(m), Some(d)) => {
            common::model_from_weights(w, m, d, args.input, args.data_dir.as_deref(), args.device)?
        }
        _ => {
            return Err(Error::Argument {
                op: "predict",
                msg: "needs --checkpoint, or --weights with --model and --dataset".into(),
            });
        }
    };
    let meta = &ck.meta;
    if let Some(features) = &meta.card.features {
        return predict_rows(&args, model.as_ref(), &ck, features);
    }
    // Read every file first, so that a bad one stops the command before any output.
    let images: Vec<Sample> = args
        .images
        .iter()
        .map(|p| read_image(p, meta.input))
        .collect::<Result<_>>()?;
    let normalize = common::checkpoint_normalization(&ck, args.data_dir.as_deref())?;
    let mut rng = nabla_core::Generator::seed_from_u64(0);
    let classes = meta.classes.len();
    let mut results = Vec::new();
    let _guard = NoGradGuard::new();
    for (paths, chunk) in args.images.chunks(64).zip(images.chunks(64)) {
        let mut data = Vec::new();
        for s in chunk {
            data.extend(normalize.apply(s.clone(), &mut rng).data);
        }
        let [c, h, w] = meta.input;
        let x = Tensor::from_vec(data, (chunk.len(), c, h, w))?;
        let probs = softmax_rows(&model.forward(&x.to_device(args.device)?)?.to_vec::<f32>()?, classes);
        for (path, row) in paths.iter().zip(probs.chunks_exact(classes)) {
            results.push((path, common::top_k(row, args.top.max(1))));
        }
    }
    if args.json {
        let json: Vec<_> = results
            .iter()
            .map(|(path, top)| {
                serde_json::json!({
                    "file": path.display().to_string(),
                    "predictions": top.iter().map(|&(i, p)| serde_json::json!({
                        "class": meta.classes[i],
                        "index": i,
                        "probability": p,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json).expect("JSON serialises"));
        return Ok(());
    }
    let name_w = meta.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    for (path, top) in results {
        println!("{}", path.display());
        for (rank, (i, p)) in top.iter().enumerate() {
            println!("  {}. {:<name_w$}  {:6.2}%", rank + 1, meta.classes[*i], 100.0 * p);
        }
    }
    Ok(())
}
