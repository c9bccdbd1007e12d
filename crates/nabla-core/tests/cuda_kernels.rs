//! CUDA kernels (feature `cuda`). The NVRTC test needs no GPU, only libnvrtc; the others compare
//! the GPU with a straightforward host computation on random inputs (non-contiguous layouts
//! included) and are skipped, saying so, where no device is present.
#![cfg(feature = "cuda")]

use nabla_core::backend::params::{BinaryOp, LrnParams, PoolGeometry, PoolKind, ReduceOp, UnaryOp};
use nabla_core::cuda::context::Library;
use nabla_core::cuda::ops;
use nabla_core::cuda::{self as cuda, CudaStorage, cudnn, kernels, matmul};
use nabla_core::storage::CpuStorage;
use nabla_core::{AdamUpdate, Conv2dOptions, DType, Layout, PaddingMode, SgdUpdate, Shape, Tensor};

// ---------------------------------------------------------------------------------------------
// Helpers

/// True when a device is present; otherwise reports the skip on the test output (and fails
/// under `NABLA_REQUIRE_GPU=1`).
#[track_caller]
fn gpu() -> bool {
    nabla_core::testing::gpu_or_skip(std::panic::Location::caller().to_string().as_str()).is_some()
}

/// Deterministic pseudo-random values in [lo, hi) (xorshift64*).
fn rand_vec(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let u = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            lo + (hi - lo) * u
        })
        .collect()
}

fn to_cpu_storage(v: &[f64], dtype: DType) -> CpuStorage {
    match dtype {
        DType::F32 => CpuStorage::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F64 => CpuStorage::F64(v.to_vec()),
        DType::I64 => CpuStorage::I64(v.iter().map(|&x| x as i64).collect()),
    }
}

fn up(v: &[f64], dtype: DType) -> CudaStorage {
    CudaStorage::from_cpu(0, &to_cpu_storage(v, dtype)).unwrap()
}

fn down(s: &CudaStorage) -> Vec<f64> {
    match s.to_cpu().unwrap() {
        CpuStorage::F32(v) => v.into_iter().map(f64::from).collect(),
        CpuStorage::F64(v) => v,
        CpuStorage::I64(v) => v.into_iter().map(|x| x as f64).collect(),
    }
}

/// The elements of `data` seen through `l`, row-major.
fn view(data: &[f64], l: &Layout) -> Vec<f64> {
    l.offsets().map(|o| data[o]).collect()
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(ok, "{what}: element {i}: GPU {g}, host {w}");
    }
}

/// A `[2, 3, 4]` buffer of 24 values seen as the permuted `[4, 2, 3]` (not contiguous).
fn permuted() -> (Vec<f64>, Layout) {
    (
        rand_vec(24, 1, -2.0, 2.0),
        Layout::contiguous([2, 3, 4]).permute(&[2, 0, 1]),
    )
}

// ---------------------------------------------------------------------------------------------
// Without a GPU

/// Every kernel module compiles through NVRTC (for the default architecture and for sm_90).
#[test]
fn nvrtc_compiles_every_kernel() {
    if !Library::Nvrtc.is_present() {
        println!("skipped: libnvrtc not found");
        return;
    }
    let mut failures = Vec::new();
    for arch in [None, Some("compute_90")] {
        for m in kernels::MODULES {
            match kernels::compile(m, arch) {
                Ok(ptx) => {
                    let text = ptx.to_src();
                    let n = text.matches(".entry").count();
                    let target = arch.unwrap_or("default");
                    println!(
                        "{:>8} {target:<12} {n:>3} kernels, {:>7} bytes of PTX",
                        m.name,
                        text.len()
                    );
                    if let Ok(dir) = std::env::var("NABLA_PTX_DIR") {
                        std::fs::write(format!("{dir}/{}_{target}.ptx", m.name), text).unwrap();
                    }
                }
                Err(e) => failures.push(format!("{} ({arch:?}): {e}", m.name)),
            }
        }
    }
    assert!(failures.is_empty(), "NVRTC errors:\n{}", failures.join("\n"));
}

