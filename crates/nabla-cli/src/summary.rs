//! `nabla summary`: a model's layers with their output shapes and parameter counts.
//!
//! The layers are the tree of `Module::children`. Output shapes come from one forward pass of
//! a zero image per level: a module's children are run one after another, and their shapes are
//! shown only when that chain gives the module's own output shape (a plain chain, flattened
//! before a child that takes vectors; branches and skip connections show "-"). A model that lists no children is summarised by its parameters.

use clap::Args;
use nabla_core::{DType, Error, NoGradGuard, Result, Tensor};
use nabla_models::{ModelSpec, build_model};
use nabla_nn::Module;
use nabla_nn::module::join;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Model name: lenet5, lenet5-classic, mlp, mlp:H1,H2,..., or an architecture file (.toml)
    #[arg(long, default_value = "lenet5")]
    model: String,
    /// Input shape CxHxW
    #[arg(long, default_value = "1x28x28", value_parser = crate::common::parse_input)]
    input: [usize; 3],
    /// Number of classes
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

/// One line of the table.
#[derive(Debug, Serialize)]
struct Layer {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    depth: usize,
    /// Per sample (no batch dimension); `None` where it cannot be told.
    output_shape: Option<Vec<usize>>,
    /// In this layer and the layers inside it.
    parameters: usize,
}

/// Adds `m` (named `name`) and its descendants to `rows`; returns `m`'s output for `input`.
fn walk(m: &dyn Module, name: String, depth: usize, input: Option<&Tensor>, rows: &mut Vec<Layer>) -> Option<Tensor> {
    let out = input.and_then(|x| m.forward(x).ok());
    let children = m.children();
    if depth > 0 {
        rows.push(Layer {
            name: name.clone(),
            kind: m.describe(),
            depth,
            output_shape: out.as_ref().map(|t| t.dims()[1..].to_vec()),
            parameters: m.num_parameters(),
        });
    }
    let first = rows.len();
    let mut h = input.cloned();
    for (child, c) in children {
        let start = rows.len();
        let out = walk(c, join(&name, &child), depth + 1, h.as_ref(), rows);
        // A classifier after the feature maps takes them flattened, as `forward` does it
        // (`torch.flatten(x, 1)` in torchvision's models): try that before giving up the chain.
        h = match (out, h.filter(|t| t.rank() > 2)) {
            (None, Some(maps)) => {
                rows.truncate(start);
                let flat = maps.flatten(1, -1).ok();
                walk(c, join(&name, &child), depth + 1, flat.as_ref(), rows)
            }
            (out, _) => out,
        };
    }
    if first < rows.len() && h.as_ref().map(|t| t.dims().to_vec()) != out.as_ref().map(|t| t.dims().to_vec()) {
        rows[first..].iter_mut().for_each(|r| r.output_shape = None);
    }
    out
}

/// Rows for a model without children: one per parameter tensor, its shape as "output".
fn parameter_rows(model: &dyn Module) -> Vec<Layer> {
    model
        .named_parameters()
        .into_iter()
        .map(|(name, t)| Layer {
            name,
            kind: "parameter".into(),
            depth: 1,
            output_shape: Some(t.dims().to_vec()),
            parameters: t.elem_count(),
        })
        .collect()
}

