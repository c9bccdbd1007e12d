//! A small seedable random generator: xoshiro256++ seeded through splitmix64.
//!
//! NOTE: we keep our own generator rather than `rand` so that a seed gives the same numbers
//! across crate upgrades: checkpoints, dropout masks and initial weights must stay
//! reproducible for a run to resume exactly.

use std::cell::RefCell;

/// xoshiro256++ (Blackman & Vigna, 2019). Its state is four words, saved in checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generator {
    s: [u64; 4],
}

/// splitmix64, used to expand a seed into a full state (and by the benchmark peers' shuffles).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Generator {
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = seed;
        Generator {
            s: [
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
                splitmix64(&mut sm),
            ],
        }
    }

    /// The raw state, for checkpoints.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }
    pub fn from_state(s: [u64; 4]) -> Self {
        Generator { s }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Standard normal by the Box–Muller transform (one value per call; simple over fast).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // in (0, 1], so ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Uniform integer in [0, n) (Lemire's multiply-shift; bias below 2^-64·n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

thread_local! {
    /// The default generator. NOTE: one per thread, not one per process: a training loop
    /// runs on one thread, and parallel tests (or programs) that each call `manual_seed` then
    /// draw cannot disturb one another's sequences.
    static DEFAULT: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Seeds this thread's default generator (PyTorch's `torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    DEFAULT.with(|d| *d.borrow_mut() = Some(Generator::seed_from_u64(seed)));
}

/// Runs `f` with this thread's default generator (seeded with 0 unless `manual_seed` was called).
pub fn with_default_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    DEFAULT.with(|d| f(d.borrow_mut().get_or_insert_with(|| Generator::seed_from_u64(0))))
}

/// The state of this thread's default generator (saved in checkpoints).
pub fn default_generator_state() -> [u64; 4] {
    with_default_generator(|g| g.state())
}

/// Restores this thread's default generator (resuming from a checkpoint).
pub fn set_default_generator_state(state: [u64; 4]) {
    DEFAULT.with(|d| *d.borrow_mut() = Some(Generator::from_state(state)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference values of splitmix64 with seed 0 (Vigna's splitmix64.c).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut g = Generator::seed_from_u64(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| g.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }
}
