//! nabla against PyTorch: every case of `tests/fixtures/ops.safetensors` (written by
//! `tools/fixtures/ops.py`, whose docstring describes the format) is run in f32 and its output
//! and input gradients compared with PyTorch's within 1e-5 of the values' scale:
//! max |nabla − torch| ≤ 1e-5 · max(1, max |torch|).
//!
//! Each case runs on every device (the CPU, and `cuda:0` where there is one), three times:
//! on contiguous inputs, on transposed views (the last two dims of
//! a transposed copy, swapped back) and on strided views with an offset (every other element of
//! a buffer twice as long, the others NaN, so reading one of them shows up in the output). The
//! gradients reach the buffers behind the views and must be zero at the NaN positions.
//!
//! Each test names the fixture case it reads; `every_fixture_case_is_tested` makes sure no case
//! of the file is left without a test (and no test names a missing case).

use std::collections::HashMap;
use std::sync::OnceLock;

use nabla_core::{AvgPool2dOptions, Conv2dOptions, Device, MaxPool2dOptions, PaddingMode, Result, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

const FIXTURE_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ops.safetensors");
const RTOL: f64 = 1e-5;
/// On a GPU: its exp and log round differently from the host's libm and its reductions sum in
/// another order (log_softmax's δx over a 2-D row was 1.07e-5 off on an H200, 2026-12-04).
const RTOL_GPU: f64 = 3e-5;

/// One stored tensor: shape and f32 values.
struct Stored {
    dims: Vec<usize>,
    values: Vec<f32>,
}

/// The whole file, decoded once.
struct Fixtures {
    tensors: HashMap<String, Stored>,
    params: HashMap<String, Value>,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let bytes = std::fs::read(FIXTURE_FILE).unwrap_or_else(|e| {
            panic!("{FIXTURE_FILE}: {e} (regenerate it with `python3 tools/make_fixtures.py ops`)")
        });
        let (_, header) = SafeTensors::read_metadata(&bytes).expect("safetensors header");
        let params = header
            .metadata()
            .as_ref()
            .expect("the fixture file has metadata")
            .iter()
            .filter(|(k, _)| !k.starts_with("__"))
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::from_str(v).unwrap_or_else(|e| panic!("metadata of {k}: {e}")),
                )
            })
            .collect();
        let st = SafeTensors::deserialize(&bytes).expect("safetensors file");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                assert_eq!(view.dtype(), Dtype::F32, "{name}: fixtures are f32");
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (
                    name,
                    Stored {
                        dims: view.shape().to_vec(),
                        values,
                    },
                )
            })
            .collect();
        Fixtures { tensors, params }
    })
}

/// One case of the file: `<op>/<variant>`.
struct Case {
    name: &'static str,
    params: &'static Value,
}

impl Case {
    fn load(name: &'static str) -> Case {
        let params = fixtures()
            .params
            .get(name)
            .unwrap_or_else(|| panic!("no fixture case {name} in {FIXTURE_FILE}"));
        Case { name, params }
    }