/// Without a driver or device, asking for one is an error value naming the cause, not a panic.
#[test]
fn missing_driver_or_device_is_an_error() {
    let r = CudaStorage::from_cpu(0, &CpuStorage::F32(vec![1.0]));
    if cuda::is_available() {
        assert!(r.is_ok());
        assert!(CudaStorage::from_cpu(cuda::device_count().unwrap(), &CpuStorage::F32(vec![1.0])).is_err());
        return;
    }
    let msg = r.unwrap_err().to_string();
    println!("no device: {msg}");
    if !Library::Driver.is_present() {
        assert!(msg.contains("libcuda"), "{msg}");
    }
    assert_eq!(cuda::memory_stats(0), cuda::MemoryStats::default());
    assert!(cuda::empty_cache(0).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Storage and allocator

#[test]
fn storage_round_trip_zeros_full_clone() {
    if !gpu() {
        return;
    }
    for dt in [DType::F32, DType::F64, DType::I64] {
        let v = rand_vec(1000, 2, -100.0, 100.0)
            .into_iter()
            .map(f64::round)
            .collect::<Vec<_>>();
        let s = up(&v, dt);
        assert_eq!(
            (s.dtype(), s.len(), s.device()),
            (dt, 1000, nabla_core::Device::Cuda(0))
        );
        assert_close("round trip", &down(&s), &v, 0.0);
        assert_close("clone", &down(&s.try_clone().unwrap()), &v, 0.0);
        assert_close("zeros", &down(&CudaStorage::zeros(0, dt, 7).unwrap()), &[0.0; 7], 0.0);
        assert_close(
            "full",
            &down(&CudaStorage::full(0, dt, 5, 3.0).unwrap()),
            &[3.0; 5],
            0.0,
        );
    }
    assert!(
        CudaStorage::from_cpu(0, &CpuStorage::F32(vec![]))
            .unwrap()
            .to_cpu()
            .unwrap()
            .is_empty()
    );
}

/// A loop that frees and reallocates the same sizes calls cuMemAlloc only in its first pass.
#[test]
fn allocator_reuses_blocks() {
    if !gpu() {
        return;
    }
    let _warm = up(&[1.0], DType::F32);
    let step = || {
        let a = CudaStorage::zeros(0, DType::F32, 1 << 20).unwrap();
        let b = CudaStorage::zeros(0, DType::F64, 1000).unwrap();
        drop((a, b));
    };
    step();
    let before = cuda::memory_stats(0);
    for _ in 0..10 {
        step();
    }
    let after = cuda::memory_stats(0);
    assert_eq!(before.device_allocations, after.device_allocations);
    assert_eq!(before.in_use, after.in_use);
    assert!(after.peak_in_use >= 4 << 20);
    cuda::empty_cache(0).unwrap();
    assert_eq!(cuda::memory_stats(0).cached, 0);
}

// ---------------------------------------------------------------------------------------------
// Element-wise

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn unary_ops_match_host() {
    if !gpu() {
        return;
    }
    let (data, l) = permuted();
    let cases: Vec<(UnaryOp, fn(f64) -> f64)> = vec![
        (UnaryOp::Neg, |x| -x),
        (UnaryOp::Exp, f64::exp),
        (UnaryOp::Log, |x| x.abs().ln()),
        (UnaryOp::Sqrt, |x| x.abs().sqrt()),
        (UnaryOp::Abs, f64::abs),
        (UnaryOp::Relu, |x| x.max(0.0)),
        (UnaryOp::Sigmoid, sigmoid),
        (UnaryOp::Tanh, f64::tanh),
        (UnaryOp::Softplus, |x| if x > 20.0 { x } else { x.exp().ln_1p() }),
        (UnaryOp::Affine { mul: 2.0, add: -1.0 }, |x| 2.0 * x - 1.0),
        (UnaryOp::Powf(3.0), |x| x.powi(3)),
        (UnaryOp::Clamp { min: -0.5, max: 0.5 }, |x| x.clamp(-0.5, 0.5)),
        (UnaryOp::Recip, |x| 1.0 / x),
        (UnaryOp::Sqr, |x| x * x),
        (UnaryOp::Sin, f64::sin),
        (UnaryOp::Cos, f64::cos),
        (UnaryOp::Sign, f64::signum),
    ];
    for dt in [DType::F32, DType::F64] {
        let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
        for (op, f) in &cases {
            // Log and sqrt of |x|: feed the absolute values.
            let input: Vec<f64> = match op {
                UnaryOp::Log | UnaryOp::Sqrt => data.iter().map(|x| x.abs()).collect(),
                _ => data.clone(),
            };
            let x = up(&input, dt);
            let y = ops::unary(*op, &x, &l).unwrap();
            let want: Vec<f64> = view(&input, &l).into_iter().map(f).collect();
            assert_close(&format!("{op:?} {dt:?}"), &down(&y), &want, tol);
        }
    }
    let xi = up(&[-3.0, 0.0, 4.0], DType::I64);
    let yi = ops::unary(UnaryOp::Abs, &xi, &Layout::contiguous([3])).unwrap();
    assert_close("abs i64", &down(&yi), &[3.0, 0.0, 4.0], 0.0);
    assert!(ops::unary(UnaryOp::Exp, &xi, &Layout::contiguous([3])).is_err());
}

#[test]
fn binary_ops_broadcast_and_match_host() {
    if !gpu() {
        return;
    }
    // a: [4, 2, 3] permuted view; b: a [1, 2, 3] row broadcast to [4, 2, 3] (stride 0).
    let (ad, al) = permuted();
    let bd = rand_vec(6, 3, 0.5, 2.0);
    let bl = Layout::contiguous([1, 2, 3])
        .broadcast_to("test", &Shape::from([4, 2, 3]))
        .unwrap();
    let cases: Vec<(BinaryOp, fn(f64, f64) -> f64)> = vec![
        (BinaryOp::Add, |a, b| a + b),
        (BinaryOp::Sub, |a, b| a - b),
        (BinaryOp::Mul, |a, b| a * b),
        (BinaryOp::Div, |a, b| a / b),
        (BinaryOp::Maximum, f64::max),
        (BinaryOp::Minimum, f64::min),
        (BinaryOp::Pow, |a, b| a.abs().powf(b)),
        (BinaryOp::Eq, |a, b| (a == b) as i32 as f64),
        (BinaryOp::Ne, |a, b| (a != b) as i32 as f64),
        (BinaryOp::Lt, |a, b| (a < b) as i32 as f64),
        (BinaryOp::Le, |a, b| (a <= b) as i32 as f64),
        (BinaryOp::Gt, |a, b| (a > b) as i32 as f64),
        (BinaryOp::Ge, |a, b| (a >= b) as i32 as f64),
        (BinaryOp::ReluBackward, |x, d| if x > 0.0 { d } else { 0.0 }),
        (BinaryOp::SigmoidBackward, |y, d| d * y * (1.0 - y)),
        (BinaryOp::TanhBackward, |y, d| d * (1.0 - y * y)),
    ];
    for dt in [DType::F32, DType::F64] {
        let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
        for (op, f) in &cases {
            let a_in: Vec<f64> = if *op == BinaryOp::Pow {
                ad.iter().map(|x| x.abs()).collect()
            } else {
                ad.clone()
            };
            let (a, b) = (up(&a_in, dt), up(&bd, dt));
            let y = ops::binary(*op, &a, &al, &b, &bl).unwrap();
            let want: Vec<f64> = view(&a_in, &al)
                .into_iter()
                .zip(view(&bd, &bl))
                .map(|(x, y)| f(x, y))
                .collect();
            assert_close(&format!("{op:?} {dt:?}"), &down(&y), &want, tol);
        }
    }
    let bad = ops::binary(BinaryOp::Add, &up(&ad, DType::F32), &al, &up(&bd, DType::F64), &bl);
    assert!(bad.is_err());
}

#[test]
fn where_copy_cast_fill_match_host() {
    if !gpu() {
        return;
    }
    let (ad, al) = permuted();
    let cd: Vec<f64> = rand_vec(24, 4, 0.0, 1.0)
        .into_iter()
        .map(|u| (u > 0.5) as i32 as f64)
        .collect();
    let cl = Layout::contiguous([4, 2, 3]);
    let bd = rand_vec(24, 5, -1.0, 1.0);
    for cdt in [DType::F32, DType::F64, DType::I64] {
        let y = ops::where_cond(&up(&cd, cdt), &cl, &up(&ad, DType::F64), &al, &up(&bd, DType::F64), &cl).unwrap();
        let want: Vec<f64> = view(&ad, &al)
            .into_iter()
            .zip(&bd)
            .zip(&cd)
            .map(|((a, &b), &c)| if c != 0.0 { a } else { b })
            .collect();
        assert_close("where", &down(&y), &want, 0.0);
    }
    // contiguous and cast
    let x = up(&ad, DType::F64);
    assert_close(
        "contiguous",
        &down(&ops::contiguous(&x, &al).unwrap()),
        &view(&ad, &al),
        0.0,
    );
    let xi = ops::cast(&x, &al, DType::I64).unwrap();
    assert_eq!(xi.dtype(), DType::I64);
    assert_close(
        "cast → i64",
        &down(&xi),
        &view(&ad, &al).into_iter().map(f64::trunc).collect::<Vec<_>>(),
        0.0,
    );
    // cat along dim 1: write [2, 3] and [2, 5] into a [2, 8] destination through narrow views.
    let (p, q) = (rand_vec(6, 6, 0.0, 1.0), rand_vec(10, 7, 0.0, 1.0));
    let mut dst = CudaStorage::zeros(0, DType::F32, 16).unwrap();
    let dl = Layout::contiguous([2, 8]);
    ops::copy_strided(
        &up(&p, DType::F32),
        &Layout::contiguous([2, 3]),
        &mut dst,
        &dl.narrow(1, 0, 3),
    )
    .unwrap();
    ops::copy_strided(
        &up(&q, DType::F32),
        &Layout::contiguous([2, 5]),
        &mut dst,
        &dl.narrow(1, 3, 5),
    )
    .unwrap();
    let mut want = Vec::new();
    for r in 0..2 {
        want.extend_from_slice(&p[r * 3..r * 3 + 3]);
        want.extend_from_slice(&q[r * 5..r * 5 + 5]);
    }
    assert_close("cat", &down(&dst), &want, 1e-7);
    let mut f = CudaStorage::zeros(0, DType::I64, 9).unwrap();
    ops::fill(&mut f, -7.0).unwrap();
    assert_close("fill", &down(&f), &[-7.0; 9], 0.0);
}

#[test]
fn pad2d_modes_and_adjoint_match_host() {
    if !gpu() {
        return;
    }
    let (h, w) = (3usize, 4usize);
    let x = rand_vec(2 * h * w, 8, -1.0, 1.0);
    let pad = (2, 1, 1, 3);
    let (oh, ow) = (h + 3, w + 4);
    for (mode, code) in [
        (PaddingMode::Zeros, 0),
        (PaddingMode::Reflect, 1),
        (PaddingMode::Replicate, 2),
        (PaddingMode::Circular, 3),
    ] {
        let src = |p: isize, size: usize| -> Option<usize> {
            let s = size as isize;
            if (0..s).contains(&p) {
                return Some(p as usize);
            }
            match code {
                1 => Some(if p < 0 { -p } else { 2 * (s - 1) - p } as usize),
                2 => Some(p.clamp(0, s - 1) as usize),
                3 => Some(p.rem_euclid(s) as usize),
                _ => None,
            }
        };
        let mut want = vec![0.0; 2 * oh * ow];
        let mut adj = vec![0.0; 2 * h * w];
        let dy = rand_vec(2 * oh * ow, 9, -1.0, 1.0);
        for pl in 0..2 {
            for i in 0..oh {
                for j in 0..ow {
                    if let (Some(r), Some(c)) = (src(i as isize - 2, h), src(j as isize - 1, w)) {
                        want[(pl * oh + i) * ow + j] = x[(pl * h + r) * w + c];
                        adj[(pl * h + r) * w + c] += dy[(pl * oh + i) * ow + j];
                    }
                }
            }
        }
        let y = ops::pad2d(&up(&x, DType::F64), &Layout::contiguous([1, 2, h, w]), pad, mode).unwrap();
        assert_close(&format!("pad {mode:?}"), &down(&y), &want, 0.0);
        let dx = ops::pad2d_backward(&up(&dy, DType::F64), &[1, 2, h, w], pad, mode).unwrap();
        assert_close(&format!("pad backward {mode:?}"), &down(&dx), &adj, 1e-12);
    }
}

// ---------------------------------------------------------------------------------------------
// Reductions, softmax, losses

#[test]
fn reductions_match_host() {
    if !gpu() {
        return;
    }
    // A [40, 3, 100] tensor seen transposed as [100, 3, 40] covers both kernels (r < 64, r ≥ 64).
    let data = rand_vec(12000, 10, -3.0, 3.0);
    let l = Layout::contiguous([40, 3, 100]).permute(&[2, 1, 0]);
    let dims = l.dims().to_vec();
    let v = view(&data, &l);
    for red in [vec![0usize], vec![1], vec![2], vec![0, 2], vec![0, 1, 2]] {
        let out_dims: Vec<usize> = dims
            .iter()
            .enumerate()
            .map(|(i, &d)| if red.contains(&i) { 1 } else { d })
            .collect();
        let n_out: usize = out_dims.iter().product();
        // Host: group every element by its output index; j counts within the reduced dims.
        let mut groups: Vec<Vec<f64>> = vec![Vec::new(); n_out];
        for (flat, &x) in v.iter().enumerate() {
            let (mut rem, mut o, mut stride) = (flat, 0, 1);
            let mut idx = [0; 3];
            for d in (0..3).rev() {
                idx[d] = rem % dims[d];
                rem /= dims[d];
            }
            for d in (0..3).rev() {
                if !red.contains(&d) {
                    o += idx[d] * stride;
                }
                stride *= out_dims[d];
            }
            groups[o].push(x);
        }
        for dt in [DType::F32, DType::F64] {
            let x = up(&data, dt);
            let tol = if dt == DType::F32 { 1e-4 } else { 1e-12 };
            let arg = |g: &Vec<f64>, max: bool| {
                let mut best = 0;
                for (i, &x) in g.iter().enumerate() {
                    if (max && x > g[best]) || (!max && x < g[best]) {
                        best = i;
                    }
                }
                best as f64
            };
            let cases: Vec<(ReduceOp, Box<dyn Fn(&Vec<f64>) -> f64>)> = vec![
                (ReduceOp::Sum, Box::new(|g| g.iter().sum())),
                (ReduceOp::Mean, Box::new(|g| g.iter().sum::<f64>() / g.len() as f64)),
                (ReduceOp::Max, Box::new(|g| g.iter().cloned().fold(f64::MIN, f64::max))),
                (ReduceOp::Min, Box::new(|g| g.iter().cloned().fold(f64::MAX, f64::min))),
                (ReduceOp::ArgMax, Box::new(move |g| arg(g, true))),
                (ReduceOp::ArgMin, Box::new(move |g| arg(g, false))),
            ];
            for (op, f) in &cases {
                let y = ops::reduce(*op, &x, &l, &red).unwrap();
                // f32 data: the host reduces the f32-rounded values.
                let g32: Vec<Vec<f64>> = groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|&x| if dt == DType::F32 { x as f32 as f64 } else { x })
                            .collect()
                    })
                    .collect();
                let want: Vec<f64> = g32.iter().map(f).collect();
                assert_close(&format!("{op:?} over {red:?} {dt:?}"), &down(&y), &want, tol);
            }
        }
    }
}

