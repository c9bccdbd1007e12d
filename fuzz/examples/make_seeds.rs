//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`: small valid files
//! of every format (and a few near-misses), so that libFuzzer starts from inputs that reach
//! deep into the parsers instead of guessing magic numbers.
//!
//! Run from `fuzz/`: `cargo +nightly run --release --example make_seeds` (any toolchain works). The
//! output is byte for byte the same on every run of one version of the crates.

use std::io::Write;
use std::path::{Path, PathBuf};

use nabla_core::{DType, Result, Tensor};
use nabla_models::{ModelSpec, build_model};
use nabla_nn::Module;
use nabla_nn::optim::Optimizer;
use nabla_nn::schedule::LrScheduler;
use nabla_train::checkpoint::{Checkpoint, CheckpointMeta, ModelCard, Normalization, PartialEpoch};
use nabla_train::{EpochMetrics, TrainConfig};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    // Fixed header (mtime 0) and level, so the seeds are the same on every run.
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An IDX file of unsigned bytes: `00 00 08 <rank>`, the sizes big-endian, then the values.
fn idx_file(dims: &[u32]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    let count: u32 = dims.iter().product();
    b.extend((0..count).map(|i| (i * 37 % 256) as u8));
    b
}

fn idx_seeds(dir: &Path) {
    let images = idx_file(&[2, 4, 4]);
    let labels = idx_file(&[3]);
    write(dir, "images-2x4x4.idx", &images);
    write(dir, "images-2x4x4.idx.gz", &gzip(&images));
    write(dir, "labels-3.idx", &labels);
    write(dir, "labels-3.idx.gz", &gzip(&labels));
    write(dir, "scalar-rank0.idx", &idx_file(&[]));
    write(dir, "empty-dim.idx", &idx_file(&[0, 28, 28]));
}

/// `n` CIFAR records with `label_bytes` label bytes each and a gradient as the picture.
fn cifar_records(n: usize, labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for r in 0..n {
        b.extend(labels.iter().map(|l| l + r as u8));
        b.extend((0..3 * 32 * 32).map(|i| ((i + 7 * r) % 251) as u8));
    }
    b
}

fn cifar_seeds(dir: &Path) {
    write(dir, "cifar10-1.bin", &cifar_records(1, &[3]));
    write(dir, "cifar10-2.bin", &cifar_records(2, &[8]));
    write(dir, "cifar100-1.bin", &cifar_records(1, &[4, 42]));
    write(dir, "cifar100-2.bin", &cifar_records(2, &[19, 98]));
}

/// The header and the first `rows` rows of a CSV file.
fn head(path: &Path, rows: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: String = text.lines().take(rows + 1).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out.into_bytes()
}

fn csv_seeds(dir: &Path, root: &Path) {
    for name in ["breast_cancer", "diabetes"] {
        let path = root.join("data/tabular").join(format!("{name}.csv"));
        write(dir, &format!("{name}-20.csv"), &head(&path, 20));
    }
    write(dir, "tiny.csv", b"y,a,b\n1,0.5,2\n0,-1e3,3.25\n1,NaN,inf\n2,7,-0\n");
    write(
        dir,
        "names.csv",
        b"label, x ,\"y, z\"\ncat,1,2\n\"dog\",3,4\ncat,5,6\r\n",
    );
    write(dir, "one-column.csv", b"y\n3\n1\n2\n");
}

fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(img: &image::DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

fn image_seeds(dir: &Path) {
    use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba};
    let grey = DynamicImage::ImageLuma8(GrayImage::from_fn(28, 28, |x, y| Luma([(x * 9 + y) as u8])));
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(32, 32, |x, y| {
        Rgb([(x * 8) as u8, (y * 8) as u8, ((x + y) * 4) as u8])
    }));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(5, 7, |x, y| {
        Rgba([(x * 50) as u8, (y * 30) as u8, 128, (x * y * 9) as u8])
    }));
    let grey16 = DynamicImage::ImageLuma16(ImageBuffer::from_fn(6, 3, |x, y| Luma([(x * 9000 + y * 500) as u16])));
    let one = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([200, 10, 30])));
    write(dir, "grey-28x28.png", &png(&grey));
    write(dir, "rgb-32x32.png", &png(&rgb));
    write(dir, "rgba-5x7.png", &png(&rgba));
    write(dir, "grey16-6x3.png", &png(&grey16));
    write(dir, "rgb-1x1.png", &png(&one));
    write(dir, "rgb-32x32.jpg", &jpeg(&rgb, 50));
    write(dir, "grey-28x28.jpg", &jpeg(&grey, 75));
    write(dir, "rgb-5x7.jpg", &jpeg(&DynamicImage::ImageRgb8(rgba.to_rgb8()), 90));
}

