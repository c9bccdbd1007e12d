//! Architecture files: a network described in TOML, layer by layer, the way Caffe's prototxt
//! and Darknet's cfg do, so a user can define a model without writing Rust.
//!
//! ```toml
//! [[layer]]
//! type = "conv2d"          # conv2d, linear, relu, leaky_relu, sigmoid, tanh, maxpool2d, avgpool2d,
//! out = 16                 # adaptive_avgpool2d, lrn, batchnorm, dropout, flatten, softmax, log_softmax,
//! kernel = 3               # identity, add (residual sum), concat (along channels)
//! padding = 1
//! name = "stem"            # optional; other layers refer to it
//!
//! [[layer]]
//! type = "relu"
//!
//! [[layer]]
//! type = "add"             # a residual connection: the sum of named layers' outputs
//! from = ["stem", "-1"]    # names, or negative offsets ("-1" is the previous layer)
//!
//! [[layer]]
//! type = "linear"          # `out` may be omitted on the last linear layer: the number of classes
//! ```
//!
//! Each layer reads the previous layer's output unless `input = "name"` says otherwise.
//! Input channels and sizes are inferred by running a zero sample through the network as it
//! is built, so shapes that do not fit are reported at the layer (and line) that breaks.

use std::path::Path;

use nabla_core::{DType, Error, Result, Tensor, no_grad};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::module::join;
use nabla_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Dropout, Flatten, Identity, LeakyReLU, LocalResponseNorm, LogSoftmax,
    MaxPool2d, Module, ReLU, Sigmoid, Softmax, Tanh,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchFile {
    #[serde(rename = "layer", default)]
    layers: Vec<toml::Spanned<LayerSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerSpec {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    input: Option<String>,
    from: Option<Vec<String>>,
    out: Option<usize>,
    kernel: Option<usize>,
    stride: Option<usize>,
    padding: Option<usize>,
    padding_mode: Option<String>,
    dilation: Option<usize>,
    groups: Option<usize>,
    bias: Option<bool>,
    ceil_mode: Option<bool>,
    p: Option<f64>,
    size: Option<usize>,
    alpha: Option<f64>,
    beta: Option<f64>,
    k: Option<f64>,
    slope: Option<f64>,
    output: Option<[usize; 2]>,
    dim: Option<isize>,
}

enum Op {
    Layer(Box<dyn Module>),
    Add,
    Concat,
}

struct Node {
    name: String,
    op: Op,
    /// Indices into the value list: 0 is the network input, node i produces value i + 1.
    inputs: Vec<usize>,
}

/// A network built from an architecture file: a directed acyclic graph of layers.
pub struct GraphNet {
    nodes: Vec<Node>,
}

impl std::fmt::Debug for GraphNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        write!(f, "GraphNet {names:?}")
    }
}

impl Module for GraphNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut values: Vec<Tensor> = vec![x.clone()];
        for node in &self.nodes {
            let ins: Vec<&Tensor> = node.inputs.iter().map(|&i| &values[i]).collect();
            let y = match &node.op {
                Op::Layer(m) => m.forward(ins[0])?,
                Op::Add => ins[1..].iter().try_fold(ins[0].clone(), |acc, t| acc.add(t))?,
                Op::Concat => Tensor::cat(&ins, 1)?,
            };
            values.push(y);
        }
        Ok(values.pop().expect("at least one layer"))
    }
    /// Each node under its name in the file; `add` as a chain of `Add`, `concat` as `Concat`.
    fn to_onnx(
        &self,
        g: &mut nabla_nn::onnx::OnnxGraph,
        x: &nabla_nn::onnx::OnnxValue,
    ) -> Result<nabla_nn::onnx::OnnxValue> {
        let mut values = vec![x.clone()];
        for node in &self.nodes {
            let ins: Vec<&nabla_nn::onnx::OnnxValue> = node.inputs.iter().map(|&i| &values[i]).collect();
            let y = match &node.op {
                Op::Layer(m) => g.child(&node.name, m.as_ref(), ins[0])?,
                Op::Add => {
                    let mut acc = ins[0].clone();
                    for t in &ins[1..] {
                        acc = g.add(&acc, t)?;
                    }
                    acc
                }
                Op::Concat => g.concat(&ins.into_iter().cloned().collect::<Vec<_>>(), 1)?,
            };
            values.push(y);
        }
        // `values` starts with the input, so there is always a last value.
        Ok(values.pop().unwrap_or_else(|| x.clone()))
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for n in &self.nodes {
            if let Op::Layer(m) = &n.op {
                m.visit_parameters(&join(prefix, &n.name), f);
            }
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor)) {
        for n in &self.nodes {
            if let Op::Layer(m) = &n.op {
                m.visit_buffers(&join(prefix, &n.name), f);
            }
        }
    }
    fn set_training(&self, training: bool) {
        for n in &self.nodes {
            if let Op::Layer(m) = &n.op {
                m.set_training(training);
            }
        }
    }
    fn describe(&self) -> String {
        format!("GraphNet({} layers)", self.nodes.len())
    }
}