#[test]
fn softmax_and_cross_entropy_match_host() {
    if !gpu() {
        return;
    }
    for (rows, cols) in [(5usize, 10usize), (3, 1000)] {
        let x = rand_vec(rows * cols, 11, -5.0, 5.0);
        let dy = rand_vec(rows * cols, 12, -1.0, 1.0);
        let targets: Vec<f64> = (0..rows).map(|r| ((r * 7) % cols) as f64).collect();
        let (mut sm, mut lsm, mut loss, mut grad) = (vec![], vec![], vec![], vec![]);
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            for (j, v) in row.iter().enumerate() {
                sm.push((v - lse).exp());
                lsm.push(v - lse);
                grad.push(((v - lse).exp() - (j == targets[r] as usize) as i32 as f64) / rows as f64);
            }
            loss.push(lse - row[targets[r] as usize]);
        }
        let l = Layout::contiguous([rows, cols]);
        let xs = up(&x, DType::F64);
        let y = ops::softmax(&xs, &l, false).unwrap();
        assert_close("softmax", &down(&y), &sm, 1e-12);
        let ly = ops::softmax(&xs, &l, true).unwrap();
        assert_close("log_softmax", &down(&ly), &lsm, 1e-12);
        // Backward.
        let mut dsm = vec![0.0; rows * cols];
        let mut dlsm = vec![0.0; rows * cols];
        for r in 0..rows {
            let s: f64 = (0..cols).map(|j| dy[r * cols + j] * sm[r * cols + j]).sum();
            let t: f64 = (0..cols).map(|j| dy[r * cols + j]).sum();
            for j in 0..cols {
                let i = r * cols + j;
                dsm[i] = sm[i] * (dy[i] - s);
                dlsm[i] = dy[i] - sm[i] * t;
            }
        }
        let dys = up(&dy, DType::F64);
        assert_close(
            "softmax backward",
            &down(&ops::softmax_backward(&y, &dys, cols, false).unwrap()),
            &dsm,
            1e-12,
        );
        assert_close(
            "log_softmax backward",
            &down(&ops::softmax_backward(&ly, &dys, cols, true).unwrap()),
            &dlsm,
            1e-12,
        );
        let (lo, g) =
            ops::softmax_cross_entropy(&xs, &up(&targets, DType::I64), rows, cols, Some(1.0 / rows as f64)).unwrap();
        assert_close("cross-entropy loss", &down(&lo), &loss, 1e-12);
        assert_close("cross-entropy grad", &down(&g.unwrap()), &grad, 1e-12);
    }
    // A softmax over a transposed (non-contiguous) view.
    let (d, l) = permuted();
    let y = ops::softmax(&up(&d, DType::F32), &l, false).unwrap();
    let v = view(&d, &l);
    let mut want = Vec::new();
    for row in v.chunks(3) {
        let s: f64 = row.iter().map(|x| x.exp()).sum();
        want.extend(row.iter().map(|x| x.exp() / s));
    }
    assert_close("softmax of a view", &down(&y), &want, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// Random numbers and optimisers

#[test]
fn philox_draws_are_reproducible_and_well_spread() {
    if !gpu() {
        return;
    }
    let n = 100_001;
    for dt in [DType::F32, DType::F64] {
        let a = down(&ops::dropout_mask(0, dt, n, 0.3, 42, 0).unwrap());
        let b = down(&ops::dropout_mask(0, dt, n, 0.3, 42, 0).unwrap());
        let c = down(&ops::dropout_mask(0, dt, n, 0.3, 42, 1).unwrap());
        assert_eq!(a, b, "same seed and offset, same mask");
        assert_ne!(a, c, "another offset, another mask");
        let kept = a.iter().filter(|&&m| m != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
        assert!(a.iter().all(|&m| m == 0.0 || (m - 1.0 / 0.7).abs() < 1e-6));
        let u = down(&ops::uniform(0, dt, n, -1.0, 3.0, 7, 0).unwrap());
        assert!(u.iter().all(|&x| (-1.0..3.0).contains(&x)));
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.02, "uniform mean {mean}");
        let z = down(&ops::normal(0, dt, n, 2.0, 0.5, 9, 0).unwrap());
        let m = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(
            (m - 2.0).abs() < 0.01 && (var.sqrt() - 0.5).abs() < 0.01,
            "normal {m} {var}"
        );
    }
}

#[test]
fn optimiser_updates_match_the_cpu_bit_for_bit() {
    if !gpu() {
        return;
    }
    let n = 1000;
    let (p0, g) = (rand_vec(n, 13, -1.0, 1.0), rand_vec(n, 14, -1.0, 1.0));
    let t = |v: &[f64]| Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), [n]).unwrap();
    let host = |t: &Tensor| {
        t.to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect::<Vec<_>>()
    };
    for nesterov in [false, true] {
        let u = SgdUpdate {
            lr: 0.1,
            weight_decay: 1e-4,
            momentum: 0.9,
            buffer_gain: 1.0,
            nesterov,
        };
        let (pc, bc, gc) = (t(&p0), Tensor::zeros([n], DType::F32), t(&g));
        let (mut pg, mut bg, gg) = (
            up(&p0, DType::F32),
            CudaStorage::zeros(0, DType::F32, n).unwrap(),
            up(&g, DType::F32),
        );
        for _ in 0..3 {
            pc.sgd_update_(&gc, Some(&bc), u).unwrap();
            ops::sgd_update(&mut pg, &gg, Some(&mut bg), &u).unwrap();
        }
        assert_close("sgd param", &down(&pg), &host(&pc), 0.0);
        assert_close("sgd buffer", &down(&bg), &host(&bc), 0.0);
    }
    for (decoupled, amsgrad) in [(false, false), (true, true)] {
        let (pc, mc, vc, gc) = (
            t(&p0),
            Tensor::zeros([n], DType::F32),
            Tensor::zeros([n], DType::F32),
            t(&g),
        );
        let vmc = Tensor::zeros([n], DType::F32);
        let mut pg = up(&p0, DType::F32);
        let (mut mg, mut vg, mut vmg) = (
            CudaStorage::zeros(0, DType::F32, n).unwrap(),
            CudaStorage::zeros(0, DType::F32, n).unwrap(),
            CudaStorage::zeros(0, DType::F32, n).unwrap(),
        );
        let gg = up(&g, DType::F32);
        for step in 1..=3 {
            let u = AdamUpdate {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 1e-2,
                decoupled,
                step,
            };
            pc.adam_update_(&gc, &mc, &vc, amsgrad.then_some(&vmc), u).unwrap();
            ops::adam_update(
                &mut pg,
                &gg,
                &mut mg,
                &mut vg,
                if amsgrad { Some(&mut vmg) } else { None },
                &u,
            )
            .unwrap();
        }
        assert_close("adam param", &down(&pg), &host(&pc), 0.0);
        assert_close("adam m", &down(&mg), &host(&mc), 0.0);
        assert_close("adam v", &down(&vg), &host(&vc), 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// cuBLAS

#[test]
fn matmul_matches_host_for_views_and_broadcast_batches() {
    if !gpu() {
        return;
    }
    let (b, m, k, n) = (3usize, 5usize, 7usize, 4usize);
    let ad = rand_vec(b * m * k, 15, -1.0, 1.0);
    let bd = rand_vec(k * n, 16, -1.0, 1.0);
    // a: [3, 5, 7] contiguous; b: a [4, 7] stored transposed ([7, 4] view of [4, 7]) broadcast to [3, 7, 4].
    let al = Layout::contiguous([b, m, k]);
    let bl = Layout::contiguous([1, n, k])
        .permute(&[0, 2, 1])
        .broadcast_to("test", &Shape::from([b, k, n]))
        .unwrap();
    let (av, bv) = (view(&ad, &al), view(&bd, &bl));
    let mut want = vec![0.0; b * m * n];
    for bi in 0..b {
        for i in 0..m {
            for j in 0..n {
                want[(bi * m + i) * n + j] = (0..k)
                    .map(|p| av[(bi * m + i) * k + p] * bv[(bi * k + p) * n + j])
                    .sum();
            }
        }
    }
    for dt in [DType::F32, DType::F64] {
        let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
        matmul::set_matmul_tf32(false);
        let c = matmul::matmul(&up(&ad, dt), &al, &up(&bd, dt), &bl).unwrap();
        assert_close(&format!("matmul {dt:?}"), &down(&c), &want, tol);
    }
    // An operand that is neither row- nor column-major (every other column) is copied first.
    let wide = rand_vec(m * 2 * k, 17, -1.0, 1.0);
    let al2 = Layout::new(Shape::from([m, k]), vec![2 * k, 2], 0);
    let bl2 = Layout::contiguous([n, k]).permute(&[1, 0]);
    let c = matmul::matmul(&up(&wide, DType::F64), &al2, &up(&bd, DType::F64), &bl2).unwrap();
    let (av2, bv2) = (view(&wide, &al2), view(&bd, &bl2));
    let want2: Vec<f64> = (0..m * n)
        .map(|ij| (0..k).map(|p| av2[(ij / n) * k + p] * bv2[p * n + ij % n]).sum())
        .collect();
    assert_close("matmul strided", &down(&c), &want2, 1e-12);
}

// ---------------------------------------------------------------------------------------------
// cuDNN

/// Naive cross-correlation on zero-padded input (the host oracle).
fn conv_host(x: &[f64], xd: [usize; 4], w: &[f64], wd: [usize; 4], o: &Conv2dOptions) -> (Vec<f64>, [usize; 4]) {
    let [n, c, h, wi] = xd;
    let [oc, cg, kh, kw] = wd;
    let [t, b, l, r] = o.padding;
    let (sh, sw, dh, dw) = (o.stride[0], o.stride[1], o.dilation[0], o.dilation[1]);
    let oh = (h + t + b - dh * (kh - 1) - 1) / sh + 1;
    let ow = (wi + l + r - dw * (kw - 1) - 1) / sw + 1;
    let g = o.groups;
    let mut y = vec![0.0; n * oc * oh * ow];
    for ni in 0..n {
        for o_ in 0..oc {
            let grp = o_ / (oc / g);
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = 0.0;
                    for ci in 0..cg {
                        let cc = grp * cg + ci;
                        for p in 0..kh {
                            for q in 0..kw {
                                let (yy, xx) = (
                                    (i * sh + p * dh) as isize - t as isize,
                                    (j * sw + q * dw) as isize - l as isize,
                                );
                                if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < wi {
                                    s += x[((ni * c + cc) * h + yy as usize) * wi + xx as usize]
                                        * w[((o_ * cg + ci) * kh + p) * kw + q];
                                }
                            }
                        }
                    }
                    y[((ni * oc + o_) * oh + i) * ow + j] = s;
                }
            }
        }
    }
    (y, [n, oc, oh, ow])
}

