//! Reductions: sum, mean, var, max/min with their indices, over dims and over everything.

mod common;

use common::*;
use nabla_core::{DType, Error, Tensor};

/// [[1, 2, 3], [4, 5, 6]].
fn x23() -> Tensor {
    t64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3))
}

/// arange(24) as [2, 3, 4]: x[i][j][k] = 12i + 4j + k.
fn x234() -> Tensor {
    Tensor::from_vec((0..24).map(f64::from).collect::<Vec<f64>>(), (2, 3, 4)).unwrap()
}

#[test]
fn sum_over_dims() {
    let x = x23();
    assert_tensor(&x.sum(&[0], false).unwrap(), &[3], &[5.0, 7.0, 9.0]);
    assert_tensor(&x.sum(&[1], false).unwrap(), &[2], &[6.0, 15.0]);
    assert_tensor(&x.sum(&[-1], false).unwrap(), &[2], &[6.0, 15.0]);
    assert_tensor(&x.sum(&[0], true).unwrap(), &[1, 3], &[5.0, 7.0, 9.0]);
    assert_tensor(&x.sum(&[1], true).unwrap(), &[2, 1], &[6.0, 15.0]);
    assert_tensor(&x.sum(&[0, 1], false).unwrap(), &[], &[21.0]);
    assert_tensor(&x.sum(&[1, 0], true).unwrap(), &[1, 1], &[21.0]);
    assert_tensor(&x.sum_all().unwrap(), &[], &[21.0]);
    // A repeated dimension counts once.
    assert_tensor(&x.sum(&[1, -1], false).unwrap(), &[2], &[6.0, 15.0]);

    let y = x234();
    // Leading dim (the fast path): out[j][k] = (4j + k) + (12 + 4j + k) = 12 + 8j + 2k.
    let lead: Vec<f64> = (0..3)
        .flat_map(|j| (0..4).map(move |k| 12.0 + 8.0 * j as f64 + 2.0 * k as f64))
        .collect();
    assert_tensor(&y.sum(&[0], false).unwrap(), &[3, 4], &lead);
    // Middle dim: out[i][k] = 3·12i + (0 + 4 + 8) + 3k.
    assert_tensor(
        &y.sum(&[1], false).unwrap(),
        &[2, 4],
        &[12.0, 15.0, 18.0, 21.0, 48.0, 51.0, 54.0, 57.0],
    );
    // Two separated dims: out[j] = Σᵢₖ 12i + 4j + k = 48 + 32j + 12.
    assert_tensor(&y.sum(&[0, 2], false).unwrap(), &[3], &[60.0, 92.0, 124.0]);
    assert_tensor(&y.sum(&[0, 1], true).unwrap(), &[1, 1, 4], &[60.0, 66.0, 72.0, 78.0]);
    assert_tensor(&y.sum_all().unwrap(), &[], &[276.0]);
    // f32, and a 0-d tensor.
    let f = t32(&[0.5, 0.25, 0.125], (3,));
    assert_tensor32(&f.sum_all().unwrap(), &[], &[0.875]);
    assert_tensor(&Tensor::scalar(4.5, DType::F64).sum_all().unwrap(), &[], &[4.5]);
    // An empty dimension sums to zero.
    let e = Tensor::zeros((0, 3), DType::F64);
    assert_tensor(&e.sum(&[0], false).unwrap(), &[3], &[0.0, 0.0, 0.0]);
}

#[test]
fn sum_gradients() {
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let w = t64(&[1.0, 2.0], (2,));
    let g = x
        .sum(&[1], false)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0], 0.0);
    let w = t64(&[1.0, 2.0, 3.0], (1, 3));
    let g = x
        .sum(&[0], true)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], 0.0);
    let g = x.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &x), &[1.0; 6], 0.0);
}

#[test]
fn sum_to_shape_undoes_broadcasting() {
    let g = x23();
    assert_tensor(&g.sum_to_shape(&(1, 3).into()).unwrap(), &[1, 3], &[5.0, 7.0, 9.0]);
    assert_tensor(&g.sum_to_shape(&(3,).into()).unwrap(), &[3], &[5.0, 7.0, 9.0]);
    assert_tensor(&g.sum_to_shape(&(2, 1).into()).unwrap(), &[2, 1], &[6.0, 15.0]);
    assert_tensor(&g.sum_to_shape(&(1, 1).into()).unwrap(), &[1, 1], &[21.0]);
    assert_tensor(&g.sum_to_shape(&().into()).unwrap(), &[], &[21.0]);
    assert_tensor(
        &g.sum_to_shape(&(2, 3).into()).unwrap(),
        &[2, 3],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    );
    assert_err(
        g.sum_to_shape(&(4,).into()),
        "sum_to_shape: cannot reduce [2, 3] to [4]",
    );
    assert_err(
        g.sum_to_shape(&(1, 2, 3).into()),
        "sum_to_shape: cannot reduce [2, 3] to the larger rank of [1, 2, 3]",
    );
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let grads = x
        .sum_to_shape(&(3,).into())
        .unwrap()
        .mul(&t64(&[1.0, 2.0, 3.0], (3,)))
        .unwrap();
    let grads = grads.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&grads, &x), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], 0.0);
}

