//! The process around the kernels: the one rayon pool every parallel kernel shares, and the
//! allocator's tuning. Programs call these once at start (`nabla` does); the kernels call
//! [`ensure_thread_pool`].
//!
//! Keeping freed buffers in the process instead of returning them to the kernel
//! ([`keep_freed_memory`]): a training step allocates the same large buffers (activations,
//! unfolded inputs, gradients) again and again. glibc's malloc serves blocks above its mmap
//! threshold with a fresh `mmap` and gives them back on free, so every step pays a page fault per
//! 4 KiB of each buffer: LeNet-5's second convolution spent half of its forward+backward time in
//! page faults, and inference at batch 1000 ran at 60% of its speed. Raising the threshold and
//! switching off trimming makes freed blocks reusable, as a caching allocator would; peak memory
//! is unchanged (the high-water mark was reached anyway). One arena for all threads: a thread
//! other than the main one gets its own heaps of at most 64 MiB, which glibc unmaps when they
//! empty whatever the thresholds say; with the program run on a pool thread ([`run_in_pool`]),
//! inference at batch 1000 fell from 100k to 68k samples/s that way.

use std::sync::Once;

/// Tells the C allocator to keep freed memory for reuse (glibc on Linux; elsewhere a no-op).
/// Process-wide, so programs call it once at start (`nabla` does); libraries should not.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning parameters; any value is valid input.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Sizes rayon's global pool once from `NABLA_NUM_THREADS` (all cores otherwise), so that
/// every kernel shares one pool and threads are never oversubscribed.
pub fn ensure_thread_pool() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // An invalid count is refused by the command line before it gets here; a library
        // user's invalid value leaves rayon's default (one thread per core).
        if let Ok(Some(n)) = crate::limits::threads_from_env() {
            // An error means the pool was already built (by the user or another crate): keep it.
            let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
        }
    });
}

/// Runs `f` on a thread of rayon's global pool (built here if it was not: `threads`, else
/// `NABLA_NUM_THREADS` threads, else one per core, with 64 MiB stacks for deep backward passes) and returns its value.
///
/// Called from outside the pool, every parallel op hands its work to the pool's threads and
/// puts the calling thread to sleep until they finish: a hand-off and two wake-ups per op,
/// while one core's worth of the caller sits idle. Run from inside, the caller is one of the
/// workers (as OpenMP's master thread is in PyTorch). Training on 2 cores: LeNet-5 +20%, the
/// MLP +10–15% samples/s. Thread-local state (`manual_seed`, `no_grad`) belongs to the thread
/// that runs `f`, so set it inside `f`.
pub fn run_in_pool<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> R {
    let mut builder = rayon::ThreadPoolBuilder::new().stack_size(64 << 20);
    if let Some(n) = threads.or(crate::limits::threads_from_env().ok().flatten()) {
        builder = builder.num_threads(n.clamp(1, crate::limits::MAX_THREADS));
    }
    // An error means the pool exists already (built by the user or an earlier call): use it.
    let _ = builder.build_global();
    rayon::scope(|_| f())
}

/// Sets the number of threads of the global pool; call before any computation.
pub fn set_num_threads(n: usize) -> bool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global()
        .is_ok()
}