/// Line numbers of byte offsets, from one pass over the text (a count from the start for each
/// layer made a file of 200,000 layers take minutes).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.match_indices('\n').map(|(i, _)| i).collect())
    }
    /// The 1-based line of byte `offset`.
    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// Reads an architecture file for inputs of `input` ([C, H, W]) and `classes` outputs.
pub fn load_archfile(path: &Path, input: [usize; 3], classes: usize) -> Result<GraphNet> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    parse_archfile(&text, &path.display().to_string(), input, classes)
}

/// Builds a network from architecture-file text; `origin` names it in errors.
pub fn parse_archfile(text: &str, origin: &str, input: [usize; 3], classes: usize) -> Result<GraphNet> {
    let lines = Lines::new(text);
    let file: ArchFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!(" line {}", lines.of(s.start)))
            .unwrap_or_default();
        Error::File {
            path: origin.to_string(),
            msg: format!("{}:{line} {}", "invalid architecture file", e.message()),
        }
    })?;
    if file.layers.is_empty() {
        return Err(Error::File {
            path: origin.to_string(),
            msg: "no [[layer]] entries".into(),
        });
    }
    if input.contains(&0) {
        return Err(Error::File {
            path: origin.to_string(),
            msg: format!("input shape {input:?} has a zero size"),
        });
    }
    nabla_core::limits::check_tensor(&input, 4, "architecture file input")?;
    let last_linear = file.layers.iter().rposition(|l| l.get_ref().kind == "linear");
    let at = |i: usize, msg: String| {
        let spanned = &file.layers[i];
        Error::File {
            path: origin.to_string(),
            msg: format!(
                "line {}: layer {i} ({}): {msg}",
                lines.of(spanned.span().start),
                spanned.get_ref().kind
            ),
        }
    };
    // First the graph: each layer's inputs (value 0 is the network input, layer i makes value
    // i + 1), so that a value can be dropped from the dry run after its last use.
    let mut graph: Vec<(String, Vec<usize>)> = Vec::with_capacity(file.layers.len());
    let mut names: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, spanned) in file.layers.iter().enumerate() {
        let spec = spanned.get_ref();
        let at = |msg: String| at(i, msg);
        let resolve = |r: &str| -> Result<usize> {
            if let Ok(off) = r.parse::<isize>() {
                let v = i as isize + 1 + off;
                if off < 0 && v >= 0 {
                    return Ok(v as usize);
                }
                return Err(at(format!("offset {r} does not point to an earlier layer")));
            }
            names
                .get(r)
                .map(|p| p + 1)
                .ok_or_else(|| at(format!("no earlier layer is named '{r}'")))
        };
        let inputs = match (&spec.kind[..], &spec.from, &spec.input) {
            ("add" | "concat", Some(from), _) if from.len() >= 2 => {
                from.iter().map(|r| resolve(r)).collect::<Result<Vec<_>>>()?
            }
            ("add" | "concat", _, _) => return Err(at("needs `from` with at least two layers".into())),
            (_, _, Some(name)) => vec![resolve(name)?],
            _ => vec![i],
        };
        let name = spec.name.clone().unwrap_or_else(|| i.to_string());
        if names.insert(name.clone(), i).is_some() {
            return Err(at(format!("the name '{name}' is used twice")));
        }
        graph.push((name, inputs));
    }
    let mut last_use = vec![0; graph.len() + 1];
    for (i, (_, inputs)) in graph.iter().enumerate() {
        for &v in inputs {
            last_use[v] = i;
        }
    }
    // A dry run with one zero sample per live value, so each layer sees its real input shape.
    let mut samples: Vec<Option<Tensor>> = vec![Some(Tensor::zeros([1, input[0], input[1], input[2]], DType::F32))];
    let mut nodes: Vec<Node> = Vec::with_capacity(graph.len());
    for (i, (name, inputs)) in graph.into_iter().enumerate() {
        let spec = file.layers[i].get_ref();
        let at = |msg: String| at(i, msg);
        let ins: Vec<&Tensor> = inputs
            .iter()
            .map(|&v| samples[v].as_ref().expect("a value is kept until its last use"))
            .collect();
        let op = match &spec.kind[..] {
            "add" => Op::Add,
            "concat" => Op::Concat,
            _ => Op::Layer(build_layer(spec, ins[0], classes, Some(i) == last_linear).map_err(|e| at(plain(e)))?),
        };
        let y = no_grad(|| match &op {
            Op::Layer(m) => {
                m.eval();
                let y = m.forward(ins[0]);
                m.train();
                y
            }
            Op::Add => ins[1..].iter().try_fold(ins[0].clone(), |acc, t| acc.add(t)),
            Op::Concat => Tensor::cat(&ins, 1),
        })
        .map_err(|e| {
            at(format!(
                "does not fit its input {}: {e}",
                ins.iter()
                    .map(|t| t.shape().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ))
        })?;
        for &v in &inputs {
            if last_use[v] == i {
                samples[v] = None;
            }
        }
        samples.push(Some(y));
        nodes.push(Node { name, op, inputs });
    }
    Ok(GraphNet { nodes })
}

