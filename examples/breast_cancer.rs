//! The lecture's binary decision with a logistic output: is a tumour malignant? (The
//! Wisconsin breast-cancer data plays the role of the loan-approval example.)
//!
//! A network with one hidden layer of 16 ReLU units and a sigmoid output, trained with
//! log loss L = −[y ln a + (1 − y) ln(1 − a)] by mini-batch gradient descent with momentum.
//!
//! Run: `cargo run --release -p nabla --example breast_cancer` (the file lives in examples/).

use nabla::data::csv::{Task, read_csv};
use nabla::prelude::*;

fn main() -> Result<()> {
    manual_seed(0);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/tabular/breast_cancer.csv");
    let data = read_csv(std::path::Path::new(path), "malignant", Task::Regression)?;
    let (n, f) = (data.labels.len(), data.num_features());
    // Standardise each feature with the statistics of the training part (first 80% of a shuffle).
    let mut order: Vec<usize> = (0..n).collect();
    Generator::seed_from_u64(1).shuffle(&mut order);
    let n_train = n * 4 / 5;
    let stats: Vec<(f64, f64)> = (0..f)
        .map(|j| {
            let col: Vec<f64> = order[..n_train].iter().map(|&i| data.row(i)[j] as f64).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / col.len() as f64;
            (m, v.sqrt().max(1e-12))
        })
        .collect();
    let tensors = |idx: &[usize]| -> Result<(Tensor, Tensor)> {
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| {
                data.row(i)
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| ((v as f64 - stats[j].0) / stats[j].1) as f32)
            })
            .collect();
        let y: Vec<f32> = idx.iter().map(|&i| data.targets[i]).collect();
        Ok((
            Tensor::from_vec(x, (idx.len(), f))?,
            Tensor::from_vec(y, (idx.len(), 1))?,
        ))
    };
    let (x_train, y_train) = tensors(&order[..n_train])?;
    let (x_test, y_test) = tensors(&order[n_train..])?;

    let net = Sequential::new()
        .add(Linear::new(f, 16)?)
        .add(ReLU)
        .add(Linear::new(16, 1)?)
        .add(Sigmoid);
    let mut opt = Sgd::new(net.named_parameters(), SgdConfig::new(0.05).momentum(0.9))?;
    let batch = 32;
    for epoch in 1..=40 {
        for start in (0..n_train).step_by(batch) {
            let len = batch.min(n_train - start);
            let (xb, yb) = (x_train.narrow(0, start, len)?, y_train.narrow(0, start, len)?);
            let loss = loss::binary_cross_entropy(&net.forward(&xb)?, &yb, Reduction::Mean)?;
            opt.step(&loss.backward()?)?;
        }
        if epoch % 10 == 0 {
            let (train_loss, test_loss, acc) = no_grad(|| -> Result<(f64, f64, f64)> {
                let tl = loss::binary_cross_entropy(&net.forward(&x_train)?, &y_train, Reduction::Mean)?.item()?;
                let p = net.forward(&x_test)?;
                let vl = loss::binary_cross_entropy(&p, &y_test, Reduction::Mean)?.item()?;
                let correct = p.ge_scalar(0.5)?.eq(&y_test)?.sum_all()?.item()?;
                Ok((tl, vl, correct / y_test.elem_count() as f64))
            })?;
            println!(
                "epoch {epoch:>2}  train log loss {train_loss:.4}  test log loss {test_loss:.4}  test accuracy {:.1}%",
                100.0 * acc
            );
        }
    }
    Ok(())
}
