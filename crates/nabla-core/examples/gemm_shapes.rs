//! Times the matrix products of the benchmark MLP (batch 128 in training, 1000 in inference)
//! through `Tensor::matmul`, with the operand layouts the layers use, in f32 and in bf16
//! (autocast): `cargo run --release -p nabla-core --example gemm_shapes`.

use nabla_core::autocast::{Precision, autocast};
use nabla_core::{DType, Tensor};

mod common;

fn time(label: &str, a: &Tensor, b: &Tensor) {
    let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
    let gflops = |t: f64| 2.0 * (m * n * k) as f64 / t / 1e9;
    let f32 = common::median_ms(20, 7, 50, || drop(a.matmul(b).unwrap())) / 1e3;
    let bf16 = common::median_ms(20, 7, 50, || drop(autocast(Precision::Bf16, || a.matmul(b)).unwrap())) / 1e3;
    println!(
        "{label:<28} m={m:<4} k={k:<4} n={n:<4} f32 {:.3} ms {:.0} GFLOP/s   bf16 {:.3} ms {:.0} GFLOP/s   bf16/f32 speed {:.2}",
        f32 * 1e3,
        gflops(f32),
        bf16 * 1e3,
        gflops(bf16),
        f32 / bf16
    );
}

fn main() {
    let r = |s: &[usize]| Tensor::randn(s.to_vec(), DType::F32).unwrap();
    for (b, i, o) in [(128, 784, 512), (128, 512, 256), (1000, 784, 512), (1000, 512, 256)] {
        let x = r(&[b, i]);
        let w = r(&[o, i]);
        let dy = r(&[b, o]);
        time("forward x·Wᵀ", &x, &w.t().unwrap());
        time("input grad dy·W", &dy, &w);
        time("weight grad dyᵀ·x", &dy.t().unwrap(), &x);
        time("forward x·W (contiguous)", &x, &w.t().unwrap().contiguous().unwrap());
    }
}