#[test]
fn conv2d_forward_and_backward_match_host() {
    if !gpu() {
        return;
    }
    let xd = [2usize, 4, 9, 8];
    let wd = [6usize, 2, 3, 3];
    let o = Conv2dOptions {
        stride: [2, 1],
        padding: [1, 1, 2, 2],
        padding_mode: PaddingMode::Zeros,
        dilation: [1, 2],
        groups: 2,
    };
    let x = rand_vec(xd.iter().product(), 18, -1.0, 1.0);
    let w = rand_vec(wd.iter().product(), 19, -1.0, 1.0);
    let (want, yd) = conv_host(&x, xd, &w, wd, &o);
    let (xs, ws) = (up(&x, DType::F64), up(&w, DType::F64));
    let (xl, wl) = (Layout::contiguous(xd.to_vec()), Layout::contiguous(wd.to_vec()));
    let y = cudnn::conv2d(&xs, &xl, &ws, &wl, &o).unwrap();
    assert_close("conv2d", &down(&y), &want, 1e-10);
    // Backward by linearity: <δy, conv(x)> = <δx, x> and = <δw, w> for the adjoints.
    let dy = rand_vec(yd.iter().product(), 20, -1.0, 1.0);
    let dys = up(&dy, DType::F64);
    let dx = down(&cudnn::conv2d_backward_data(&dys, &ws, &wl, &xd, &o).unwrap());
    let dw = down(&cudnn::conv2d_backward_filter(&xs, &xl, &dys, &wd, &o).unwrap());
    // δx[i] = <δy, conv(e_i, w)>: check a few coordinates exactly with the host oracle.
    for &i in &[0usize, 17, 100, 575] {
        let mut e = vec![0.0; x.len()];
        e[i] = 1.0;
        let (ye, _) = conv_host(&e, xd, &w, wd, &o);
        let want_i: f64 = ye.iter().zip(&dy).map(|(a, b)| a * b).sum();
        assert_close("conv2d δx", &[dx[i]], &[want_i], 1e-10);
    }
    for &i in &[0usize, 5, 53, 107] {
        let mut e = vec![0.0; w.len()];
        e[i] = 1.0;
        let (ye, _) = conv_host(&x, xd, &e, wd, &o);
        let want_i: f64 = ye.iter().zip(&dy).map(|(a, b)| a * b).sum();
        assert_close("conv2d δw", &[dw[i]], &[want_i], 1e-10);
    }
    // Reflect padding = explicit reflect pad, then a convolution without padding.
    let o2 = Conv2dOptions {
        padding_mode: PaddingMode::Reflect,
        groups: 1,
        ..o
    };
    let w2 = rand_vec(6 * 4 * 9, 21, -1.0, 1.0);
    let wl2 = Layout::contiguous([6, 4, 3, 3]);
    let padded = down(&ops::pad2d(&xs, &xl, (1, 1, 2, 2), PaddingMode::Reflect).unwrap());
    let o0 = Conv2dOptions {
        padding: [0; 4],
        padding_mode: PaddingMode::Zeros,
        ..o2
    };
    let (want2, _) = conv_host(&padded, [2, 4, 11, 12], &w2, [6, 4, 3, 3], &o0);
    let y2 = cudnn::conv2d(&xs, &xl, &up(&w2, DType::F64), &wl2, &o2).unwrap();
    assert_close("conv2d reflect", &down(&y2), &want2, 1e-10);
    // f32 with TF32 off matches closely.
    cudnn::set_conv_tf32(false);
    let y32 = cudnn::conv2d(&up(&x, DType::F32), &xl, &up(&w, DType::F32), &wl, &o).unwrap();
    cudnn::set_conv_tf32(true);
    assert_close("conv2d f32", &down(&y32), &want, 1e-4);
}

