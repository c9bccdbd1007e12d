//! `nabla bench`: the CPU benchmark of ../shared/bench (same models, data, initialisation,
//! shuffle and hyper-parameters as the PyTorch, candle and burn peers): Fashion-MNIST, SGD
//! with momentum 0.9, lr 0.05, batch 128; training samples/s (median of epochs 1–3), test
//! accuracy after the first and the last epoch, inference samples/s (batch 1000), peak memory.

use std::time::Instant;

use clap::Args;
use nabla_core::{Error, Result, Tensor, manual_seed};
use nabla_data::mnist::{Split, fashion_mnist};
use nabla_models::{LeNet5, LeNetStyle, Mlp};
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, cross_entropy};
use nabla_nn::optim::{Optimizer, Sgd, SgdConfig};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// mlp (784-512-256-10) or lenet5 train on Fashion-MNIST for --epochs; any other model
    /// of the zoo (resnet20, resnet18, vgg11, googlenet, …; `nabla summary --help` lists them),
    /// or these two with --steps, is timed for --steps steps on random inputs of --input
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Images per step [default: 128; 16 for models of 224×224 inputs]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Time this many training steps (and as many inference batches) on random inputs instead
    /// of training on Fashion-MNIST [default: 10 for zoo models]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub steps: Option<u64>,
    /// The input of a timed model, CxHxW [default: 1x28x28, or the smallest the model takes]
    #[arg(long, value_parser = crate::common::parse_input)]
    pub input: Option<[usize; 3]>,
    /// Classes of a timed model's output
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Print one JSON object instead of lines
    #[arg(long)]
    pub json: bool,
    /// After the run, train 20 more steps and print the time per layer, forward and backward
    #[arg(long)]
    pub profile: bool,
    /// Where to run: cpu, cuda or cuda:N (the data set is moved there once, as the peers do)
    #[arg(long, default_value = "cpu", value_parser = crate::common::parse_device)]
    pub device: nabla_core::Device,
    /// Matrix products (Linear layers) in f32, or bf16 with f32 sums (mixed precision, as
    /// torch.autocast)
    #[arg(long, value_parser = crate::common::parse_precision, default_value = "f32")]
    pub precision: nabla_core::autocast::Precision,
    /// Read Fashion-MNIST's IDX files from this folder instead of the bundled copy
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

