//! Helpers shared by the integration tests: tensor builders, approximate comparisons, a
//! gradcheck wrapper (on every device) and the "a view behaves like a contiguous copy" check.
#![allow(dead_code)]

use nabla_core::{DType, GradcheckOptions, Result, Shape, Tensor, gradcheck};

/// An f64 tensor from literal values.
pub fn t64(data: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

/// An f32 tensor from literal values.
pub fn t32(data: &[f32], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

/// An i64 tensor from literal values.
pub fn ti64(data: &[i64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

/// arange(n) as f64 in `shape`.
pub fn range(n: usize, shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec((0..n).map(|i| i as f64).collect::<Vec<f64>>(), shape).unwrap()
}

/// An f64 leaf that requires grad.
pub fn leaf(data: &[f64], shape: impl Into<Shape>) -> Tensor {
    t64(data, shape).requires_grad_()
}

/// The values of any tensor as f64, row-major.
pub fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

/// Asserts element-wise |a − e| ≤ tol·(1 + |e|) (NaN only matches NaN).
#[track_caller]
pub fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "length: got {actual:?}, expected {expected:?}"
    );
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = if e.is_nan() {
            a.is_nan()
        } else if e.is_infinite() {
            a == e
        } else {
            (a - e).abs() <= tol * (1.0 + e.abs())
        };
        assert!(
            ok,
            "element {i}: got {a}, expected {e}\n  actual:   {actual:?}\n  expected: {expected:?}"
        );
    }
}

/// Asserts the values (and shape) of a tensor.
#[track_caller]
pub fn assert_tensor(t: &Tensor, dims: &[usize], expected: &[f64]) {
    assert_eq!(t.dims(), dims, "shape");
    assert_close(&vals(t), expected, 1e-12);
}

/// Like [`assert_tensor`] with a tolerance suited to f32 results.
#[track_caller]
pub fn assert_tensor32(t: &Tensor, dims: &[usize], expected: &[f64]) {
    assert_eq!(t.dtype(), DType::F32);
    assert_eq!(t.dims(), dims, "shape");
    assert_close(&vals(t), expected, 1e-6);
}

/// ∂loss/∂x for a leaf `x`, as f64 values.
#[track_caller]
pub fn grad(grads: &nabla_core::GradStore, x: &Tensor) -> Vec<f64> {
    vals(grads.get(x).expect("the leaf should have a gradient"))
}

/// Runs the central-difference gradient check in f64 on the CPU and, where there is one, on
/// `cuda:0` (the inputs moved there), and panics with its message on failure.
#[track_caller]
pub fn check(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    if let Err(e) = gradcheck(&f, inputs, GradcheckOptions::default()) {
        panic!("gradcheck failed: {e}");
    }
    if let Some(gpu) = gpu() {
        let moved: Vec<Tensor> = inputs.iter().map(|x| x.to_device(gpu).unwrap()).collect();
        if let Err(e) = gradcheck(&f, &moved, GradcheckOptions::default()) {
            panic!("gradcheck failed on {gpu}: {e}");
        }
    }
}

/// The GPU the gradient checks also run on, found (or reported as skipped) once per suite.
fn gpu() -> Option<nabla_core::Device> {
    static GPU: std::sync::OnceLock<Option<nabla_core::Device>> = std::sync::OnceLock::new();
    *GPU.get_or_init(|| nabla_core::testing::gpu_or_skip("the f64 gradient checks of this suite"))
}

/// Fixed, distinct weights for the output of an op, so that a loss Σ w·y sees every element.
pub fn weights(shape: &Shape) -> Tensor {
    let n = shape.elem_count();
    Tensor::from_vec(
        (0..n).map(|i| 1.0 + 0.25 * i as f64).collect::<Vec<f64>>(),
        shape.clone(),
    )
    .unwrap()
}

/// f(view) for a view of `base`; returns the forward values and ∂(Σ w·f)/∂base.
fn run_on(f: &dyn Fn(&Tensor) -> Result<Tensor>, base: &Tensor, view: &Tensor) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let y = f(view).unwrap();
    let loss = y.mul(&weights(y.shape())).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g = grads
        .get(base)
        .map(vals)
        .unwrap_or_else(|| vec![0.0; base.elem_count()]);
    (y.dims().to_vec(), vals(&y), g)
}

