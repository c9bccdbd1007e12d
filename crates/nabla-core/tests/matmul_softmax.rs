//! Matrix products (2-D, batched, broadcast batch, 1-D operands), softmax/log_softmax and
//! dropout.

mod common;

use common::*;
use nabla_core::{DType, Error, Generator, Tensor};

/// C = A·B by three loops, for row-major A (m×k) and B (k×n).
fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

/// Deterministic values in [−1, 1).
fn filler(n: usize, salt: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729) % 211) as f64 / 105.5 - 1.0)
        .collect()
}

/// The transpose of a row-major r×c matrix.
fn transposed(v: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c).flat_map(|j| (0..r).map(move |i| v[i * c + j])).collect()
}

#[test]
fn matmul_2d_values_and_gradients() {
    let a = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let b = leaf(&[7.0, 8.0, 9.0, 10.0, 11.0, 12.0], (3, 2));
    let c = a.matmul(&b).unwrap();
    assert_tensor(&c, &[2, 2], &[58.0, 64.0, 139.0, 154.0]);
    let g = c.sum_all().unwrap().backward().unwrap();
    // δA = 1·Bᵀ: each row holds the row sums of B; δB = Aᵀ·1: each row the column sums of A.
    assert_close(&grad(&g, &a), &[15.0, 19.0, 23.0, 15.0, 19.0, 23.0], 0.0);
    assert_close(&grad(&g, &b), &[5.0, 5.0, 7.0, 7.0, 9.0, 9.0], 0.0);
    let c32 = t32(&[1.0, 2.0, 3.0, 4.0], (2, 2))
        .matmul(&t32(&[5.0, 6.0, 7.0, 8.0], (2, 2)))
        .unwrap();
    assert_tensor32(&c32, &[2, 2], &[19.0, 22.0, 43.0, 50.0]);
    // k = 0 gives zeros; m = 0 gives an empty result.
    let z = Tensor::zeros((2, 0), DType::F64)
        .matmul(&Tensor::zeros((0, 3), DType::F64))
        .unwrap();
    assert_tensor(&z, &[2, 3], &[0.0; 6]);
    assert_eq!(
        Tensor::zeros((0, 4), DType::F32)
            .matmul(&Tensor::ones((4, 3), DType::F32))
            .unwrap()
            .dims(),
        &[0, 3]
    );
}

#[test]
fn matmul_batched_and_broadcast() {
    // A₀ = [[1, 2], [3, 4]], A₁ = [[0, 1], [1, 0]]; B₀ = [[5, 6], [7, 8]], B₁ = [[1, 2], [3, 4]].
    let a = leaf(&[1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 1.0, 0.0], (2, 2, 2));
    let b = t64(&[5.0, 6.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0], (2, 2, 2));
    assert_tensor(
        &a.matmul(&b).unwrap(),
        &[2, 2, 2],
        &[19.0, 22.0, 43.0, 50.0, 3.0, 4.0, 1.0, 2.0],
    );
    // Broadcast batch: every Aᵢ times B₀ (A₁ swaps B₀'s rows); δB₀ sums Aᵢᵀ·1 over the batch.
    let b0 = leaf(&[5.0, 6.0, 7.0, 8.0], (2, 2));
    let c = a.matmul(&b0).unwrap();
    assert_tensor(&c, &[2, 2, 2], &[19.0, 22.0, 43.0, 50.0, 7.0, 8.0, 5.0, 6.0]);
    let g = c.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &b0), &[5.0, 5.0, 7.0, 7.0], 0.0);
    // δAᵢ = 1·B₀ᵀ: rows [11, 15].
    assert_close(&grad(&g, &a), &[11.0, 15.0, 11.0, 15.0, 11.0, 15.0, 11.0, 15.0], 0.0);
    // Both sides broadcast: [2, 1, 2, 2] · [3, 2, 2] → [2, 3, 2, 2].
    let l = t64(&[1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0], (2, 1, 2, 2)); // I and 2I
    let r = t64(
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        (3, 2, 2),
    );
    let c = l.matmul(&r).unwrap();
    assert_eq!(c.dims(), &[2, 3, 2, 2]);
    let rv = vals(&r);
    let twice: Vec<f64> = rv.iter().map(|x| 2.0 * x).collect();
    assert_close(&vals(&c), &[rv, twice].concat(), 0.0);
}