/// A complete nabla checkpoint of a tiny MLP after one SGD step (so the optimiser has momentum
/// buffers), the way the trainer writes it.
fn tiny_checkpoint() -> Result<Checkpoint> {
    nabla_core::rng::manual_seed(7);
    let input = [1, 4, 4];
    let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let model = build_model(
        "mlp:8",
        &ModelSpec {
            input,
            classes: classes.len(),
        },
    )?;
    let config = TrainConfig {
        model: "mlp:8".into(),
        epochs: 2,
        ..TrainConfig::default()
    };
    let mut opt = config.optimizer(model.named_parameters())?;
    let loss = model.forward(&Tensor::randn((2, 1, 4, 4), DType::F32)?)?.sum_all()?;
    opt.step(&loss.backward()?)?;
    let state = opt.state();
    let history = vec![EpochMetrics {
        epoch: 0,
        train_loss: 1.1,
        train_acc: 0.4,
        test_loss: 1.05,
        test_top1: 0.45,
        test_top5: 1.0,
        lr: 0.05,
        seconds: 0.25,
        train_samples_per_s: 1000.0,
        val_loss: 1.08,
        val_top1: 0.5,
        val_top5: 1.0,
    }];
    Ok(Checkpoint {
        meta: CheckpointMeta {
            format: 1,
            config: config.clone(),
            epoch: 1,
            next_batch: 3,
            partial: PartialEpoch {
                loss_sum: 3.3,
                correct: 2,
                count: 6,
                seconds: 0.1,
            },
            optimizer_scalars: state.scalars,
            schedule: config.scheduler()?.state(),
            rng: nabla_core::rng::default_generator_state(),
            history,
            input,
            classes,
            card: ModelCard {
                normalization: Some(Normalization {
                    mean: vec![0.5],
                    std: vec![0.25],
                }),
                ..ModelCard::default()
            },
        },
        model: model.state_dict(),
        optimizer: state.tensors,
    })
}

/// The same safetensors file with its JSON header written with sorted keys (the metadata is a
/// `HashMap`, so its order changes from run to run) and, with `drop_hash`, without the content
/// hash (the way PyTorch writes one), so that mutated tensor bytes get past the hash check.
fn rewrite_header(bytes: &[u8], drop_hash: bool) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    if drop_hash {
        header["__metadata__"]
            .as_object_mut()
            .unwrap()
            .remove(nabla_nn::state::HASH_KEY);
    }
    let mut text = serde_json::to_vec(&header).unwrap();
    // safetensors pads the header with spaces to a multiple of 8, so the data stays aligned.
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

fn checkpoint_seeds(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).unwrap();
    let ck = tiny_checkpoint()?;
    let path = dir.join("mlp8-checkpoint.safetensors");
    ck.save(&path)?;
    let bytes = std::fs::read(&path).unwrap();
    for (name, drop_hash) in [
        ("mlp8-checkpoint.safetensors", false),
        ("mlp8-checkpoint-nohash.safetensors", true),
    ] {
        let seed = rewrite_header(&bytes, drop_hash);
        Checkpoint::from_bytes(&seed, &path)?;
        write(dir, name, &seed);
    }

    let model = build_model(
        "mlp:8",
        &ModelSpec {
            input: [1, 4, 4],
            classes: 3,
        },
    )?;
    let state = dir.join("mlp8-state.safetensors");
    nabla_nn::state::save_module(model.as_ref(), &state)?;
    write(
        dir,
        "mlp8-state-nohash.safetensors",
        &rewrite_header(&std::fs::read(&state).unwrap(), true),
    );
    // One tensor of each dtype nabla reads, no metadata beyond the hash.
    let mixed = vec![
        ("f64".to_string(), Tensor::from_vec(vec![1.5f64, -2.0], [2])?),
        ("i64".to_string(), Tensor::from_vec(vec![3i64, 4, 5], [3, 1])?),
        (
            "scalar".to_string(),
            Tensor::from_vec(vec![0.25f32], Vec::<usize>::new())?,
        ),
    ];
    write(
        dir,
        "dtypes.safetensors",
        &nabla_nn::state::to_safetensors_bytes(&mixed, None)?,
    );
    Ok(())
}

