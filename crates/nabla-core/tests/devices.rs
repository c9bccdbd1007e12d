//! One test body per op, run on every device (`nabla_core::device_test!`): the op's output and
//! input gradients on `device`, computed from **strided** inputs and from inputs that start at an
//! **offset** into their buffer, must equal the CPU's from contiguous ones.
//!
//! On the CPU this checks the strided and offset paths of every op; with `--features cuda` each
//! body runs once more on `cuda:0` (reported as skipped where there is none). Inputs are fresh
//! random values, f32 as in training unless a test says otherwise. The tests named after the
//! findings of issue 14 failed on a GPU before the device seam (see each one's comment).

use nabla_core::{AvgPool2dOptions, Conv2dOptions, DType, Device, MaxPool2dOptions, PaddingMode, Result, Tensor};

/// The element type of the f64 checks below (where the device has f64, which both have).
const F64: DType = DType::F64;

/// How an input is laid out in memory for the device run.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Transposed in memory and viewed back: strided.
    Strided,
    /// Dense, but starting one block into a larger buffer: a view with an offset (the layout
    /// that GPU entry points taking a bare buffer used to misread).
    Offset,
}

/// `t` with the same values in the given layout.
fn laid_out(t: &Tensor, how: Layout) -> Result<Tensor> {
    match how {
        Layout::Strided if t.rank() >= 2 => {
            let r = t.rank() as isize;
            t.transpose(r - 2, r - 1)?.contiguous()?.transpose(r - 2, r - 1)
        }
        Layout::Strided => Ok(t.clone()),
        Layout::Offset => {
            let pad = Tensor::randn(t.shape().clone(), t.dtype())?.to_device(t.device())?;
            Tensor::cat(&[&pad, t], 0)?.narrow(
                0,
                t.dims().first().copied().unwrap_or(1),
                t.dims().first().copied().unwrap_or(1),
            )
        }
    }
}

/// Compares `f` on `device` (strided inputs, then inputs at an offset) with `f` on the CPU
/// (contiguous inputs): values and the gradients of Σ y·w for a random w, within `tol`
/// relative to the values' scale.
fn check(device: Device, shapes: &[&[usize]], tol: f64, f: impl Fn(&[Tensor]) -> Result<Tensor>) -> Result<()> {
    check_dtype(device, DType::F32, shapes, tol, f)
}

fn check_dtype(
    device: Device,
    dtype: DType,
    shapes: &[&[usize]],
    tol: f64,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<()> {
    let inputs: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::randn(s.to_vec(), dtype))
        .collect::<Result<_>>()?;
    nabla_core::manual_seed(7);
    let w = {
        let probe: Vec<Tensor> = inputs.iter().map(|x| x.detach()).collect();
        Tensor::randn(nabla_core::no_grad(|| f(&probe))?.shape().clone(), dtype)?
    };
    let run = |device: Device, how: Option<Layout>| -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let leaves: Vec<Tensor> = inputs
            .iter()
            .map(|x| {
                let x = x.to_device(device)?;
                let x = match how {
                    Some(h) => laid_out(&x, h)?,
                    None => x,
                };
                Ok(x.detach().requires_grad_())
            })
            .collect::<Result<_>>()?;
        let y = f(&leaves)?;
        assert_eq!(y.device(), device, "the output must stay on the inputs' device");
        let grads = y.mul(&w.to_device(device)?)?.sum_all()?.backward()?;
        let g = leaves
            .iter()
            .map(|l| match grads.get(l) {
                Some(g) => {
                    assert_eq!(g.device(), device, "a gradient must be on its input's device");
                    g.to_vec_f64()
                }
                None => Ok(Vec::new()),
            })
            .collect::<Result<_>>()?;
        Ok((y.to_vec_f64()?, g))
    };
    let (want_y, want_g) = run(Device::Cpu, None)?;
    for how in [Layout::Strided, Layout::Offset] {
        let (got_y, got_g) = run(device, Some(how))?;
        let close = |what: &str, got: &[f64], want: &[f64]| {
            assert_eq!(got.len(), want.len(), "{what} ({how:?} inputs): length");
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * scale || (g.is_nan() && w.is_nan()),
                    "{what}[{i}] on {device} ({how:?} inputs): {g} vs {w} (scale {scale})"
                );
            }
        };
        close("output", &got_y, &want_y);
        for (i, (g, w)) in got_g.iter().zip(&want_g).enumerate() {
            close(&format!("gradient of input {i}"), g, w);
        }
    }
    Ok(())
}

