//! The header prepended to every kernel module: integer types, the strided-index helper, math
//! overloads for float and double, a grid-stride loop and block reductions.
//!
//! NOTE: NVRTC has no standard headers here (no `<cstdint>`), so the types are spelled out.

/// CUDA C shared by all modules. `Strided` must match `cuda::ops::Strided` field for field.
pub const COMMON: &str = r#"
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;
#define MAX_RANK 8
#define BLOCK 256

/* A strided view of rank <= 8: element i (row-major over dims) is at offset
   sum_d ((i / prod(dims[d+1..])) % dims[d]) * strides[d]. */
struct Strided {
    int rank;
    int contiguous;
    u64 dims[MAX_RANK];
    i64 strides[MAX_RANK];
};

__device__ __forceinline__ i64 strided_offset(const Strided& s, u64 i) {
    if (s.contiguous) return (i64)i;
    i64 off = 0;
#pragma unroll
    for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d < s.rank) {
            u64 n = s.dims[d];
            off += (i64)(i % n) * s.strides[d];
            i /= n;
        }
    }
    return off;
}

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)blockDim.x * gridDim.x)

/* Overloads so that one template serves float and double. */
#define MATH1(name, f, d) \
    __device__ __forceinline__ float name(float x) { return f(x); } \
    __device__ __forceinline__ double name(double x) { return d(x); }
MATH1(m_exp, expf, exp)
MATH1(m_log, logf, log)
MATH1(m_sqrt, sqrtf, sqrt)
MATH1(m_tanh, tanhf, tanh)
MATH1(m_log1p, log1pf, log1p)
MATH1(m_abs, fabsf, fabs)
MATH1(m_sin, sinf, sin)
MATH1(m_cos, cosf, cos)
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }

template <typename T> __device__ __forceinline__ bool is_nan(T x) { return x != x; }

/* NOTE: INFINITY and NAN come from <math.h>, which NVRTC does not provide here. */
template <typename T> __device__ __forceinline__ T inf_value();
template <> __device__ __forceinline__ float inf_value<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double inf_value<double>() { return __longlong_as_double(0x7ff0000000000000LL); }
template <typename T> __device__ __forceinline__ T nan_value();
template <> __device__ __forceinline__ float nan_value<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double nan_value<double>() { return __longlong_as_double(0x7ff8000000000000LL); }

/* Sum over the block (blockDim.x == BLOCK); every thread gets the result. */
template <typename T> __device__ T block_sum(T v) {
    __shared__ T buf[BLOCK];
    __syncthreads();
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    return buf[0];
}

/* Maximum over the block, NaN-propagating; every thread gets the result. */
template <typename T> __device__ T block_max(T v) {
    __shared__ T buf[BLOCK];
    __syncthreads();
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            T o = buf[threadIdx.x + s];
            if (is_nan(o) || o > buf[threadIdx.x]) buf[threadIdx.x] = o;
        }
        __syncthreads();
    }
    return buf[0];
}
"#;
