//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as
//! easy as 1, 2, 3", SC 2011). Each 128-bit counter gives four independent 32-bit words, so a
//! draw depends only on `(seed, offset, element index)`: results are reproducible for a seed
//! and do not depend on the launch configuration.
//!
//! Counter of element group `g`: `(g_lo, g_hi, offset_lo, offset_hi)`, key `(seed_lo, seed_hi)`.
//! f32 uses one word per element (4 elements per counter), f64 two words (2 per counter);
//! a call of `n` elements consumes `ceil(n / per_counter)` counters, and the caller advances
//! `offset` between calls (e.g. by 1 per call: counters of one call never exceed 2^64).
//!
//! Uniform in [0, 1): f32 `(w >> 8) · 2⁻²⁴`, f64 `((w0 << 21) ^ (w1 >> 11)) · 2⁻⁵³`.
//! Normal: Box–Muller on pairs of uniforms, `√(−2 ln(1 − u₁)) · cos(2π u₂)` (and sin).

use super::KernelModule;

pub static RANDOM: KernelModule = KernelModule {
    name: "random",
    fmad: true,
    source: r#"
struct Words { u32 w[4]; };

__device__ __forceinline__ Words philox4x32_10(u64 group, u64 offset, u64 seed) {
    u32 c0 = (u32)group, c1 = (u32)(group >> 32), c2 = (u32)offset, c3 = (u32)(offset >> 32);
    u32 k0 = (u32)seed, k1 = (u32)(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        u32 hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        u32 hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
    Words r; r.w[0] = c0; r.w[1] = c1; r.w[2] = c2; r.w[3] = c3;
    return r;
}

/* The k-th uniform in [0, 1) of a counter's words. */
__device__ __forceinline__ float uniform_word(const Words& r, int k, float) {
    return (float)(r.w[k] >> 8) * 5.9604644775390625e-8f;
}
__device__ __forceinline__ double uniform_word(const Words& r, int k, double) {
    u64 bits = ((u64)r.w[2 * k] << 21) ^ (u64)(r.w[2 * k + 1] >> 11);
    return (double)bits * 1.1102230246251565e-16;
}

/* Calls body(i, u) for every element with its uniform u. */
#define PHILOX_LOOP(T, n, seed, offset, BODY) \
    const int per = sizeof(T) == 4 ? 4 : 2; \
    GRID_STRIDE(g, (n + per - 1) / per) { \
        Words r = philox4x32_10(g, offset, seed); \
        for (int k = 0; k < per; ++k) { u64 i = g * per + k; if (i < n) { T u = uniform_word(r, k, (T)0); BODY } } \
    }

#define RANDOM_KERNELS(T, TN) \
    extern "C" __global__ void dropout_mask_##TN(u64 n, u64 seed, u64 offset, T keep, T scale, T* mask) { \
        PHILOX_LOOP(T, n, seed, offset, { mask[i] = u < keep ? scale : (T)0; }) \
    } \
    extern "C" __global__ void uniform_##TN(u64 n, u64 seed, u64 offset, T lo, T hi, T* y) { \
        PHILOX_LOOP(T, n, seed, offset, { T v = lo + (hi - lo) * u; y[i] = v < hi ? v : lo; }) \
    } \
    extern "C" __global__ void normal_##TN(u64 n, u64 seed, u64 offset, T mean, T std, T* y) { \
        const int per = sizeof(T) == 4 ? 4 : 2; \
        GRID_STRIDE(g, (n + per - 1) / per) { \
            Words r = philox4x32_10(g, offset, seed); \
            for (int k = 0; k < per; k += 2) { \
                T u1 = uniform_word(r, k, (T)0), u2 = uniform_word(r, k + 1, (T)0); \
                T rad = m_sqrt((T)-2 * m_log((T)1 - u1)), th = (T)6.283185307179586 * u2; \
                u64 i = g * per + k; \
                if (i < n) y[i] = mean + std * rad * m_cos(th); \
                if (i + 1 < n) y[i + 1] = mean + std * rad * m_sin(th); \
            } \
        } \
    }
RANDOM_KERNELS(float, f32)
RANDOM_KERNELS(double, f64)
"#,
};
