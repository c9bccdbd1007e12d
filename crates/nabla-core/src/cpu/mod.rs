//! CPU kernels. The naive reference kernels stay beside the fast ones as oracles.

mod alloc;
mod backend;
pub mod conv;
pub mod conv_direct;
mod conv_direct_avx2;
mod conv_direct_avx512;
pub mod conv_direct_dx;
pub mod conv_scatter_dx;
#[cfg(test)]
mod conv_test_util;
pub mod conv_wide;
pub mod conv_winograd;
mod elementwise;
pub mod gemm;
mod index;
mod lrn;
mod matmul;
mod norm;
mod optim;
mod pad;
pub mod pool;
mod pool_avx2;
mod reduce;
mod softmax;
pub mod strided;

use crate::Float;
use std::sync::Once;

/// `s` as f32 values when `T` is f32 (for the f32-only AVX2 kernels), else `None`.
pub(crate) fn as_f32<T: Float>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32 when its dtype is F32, so the cast changes nothing.
    (T::DTYPE == crate::DType::F32).then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// As [`as_f32`], mutably.
pub(crate) fn as_f32_mut<T: Float>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`.
    (T::DTYPE == crate::DType::F32)
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// An f32 kernel's result as a `Vec<T>`, when `T` is f32 (no copy).
pub(crate) fn f32_vec_as<T: Float>(v: Vec<f32>) -> Option<Vec<T>> {
    let v: Box<dyn std::any::Any> = Box::new(v);
    v.downcast::<Vec<T>>().ok().map(|v| *v)
}

/// Starts of blocks of `width` items covering 0..n: 0, width, 2·width, …, the last one moved
/// back to n − width so that it ends at n. It overlaps its neighbour, and the kernels that use
/// it recompute those items and store the same values again (cheaper than a narrow tail).
/// Empty when n < width.
pub(crate) fn block_starts(n: usize, width: usize) -> impl Iterator<Item = usize> {
    let count = if n < width { 0 } else { n.div_ceil(width) };
    (0..count).map(move |i| (i * width).min(n - width))
}

/// A vector of `count` chunks of `len` values, chunk i filled by `fill(state, i, chunk)` in
/// parallel (`state` from `init`, one per rayon job, as in `for_each_init`). Each chunk is
/// zeroed by the thread that fills it, just before: a `vec![0; n]` first would be one thread's
/// memset over the whole output (LeNet-5's second convolution: 0.8 MB, a tenth of its forward
/// pass), and the chunk would then leave the cache before it is written.
pub(crate) fn par_filled_chunks<T: Float, S>(
    count: usize,
    len: usize,
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, usize, &mut [T]) + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    let total = count * len;
    let mut out: Vec<T> = Vec::with_capacity(total);
    if len > 0 {
        out.spare_capacity_mut()[..total]
            .par_chunks_mut(len)
            .enumerate()
            .for_each_init(init, |state, (i, chunk)| {
                chunk.fill(std::mem::MaybeUninit::new(T::zero()));
                // SAFETY: every element of the chunk was initialised on the line above.
                let chunk = unsafe { &mut *(chunk as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
                fill(state, i, chunk);
            });
    }
    // SAFETY: the chunks cover 0..total (count · len elements, all initialised above).
    unsafe { out.set_len(total) };
    out
}

pub use alloc::keep_freed_memory;

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
