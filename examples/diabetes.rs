//! The lecture's regression with a linear output: predict disease progression from ten
//! baseline measurements (the diabetes data plays the role of the house-price example).
//!
//! A network with one hidden layer of 32 ReLU units and a linear output, trained with mean
//! squared error by Adam; the target is standardised for training and reported in its units.
//!
//! Run: `cargo run --release -p nabla --example diabetes`

use nabla::data::csv::{Task, read_csv};
use nabla::prelude::*;

fn main() -> Result<()> {
    manual_seed(0);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/tabular/diabetes.csv");
    let data = read_csv(std::path::Path::new(path), "progression", Task::Regression)?;
    let (n, f) = (data.targets.len(), data.num_features());
    let mut order: Vec<usize> = (0..n).collect();
    Generator::seed_from_u64(1).shuffle(&mut order);
    let n_train = n * 4 / 5;
    let mean_std = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (
            m,
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64)
                .sqrt()
                .max(1e-12),
        )
    };
    let stats: Vec<(f64, f64)> = (0..f)
        .map(|j| {
            mean_std(
                &order[..n_train]
                    .iter()
                    .map(|&i| data.row(i)[j] as f64)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let (ym, ys) = mean_std(
        &order[..n_train]
            .iter()
            .map(|&i| data.targets[i] as f64)
            .collect::<Vec<_>>(),
    );
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
        let y: Vec<f32> = idx
            .iter()
            .map(|&i| ((data.targets[i] as f64 - ym) / ys) as f32)
            .collect();
        Ok((
            Tensor::from_vec(x, (idx.len(), f))?,
            Tensor::from_vec(y, (idx.len(), 1))?,
        ))
    };
    let (x_train, y_train) = tensors(&order[..n_train])?;
    let (x_test, y_test) = tensors(&order[n_train..])?;

    let net = Sequential::new()
        .add(Linear::new(f, 32)?)
        .add(ReLU)
        .add(Linear::new(32, 1)?);
    let mut opt = Adam::new(net.named_parameters(), AdamConfig::new(3e-3))?;
    let batch = 32;
    for epoch in 1..=40 {
        for start in (0..n_train).step_by(batch) {
            let len = batch.min(n_train - start);
            let (xb, yb) = (x_train.narrow(0, start, len)?, y_train.narrow(0, start, len)?);
            let loss = loss::mse_loss(&net.forward(&xb)?, &yb, Reduction::Mean)?;
            opt.step(&loss.backward()?)?;
        }
        if epoch % 10 == 0 {
            let (train_mse, test_mse) = no_grad(|| -> Result<(f64, f64)> {
                let a = loss::mse_loss(&net.forward(&x_train)?, &y_train, Reduction::Mean)?.item()?;
                let b = loss::mse_loss(&net.forward(&x_test)?, &y_test, Reduction::Mean)?.item()?;
                Ok((a, b))
            })?;
            // In standardised units the MSE of predicting the mean is 1, so R² ≈ 1 − MSE.
            println!(
                "epoch {epoch:>3}  train RMSE {:.1}  test RMSE {:.1} (progression units)  test R² ≈ {:.3}",
                train_mse.sqrt() * ys,
                test_mse.sqrt() * ys,
                1.0 - test_mse
            );
        }
    }
    Ok(())
}