#[test]
fn matmul_with_vectors() {
    let v = t64(&[1.0, 2.0, 3.0], (3,));
    let w = t64(&[4.0, 5.0, 6.0], (3,));
    assert_tensor(&v.matmul(&w).unwrap(), &[], &[32.0]);
    let m = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    assert_tensor(&m.matmul(&v).unwrap(), &[2], &[14.0, 32.0]);
    assert_tensor(&t64(&[1.0, 2.0], (2,)).matmul(&m).unwrap(), &[3], &[9.0, 12.0, 15.0]);
    // Batched matrix · vector, and vector · batched matrix.
    let bm = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0], (2, 2, 3));
    assert_tensor(&bm.matmul(&v).unwrap(), &[2, 2], &[14.0, 32.0, 1.0, 2.0]);
    assert_tensor(
        &t64(&[1.0, 1.0], (2,)).matmul(&bm).unwrap(),
        &[2, 3],
        &[5.0, 7.0, 9.0, 1.0, 1.0, 0.0],
    );
    // Gradients of the dot product: δv = w, δw = v.
    let (lv, lw) = (leaf(&[1.0, 2.0, 3.0], (3,)), leaf(&[4.0, 5.0, 6.0], (3,)));
    let g = lv.matmul(&lw).unwrap().backward().unwrap();
    assert_close(&grad(&g, &lv), &[4.0, 5.0, 6.0], 0.0);
    assert_close(&grad(&g, &lw), &[1.0, 2.0, 3.0], 0.0);
    // M·v: δv = Mᵀ·1 = column sums of M.
    let lm = leaf(&vals(&m), (2, 3));
    let g = lm.matmul(&lv).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &lv), &[5.0, 7.0, 9.0], 0.0);
    assert_close(&grad(&g, &lm), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], 0.0);
}