    fn stored(&self, role: &str) -> &'static Stored {
        let key = format!("{}/{role}", self.name);
        fixtures()
            .tensors
            .get(&key)
            .unwrap_or_else(|| panic!("no tensor {key} in {FIXTURE_FILE}"))
    }

    fn tensor(&self, role: &str) -> Tensor {
        let s = self.stored(role);
        Tensor::from_vec(s.values.clone(), s.dims.clone()).unwrap()
    }

    fn inputs(&self) -> Vec<String> {
        self.params["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    fn op(&self) -> &str {
        self.params["op"].as_str().unwrap()
    }

    fn usize(&self, key: &str) -> usize {
        self.params[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: `{key}` is not an integer", self.name)) as usize
    }

    fn f64(&self, key: &str) -> f64 {
        self.params[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: `{key}` is not a number", self.name))
    }

    fn bool(&self, key: &str) -> bool {
        self.params[key]
            .as_bool()
            .unwrap_or_else(|| panic!("{}: `{key}` is not a bool", self.name))
    }

    fn pair(&self, key: &str) -> [usize; 2] {
        self.array::<2>(key)
    }

    fn array<const N: usize>(&self, key: &str) -> [usize; N] {
        let v: Vec<usize> = self.params[key]
            .as_array()
            .unwrap_or_else(|| panic!("{}: `{key}` is not an array", self.name))
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        v.try_into()
            .unwrap_or_else(|_| panic!("{}: `{key}` should have {N} elements", self.name))
    }

    /// Runs the case's op in nabla on `xs` (in the order of `inputs`).
    fn run(&self, xs: &[Tensor]) -> Result<Tensor> {
        match self.op() {
            "conv2d" => {
                let [sh, sw] = self.pair("stride");
                let mode: PaddingMode = self.params["padding_mode"].as_str().unwrap().parse().unwrap();
                let mut opts = Conv2dOptions::default()
                    .stride_hw(sh, sw)
                    .padding_sides(self.array::<4>("padding"))
                    .padding_mode(mode)
                    .groups(self.usize("groups"));
                opts.dilation = self.pair("dilation");
                assert_eq!(self.bool("bias"), xs.len() == 3);
                xs[0].conv2d(&xs[1], xs.get(2), &opts)
            }
            "max_pool2d" => {
                let [kh, kw] = self.pair("kernel");
                let mut opts = MaxPool2dOptions::kernel_hw(kh, kw).ceil_mode(self.bool("ceil_mode"));
                opts.stride = self.pair("stride");
                opts.padding = self.pair("padding");
                opts.dilation = self.pair("dilation");
                xs[0].max_pool2d(&opts)
            }
            "avg_pool2d" => {
                let mut opts = AvgPool2dOptions::new(1)
                    .ceil_mode(self.bool("ceil_mode"))
                    .count_include_pad(self.bool("count_include_pad"));
                opts.kernel = self.pair("kernel");
                opts.stride = self.pair("stride");
                opts.padding = self.pair("padding");
                if let Some(d) = self.params["divisor_override"].as_u64() {
                    opts = opts.divisor_override(d as usize);
                }
                xs[0].avg_pool2d(&opts)
            }
            "adaptive_avg_pool2d" => xs[0].adaptive_avg_pool2d(self.pair("output_size")),
            "local_response_norm" => {
                xs[0].local_response_norm(self.usize("size"), self.f64("alpha"), self.f64("beta"), self.f64("k"))
            }
            "softmax" => xs[0].softmax(self.params["dim"].as_i64().unwrap() as isize),
            "log_softmax" => xs[0].log_softmax(self.params["dim"].as_i64().unwrap() as isize),
            "matmul" => xs[0].matmul(&xs[1]),
            other => panic!("{}: unknown op {other}", self.name),
        }
    }
}

/// How the inputs are laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Contiguous,
    /// `buffer.transpose(-1, -2)` where `buffer` holds the transposed values (rank ≥ 2;
    /// rank-1 inputs stay contiguous).
    Transposed,
    /// Every other element of a buffer of `[..., 2·W]`, starting at offset 1; the other
    /// elements are NaN.
    Strided,
}

/// A leaf buffer (that collects the gradient) and the view of it that the op sees.
struct Input {
    buffer: Tensor,
    view: Tensor,
}

impl Input {
    fn new(values: &Tensor, layout: Layout, device: Device) -> Input {
        let dims = values.dims().to_vec();
        let r = dims.len();
        // The buffer is made on the host, moved to `device`, and the view taken there.
        let leaf = |t: Tensor| t.to_device(device).unwrap().detach().requires_grad_();
        match layout {
            Layout::Contiguous => {
                let buffer = leaf(values.clone());
                Input {
                    view: buffer.clone(),
                    buffer,
                }
            }
            Layout::Transposed if r < 2 => Input::new(values, Layout::Contiguous, device),
            Layout::Transposed => {
                let buffer = leaf(values.transpose(-1, -2).unwrap().contiguous().unwrap());
                let view = buffer.transpose(-1, -2).unwrap();
                assert_eq!(view.dims(), &dims[..]);
                if dims[r - 1] > 1 && dims[r - 2] > 1 {
                    assert!(!view.is_contiguous());
                }
                Input { buffer, view }
            }
            Layout::Strided => {
                let v = values.to_vec::<f32>().unwrap();
                let mut data = Vec::with_capacity(2 * v.len());
                for x in v {
                    data.extend([f32::NAN, x]);
                }
                let mut buf_dims = dims.clone();
                buf_dims[r - 1] *= 2;
                let buffer = leaf(Tensor::from_vec(data, buf_dims).unwrap());
                let view = Input::pick(&buffer, 1);
                assert_eq!(view.dims(), &dims[..]);
                assert!(!view.is_contiguous() || dims[r - 1] <= 1);
                Input { buffer, view }
            }
        }
    }

    /// Elements `j` (0 or 1) of each pair along the last dim of a `[..., 2·W]` tensor: `[..., W]`.
    fn pick(t: &Tensor, j: usize) -> Tensor {
        let mut pairs = t.dims().to_vec();
        let w = pairs.pop().unwrap() / 2;
        pairs.extend([w, 2]);
        t.reshape(pairs).unwrap().narrow(-1, j, 1).unwrap().squeeze(-1).unwrap()
    }

    /// The gradient of the buffer, brought back to the view's shape (and the part of the
    /// buffer the view does not see, which must have a zero gradient).
    fn grad_of_view(&self, g: &Tensor, layout: Layout) -> (Vec<f32>, Vec<f32>) {
        let g = g.detach();
        match layout {
            Layout::Contiguous => (g.to_vec().unwrap(), vec![]),
            Layout::Transposed if g.rank() < 2 => (g.to_vec().unwrap(), vec![]),
            Layout::Transposed => (g.transpose(-1, -2).unwrap().to_vec().unwrap(), vec![]),
            Layout::Strided => (
                Input::pick(&g, 1).to_vec().unwrap(),
                Input::pick(&g, 0).to_vec().unwrap(),
            ),
        }
    }
}

/// max |actual − expected| ≤ rtol · max(1, max |expected|), with the same shape.
#[track_caller]
fn assert_matches(what: &str, dims: &[usize], actual: &[f32], expected: &Stored, rtol: f64) {
    assert_eq!(dims, &expected.dims[..], "{what}: shape");
    assert_eq!(actual.len(), expected.values.len(), "{what}: element count");
    let scale = expected.values.iter().fold(1.0f64, |m, &v| m.max(f64::from(v).abs()));
    let (mut worst, mut at) = (0.0f64, 0);
    for (i, (&a, &e)) in actual.iter().zip(&expected.values).enumerate() {
        let err = (f64::from(a) - f64::from(e)).abs();
        // NaN compares false with everything: make it the worst error.
        let err = if err.is_nan() { f64::INFINITY } else { err };
        if err > worst {
            (worst, at) = (err, i);
        }
    }
    assert!(
        worst <= rtol * scale,
        "{what}: max |nabla − torch| = {worst:e} at flat index {at} (nabla {}, torch {}), allowed {:e}",
        actual[at],
        expected.values[at],
        rtol * scale
    );
}

/// Runs one fixture case on `device` in every input layout and compares outputs and gradients.
fn check_case(name: &'static str, device: Device) {
    let case = Case::load(name);
    let names = case.inputs();
    let grad_out = case.tensor("grad_out").to_device(device).unwrap();
    let rtol = if device.is_cpu() { RTOL } else { RTOL_GPU };
    for layout in [Layout::Contiguous, Layout::Transposed, Layout::Strided] {
        let what = |role: &str| format!("{name} on {device} [{layout:?} inputs] {role}");
        let inputs: Vec<Input> = names
            .iter()
            .map(|n| Input::new(&case.tensor(n), layout, device))
            .collect();
        let views: Vec<Tensor> = inputs.iter().map(|i| i.view.clone()).collect();
        let out = case.run(&views).unwrap_or_else(|e| panic!("{}: {e}", what("forward")));
        assert_matches(
            &what("out"),
            out.dims(),
            &out.to_vec::<f32>().unwrap(),
            case.stored("out"),
            rtol,
        );

        let grads = out.mul(&grad_out).unwrap().sum_all().unwrap().backward().unwrap();
        for (n, input) in names.iter().zip(&inputs) {
            let role = format!("grad_{n}");
            let g = grads
                .get(&input.buffer)
                .unwrap_or_else(|| panic!("{}: no gradient", what(&role)));
            assert_eq!(g.dims(), input.buffer.dims(), "{}: gradient shape", what(&role));
            let (seen, unseen) = input.grad_of_view(g, layout);
            assert_matches(&what(&role), input.view.dims(), &seen, case.stored(&role), rtol);
            assert!(
                unseen.iter().all(|&v| v == 0.0),
                "{}: gradient leaked into elements outside the view: {unseen:?}",
                what(&role)
            );
        }
    }
}

macro_rules! fixture_tests {
    ($($test:ident => $case:literal,)*) => {
        $(
            mod $test {
                use super::*;
                #[test]
                fn cpu() {
                    check_case($case, Device::Cpu);
                }
                #[test]
                fn cuda() {
                    if let Some(d) = nabla_core::testing::gpu_or_skip(module_path!()) {
                        check_case($case, d);
                    }
                }
            }
        )*
        /// Every case name the tests above read.
        const TESTED_CASES: &[&str] = &[$($case),*];
    };
}

fixture_tests! {
    // conv2d through nn.Conv2d(padding=(ph, pw), padding_mode=...)
    conv2d_zeros_s2_d2_g2 => "conv2d/zeros_s2_d2_g2",
    conv2d_reflect_s2 => "conv2d/reflect_s2",
    conv2d_replicate_d2_g2 => "conv2d/replicate_d2_g2",
    conv2d_circular_s21_depthwise => "conv2d/circular_s21_depthwise",
    conv2d_reflect_s2_d12_g2 => "conv2d/reflect_s2_d12_g2",
    conv2d_zeros_nobias => "conv2d/zeros_nobias",
    conv2d_circular_nobias_s2 => "conv2d/circular_nobias_s2",
    conv2d_batch40_reflect_g2 => "conv2d/batch40_reflect_g2",
    conv2d_pointwise => "conv2d/pointwise",
    // conv2d after F.pad(x, (left, right, top, bottom), mode): asymmetric sides
    conv2d_asym_zeros_s2_g2 => "conv2d/asym_zeros_s2_g2",
    conv2d_asym_zeros_d2 => "conv2d/asym_zeros_d2",
    conv2d_asym_reflect_s2_g2 => "conv2d/asym_reflect_s2_g2",
    conv2d_asym_reflect_d2 => "conv2d/asym_reflect_d2",
    conv2d_asym_replicate_s2_g2 => "conv2d/asym_replicate_s2_g2",
    conv2d_asym_replicate_d2 => "conv2d/asym_replicate_d2",
    conv2d_asym_circular_s2_g2 => "conv2d/asym_circular_s2_g2",
    conv2d_asym_circular_d2 => "conv2d/asym_circular_d2",
    conv2d_asym_reflect_nobias => "conv2d/asym_reflect_nobias",
    // max_pool2d
    max_pool2d_overlap_k3s2 => "max_pool2d/overlap_k3s2",
    max_pool2d_ceil_k3s2 => "max_pool2d/ceil_k3s2",
    max_pool2d_pad1_k3s2 => "max_pool2d/pad1_k3s2",
    max_pool2d_ceil_pad_k2s2 => "max_pool2d/ceil_pad_k2s2",
    max_pool2d_negative_pad_ceil => "max_pool2d/negative_pad_ceil",
    max_pool2d_dilation2 => "max_pool2d/dilation2",
    max_pool2d_rank3 => "max_pool2d/rank3",
    max_pool2d_rect_k23 => "max_pool2d/rect_k23",
    max_pool2d_ties_k3s1 => "max_pool2d/ties_k3s1",
    max_pool2d_ties_k3s2_pad_ceil => "max_pool2d/ties_k3s2_pad_ceil",
    max_pool2d_ties_constant => "max_pool2d/ties_constant",
    // avg_pool2d
    avg_pool2d_k3s2_pad1_include => "avg_pool2d/k3s2_pad1_include",
    avg_pool2d_k3s2_pad1_exclude => "avg_pool2d/k3s2_pad1_exclude",
    avg_pool2d_ceil_pad1_include => "avg_pool2d/ceil_pad1_include",
    avg_pool2d_ceil_pad1_exclude => "avg_pool2d/ceil_pad1_exclude",
    avg_pool2d_ceil_nopad => "avg_pool2d/ceil_nopad",
    avg_pool2d_divisor_override => "avg_pool2d/divisor_override",
    avg_pool2d_k2_plain => "avg_pool2d/k2_plain",
    avg_pool2d_overlap_k3s1_pad1 => "avg_pool2d/overlap_k3s1_pad1",
    // adaptive_avg_pool2d
    adaptive_avg_pool2d_7x5_to_3x2 => "adaptive_avg_pool2d/7x5_to_3x2",
    adaptive_avg_pool2d_5x7_to_2x3 => "adaptive_avg_pool2d/5x7_to_2x3",
    adaptive_avg_pool2d_4x3_to_6x5 => "adaptive_avg_pool2d/4x3_to_6x5",
    adaptive_avg_pool2d_6x6_to_1x1 => "adaptive_avg_pool2d/6x6_to_1x1",
    adaptive_avg_pool2d_rank3_7x7_to_3x3 => "adaptive_avg_pool2d/rank3_7x7_to_3x3",
    // local_response_norm
    lrn_alexnet_size5 => "local_response_norm/alexnet_size5",
    lrn_size4 => "local_response_norm/size4",
    lrn_size2_beta1 => "local_response_norm/size2_beta1",
    lrn_size6_c3 => "local_response_norm/size6_c3",
    lrn_rank3 => "local_response_norm/rank3",
    // softmax / log_softmax with ±1000 entries
    softmax_dim1 => "softmax/dim1",
    softmax_dim_last => "softmax/dim_last",
    softmax_2d_dim0 => "softmax/2d_dim0",
    log_softmax_dim1 => "log_softmax/dim1",
    log_softmax_dim_last => "log_softmax/dim_last",
    log_softmax_2d_dim1 => "log_softmax/2d_dim1",
    // matmul
    matmul_broadcast_4d_3d => "matmul/broadcast_4d_3d",
    matmul_2d => "matmul/2d",
    matmul_batch_3d_2d => "matmul/batch_3d_2d",
    matmul_1d_1d => "matmul/1d_1d",
    matmul_1d_2d => "matmul/1d_2d",
    matmul_2d_1d => "matmul/2d_1d",
    matmul_3d_1d => "matmul/3d_1d",
    matmul_1d_3d => "matmul/1d_3d",
}

#[test]
fn every_fixture_case_is_tested() {
    let mut in_file: Vec<&str> = fixtures().params.keys().map(String::as_str).collect();
    in_file.sort_unstable();
    let mut tested = TESTED_CASES.to_vec();
    tested.sort_unstable();
    let untested: Vec<_> = in_file.iter().filter(|c| !tested.contains(c)).collect();
    let missing: Vec<_> = tested.iter().filter(|c| !in_file.contains(c)).collect();
    assert!(untested.is_empty(), "fixture cases without a test: {untested:?}");
    assert!(
        missing.is_empty(),
        "tests naming cases missing from {FIXTURE_FILE}: {missing:?}"
    );
    // Every case has its inputs, output and gradients, and nothing else is stored.
    let mut expected = 0;
    for &name in &in_file {
        let case = Case::load(name);
        for n in case.inputs() {
            case.stored(&n);
            case.stored(&format!("grad_{n}"));
            expected += 2;
        }
        case.stored("out");
        case.stored("grad_out");
        expected += 2;
    }
    assert_eq!(fixtures().tensors.len(), expected, "stray tensors in {FIXTURE_FILE}");
}

#[test]
fn fixture_file_is_small() {
    let len = std::fs::metadata(FIXTURE_FILE).unwrap().len();
    assert!(len < 1 << 20, "{FIXTURE_FILE} is {len} bytes; keep fixtures tiny");
}