#[test]
fn pooling_kernels_match_host() {
    if !gpu() {
        return;
    }
    let xd = [2usize, 3, 7, 6];
    let x = rand_vec(xd.iter().product(), 22, -1.0, 1.0);
    let (xs, xl) = (up(&x, DType::F64), Layout::contiguous(xd.to_vec()));
    let (oh, ow) = ((7 + 2 - 3) / 2 + 1, (6 + 2 - 2) / 2 + 1);
    let g = PoolGeometry {
        planes: 6,
        h: 7,
        w: 6,
        kernel: [3, 2],
        stride: [2, 2],
        padding: [1, 1],
        dilation: [1, 1],
        oh,
        ow,
    };
    let avg = PoolKind::Avg {
        count_include_pad: false,
        divisor_override: None,
    };
    let (mut mx, mut av, mut arg) = (vec![], vec![], vec![]);
    for pl in 0..6 {
        for i in 0..oh {
            for j in 0..ow {
                let (mut best, mut bi, mut s, mut cnt) = (f64::MIN, 0, 0.0, 0);
                for p in 0..3 {
                    for q in 0..2 {
                        let (r, c) = ((i * 2 + p) as isize - 1, (j * 2 + q) as isize - 1);
                        if r >= 0 && c >= 0 && r < 7 && c < 6 {
                            let idx = (pl * 7 + r as usize) * 6 + c as usize;
                            if x[idx] > best {
                                best = x[idx];
                                bi = idx;
                            }
                            s += x[idx];
                            cnt += 1;
                        }
                    }
                }
                mx.push(best);
                arg.push(bi);
                av.push(s / cnt as f64);
            }
        }
    }
    let _ = xl;
    let y = ops::pool2d(&xs, 0, PoolKind::Max, &g).unwrap();
    assert_close("max_pool2d", &down(&y), &mx, 0.0);
    let ya = ops::pool2d(&xs, 0, avg, &g).unwrap();
    assert_close("avg_pool2d", &down(&ya), &av, 1e-12);
    let dy = rand_vec(mx.len(), 23, -1.0, 1.0);
    let mut dmax = vec![0.0; x.len()];
    for (k, &i) in arg.iter().enumerate() {
        dmax[i] += dy[k];
    }
    let dx = ops::pool2d_backward(&xs, 0, &up(&dy, DType::F64), 0, PoolKind::Max, &g).unwrap();
    assert_close("max_pool2d backward", &down(&dx), &dmax, 1e-12);
}

