//! Times max pooling of LeNet-5's first feature maps, for profiling.
//! Run: `cargo run --release -p nabla-core --example pool_profile`
use nabla_core::{DType, MaxPool2dOptions, Result, Tensor, no_grad};
fn main() -> Result<()> {
    let x = Tensor::randn((128, 6, 28, 28), DType::F32)?.requires_grad_();
    let o = MaxPool2dOptions::new(2);
    let t = std::time::Instant::now();
    for _ in 0..200 {
        no_grad(|| x.max_pool2d(&o))?;
    }
    println!("no_grad fwd {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 200.0);
    let t = std::time::Instant::now();
    for _ in 0..200 {
        x.max_pool2d(&o)?;
    }
    println!("recorded fwd {:.3} ms", t.elapsed().as_secs_f64() * 1e3 / 200.0);
    Ok(())
}