nabla_core::device_test! {
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
    // Issue 14: the backward of narrow built CPU zeros (a device mismatch on a GPU), which broke
    // split and ResNet's option-A shortcut.
    narrow_split_and_option_a_shortcut: |d| check(d, &[&[2, 8, 6, 6]], 1e-5, |x| {
        let parts = x[0].split(3, 1)?;
        let sub = x[0].narrow(1, 2, 4)?.narrow(2, 1, 4)?;
        // Option A: subsample by 2, pad the channels with zeros.
        let short = x[0].narrow(2, 0, 6)?.pad2d([0, 0, 0, 0], PaddingMode::Zeros)?;
        let a = parts[0].sum_all()?.add(&parts[2].sqr()?.sum_all()?)?;
        sub.mul(&sub)?.sum_all()?.add(&a)?.add(&short.sum_all()?)
    });
    // Issue 14: no GPU backward for abs, softplus, leaky_relu, pow, powf, clamp, max/minimum,
    // and no GPU clamp at all.
    activations_without_a_gpu_backward_before: |d| check(d, &[&[5, 6], &[5, 6]], 1e-4, |x| {
        let (a, b) = (&x[0], &x[1]);
        let pos = a.abs()?.add_scalar(0.5)?;
        a.abs()?
            .add(&a.softplus()?)?
            .add(&a.leaky_relu(0.1)?)?
            .add(&pos.pow(&b.mul_scalar(0.5)?)?)?
            .add(&pos.powf(1.7)?)?
            .add(&a.clamp(Some(-0.5), Some(0.7))?)?
            .add(&a.maximum(b)?)?
            .add(&a.minimum(b)?)
    });
    clamp_with_crossed_bounds_gives_the_upper_one: |d| {
        // PyTorch: min(max(x, lo), hi), so lo > hi gives hi everywhere.
        let x = Tensor::from_vec(vec![-2f32, 0.0, 3.0], (3,))?.to_device(d)?;
        assert_eq!(x.clamp(Some(1.0), Some(-1.0))?.to_vec::<f32>()?, vec![-1.0, -1.0, -1.0]);
        Ok(())
    };
    // Issue 14: GPU entry points that took a bare buffer ignored a view's offset (the backward of
    // cat/stack hands out narrowed gradients): every layer op on inputs at an offset.
    layer_ops_on_views_with_an_offset: |d| check(d, &[&[2, 3, 6, 6], &[4, 3, 3, 3]], 1e-4, |x| {
        let y = x[0].conv2d(&x[1], None, &Conv2dOptions::default().padding(1))?;
        let parts = Tensor::stack(&[&y, &y.relu()?], 0)?;
        let z = parts.narrow(0, 1, 1)?.squeeze(0)?;
        let p = z.max_pool2d(&MaxPool2dOptions::new(2))?;
        let l = p.local_response_norm(3, 1e-2, 0.75, 1.0)?;
        l.pad2d([1, 0, 0, 1], PaddingMode::Reflect)?.avg_pool2d(&AvgPool2dOptions::new(2))
    });
    // Issue 14: index_select with indices that are a view read the wrong rows on a GPU, and
    // negative indices differed from the CPU's.
    indices_that_are_views_or_negative: |d| check(d, &[&[5, 4]], 1e-5, |x| {
        let all = Tensor::from_vec(vec![9i64, 3, -1, 0, -5, 2, 1], (7,))?.to_device(d)?;
        let view = all.narrow(0, 1, 5)?; // [3, -1, 0, -5, 2]
        let strided = Tensor::from_vec(vec![1i64, 7, -2, 7, 0, 7], (3, 2))?.to_device(d)?.narrow(1, 0, 1)?;
        let a = x[0].index_select(0, &view)?;
        let b = x[0].gather(0, &strided.broadcast_to((3, 4))?.contiguous()?)?;
        Tensor::cat(&[&a, &b], 0)
    });
    out_of_range_indices_are_errors: |d| {
        let x = Tensor::zeros((3, 2), DType::F32).to_device(d)?;
        let bad = Tensor::from_vec(vec![0i64, 3], (2,))?.to_device(d)?;
        let err = x.index_select(0, &bad).unwrap_err().to_string();
        assert!(err.contains("index 3") && err.contains("size 3"), "{err}");
        Ok(())
    };
    // Issue 14: rank-3 pooling, dilated and ceil-mode pooling, adaptive pooling whose windows
    // do not divide the input, LRN of even size: missing on a GPU.
    pooling_every_option: |d| {
        let mp = MaxPool2dOptions::new(3).stride(2).padding(1).dilation(2).ceil_mode(true);
        check(d, &[&[3, 11, 10]], 1e-5, |x| x[0].max_pool2d(&mp))?;
        let ap = AvgPool2dOptions::new(3).stride(2).padding(1).ceil_mode(true).count_include_pad(false);
        check(d, &[&[2, 3, 9, 8]], 1e-5, |x| x[0].avg_pool2d(&ap))?;
        let ad = AvgPool2dOptions::new(3).stride(2).divisor_override(5);
        check(d, &[&[2, 2, 7, 7]], 1e-5, |x| x[0].avg_pool2d(&ad))?;
        check(d, &[&[2, 3, 7, 5]], 1e-5, |x| x[0].adaptive_avg_pool2d([3, 2]))
    };
    lrn_of_even_size: |d| check(d, &[&[2, 6, 3, 3]], 1e-4, |x| x[0].local_response_norm(4, 1e-1, 0.75, 1.0));
    integer_scatter_and_index_add: |d| {
        let idx = Tensor::from_vec(vec![2i64, 0, 2], (3,))?.to_device(d)?;
        // The source is a view at an offset: both devices once read it from its buffer's start.
        let src = Tensor::from_vec(vec![7i64, 7, 1, 2, 3], (5,))?.to_device(d)?.narrow(0, 2, 3)?;
        let zeros = Tensor::zeros((4,), DType::I64).to_device(d)?;
        assert_eq!(zeros.scatter_add(0, &idx, &src)?.to_vec::<i64>()?, vec![2, 0, 4, 0]);
        Ok(())
    };
    item_and_values_come_back: |d| {
        let x = Tensor::from_vec(vec![2.5f32], (1,))?.to_device(d)?;
        assert_eq!(x.item()?, 2.5);
        assert!(Tensor::zeros((2,), DType::F32).to_device(d)?.item().is_err());
        Ok(())
    };
    // Issue 14: cuDNN's batch norm was written but the layer did not use it; training-mode
    // batch norm is now one op on every device, running statistics included.
    batch_norm_training: |d| {
        check(d, &[&[4, 3, 5, 5], &[3], &[3]], 1e-4, |x| x[0].batch_norm_train(&x[1], &x[2], None, 0.1, 1e-5))?;
        let x = Tensor::randn((6, 3, 2, 2), DType::F32)?;
        let run = |dev: Device| -> Result<(Vec<f32>, Vec<f32>)> {
            let (rm, rv) = (Tensor::zeros((3,), DType::F32).to_device(dev)?, Tensor::ones((3,), DType::F32).to_device(dev)?);
            let (w, b) = (Tensor::ones((3,), DType::F32).to_device(dev)?, Tensor::zeros((3,), DType::F32).to_device(dev)?);
            x.to_device(dev)?.batch_norm_train(&w, &b, Some((&rm, &rv)), 0.1, 1e-5)?;
            Ok((rm.to_vec()?, rv.to_vec()?))
        };
        let ((m, v), (mc, vc)) = (run(d)?, run(Device::Cpu)?);
        for (a, b) in m.iter().chain(&v).zip(mc.iter().chain(&vc)) {
            assert!((a - b).abs() < 1e-5, "running statistics on {d}: {a} vs {b}");
        }
        Ok(())
    };
    // x[:, 1::2, ::3]: a stepped view; its backward copies δ into a stepped view of zeros.
    stepped_slices: |d| check(d, &[&[3, 6, 5]], 1e-6, |x| x[0].slice(1, 1, 6, 2)?.slice(2, 0, 5, 3)?.mul_scalar(2.0));
    batch_norm_evaluation: |d| check(d, &[&[4, 3, 5, 5], &[3], &[3]], 1e-5, |x| {
        let on = x[0].device();
        let mean = Tensor::from_vec(vec![0.1f32, -0.2, 0.3], (3,))?.to_device(on)?;
        let var = Tensor::from_vec(vec![0.5f32, 1.0, 2.0], (3,))?.to_device(on)?;
        x[0].batch_norm_eval(&x[1], &x[2], &mean, &var, 1e-5)
    });
    // f64 where the device has it: the same checks at a tolerance near f64 rounding.
    f64_conv_pool_lrn: |d| check_dtype(d, F64, &[&[2, 3, 7, 7], &[4, 3, 3, 3]], 1e-10, |x| {
        let y = x[0].conv2d(&x[1], None, &Conv2dOptions::default().padding(1).stride(2))?;
        y.max_pool2d(&MaxPool2dOptions::new(2).ceil_mode(true))?.local_response_norm(3, 1e-2, 0.75, 1.0)
    });
    // Edge cases found in review of the seam: each gave a panic, a deadlock or a value that
    // differed between the devices or from PyTorch.
    integers_as_pytorch_or_an_error: |d| {
        let x = Tensor::from_vec(vec![i64::MAX, -3, 7], (3,))?.to_device(d)?;
        // Wrapping, not a panic; exact sums.
        assert_eq!(x.add_scalar(1.0)?.to_vec::<i64>()?[0], i64::MIN);
        assert_eq!(x.narrow(0, 1, 2)?.sum_all()?.to_vec::<i64>()?, vec![4]);
        // A fraction would truncate differently on each device: an error.
        assert!(x.div_scalar(2.0).is_err() && x.mean_all().is_err());
        // Comparisons with a fraction are made in f64.
        assert_eq!(x.lt_scalar(-2.5)?.to_vec::<i64>()?, vec![0, 1, 0]);
        Ok(())
    };
    gradients_at_nan_and_infinity_as_pytorch: |d| {
        let a = Tensor::from_vec(vec![f64::NAN, 2.0, 1.0], (3,))?.to_device(d)?.requires_grad_();
        let b = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], (3,))?.to_device(d)?.requires_grad_();
        let g = a.maximum(&b)?.sum_all()?.backward()?;
        // NaN: neither loses, both get δ; a tie splits δ; the smaller input gets nothing.
        assert_eq!(g.get(&b).unwrap().to_vec::<f64>()?, vec![1.0, 0.5, 1.0]);
        assert_eq!(g.get(&a).unwrap().to_vec::<f64>()?[1..], [0.5, 0.0]);
        let g = a.abs()?.sum_all()?.backward()?;
        assert_eq!(g.get(&a).unwrap().to_vec::<f64>()?, vec![0.0, 1.0, 1.0]);
        let up = Tensor::from_vec(vec![f64::INFINITY; 3], (3,))?.to_device(d)?;
        let g = b.powf(0.0)?.mul(&up)?.sum_all()?.backward()?;
        assert_eq!(g.get(&b).unwrap().to_vec::<f64>()?, vec![0.0; 3]);
        Ok(())
    };
    batch_norm_with_views_and_shared_buffers: |d| {
        let x = Tensor::randn((4, 3, 2, 2), DType::F32)?.to_device(d)?;
        let one = Tensor::ones((1,), DType::F32).to_device(d)?.broadcast_to((3,))?;
        let zero = Tensor::zeros((3,), DType::F32).to_device(d)?;
        let y = x.batch_norm_train(&one, &zero, None, 0.1, 1e-5)?;
        let m = y.mean(&[0, 2, 3], false)?.to_vec::<f32>()?;
        assert!(m.iter().all(|v| v.abs() < 1e-5), "normalised means {m:?}");
        let r = Tensor::zeros((3,), DType::F32).to_device(d)?;
        let err = x.batch_norm_train(&one, &zero, Some((&r, &r)), 0.1, 1e-5).unwrap_err();
        assert!(err.to_string().contains("share storage"), "{err}");
        Ok(())
    };
    optimiser_gradient_that_is_its_own_buffer: |d| {
        let p = Tensor::ones((4,), DType::F32).to_device(d)?;
        let buf = Tensor::ones((4,), DType::F32).to_device(d)?;
        let u = nabla_core::SgdUpdate { lr: 0.1, weight_decay: 0.0, momentum: 0.5, buffer_gain: 1.0, nesterov: false };
        p.sgd_update_(&buf, Some(&buf), u)?; // b ← 0.5·1 + 1 = 1.5, p ← 1 − 0.15
        assert_eq!(p.to_vec::<f32>()?, vec![0.85; 4]);
        Ok(())
    };
    empty_and_degenerate_shapes: |d| {
        let z = Tensor::zeros((0, 3), DType::F32).to_device(d)?;
        assert_eq!(z.sum(&[1], false)?.dims(), &[0]);
        let w0 = Tensor::zeros((1, 1, 2, 0), DType::F32).to_device(d)?;
        assert_eq!(w0.pad2d([1, 0, 0, 0], PaddingMode::Zeros)?.dims(), &[1, 1, 3, 0]);
        let logits = Tensor::zeros((2, 0), DType::F32).to_device(d)?;
        let t = Tensor::from_vec(vec![0i64, 0], (2,))?;
        assert!(logits.softmax_cross_entropy(&t, true).is_err());
        // A window wholly in the padding (dilation 3): −∞ out, no δ, no panic.
        let x = Tensor::randn((1, 1, 2, 2), DType::F32)?.to_device(d)?.requires_grad_();
        let o = MaxPool2dOptions::new(2).padding(1).dilation(3);
        let y = x.max_pool2d(&o)?;
        let finite: Vec<f32> = y.to_vec::<f32>()?.into_iter().filter(|v| v.is_finite()).collect();
        let g = y.mul(&y.detach().gt_scalar(f64::NEG_INFINITY)?)?.sum_all()?.backward()?;
        assert_eq!(g.get(&x).unwrap().sum_all()?.item()?, finite.len() as f64);
        Ok(())
    };
}