#[test]
fn lrn_kernel_and_cudnn_batch_norm_match_host() {
    if !gpu() {
        return;
    }
    let xd = [2usize, 7, 3, 4];
    let x = rand_vec(xd.iter().product(), 24, -2.0, 2.0);
    let (xs, xl) = (up(&x, DType::F64), Layout::contiguous(xd.to_vec()));
    let (size, alpha, beta, k) = (5usize, 1e-2, 0.75, 2.0);
    let plane = 12;
    let mut want = vec![0.0; x.len()];
    for n in 0..2 {
        for c in 0..7usize {
            for s in 0..plane {
                let lo = c.saturating_sub(size / 2);
                let hi = (c + (size - 1) / 2).min(6);
                let sq: f64 = (lo..=hi).map(|cc| x[(n * 7 + cc) * plane + s].powi(2)).sum();
                let i = (n * 7 + c) * plane + s;
                want[i] = x[i] / (k + alpha / size as f64 * sq).powf(beta);
            }
        }
    }
    assert_close(
        "lrn",
        &down(
            &ops::lrn(
                &xs,
                0,
                &LrnParams {
                    n: 2,
                    c: 7,
                    s: plane,
                    size,
                    alpha,
                    beta,
                    k,
                },
            )
            .unwrap()
            .0,
        ),
        &want,
        1e-10,
    );

    // Batch norm over N, H, W per channel.
    let c = 7;
    let gamma = rand_vec(c, 25, 0.5, 1.5);
    let betav = rand_vec(c, 26, -0.5, 0.5);
    let eps = 1e-5;
    let count = (2 * plane) as f64;
    let (mut mean, mut var) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let vals: Vec<f64> = (0..2)
            .flat_map(|n| (0..plane).map(move |s| (n, s)))
            .map(|(n, s)| x[(n * c + ch) * plane + s])
            .collect();
        mean[ch] = vals.iter().sum::<f64>() / count;
        var[ch] = vals.iter().map(|v| (v - mean[ch]).powi(2)).sum::<f64>() / count;
    }
    let mut y = vec![0.0; x.len()];
    for (i, yv) in y.iter_mut().enumerate() {
        let ch = (i / plane) % c;
        *yv = gamma[ch] * (x[i] - mean[ch]) / (var[ch] + eps).sqrt() + betav[ch];
    }
    let (gs, bs) = (up(&gamma, DType::F64), up(&betav, DType::F64));
    let mut rm = CudaStorage::zeros(0, DType::F64, c).unwrap();
    let mut rv = CudaStorage::full(0, DType::F64, c, 1.0).unwrap();
    let out = cudnn::batch_norm_train(&xs, &xl, &gs, &bs, Some((&mut rm, &mut rv)), 0.1, eps).unwrap();
    assert_close("batch norm", &down(&out.y), &y, 1e-10);
    let want_rm: Vec<f64> = mean.iter().map(|m| 0.1 * m).collect();
    let want_rv: Vec<f64> = var.iter().map(|v| 0.9 + 0.1 * v * count / (count - 1.0)).collect();
    assert_close("running mean", &down(&rm), &want_rm, 1e-10);
    assert_close("running var", &down(&rv), &want_rv, 1e-10);
    let inf =
        cudnn::batch_norm_inference(&xs, &xl, &gs, &bs, &up(&mean, DType::F64), &up(&var, DType::F64), eps).unwrap();
    assert_close("batch norm inference", &down(&inf), &y, 1e-10);
    // Backward: δx = γ/σ (δy − mean δy − x̂ mean(δy x̂)), δγ = Σ δy x̂, δβ = Σ δy.
    let dy = rand_vec(x.len(), 27, -1.0, 1.0);
    let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
    let xhat: Vec<f64> = (0..x.len())
        .map(|i| (x[i] - mean[(i / plane) % c]) / (var[(i / plane) % c] + eps).sqrt())
        .collect();
    for i in 0..x.len() {
        let ch = (i / plane) % c;
        dg[ch] += dy[i] * xhat[i];
        db[ch] += dy[i];
    }
    for i in 0..x.len() {
        let ch = (i / plane) % c;
        let sd = (var[ch] + eps).sqrt();
        dx[i] = gamma[ch] / sd * (dy[i] - db[ch] / count - xhat[i] * dg[ch] / count);
    }
    let (gx, gg, gb) = cudnn::batch_norm_backward(
        &xs,
        &xl,
        &up(&dy, DType::F64),
        &gs,
        &out.save_mean,
        &out.save_inv_std,
        eps,
    )
    .unwrap();
    assert_close("batch norm δx", &down(&gx), &dx, 1e-9);
    assert_close("batch norm δγ", &down(&gg), &dg, 1e-9);
    assert_close("batch norm δβ", &down(&gb), &db, 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Indexing

#[test]
fn index_select_gather_and_adjoints_match_host() {
    if !gpu() {
        return;
    }
    // x: [3, 5, 2]; index_select along dim 1 with repeats.
    let x = rand_vec(30, 28, -1.0, 1.0);
    let xl = Layout::contiguous([3, 5, 2]);
    let idx = [4.0, 0.0, 4.0, 2.0];
    let is = up(&idx, DType::I64);
    let y = ops::index_select(&up(&x, DType::F64), &xl, 1, &is).unwrap();
    let mut want = Vec::new();
    for o in 0..3 {
        for &k in &idx {
            for i in 0..2 {
                want.push(x[(o * 5 + k as usize) * 2 + i]);
            }
        }
    }
    assert_close("index_select", &down(&y), &want, 0.0);
    let src = rand_vec(24, 29, -1.0, 1.0);
    let mut dst = CudaStorage::zeros(0, DType::F64, 30).unwrap();
    ops::index_add(&mut dst, &[3, 5, 2], 1, &is, &up(&src, DType::F64)).unwrap();
    let mut add = vec![0.0; 30];
    for o in 0..3 {
        for (j, &k) in idx.iter().enumerate() {
            for i in 0..2 {
                add[(o * 5 + k as usize) * 2 + i] += src[(o * 4 + j) * 2 + i];
            }
        }
    }
    assert_close("index_add", &down(&dst), &add, 1e-12);
    assert!(ops::check_indices("test", &is, 1, 5).is_ok());
    assert!(ops::check_indices("test", &up(&[0.0, 5.0], DType::I64), 1, 5).is_err());
    // gather along dim 1 of [3, 5] with an index of shape [3, 2] (cross-entropy's pick).
    let x2 = rand_vec(15, 30, -1.0, 1.0);
    let g_idx = [1.0, 4.0, 0.0, 0.0, 3.0, 2.0];
    let gi = up(&g_idx, DType::I64);
    let y2 = ops::gather(&up(&x2, DType::F32), &Layout::contiguous([3, 5]), 1, &gi, &[3, 2]).unwrap();
    let want2: Vec<f64> = (0..6)
        .map(|p| x2[(p / 2) * 5 + g_idx[p] as usize] as f32 as f64)
        .collect();
    assert_close("gather", &down(&y2), &want2, 0.0);
    let mut d2 = CudaStorage::zeros(0, DType::F32, 15).unwrap();
    ops::scatter_add(&mut d2, &[3, 5], 1, &gi, &[3, 2], &up(&[1.0; 6], DType::F32)).unwrap();
    let mut want3 = vec![0.0; 15];
    for p in 0..6 {
        want3[(p / 2) * 5 + g_idx[p] as usize] += 1.0;
    }
    assert_close("scatter_add", &down(&d2), &want3, 0.0);
}
