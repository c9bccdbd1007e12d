//! The autograd machinery (accumulation, detach, no_grad, misuse of backward, deep graphs,
//! gradcheck itself) and the tensor basics: creation functions, reading values out, Display.

mod common;

use common::*;
use nabla_core::{
    DType, Error, Generator, GradcheckOptions, NoGradGuard, Tensor, gradcheck, is_grad_enabled, manual_seed, no_grad,
};

#[test]
fn a_tensor_used_twice_accumulates() {
    let x = leaf(&[3.0], (1,));
    // d(x·x)/dx = 2x.
    let g = x.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &x), &[6.0], 0.0);
    // d(x·x + x)/dx = 2x + 1.
    let g = x
        .mul(&x)
        .unwrap()
        .add(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[7.0], 0.0);
    // d(x³)/dx = 3x² through two nested uses.
    let g = x
        .mul(&x)
        .unwrap()
        .mul(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[27.0], 0.0);
    // A shared intermediate (a diamond): h = 2x, y = h² + h, dy/dx = (2h + 1)·2; at x = 1.5, h = 3.
    let x = leaf(&[1.5], (1,));
    let h = x.mul_scalar(2.0).unwrap();
    let g = h
        .mul(&h)
        .unwrap()
        .add(&h)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[14.0], 0.0);
    // Broadcast against itself: x [2] + x as [2, 1] → [2, 2], each element used twice per row/column.
    let x = leaf(&[1.0, 2.0], (2,));
    let y = x.add(&x.reshape((2, 1)).unwrap()).unwrap();
    assert_tensor(&y, &[2, 2], &[2.0, 3.0, 3.0, 4.0]);
    assert_close(&grad(&y.sum_all().unwrap().backward().unwrap(), &x), &[4.0, 4.0], 0.0);
}

#[test]
fn only_leaves_that_contributed_get_gradients() {
    let a = leaf(&[1.0, 2.0], (2,));
    let b = leaf(&[3.0, 4.0], (2,));
    let unused = leaf(&[5.0], (1,));
    let constant = t64(&[10.0, 20.0], (2,));
    let h = a.mul(&constant).unwrap();
    let loss = h.add(&b).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    assert_eq!(g.len(), 2);
    assert_close(&grad(&g, &a), &[10.0, 20.0], 0.0);
    assert_close(&grad(&g, &b), &[1.0, 1.0], 0.0);
    assert!(g.get(&unused).is_none());
    assert!(g.get(&constant).is_none());
    assert!(g.get(&h).is_none(), "intermediate gradients are not kept");
    // A clone is the same tensor: it finds the same gradient.
    assert_eq!(vals(g.get(&a.clone()).unwrap()), vec![10.0, 20.0]);
    // A leaf that is itself the loss.
    let s = leaf(&[2.0], ());
    assert_close(&grad(&s.backward().unwrap(), &s), &[1.0], 0.0);
    // f32 leaves get f32 gradients.
    let w = t32(&[1.0, -1.0], (2,)).requires_grad_();
    let g = w.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(g.get(&w).unwrap().dtype(), DType::F32);
    assert_eq!(g.get(&w).unwrap().to_vec::<f32>().unwrap(), vec![2.0, -2.0]);
}

#[test]
fn flags_and_grad_fn() {
    let x = leaf(&[1.0, 2.0], (2,));
    assert!(x.requires_grad() && x.tracks_grad());
    assert_eq!(x.grad_fn(), None);
    let y = x.mul_scalar(2.0).unwrap();
    assert!(!y.requires_grad() && y.tracks_grad());
    assert_eq!(y.grad_fn(), Some("affine"));
    assert_eq!(x.mul(&x).unwrap().grad_fn(), Some("mul"));
    assert_eq!(x.sum_all().unwrap().grad_fn(), Some("sum"));
    let c = t64(&[1.0], (1,));
    assert!(!c.tracks_grad());
    assert!(!c.exp().unwrap().tracks_grad(), "ops on constants record nothing");
    assert_eq!(format!("{x:?}"), "Tensor[2] F64 requires_grad");
    assert_eq!(format!("{y:?}"), "Tensor[2] F64 grad_fn=affine");
    assert_eq!(format!("{c:?}"), "Tensor[1] F64");
}