/// 61706 → "61,706".
fn thousands(n: usize) -> String {
    let digits: Vec<char> = n.to_string().chars().rev().collect();
    let groups: Vec<String> = digits.chunks(3).map(|g| g.iter().rev().collect()).collect();
    groups.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn shape_text(s: &Option<Vec<usize>>) -> String {
    s.as_ref().map_or("-".into(), |d| {
        d.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("×")
    })
}

pub fn run(args: SummaryArgs) -> Result<()> {
    let spec = ModelSpec {
        input: args.input,
        classes: args.classes,
    };
    let model = build_model(&args.model, &spec)?;
    model.eval();
    let [c, h, w] = args.input;
    let _guard = NoGradGuard::new();
    let x = Tensor::zeros((1, c, h, w), DType::F32);
    let out = model.forward(&x).map_err(|e| Error::Argument {
        op: "summary",
        msg: format!("{} does not take a {c}×{h}×{w} input: {e}", args.model),
    })?;
    let mut rows = Vec::new();
    walk(model.as_ref(), String::new(), 0, Some(&x), &mut rows);
    let by_parameter = rows.is_empty();
    if by_parameter {
        rows = parameter_rows(model.as_ref());
    }
    let total = model.num_parameters();
    let output = out.dims()[1..].to_vec();
    if args.json {
        let json = serde_json::json!({
            "model": args.model,
            "description": model.describe(),
            "input": args.input,
            "output": output,
            "parameters": total,
            "layers": rows,
        });
        println!("{}", serde_json::to_string_pretty(&json).expect("JSON serialises"));
        return Ok(());
    }
    let names: Vec<String> = rows
        .iter()
        .map(|r| format!("{}{}", "  ".repeat(r.depth - 1), r.name))
        .collect();
    let name_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max(5);
    let kind_w = rows.iter().map(|r| r.kind.chars().count()).max().unwrap_or(0).max(4);
    let shapes: Vec<String> = rows.iter().map(|r| shape_text(&r.output_shape)).collect();
    let shape_w = shapes.iter().map(|s| s.chars().count()).max().unwrap_or(0).max(12);
    println!(
        "{} ({}): input {c}×{h}×{w}, output {}",
        args.model,
        model.describe(),
        shape_text(&Some(output))
    );
    let header = if by_parameter { "Shape" } else { "Output shape" };
    let line = format!(
        "{:<name_w$}  {:<kind_w$}  {header:<shape_w$}  {:>12}",
        "Layer", "Type", "Parameters"
    );
    println!("{line}\n{}", "─".repeat(line.chars().count()));
    for ((r, name), shape) in rows.iter().zip(&names).zip(&shapes) {
        println!(
            "{name:<name_w$}  {:<kind_w$}  {shape:<shape_w$}  {:>12}",
            r.kind,
            thousands(r.parameters)
        );
    }
    println!("{}", "─".repeat(line.chars().count()));
    println!("Total parameters: {}", thousands(total));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::parse_input;

    #[test]
    fn parses_shapes_and_counts() {
        assert_eq!(parse_input("3x32x32"), Ok([3, 32, 32]));
        assert_eq!(parse_input("1,28,28"), Ok([1, 28, 28]));
        assert!(parse_input("28x28").is_err() && parse_input("0x2x2").is_err());
        assert_eq!(thousands(61_706), "61,706");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_classifier_after_feature_maps_gets_them_flattened() {
        // AlexNet at its smallest input, 63×63: conv1 (11×11, stride 4, padding 2) gives 15×15,
        // pool1 7×7, conv2 7×7, pool2 3×3, conv3–5 3×3, pool5 1×1; fc6 takes the 256 values.
        let model = build_model(
            "alexnet",
            &ModelSpec {
                input: [3, 63, 63],
                classes: 10,
            },
        )
        .unwrap();
        let mut rows = Vec::new();
        let x = Tensor::zeros((1, 3, 63, 63), DType::F32);
        walk(model.as_ref(), String::new(), 0, Some(&x), &mut rows);
        let row = |n: &str| rows.iter().find(|r| r.name == n).unwrap().output_shape.clone();
        assert_eq!(row("features.0"), Some(vec![96, 15, 15]));
        assert_eq!(row("features.3"), Some(vec![96, 7, 7]));
        assert_eq!(row("features.7"), Some(vec![256, 3, 3]));
        assert_eq!(row("features"), Some(vec![256, 1, 1]));
        assert_eq!(row("classifier.0"), Some(vec![4096]));
        assert_eq!(row("classifier"), Some(vec![10]));
    }

    #[test]
    fn lenet_layers_have_their_shapes() {
        let spec = ModelSpec {
            input: [1, 28, 28],
            classes: 10,
        };
        let model = build_model("lenet5", &spec).unwrap();
        let mut rows = Vec::new();
        let x = Tensor::zeros((1, 1, 28, 28), DType::F32);
        walk(model.as_ref(), String::new(), 0, Some(&x), &mut rows);
        let row = |n: &str| rows.iter().find(|r| r.name == n).unwrap();
        assert_eq!(row("features").output_shape, Some(vec![16, 5, 5]));
        assert_eq!(row("features.0").output_shape, Some(vec![6, 28, 28]));
        assert_eq!(row("features.0").parameters, 156);
        assert_eq!(row("classifier.5").output_shape, Some(vec![10]));
        assert_eq!(
            rows.iter()
                .filter(|r| r.depth == 1)
                .map(|r| r.parameters)
                .sum::<usize>(),
            61_706
        );
    }
}
