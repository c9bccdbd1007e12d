//! CPU kernels, reached through the backend (`backend.rs`, the `Backend` trait's CPU side).
//! The naive reference kernels stay beside the fast ones as oracles. Public: the convolution
//! and max-pooling tables ([`conv`], [`pool`]), for callers who want to see or force the
//! algorithm, and [`Isa`]; the kernels themselves are private.

mod backend;
pub mod conv;
mod elementwise;
/// The GEMM (public for the profiling examples with the feature `bench-internals`; not an API).
#[cfg(feature = "bench-internals")]
pub mod gemm;
#[cfg(not(feature = "bench-internals"))]
mod gemm;
/// The bf16 GEMM of mixed precision (public with `bench-internals`, for the profiling examples).
#[cfg(feature = "bench-internals")]
pub mod gemm_bf16;
#[cfg(not(feature = "bench-internals"))]
mod gemm_bf16;
mod gemm_bf16_amx;
mod index;
mod isa;
mod lrn;
mod matmul;
mod norm;
mod optim;
mod pad;
pub mod pool;
mod reduce;
mod softmax;
pub(crate) mod strided;

use crate::Float;
pub(crate) use crate::runtime::ensure_thread_pool;
pub use isa::Isa;

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

/// A vector of `count` chunks of `len` values, chunk i the values `values(i)` yields, computed in
/// parallel and written once: unlike [`par_filled_chunks`], nothing is zeroed first (a memset
/// was a tenth of batch norm's time on ResNet-20's planes).
///
/// # Panics
/// If `values(i)` yields fewer than `len` values (extra ones are ignored).
pub(crate) fn par_chunks_from<T: Send, I: Iterator<Item = T>>(
    count: usize,
    len: usize,
    values: impl Fn(usize) -> I + Sync + Send,
) -> Vec<T> {
    use rayon::prelude::*;
    let total = count * len;
    let mut out: Vec<T> = Vec::with_capacity(total);
    if len > 0 {
        out.spare_capacity_mut()[..total]
            .par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, chunk)| {
                let mut written = 0;
                for (slot, v) in chunk.iter_mut().zip(values(i)) {
                    slot.write(v);
                    written += 1;
                }
                // NOTE: what makes `set_len` below sound: every slot was written (a panic here
                // reaches the caller before it).
                assert_eq!(written, len, "par_chunks_from: chunk {i} has {written} of {len} values");
            });
    }
    // SAFETY: the chunks cover 0..total and each had all of its `len` slots written above.
    unsafe { out.set_len(total) };
    out
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