#[test]
fn detach_stops_gradients() {
    let x = leaf(&[3.0], (1,));
    // y = stop(x)·x: only the second factor is differentiated, dy/dx = x.
    let g = x.detach().mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &x), &[3.0], 0.0);
    let d = x.exp().unwrap().detach();
    assert!(!d.tracks_grad() && d.grad_fn().is_none());
    assert_close(&vals(&d), &[3f64.exp()], 0.0);
    let e = d.sum_all().unwrap().backward();
    assert!(matches!(e, Err(Error::Backward(_))), "nothing to differentiate");
    // Detach in the middle of a chain: the branch above it is cut off.
    let a = leaf(&[2.0], (1,));
    let b = a.sqr().unwrap().detach().mul(&a).unwrap().add(&a).unwrap();
    assert_close(&grad(&b.sum_all().unwrap().backward().unwrap(), &a), &[5.0], 0.0);
}

#[test]
fn no_grad_records_nothing() {
    let w = leaf(&[1.0, 2.0], (2,));
    assert!(is_grad_enabled());
    let y = no_grad(|| {
        assert!(!is_grad_enabled());
        w.mul_scalar(3.0).unwrap().exp().unwrap()
    });
    assert!(is_grad_enabled());
    assert!(!y.tracks_grad() && y.grad_fn().is_none());
    assert!(y.sum_all().unwrap().backward().is_err());
    {
        let _outer = NoGradGuard::new();
        {
            let _inner = NoGradGuard::default();
            assert!(!is_grad_enabled());
        }
        assert!(!is_grad_enabled(), "still off after the inner guard");
        assert!(!w.matmul(&w).unwrap().tracks_grad());
    }
    assert!(is_grad_enabled());
    // The mode is per thread: another thread still records.
    let _guard = NoGradGuard::new();
    let w2 = w.clone();
    let other = std::thread::spawn(move || w2.mul_scalar(2.0).unwrap().tracks_grad())
        .join()
        .unwrap();
    assert!(other);
}

#[test]
fn backward_misuse_is_an_error() {
    let x = leaf(&[1.0, 2.0, 3.0], (3,));
    let y = x.mul_scalar(2.0).unwrap();
    let e = y.backward().err().expect("a non-scalar cannot seed backward");
    assert!(matches!(e, Error::Backward(_)));
    assert_eq!(
        e.to_string(),
        "backward: expected a scalar (one element) to start from, got shape [3]; reduce it first (sum, mean) or use backward_with"
    );
    // backward_with seeds a non-scalar with an explicit δ.
    let g = y.backward_with(&t64(&[1.0, 2.0, 3.0], (3,))).unwrap();
    assert_close(&grad(&g, &x), &[2.0, 4.0, 6.0], 0.0);
    let y = x.mul_scalar(2.0).unwrap();
    assert_err(
        y.backward_with(&t64(&[1.0], (1,))),
        "backward: gradient shape [1] does not match tensor shape [3]",
    );
    assert!(t64(&[1.0], (1,)).backward().is_err());

    // The graph is freed by the first backward pass: a second one through it is an error.
    let loss = x.mul(&x).unwrap().sum_all().unwrap();
    let g = loss.backward().unwrap();
    assert_close(&grad(&g, &x), &[2.0, 4.0, 6.0], 0.0);
    let e = loss.backward().err().expect("a second backward must fail");
    assert_eq!(
        e.to_string(),
        "backward: the graph through `sum` was already used by a backward pass and freed; run the forward pass again"
    );
    // Sharing a freed subgraph fails too, naming the op whose record is gone.
    let h = x.exp().unwrap();
    h.sum_all().unwrap().backward().unwrap();
    let e = h
        .mul_scalar(2.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .err()
        .expect("h's graph is freed");
    assert!(
        e.to_string().contains("`exp` was already used by a backward pass"),
        "{e}"
    );
    // Running the forward pass again works.
    let g = x.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &x), &[2.0, 4.0, 6.0], 0.0);
}

