//! State dicts in safetensors, under PyTorch's names: a file saved here loads in PyTorch with
//! `model.load_state_dict(safetensors.torch.load_file(path))`, and the other way round.
//!
//! Files are written crash-safely: to `path.tmp`, fsynced, renamed over `path`, and the
//! directory fsynced, so an interrupted save never leaves a broken file behind.
//!
//! Every file written here carries the SHA-256 of its tensors in the metadata key
//! [`HASH_KEY`], checked when it is read: a flipped bit in the weights is an error, not a
//! model that quietly predicts worse. Files without the key (PyTorch's) are read unchecked.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use crate::module::Module;
use nabla_core::{DType, Error, Result, Tensor};
use safetensors::{Dtype, SafeTensors, View};

fn file_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// A tensor's bytes in little-endian row-major order, for the serializer.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_bytes(t: &Tensor) -> Result<Bytes> {
    let (dtype, data) = match t.dtype() {
        DType::F32 => (
            Dtype::F32,
            t.to_vec::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DType::F64 => (
            Dtype::F64,
            t.to_vec::<f64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DType::I64 => (
            Dtype::I64,
            t.to_vec::<i64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    };
    Ok(Bytes {
        dtype,
        shape: t.dims().to_vec(),
        data,
    })
}

/// The metadata key of the tensors' content hash.
pub const HASH_KEY: &str = "nabla_sha256";

/// SHA-256 over the tensors in name order: for each, its name, dtype, shape and bytes, every
/// part preceded by its length so that no two different state dicts hash alike.
fn content_hash<'a>(tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (name, dtype, shape, data) in sorted {
        let dtype = format!("{dtype:?}");
        for part in [name.as_bytes(), dtype.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Serialises named tensors (and string metadata) to safetensors bytes, with their content
/// hash under [`HASH_KEY`].
pub fn to_safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Bytes)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), to_bytes(t)?)))
        .collect::<Result<_>>()?;
    let hash = content_hash(
        bytes
            .iter()
            .map(|(n, b)| (n.as_str(), b.dtype, &b.shape[..], &b.data[..])),
    );
    let mut metadata = metadata.unwrap_or_default();
    metadata.insert(HASH_KEY.to_string(), hash);
    safetensors::serialize(bytes.iter().map(|(n, b)| (n.as_str(), b)), Some(metadata)).map_err(|e| Error::Argument {
        op: "save",
        msg: e.to_string(),
    })
}

/// Writes `bytes` to `path` crash-safely (temporary file, fsync, rename, fsync the folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(|e| file_err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| file_err(&tmp, e))?;
    f.sync_all().map_err(|e| file_err(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Persist the rename itself; not every platform can open a directory, so ignore failure.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Saves named tensors to a safetensors file, crash-safely.
pub fn save_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    write_atomic(path.as_ref(), &to_safetensors_bytes(tensors, metadata)?)
}

/// Tensors and metadata read from safetensors bytes.
pub fn from_safetensors_bytes(bytes: &[u8], origin: &Path) -> Result<(Vec<(String, Tensor)>, HashMap<String, String>)> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| file_err(origin, format!("not a valid safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| file_err(origin, e))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if let Some(expected) = meta.get(HASH_KEY) {
        let views = st.tensors();
        let actual = content_hash(views.iter().map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())));
        if &actual != expected {
            return Err(file_err(
                origin,
                format!(
                    "the tensors do not match the content hash stored with them (sha256 {actual}, expected {expected}): \
                     the file is damaged"
                ),
            ));
        }
    }
    let mut out = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for name in names {
        let view = st.tensor(&name).map_err(|e| file_err(origin, e))?;
        let shape = view.shape().to_vec();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => Tensor::from_vec(
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<_>>(),
                shape,
            )?,
            Dtype::F64 => Tensor::from_vec(
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<_>>(),
                shape,
            )?,
            Dtype::I64 => Tensor::from_vec(
                data.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<_>>(),
                shape,
            )?,
            other => {
                return Err(file_err(
                    origin,
                    format!("tensor '{name}' has dtype {other:?}; nabla reads F32, F64 and I64"),
                ));
            }
        };
        out.push((name, t));
    }
    Ok((out, meta))
}

