//! One test body per op, run on every device: the op's output and input gradients on `device`,
//! computed from **non-contiguous** inputs, must equal the CPU's from contiguous ones.
//!
//! On the CPU this checks the strided paths of every op; with `--features cuda` each body runs
//! once more on `cuda:0`, comparing the GPU with the CPU (skipped, and saying so, when the
//! machine has no GPU). Inputs are fresh random values (f32 throughout, as in training).

use nabla_core::{AvgPool2dOptions, Conv2dOptions, DType, Device, MaxPool2dOptions, PaddingMode, Result, Tensor};

/// `t` with the same values, laid out transposed in memory and viewed back: a strided input.
fn strided(t: &Tensor) -> Result<Tensor> {
    if t.rank() < 2 {
        return Ok(t.clone());
    }
    let r = t.rank() as isize;
    t.transpose(r - 2, r - 1)?.contiguous()?.transpose(r - 2, r - 1)
}

/// Compares `f` on `device` (strided inputs) with `f` on the CPU (contiguous inputs): values
/// and the gradients of Σ y·w for a random w, within `tol` relative to the values' scale.
fn check(device: Device, shapes: &[&[usize]], tol: f64, f: impl Fn(&[Tensor]) -> Result<Tensor>) -> Result<()> {
    let inputs: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::randn(s.to_vec(), DType::F32))
        .collect::<Result<_>>()?;
    let run = |device: Device, make_strided: bool| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let leaves: Vec<Tensor> = inputs
            .iter()
            .map(|x| {
                let x = if make_strided { strided(x)? } else { x.clone() };
                Ok(x.to_device(device)?.detach().requires_grad_())
            })
            .collect::<Result<_>>()?;
        let y = f(&leaves)?;
        // A fixed random weighting of the outputs, the same on both devices.
        nabla_core::manual_seed(7);
        let w = Tensor::randn(y.shape().clone(), DType::F32)?.to_device(device)?;
        let grads = y.mul(&w)?.sum_all()?.backward()?;
        let g = leaves
            .iter()
            .map(|l| grads.get(l).map_or_else(Vec::new, |g| g.to_vec_f64().unwrap()))
            .collect();
        Ok((y.to_vec_f64().unwrap(), g))
    };
    let (want_y, want_g) = run(Device::Cpu, false)?;
    let (got_y, got_g) = run(device, true)?;
    let close = |what: &str, got: &[f64], want: &[f64]| {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * scale,
                "{what}[{i}] on {device}: {g} vs {w} (scale {scale})"
            );
        }
    };
    close("output", &got_y, &want_y);
    for (i, (g, w)) in got_g.iter().zip(&want_g).enumerate() {
        close(&format!("gradient of input {i}"), g, w);
    }
    Ok(())
}

/// Instantiates one test body for the CPU and, with the `cuda` feature, for `cuda:0`.
macro_rules! on_every_device {
    ($($name:ident: |$dev:ident| $body:expr;)*) => {
        mod cpu {
            use super::*;
            $(#[test]
            fn $name() -> Result<()> {
                let $dev = Device::Cpu;
                $body
            })*
        }
        #[cfg(feature = "cuda")]
        mod cuda {
            use super::*;
            $(#[test]
            fn $name() -> Result<()> {
                if !nabla_core::cuda::is_available() {
                    eprintln!("skipped: no CUDA device ({})", stringify!($name));
                    return Ok(());
                }
                let $dev = Device::Cuda(0);
                $body
            })*
        }
    };
}

