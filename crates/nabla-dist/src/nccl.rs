//! NCCL between GPUs through cudarc's `nccl` module (feature `nccl`, which implies `mpi`):
//! MPI starts the job and carries NCCL's unique id from rank 0 to the others; each rank drives
//! the GPU of its local rank on the node. NCCL, CUDA's driver and their libraries are loaded at
//! run time; a machine without `libnccl` gets an error saying so, never a panic.
//!
//! The sums run on the GPU; [`Collective::all_reduce_sum`] takes host buffers (the gradient
//! buckets of [`crate::all_reduce_gradients`]), so each bucket is copied to the device and back.
//! Reducing the device gradients in place is the next step.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nccl::safe::{Comm, Id, ReduceOp};

use crate::Collective;
use crate::mpi::Mpi;
use nabla_core::{Error, Result};

/// This rank's NCCL communicator, beside the MPI world that launched it.
pub struct Nccl {
    mpi: Arc<Mpi>,
    comm: Comm,
    stream: Arc<CudaStream>,
    ordinal: usize,
}

// SAFETY: the communicator and stream are used through `&self`, one call at a time, from the
// thread that drives the training (as the MPI world is).
unsafe impl Send for Nccl {}
unsafe impl Sync for Nccl {}

fn err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Argument {
        op: "nccl",
        msg: format!("{what}: {e:?}"),
    }
}

/// Whether libnccl can be loaded on this machine.
pub fn nccl_present() -> bool {
    // SAFETY: only tries to open the library by its usual names.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

impl Nccl {
    /// Joins the NCCL communicator of the MPI world `mpi` on GPU `ordinal`.
    pub fn init(mpi: Arc<Mpi>, ordinal: usize) -> Result<Nccl> {
        if !nccl_present() {
            return Err(Error::Argument {
                op: "nccl",
                msg: "libnccl is not installed (or not on LD_LIBRARY_PATH): install NCCL, or train on the CPU over MPI"
                    .into(),
            });
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| err(&format!("GPU {ordinal}"), e))?;
        let stream = ctx.default_stream();
        // Rank 0 makes the id; MPI carries its 128 bytes to the others.
        let mut bytes = Vec::new();
        if mpi.rank() == 0 {
            let id = Id::new().map_err(|e| err("ncclGetUniqueId", e))?;
            bytes = id.internal().iter().map(|&c| c as u8).collect();
        }
        mpi.broadcast_bytes(&mut bytes, 0)?;
        let internal: [std::ffi::c_char; 128] =
            std::array::from_fn(|i| bytes.get(i).copied().unwrap_or(0) as std::ffi::c_char);
        let comm = Comm::from_rank(stream.clone(), mpi.rank(), mpi.world_size(), Id::uninit(internal))
            .map_err(|e| err("ncclCommInitRank", e))?;
        Ok(Nccl {
            mpi,
            comm,
            stream,
            ordinal,
        })
    }
}

impl Collective for Nccl {
    fn rank(&self) -> usize {
        self.mpi.rank()
    }
    fn world_size(&self) -> usize {
        self.mpi.world_size()
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut dev = self.stream.clone_htod(buf).map_err(|e| err("copy to the GPU", e))?;
        self.comm
            .all_reduce_in_place(&mut dev, &ReduceOp::Sum)
            .map_err(|e| err("ncclAllReduce", e))?;
        self.stream
            .memcpy_dtoh(&dev, buf)
            .map_err(|e| err("copy from the GPU", e))?;
        self.stream.synchronize().map_err(|e| err("synchronize", e))
    }
    fn broadcast_bytes(&self, buf: &mut Vec<u8>, root: usize) -> Result<()> {
        self.mpi.broadcast_bytes(buf, root)
    }
    fn barrier(&self) -> Result<()> {
        self.mpi.barrier()
    }
    fn abort(&self, code: i32) -> ! {
        self.mpi.abort(code)
    }
    fn describe(&self) -> String {
        format!("NCCL on GPU {} over {}", self.ordinal, self.mpi.describe())
    }
    fn finalize(&self) {
        self.mpi.finalize()
    }
}
