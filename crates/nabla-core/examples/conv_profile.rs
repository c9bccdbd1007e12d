//! Times LeNet-5's second convolution, forward and backward, for profiling.
//! Run: `cargo run --release -p nabla-core --example conv_profile`
use nabla_core::{Conv2dOptions, DType, Result, Tensor, no_grad};
fn main() -> Result<()> {
    nabla_core::cpu::keep_freed_memory();
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (b, ci, h, co, k, p) = if args.len() == 6 {
        (args[0], args[1], args[2], args[3], args[4], args[5])
    } else {
        (128, 6, 14, 16, 5, 0)
    };
    let x = Tensor::randn((b, ci, h, h), DType::F32)?.requires_grad_();
    let w = Tensor::randn((co, ci, k, k), DType::F32)?.requires_grad_();
    let opts = Conv2dOptions::default().padding(p);
    let t = std::time::Instant::now();
    for _ in 0..200 {
        no_grad(|| x.conv2d(&w, None, &opts))?;
    }
    println!("fwd {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 200.0);
    let t = std::time::Instant::now();
    for _ in 0..100 {
        let y = x.conv2d(&w, None, &opts)?;
        y.backward_with(&Tensor::ones_like(&y)?)?;
    }
    println!("fwd+bwd {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 100.0);
    Ok(())
}
