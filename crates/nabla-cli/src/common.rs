//! What `train`, `eval` and `predict` share: models rebuilt from checkpoints or from a state
//! dict and a name, the parsers of devices and input shapes, and the MPI job's ranks.

use std::path::Path;

use nabla_core::Result;
use nabla_data::transforms::Normalize;
use nabla_models::{ModelSpec, build_model};
use nabla_nn::Module;
use nabla_train::TrainConfig;
use nabla_train::checkpoint::{Checkpoint, ModelCard};

/// A checkpoint and the model it holds, rebuilt from its configuration, weights loaded, in
/// evaluation mode, on `device`.
pub fn load_model(path: &Path, device: nabla_core::Device) -> Result<(Box<dyn Module>, Checkpoint)> {
    let ck = Checkpoint::load(path)?;
    let spec = ModelSpec {
        input: ck.meta.input,
        classes: ck.meta.classes.len(),
    };
    let model = build_from_card(&ck.meta.config.model, &ck.meta.card, &spec)?;
    nabla_nn::state::load_state_dict(model.as_ref(), &ck.model, &path.display().to_string())?;
    model.eval();
    model.to_device(device)?;
    Ok((model, ck))
}

/// A model by name, or from the architecture text a checkpoint carries (so that it does not
/// depend on the file it was first read from).
pub fn build_from_card(name: &str, card: &ModelCard, spec: &ModelSpec) -> Result<Box<dyn Module>> {
    match &card.architecture {
        Some(text) => {
            spec.validate()?;
            let origin = format!("{name} (as saved in the checkpoint)");
            Ok(Box::new(nabla_models::archfile::parse_archfile(
                text,
                &origin,
                spec.input,
                spec.classes,
            )?))
        }
        None => build_model(name, spec),
    }
}

/// The normalisation the model of `ck` was trained with: stored in the checkpoint, or (for
/// checkpoints written before it was) computed again from its training images.
pub fn checkpoint_normalization(ck: &Checkpoint, dir: Option<&Path>) -> Result<Normalize> {
    match &ck.meta.card.normalization {
        Some(n) => Ok(Normalize {
            mean: n.mean.iter().map(|&v| v as f32).collect(),
            std: n.std.iter().map(|&v| v as f32).collect(),
        }),
        None => {
            let train = nabla_train::data::training_set(&ck.meta.config, dir)?;
            Ok(nabla_data::pipeline::normalization(&train, ck.meta.input[0]))
        }
    }
}

/// A model built by name for `dataset` (its classes, and its images' shape unless `input`
/// says otherwise) with the weights of a state dict (PyTorch's names; strict but for
/// batch-norm counters), in evaluation mode on `device`, and a checkpoint describing it (no
/// training state; normalised with the dataset's training images).
pub fn model_from_weights(
    path: &Path,
    model_name: &str,
    dataset: &str,
    input: Option<[usize; 3]>,
    dir: Option<&Path>,
    device: nabla_core::Device,
) -> Result<(Box<dyn Module>, Checkpoint)> {
    let config = TrainConfig {
        model: model_name.to_string(),
        dataset: nabla_data::canonical_name(dataset),
        input,
        ..TrainConfig::default()
    };
    if config.dataset.starts_with("csv:") {
        return Err(nabla_core::Error::Argument {
            op: "weights",
            msg: "a state dict for a table needs the feature statistics of its training: use a checkpoint".into(),
        });
    }
    let train = nabla_train::data::training_set(&config, dir)?;
    let input = input.unwrap_or(train.shape);
    let classes = train.classes.clone();
    let card = ModelCard {
        architecture: None,
        normalization: None,
        features: None,
    };
    let spec = ModelSpec {
        input,
        classes: classes.len(),
    };
    let model = build_from_card(model_name, &card, &spec)?;
    let (tensors, _) = nabla_nn::state::load_safetensors(path)?;
    nabla_nn::state::load_state_dict(model.as_ref(), &tensors, &path.display().to_string())?;
    model.eval();
    model.to_device(device)?;
    let n = nabla_data::pipeline::normalization(&train, input[0]);
    let card = ModelCard {
        normalization: Some(nabla_train::checkpoint::Normalization {
            mean: n.mean.iter().map(|&v| v as f64).collect(),
            std: n.std.iter().map(|&v| v as f64).collect(),
        }),
        ..card
    };
    let ck = Checkpoint {
        meta: nabla_train::checkpoint::CheckpointMeta {
            format: 1,
            epoch: config.epochs,
            next_batch: 0,
            partial: Default::default(),
            optimizer_scalars: Default::default(),
            schedule: Default::default(),
            rng: [0; 4],
            history: Vec::new(),
            input,
            classes,
            card,
            config,
        },
        model: tensors,
        optimizer: Vec::new(),
    };
    Ok((model, ck))
}