#[test]
fn deep_chains_do_not_overflow_the_stack() {
    // Run on a thread with a deliberately small stack: recursion over the graph would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let n = 10_000;
            let x = leaf(&[0.5], (1,));
            let mut y = x.clone();
            for _ in 0..n {
                y = y.add_scalar(1.0).unwrap();
            }
            assert_close(&vals(&y), &[0.5 + n as f64], 0.0);
            let g = y.sum_all().unwrap().backward().unwrap();
            assert_close(&grad(&g, &x), &[1.0], 0.0);
            drop(y);
            // A graph dropped without a backward pass must not be freed recursively either
            // (a running `total = total.add(&loss)` over many steps builds one).
            let mut z = x.clone();
            for _ in 0..10 * n {
                z = z.mul_scalar(1.0).unwrap();
            }
            drop(z);
            // A long chain of binary ops, each using the previous result twice.
            let mut w = x.clone();
            for _ in 0..n {
                w = w.add(&w).unwrap().mul_scalar(0.5).unwrap();
            }
            let g = w.sum_all().unwrap().backward().unwrap();
            assert_close(&grad(&g, &x), &[1.0], 1e-12);
        })
        .unwrap();
    handle.join().expect("deep graphs must not overflow the stack");
}

#[test]
fn gradients_through_views_and_mixed_ops() {
    // L = Σ (W·x + b)² for W [2, 3], x [3], b [2], by hand.
    let w = leaf(&[1.0, 0.0, -1.0, 2.0, 1.0, 0.0], (2, 3));
    let x = leaf(&[1.0, 2.0, 3.0], (3,));
    let b = leaf(&[0.5, -1.0], (2,));
    let r = w.matmul(&x).unwrap().add(&b).unwrap(); // (1 − 3 + 0.5, 2 + 2 − 1) = (−1.5, 3)
    assert_tensor(&r, &[2], &[-1.5, 3.0]);
    let g = r.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    // δr = 2r = (−3, 6); δW = δr ⊗ x; δx = Wᵀ·δr; δb = δr.
    assert_close(&grad(&g, &w), &[-3.0, -6.0, -9.0, 6.0, 12.0, 18.0], 0.0);
    assert_close(&grad(&g, &x), &[9.0, 6.0, 3.0], 0.0);
    assert_close(&grad(&g, &b), &[-3.0, 6.0], 0.0);
    // Cross-entropy by hand: logits (0, ln 3) and label 1: p = (¼, ¾), δ = p − e₁ = (¼, −¼).
    let z = leaf(&[0.0, 3f64.ln()], (1, 2));
    let nll = z
        .log_softmax(1)
        .unwrap()
        .gather(1, &ti64(&[1], (1, 1)))
        .unwrap()
        .neg()
        .unwrap();
    assert_close(&vals(&nll), &[-(0.75f64.ln())], 1e-15);
    let g = nll.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &z), &[0.25, -0.25], 1e-15);
}

#[test]
fn gradcheck_accepts_right_and_rejects_wrong_gradients() {
    let x = t64(&[0.5, -1.0, 2.0], (3,));
    let worst = gradcheck(
        |t| t[0].tanh()?.mul(&t[0]),
        std::slice::from_ref(&x),
        GradcheckOptions::default(),
    )
    .unwrap();
    assert!(worst < 1e-6, "{worst}");
    // f32 inputs are refused.
    let e = gradcheck(|t| t[0].exp(), &[t32(&[1.0], (1,))], GradcheckOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "gradcheck: input 0 is F32; gradients are checked in f64");
    // A function whose recorded gradient is wrong: detach hides half of x·x, so the analytic
    // gradient is x where the numeric one is 2x.
    let e = gradcheck(
        |t| t[0].detach().mul(&t[0]),
        std::slice::from_ref(&x),
        GradcheckOptions::default(),
    );
    assert!(
        e.unwrap_err()
            .to_string()
            .starts_with("gradcheck: input 0 [3] element 0: analytic")
    );
    // An input that does not reach the output has a zero gradient on both sides.
    let y = t64(&[1.0], (1,));
    gradcheck(|t| t[0].exp(), &[x, y], GradcheckOptions::default()).unwrap();
}