on_every_device! {
    add_sub_mul_div_broadcast: |d| check(d, &[&[3, 4, 5], &[4, 5]], 1e-5, |x| {
        x[0].add(&x[1])?.mul(&x[0])?.sub(&x[1])?.div(&x[1].sqr()?.add_scalar(1.0)?)
    });
    unary_activations: |d| check(d, &[&[6, 7]], 1e-5, |x| {
        let v = &x[0];
        v.exp()?.add(&v.relu()?)?.add(&v.sigmoid()?)?.add(&v.tanh()?)?.add(&v.softplus()?)?.add(&v.abs()?.add_scalar(1.0)?.log()?)
    });
    sqrt_sqr_recip_their_backward_too: |d| check(d, &[&[5, 4]], 1e-4, |x| {
        let pos = x[0].sqr()?.add_scalar(0.5)?;
        pos.sqrt()?.add(&pos.recip()?)?.add(&x[0].sqr()?)
    });
    matmul_batched_and_transposed: |d| check(d, &[&[2, 5, 7], &[2, 7, 3]], 1e-5, |x| x[0].matmul(&x[1]));
    softmax_and_log_softmax: |d| check(d, &[&[4, 9]], 1e-5, |x| x[0].softmax(1)?.add(&x[0].log_softmax(0)?));
    sums_means_max: |d| check(d, &[&[3, 4, 5]], 1e-5, |x| {
        let s = x[0].sum(&[0, 2], true)?;
        let m = x[0].mean(&[1], true)?;
        let (mx, _) = x[0].max(2, true)?;
        s.add(&m)?.add(&mx)
    });
    conv2d_every_padding_mode: |d| {
        for mode in [PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular] {
            let o = Conv2dOptions::default().padding(1).stride(2).padding_mode(mode);
            check(d, &[&[2, 3, 7, 6], &[4, 3, 3, 3], &[4]], 1e-4, |x| x[0].conv2d(&x[1], Some(&x[2]), &o))?;
        }
        let grouped = Conv2dOptions::default().groups(2).dilation(2).padding(2);
        check(d, &[&[2, 4, 8, 8], &[6, 2, 3, 3]], 1e-4, |x| x[0].conv2d(&x[1], None, &grouped))
    };
    pooling: |d| {
        let mp = MaxPool2dOptions::new(3).stride(2);
        check(d, &[&[2, 3, 9, 9]], 1e-5, |x| x[0].max_pool2d(&mp))?;
        let ap = AvgPool2dOptions::new(2).stride(2);
        check(d, &[&[2, 3, 8, 8]], 1e-5, |x| x[0].avg_pool2d(&ap)?.add(&x[0].adaptive_avg_pool2d([1, 1])?))
    };
    local_response_norm: |d| check(d, &[&[2, 7, 4, 4]], 1e-4, |x| x[0].local_response_norm(5, 1e-2, 0.75, 2.0));
    pad_reflect_replicate_circular: |d| check(d, &[&[2, 2, 5, 6]], 1e-5, |x| {
        let a = x[0].pad2d([1, 2, 2, 1], PaddingMode::Reflect)?;
        let b = x[0].pad2d([1, 2, 2, 1], PaddingMode::Replicate)?;
        let c = x[0].pad2d([1, 2, 2, 1], PaddingMode::Circular)?;
        a.add(&b)?.add(&c)
    });
    gather_index_select_cat: |d| check(d, &[&[4, 5], &[4, 3]], 1e-5, |x| {
        let idx = Tensor::from_vec(vec![3i64, 0, 4, 1], (4, 1))?.to_device(d)?;
        let g = x[0].gather(1, &idx)?;
        let sel = x[0].index_select(0, &Tensor::from_vec(vec![2i64, 2, 0, 1], (4,))?.to_device(d)?)?;
        Tensor::cat(&[&sel, &x[1], &g], 1)
    });
    fused_softmax_cross_entropy: |d| check(d, &[&[6, 5]], 1e-5, |x| {
        let t = Tensor::from_vec(vec![0i64, 4, 2, 1, 3, 0], (6,))?;
        x[0].softmax_cross_entropy(&t, true)?.add(&x[0].softmax_cross_entropy(&t, false)?)
    });
    where_and_comparisons: |d| check(d, &[&[3, 6], &[3, 6]], 1e-5, |x| {
        let mask = x[0].gt(&x[1])?;
        Tensor::where_cond(&mask, &x[0], &x[1])
    });
}
