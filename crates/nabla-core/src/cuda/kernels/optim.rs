//! In-place optimiser updates on contiguous buffers, the same arithmetic in the same order as
//! the CPU's `sgd_update_`/`adam_update_` (ops/update.rs), so trajectories agree bit for bit
//! with f32 and f64 on both devices.
//!
//! NOTE: compiled with `--fmad=false`: a fused multiply-add rounds once where the CPU rounds
//! twice, and would make the GPU's parameters drift from the CPU's in the last bits.
//!
//! ```text
//! SGD:   d ← g + λp;  b ← μb + c·d;  d ← d + μb (Nesterov) or b;  p ← p − ηd
//! Adam:  p ← p(1 − ηλ) (AdamW) or g ← g + λp;  m ← lerp(m, g, 1 − β₁);  v ← β₂v + (1 − β₂)g²;
//!        v̄ ← max(v̄, v) (AMSGrad);  p ← p + (−η/(1 − β₁ᵗ))·m / (√v̄ / √(1 − β₂ᵗ) + ε)
//! ```

use super::KernelModule;

pub static OPTIM: KernelModule = KernelModule {
    name: "optim",
    fmad: false,
    source: r#"
template <typename T> __device__ void sgd(u64 n, T* p, const T* g, T* buf, T lr, T wd, T mu, T c, int nesterov,
                                          int has_buf) {
    GRID_STRIDE(i, n) {
        T pi = p[i];
        T d = wd != (T)0 ? g[i] + wd * pi : g[i];
        if (has_buf) {
            T nb = c == (T)1 ? buf[i] * mu + d : buf[i] * mu + d * c;
            buf[i] = nb;
            d = nesterov ? d + nb * mu : nb;
        }
        p[i] = pi + -lr * d;
    }
}

template <typename T> __device__ void adam(u64 n, T* p, const T* g, T* m, T* v, T* vmax, T b1w, T b1w_rest, T b2,
                                           T b2w, T wd, T step_size, T bc2_sqrt, T eps, T shrink, int decoupled,
                                           int amsgrad) {
    GRID_STRIDE(i, n) {
        T pi = p[i];
        T gi = g[i];
        if (wd != (T)0) {
            if (decoupled) pi *= shrink;
            else gi += wd * pi;
        }
        T mo = m[i];
        T mi = b1w < (T)0.5 ? mo + b1w * (gi - mo) : gi - (gi - mo) * b1w_rest;
        T vi = v[i] * b2 + b2w * gi * gi;
        m[i] = mi;
        v[i] = vi;
        T vd = vi;
        if (amsgrad) { T x = vmax[i] >= vi ? vmax[i] : vi; vmax[i] = x; vd = x; }
        T denom = m_sqrt(vd) / bc2_sqrt + eps;
        p[i] = pi + (-step_size * mi) / denom;
    }
}

#define OPTIM_KERNELS(T, TN) \
    extern "C" __global__ void sgd_##TN(u64 n, T* p, const T* g, T* buf, T lr, T wd, T mu, T c, int nesterov, \
                                        int has_buf) { sgd<T>(n, p, g, buf, lr, wd, mu, c, nesterov, has_buf); } \
    extern "C" __global__ void adam_##TN(u64 n, T* p, const T* g, T* m, T* v, T* vmax, T b1w, T b1w_rest, T b2, \
                                         T b2w, T wd, T step_size, T bc2_sqrt, T eps, T shrink, int decoupled, \
                                         int amsgrad) { \
        adam<T>(n, p, g, m, v, vmax, b1w, b1w_rest, b2, b2w, wd, step_size, bc2_sqrt, eps, shrink, decoupled, amsgrad); }
OPTIM_KERNELS(float, f32)
OPTIM_KERNELS(double, f64)
"#,
};