#[test]
fn creation_functions() {
    assert_tensor(&Tensor::zeros((2, 2), DType::F64), &[2, 2], &[0.0; 4]);
    let o = Tensor::ones((3,), DType::F32);
    assert_eq!(o.to_vec::<f32>().unwrap(), vec![1.0; 3]);
    assert_tensor(&Tensor::full(2.5, (2, 1), DType::F64), &[2, 1], &[2.5, 2.5]);
    assert_eq!(Tensor::full(2.7, (2,), DType::I64).to_vec::<i64>().unwrap(), vec![2, 2]);
    assert_eq!(Tensor::zeros((1,), DType::I64).to_vec::<i64>().unwrap(), vec![0]);
    assert_tensor(&Tensor::scalar(4.0, DType::F64), &[], &[4.0]);
    let like = Tensor::full_like(&o, -1.0).unwrap();
    assert_eq!((like.dims(), like.dtype()), (&[3usize][..], DType::F32));
    assert_eq!(like.to_vec::<f32>().unwrap(), vec![-1.0; 3]);
    assert_eq!(Tensor::zeros_like(&o).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 3]);
    assert_eq!(
        Tensor::ones_like(&ti64(&[5, 6], (2,)))
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![1, 1]
    );

    assert_tensor(
        &Tensor::arange(0.0, 1.0, 0.25, DType::F64).unwrap(),
        &[4],
        &[0.0, 0.25, 0.5, 0.75],
    );
    assert_tensor(
        &Tensor::arange(5.0, 0.0, -2.0, DType::F64).unwrap(),
        &[3],
        &[5.0, 3.0, 1.0],
    );
    assert_tensor(
        &Tensor::arange(0.0, 1.0, 0.3, DType::F64).unwrap(),
        &[4],
        &[0.0, 0.3, 0.6, 0.9],
    );
    let i = Tensor::arange(0.0, 3.0, 1.0, DType::I64).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1, 2]);
    assert_eq!(Tensor::arange(2.0, 2.0, 1.0, DType::F32).unwrap().dims(), &[0]);
    assert_err(
        Tensor::arange(0.0, 1.0, 0.0, DType::F32),
        "arange: cannot go from 0 to 1 in steps of 0",
    );
    assert_err(
        Tensor::arange(1.0, 0.0, 1.0, DType::F32),
        "arange: cannot go from 1 to 0 in steps of 1",
    );
    assert_is_err(Tensor::arange(0.0, 1.0, f64::NAN, DType::F32));

    assert_tensor(
        &Tensor::eye(3, DType::F64).unwrap(),
        &[3, 3],
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    );
    assert_eq!(
        Tensor::eye(2, DType::I64).unwrap().to_vec::<i64>().unwrap(),
        vec![1, 0, 0, 1]
    );
    assert_eq!(Tensor::eye(0, DType::F32).unwrap().dims(), &[0, 0]);
    assert_err(
        Tensor::from_vec(vec![1f32, 2., 3., 4., 5.], (2, 3)),
        "from_vec: 5 values do not fill shape [2, 3] (6 elements)",
    );
    assert_tensor(
        &Tensor::from_slice(&[1.0f64, 2.0], (1, 2)).unwrap(),
        &[1, 2],
        &[1.0, 2.0],
    );
}