/// The peers' shuffle: Fisher–Yates driven by splitmix64, j = z mod (i + 1), state carried over epochs.
fn permutation(n: usize, state: &mut u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let z = nabla_core::rng::splitmix64(state);
        let j = (z % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
    idx
}

/// Peak resident memory of this process in MB (VmHWM), where the OS reports it.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn accuracy(model: &dyn Module, x: &Tensor, y: &[i64]) -> Result<f64> {
    let _g = nabla_core::NoGradGuard::new();
    let mut correct = 0;
    for start in (0..y.len()).step_by(1000) {
        let len = 1000.min(y.len() - start);
        let pred = model
            .forward(&x.narrow(0, start, len)?)?
            .argmax(1, false)?
            .to_vec::<i64>()?;
        correct += pred.iter().zip(&y[start..start + len]).filter(|(p, t)| p == t).count();
    }
    Ok(correct as f64 / y.len() as f64)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn run(args: BenchArgs) -> Result<()> {
    let _precision = nabla_core::autocast::AutocastGuard::new(args.precision);
    if args.steps.is_some() || !matches!(&args.model[..], "mlp" | "lenet" | "lenet5") {
        return crate::bench_timed::run(&args);
    }
    let batch_size = args.batch_size.unwrap_or(128);
    if args.input.is_some_and(|i| i != [1, 28, 28]) {
        return Err(Error::Argument {
            op: "bench",
            msg: "--input applies to timed runs (--steps N); the Fashion-MNIST benchmark's input is 1x28x28".into(),
        });
    }
    manual_seed(0);
    let model: Box<dyn Module> = match &args.model[..] {
        "mlp" => Box::new(Mlp::new(&[784, 512, 256, 10])?),
        "lenet" | "lenet5" => Box::new(LeNet5::new(1, 10, LeNetStyle::Modern)?),
        other => {
            return Err(Error::Argument {
                op: "bench",
                msg: format!("unknown model '{other}' (mlp or lenet5)"),
            });
        }
    };
    if args.epochs == 0 || batch_size == 0 {
        return Err(Error::Argument {
            op: "bench",
            msg: "--epochs and --batch-size must be at least 1".into(),
        });
    }
    let dir = args.data_dir.as_deref();
    let (train, test) = (fashion_mnist(dir, Split::Train)?, fashion_mnist(dir, Split::Test)?);
    let to_x = |px: &[u8], n: usize| {
        Tensor::from_vec(px.iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>(), (n, 1, 28, 28))
    };
    let (n, nt) = (train.labels.len(), test.labels.len());
    if batch_size > n {
        return Err(Error::Argument {
            op: "bench",
            msg: format!(
                "--batch-size {} is larger than the training set ({n} images)",
                batch_size
            ),
        });
    }
    let (xtr, xte) = (to_x(&train.pixels, n)?, to_x(&test.pixels, nt)?);
    let ytr = Tensor::from_vec(train.labels.clone(), (n,))?;
    model.to_device(args.device)?;
    let (xtr, xte, ytr) = (
        xtr.to_device(args.device)?,
        xte.to_device(args.device)?,
        ytr.to_device(args.device)?,
    );
    let mut opt = Sgd::new(model.named_parameters(), SgdConfig::new(args.lr).momentum(0.9))?;
    let objective = nabla_train::step::Objective::Classification(CrossEntropyOptions::default());
    let mut state = 42u64;
    let (mut epoch_secs, mut acc1, mut acc) = (Vec::new(), 0.0, 0.0);
    for epoch in 1..=args.epochs {
        let perm = permutation(n, &mut state);
        let perm = Tensor::from_vec(perm.iter().map(|&i| i as i64).collect::<Vec<_>>(), (n,))?;
        model.train();
        let t0 = Instant::now();
        let mut last = 0.0;
        for start in (0..n).step_by(batch_size) {
            let idx = perm.narrow(0, start, batch_size.min(n - start))?;
            let (xb, yb) = (xtr.index_select(0, &idx)?, ytr.index_select(0, &idx)?);
            // The trainer's own step: forward, loss, backward (one process, no accumulation).
            let len = yb.dims()[0];
            let step = nabla_train::step::gradients(model.as_ref(), &xb, &yb, len, &objective, 1, false)?;
            opt.step(&step.grads)?;
            last = step.loss;
            if !last.is_finite() || last > nabla_train::trainer::DIVERGENCE_FACTOR * 10.0 {
                return Err(Error::Argument {
                    op: "bench",
                    msg: format!(
                        "epoch {epoch} step {}: the loss is {last:.4e}; the run diverged (try a lower --lr)",
                        start / batch_size + 1
                    ),
                });
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        epoch_secs.push(secs);
        model.eval();
        acc = accuracy(model.as_ref(), &xte, &test.labels)?;
        if epoch == 1 {
            acc1 = acc;
        }
        if !args.json {
            println!(
                "epoch {epoch}: train {secs:.3}s = {:.1} samples/s, last loss {last:.4}, test acc {acc:.4}",
                n as f64 / secs
            );
        }
    }
    let mut inf: Vec<f64> = (0..3)
        .map(|_| {
            let t0 = Instant::now();
            accuracy(model.as_ref(), &xte, &test.labels).map(|_| t0.elapsed().as_secs_f64())
        })
        .collect::<Result<_>>()?;
    if args.profile {
        profile_steps(model.as_ref(), &mut opt, &xtr, &ytr, batch_size, 20)?;
    }
    let train_sps = n as f64 / median(&mut epoch_secs[..args.epochs.min(3)].to_vec());
    let infer_sps = nt as f64 / median(&mut inf);
    let threads = rayon_threads();
    if args.json {
        println!(
            "{{\"framework\": \"nabla\", \"model\": \"{}\", \"train_samples_per_s\": {train_sps:.1}, \"infer_samples_per_s\": {infer_sps:.1}, \"test_top1_epoch1\": {acc1:.4}, \"test_top1\": {acc:.4}, \"epochs\": {}, \"peak_rss_mb\": {:.1}, \"threads\": {threads}, \"precision\": \"{}\"}}",
            args.model,
            args.epochs,
            peak_rss_mb(),
            args.precision.name()
        );
    } else {
        println!(
            "RESULT framework=nabla model={} lr={} train_sps_median3={train_sps:.1} acc1={acc1:.4} acc{}={acc:.4} infer_sps={infer_sps:.1} peak_rss_mb={:.1} threads={threads} precision={}",
            args.model,
            args.lr,
            args.epochs,
            peak_rss_mb(),
            args.precision.name()
        );
    }
    Ok(())
}

pub fn rayon_threads() -> usize {
    nabla_core::runtime::ensure_thread_pool();
    rayon::current_num_threads()
}

/// Trains `steps` more steps with the profiler on and prints where the time goes.
pub fn profile_steps(
    model: &dyn Module,
    opt: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    batch: usize,
    steps: usize,
) -> Result<()> {
    model.train();
    nabla_core::profile::enable(true);
    let _ = nabla_core::profile::take_report();
    let ce = CrossEntropyOptions::default();
    let t0 = Instant::now();
    let (mut loss_s, mut step_s) = (0.0, 0.0);
    for s in 0..steps {
        let start = (s * batch) % (y.elem_count() - batch);
        let (xb, yb) = (x.narrow(0, start, batch)?, y.narrow(0, start, batch)?);
        let out = nabla_core::profile::scope("model", || model.forward(&xb))?;
        let t = Instant::now();
        let loss = cross_entropy(&out, &yb, &ce)?;
        let grads = loss.backward()?;
        loss_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        opt.step(&grads)?;
        step_s += t.elapsed().as_secs_f64();
    }
    let total = t0.elapsed().as_secs_f64();
    nabla_core::profile::enable(false);
    let report = nabla_core::profile::take_report();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / steps as f64;
    println!(
        "\nprofile: {steps} steps of batch {batch}, {:.3} ms per step",
        total * 1e3 / steps as f64
    );
    println!("{:<60} {:>10} {:>10}", "layer", "fwd ms", "bwd ms");
    for (name, e) in &report {
        let depth = name.matches('/').count();
        let short = name.rsplit('/').next().unwrap_or(name);
        println!(
            "{:<60} {:>10.3} {:>10.3}",
            format!("{}{short}", "  ".repeat(depth)),
            ms(e.forward),
            ms(e.backward)
        );
    }
    println!(
        "{:<60} {:>10} {:>10.3}",
        "loss + backward (all layers, incl. autograd overhead)",
        "",
        loss_s * 1e3 / steps as f64
    );
    println!(
        "{:<60} {:>10} {:>10.3}",
        "optimiser step",
        "",
        step_s * 1e3 / steps as f64
    );
    Ok(())
}