/// Checks that `f` gives the same values and gradients on transposed, narrowed, transposed and
/// narrowed, and broadcast views as on contiguous tensors holding the same 2×3 values.
/// `v` holds the six (row-major) values; keep them away from the kinks of `f`.
#[track_caller]
pub fn check_views(v: [f64; 6], f: impl Fn(&Tensor) -> Result<Tensor>) {
    let f: &dyn Fn(&Tensor) -> Result<Tensor> = &f;
    let tol = 1e-12;
    let contiguous = leaf(&v, (2, 3));
    let (dims, y_ref, g_ref) = run_on(f, &contiguous, &contiguous);
    // g_ref as [[a, b, c], [d, e, f]]; its transpose is [[a, d], [b, e], [c, f]].
    let g_ref_t = [g_ref[0], g_ref[3], g_ref[1], g_ref[4], g_ref[2], g_ref[5]];

    // Transposed: a 3×2 base whose transpose holds the values.
    let base = leaf(&[v[0], v[3], v[1], v[4], v[2], v[5]], (3, 2));
    let view = base.t().unwrap();
    assert!(!view.is_contiguous());
    let (d, y, g) = run_on(f, &base, &view);
    assert_eq!(d, dims, "transposed: shape");
    assert_close(&y, &y_ref, tol);
    assert_close(&g, &g_ref_t, tol);

    // Narrowed: columns 1..4 of a 2×5 base (junk values in the other columns).
    let base = leaf(&[9.5, v[0], v[1], v[2], 8.5, 7.5, v[3], v[4], v[5], 6.5], (2, 5));
    let view = base.narrow(1, 1, 3).unwrap();
    assert!(!view.is_contiguous());
    let (d, y, g) = run_on(f, &base, &view);
    assert_eq!(d, dims, "narrowed: shape");
    assert_close(&y, &y_ref, tol);
    let g_exp = [
        0.0, g_ref[0], g_ref[1], g_ref[2], 0.0, 0.0, g_ref[3], g_ref[4], g_ref[5], 0.0,
    ];
    assert_close(&g, &g_exp, tol);

    // Narrowed along rows (a view with an offset that is contiguous), then transposed back:
    // base 4×2 → rows 1..4 → 3×2 → transposed 2×3.
    let base = leaf(&[5.5, 4.5, v[0], v[3], v[1], v[4], v[2], v[5]], (4, 2));
    let view = base.narrow(0, 1, 3).unwrap().t().unwrap();
    let (d, y, g) = run_on(f, &base, &view);
    assert_eq!(d, dims, "offset+transposed: shape");
    assert_close(&y, &y_ref, tol);
    let g_exp = [
        0.0, 0.0, g_ref_t[0], g_ref_t[1], g_ref_t[2], g_ref_t[3], g_ref_t[4], g_ref_t[5],
    ];
    assert_close(&g, &g_exp, tol);

    // Broadcast: a [3] base expanded to 2×3 equals a contiguous tensor with two equal rows;
    // the base's gradient is the sum of the two rows of the contiguous one's.
    let rows = [v[0], v[1], v[2], v[0], v[1], v[2]];
    let contiguous = leaf(&rows, (2, 3));
    let (dims, y_ref, g_ref) = run_on(f, &contiguous, &contiguous);
    let base = leaf(&v[..3], (3,));
    let view = base.broadcast_to((2, 3)).unwrap();
    assert!(!view.is_contiguous());
    let (d, y, g) = run_on(f, &base, &view);
    assert_eq!(d, dims, "broadcast: shape");
    assert_close(&y, &y_ref, tol);
    assert_close(
        &g,
        &[g_ref[0] + g_ref[3], g_ref[1] + g_ref[4], g_ref[2] + g_ref[5]],
        tol,
    );
}

/// Checks that an op's error is an `Err` whose message is exactly `msg`.
#[track_caller]
pub fn assert_err<T>(r: Result<T>, msg: &str) {
    match r {
        Ok(_) => panic!("expected the error {msg:?}, got Ok"),
        Err(e) => assert_eq!(e.to_string(), msg),
    }
}

/// Checks that an op returns an `Err` (any message).
#[track_caller]
pub fn assert_is_err<T>(r: Result<T>) {
    if r.is_ok() {
        panic!("expected an error, got Ok");
    }
}