#[test]
fn mean_and_var() {
    let x = x23();
    assert_tensor(&x.mean(&[0], false).unwrap(), &[3], &[2.5, 3.5, 4.5]);
    assert_tensor(&x.mean(&[1], true).unwrap(), &[2, 1], &[2.0, 5.0]);
    assert_tensor(&x.mean(&[0, 1], false).unwrap(), &[], &[3.5]);
    assert_tensor(&x.mean_all().unwrap(), &[], &[3.5]);
    assert_tensor32(&t32(&[1.0, 2.0, 4.0, 5.0], (4,)).mean_all().unwrap(), &[], &[3.0]);
    let l = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let g = l.mean(&[1], false).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &l), &[1.0 / 3.0; 6], 1e-15);
    let g = l.mean_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &l), &[1.0 / 6.0; 6], 1e-15);

    // Row 0: mean 2.5, Σ(x − m)² = 5; row 1: mean 5, Σ = 20.
    let x = t64(&[1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0], (2, 4));
    assert_tensor(&x.var(&[1], 1, false).unwrap(), &[2], &[5.0 / 3.0, 20.0 / 3.0]);
    assert_tensor(&x.var(&[1], 0, true).unwrap(), &[2, 1], &[1.25, 5.0]);
    // Pairs (a, b): unbiased variance (a − b)²/2.
    assert_tensor(&x.var(&[0], 1, false).unwrap(), &[4], &[0.5, 2.0, 4.5, 8.0]);
    // Over everything: mean 3.75, Σ(x − m)² = 37.5.
    assert_tensor(&x.var(&[0, 1], 1, false).unwrap(), &[], &[37.5 / 7.0]);
    // ∂var/∂xᵢ = 2(xᵢ − m)/(n − 1): row 0 gives 2·(−1.5, −0.5, 0.5, 1.5)/3.
    let l = leaf(&[1.0, 2.0, 3.0, 4.0], (1, 4));
    let g = l.var(&[1], 1, false).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &l), &[-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0], 1e-14);
    assert_err(
        t64(&[1.0, 2.0], (2, 1)).var(&[1], 1, false),
        "var: 1 elements per group are too few for correction 1 in shape [2, 1]",
    );
}

#[test]
fn max_min_and_their_indices() {
    let x = t64(&[1.0, 5.0, 3.0, 7.0, 2.0, 7.0], (2, 3));
    let (v, i) = x.max(1, false).unwrap();
    assert_tensor(&v, &[2], &[5.0, 7.0]);
    assert_eq!(i.dtype(), DType::I64);
    // Ties: the first maximum wins.
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 0]);
    let (v, i) = x.min(1, true).unwrap();
    assert_tensor(&v, &[2, 1], &[1.0, 2.0]);
    assert_eq!(i.dims(), &[2, 1]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1]);
    let (v, i) = x.max(0, false).unwrap();
    assert_tensor(&v, &[3], &[7.0, 5.0, 7.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1, 0, 1]);
    let (v, i) = x.min(-2, false).unwrap();
    assert_tensor(&v, &[3], &[1.0, 2.0, 3.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1, 0]);
    assert_eq!(x.argmax(1, false).unwrap().to_vec::<i64>().unwrap(), vec![1, 0]);
    assert_eq!(x.argmax(-1, true).unwrap().dims(), &[2, 1]);
    assert_eq!(x.argmin(0, false).unwrap().to_vec::<i64>().unwrap(), vec![0, 1, 0]);
    assert_eq!(x.argmin(1, false).unwrap().to_vec::<i64>().unwrap(), vec![0, 1]);

    // The middle dim of [2, 3, 4] (x = 12i + 4j + k) peaks at j = 2.
    let (v, i) = x234().max(1, false).unwrap();
    assert_tensor(&v, &[2, 4], &[8.0, 9.0, 10.0, 11.0, 20.0, 21.0, 22.0, 23.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![2; 8]);
    let (v, _) = x234().min(2, false).unwrap();
    assert_tensor(&v, &[2, 3], &[0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);

    // NaN propagates, as in PyTorch.
    let (v, i) = t64(&[1.0, f64::NAN, 3.0], (3,)).max(0, false).unwrap();
    assert!(v.item().unwrap().is_nan());
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![1]);

    // f32 keeps its dtype.
    let (v, i) = t32(&[0.5, -1.5, 2.5, 0.0], (2, 2)).max(1, false).unwrap();
    assert_tensor32(&v, &[2], &[0.5, 2.5]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 0]);
}