/// Loads `tensors` into `module` except its last layer's parameters where their shapes differ
/// (a classifier trained for another number of classes: fine-tuning keeps the new layer's
/// initialisation). Everything else must match as in [`load_state_dict`]. Returns the names
/// left as initialised.
pub fn load_state_dict_for_finetuning(
    module: &dyn Module,
    tensors: &[(String, Tensor)],
    origin: &str,
) -> Result<Vec<String>> {
    let params = module.named_parameters();
    let Some((last, _)) = params.last() else {
        return load_state_dict(module, tensors, origin).map(|_| Vec::new());
    };
    let layer = last.rsplit_once('.').map_or("", |(l, _)| l);
    let own: HashMap<String, Tensor> = module.state_dict().into_iter().collect();
    let mut replaced = Vec::new();
    let mut kept: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in tensors {
        let in_last = name.rsplit_once('.').is_some_and(|(l, _)| l == layer);
        match own.get(name) {
            Some(mine) if in_last && mine.shape() != t.shape() => replaced.push(name.clone()),
            _ => kept.push((name.clone(), t.clone())),
        }
    }
    // The replaced tensors keep the module's own values: give copies back to the strict check
    // (a tensor copied onto its own storage would lock it twice).
    for n in &replaced {
        kept.push((n.clone(), nabla_core::no_grad(|| own[n].mul_scalar(1.0))?));
    }
    load_state_dict(module, &kept, origin)?;
    Ok(replaced)
}

/// Whether `name` is a batch-norm step counter (`…num_batches_tracked`).
fn is_batch_counter(name: &str) -> bool {
    name == "num_batches_tracked" || name.ends_with(".num_batches_tracked")
}

/// Reads every tensor of a safetensors file, with its metadata.
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<(Vec<(String, Tensor)>, HashMap<String, String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    from_safetensors_bytes(&bytes, path)
}

/// Saves a module's parameters and buffers under their PyTorch names.
pub fn save_module(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    save_safetensors(path, &module.state_dict(), None)
}

/// Copies `tensors` into `module`'s parameters and buffers. Every name, dtype and shape is
/// checked first, and all mismatches are reported together; nothing is changed on error.
pub fn load_state_dict(module: &dyn Module, tensors: &[(String, Tensor)], origin: &str) -> Result<()> {
    let mut given: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut problems = Vec::new();
    let mut own = module.state_dict();
    // Batch norm's step counter is bookkeeping, not a weight: files written without it
    // (torchvision's older ones) load as PyTorch's strict loading takes them, keeping the
    // model's own counter; a counter the model has no place for is ignored likewise.
    own.retain(|(name, _)| !is_batch_counter(name) || given.contains_key(name.as_str()));
    given.retain(|name, _| !is_batch_counter(name) || own.iter().any(|(n, _)| n == name));
    for (name, t) in &own {
        match given.remove(name.as_str()) {
            None => problems.push(format!("missing '{name}' {}", t.shape())),
            Some(src) if src.shape() != t.shape() => problems.push(format!(
                "'{name}': file has shape {}, model expects {}",
                src.shape(),
                t.shape()
            )),
            Some(src) if src.dtype() != t.dtype() => problems.push(format!(
                "'{name}': file has dtype {:?}, model expects {:?}",
                src.dtype(),
                t.dtype()
            )),
            Some(_) => {}
        }
    }
    let mut unexpected: Vec<&str> = given.keys().copied().collect();
    unexpected.sort();
    problems.extend(unexpected.iter().map(|n| format!("unexpected '{n}'")));
    if !problems.is_empty() {
        return Err(Error::File {
            path: origin.to_string(),
            msg: format!("state dict does not match the model: {}", problems.join("; ")),
        });
    }
    let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    nabla_core::no_grad(|| own.iter().try_for_each(|(name, t)| t.copy_(by_name[name.as_str()])))
}

/// Loads a safetensors file into `module` (see [`load_state_dict`]).
pub fn load_module(module: &dyn Module, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let (tensors, _) = load_safetensors(path)?;
    load_state_dict(module, &tensors, &path.display().to_string())
}