#[test]
fn matmul_large_and_strided_match_three_loops() {
    // Large enough for the parallel GEMM path (m·n·k ≥ 64³) and a batch for the parallel batch path.
    let (m, k, n) = (70, 80, 90);
    let (a, b) = (filler(m * k, 1), filler(k * n, 2));
    let exp = naive(&a, &b, m, k, n);
    let c = t64(&a, (m, k)).matmul(&t64(&b, (k, n))).unwrap();
    assert_close(&vals(&c), &exp, 1e-12);
    // Operands stored transposed (column-major views).
    let at = t64(&transposed(&a, m, k), (k, m)).t().unwrap();
    let bt = t64(&transposed(&b, k, n), (n, k)).t().unwrap();
    assert!(!at.is_contiguous() && !bt.is_contiguous());
    assert_close(&vals(&at.matmul(&bt).unwrap()), &exp, 1e-12);
    // A narrowed lhs: columns 5..5+k of a wider matrix.
    let wide: Vec<f64> = (0..m)
        .flat_map(|i| [vec![9.0; 5], a[i * k..(i + 1) * k].to_vec(), vec![9.0; 3]].concat())
        .collect();
    let an = t64(&wide, (m, k + 8)).narrow(1, 5, k).unwrap();
    assert_close(&vals(&an.matmul(&t64(&b, (k, n))).unwrap()), &exp, 1e-12);
    // f32 against the f64 reference.
    let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
    let c32 = t32(&a32, (m, k)).matmul(&t32(&b32, (k, n))).unwrap();
    assert_close(&vals(&c32), &exp, 1e-5);
    // A batch of 16 small products, each checked on its own.
    let (bs, m, k, n) = (16, 5, 7, 3);
    let (a, b) = (filler(bs * m * k, 3), filler(bs * k * n, 4));
    let c = t64(&a, (bs, m, k)).matmul(&t64(&b, (bs, k, n))).unwrap();
    let exp: Vec<f64> = (0..bs)
        .flat_map(|i| naive(&a[i * m * k..(i + 1) * m * k], &b[i * k * n..(i + 1) * k * n], m, k, n))
        .collect();
    assert_close(&vals(&c), &exp, 1e-12);
    // Contiguous operands with an offset: rows 1..3 of a 3×2 times rows 1..3 of a 3×2.
    let l = t64(&[9.0, 9.0, 1.0, 2.0, 3.0, 4.0], (3, 2)).narrow(0, 1, 2).unwrap(); // [[1, 2], [3, 4]]
    let r = t64(&[9.0, 9.0, 5.0, 6.0, 7.0, 8.0], (3, 2)).narrow(0, 1, 2).unwrap(); // [[5, 6], [7, 8]]
    assert_tensor(&l.matmul(&r).unwrap(), &[2, 2], &[19.0, 22.0, 43.0, 50.0]);
    assert_tensor(&l.softmax(1).unwrap().sum(&[1], false).unwrap(), &[2], &[1.0, 1.0]);
    // A broadcast (stride-0) operand inside the matrix dims: every row of the lhs is the same.
    let row = t64(&[1.0, -2.0, 0.5], (1, 3)).broadcast_to((4, 3)).unwrap();
    let r = t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2));
    assert_tensor(
        &row.matmul(&r).unwrap(),
        &[4, 2],
        &[-2.5, -3.0, -2.5, -3.0, -2.5, -3.0, -2.5, -3.0],
    );
    let col = t64(&[1.0, 2.0, 3.0], (3, 1)).broadcast_to((3, 2)).unwrap(); // [[1, 1], [2, 2], [3, 3]]
    assert_tensor(
        &t64(&[1.0, 0.0, 1.0], (1, 3)).matmul(&col).unwrap(),
        &[1, 2],
        &[4.0, 4.0],
    );
}

#[test]
fn matmul_gradchecks() {
    let a = t64(&filler(6, 5), (2, 3));
    let b = t64(&filler(12, 6), (3, 4));
    check(|t| t[0].matmul(&t[1]), &[a.clone(), b.clone()]);
    check(|t| t[1].t()?.matmul(&t[0].t()?), &[a.clone(), b.clone()]);
    let ba = t64(&filler(12, 7), (2, 2, 3));
    let bb = t64(&filler(24, 8), (2, 3, 4));
    check(|t| t[0].matmul(&t[1]), &[ba.clone(), bb.clone()]);
    check(|t| t[0].matmul(&t[1]), &[ba.clone(), b.clone()]);
    check(
        |t| t[1].transpose(-1, -2)?.matmul(&t[0].transpose(-1, -2)?),
        &[ba.clone(), b.clone()],
    );
    let l4 = t64(&filler(12, 9), (2, 1, 2, 3));
    check(|t| t[0].matmul(&t[1]), &[l4, bb.clone()]);
    let v = t64(&filler(3, 10), (3,));
    let w = t64(&filler(4, 11), (4,));
    check(|t| t[0].matmul(&t[1]), &[v.clone(), v.exp().unwrap()]);
    check(|t| t[0].matmul(&t[1]), &[a.clone(), v.clone()]);
    check(|t| t[0].matmul(&t[1]), &[v.clone(), b.clone()]);
    check(|t| t[0].matmul(&t[1]), &[bb.clone(), w]);
    check(|t| t[0].matmul(&t[1]), &[v, bb]);
}