#[test]
fn max_min_gradients_go_to_the_chosen_element() {
    let x = leaf(&[1.0, 5.0, 3.0, 7.0, 2.0, 7.0], (2, 3));
    let (v, _) = x.max(1, false).unwrap();
    let g = v
        .mul(&t64(&[1.0, 2.0], (2,)))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[0.0, 1.0, 0.0, 2.0, 0.0, 0.0], 0.0);
    let (v, _) = x.min(0, true).unwrap();
    let g = v
        .mul(&t64(&[1.0, 2.0, 3.0], (1, 3)))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad(&g, &x), &[1.0, 0.0, 3.0, 0.0, 2.0, 0.0], 0.0);
    // max_all shares δ among tied maxima; min_all has a single minimum here.
    let m = x.max_all().unwrap();
    assert_tensor(&m, &[], &[7.0]);
    let g = m.backward().unwrap();
    assert_close(&grad(&g, &x), &[0.0, 0.0, 0.0, 0.5, 0.0, 0.5], 0.0);
    let m = x.min_all().unwrap();
    assert_tensor(&m, &[], &[1.0]);
    let g = m.backward().unwrap();
    assert_close(&grad(&g, &x), &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.0);
    // A 0-d input.
    let s = Tensor::scalar(2.5, DType::F64).requires_grad_();
    let m = s.max_all().unwrap();
    assert_tensor(&m, &[], &[2.5]);
    assert_close(&grad(&m.backward().unwrap(), &s), &[1.0], 0.0);
    assert_tensor32(&t32(&[3.0, -1.0, 8.0], (3,)).min_all().unwrap(), &[], &[-1.0]);
}

#[test]
fn count_nonzero() {
    assert_eq!(t64(&[0.0, 1.5, -2.0, 0.0], (4,)).count_nonzero().unwrap(), 2);
    assert_eq!(ti64(&[0, 3, 0], (3,)).count_nonzero().unwrap(), 1);
}

#[test]
fn gradchecks() {
    let x = t64(
        &[0.3, -1.2, 2.5, 0.9, -0.4, 1.7, 1.1, -2.2, 0.6, 0.05, 1.4, -0.8],
        (2, 3, 2),
    );
    check(|t| t[0].sum(&[1], false), std::slice::from_ref(&x));
    check(|t| t[0].sum(&[0, 2], true), std::slice::from_ref(&x));
    check(|t| t[0].sum_all(), std::slice::from_ref(&x));
    check(|t| t[0].sum_to_shape(&(3, 1).into()), std::slice::from_ref(&x));
    check(|t| t[0].mean(&[-1], false), std::slice::from_ref(&x));
    check(|t| t[0].mean(&[0, 1], true), std::slice::from_ref(&x));
    check(|t| t[0].mean_all(), std::slice::from_ref(&x));
    check(|t| t[0].var(&[1], 1, false), std::slice::from_ref(&x));
    check(|t| t[0].var(&[0, 2], 0, true), std::slice::from_ref(&x));
    // All values distinct, so the arg-extrema do not move under ±ε.
    check(|t| Ok(t[0].max(1, false)?.0), std::slice::from_ref(&x));
    check(|t| Ok(t[0].min(2, true)?.0), std::slice::from_ref(&x));
    check(|t| Ok(t[0].max(0, true)?.0), std::slice::from_ref(&x));
    check(|t| t[0].max_all(), std::slice::from_ref(&x));
    check(|t| t[0].min_all(), std::slice::from_ref(&x));
    // Composite: a normalisation (x − mean)/sqrt(var + 1).
    check(
        |t| {
            t[0].sub(&t[0].mean(&[1], true)?)?
                .div(&t[0].var(&[1], 0, true)?.add_scalar(1.0)?.sqrt()?)
        },
        &[x],
    );
}

