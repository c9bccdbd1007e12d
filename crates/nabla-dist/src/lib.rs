//! # nabla-dist
//!
//! Collective communication for data-parallel training: every process (a *rank* of a *world*)
//! holds a replica of the model, computes gradients on its shard of each batch, and the ranks
//! sum their gradients ([`Collective::all_reduce_sum`]) before each takes the same optimiser
//! step. [`SingleProcess`] is the world of one (every operation a no-op); `mpi::Mpi` (feature
//! `mpi`) runs over MPI between processes and hosts, launched by `mpirun` or `srun`; `nccl::Nccl`
//! (feature `nccl`) sums on the GPUs with NCCL, MPI carrying its id.
//!
//! [`all_reduce_gradients`] packs gradients into buckets of about 25 MB in reverse parameter
//! order (the order backpropagation finishes them, as PyTorch's DDP does) so that a network of
//! many small tensors costs a few large messages.

#[cfg(feature = "mpi")]
pub mod mpi;
#[cfg(feature = "nccl")]
pub mod nccl;

use nabla_core::{DType, Error, GradStore, Result, Tensor};

/// The operations data-parallel training needs from the ranks of one job.
pub trait Collective: Send + Sync {
    /// This process's index, 0 … world_size − 1.
    fn rank(&self) -> usize;
    /// How many processes take part.
    fn world_size(&self) -> usize;
    /// Replaces `buf` on every rank by the elementwise sum of all ranks' `buf`.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
    /// Replaces `buf` on every rank by rank `root`'s (lengths may differ before the call).
    fn broadcast_bytes(&self, buf: &mut Vec<u8>, root: usize) -> Result<()>;
    /// Returns when every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// Ends every rank of the job after an error on this one (a rank that stops alone would
    /// leave the others waiting in their next collective).
    fn abort(&self, code: i32) -> !;
    /// The engine's name, for logs: "single process", "MPI (Open MPI v4.1.4), 2 ranks".
    fn describe(&self) -> String;
    /// Ends this rank's part in the job before the process exits (`MPI_Finalize`); nothing
    /// for one process.
    fn finalize(&self) {}
}

/// A world of one process: the sum over one rank is the buffer itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast_bytes(&self, _buf: &mut Vec<u8>, _root: usize) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
    fn describe(&self) -> String {
        "single process".into()
    }
}

/// About 25 MB of f32 per message, PyTorch DDP's default `bucket_cap_mb`.
pub const BUCKET_ELEMENTS: usize = 25 * 1024 * 1024 / 4;

/// Sums the gradients of `params` over the ranks, in buckets of about `bucket` elements taken
/// in reverse parameter order, with `extra` (a few scalars every rank contributes: loss sums,
/// stop flags) riding in the first bucket; each rank's gradient is multiplied by `weight` first
/// (its share of the global batch, so that the sum is the gradient of the global mean loss).
/// A parameter without a gradient on this rank counts as zeros. On return `grads` holds the
/// summed gradients and `extra` the summed scalars.
pub fn all_reduce_gradients(
    c: &dyn Collective,
    params: &[Tensor],
    grads: &mut GradStore,
    weight: f32,
    extra: &mut [f32],
    bucket: usize,
) -> Result<()> {
    let order: Vec<&Tensor> = params.iter().rev().collect();
    let mut start = 0;
    let mut first = true;
    while start < order.len() || first {
        // One bucket: parameters start..end, at least one, up to `bucket` elements.
        let mut end = start;
        let mut len = 0;
        while end < order.len() && (end == start || len + order[end].elem_count() <= bucket) {
            len += order[end].elem_count();
            end += 1;
        }
        let mut buf = Vec::with_capacity(len + if first { extra.len() } else { 0 });
        for p in &order[start..end] {
            match grads.get(p) {
                Some(g) => buf.extend(g.to_dtype(DType::F32)?.to_vec::<f32>()?.iter().map(|v| v * weight)),
                None => buf.extend(std::iter::repeat_n(0.0, p.elem_count())),
            }
        }
        if first {
            buf.extend_from_slice(extra);
        }
        c.all_reduce_sum(&mut buf)?;
        let mut at = 0;
        for p in &order[start..end] {
            let n = p.elem_count();
            let g = Tensor::from_vec(buf[at..at + n].to_vec(), p.dims().to_vec())?
                .to_dtype(p.dtype())?
                .to_device(p.device())?;
            grads.insert(p, g);
            at += n;
        }
        if first {
            extra.copy_from_slice(&buf[at..]);
            first = false;
        }
        start = end;
    }
    Ok(())
}

