//! Keeping freed buffers in the process instead of returning them to the kernel.
//!
//! A training step allocates the same large buffers (activations, unfolded inputs, gradients)
//! again and again. glibc's malloc serves blocks above its mmap threshold with a fresh `mmap`
//! and gives them back on free, so every step pays a page fault per 4 KiB of each buffer:
//! LeNet-5's second convolution spent half of its forward+backward time in page faults, and
//! inference at batch 1000 ran at 60% of its speed. Raising the threshold and switching off
//! trimming makes freed blocks reusable, as a caching allocator would; peak memory is
//! unchanged (the high-water mark was reached anyway). One arena for all threads: a thread
//! other than the main one gets its own heaps of at most 64 MiB, which glibc unmaps when they
//! empty whatever the thresholds say; with the program run on a pool thread
//! (`run_in_pool`), inference at batch 1000 fell from 100k to 68k samples/s that way.

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
