//! Shared by the timing examples (a folder without main.rs, so Cargo builds no example of it).

use std::time::Instant;

/// Milliseconds per call of `f`: `warmup` calls first, then the median of `rounds` rounds of
/// `reps` calls each (the machines are noisy; the median drops the disturbed rounds).
pub fn median_ms(warmup: usize, rounds: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut ts: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() * 1e3 / reps as f64
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    ts[rounds / 2]
}