#[test]
fn strided_inputs_match_contiguous_copies() {
    let v = [0.5, 1.25, 2.0, 0.75, 1.5, 2.5];
    check_views(v, |t| t.sum(&[0], false));
    check_views(v, |t| t.sum(&[1], true));
    check_views(v, |t| t.sum_all());
    check_views(v, |t| t.sum_to_shape(&(1, 3).into()));
    check_views(v, |t| t.mean(&[1], false));
    check_views(v, |t| t.mean_all());
    check_views(v, |t| t.var(&[1], 1, true));
    check_views(v, |t| t.var(&[0, 1], 0, false));
    check_views(v, |t| Ok(t.max(1, false)?.0));
    check_views(v, |t| Ok(t.min(0, false)?.0));
    check_views(v, |t| {
        t.argmax(1, false)?.to_dtype(DType::F64)?.add(&t.sum(&[1], false)?)
    });
    check_views(v, |t| t.max_all());
    check_views(v, |t| t.min_all());
    // Contiguous views with an offset (rows 1..3 of a 3×3): the fast paths must honour it.
    let base = t64(&[9.0, 9.0, 9.0, 1.0, 5.0, 2.0, 4.0, 3.0, 6.0], (3, 3));
    let rows = base.narrow(0, 1, 2).unwrap(); // [[1, 5, 2], [4, 3, 6]]
    assert!(rows.is_contiguous());
    assert_tensor(&rows.sum(&[0], false).unwrap(), &[3], &[5.0, 8.0, 8.0]);
    assert_tensor(&rows.sum(&[1], false).unwrap(), &[2], &[8.0, 13.0]);
    assert_tensor(&rows.sum_all().unwrap(), &[], &[21.0]);
    assert_tensor(&rows.mean(&[1], false).unwrap(), &[2], &[8.0 / 3.0, 13.0 / 3.0]);
    assert_tensor(&rows.max(1, false).unwrap().0, &[2], &[5.0, 6.0]);
    assert_eq!(rows.argmin(1, false).unwrap().to_vec::<i64>().unwrap(), vec![0, 1]);
    assert_tensor(&rows.max_all().unwrap(), &[], &[6.0]);
    // Arg-indices of a transposed view.
    let base = t64(&[1.0, 9.0, 8.0, 2.0, 3.0, 7.0], (3, 2));
    let view = base.t().unwrap(); // [[1, 8, 3], [9, 2, 7]]
    assert_eq!(view.argmax(1, false).unwrap().to_vec::<i64>().unwrap(), vec![1, 0]);
    assert_eq!(view.argmin(0, false).unwrap().to_vec::<i64>().unwrap(), vec![0, 1, 0]);
}

#[test]
fn bad_dims_are_errors() {
    let x = x23();
    assert_err(
        x.sum(&[2], false),
        "sum: dimension 2 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.sum(&[-3], true),
        "sum: dimension -3 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.mean(&[5], false),
        "mean: dimension 5 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.var(&[2], 1, false),
        "var: dimension 2 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.max(2, false),
        "max: dimension 2 out of range for shape [2, 3] (rank 2)",
    );
    assert_err(
        x.min(-3, false),
        "min: dimension -3 out of range for shape [2, 3] (rank 2)",
    );
    assert_is_err(x.argmax(7, false));
    assert_is_err(x.argmin(-7, false));
    let empty = Tensor::zeros((2, 0), DType::F64);
    assert_err(empty.max(1, false), "max: dimension 1 of [2, 0] is empty");
    assert_is_err(empty.max_all());
    assert_is_err(empty.min_all());
    // Σ of integers exists (as in PyTorch), the same on every device.
    assert_eq!(ti64(&[1, 2], (2,)).sum_all().unwrap().to_vec::<i64>().unwrap(), vec![3]);
    assert!(matches!(
        ti64(&[1, 2], (2,)).max(0, false),
        Err(Error::UnsupportedDType { .. })
    ));
}

#[test]
fn sum_over_outer_and_inner_blocks_keeps_the_middle() {
    // x[a, b, c] = 100a + 10b + c, shape [2, 3, 4]: Σ over a and c of x = 2·4·10b + 4·(0 + 100) + 2·(0+1+2+3).
    let v: Vec<f64> = (0..2)
        .flat_map(|a| (0..3).flat_map(move |b| (0..4).map(move |c| (100 * a + 10 * b + c) as f64)))
        .collect();
    let x = nabla_core::Tensor::from_vec(v, (2, 3, 4)).unwrap();
    let s = x.sum(&[0, 2], false).unwrap().to_vec::<f64>().unwrap();
    let expect: Vec<f64> = (0..3).map(|b| (80 * b + 400 + 12) as f64).collect();
    assert_eq!(s, expect);
    // Row sums (A = 1) of a 2-D slice, and a view that is not contiguous takes the general path.
    let rows = x.narrow(0, 1, 1).unwrap().squeeze(0).unwrap();
    assert_eq!(
        rows.sum(&[1], false).unwrap().to_vec::<f64>().unwrap(),
        vec![406.0, 446.0, 486.0]
    );
    let t = x.transpose(0, 2).unwrap();
    assert_eq!(t.sum(&[0, 2], false).unwrap().to_vec::<f64>().unwrap(), expect);
}
