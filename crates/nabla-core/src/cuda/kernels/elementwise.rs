//! Element-wise kernels: strided unary maps, broadcasting binary maps, `where`, strided copy
//! with dtype conversion (contiguous, cast, cat/narrow assignment), fill and 2-d padding.
//!
//! Every map writes a contiguous output `y[i]`, `i` row-major over the (broadcast) shape, and
//! reads each input at `strided_offset(s, i)`. The op is an `int` code (`UnaryOp as i32`, ...):
//! the switch is uniform across a launch, so it costs a few instructions per element of a
//! memory-bound loop, and it keeps the number of compiled kernels small.

use super::KernelModule;

/// Unary maps. Codes and formulas (p0, p1 are scalar parameters):
/// 0 −x · 1 eˣ · 2 ln x · 3 √x · 4 |x| · 5 relu = x·𝟙(x > 0) · 6 σ(x) = 1/(1+e⁻ˣ) · 7 tanh x ·
/// 8 softplus = ln(1+eˣ) (x for x > 20) · 9 leaky_relu = x > 0 ? x : p0·x · 10 affine = p0·x + p1 ·
/// 11 xᵖ⁰ · 12 clamp(x, p0, p1) = min(max(x, p0), p1) (NaN passes; p1 wins when p0 > p1, as PyTorch) · 13 1/x · 14 x² · 15 sin x · 16 cos x · 17 sign x.
/// i64 supports 0, 4, 5, 10, 12, 14, 17.
pub static UNARY: KernelModule = KernelModule {
    name: "unary",
    fmad: true,
    source: r#"
template <typename T> __device__ __forceinline__ T unary_float(int op, T x, T p0, T p1) {
    switch (op) {
    case 0: return -x;
    case 1: return m_exp(x);
    case 2: return m_log(x);
    case 3: return m_sqrt(x);
    case 4: return m_abs(x);
    case 5: return x > (T)0 ? x : (T)0;
    case 6: if (x >= (T)0) { return (T)1 / ((T)1 + m_exp(-x)); } else { T e = m_exp(x); return e / ((T)1 + e); }
    case 7: return m_tanh(x);
    case 8: return x > (T)20 ? x : m_log1p(m_exp(x));
    case 9: return x > (T)0 ? x : p0 * x;
    case 10: return x * p0 + p1;
    case 11: return m_pow(x, p0);
    case 12: { T y = x < p0 ? p0 : x; return y > p1 ? p1 : y; }
    case 13: return (T)1 / x;
    case 14: return x * x;
    case 15: return m_sin(x);
    case 16: return m_cos(x);
    case 17: return x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : x);
    default: return x;
    }
}

__device__ __forceinline__ i64 unary_int(int op, i64 x, i64 p0, i64 p1) {
    switch (op) {
    case 0: return -x;
    case 4: return x < 0 ? -x : x;
    case 5: return x > 0 ? x : 0;
    case 10: return x * p0 + p1;
    case 12: { i64 y = x < p0 ? p0 : x; return y > p1 ? p1 : y; }
    case 14: return x * x;
    case 17: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    default: return x;
    }
}

#define UNARY_KERNEL(NAME, T, APPLY) \
    extern "C" __global__ void NAME(int op, u64 n, Strided s, const T* x, T* y, T p0, T p1) { \
        GRID_STRIDE(i, n) { y[i] = APPLY(op, x[strided_offset(s, i)], p0, p1); } \
    }
UNARY_KERNEL(unary_f32, float, unary_float<float>)
UNARY_KERNEL(unary_f64, double, unary_float<double>)
UNARY_KERNEL(unary_i64, i64, unary_int)
"#,
};

/// Binary maps with broadcasting (each operand has its own strides over the output shape).
/// Codes: 0 a+b · 1 a−b · 2 a·b · 3 a/b · 4 max (NaN-propagating) · 5 min · 6 aᵇ ·
/// 7 a=b · 8 a≠b · 9 a<b · 10 a≤b · 11 a>b · 12 a≥b (1 or 0 in the dtype) ·
/// 13 relu backward (a = x, b = δy): δy·𝟙(x > 0) · 14 sigmoid backward (a = y, b = δy): δy·y(1−y) ·
/// 15 tanh backward (a = y, b = δy): δy(1−y²).  i64 supports 0–2, 4, 5, 7–12.
pub static BINARY: KernelModule = KernelModule {
    name: "binary",
    fmad: true,
    source: r#"
template <typename T> __device__ __forceinline__ T binary_apply(int op, T a, T b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return (is_nan(a) || a > b) ? a : b;
    case 5: return (is_nan(a) || a < b) ? a : b;
    case 7: return a == b ? (T)1 : (T)0;
    case 8: return a != b ? (T)1 : (T)0;
    case 9: return a < b ? (T)1 : (T)0;
    case 10: return a <= b ? (T)1 : (T)0;
    case 11: return a > b ? (T)1 : (T)0;
    case 12: return a >= b ? (T)1 : (T)0;
    default: return a;
    }
}

template <typename T> __device__ __forceinline__ T binary_float(int op, T a, T b) {
    switch (op) {
    case 6: return m_pow(a, b);
    case 13: return a > (T)0 ? b : (T)0;
    case 14: return b * a * ((T)1 - a);
    case 15: return b * ((T)1 - a * a);
    default: return binary_apply<T>(op, a, b);
    }
}

