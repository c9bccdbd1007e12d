//! Which SIMD copy of a kernel the CPU can run, found at run time.

/// True when this CPU can run the AVX2 + FMA copies of the kernels.
///
/// NOTE: the crate is compiled for the baseline x86-64 (SSE2), so without runtime dispatch the
/// loops run at a quarter of the machine's width (the `gemm` crate dispatches the same way).
/// The feature boundary must sit inside each rayon closure: closures do not inherit it.
pub(crate) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The instruction set a pass runs its f32 kernels with, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The generic loops (any float type, any CPU).
    Portable,
    /// AVX2 and FMA (direct_avx2.rs, and the AVX2 loops of the other algorithms).
    Avx2,
    /// AVX-512 where a kernel has a copy (direct_avx512.rs: 16 and 32 channels), else AVX2.
    Avx512,
}

impl Isa {
    /// The best copy this CPU can run.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if has_fma() && std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if has_fma() { Isa::Avx2 } else { Isa::Portable }
    }

    /// Every instruction set this CPU can run (the tests compare their kernels).
    pub fn supported() -> Vec<Isa> {
        match Isa::detect() {
            Isa::Avx512 => vec![Isa::Portable, Isa::Avx2, Isa::Avx512],
            Isa::Avx2 => vec![Isa::Portable, Isa::Avx2],
            Isa::Portable => vec![Isa::Portable],
        }
    }
}