#[test]
fn matmul_strided_inputs_match_contiguous_copies() {
    let v = [0.5, 1.25, 2.0, 0.75, 1.5, 2.5];
    let r = t64(&[1.0, -1.0, 2.0, 0.5, -0.5, 3.0], (3, 2));
    let l = t64(&[2.0, -1.0, 0.5, 1.5], (2, 2));
    check_views(v, move |t| t.matmul(&r));
    check_views(v, move |t| l.matmul(t));
    check_views(v, |t| t.matmul(&t.t()?));
    check_views(v, |t| t.matmul(&t64(&[1.0, 2.0, -1.0], (3,))));
}

#[test]
fn matmul_errors() {
    let x = Tensor::zeros((32, 784), DType::F32);
    let w = Tensor::zeros((512, 10), DType::F32);
    assert_err(
        x.matmul(&w),
        "matmul: lhs [32, 784] and rhs [512, 10] do not match: 784 != 512",
    );
    assert_err(
        Tensor::zeros((2, 2, 3), DType::F32).matmul(&Tensor::zeros((3, 3, 2), DType::F32)),
        "matmul: batch dimensions of lhs [2, 2, 3] and rhs [3, 3, 2] cannot be broadcast",
    );
    assert_err(
        Tensor::scalar(1.0, DType::F32).matmul(&w),
        "matmul: both operands need at least one dimension, got [] and [512, 10]",
    );
    assert_err(
        Tensor::zeros((2, 3), DType::F32).matmul(&Tensor::zeros((3, 2), DType::F64)),
        "matmul: dtype mismatch: lhs F32, rhs F64",
    );
    assert_is_err(t64(&[1.0, 2.0, 3.0], (3,)).matmul(&t64(&[1.0, 2.0], (2,))));
    assert!(matches!(
        ti64(&[1, 2, 3, 4], (2, 2)).matmul(&ti64(&[1, 2, 3, 4], (2, 2))),
        Err(Error::UnsupportedDType { .. })
    ));
}

#[test]
fn softmax_and_log_softmax_values() {
    // softmax(ln 1, ln 2, ln 3, ln 4) = (1, 2, 3, 4)/10.
    let x = t64(&[0.0, 2f64.ln(), 3f64.ln(), 4f64.ln()], (4,));
    assert_tensor(&x.softmax(0).unwrap(), &[4], &[0.1, 0.2, 0.3, 0.4]);
    let logs = [
        -2.3025850929940455,
        -1.6094379124341003,
        -1.2039728043259361,
        -0.916290731874155,
    ];
    assert_tensor(&x.log_softmax(-1).unwrap(), &[4], &logs);
    // Shift invariance keeps large inputs finite.
    let big = x.add_scalar(1000.0).unwrap();
    assert_tensor(&big.softmax(0).unwrap(), &[4], &[0.1, 0.2, 0.3, 0.4]);
    assert_tensor(&big.log_softmax(0).unwrap(), &[4], &logs);
    let neg = x.add_scalar(-1000.0).unwrap();
    assert_tensor(&neg.log_softmax(0).unwrap(), &[4], &logs);
    // −∞ gets probability 0.
    assert_tensor(
        &t64(&[f64::NEG_INFINITY, 0.0], (2,)).softmax(0).unwrap(),
        &[2],
        &[0.0, 1.0],
    );

    // [[0, ln 3], [0, 0]]: rows give (¼, ¾) and (½, ½); columns (½, ½) and (¾, ¼).
    let m = t64(&[0.0, 3f64.ln(), 0.0, 0.0], (2, 2));
    assert_tensor(&m.softmax(1).unwrap(), &[2, 2], &[0.25, 0.75, 0.5, 0.5]);
    assert_tensor(&m.softmax(-1).unwrap(), &[2, 2], &[0.25, 0.75, 0.5, 0.5]);
    assert_tensor(&m.softmax(0).unwrap(), &[2, 2], &[0.5, 0.75, 0.5, 0.25]);
    let half = 0.5f64.ln();
    assert_tensor(
        &m.log_softmax(0).unwrap(),
        &[2, 2],
        &[half, 0.75f64.ln(), half, 0.25f64.ln()],
    );
    // The middle dim of [2, 2, 2]: pairs (x[i][0][k], x[i][1][k]).
    let t = t64(&[0.0, 0.0, 3f64.ln(), 0.0, 0.0, 2f64.ln(), 0.0, 0.0], (2, 2, 2));
    let third = 1.0 / 3.0;
    assert_tensor(
        &t.softmax(1).unwrap(),
        &[2, 2, 2],
        &[0.25, 0.5, 0.75, 0.5, 0.5, 2.0 * third, 0.5, third],
    );
    // f32.
    let f = t32(&[0.0, 3f32.ln()], (1, 2));
    assert_tensor32(&f.softmax(1).unwrap(), &[1, 2], &[0.25, 0.75]);
    assert_tensor32(&f.log_softmax(1).unwrap(), &[1, 2], &[0.25f64.ln(), 0.75f64.ln()]);
}

