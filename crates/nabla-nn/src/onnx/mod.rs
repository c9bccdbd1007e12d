//! ONNX export of a module's inference graph (opset 17, a dynamic batch dimension).
//!
//! Every [`Module`] writes its own operators in [`Module::to_onnx`], next to its `forward`:
//! it receives an [`OnnxValue`] (the name of a tensor in the graph and, alongside, the value
//! that tensor takes for one traced sample) and returns its output the same way. The traced
//! values give each layer the shapes it needs (adaptive pooling, circular padding) and are
//! the output the exported graph must reproduce. Nodes are named after the module path
//! (`features.0`, `layer1.0.conv1`) and weights after the state dict (`features.0.weight`), so
//! a layer of the ONNX file is found by the name it has in nabla and in PyTorch.
//!
//! A layer without an export is an error naming its path. [`proto`] turns the collected graph
//! into ONNX's protobuf with the `onnx-protobuf` crate.

pub mod proto;

use std::collections::HashSet;

use crate::module::Module;
use nabla_core::{DType, Error, PaddingMode, Result, Tensor};

/// The opset the exporter writes (ONNX 1.12, PyTorch's default export opset).
pub const OPSET: i64 = 17;

/// A tensor of the graph: its name, and its value for the traced sample.
#[derive(Clone)]
pub struct OnnxValue {
    pub name: String,
    pub sample: Tensor,
}

/// A node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(String),
}

/// One operator of the graph.
#[derive(Debug, Clone)]
pub struct OnnxNode {
    pub op: &'static str,
    pub name: String,
    pub inputs: Vec<String>,
    pub output: String,
    pub attrs: Vec<(&'static str, Attr)>,
}

/// The data of an initializer.
#[derive(Debug, Clone)]
pub enum InitData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant of the graph (a weight, or the shape arguments of Pad and Slice).
#[derive(Debug, Clone)]
pub struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: InitData,
}

/// The graph being written: nodes in execution order, initializers, and the module path of
/// the layer writing now.
#[derive(Default)]
pub struct OnnxGraph {
    pub nodes: Vec<OnnxNode>,
    pub initializers: Vec<Initializer>,
    scope: Vec<String>,
    names: HashSet<String>,
}

impl OnnxGraph {
    /// Runs `m.to_onnx` as the child `name` of the current layer (its nodes and weights are
    /// named `parent.name…`).
    pub fn child(&mut self, name: &str, m: &dyn Module, x: &OnnxValue) -> Result<OnnxValue> {
        self.scope.push(name.to_string());
        let out = m.to_onnx(self, x);
        self.scope.pop();
        out
    }

    /// The feature maps flattened to `[N, features]` (PyTorch's `torch.flatten(x, 1)`) and run
    /// through the child `name`: the classifier head of the zoo's CNNs.
    pub fn flatten_into(&mut self, name: &str, m: &dyn Module, x: &OnnxValue) -> Result<OnnxValue> {
        let h = self.flatten(x)?;
        self.child(name, m, &h)
    }

    /// Runs the named children one after another.
    pub fn chain(&mut self, children: Vec<(String, &dyn Module)>, x: &OnnxValue) -> Result<OnnxValue> {
        let mut h = x.clone();
        for (name, m) in children {
            h = self.child(&name, m, &h)?;
        }
        Ok(h)
    }

    /// The module path of the layer writing now (`""` for the model itself).
    pub fn path(&self) -> String {
        self.scope.join(".")
    }

