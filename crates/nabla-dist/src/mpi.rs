//! The MPI world through the `mpi` crate (rsmpi): `MPI_Allreduce` with `MPI_SUM` on f32,
//! `MPI_Bcast`, `MPI_Barrier`, `MPI_Abort`. The job is launched by `mpirun -n N` (or `srun`);
//! without a launcher MPI starts a world of one.
//!
//! A rank that fails calls [`Collective::abort`], which ends every rank of the job: MPI itself
//! gives no timeout on a collective that a dead peer never joins, but Open MPI's `mpirun`
//! ends the job when one of its processes exits without finalising, and `MPI_Abort` makes that
//! immediate.

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};

use crate::Collective;
use nabla_core::{Error, Result};

/// This process's place in an MPI job.
pub struct Mpi {
    // Never dropped (that would finalise MPI at an unknown time): [`Collective::finalize`] ends
    // MPI explicitly, as every rank must before it exits.
    _universe: std::mem::ManuallyDrop<Universe>,
    world: SimpleCommunicator,
    library: String,
}

// SAFETY: MPI is initialised with `Threading::Serialized` or better below; every call goes
// through `&self` from whichever thread holds the trainer, one call at a time.
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initialises MPI (once per process). An error when MPI cannot start or was started
    /// already.
    pub fn init() -> Result<Mpi> {
        let (universe, threading) =
            mpi::initialize_with_threading(mpi::Threading::Serialized).ok_or_else(|| Error::Argument {
                op: "mpi",
                msg: "MPI could not be initialised (already initialised in this process?)".into(),
            })?;
        if threading < mpi::Threading::Serialized {
            return Err(Error::Argument {
                op: "mpi",
                msg: format!("the MPI library offers threading level {threading:?}; nabla needs Serialized"),
            });
        }
        let world = universe.world();
        let library = mpi::environment::library_version().unwrap_or_else(|_| "unknown MPI".into());
        // "Open MPI v4.1.4, package: …": the name and version, without NULs or the details.
        let library = library
            .trim_matches(char::from(0))
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        Ok(Mpi {
            _universe: std::mem::ManuallyDrop::new(universe),
            world,
            library,
        })
    }

    fn count(n: usize) -> Result<()> {
        if n > i32::MAX as usize {
            return Err(Error::Argument {
                op: "mpi",
                msg: format!("a message of {n} elements is more than MPI's count (2³¹ − 1) allows"),
            });
        }
        Ok(())
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn world_size(&self) -> usize {
        self.world.size() as usize
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        Mpi::count(buf.len())?;
        let send = buf.to_vec();
        self.world.all_reduce_into(&send[..], buf, SystemOperation::sum());
        Ok(())
    }
    fn broadcast_bytes(&self, buf: &mut Vec<u8>, root: usize) -> Result<()> {
        let root = self.world.process_at_rank(root as i32);
        let mut len = buf.len() as u64;
        root.broadcast_into(&mut len);
        Mpi::count(len as usize)?;
        buf.resize(len as usize, 0);
        // NOTE: an empty slice's pointer is dangling, and Open MPI refuses it even for a count
        // of 0 (MPI_ERR_ARG).
        if len > 0 {
            root.broadcast_into(&mut buf[..]);
        }
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
    fn describe(&self) -> String {
        format!("MPI ({}), {} ranks", self.library, self.world_size())
    }
    fn finalize(&self) {
        if !mpi::environment::is_finalized() {
            // SAFETY: MPI was initialised by `init`; after this no MPI call is made (the
            // process is exiting), and `is_finalized` keeps a second call out.
            unsafe {
                mpi::ffi::MPI_Finalize();
            }
        }
    }
}