/// Small architecture files that between them use every layer type and option.
const ARCHS: [(&str, &str); 4] = [
    (
        "mlp.toml",
        "[[layer]]\ntype = \"flatten\"\n\n[[layer]]\ntype = \"linear\"\nout = 16\n\n\
         [[layer]]\ntype = \"leaky_relu\"\nslope = 0.1\n\n[[layer]]\ntype = \"dropout\"\np = 0.25\n\n\
         [[layer]]\ntype = \"batchnorm1d\"\n\n[[layer]]\ntype = \"linear\"\nbias = false\n\n\
         [[layer]]\ntype = \"log_softmax\"\ndim = -1\n",
    ),
    (
        "lenet-like.toml",
        "[[layer]]\ntype = \"conv2d\"\nout = 4\nkernel = 5\npadding = 2\npadding_mode = \"reflect\"\n\n\
         [[layer]]\ntype = \"tanh\"\n\n[[layer]]\ntype = \"avgpool2d\"\nkernel = 2\n\n\
         [[layer]]\ntype = \"lrn\"\nsize = 3\nalpha = 0.0001\nbeta = 0.75\nk = 2.0\n\n\
         [[layer]]\ntype = \"conv\"\nout = 6\nkernel = 3\nstride = 2\ndilation = 2\ngroups = 2\n\n\
         [[layer]]\ntype = \"sigmoid\"\n\n[[layer]]\ntype = \"maxpool\"\nkernel = 3\nstride = 2\npadding = 1\nceil_mode = true\n\n\
         [[layer]]\ntype = \"adaptive_avgpool2d\"\noutput = [2, 2]\n\n[[layer]]\ntype = \"flatten\"\n\n\
         [[layer]]\ntype = \"fc\"\nout = 12\n\n[[layer]]\ntype = \"linear\"\n\n[[layer]]\ntype = \"softmax\"\n",
    ),
    (
        "branches.toml",
        "[[layer]]\ntype = \"conv2d\"\nout = 2\nkernel = 3\npadding = 1\npadding_mode = \"circular\"\nname = \"a\"\n\n\
         [[layer]]\ntype = \"conv2d\"\ninput = \"a\"\nout = 2\nkernel = 1\nname = \"b\"\n\n\
         [[layer]]\ntype = \"add\"\nfrom = [\"a\", \"b\", \"-1\"]\n\n\
         [[layer]]\ntype = \"conv2d\"\nout = 3\nkernel = 3\npadding = 1\npadding_mode = \"replicate\"\ninput = \"a\"\n\n\
         [[layer]]\ntype = \"concat\"\nfrom = [\"-2\", \"-1\", \"b\"]\n\n[[layer]]\ntype = \"batchnorm\"\n\n\
         [[layer]]\ntype = \"identity\"\n\n[[layer]]\ntype = \"global_avgpool\"\n\n\
         [[layer]]\ntype = \"flatten\"\n\n[[layer]]\ntype = \"dense\"\nout = 10\n",
    ),
    ("one-layer.toml", "[[layer]]\ntype = \"relu\"\n"),
];

fn archfile_seeds(dir: &Path, root: &Path) {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples/archs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    for p in examples {
        write(
            dir,
            p.file_name().unwrap().to_str().unwrap(),
            &std::fs::read(&p).unwrap(),
        );
    }
    for (name, text) in ARCHS {
        if let Err(e) = nabla_models::parse_archfile(text, name, [1, 28, 28], 10) {
            panic!("seed {name} does not build: {e}");
        }
        write(dir, name, text.as_bytes());
    }
}

fn main() -> Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz.parent().unwrap();
    let corpus = fuzz.join("corpus");
    idx_seeds(&corpus.join("idx"));
    cifar_seeds(&corpus.join("cifar"));
    csv_seeds(&corpus.join("csv"), root);
    image_seeds(&corpus.join("image"));
    checkpoint_seeds(&corpus.join("checkpoint"))?;
    archfile_seeds(&corpus.join("archfile"), root);
    // Every seed must go through its body without a panic before fuzzing starts from it.
    for (name, body) in nabla_fuzz::TARGETS {
        for entry in std::fs::read_dir(corpus.join(name)).unwrap() {
            body(&std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    println!("seeds written to {}", corpus.display());
    Ok(())
}
