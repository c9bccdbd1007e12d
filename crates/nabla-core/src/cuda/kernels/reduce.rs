//! Reductions over a set of dimensions, producing the keep-dim output.
//!
//! The host splits the input into kept dims `sk` (over the output shape) and reduced dims `sr`
//! (over the `r` reduced elements), so element `j` of output `o` is at
//! `strided_offset(sk, o) + strided_offset(sr, j)`. Codes: 0 sum · 1 mean = sum/r ·
//! 2 max · 3 min (NaN-propagating) · 4 argmax · 5 argmin (→ i64: the flat index within the
//! reduced dims, the first one on ties and the first NaN, as PyTorch).
//!
//! Two shapes of launch: `reduce_thread_*` (one thread per output, for short reductions) and
//! `reduce_block_*` (one block of 256 threads per output, a tree in shared memory).

use super::KernelModule;

pub static REDUCE: KernelModule = KernelModule {
    name: "reduce",
    fmad: true,
    source: r#"
/* True when (v, i) should replace the current best (bv, bi); bi < 0 means "none yet". */
template <typename T> __device__ __forceinline__ bool better(int op, T v, i64 i, T bv, i64 bi) {
    if (bi < 0) return true;
    bool vn = is_nan(v), bn = is_nan(bv);
    if (vn || bn) return vn && (!bn || i < bi);
    if (v == bv) return i < bi;
    return (op == 2 || op == 4) ? v > bv : v < bv;
}

template <typename T> __device__ __forceinline__ void reduce_write(int op, u64 o, u64 r, T acc, T bv, i64 bi,
                                                                    T* y, i64* yi) {
    switch (op) {
    case 0: y[o] = acc; break;
    case 1: y[o] = acc / (T)r; break;
    case 2: case 3: y[o] = bv; break;
    default: yi[o] = bi; break;
    }
}

template <typename T> __device__ void reduce_thread(int op, u64 n_out, u64 r, const Strided& sk, const Strided& sr,
                                                    const T* x, T* y, i64* yi) {
    GRID_STRIDE(o, n_out) {
        const T* base = x + strided_offset(sk, o);
        T acc = (T)0, bv = (T)0;
        i64 bi = -1;
        for (u64 j = 0; j < r; ++j) {
            T v = base[strided_offset(sr, j)];
            if (op <= 1) acc += v;
            else if (better(op, v, (i64)j, bv, bi)) { bv = v; bi = (i64)j; }
        }
        reduce_write(op, o, r, acc, bv, bi, y, yi);
    }
}

template <typename T> __device__ void reduce_block(int op, u64 n_out, u64 r, const Strided& sk, const Strided& sr,
                                                   const T* x, T* y, i64* yi) {
    __shared__ T sv[BLOCK];
    __shared__ i64 si[BLOCK];
    for (u64 o = blockIdx.x; o < n_out; o += gridDim.x) {
        const T* base = x + strided_offset(sk, o);
        T acc = (T)0, bv = (T)0;
        i64 bi = -1;
        for (u64 j = threadIdx.x; j < r; j += BLOCK) {
            T v = base[strided_offset(sr, j)];
            if (op <= 1) acc += v;
            else if (better(op, v, (i64)j, bv, bi)) { bv = v; bi = (i64)j; }
        }
        __syncthreads();
        sv[threadIdx.x] = op <= 1 ? acc : bv;
        si[threadIdx.x] = bi;
        __syncthreads();
        for (int s = BLOCK / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                T v = sv[threadIdx.x + s];
                i64 i = si[threadIdx.x + s];
                if (op <= 1) sv[threadIdx.x] += v;
                else if (i >= 0 && better(op, v, i, sv[threadIdx.x], si[threadIdx.x])) {
                    sv[threadIdx.x] = v;
                    si[threadIdx.x] = i;
                }
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) reduce_write(op, o, r, sv[0], sv[0], si[0], y, yi);
    }
}

#define REDUCE_KERNELS(T, TN) \
    extern "C" __global__ void reduce_thread_##TN(int op, u64 n_out, u64 r, Strided sk, Strided sr, const T* x, \
                                                  T* y, i64* yi) { reduce_thread<T>(op, n_out, r, sk, sr, x, y, yi); } \
    extern "C" __global__ void reduce_block_##TN(int op, u64 n_out, u64 r, Strided sk, Strided sr, const T* x, \
                                                 T* y, i64* yi) { reduce_block<T>(op, n_out, r, sk, sr, x, y, yi); }
REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(double, f64)
REDUCE_KERNELS(i64, i64)
"#,
};