    /// An unused name: the layer's path (or `fallback` for the model itself), with `/what`
    /// when the layer writes more than one node, and a number when that is taken too.
    fn fresh(&mut self, what: &str) -> String {
        let path = self.path();
        let base = if path.is_empty() { what.to_string() } else { path };
        let mut name = base.clone();
        if self.names.contains(&name) {
            name = format!("{base}/{what}");
        }
        let mut i = 1;
        while self.names.contains(&name) {
            name = format!("{base}/{what}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// A weight of the current layer, named as in the state dict (`path.local`), stored as f32.
    pub fn weight(&mut self, local: &str, t: &Tensor) -> Result<String> {
        let path = self.path();
        let name = crate::module::join(&path, local);
        let data = t.to_dtype(DType::F32)?.to_vec::<f32>()?;
        self.names.insert(name.clone());
        self.initializers.push(Initializer {
            name: name.clone(),
            dims: t.dims().to_vec(),
            data: InitData::F32(data),
        });
        Ok(name)
    }

    /// An f32 constant made for the export (not a parameter), named after the current layer.
    pub fn constant_f32(&mut self, what: &str, dims: &[usize], data: Vec<f32>) -> String {
        let name = self.fresh(what);
        self.initializers.push(Initializer {
            name: name.clone(),
            dims: dims.to_vec(),
            data: InitData::F32(data),
        });
        name
    }

    /// A 1-D int64 constant (the pads of `Pad`, the starts and ends of `Slice`).
    pub fn constant_i64(&mut self, what: &str, data: &[i64]) -> String {
        let name = self.fresh(what);
        self.initializers.push(Initializer {
            name: name.clone(),
            dims: vec![data.len()],
            data: InitData::I64(data.to_vec()),
        });
        name
    }

    /// Appends one operator reading `inputs`; its output takes the node's name and the traced
    /// value `sample`.
    pub fn op(
        &mut self,
        op: &'static str,
        inputs: &[&str],
        attrs: Vec<(&'static str, Attr)>,
        sample: Tensor,
    ) -> OnnxValue {
        let name = self.fresh(op);
        self.nodes.push(OnnxNode {
            op,
            name: name.clone(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            output: name.clone(),
            attrs,
        });
        OnnxValue { name, sample }
    }

    /// The error for a layer ONNX (or this exporter) cannot express.
    pub fn unsupported(&self, what: &str, why: &str) -> Error {
        let path = self.path();
        let at = if path.is_empty() {
            "the model".to_string()
        } else {
            format!("layer '{path}'")
        };
        Error::Argument {
            op: "onnx export",
            msg: format!("{at} ({what}) cannot be exported: {why}"),
        }
    }

    // Operators used by several layers ------------------------------------------------------

    /// An operator of one input and no attributes whose nabla counterpart is `f`.
    pub fn unary(
        &mut self,
        op: &'static str,
        x: &OnnxValue,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<OnnxValue> {
        let y = f(&x.sample)?;
        Ok(self.op(op, &[&x.name], vec![], y))
    }

    pub fn relu(&mut self, x: &OnnxValue) -> Result<OnnxValue> {
        self.unary("Relu", x, |t| t.relu())
    }

    /// `x·c` for a scalar `c`.
    pub fn mul_scalar(&mut self, x: &OnnxValue, c: f64) -> Result<OnnxValue> {
        let k = self.constant_f32("scale", &[], vec![c as f32]);
        let y = x.sample.mul_scalar(c)?;
        Ok(self.op("Mul", &[&x.name, &k], vec![], y))
    }

    /// `[N, …] → [N, rest]` (PyTorch's `flatten(1, -1)`); a vector stays as it is.
    pub fn flatten(&mut self, x: &OnnxValue) -> Result<OnnxValue> {
        if x.sample.rank() <= 2 {
            return Ok(x.clone());
        }
        let y = x.sample.flatten(1, -1)?;
        Ok(self.op("Flatten", &[&x.name], vec![("axis", Attr::Int(1))], y))
    }

    /// The elementwise sum of `a` and `b` (with broadcasting).
    pub fn add(&mut self, a: &OnnxValue, b: &OnnxValue) -> Result<OnnxValue> {
        let y = a.sample.add(&b.sample)?;
        Ok(self.op("Add", &[&a.name, &b.name], vec![], y))
    }

    /// The elementwise product of `a` and `b` (with broadcasting).
    pub fn mul(&mut self, a: &OnnxValue, b: &OnnxValue) -> Result<OnnxValue> {
        let y = a.sample.mul(&b.sample)?;
        Ok(self.op("Mul", &[&a.name, &b.name], vec![], y))
    }

    /// The values joined along `axis`.
    pub fn concat(&mut self, parts: &[OnnxValue], axis: usize) -> Result<OnnxValue> {
        if let [one] = parts {
            return Ok(one.clone());
        }
        let samples: Vec<&Tensor> = parts.iter().map(|p| &p.sample).collect();
        let y = Tensor::cat(&samples, axis as isize)?;
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        Ok(self.op("Concat", &names, vec![("axis", Attr::Int(axis as i64))], y))
    }

    /// `x[…, start..end, …]` along `axis`, every `step`-th element.
    pub fn slice(&mut self, x: &OnnxValue, axis: usize, start: usize, end: usize, step: usize) -> Result<OnnxValue> {
        let len = end.saturating_sub(start).div_ceil(step.max(1));
        let mut y = x.sample.narrow(axis as isize, start, end - start)?;
        if step > 1 {
            let idx: Vec<i64> = (0..len).map(|i| (i * step) as i64).collect();
            let idx = Tensor::from_vec(idx, vec![len])?;
            y = y.index_select(axis as isize, &idx)?;
        }
        let starts = self.constant_i64("starts", &[start as i64]);
        let ends = self.constant_i64("ends", &[end as i64]);
        let axes = self.constant_i64("axes", &[axis as i64]);
        let steps = self.constant_i64("steps", &[step as i64]);
        Ok(self.op("Slice", &[&x.name, &starts, &ends, &axes, &steps], vec![], y))
    }

    /// Padding `[top, bottom, left, right]` of an `[N, C, H, W]` value in `mode`: ONNX `Pad`
    /// (constant, reflect, edge); circular padding as slices of the far edges concatenated.
    pub fn pad2d(&mut self, x: &OnnxValue, sides: [usize; 4], mode: PaddingMode) -> Result<OnnxValue> {
        if sides == [0; 4] {
            return Ok(x.clone());
        }
        let [t, b, l, r] = sides;
        if mode == PaddingMode::Circular {
            let [h, w] = [x.sample.dims()[2], x.sample.dims()[3]];
            let mut rows = Vec::new();
            if t > 0 {
                rows.push(self.slice(x, 2, h - t, h, 1)?);
            }
            rows.push(x.clone());
            if b > 0 {
                rows.push(self.slice(x, 2, 0, b, 1)?);
            }
            let tall = self.concat(&rows, 2)?;
            let mut cols = Vec::new();
            if l > 0 {
                cols.push(self.slice(&tall, 3, w - l, w, 1)?);
            }
            cols.push(tall.clone());
            if r > 0 {
                cols.push(self.slice(&tall, 3, 0, r, 1)?);
            }
            return self.concat(&cols, 3);
        }
        let onnx_mode = match mode {
            PaddingMode::Zeros => "constant",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "edge",
            PaddingMode::Circular => unreachable!("handled above"),
        };
        let y = x.sample.pad2d(sides, mode)?;
        let pads = self.constant_i64("pads", &[0, 0, t as i64, l as i64, 0, 0, b as i64, r as i64]);
        Ok(self.op("Pad", &[&x.name, &pads], vec![("mode", Attr::Str(onnx_mode.into()))], y))
    }

    /// Mean over windows that divide the input into `out` cells as adaptive pooling does
    /// (cell i of n over a length L covers ⌊iL/n⌋ .. ⌈(i+1)L/n⌉): `GlobalAveragePool` for one
    /// cell, `AveragePool` when the cells tile the input evenly, otherwise a slice and a
    /// `ReduceMean` per row and per column of cells (averaging is separable).
    pub fn adaptive_avg_pool2d(&mut self, x: &OnnxValue, out: [usize; 2]) -> Result<OnnxValue> {
        let [h, w] = [x.sample.dims()[2], x.sample.dims()[3]];
        if [h, w] == out {
            return Ok(x.clone());
        }
        let y = x.sample.adaptive_avg_pool2d(out)?;
        if out == [1, 1] {
            return Ok(self.op("GlobalAveragePool", &[&x.name], vec![], y));
        }
        if h % out[0] == 0 && w % out[1] == 0 {
            let k = [(h / out[0]) as i64, (w / out[1]) as i64];
            let attrs = vec![
                ("kernel_shape", Attr::Ints(k.to_vec())),
                ("strides", Attr::Ints(k.to_vec())),
            ];
            return Ok(self.op("AveragePool", &[&x.name], attrs, y));
        }
        let mut h_cells = Vec::new();
        for i in 0..out[0] {
            let (s, e) = (i * h / out[0], ((i + 1) * h).div_ceil(out[0]));
            let rows = self.slice(x, 2, s, e, 1)?;
            let m = rows.sample.mean(&[2], true)?;
            h_cells.push(self.op("ReduceMean", &[&rows.name], vec![("axes", Attr::Ints(vec![2]))], m));
        }
        let tall = self.concat(&h_cells, 2)?;
        let mut cells = Vec::new();
        for j in 0..out[1] {
            let (s, e) = (j * w / out[1], ((j + 1) * w).div_ceil(out[1]));
            let cols = self.slice(&tall, 3, s, e, 1)?;
            let m = cols.sample.mean(&[3], true)?;
            cells.push(self.op("ReduceMean", &[&cols.name], vec![("axes", Attr::Ints(vec![3]))], m));
        }
        let mut done = self.concat(&cells, 3)?;
        done.sample = y;
        Ok(done)
    }
}

/// What a user of the exported file needs beyond the graph: stored as the model's
/// `metadata_props` (class names, the normalisation of inputs, where it came from).
#[derive(Debug, Clone, Default)]
pub struct OnnxMetadata {
    pub entries: Vec<(String, String)>,
}

/// The inference graph of `model` (put in evaluation mode) for inputs `[C, H, W]`, with a
/// dynamic batch dimension: the graph, the traced sample input `[1, C, H, W]` and its output.
pub fn trace(model: &dyn Module, input: [usize; 3]) -> Result<(OnnxGraph, OnnxValue, OnnxValue)> {
    model.eval();
    let _guard = nabla_core::NoGradGuard::new();
    let [c, h, w] = input;
    let n = c * h * w;
    // A fixed ramp of values in [-1, 1): every pixel different, the same on every run.
    let data: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect();
    let x = OnnxValue {
        name: "input".into(),
        sample: Tensor::from_vec(data, vec![1, c, h, w])?,
    };
    let mut g = OnnxGraph::default();
    g.names.insert("input".into());
    let y = model.to_onnx(&mut g, &x)?;
    // The values traced alongside the graph must be the model's own output; a layer whose
    // export computes something else is a bug here, not a file to hand out.
    let direct = model.forward(&x.sample)?;
    let (a, b) = (y.sample.to_vec_f64()?, direct.to_vec_f64()?);
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let off = a.iter().zip(&b).fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
    if a.len() != b.len() || off > 1e-5 * scale {
        return Err(Error::Argument {
            op: "onnx export",
            msg: format!(
                "the traced graph gives {} values differing by up to {off:e} from the model's {} (a bug in a layer's export)",
                a.len(),
                b.len()
            ),
        });
    }
    Ok((g, x, y))
}

/// `model` as an ONNX file's bytes (opset 17, input `input` `[batch, C, H, W]`, output
/// `logits`), with `metadata`.
pub fn export(model: &dyn Module, input: [usize; 3], metadata: &OnnxMetadata) -> Result<Vec<u8>> {
    let (g, x, y) = trace(model, input)?;
    proto::model_bytes(&g, &x, &y, metadata)
}