/// The message of an error without its op prefix (the layer and line say where).
fn plain(e: Error) -> String {
    match e {
        Error::Argument { msg, .. } | Error::Shape { msg, .. } => msg,
        other => other.to_string(),
    }
}

fn need<T: Copy>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| Error::Argument {
        op: "archfile",
        msg: format!("missing `{what}`"),
    })
}

/// One layer from its spec; `x` is a sample of its input.
fn build_layer(s: &LayerSpec, x: &Tensor, classes: usize, is_last_linear: bool) -> Result<Box<dyn Module>> {
    let channels = if x.rank() >= 2 { x.dims()[1] } else { 1 };
    Ok(match &s.kind[..] {
        "conv2d" | "conv" => {
            let mut c = Conv2dConfig::new(channels, need(s.out, "out")?, need(s.kernel, "kernel")?)
                .stride(s.stride.unwrap_or(1))
                .padding(s.padding.unwrap_or(0))
                .dilation(s.dilation.unwrap_or(1))
                .groups(s.groups.unwrap_or(1))
                .bias(s.bias.unwrap_or(true));
            if let Some(m) = &s.padding_mode {
                c = c.padding_mode(
                    m.parse()
                        .map_err(|e: String| Error::Argument { op: "archfile", msg: e })?,
                );
            }
            Box::new(c.init()?)
        }
        "linear" | "dense" | "fc" => {
            let features = x.dims()[x.rank() - 1];
            let out = match s.out {
                Some(o) => o,
                None if is_last_linear => classes,
                None => {
                    return Err(Error::Argument {
                        op: "archfile",
                        msg: "missing `out`".into(),
                    });
                }
            };
            Box::new(
                nabla_nn::LinearConfig::new(features, out)
                    .bias(s.bias.unwrap_or(true))
                    .init()?,
            )
        }
        "relu" => Box::new(ReLU),
        "leaky_relu" => Box::new(LeakyReLU(s.slope.unwrap_or(0.01))),
        "sigmoid" => Box::new(Sigmoid),
        "tanh" => Box::new(Tanh),
        "softmax" => Box::new(Softmax(s.dim.unwrap_or(1))),
        "log_softmax" => Box::new(LogSoftmax(s.dim.unwrap_or(1))),
        "identity" => Box::new(Identity),
        "flatten" => Box::new(Flatten),
        "maxpool2d" | "maxpool" => {
            let k = need(s.kernel, "kernel")?;
            Box::new(
                MaxPool2d::new(k)
                    .stride(s.stride.unwrap_or(k))
                    .padding(s.padding.unwrap_or(0))
                    .ceil_mode(s.ceil_mode.unwrap_or(false)),
            )
        }
        "avgpool2d" | "avgpool" => {
            let k = need(s.kernel, "kernel")?;
            Box::new(
                AvgPool2d::new(k)
                    .stride(s.stride.unwrap_or(k))
                    .padding(s.padding.unwrap_or(0))
                    .ceil_mode(s.ceil_mode.unwrap_or(false)),
            )
        }
        "adaptive_avgpool2d" | "global_avgpool" => Box::new(AdaptiveAvgPool2d(s.output.unwrap_or([1, 1]))),
        "lrn" => Box::new(LocalResponseNorm {
            size: s.size.unwrap_or(5),
            alpha: s.alpha.unwrap_or(1e-4),
            beta: s.beta.unwrap_or(0.75),
            k: s.k.unwrap_or(2.0),
        }),
        "batchnorm" | "batchnorm2d" | "batchnorm1d" => Box::new(if x.rank() == 4 {
            BatchNorm::new_2d(channels)
        } else {
            BatchNorm::new_1d(channels)
        }),
        "dropout" => Box::new(Dropout::new(s.p.unwrap_or(0.5))?),
        other => {
            return Err(Error::Argument {
                op: "archfile",
                msg: format!(
                    "unknown layer type '{other}' (known: conv2d, linear, relu, leaky_relu, sigmoid, tanh, softmax, log_softmax, identity, flatten, maxpool2d, avgpool2d, adaptive_avgpool2d, lrn, batchnorm, dropout, add, concat)"
                ),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESIDUAL: &str = r#"
[[layer]]
type = "conv2d"
out = 4
kernel = 3
padding = 1
name = "stem"

[[layer]]
type = "relu"

[[layer]]
type = "conv2d"
out = 4
kernel = 3
padding = 1

[[layer]]
type = "add"
from = ["stem", "-1"]

[[layer]]
type = "conv2d"
input = "stem"
out = 2
kernel = 1

[[layer]]
type = "concat"
from = ["-2", "-1"]

[[layer]]
type = "global_avgpool"

[[layer]]
type = "flatten"

[[layer]]
type = "linear"
"#;

    #[test]
    fn residual_and_concat_branches_build_and_run() {
        let net = parse_archfile(RESIDUAL, "test.toml", [1, 8, 8], 10).unwrap();
        // stem 4·(9+1) + conv 4·(4·9+1) + 1×1 2·(4+1) + linear 6·10+10
        assert_eq!(net.num_parameters(), 40 + 148 + 10 + 70);
        let y = net.forward(&Tensor::zeros((3, 1, 8, 8), DType::F32)).unwrap();
        assert_eq!(y.dims(), &[3, 10]);
        let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "stem.weight");
        assert_eq!(names[2], "2.weight");
    }

    #[test]
    fn errors_name_the_line_and_the_layer() {
        let e = parse_archfile(
            "[[layer]]\ntype = \"relu\"\n\n[[layer]]\ntype = \"wobble\"\n",
            "a.toml",
            [1, 4, 4],
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("a.toml: line 4: layer 1 (wobble): unknown layer type 'wobble'"),
            "{e}"
        );
        let e = parse_archfile(
            "[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"conv2d\"\nout = 3\nkernel = 3\n",
            "b.toml",
            [1, 4, 4],
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 3: layer 1 (conv2d): does not fit its input [1, 16]"),
            "{e}"
        );
        let e = parse_archfile("[[layer]]\ntype = \"relu\"\nbogus = 1\n", "c.toml", [1, 4, 4], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
    }
}
