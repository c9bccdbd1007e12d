//! CPU kernels. The naive reference kernels stay beside the fast ones as oracles.

mod alloc;
pub mod conv;
pub mod conv_direct;
mod conv_direct_avx2;
pub mod conv_direct_dx;
pub mod gemm;
pub mod pool;
mod pool_avx2;
pub mod strided;

use std::sync::Once;

pub use alloc::keep_freed_memory;

/// Sizes rayon's global pool once from `NABLA_NUM_THREADS` (all cores otherwise), so that
/// every kernel shares one pool and threads are never oversubscribed.
pub fn ensure_thread_pool() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Some(n) = std::env::var("NABLA_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            // An error means the pool was already built (by the user or another crate): keep it.
            let _ = rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global();
        }
    });
}

/// Sets the number of threads of the global pool; call before any computation.
pub fn set_num_threads(n: usize) -> bool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global()
        .is_ok()
}
