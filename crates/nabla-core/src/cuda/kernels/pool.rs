//! Pooling and local response normalisation written for this framework (no cuDNN): the same
//! geometry as the CPU kernels (`backend::params::PoolGeometry`), so every option the CPU has
//! (padding, dilation, ceil mode, rank-3 inputs, non-dividing adaptive windows, even LRN sizes)
//! exists here too. One thread per output; backward passes scatter with atomics into a zeroed
//! δx (their summation order, and so the last bits, may vary from run to run).

use super::KernelModule;

/// `pool_fwd_{t}` / `pool_bwd_{t}`: kind 0 max (δ to the window's first maximum, recomputed
/// from x; NaN wins), 1 average (clipped windows; divisor: `divisor` if > 0, else the window
/// counted with padding if `include_pad`, else its real inputs), 2 adaptive average (window i
/// covers [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉)). `g` = {h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw}.
pub static POOL: KernelModule = KernelModule {
    name: "pool",
    fmad: true,
    source: r#"
struct PoolGeom { int h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw; };

/* The input window of output (oy, ox) along one axis for average pooling: [lo, hi) and the
   size counted with padding (not beyond it), as PyTorch. */
__device__ __forceinline__ void avg_window(int o, int in, int k, int s, int p, int* lo, int* hi, int* with_pad) {
    int start = o * s - p;
    int end = min(start + k, in + p);
    *with_pad = end - start;
    *lo = max(start, 0);
    *hi = max(min(end, in), *lo);
}

__device__ __forceinline__ void adaptive_window(int o, int out, int in, int* lo, int* hi) {
    *lo = (int)(((long long)o * in) / out);
    *hi = (int)(((long long)(o + 1) * in + out - 1) / out);
}

/* Index in the plane of the first maximum of window (oy, ox); -1 if the window is empty. */
template <typename T> __device__ int window_argmax(const T* plane, const PoolGeom& g, int oy, int ox) {
    T best = -inf_value<T>();
    int best_i = -1;
    for (int ki = 0; ki < g.kh; ++ki) {
        int iy = oy * g.sh + ki * g.dh - g.ph;
        if (iy < 0 || iy >= g.h) continue;
        for (int kj = 0; kj < g.kw; ++kj) {
            int jx = ox * g.sw + kj * g.dw - g.pw;
            if (jx < 0 || jx >= g.w) continue;
            T v = plane[iy * g.w + jx];
            bool better = best_i < 0 || v > best || is_nan(v);
            if (better && !(best_i >= 0 && is_nan(best))) { best = v; best_i = iy * g.w + jx; }
        }
    }
    return best_i;
}

template <typename T> __device__ void avg_bounds(int kind, const PoolGeom& g, int oy, int ox, int include_pad,
                                                  int divisor, int* r0, int* r1, int* c0, int* c1, T* div) {
    if (kind == 2) {
        adaptive_window(oy, g.oh, g.h, r0, r1);
        adaptive_window(ox, g.ow, g.w, c0, c1);
        *div = (T)((*r1 - *r0) * (*c1 - *c0));
        return;
    }
    int rp, cp;
    avg_window(oy, g.h, g.kh, g.sh, g.ph, r0, r1, &rp);
    avg_window(ox, g.w, g.kw, g.sw, g.pw, c0, c1, &cp);
    if (divisor > 0) *div = (T)divisor;
    else if (include_pad) *div = (T)(rp * cp);
    else *div = (T)((*r1 - *r0) * (*c1 - *c0));
}

#define POOL_KERNELS(T, TN) \
extern "C" __global__ void pool_fwd_##TN(u64 n, int kind, PoolGeom g, int include_pad, int divisor, \
                                         const T* x, T* y) { \
    GRID_STRIDE(i, n) { \
        int ox = (int)(i % g.ow); int oy = (int)((i / g.ow) % g.oh); u64 p = i / ((u64)g.ow * g.oh); \
        const T* plane = x + p * (u64)g.h * g.w; \
        if (kind == 0) { int b = window_argmax<T>(plane, g, oy, ox); y[i] = b < 0 ? -inf_value<T>() : plane[b]; continue; } \
        int r0, r1, c0, c1; T div; \
        avg_bounds<T>(kind, g, oy, ox, include_pad, divisor, &r0, &r1, &c0, &c1, &div); \
        T acc = (T)0; \
        for (int r = r0; r < r1; ++r) for (int c = c0; c < c1; ++c) acc += plane[r * g.w + c]; \
        y[i] = div > (T)0 ? acc / div : (T)0; \
    } \
} \
extern "C" __global__ void pool_bwd_##TN(u64 n, int kind, PoolGeom g, int include_pad, int divisor, \
                                         const T* x, const T* dy, T* dx) { \
    GRID_STRIDE(i, n) { \
        int ox = (int)(i % g.ow); int oy = (int)((i / g.ow) % g.oh); u64 p = i / ((u64)g.ow * g.oh); \
        u64 base = p * (u64)g.h * g.w; \
        if (kind == 0) { int b = window_argmax<T>(x + base, g, oy, ox); if (b >= 0) atomicAdd(&dx[base + b], dy[i]); continue; } \
        int r0, r1, c0, c1; T div; \
        avg_bounds<T>(kind, g, oy, ox, include_pad, divisor, &r0, &r1, &c0, &c1, &div); \
        if (!(div > (T)0)) continue; \
        T v = dy[i] / div; \
        for (int r = r0; r < r1; ++r) for (int c = c0; c < c1; ++c) atomicAdd(&dx[base + r * g.w + c], v); \
    } \
}
POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)

/* LRN over channels of [N, C, S]: s_c = k + (alpha/size) * sum_{c' in [c-before, c+after]} a_c'^2,
   b_c = a_c * s_c^-beta, with before = size/2, after = (size-1)/2 (PyTorch's window). */
#define LRN_KERNELS(T, TN) \
extern "C" __global__ void lrn_fwd_##TN(u64 n, int c, u64 s, int size, T alpha, T beta, T k, \
                                        const T* x, T* y, T* scale) { \
    int before = size / 2, after = (size - 1) / 2; \
    GRID_STRIDE(i, n) { \
        u64 pos = i % s; int ch = (int)((i / s) % c); u64 base = (i / (s * c)) * s * c + pos; \
        T acc = (T)0; \
        for (int q = max(ch - before, 0); q <= min(ch + after, c - 1); ++q) { T v = x[base + q * s]; acc += v * v; } \
        T sc = k + alpha / (T)size * acc; \
        scale[i] = sc; y[i] = x[i] * m_pow(sc, -beta); \
    } \
} \
extern "C" __global__ void lrn_bwd_##TN(u64 n, int c, u64 s, int size, T alpha, T beta, \
                                        const T* x, const T* scale, const T* dy, T* dx) { \
    int before = size / 2, after = (size - 1) / 2; \
    T coef = (T)2 * alpha * beta / (T)size; \
    GRID_STRIDE(i, n) { \
        u64 pos = i % s; int j = (int)((i / s) % c); u64 base = (i / (s * c)) * s * c + pos; \
        T acc = (T)0; \
        for (int q = max(j - after, 0); q <= min(j + before, c - 1); ++q) { \
            u64 e = base + q * s; acc += dy[e] * x[e] * m_pow(scale[e], -beta - (T)1); \
        } \
        dx[i] = dy[i] * m_pow(scale[i], -beta) - coef * x[i] * acc; \
    } \
}
LRN_KERNELS(float, f32)
LRN_KERNELS(double, f64)
"#,
};
