//! The layers, losses, gradient clipping and optimisers on a GPU against the CPU: the same
//! module built twice from one seed, one on each device, the same inputs, outputs and input and
//! parameter gradients compared (f32, within 1e-4 of each tensor's largest magnitude; 1e-3 for
//! batch norm's gradients, whose sums cuDNN orders differently). Reported as skipped where there
//! is no GPU (`nabla_core::testing`).

use nabla_core::testing::assert_close_to_scale;
use nabla_core::{DType, Device, Result, Tensor, manual_seed};
use nabla_nn::Module;
use nabla_nn::clip::{clip_grad_norm, clip_grad_value};
use nabla_nn::conv::Conv2dConfig;
use nabla_nn::linear::Linear;
use nabla_nn::loss::{Reduction, binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss};
use nabla_nn::norm::{BatchNorm, LocalResponseNorm};
use nabla_nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use nabla_nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};

/// Output, input gradient and parameter gradients of `make()`'s module on `x` (random δy).
fn run(device: Device, make: &dyn Fn() -> Box<dyn Module>, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
    manual_seed(5);
    let m = make();
    m.to_device(device)?;
    if train {
        m.train()
    } else {
        m.eval()
    }
    let x = x.to_device(device)?.requires_grad_();
    let y = m.forward(&x)?;
    manual_seed(6);
    let dy = Tensor::randn(y.shape().clone(), DType::F32)?.to_device(device)?;
    let g = y.mul(&dy)?.sum_all()?.backward()?;
    let mut out = vec![y.detach(), g.get(&x).expect("δx").clone()];
    for p in m.parameters() {
        out.push(g.get(&p).expect("a parameter gradient").clone());
    }
    for b in m.named_buffers() {
        out.push(b.1);
    }
    Ok(out)
}

fn compare(name: &str, make: &dyn Fn() -> Box<dyn Module>, shape: &[usize], train: bool, tol: f64) {
    let Some(gpu) = nabla_core::testing::gpu_or_skip(&format!("devices::{name}")) else {
        return;
    };
    manual_seed(4);
    let x = Tensor::randn(shape.to_vec(), DType::F32).unwrap();
    let (a, b) = (
        run(gpu, make, &x, train).unwrap(),
        run(Device::Cpu, make, &x, train).unwrap(),
    );
    for (i, (ta, tb)) in a.iter().zip(&b).enumerate() {
        assert_close_to_scale(&format!("{name} result {i}"), ta, tb, tol);
    }
}

#[test]
fn linear() {
    compare("linear", &|| Box::new(Linear::new(7, 5).unwrap()), &[3, 7], true, 1e-4);
}

#[test]
fn conv2d_reflect_strided_grouped() {
    let make = || -> Box<dyn Module> {
        Box::new(
            Conv2dConfig::new(4, 6, 3)
                .stride(2)
                .padding(1)
                .padding_mode("reflect".parse().unwrap())
                .groups(2)
                .init()
                .unwrap(),
        )
    };
    compare("conv2d", &make, &[2, 4, 9, 8], true, 1e-4);
}

#[test]
fn batch_norm_training_and_evaluation() {
    compare(
        "batch_norm train",
        &|| Box::new(BatchNorm::new_2d(3)),
        &[4, 3, 5, 5],
        true,
        1e-3,
    );
    compare("batch_norm 1d", &|| Box::new(BatchNorm::new_1d(6)), &[8, 6], true, 1e-3);
    compare(
        "batch_norm eval",
        &|| Box::new(BatchNorm::new_2d(3)),
        &[4, 3, 5, 5],
        false,
        1e-4,
    );
}

#[test]
fn pooling_and_lrn_layers() {
    compare(
        "max_pool",
        &|| Box::new(MaxPool2d::new(3).stride(2).ceil_mode(true)),
        &[2, 3, 8, 8],
        true,
        1e-4,
    );
    compare(
        "avg_pool",
        &|| Box::new(AvgPool2d::new(3).stride(2).padding(1)),
        &[2, 3, 8, 8],
        true,
        1e-4,
    );
    compare(
        "adaptive",
        &|| Box::new(AdaptiveAvgPool2d::new(3, 3)),
        &[2, 3, 7, 8],
        true,
        1e-4,
    );
    compare(
        "lrn",
        &|| Box::new(LocalResponseNorm::alexnet()),
        &[2, 7, 4, 4],
        true,
        1e-4,
    );
}

#[test]
fn losses_clipping_and_optimisers() -> Result<()> {
    let Some(gpu) = nabla_core::testing::gpu_or_skip("devices::losses_clipping_and_optimisers") else {
        return Ok(());
    };
    manual_seed(9);
    let p = Tensor::rand((4, 3), DType::F32)?;
    let t = Tensor::rand((4, 3), DType::F32)?;
    let logits = Tensor::randn((4, 3), DType::F32)?;
    // BCE clamps its logarithms: it had no GPU clamp before issue 14.
    let losses = |d: Device| -> Result<Vec<Tensor>> {
        let (p, t, l) = (
            p.to_device(d)?.requires_grad_(),
            t.to_device(d)?,
            logits.to_device(d)?.requires_grad_(),
        );
        let loss = binary_cross_entropy(&p, &t, Reduction::Mean)?
            .add(&binary_cross_entropy_with_logits(&l, &t, Reduction::Sum)?)?
            .add(&mse_loss(&l, &t, Reduction::Mean)?)?;
        let g = loss.backward()?;
        Ok(vec![loss, g.get(&p).unwrap().clone(), g.get(&l).unwrap().clone()])
    };
    for (i, (a, b)) in losses(gpu)?.iter().zip(&losses(Device::Cpu)?).enumerate() {
        assert_close_to_scale(&format!("losses {i}"), a, b, 1e-4);
    }
    // Clipping and two optimiser steps on the same gradients.
    let steps = |d: Device| -> Result<Vec<Tensor>> {
        let w = logits.to_device(d)?.detach().requires_grad_();
        let v = p.to_device(d)?.detach().requires_grad_();
        let mut sgd = Sgd::new(
            vec![("w".into(), w.clone())],
            SgdConfig::new(0.1).momentum(0.9).nesterov(true),
        )?;
        let mut adam = Adam::new(vec![("v".into(), v.clone())], AdamConfig::new(0.01))?;
        for _ in 0..2 {
            let mut g = w
                .mul(&w)?
                .sum_all()?
                .add(&v.sqr()?.mul_scalar(3.0)?.sum_all()?)?
                .backward()?;
            clip_grad_value(&mut g, std::slice::from_ref(&w), 0.5)?;
            clip_grad_norm(&mut g, std::slice::from_ref(&v), 1.0)?;
            sgd.step(&g)?;
            adam.step(&g)?;
        }
        Ok(vec![w, v])
    };
    for (i, (a, b)) in steps(gpu)?.iter().zip(&steps(Device::Cpu)?).enumerate() {
        assert_close_to_scale(&format!("optimiser step {i}"), a, b, 1e-5);
    }
    Ok(())
}
