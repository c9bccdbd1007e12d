//! Indexing along one dim: `index_select` and its adjoint `index_add`, `gather` and its adjoint
//! `scatter_add` (as `torch.gather`/`Tensor.scatter_add_`).
//!
//! ```text
//! index_select:  y[o, j, i] = x[o, idx[j], i]        (x viewed as [outer, size, inner], contiguous)
//! index_add:     dst[o, idx[j], i] += src[o, j, i]
//! gather:        y[p] = x[p with p_d ← index[p]]     (y and index share a shape; x contiguous)
//! scatter_add:   dst[p with p_d ← index[p]] += src[p]
//! ```
//! NOTE: indices live on the device, so the host cannot check them without a synchronisation.
//! The kernels never touch memory through an out-of-range index: a read gives NaN (0 for i64)
//! and an add is skipped. `ops::check_indices` finds such indices when the caller wants an error.
//! The adds use atomics: the order of the summation, and so the last bits, may vary run to run.

use super::KernelModule;

pub static INDEX: KernelModule = KernelModule {
    name: "index",
    fmad: true,
    source: r#"
template <typename T> __device__ __forceinline__ T bad_index_value() { return nan_value<T>(); }
template <> __device__ __forceinline__ i64 bad_index_value<i64>() { return 0; }

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
/* Two's-complement addition is the same on unsigned words. */
__device__ __forceinline__ void atomic_add(i64* p, i64 v) { atomicAdd((u64*)p, (u64)v); }

template <typename T> __device__ void index_select(u64 n, u64 inner, u64 size, u64 m, const T* x, const i64* idx,
                                                   T* y) {
    GRID_STRIDE(p, n) {
        u64 i = p % inner, j = (p / inner) % m, o = p / (inner * m);
        i64 k = idx[j];
        y[p] = (k >= 0 && (u64)k < size) ? x[(o * size + (u64)k) * inner + i] : bad_index_value<T>();
    }
}

template <typename T> __device__ void index_add(u64 n, u64 inner, u64 size, u64 m, const T* src, const i64* idx,
                                                T* dst) {
    GRID_STRIDE(p, n) {
        u64 i = p % inner, j = (p / inner) % m, o = p / (inner * m);
        i64 k = idx[j];
        if (k >= 0 && (u64)k < size) atomic_add(&dst[(o * size + (u64)k) * inner + i], src[p]);
    }
}

/* si: the index's dims with x's strides, the stride of dim d set to 0; xs_d: x's stride of d. */
template <typename T> __device__ void gather(u64 n, Strided si, u64 xs_d, u64 size, const T* x, const i64* index,
                                             T* y) {
    GRID_STRIDE(p, n) {
        i64 k = index[p];
        y[p] = (k >= 0 && (u64)k < size) ? x[strided_offset(si, p) + k * (i64)xs_d] : bad_index_value<T>();
    }
}

template <typename T> __device__ void scatter_add(u64 n, Strided si, u64 xs_d, u64 size, const T* src,
                                                  const i64* index, T* dst) {
    GRID_STRIDE(p, n) {
        i64 k = index[p];
        if (k >= 0 && (u64)k < size) atomic_add(&dst[strided_offset(si, p) + k * (i64)xs_d], src[p]);
    }
}

/* out[0] = min, out[1] = max of n indices (n > 0), one block. */
extern "C" __global__ void index_min_max(u64 n, const i64* idx, i64* out) {
    __shared__ i64 lo[BLOCK], hi[BLOCK];
    i64 a = idx[0], b = idx[0];
    for (u64 p = threadIdx.x; p < n; p += BLOCK) { i64 v = idx[p]; a = v < a ? v : a; b = v > b ? v : b; }
    lo[threadIdx.x] = a; hi[threadIdx.x] = b;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            if (lo[threadIdx.x + s] < lo[threadIdx.x]) lo[threadIdx.x] = lo[threadIdx.x + s];
            if (hi[threadIdx.x + s] > hi[threadIdx.x]) hi[threadIdx.x] = hi[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) { out[0] = lo[0]; out[1] = hi[0]; }
}

#define READ_KERNELS(T, TN) \
    extern "C" __global__ void index_select_##TN(u64 n, u64 inner, u64 size, u64 m, const T* x, const i64* idx, \
                                                 T* y) { index_select<T>(n, inner, size, m, x, idx, y); } \
    extern "C" __global__ void gather_##TN(u64 n, Strided si, u64 xs_d, u64 size, const T* x, const i64* index, \
                                           T* y) { gather<T>(n, si, xs_d, size, x, index, y); }
#define ADD_KERNELS(T, TN) \
    extern "C" __global__ void index_add_##TN(u64 n, u64 inner, u64 size, u64 m, const T* src, const i64* idx, \
                                              T* dst) { index_add<T>(n, inner, size, m, src, idx, dst); } \
    extern "C" __global__ void scatter_add_##TN(u64 n, Strided si, u64 xs_d, u64 size, const T* src, \
                                                const i64* index, T* dst) { scatter_add<T>(n, si, xs_d, size, src, index, dst); }
READ_KERNELS(float, f32)
READ_KERNELS(double, f64)
READ_KERNELS(i64, i64)
ADD_KERNELS(float, f32)
ADD_KERNELS(double, f64)
ADD_KERNELS(i64, i64)
"#,
};
