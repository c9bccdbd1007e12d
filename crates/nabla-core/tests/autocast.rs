//! Mixed precision (autocast): f32 products in bf16 with f32 sums, forward and backward, and
//! nothing else touched. Expected values: the products of the operands rounded to bf16 by the
//! format's rule (round to nearest, ties to even; checked by hand in cpu/gemm_bf16.rs), summed
//! here in f64.

use nabla_core::autocast::{AutocastGuard, Precision, autocast, current};
use nabla_core::{DType, GradcheckOptions, Tensor, gradcheck};

/// x rounded to bf16: the top 16 bits of the f32 after adding half a unit (ties to even).
fn bf16(x: f32) -> f64 {
    let b = x.to_bits();
    f32::from_bits(((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16) as f64
}

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i + seed) * 7919) % 1009) as f32 / 313.0 - 1.6)
        .collect()
}

/// Σ_p f(i, p)·g(p, j) in f64, for an m×k by k×n product given by element functions.
fn product(m: usize, n: usize, k: usize, a: impl Fn(usize, usize) -> f64, b: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
        }
    }
    out
}

fn close(got: &[f32], want: &[f64], k: usize, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // Only the f32 sums differ from the f64 ones: k·2⁻²⁴ of values below 3·3·k.
        assert!(
            (*g as f64 - w).abs() <= 9.0 * (k * k) as f64 * 2f64.powi(-24),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn a_linear_layer_under_autocast_uses_bf16_operands_forward_and_backward() {
    let (m, k, n) = (7, 37, 5);
    let x = Tensor::from_vec(values(m * k, 1), (m, k)).unwrap().requires_grad_();
    let w = Tensor::from_vec(values(n * k, 2), (n, k)).unwrap().requires_grad_();
    let dy = values(m * n, 3);
    // y = x·Wᵀ, as a Linear layer computes it; backward from dy.
    let y = autocast(Precision::Bf16, || x.matmul(&w.t().unwrap())).unwrap();
    let grads = y.backward_with(&Tensor::from_vec(dy.clone(), (m, n)).unwrap()).unwrap();
    let (xv, wv) = (values(m * k, 1), values(n * k, 2));
    let want_y = product(m, n, k, |i, p| bf16(xv[i * k + p]), |p, j| bf16(wv[j * k + p]));
    close(&y.to_vec::<f32>().unwrap(), &want_y, k, "y");
    // δx = δy·W and δW = δyᵀ·x, with bf16 operands too (the forward's precision).
    let want_dx = product(m, k, n, |i, j| bf16(dy[i * n + j]), |j, p| bf16(wv[j * k + p]));
    close(&grads.get(&x).unwrap().to_vec::<f32>().unwrap(), &want_dx, n, "dx");
    let want_dw = product(n, k, m, |j, i| bf16(dy[i * n + j]), |i, p| bf16(xv[i * k + p]));
    close(&grads.get(&w).unwrap().to_vec::<f32>().unwrap(), &want_dw, m, "dW");
    // And the f32 product differs from it: the test would notice autocast doing nothing.
    let plain = x.matmul(&w.t().unwrap()).unwrap().to_vec::<f32>().unwrap();
    assert!(plain.iter().zip(&want_y).any(|(p, w)| (*p as f64 - w).abs() > 1e-3));
}

#[test]
fn the_backward_pass_keeps_the_forwards_precision_outside_the_scope() {
    let a = Tensor::from_vec(values(12, 4), (3, 4)).unwrap().requires_grad_();
    let b = Tensor::from_vec(values(8, 5), (4, 2)).unwrap();
    let y = autocast(Precision::Bf16, || a.matmul(&b)).unwrap();
    assert_eq!(current(), Precision::F32);
    let g = y.sum_all().unwrap().backward().unwrap();
    let bv = values(8, 5);
    let want: Vec<f64> = (0..12)
        .map(|i| (0..2).map(|j| bf16(bv[(i % 4) * 2 + j])).sum())
        .collect();
    close(&g.get(&a).unwrap().to_vec::<f32>().unwrap(), &want, 2, "da");
}

#[test]
fn f64_gradient_checks_are_untouched_by_autocast() {
    let _bf16 = AutocastGuard::new(Precision::Bf16);
    let a = Tensor::randn((3, 4), DType::F64).unwrap();
    let b = Tensor::randn((4, 2), DType::F64).unwrap();
    let f = |t: &[Tensor]| t[0].matmul(&t[1])?.tanh()?.sum_all();
    assert!(gradcheck(f, &[a.clone(), b.clone()], GradcheckOptions::default()).unwrap() < 1e-6);
    // And the f64 product is the exact one, not one of rounded operands.
    let exact = a.matmul(&b).unwrap().to_vec::<f64>().unwrap();
    let (av, bv) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    let want = product(3, 2, 4, |i, p| av[i * 4 + p], |p, j| bv[p * 2 + j]);
    for (e, w) in exact.iter().zip(&want) {
        assert!((e - w).abs() < 1e-12);
    }
}

#[test]
fn scopes_nest_and_restore_the_previous_precision() {
    assert_eq!(current(), Precision::F32);
    {
        let _outer = AutocastGuard::new(Precision::Bf16);
        autocast(Precision::F32, || assert_eq!(current(), Precision::F32));
        assert_eq!(current(), Precision::Bf16);
    }
    assert_eq!(current(), Precision::F32);
    assert_eq!(Precision::parse("BFloat16"), Some(Precision::Bf16));
    assert_eq!(Precision::parse("f16"), None);
}

/// A convolution the size of VGG's deep layers (256 → 128 channels, 3×3: 2304 rows of the
/// unfolded input) runs its three passes as bf16 products under autocast. Each pass agrees with
/// the f64 convolution of the bf16-rounded operands as closely as the plain f32 pass agrees with
/// the f64 convolution of the unrounded ones (both differ only by f32 sums), while the two
/// references lie far further apart than that (so the test sees which operands were used).
#[test]
fn a_large_convolution_under_autocast_uses_bf16_operands_in_every_pass() {
    use nabla_core::Conv2dOptions;
    let (xs, ws) = ([2usize, 256, 6, 6], [128usize, 256, 3, 3]);
    let (nx, nw) = (xs.iter().product::<usize>(), ws.iter().product::<usize>());
    let (xv, wv) = (values(nx, 6), values(nw, 7));
    let opts = Conv2dOptions::default().padding(1).stride(2);
    let passes = |p: Precision| {
        let x = Tensor::from_vec(xv.clone(), xs.to_vec()).unwrap().requires_grad_();
        let w = Tensor::from_vec(wv.clone(), ws.to_vec()).unwrap().requires_grad_();
        let y = autocast(p, || x.conv2d(&w, None, &opts)).unwrap();
        let dy = Tensor::from_vec(values(y.elem_count(), 8), y.dims().to_vec()).unwrap();
        let g = y.backward_with(&dy).unwrap();
        [y, g.get(&x).unwrap().clone(), g.get(&w).unwrap().clone()].map(|t| t.to_vec::<f32>().unwrap())
    };
    let reference = |round: bool| {
        let f = |v: &[f32], shape: &[usize]| {
            let v: Vec<f64> = v.iter().map(|&a| if round { bf16(a) } else { a as f64 }).collect();
            Tensor::from_vec(v, shape.to_vec()).unwrap().requires_grad_()
        };
        let (x, w) = (f(&xv, &xs), f(&wv, &ws));
        let y = x.conv2d(&w, None, &opts).unwrap();
        let g = y.backward_with(&f(&values(y.elem_count(), 8), y.dims())).unwrap();
        [y, g.get(&x).unwrap().clone(), g.get(&w).unwrap().clone()].map(|t| t.to_vec::<f64>().unwrap())
    };
    let (bf, plain) = (passes(Precision::Bf16), passes(Precision::F32));
    let (rounded, exact) = (reference(true), reference(false));
    let gap = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(x, y)| (*x as f64 - y).abs()).fold(0.0, f64::max);
    for (i, what) in ["y", "dx", "dW"].iter().enumerate() {
        let sums = gap(&plain[i], &exact[i]);
        let apart = rounded[i]
            .iter()
            .zip(&exact[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let ours = gap(&bf[i], &rounded[i]);
        assert!(
            ours <= 4.0 * sums + 1e-9,
            "{what}: {ours:e} from the rounded reference (f32 sums: {sums:e})"
        );
        assert!(apart > 50.0 * sums, "{what}: references only {apart:e} apart");
    }
}