#define BINARY_KERNEL(NAME, T, APPLY) \
    extern "C" __global__ void NAME(int op, u64 n, Strided sa, Strided sb, const T* a, const T* b, T* y) { \
        GRID_STRIDE(i, n) { y[i] = APPLY(op, a[strided_offset(sa, i)], b[strided_offset(sb, i)]); } \
    }
BINARY_KERNEL(binary_f32, float, binary_float<float>)
BINARY_KERNEL(binary_f64, double, binary_float<double>)
BINARY_KERNEL(binary_i64, i64, binary_apply<i64>)
"#,
};

/// `y = c ≠ 0 ? a : b`, broadcasting; the condition may have any dtype (`where_{c}_{t}`).
pub static WHERE: KernelModule = KernelModule {
    name: "where",
    fmad: true,
    source: r#"
#define WHERE_KERNEL(C, CN, T, TN) \
    extern "C" __global__ void where_##CN##_##TN(u64 n, Strided sc, Strided sa, Strided sb, \
                                                 const C* c, const T* a, const T* b, T* y) { \
        GRID_STRIDE(i, n) { y[i] = c[strided_offset(sc, i)] != (C)0 ? a[strided_offset(sa, i)] : b[strided_offset(sb, i)]; } \
    }
#define WHERE_ALL(T, TN) WHERE_KERNEL(float, f32, T, TN) WHERE_KERNEL(double, f64, T, TN) WHERE_KERNEL(i64, i64, T, TN)
WHERE_ALL(float, f32)
WHERE_ALL(double, f64)
WHERE_ALL(i64, i64)
"#,
};

/// Strided copy with conversion: `dst[off_d(i)] = (D) src[off_s(i)]` (`copy_{s}_{d}`).
/// Float → i64 truncates toward zero (as PyTorch). `fill_{t}`: `y[i] = v`.
/// `pad2d_{t}`: pads `[NC, H, W]` (contiguous) to `[NC, OH, OW]` with the input row/column of
/// output position `(i − top, j − left)` chosen by the mode: 0 zeros, 1 reflect (mirror without
/// repeating the edge, needs pad < size), 2 replicate (clamp), 3 circular (mod size).
/// `pad2d_backward_{t}`: its adjoint, `dx[src(i,j)] += dy[i,j]` with atomics (dx zeroed first;
/// the summation order, and so the last bits, may vary from run to run).
pub static COPY: KernelModule = KernelModule {
    name: "copy",
    fmad: true,
    source: r#"
#define COPY_KERNEL(S, SN, D, DN) \
    extern "C" __global__ void copy_##SN##_##DN(u64 n, Strided ss, Strided sd, const S* src, D* dst) { \
        GRID_STRIDE(i, n) { dst[strided_offset(sd, i)] = (D)src[strided_offset(ss, i)]; } \
    }
#define COPY_ALL(S, SN) COPY_KERNEL(S, SN, float, f32) COPY_KERNEL(S, SN, double, f64) COPY_KERNEL(S, SN, i64, i64)
COPY_ALL(float, f32)
COPY_ALL(double, f64)
COPY_ALL(i64, i64)

#define FILL_KERNEL(T, TN) \
    extern "C" __global__ void fill_##TN(u64 n, T* y, T v) { GRID_STRIDE(i, n) { y[i] = v; } }
FILL_KERNEL(float, f32)
FILL_KERNEL(double, f64)
FILL_KERNEL(i64, i64)

/* Source index of padded position p in [-before, size + after) for each mode; -1 means zero. */
__device__ __forceinline__ int pad_source(int mode, int p, int size) {
    if (p >= 0 && p < size) return p;
    switch (mode) {
    case 1: { int q = p < 0 ? -p : 2 * (size - 1) - p; return q; }
    case 2: return p < 0 ? 0 : size - 1;
    case 3: { int q = p % size; return q < 0 ? q + size : q; }
    default: return -1;
    }
}

#define PAD_KERNEL(T, TN) \
    extern "C" __global__ void pad2d_##TN(u64 n, int mode, int h, int w, int oh, int ow, int top, int left, \
                                          const T* x, T* y) { \
        GRID_STRIDE(i, n) { \
            int j = (int)(i % ow); int r = (int)((i / ow) % oh); u64 plane = i / ((u64)ow * oh); \
            int sr = pad_source(mode, r - top, h); int sc = pad_source(mode, j - left, w); \
            y[i] = (sr < 0 || sc < 0) ? (T)0 : x[(plane * h + sr) * w + sc]; \
        } \
    } \
    extern "C" __global__ void pad2d_backward_##TN(u64 n, int mode, int h, int w, int oh, int ow, int top, \
                                                   int left, const T* dy, T* dx) { \
        GRID_STRIDE(i, n) { \
            int j = (int)(i % ow); int r = (int)((i / ow) % oh); u64 plane = i / ((u64)ow * oh); \
            int sr = pad_source(mode, r - top, h); int sc = pad_source(mode, j - left, w); \
            if (sr >= 0 && sc >= 0) atomicAdd(&dx[(plane * h + sr) * w + sc], dy[i]); \
        } \
    }
PAD_KERNEL(float, f32)
PAD_KERNEL(double, f64)
"#,
};
