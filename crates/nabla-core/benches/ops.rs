//! The foundation's speed figures: sgemm GFLOP/s at n = 256…2048 and conv2d forward and
//! forward+backward times for LeNet-5's and an AlexNet-like shape, in the shapes of
//! ../shared/bench/pytorch_cpu_ops.py so the two can be compared in one sitting.
//!
//! Run: `cargo bench -p nabla-core --bench ops [-- --json]` (NABLA_NUM_THREADS sets the threads).

use nabla_core::{Conv2dOptions, DType, Result, Tensor, no_grad};
use std::time::Instant;

fn median_secs(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    f()?;
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(ts[reps / 2])
}

fn main() -> Result<()> {
    nabla_core::runtime::keep_freed_memory();
    // As the `nabla` program runs: on a pool thread (see run_in_pool).
    nabla_core::runtime::run_in_pool(None, run)
}

fn run() -> Result<()> {
    let json = std::env::args().any(|a| a == "--json");
    nabla_core::manual_seed(0);
    let mut out: Vec<(String, f64)> = vec![("threads".into(), rayon_threads() as f64)];
    for n in [256usize, 512, 1024, 2048] {
        let (a, b) = (Tensor::randn((n, n), DType::F32)?, Tensor::randn((n, n), DType::F32)?);
        let s = median_secs(if n < 2048 { 10 } else { 4 }, || a.matmul(&b).map(|_| ()))?;
        out.push((
            format!("sgemm_{n}_gflops"),
            (2.0 * (n as f64).powi(3) / s / 1e9 * 10.0).round() / 10.0,
        ));
    }
    // name: (batch, c_in, h, w, c_out, k, pad)
    let shapes = [
        ("lenet_conv1", (128, 1, 28, 28, 6, 5, 2)),
        ("lenet_conv2", (128, 6, 14, 14, 16, 5, 0)),
        ("alexnet_conv2", (32, 64, 27, 27, 192, 5, 2)),
    ];
    for (name, (b, ci, h, w, co, k, p)) in shapes {
        let x = Tensor::randn((b, ci, h, w), DType::F32)?.requires_grad_();
        let wt = Tensor::randn((co, ci, k, k), DType::F32)?.requires_grad_();
        let bias = Tensor::randn((co,), DType::F32)?.requires_grad_();
        let opts = Conv2dOptions::default().padding(p);
        let fwd = median_secs(10, || no_grad(|| x.conv2d(&wt, Some(&bias), &opts).map(|_| ())))?;
        let fwd_bwd = median_secs(10, || {
            let y = x.conv2d(&wt, Some(&bias), &opts)?;
            y.backward_with(&Tensor::ones_like(&y)?).map(|_| ())
        })?;
        out.push((format!("{name}_fwd_ms"), (fwd * 1e6).round() / 1e3));
        out.push((format!("{name}_fwd_bwd_ms"), (fwd_bwd * 1e6).round() / 1e3));
    }
    if json {
        let body: Vec<String> = out.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        println!("{{{}}}", body.join(", "));
    } else {
        out.iter().for_each(|(k, v)| println!("{k}: {v}"));
    }
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("NABLA_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
