//! Trains a small network on generated data: three interleaved spirals in the plane, a
//! classic that no linear model can separate. A two-layer MLP (2 → 64 → 3, ReLU) with softmax
//! cross-entropy, He initialisation and plain mini-batch SGD, written with nabla-core alone.
//!
//! Run: `cargo run --release --example spiral`

use nabla_core::{DType, Generator, Result, Tensor, no_grad};

/// `points` per class on `classes` spiral arms with a little noise.
fn spirals(points: usize, classes: usize, rng: &mut Generator) -> Result<(Tensor, Vec<usize>)> {
    let mut xy = Vec::with_capacity(points * classes * 2);
    let mut labels = Vec::with_capacity(points * classes);
    for c in 0..classes {
        for i in 0..points {
            let r = i as f64 / points as f64;
            let theta = c as f64 * 2.0 * std::f64::consts::PI / classes as f64 + 4.0 * r + 0.2 * rng.normal();
            xy.extend([(r * theta.sin()) as f32, (r * theta.cos()) as f32]);
            labels.push(c);
        }
    }
    Ok((Tensor::from_vec(xy, (points * classes, 2))?, labels))
}

/// Mean softmax cross-entropy: −(1/N) Σₙ log softmax(zₙ)[yₙ], via a one-hot mask.
fn cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let (n, k) = (logits.dims()[0], logits.dims()[1]);
    let mut onehot = vec![0f32; n * k];
    labels.iter().enumerate().for_each(|(i, &y)| onehot[i * k + y] = 1.0);
    let onehot = Tensor::from_vec(onehot, (n, k))?;
    logits
        .log_softmax(1)?
        .mul(&onehot)?
        .sum_all()?
        .mul_scalar(-1.0 / n as f64)
}

fn accuracy(logits: &Tensor, labels: &[usize]) -> Result<f64> {
    let pred = logits.argmax(1, false)?.to_vec::<i64>()?;
    Ok(pred.iter().zip(labels).filter(|(p, y)| **p as usize == **y).count() as f64 / labels.len() as f64)
}

fn main() -> Result<()> {
    let mut rng = Generator::seed_from_u64(42);
    let (x, y) = spirals(300, 3, &mut rng)?;
    let hidden = 64;
    // He initialisation for the ReLU layer, Xavier-like for the output (He et al., 2015).
    let fan_in = 2.0f64;
    let w1 = Tensor::normal_with(0.0, (2.0 / fan_in).sqrt(), (2, hidden), DType::F32, &mut rng)?.requires_grad_();
    let b1 = Tensor::zeros((hidden,), DType::F32).requires_grad_();
    let w2 =
        Tensor::normal_with(0.0, (1.0 / hidden as f64).sqrt(), (hidden, 3), DType::F32, &mut rng)?.requires_grad_();
    let b2 = Tensor::zeros((3,), DType::F32).requires_grad_();
    let params = [&w1, &b1, &w2, &b2];
    let (lr, batch, epochs) = (0.5, 60, 300);
    let n = y.len();
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 1..=epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let idx = Tensor::from_vec(chunk.iter().map(|&i| i as i64).collect::<Vec<_>>(), (chunk.len(),))?;
            let xb = x.index_select(0, &idx)?;
            let yb: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
            let logits = xb.matmul(&w1)?.add(&b1)?.relu()?.matmul(&w2)?.add(&b2)?;
            let loss = cross_entropy(&logits, &yb)?;
            let grads = loss.backward()?;
            no_grad(|| -> Result<()> {
                for p in params {
                    let g = grads.get(p).expect("every parameter contributes");
                    p.copy_(&p.sub(&g.mul_scalar(lr)?)?)?; // w ← w − α ∂L/∂w
                }
                Ok(())
            })?;
        }
        if epoch % 50 == 0 || epoch == 1 {
            let logits = no_grad(|| x.matmul(&w1)?.add(&b1)?.relu()?.matmul(&w2)?.add(&b2))?;
            let loss = cross_entropy(&logits, &y)?.item()?;
            println!(
                "epoch {epoch:>3}  loss {loss:.4}  accuracy {:.1}%",
                100.0 * accuracy(&logits, &y)?
            );
        }
    }
    Ok(())
}
