//! Times the MLP's GEMMs (784-512-256-10, batch 128) through `cpu::gemm` as the matmul op calls
//! it, against the same products split by hand into row or column blocks, one single-threaded
//! GEMM per thread. Run: `cargo run --release -p nabla-core --example gemm_split`
use nabla_core::cpu::gemm::{MatRef, gemm};
use rayon::prelude::*;

mod common;

fn time(f: impl FnMut()) -> f64 {
    common::median_ms(20, 9, 50, f)
}

fn main() {
    nabla_core::runtime::keep_freed_memory();
    let threads = rayon::current_num_threads();
    let val = |len: usize| {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    // (name, m, n, k, lhs transposed, rhs transposed): what matmul sees for each pass.
    let shapes = [
        ("fwd 784→512", 128, 512, 784, false, true),
        ("fwd 512→256", 128, 256, 512, false, true),
        ("δx 256→512", 128, 512, 256, false, false),
        ("δWᵀ 784→512", 784, 512, 128, true, false),
        ("δWᵀ 512→256", 512, 256, 128, true, false),
        ("inf 784→512", 1000, 512, 784, false, true),
        ("inf 512→256", 1000, 256, 512, false, true),
        ("sgemm 256", 256, 256, 256, false, false),
        ("sgemm 512", 512, 512, 512, false, false),
        ("sgemm 1024", 1024, 1024, 1024, false, false),
    ];
    println!(
        "{:<14}{:>10}{:>10}{:>10}   ms (GFLOP/s of the best)",
        "product", "gemm", "rows", "cols"
    );
    for (name, m, n, k, lt, rt) in shapes {
        let (a, b) = (val(m * k), val(k * n));
        let lhs = if lt {
            MatRef {
                data: &a,
                offset: 0,
                rs: 1,
                cs: m,
            }
        } else {
            MatRef {
                data: &a,
                offset: 0,
                rs: k,
                cs: 1,
            }
        };
        let rhs = if rt {
            MatRef {
                data: &b,
                offset: 0,
                rs: 1,
                cs: k,
            }
        } else {
            MatRef {
                data: &b,
                offset: 0,
                rs: n,
                cs: 1,
            }
        };
        let mut dst = vec![0f32; m * n];
        let whole = time(|| gemm(m, n, k, &mut dst, lhs, rhs, false, threads));
        let rows = time(|| {
            let per = m.div_ceil(threads);
            dst.par_chunks_mut(per * n).enumerate().for_each(|(i, d)| {
                let rows = d.len() / n;
                let l = MatRef {
                    offset: i * per * lhs.rs,
                    ..lhs
                };
                gemm(rows, n, k, d, l, rhs, false, 1);
            });
        });
        let mut cols_dst: Vec<Vec<f32>> = (0..threads).map(|_| vec![0f32; m * n.div_ceil(threads)]).collect();
        let cols = time(|| {
            let per = n.div_ceil(threads);
            cols_dst.par_iter_mut().enumerate().for_each(|(i, d)| {
                let cols = per.min(n - i * per);
                let r = MatRef {
                    offset: i * per * rhs.cs,
                    ..rhs
                };
                gemm(m, cols, k, d, lhs, r, false, 1);
            });
        });
        let best = whole.min(rows).min(cols);
        println!(
            "{name:<14}{whole:>10.3}{rows:>10.3}{cols:>10.3}   ({:.0})",
            2.0 * (m * n * k) as f64 / best / 1e6
        );
    }
}