#[test]
fn softmax_gradients_by_hand() {
    // L = Σ wᵢ·softmax(x)ᵢ:  ∂L/∂xᵢ = yᵢ(wᵢ − Σⱼ yⱼwⱼ); with y = (.1, .2, .3, .4), w = e₀: Σ = 0.1.
    let x = leaf(&[0.0, 2f64.ln(), 3f64.ln(), 4f64.ln()], (4,));
    let w = t64(&[1.0, 0.0, 0.0, 0.0], (4,));
    let g = x
        .softmax(0)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[0.09, -0.02, -0.03, -0.04], 1e-14);
    // L = Σ wᵢ·log_softmax(x)ᵢ:  ∂L/∂xᵢ = wᵢ − yᵢ·Σⱼ wⱼ.
    let g = x
        .log_softmax(0)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[0.9, -0.2, -0.3, -0.4], 1e-14);
    // Σ softmax = 1 is constant: a zero gradient.
    let g = x.softmax(0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &x), &[0.0; 4], 1e-15);
}

#[test]
fn softmax_gradchecks_and_strided_inputs() {
    let x = t64(&filler(24, 12).iter().map(|v| 3.0 * v).collect::<Vec<_>>(), (2, 3, 4));
    for dim in [0, 1, 2, -1] {
        check(|t| t[0].softmax(dim), std::slice::from_ref(&x));
        check(|t| t[0].log_softmax(dim), std::slice::from_ref(&x));
    }
    check(|t| t[0].transpose(0, 2)?.softmax(1), std::slice::from_ref(&x));
    let v = [0.5, 1.25, 2.0, 0.75, 1.5, 2.5];
    for dim in [0, 1, -1] {
        check_views(v, move |t| t.softmax(dim));
        check_views(v, move |t| t.log_softmax(dim));
    }
}

#[test]
fn softmax_of_many_rows_matches_the_formula() {
    // 300 rows of 128: above the threshold where rows are processed in parallel.
    let (rows, cols) = (300, 128);
    let v: Vec<f64> = filler(rows * cols, 15).iter().map(|x| 4.0 * x).collect();
    let exp: Vec<f64> = v
        .chunks(cols)
        .flat_map(|r| {
            let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = r.iter().map(|x| (x - m).exp()).sum();
            r.iter().map(move |x| (x - m).exp() / s).collect::<Vec<_>>()
        })
        .collect();
    let x = t64(&v, (rows, cols));
    assert_close(&vals(&x.softmax(1).unwrap()), &exp, 1e-13);
    let logs: Vec<f64> = exp.iter().map(|p| p.ln()).collect();
    assert_close(&vals(&x.log_softmax(-1).unwrap()), &logs, 1e-13);
    // The same rows as columns of the transpose.
    let xt = t64(&transposed(&v, rows, cols), (cols, rows));
    assert_close(&vals(&xt.softmax(0).unwrap().t().unwrap()), &exp, 1e-13);
}