#[test]
fn random_creation_is_seeded() {
    // Expected values from an independent implementation of splitmix64 + xoshiro256++
    // (53-bit floats, Box–Muller with u₁ = 1 − u).
    let rand0 = [0.3245752680314067, 0.38223929651167343, 0.3596172076473553];
    let uniform7 = [-1.6124769446516682, -0.7951890188631761, 3.023032898510616];
    let normal3 = [-0.1944720455592967, 1.1272225596989704, 1.075063302361003];
    let shifted: Vec<f64> = normal3.iter().map(|z| 1.0 + 2.0 * z).collect();
    // The default generator is process-wide: this is the only test of this file that uses it.
    manual_seed(0);
    let a = Tensor::rand((3,), DType::F64).unwrap();
    assert_close(&vals(&a), &rand0, 1e-15);
    manual_seed(0);
    assert_eq!(vals(&Tensor::rand((3,), DType::F64).unwrap()), vals(&a));
    manual_seed(7);
    assert_close(
        &vals(&Tensor::uniform(-2.0, 5.0, (3,), DType::F64).unwrap()),
        &uniform7,
        1e-15,
    );
    manual_seed(3);
    assert_close(&vals(&Tensor::randn((3,), DType::F64).unwrap()), &normal3, 1e-12);
    manual_seed(3);
    assert_close(
        &vals(&Tensor::normal(1.0, 2.0, (3,), DType::F64).unwrap()),
        &shifted,
        1e-12,
    );
    // Explicit generators give the same streams.
    let u = Tensor::uniform_with(-2.0, 5.0, (3,), DType::F64, &mut Generator::seed_from_u64(7)).unwrap();
    assert_close(&vals(&u), &uniform7, 1e-15);
    let n = Tensor::normal_with(1.0, 2.0, (3,), DType::F64, &mut Generator::seed_from_u64(3)).unwrap();
    assert_close(&vals(&n), &shifted, 1e-12);
    let f = Tensor::rand((3,), DType::F32);
    assert_eq!(f.unwrap().dtype(), DType::F32);

    // Moments of larger samples.
    manual_seed(123);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
    };
    let r = vals(&Tensor::rand((20_000,), DType::F32).unwrap());
    assert!(r.iter().all(|&x| (0.0..1.0).contains(&x)));
    assert!(
        (mean(&r) - 0.5).abs() < 0.01 && (var(&r) - 1.0 / 12.0).abs() < 0.005,
        "rand moments"
    );
    let z = vals(&Tensor::randn((20_000,), DType::F64).unwrap());
    assert!(mean(&z).abs() < 0.03 && (var(&z) - 1.0).abs() < 0.05, "randn moments");
    let g = vals(&Tensor::normal(3.0, 2.0, (20_000,), DType::F64).unwrap());
    assert!(
        (mean(&g) - 3.0).abs() < 0.06 && (var(&g).sqrt() - 2.0).abs() < 0.05,
        "normal moments"
    );
    let u = vals(&Tensor::uniform(-2.0, 5.0, (20_000,), DType::F64).unwrap());
    assert!(u.iter().all(|&x| (-2.0..5.0).contains(&x)));
    assert!(
        (mean(&u) - 1.5).abs() < 0.06 && (var(&u) - 49.0 / 12.0).abs() < 0.15,
        "uniform moments"
    );
    assert!(matches!(
        Tensor::rand((2,), DType::I64),
        Err(Error::UnsupportedDType { .. })
    ));
    assert_err(Tensor::randn((2,), DType::I64), "random: not supported for dtype I64");
}

#[test]
fn reading_values_out() {
    let t = t32(&[1.5, -2.0], (2,));
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.5, -2.0]);
    assert_eq!(t.to_vec_f64().unwrap(), vec![1.5, -2.0]);
    assert_err(t.to_vec::<f64>(), "to_vec: dtype mismatch: lhs F32, rhs F64");
    assert_err(t.to_scalar::<f32>(), "to_scalar: expected one element, got shape [2]");
    assert_err(t.item(), "item: expected one element, got shape [2]");
    assert_eq!(t64(&[2.5], (1, 1)).to_scalar::<f64>().unwrap(), 2.5);
    assert!(t64(&[2.5], (1,)).to_scalar::<f32>().is_err());
    assert_eq!(Tensor::scalar(0.25, DType::F32).item().unwrap(), 0.25);
    assert_eq!(ti64(&[7], (1,)).item().unwrap(), 7.0);
    assert_eq!(ti64(&[7], ()).to_scalar::<i64>().unwrap(), 7);
    // Strided views read out in logical row-major order.
    let x = range(6, (2, 3));
    assert_eq!(
        x.t().unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(x.narrow(1, 1, 1).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 4.0]);
    assert_eq!(
        x.to_vec2::<f64>().unwrap(),
        vec![vec![0.0, 1.0, 2.0], vec![3.0, 4.0, 5.0]]
    );
    assert_err(t.to_vec2::<f32>(), "to_vec2: expected a 2-D tensor, got shape [2]");
    assert_eq!(x.dim(-1).unwrap(), 3);
    assert_err(x.dim(2), "dim: dimension 2 out of range for shape [2, 3] (rank 2)");
    assert_eq!((x.rank(), x.elem_count()), (2, 6));
    // copy_ writes through every handle that shares the storage.
    let v = x.narrow(1, 0, 2).unwrap();
    v.copy_(&t64(&[9.0, 8.0, 7.0, 6.0], (2, 2))).unwrap();
    assert_eq!(vals(&x), vec![9.0, 8.0, 2.0, 7.0, 6.0, 5.0]);
    assert_is_err(v.copy_(&t64(&[1.0], (1,))));
}