/// Copies rank `root`'s values of `tensors` (parameters, buffers) into every rank's.
pub fn broadcast_tensors(c: &dyn Collective, tensors: &[(String, Tensor)], root: usize) -> Result<()> {
    if c.world_size() == 1 || tensors.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    if c.rank() == root {
        for (_, t) in tensors {
            bytes.extend(
                t.to_dtype(DType::F64)?
                    .to_vec::<f64>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes()),
            );
        }
    }
    c.broadcast_bytes(&mut bytes, root)?;
    let total: usize = tensors.iter().map(|(_, t)| t.elem_count()).sum();
    if bytes.len() != total * 8 {
        return Err(Error::Argument {
            op: "broadcast",
            msg: format!("rank {root} sent {} bytes for {total} values", bytes.len()),
        });
    }
    let mut at = 0;
    for (_, t) in tensors {
        let n = t.elem_count();
        let v: Vec<f64> = bytes[at * 8..(at + n) * 8]
            .chunks_exact(8)
            .map(|b| {
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                f64::from_le_bytes(le)
            })
            .collect();
        let src = Tensor::from_vec(v, t.dims().to_vec())?
            .to_dtype(t.dtype())?
            .to_device(t.device())?;
        t.copy_(&src)?;
        at += n;
    }
    Ok(())
}

/// The rank of this process among those on its node, from the launcher's environment (Open
/// MPI, MPICH/Hydra, Slurm, torchrun's `LOCAL_RANK`); 0 when none says. It picks the GPU.
pub fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
        "LOCAL_RANK",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .unwrap_or(0)
}

/// The part of a batch of `len` samples that rank `rank` of `world` takes: contiguous, sizes
/// differing by at most one, the parts of all ranks covering the batch once.
pub fn shard(len: usize, rank: usize, world: usize) -> std::ops::Range<usize> {
    (rank * len / world)..((rank + 1) * len / world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_the_batch() {
        for len in [0, 1, 5, 64, 65] {
            for world in 1..=5 {
                let mut seen = vec![0; len];
                for r in 0..world {
                    for i in shard(len, r, world) {
                        seen[i] += 1;
                    }
                    let n = shard(len, r, world).len();
                    assert!(n == len / world || n == len / world + 1);
                }
                assert!(seen.iter().all(|&s| s == 1), "{len} {world}");
            }
        }
    }

    #[test]
    fn one_process_scales_its_gradients_and_keeps_the_extras() {
        let p = [
            Tensor::from_vec(vec![1.0f32, 2.0], vec![2]).unwrap(),
            Tensor::from_vec(vec![3.0f32; 3], vec![3]).unwrap(),
            Tensor::from_vec(vec![0.0f32], vec![1]).unwrap(),
        ];
        let mut g = GradStore::default();
        g.insert(&p[0], Tensor::from_vec(vec![4.0f32, 8.0], vec![2]).unwrap());
        g.insert(&p[1], Tensor::from_vec(vec![2.0f32, 6.0, 10.0], vec![3]).unwrap());
        let mut extra = [3.0, 1.0];
        // Buckets of 3 elements: [p2, p1] and [p0] in reverse order.
        all_reduce_gradients(&SingleProcess, &p, &mut g, 0.5, &mut extra, 3).unwrap();
        assert_eq!(g.get(&p[0]).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
        assert_eq!(g.get(&p[1]).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 3.0, 5.0]);
        assert_eq!(g.get(&p[2]).unwrap().to_vec::<f32>().unwrap(), vec![0.0]);
        assert_eq!(extra, [3.0, 1.0]);
    }
}