/// Top `k` (index, probability) pairs of one probability row, most probable first.
pub fn top_k(probs: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut order: Vec<(usize, f64)> = probs.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.truncate(k);
    order
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> std::result::Result<nabla_core::Device, String> {
    nabla_core::Device::parse(s).map_err(|e| e.to_string())
}

/// Parses `f32` or `bf16`.
pub fn parse_precision(s: &str) -> std::result::Result<nabla_core::autocast::Precision, String> {
    nabla_core::autocast::Precision::parse(s).ok_or_else(|| format!("unknown precision '{s}' (f32, bf16)"))
}

/// Parses `CxHxW` (e.g. `3x224x224`).
pub fn parse_input(s: &str) -> std::result::Result<[usize; 3], String> {
    let parts: Vec<usize> = s
        .split(['x', 'X', ',', '×'])
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("'{s}' is not CxHxW (e.g. 3x32x32)"))?;
    match parts[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => {
            // One f32 sample must fit under the cap on one tensor (a batch is checked later).
            nabla_core::limits::check_tensor(&[c, h, w], 4, &format!("--input {s}")).map_err(|e| e.to_string())?;
            Ok([c, h, w])
        }
        _ => Err(format!("'{s}' is not CxHxW with three positive sizes (e.g. 3x32x32)")),
    }
}

/// The ranks of this job, made once per process: MPI when the binary has the `mpi` feature and
/// was started by an MPI launcher (`mpirun`, `srun`), one process otherwise.
pub static COLLECTIVE: std::sync::OnceLock<std::sync::Arc<dyn nabla_dist::Collective>> = std::sync::OnceLock::new();

/// Ends this process's part in an MPI job (nothing without one); call before exiting.
pub fn finalize() {
    if let Some(c) = COLLECTIVE.get() {
        c.finalize();
    }
}

/// Whether an MPI launcher started this process (Open MPI, MPICH/Hydra, PMIx, Slurm's PMI).
pub fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// This process's [`COLLECTIVE`], initialising MPI on the first call when launched by MPI (and
/// NCCL on top of it when training on GPUs, `gpu`, with the `nccl` feature).
pub fn collective(gpu: bool) -> Result<std::sync::Arc<dyn nabla_dist::Collective>> {
    if let Some(c) = COLLECTIVE.get() {
        return Ok(c.clone());
    }
    let c: std::sync::Arc<dyn nabla_dist::Collective> = if launched_by_mpi() {
        mpi_collective(gpu)?
    } else {
        std::sync::Arc::new(nabla_dist::SingleProcess)
    };
    Ok(COLLECTIVE.get_or_init(|| c).clone())
}

#[cfg(feature = "mpi")]
fn mpi_collective(gpu: bool) -> Result<std::sync::Arc<dyn nabla_dist::Collective>> {
    let mpi = nabla_dist::mpi::Mpi::init()?;
    #[cfg(feature = "nccl")]
    if gpu {
        let local = nabla_dist::local_rank();
        return Ok(std::sync::Arc::new(nabla_dist::nccl::Nccl::init(
            std::sync::Arc::new(mpi),
            local,
        )?));
    }
    let _ = gpu; // without NCCL, GPU training sums its gradients over MPI on the host
    Ok(std::sync::Arc::new(mpi))
}

#[cfg(not(feature = "mpi"))]
fn mpi_collective(_gpu: bool) -> Result<std::sync::Arc<dyn nabla_dist::Collective>> {
    Err(nabla_core::Error::Argument {
        op: "train",
        msg: "started by an MPI launcher, but this nabla was built without MPI: build with `cargo build --release --features mpi` (needs libopenmpi-dev or an MPICH)".into(),
    })
}
