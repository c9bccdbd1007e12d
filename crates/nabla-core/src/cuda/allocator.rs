//! A caching allocator: device memory freed by a tensor goes back to a per-device pool and is
//! handed to the next request of the same size class, so a training step whose shapes repeat
//! calls `cuMemAlloc` only during its first iteration and device memory stays flat afterwards.
//!
//! Size classes: requests up to 1 MiB are rounded up to a multiple of 512 bytes; larger ones to
//! one of eight steps per power of two (`2^k · (8 + j)/8`), so at most 12.5% is wasted.
//!
//! Why not cudarc's own allocation: `CudaStream::alloc` uses the stream-ordered `cuMemAllocAsync`
//! where the device supports memory pools, but the driver's default pool has a release threshold
//! of 0 (memory goes back to the OS at every synchronisation), it keeps no statistics we can
//! report, and each `CudaSlice` creates two CUDA events for its read/write tracking. Here blocks
//! come from plain `cuMemAlloc` and are kept by this pool, which counts them.
//!
//! NOTE (why reuse without waiting is safe): all work of a device runs on its one stream
//! (see `context`). A buffer dropped by the host may still be read by kernels queued earlier;
//! the next user of that block is queued *after* them on the same stream, so it cannot run
//! before they finish. Anything that adds a second stream must record an event per block.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cuda::context::{CudaDevice, Library, existing_device, lock};
use crate::error::Result;

/// Bytes of device memory, per device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes (rounded to size classes) held by live buffers.
    pub in_use: usize,
    /// Bytes held by the pool, free for reuse.
    pub cached: usize,
    /// The largest `in_use` seen since the device was created or [`reset_peak`] was called.
    pub peak_in_use: usize,
    /// How many times `cuMemAlloc` was called (stays constant in a steady training loop).
    pub device_allocations: u64,
}

/// The free lists and counters of one device.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    free: HashMap<usize, Vec<u64>>,
    stats: MemoryStats,
}

/// The size class of a request of `bytes` (never 0: `cuMemAlloc(0)` is an error).
pub fn size_class(bytes: usize) -> usize {
    const SMALL: usize = 1 << 20;
    if bytes <= SMALL {
        return bytes.max(1).div_ceil(512) * 512;
    }
    let high = usize::BITS - 1 - bytes.leading_zeros(); // floor(log2(bytes)) ≥ 20
    let step = 1usize << (high - 3);
    bytes.div_ceil(step) * step
}

/// A block of device memory of one size class. Returned to its device's pool on drop.
pub struct Buffer {
    ptr: u64,
    size: usize,
    dev: Arc<CudaDevice>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Buffer({:#x}, {} bytes, cuda:{})",
            self.ptr,
            self.size,
            self.dev.ordinal()
        )
    }
}

impl Buffer {
    /// The device address of the first byte.
    pub fn ptr(&self) -> u64 {
        self.ptr
    }
    /// The capacity in bytes (the size class, at least what was asked for).
    pub fn capacity(&self) -> usize {
        self.size
    }
    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut pool = lock(&self.dev.pool);
        pool.stats.in_use -= self.size;
        pool.stats.cached += self.size;
        pool.free.entry(self.size).or_default().push(self.ptr);
    }
}

/// A block of at least `bytes` bytes on `dev` (contents undefined), from the pool if one of the
/// same size class is free, otherwise from `cuMemAlloc` (after emptying the pool and retrying
/// once when the device is out of memory).
pub(crate) fn alloc(dev: &Arc<CudaDevice>, op: &'static str, bytes: usize) -> Result<Buffer> {
    let size = size_class(bytes);
    let take = |pool: &mut Pool, ptr: u64| {
        pool.stats.in_use += size;
        pool.stats.peak_in_use = pool.stats.peak_in_use.max(pool.stats.in_use);
        Buffer {
            ptr,
            size,
            dev: dev.clone(),
        }
    };
    {
        let mut pool = lock(&dev.pool);
        if let Some(ptr) = pool.free.get_mut(&size).and_then(|v| v.pop()) {
            pool.stats.cached -= size;
            return Ok(take(&mut pool, ptr));
        }
    }
    dev.bind(op)?;
    // SAFETY: the context is current; the block is owned by the returned Buffer.
    let ptr = match unsafe { cudarc::driver::result::malloc_sync(size) } {
        Ok(p) => p,
        Err(_) => {
            release_cached(dev, op)?;
            unsafe { cudarc::driver::result::malloc_sync(size) }
                .map_err(|e| dev.err(op, Library::Driver, format!("allocating {size} bytes: {e}")))?
        }
    };
    let mut pool = lock(&dev.pool);
    pool.stats.device_allocations += 1;
    Ok(take(&mut pool, ptr))
}

/// Frees every cached block of `dev` (after waiting for queued work that may still use them).
fn release_cached(dev: &CudaDevice, op: &'static str) -> Result<()> {
    dev.synchronize()?;
    let blocks: Vec<(usize, Vec<u64>)> = {
        let mut pool = lock(&dev.pool);
        pool.stats.cached = 0;
        pool.free.drain().collect()
    };
    dev.bind(op)?;
    let mut first_err = None;
    for ptr in blocks.into_iter().flat_map(|(_, v)| v) {
        // SAFETY: each block came from cuMemAlloc and no live Buffer refers to it.
        if let Err(e) = unsafe { cudarc::driver::result::free_sync(ptr) } {
            first_err.get_or_insert(dev.err(op, Library::Driver, e));
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Memory counters of device `ordinal` (all zero when the device was never used).
pub fn memory_stats(ordinal: usize) -> MemoryStats {
    existing_device(ordinal)
        .map(|d| lock(&d.pool).stats)
        .unwrap_or_default()
}

/// Resets the peak to the current use.
pub fn reset_peak(ordinal: usize) {
    if let Some(d) = existing_device(ordinal) {
        let mut pool = lock(&d.pool);
        pool.stats.peak_in_use = pool.stats.in_use;
    }
}

/// Returns the cached (free) blocks of device `ordinal` to the driver, as PyTorch's
/// `torch.cuda.empty_cache()`. Live tensors are untouched.
pub fn empty_cache(ordinal: usize) -> Result<()> {
    match existing_device(ordinal) {
        Some(d) => release_cached(&d, "cuda::empty_cache"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes() {
        assert_eq!(size_class(0), 512);
        assert_eq!(size_class(1), 512);
        assert_eq!(size_class(513), 1024);
        assert_eq!(size_class(1 << 20), 1 << 20);
        assert_eq!(size_class((1 << 20) + 1), (1 << 20) + (1 << 17));
        let big = 300_000_000;
        let c = size_class(big);
        assert!(c >= big && (c - big) * 8 <= big);
    }
}