#[test]
fn softmax_errors() {
    let x = Tensor::zeros((2, 3), DType::F32);
    assert_err(
        x.softmax(2),
        "softmax: dimension 2 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.log_softmax(-3),
        "log_softmax: dimension -3 out of range for shape [2, 3] (rank 2)",
    );
    assert!(matches!(
        ti64(&[1, 2], (2,)).softmax(0),
        Err(Error::UnsupportedDType { .. })
    ));
    assert_is_err(Tensor::scalar(1.0, DType::F32).softmax(1));
}

#[test]
fn dropout_statistics_and_determinism() {
    let n = 100_000;
    let x = Tensor::ones((n,), DType::F32);
    let y = x.dropout(0.3, &mut Generator::seed_from_u64(42)).unwrap();
    assert_eq!(y.dtype(), DType::F32);
    let v = vals(&y);
    let zeros = v.iter().filter(|&&x| x == 0.0).count() as f64 / n as f64;
    assert!((zeros - 0.3).abs() < 0.01, "dropped fraction {zeros}");
    // Survivors are scaled by 1/(1 − p) = 1/0.7 (in f32), so the mean stays ≈ 1.
    let scale = (1.0f64 / 0.7) as f32 as f64;
    assert!(
        v.iter().all(|&x| x == 0.0 || x == scale),
        "values other than 0 and 1/0.7"
    );
    let mean = v.iter().sum::<f64>() / n as f64;
    assert!((mean - 1.0).abs() < 0.015, "mean {mean}");
    // Same seed, same mask; another seed, another mask.
    let again = x.dropout(0.3, &mut Generator::seed_from_u64(42)).unwrap();
    assert_eq!(vals(&again), v);
    let other = x.dropout(0.3, &mut Generator::seed_from_u64(43)).unwrap();
    assert_ne!(vals(&other), v);
    // One generator advances: two calls in a row give two different masks.
    let mut g = Generator::seed_from_u64(42);
    let first = vals(&x.dropout(0.3, &mut g).unwrap());
    assert_eq!(first, v);
    assert_ne!(vals(&x.dropout(0.3, &mut g).unwrap()), v);
    // p = 0 is the identity, p = 1 zeroes everything.
    let z = t64(&[1.5, -2.0, 3.0], (3,));
    assert_tensor(
        &z.dropout(0.0, &mut Generator::seed_from_u64(1)).unwrap(),
        &[3],
        &[1.5, -2.0, 3.0],
    );
    assert_tensor(
        &z.dropout(1.0, &mut Generator::seed_from_u64(1)).unwrap(),
        &[3],
        &[0.0, 0.0, 0.0],
    );
    // p = 0.5 on a strided input: every value is 0 or 2·x.
    let base = t64(&filler(200, 13), (20, 10));
    let view = base.t().unwrap();
    let d = view.dropout(0.5, &mut Generator::seed_from_u64(5)).unwrap();
    for (o, i) in vals(&d).iter().zip(vals(&view)) {
        assert!(*o == 0.0 || *o == 2.0 * i, "{o} from {i}");
    }
}

#[test]
fn dropout_gradient_is_the_mask() {
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], (8,));
    let y = x.dropout(0.5, &mut Generator::seed_from_u64(9)).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    // δx = mask/(1 − p): 2 where kept (y = 2x), 0 where dropped.
    let exp: Vec<f64> = vals(&y).iter().map(|&v| if v == 0.0 { 0.0 } else { 2.0 }).collect();
    assert_close(&grad(&g, &x), &exp, 0.0);
    assert!(
        exp.contains(&0.0) && exp.contains(&2.0),
        "seed 9 should both keep and drop: {exp:?}"
    );
    let x = t64(&filler(12, 14), (2, 3, 2));
    check(
        |t| t[0].dropout(0.4, &mut Generator::seed_from_u64(3)),
        std::slice::from_ref(&x),
    );
    check(
        |t| t[0].dropout2d(0.4, &mut Generator::seed_from_u64(3)),
        std::slice::from_ref(&x),
    );
}

