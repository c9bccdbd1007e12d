//! `nabla bench --model NAME --steps N`: a zoo model timed on random inputs, the protocol of
//! tools/torch_models.py (its PyTorch side): SGD with momentum 0.9, cross-entropy on labels
//! i mod classes, 2 warm-up steps, then N timed training steps and N timed inference batches
//! (evaluation mode, no gradients); samples/s from the median step, and peak memory.

use std::time::Instant;

use crate::bench::{BenchArgs, median, peak_rss_mb, profile_steps, rayon_threads};
use nabla_core::{DType, Error, Result, Tensor, manual_seed};
use nabla_models::{ModelSpec, build_model, zoo};
use nabla_nn::Module;
use nabla_nn::loss::CrossEntropyOptions;
use nabla_nn::optim::{Optimizer, Sgd, SgdConfig};

/// The input a model is timed at: `--input`, else Fashion-MNIST's 1×28×28 when the model
/// takes it, else 3 channels at the smallest size it takes (224 for the ImageNet models).
fn input_of(args: &BenchArgs) -> [usize; 3] {
    args.input.unwrap_or_else(|| match zoo::smallest_input(&args.model) {
        Some(min) if min > 28 => [3, min.max(224), min.max(224)],
        _ => [1, 28, 28],
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    manual_seed(0);
    let input = input_of(args);
    let steps = args.steps.unwrap_or(10) as usize;
    let batch = args.batch_size.unwrap_or(if input[1] >= 128 { 16 } else { 128 });
    if batch == 0 {
        return Err(Error::Argument {
            op: "bench",
            msg: "--batch-size must be at least 1".into(),
        });
    }
    let model = build_model(
        &args.model,
        &ModelSpec {
            input,
            classes: args.classes,
        },
    )?;
    model.to_device(args.device)?;
    // Two batches of random images (the profiler walks through them) and their labels.
    let mut dims = vec![2 * batch];
    dims.extend(input);
    nabla_core::limits::check_tensor(&dims, 4, "bench inputs")?;
    let x = Tensor::randn(dims, DType::F32)?.to_device(args.device)?;
    let labels: Vec<i64> = (0..2 * batch).map(|i| (i % args.classes) as i64).collect();
    let y = Tensor::from_vec(labels, (2 * batch,))?.to_device(args.device)?;
    let (xb, yb) = (x.narrow(0, 0, batch)?, y.narrow(0, 0, batch)?);
    let mut opt = Sgd::new(model.named_parameters(), SgdConfig::new(args.lr).momentum(0.9))?;
    let objective = nabla_train::step::Objective::Classification(CrossEntropyOptions::default());

    model.train();
    let mut train = Vec::with_capacity(steps);
    for s in 0..steps + 2 {
        let t0 = Instant::now();
        let step = nabla_train::step::gradients(model.as_ref(), &xb, &yb, batch, &objective, 1, false)?;
        opt.step(&step.grads)?;
        // A value read back, so that a GPU has finished the step.
        if !step.loss.is_finite() {
            return Err(Error::Argument {
                op: "bench",
                msg: format!("step {}: the loss is {}; try a lower --lr", s + 1, step.loss),
            });
        }
        if s >= 2 {
            train.push(t0.elapsed().as_secs_f64());
        }
    }
    model.eval();
    let mut infer = Vec::with_capacity(steps);
    {
        let _no_grad = nabla_core::NoGradGuard::new();
        for s in 0..steps + 1 {
            let t0 = Instant::now();
            let out = model.forward(&xb)?;
            out.sum_all()?.item()?;
            if s >= 1 {
                infer.push(t0.elapsed().as_secs_f64());
            }
        }
    }
    if args.profile {
        profile_steps(model.as_ref(), &mut opt, &x, &y, batch, steps.max(5))?;
    }
    let train_sps = batch as f64 / median(&mut train);
    let infer_sps = batch as f64 / median(&mut infer);
    let [c, h, w] = input;
    let threads = rayon_threads();
    if args.json {
        println!(
            "{{\"framework\": \"nabla\", \"model\": \"{}\", \"input\": \"{c}x{h}x{w}\", \"batch\": {batch}, \"steps\": {steps}, \"train_samples_per_s\": {train_sps:.1}, \"infer_samples_per_s\": {infer_sps:.1}, \"peak_rss_mb\": {:.1}, \"threads\": {threads}, \"precision\": \"{}\"}}",
            args.model,
            peak_rss_mb(),
            args.precision.name()
        );
    } else {
        println!(
            "RESULT framework=nabla model={} input={c}x{h}x{w} batch={batch} steps={steps} train_sps={train_sps:.1} infer_sps={infer_sps:.1} peak_rss_mb={:.1} threads={threads} precision={}",
            args.model,
            peak_rss_mb(),
            args.precision.name()
        );
    }
    Ok(())
}
