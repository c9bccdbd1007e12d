//! Softmax and log-softmax over the last dim of a contiguous `[rows, cols]` array, their
//! backward passes, and the fused softmax + cross-entropy. One block of 256 threads per row.
//!
//! ```text
//! softmax:      y_j = e^(x_j − m) / Σ_k e^(x_k − m),  m = max_k x_k
//! log_softmax:  y_j = x_j − m − ln Σ_k e^(x_k − m)
//! backward:     softmax      δx_j = y_j (δy_j − Σ_k δy_k y_k)
//!               log_softmax  δx_j = δy_j − e^(y_j) Σ_k δy_k
//! cross-entropy with target t:  ℓ = lse(x) − x_t,  δx_j = s (softmax_j − 1[j = t])
//! ```
//! `s` is the caller's gradient scale (1/N for the mean over N samples, 1 for per-sample).
//! A target outside `[0, cols)` gives a NaN loss and NaN gradient row (no device-side abort).

use super::KernelModule;

pub static SOFTMAX: KernelModule = KernelModule {
    name: "softmax",
    fmad: true,
    source: r#"
template <typename T> __device__ void row_max_lse(const T* x, u64 cols, T* m_out, T* lse_out) {
    T m = -inf_value<T>();
    for (u64 j = threadIdx.x; j < cols; j += BLOCK) { T v = x[j]; if (is_nan(v) || v > m) m = v; }
    m = block_max(m);
    T s = (T)0;
    for (u64 j = threadIdx.x; j < cols; j += BLOCK) s += m_exp(x[j] - m);
    s = block_sum(s);
    *m_out = m;
    *lse_out = m + m_log(s);
}

template <typename T> __device__ void softmax_fwd(int log, u64 rows, u64 cols, const T* x, T* y) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T m, lse;
        row_max_lse(xr, cols, &m, &lse);
        for (u64 j = threadIdx.x; j < cols; j += BLOCK) yr[j] = log ? xr[j] - lse : m_exp(xr[j] - lse);
    }
}

template <typename T> __device__ void softmax_bwd(int log, u64 rows, u64 cols, const T* y, const T* dy, T* dx) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* yr = y + r * cols;
        const T* dyr = dy + r * cols;
        T* dxr = dx + r * cols;
        T s = (T)0;
        for (u64 j = threadIdx.x; j < cols; j += BLOCK) s += log ? dyr[j] : dyr[j] * yr[j];
        s = block_sum(s);
        for (u64 j = threadIdx.x; j < cols; j += BLOCK)
            dxr[j] = log ? dyr[j] - m_exp(yr[j]) * s : yr[j] * (dyr[j] - s);
    }
}

template <typename T> __device__ void softmax_xent(u64 rows, u64 cols, const T* x, const i64* target, T* loss,
                                                   T* grad, T scale, int write_grad) {
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        i64 t = target[r];
        bool ok = t >= 0 && (u64)t < cols;
        T m, lse;
        row_max_lse(xr, cols, &m, &lse);
        if (threadIdx.x == 0) loss[r] = ok ? lse - xr[t] : nan_value<T>();
        if (write_grad) {
            T* gr = grad + r * cols;
            for (u64 j = threadIdx.x; j < cols; j += BLOCK) {
                T p = m_exp(xr[j] - lse) - ((i64)j == t ? (T)1 : (T)0);
                gr[j] = ok ? p * scale : nan_value<T>();
            }
        }
    }
}

#define SOFTMAX_KERNELS(T, TN) \
    extern "C" __global__ void softmax_fwd_##TN(int log, u64 rows, u64 cols, const T* x, T* y) { \
        softmax_fwd<T>(log, rows, cols, x, y); } \
    extern "C" __global__ void softmax_bwd_##TN(int log, u64 rows, u64 cols, const T* y, const T* dy, T* dx) { \
        softmax_bwd<T>(log, rows, cols, y, dy, dx); } \
    extern "C" __global__ void softmax_xent_##TN(u64 rows, u64 cols, const T* x, const i64* target, T* loss, \
                                                 T* grad, T scale, int write_grad) { \
        softmax_xent<T>(rows, cols, x, target, loss, grad, scale, write_grad); }
SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(double, f64)
"#,
};