#[test]
fn dropout2d_zeroes_whole_channels() {
    let (n, c) = (64, 64);
    let x = Tensor::ones((n, c, 2, 3), DType::F64);
    let y = x.dropout2d(0.5, &mut Generator::seed_from_u64(11)).unwrap();
    let v = vals(&y);
    let mut dropped = 0;
    for map in v.chunks(6) {
        assert!(
            map.iter().all(|&x| x == map[0]),
            "a channel is zeroed or kept as a whole: {map:?}"
        );
        assert!(map[0] == 0.0 || map[0] == 2.0);
        dropped += usize::from(map[0] == 0.0);
    }
    let frac = dropped as f64 / (n * c) as f64;
    assert!((frac - 0.5).abs() < 0.04, "dropped channel fraction {frac}");
    let again = x.dropout2d(0.5, &mut Generator::seed_from_u64(11)).unwrap();
    assert_eq!(vals(&again), v);
    // [N, C] works too (each element its own channel).
    assert_eq!(
        Tensor::ones((4, 5), DType::F32)
            .dropout2d(0.2, &mut Generator::seed_from_u64(1))
            .unwrap()
            .dims(),
        &[4, 5]
    );

    let mut g = Generator::seed_from_u64(0);
    assert_err(
        Tensor::ones((4,), DType::F32).dropout2d(0.5, &mut g),
        "dropout2d: expected at least [N, C], got shape [4]",
    );
    assert_err(
        x.dropout(1.5, &mut g),
        "dropout: probability must be in [0, 1], got 1.5",
    );
    assert_err(
        x.dropout(-0.1, &mut g),
        "dropout: probability must be in [0, 1], got -0.1",
    );
    assert_is_err(x.dropout(f64::NAN, &mut g));
    assert_is_err(x.dropout2d(2.0, &mut g));
}

/// The fused softmax cross-entropy: the loss against ln Σ e^x − x_t worked out from the
/// definition, the gradient by finite differences in f64, for the mean and the sum.
#[test]
fn fused_softmax_cross_entropy_values_and_gradient() {
    use nabla_core::{GradcheckOptions, gradcheck};
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 0.5, -1.0, 0.0, 3.0], (2, 3)).unwrap();
    let t = Tensor::from_vec(vec![1i64, 2], (2,)).unwrap();
    let row = |v: &[f64], k: usize| v.iter().map(|a| a.exp()).sum::<f64>().ln() - v[k];
    let want = [row(&[1.0, 2.0, 0.5], 1), row(&[-1.0, 0.0, 3.0], 2)];
    let mean = x.softmax_cross_entropy(&t, true).unwrap().to_scalar::<f64>().unwrap();
    let sum = x.softmax_cross_entropy(&t, false).unwrap().to_scalar::<f64>().unwrap();
    assert!((mean - (want[0] + want[1]) / 2.0).abs() < 1e-12, "{mean}");
    assert!((sum - (want[0] + want[1])).abs() < 1e-12, "{sum}");
    for m in [true, false] {
        let worst = gradcheck(
            |xs| xs[0].softmax_cross_entropy(&t, m),
            std::slice::from_ref(&x),
            GradcheckOptions::default(),
        )
        .unwrap();
        assert!(worst < 1e-6, "{worst}");
    }
    // Equal to the composition log_softmax → pick → mean, on a strided input too.
    let z = Tensor::randn((5, 4), nabla_core::DType::F64).unwrap();
    let zt = z.t().unwrap().contiguous().unwrap().t().unwrap();
    let tt = Tensor::from_vec(vec![0i64, 3, 1, 2, 3], (5,)).unwrap();
    let composed = z
        .log_softmax(1)
        .unwrap()
        .gather(1, &tt.unsqueeze(1).unwrap())
        .unwrap()
        .neg()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let fused = zt.softmax_cross_entropy(&tt, true).unwrap().to_scalar::<f64>().unwrap();
    assert!((fused - composed).abs() < 1e-12);
}