#[test]
fn display() {
    let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32)
        .unwrap()
        .reshape((2, 3))
        .unwrap();
    assert_eq!(x.to_string(), "[[0.0, 1.0, 2.0],\n [3.0, 4.0, 5.0]]\nTensor[2, 3] F32");
    assert_eq!(
        x.t().unwrap().to_string(),
        "[[0.0, 3.0],\n [1.0, 4.0],\n [2.0, 5.0]]\nTensor[3, 2] F32"
    );
    assert_eq!(Tensor::scalar(2.5, DType::F64).to_string(), "2.5000\nTensor[] F64");
    assert_eq!(Tensor::scalar(3.0, DType::F32).to_string(), "3.0\nTensor[] F32");
    let odd = t64(&[0.25, -1.5, 1e-5, 2e6, f64::NAN], (5,));
    assert_eq!(
        odd.to_string(),
        "[0.2500, -1.5000, 1.0000e-5, 2.0000e6, NaN]\nTensor[5] F64"
    );
    assert_eq!(ti64(&[-3, 7], (2,)).to_string(), "[-3, 7]\nTensor[2] I64");
    assert_eq!(Tensor::zeros((0, 3), DType::F32).to_string(), "[]\nTensor[0, 3] F32");
    assert_eq!(
        range(4, (2, 1, 2)).to_string(),
        "[[[0.0, 1.0]],\n [[2.0, 3.0]]]\nTensor[2, 1, 2] F64"
    );
    let long = range(8, (8, 1));
    assert_eq!(
        long.to_string(),
        "[[0.0],\n [1.0],\n [2.0],\n ...,\n [5.0],\n [6.0],\n [7.0]]\nTensor[8, 1] F64"
    );
    assert_eq!(
        range(10, (10,)).to_string(),
        "[0.0, 1.0, 2.0, ..., 7.0, 8.0, 9.0]\nTensor[10] F64"
    );
}

/// f32 uniform draws stay below the upper bound even where f64 → f32 rounding would reach it.
#[test]
fn f32_uniform_never_returns_the_upper_bound() {
    // 1 − 2⁻³⁰ rounds to 1.0 in f32; any f64 in [1 − 2⁻²⁵, 1) does.
    let mut g = nabla_core::Generator::seed_from_u64(0);
    let t = nabla_core::Tensor::uniform_with(1.0 - 1e-9, 1.0, (1000,), nabla_core::DType::F32, &mut g).unwrap();
    let v = t.to_vec::<f32>().unwrap();
    assert!(v.iter().all(|&x| x < 1.0), "{:?}", v.iter().find(|&&x| x >= 1.0));
}

/// `copy_` from a view of the same buffer reads every value before writing any.
#[test]
fn copy_from_a_view_of_itself_reads_before_writing() {
    let a = nabla_core::Tensor::from_vec(vec![0f32, 1., 2., 3.], (2, 2)).unwrap();
    a.copy_(&a.t().unwrap()).unwrap();
    assert_eq!(a.to_vec::<f32>().unwrap(), vec![0., 2., 1., 3.]);
}
