//! Element-wise ops: forward values and gradients worked out by hand, gradchecks in f64,
//! strided inputs against contiguous copies, and the errors of mismatched operands.

mod common;

use common::*;
use nabla_core::{DType, Result, Tensor};
use std::f64::consts::{LN_2, SQRT_2};

/// y = op(x) and ∂Σy/∂x for an f64 leaf holding `x`.
fn unary(op: impl Fn(&Tensor) -> Result<Tensor>, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let x = leaf(x, (x.len(),));
    let y = op(&x).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    (vals(&y), grad(&grads, &x))
}

/// z = op(a, b) and the gradients of Σz for a [2, 3] `a` and a broadcast [3] `b`.
fn binary(op: impl Fn(&Tensor, &Tensor) -> Result<Tensor>, a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (a, b) = (leaf(a, (2, 3)), leaf(b, (3,)));
    let z = op(&a, &b).unwrap();
    assert_eq!(z.dims(), &[2, 3]);
    let grads = z.sum_all().unwrap().backward().unwrap();
    (vals(&z), grad(&grads, &a), grad(&grads, &b))
}

const A: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
const B: [f64; 3] = [10.0, 20.0, 30.0];

#[test]
fn add_sub_mul_div_broadcast_rows() {
    let (z, ga, gb) = binary(|a, b| a.add(b), &A, &B);
    assert_close(&z, &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0], 0.0);
    assert_close(&ga, &[1.0; 6], 0.0);
    assert_close(&gb, &[2.0, 2.0, 2.0], 0.0);

    let (z, ga, gb) = binary(|a, b| a.sub(b), &A, &B);
    assert_close(&z, &[-9.0, -18.0, -27.0, -6.0, -15.0, -24.0], 0.0);
    assert_close(&ga, &[1.0; 6], 0.0);
    assert_close(&gb, &[-2.0, -2.0, -2.0], 0.0);

    // Σ a·b: δa = b (per row), δb = column sums of a.
    let (z, ga, gb) = binary(|a, b| a.mul(b), &A, &B);
    assert_close(&z, &[10.0, 40.0, 90.0, 40.0, 100.0, 180.0], 0.0);
    assert_close(&ga, &[10.0, 20.0, 30.0, 10.0, 20.0, 30.0], 0.0);
    assert_close(&gb, &[5.0, 7.0, 9.0], 0.0);

    // Σ a/b: δa = 1/b, δb = −(column sum of a)/b².
    let (z, ga, gb) = binary(|a, b| a.div(b), &A, &B);
    assert_close(&z, &[0.1, 0.1, 0.1, 0.4, 0.25, 0.2], 1e-15);
    assert_close(&ga, &[0.1, 0.05, 1.0 / 30.0, 0.1, 0.05, 1.0 / 30.0], 1e-15);
    assert_close(&gb, &[-0.05, -0.0175, -0.01], 1e-15);
}

#[test]
fn binary_ops_broadcast_both_sides_in_f32() {
    // [2, 1] against [3] gives [2, 3].
    let col = t32(&[1.0, 2.0], (2, 1));
    let row = t32(&[10.0, 20.0, 30.0], (3,));
    assert_tensor32(&col.add(&row).unwrap(), &[2, 3], &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    assert_tensor32(&row.sub(&col).unwrap(), &[2, 3], &[9.0, 19.0, 29.0, 8.0, 18.0, 28.0]);
    assert_tensor32(&col.mul(&row).unwrap(), &[2, 3], &[10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    assert_tensor32(&row.div(&col).unwrap(), &[2, 3], &[10.0, 20.0, 30.0, 5.0, 10.0, 15.0]);
    // A 0-d tensor broadcasts against anything.
    let s = Tensor::scalar(2.0, DType::F32);
    assert_tensor32(&row.mul(&s).unwrap(), &[3], &[20.0, 40.0, 60.0]);
    assert_tensor32(&s.mul(&s).unwrap(), &[], &[4.0]);
}

#[test]
fn pow_values_and_gradients() {
    let a = leaf(&[1.0, 2.0, 3.0, 4.0], (4,));
    let b = leaf(&[2.0, 0.5, 3.0, -1.0], (4,));
    let y = a.pow(&b).unwrap();
    assert_close(&vals(&y), &[1.0, SQRT_2, 27.0, 0.25], 1e-15);
    let grads = y.sum_all().unwrap().backward().unwrap();
    // δa = b·a^(b−1):  2·1, 0.5·2^−0.5, 3·3², −1·4^−2.
    assert_close(&grad(&grads, &a), &[2.0, 0.3535533905932738, 27.0, -0.0625], 1e-14);
    // δb = a^b·ln a:  0, √2·ln 2, 27·ln 3, 0.25·ln 4.
    assert_close(
        &grad(&grads, &b),
        &[0.0, 0.9802581434685472, 29.662531794038966, 0.34657359027997264],
        1e-14,
    );

    // At a = 0 or b = 0, as PyTorch: δa = 0 where b = 0, δb = 0 where a = 0 and b ≥ 0.
    let a = leaf(&[0.0, 0.0, 2.0], (3,));
    let b = leaf(&[0.0, 2.0, 0.0], (3,));
    let y = a.pow(&b).unwrap();
    assert_close(&vals(&y), &[1.0, 0.0, 1.0], 0.0);
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&grads, &a), &[0.0, 0.0, 0.0], 0.0);
    assert_close(&grad(&grads, &b), &[0.0, 0.0, LN_2], 1e-15);
}

#[test]
fn maximum_minimum_split_ties_in_half() {
    let a = leaf(&[1.0, 5.0, 3.0, -2.0], (4,));
    let b = leaf(&[2.0, 5.0, 1.0, -2.0], (4,));
    let mx = a.maximum(&b).unwrap();
    assert_close(&vals(&mx), &[2.0, 5.0, 3.0, -2.0], 0.0);
    let g = mx.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &a), &[0.0, 0.5, 1.0, 0.5], 0.0);
    assert_close(&grad(&g, &b), &[1.0, 0.5, 0.0, 0.5], 0.0);

    let mn = a.minimum(&b).unwrap();
    assert_close(&vals(&mn), &[1.0, 5.0, 1.0, -2.0], 0.0);
    let g = mn.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &a), &[1.0, 0.5, 0.0, 0.5], 0.0);
    assert_close(&grad(&g, &b), &[0.0, 0.5, 1.0, 0.5], 0.0);

    // Broadcast: a [2, 2] against a one-element b = [2]; the ties' halves add up in δb.
    let a = leaf(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    let b = leaf(&[2.0], (1,));
    let mx = a.maximum(&b).unwrap();
    assert_close(&vals(&mx), &[2.0, 2.0, 3.0, 4.0], 0.0);
    let g = mx.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &a), &[0.0, 0.5, 1.0, 1.0], 0.0);
    assert_close(&grad(&g, &b), &[1.5], 0.0);
    let mn = a.minimum(&b).unwrap();
    assert_close(&vals(&mn), &[1.0, 2.0, 2.0, 2.0], 0.0);
    let g = mn.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &a), &[1.0, 0.5, 0.0, 0.0], 0.0);
    assert_close(&grad(&g, &b), &[2.5], 0.0);
}

#[test]
fn scalar_forms_and_affine() {
    let x = [1.0, -2.0, 4.0];
    let cases: [(&str, fn(&Tensor) -> Result<Tensor>, [f64; 3], f64); 6] = [
        ("add_scalar", |t| t.add_scalar(3.0), [4.0, 1.0, 7.0], 1.0),
        ("sub_scalar", |t| t.sub_scalar(3.0), [-2.0, -5.0, 1.0], 1.0),
        ("mul_scalar", |t| t.mul_scalar(-2.0), [-2.0, 4.0, -8.0], -2.0),
        ("div_scalar", |t| t.div_scalar(4.0), [0.25, -0.5, 1.0], 0.25),
        ("rsub_scalar", |t| t.rsub_scalar(10.0), [9.0, 12.0, 6.0], -1.0),
        ("affine", |t| t.affine(2.0, 1.0), [3.0, -3.0, 9.0], 2.0),
    ];
    for (name, op, y_exp, slope) in cases {
        let (y, g) = unary(op, &x);
        assert_eq!(y, y_exp, "{name}");
        assert_eq!(g, vec![slope; 3], "{name} gradient");
        // The same in f32.
        let y32 = op(&t32(&[1.0, -2.0, 4.0], (3,))).unwrap();
        assert_tensor32(&y32, &[3], &y_exp);
    }
    // 1/3 is not exact in binary, so x/3 is checked with a tolerance.
    assert_close(
        &vals(&t64(&[1.0, 3.0], (2,)).div_scalar(3.0).unwrap()),
        &[1.0 / 3.0, 1.0],
        1e-15,
    );
}

#[test]
fn powf_and_clamp() {
    let (y, g) = unary(|t| t.powf(1.5), &[1.0, 2.0, 4.0]);
    assert_close(&y, &[1.0, 2.8284271247461903, 8.0], 1e-15);
    assert_close(&g, &[1.5, 2.121320343559643, 3.0], 1e-15);
    let (y, g) = unary(|t| t.powf(2.0), &[-3.0, 0.0]);
    assert_close(&y, &[9.0, 0.0], 0.0);
    assert_close(&g, &[-6.0, 0.0], 0.0);
    let (y, g) = unary(|t| t.powf(-1.0), &[2.0]);
    assert_close(&y, &[0.5], 0.0);
    assert_close(&g, &[-0.25], 0.0);
    // x⁰ = 1 has a zero gradient everywhere, 0 included (PyTorch masks 0·0⁻¹).
    let (y, g) = unary(|t| t.powf(0.0), &[0.0, 3.0]);
    assert_close(&y, &[1.0, 1.0], 0.0);
    assert_close(&g, &[0.0, 0.0], 0.0);

    let x = [-3.0, -1.0, 0.5, 2.0, 5.0];
    let (y, g) = unary(|t| t.clamp(Some(-1.0), Some(2.0)), &x);
    assert_close(&y, &[-1.0, -1.0, 0.5, 2.0, 2.0], 0.0);
    // The gradient passes where min ≤ x ≤ max, bounds included (as in PyTorch).
    assert_close(&g, &[0.0, 1.0, 1.0, 1.0, 0.0], 0.0);
    let (y, g) = unary(|t| t.clamp(Some(0.0), None), &x);
    assert_close(&y, &[0.0, 0.0, 0.5, 2.0, 5.0], 0.0);
    assert_close(&g, &[0.0, 0.0, 1.0, 1.0, 1.0], 0.0);
    let (y, g) = unary(|t| t.clamp(None, Some(1.0)), &x);
    assert_close(&y, &[-3.0, -1.0, 0.5, 1.0, 1.0], 0.0);
    assert_close(&g, &[1.0, 1.0, 1.0, 0.0, 0.0], 0.0);
    // min > max: everything becomes max and no gradient passes (PyTorch's rule).
    let (y, g) = unary(|t| t.clamp(Some(2.0), Some(1.0)), &x);
    assert_close(&y, &[1.0; 5], 0.0);
    assert_close(&g, &[0.0; 5], 0.0);
    // NaN stays NaN.
    let nan = t64(&[f64::NAN], (1,)).clamp(Some(0.0), Some(1.0)).unwrap();
    assert!(nan.item().unwrap().is_nan());
}

#[test]
fn unary_maths() {
    type Op = fn(&Tensor) -> Result<Tensor>;
    let e = std::f64::consts::E;
    let cases: Vec<(&str, Op, Vec<f64>, Vec<f64>, Vec<f64>)> = vec![
        ("neg", |t| t.neg(), vec![1.0, -2.0], vec![-1.0, 2.0], vec![-1.0, -1.0]),
        (
            "exp",
            |t| t.exp(),
            vec![0.0, 1.0, -1.0],
            vec![1.0, e, 0.36787944117144233],
            vec![1.0, e, 0.36787944117144233],
        ),
        (
            "log",
            |t| t.log(),
            vec![1.0, e, 0.5],
            vec![0.0, 1.0, -LN_2],
            vec![1.0, 0.36787944117144233, 2.0],
        ),
        (
            "sqrt",
            |t| t.sqrt(),
            vec![4.0, 9.0, 2.0],
            vec![2.0, 3.0, SQRT_2],
            vec![0.25, 0.16666666666666666, 0.3535533905932738],
        ),
        ("sqr", |t| t.sqr(), vec![-3.0, 0.5], vec![9.0, 0.25], vec![-6.0, 1.0]),
        (
            "abs",
            |t| t.abs(),
            vec![-2.0, 3.0, 0.0],
            vec![2.0, 3.0, 0.0],
            vec![-1.0, 1.0, 0.0],
        ),
        (
            "recip",
            |t| t.recip(),
            vec![2.0, -4.0, 0.5],
            vec![0.5, -0.25, 2.0],
            vec![-0.25, -0.0625, -4.0],
        ),
        (
            "relu",
            |t| t.relu(),
            vec![-1.0, 0.0, 2.0],
            vec![0.0, 0.0, 2.0],
            vec![0.0, 0.0, 1.0],
        ),
        (
            "leaky_relu",
            |t| t.leaky_relu(0.1),
            vec![-2.0, 0.0, 3.0],
            vec![-0.2, 0.0, 3.0],
            vec![0.1, 0.1, 1.0],
        ),
        // σ(±ln 3) = 3/4 and 1/4; σ' = σ(1 − σ).
        (
            "sigmoid",
            |t| t.sigmoid(),
            vec![0.0, 3f64.ln(), -(3f64.ln())],
            vec![0.5, 0.75, 0.25],
            vec![0.25, 0.1875, 0.1875],
        ),
        // tanh(ln 2) = (2 − ½)/(2 + ½) = 0.6; tanh' = 1 − 0.36.
        (
            "tanh",
            |t| t.tanh(),
            vec![0.0, 2f64.ln()],
            vec![0.0, 0.6],
            vec![1.0, 0.64],
        ),
        // softplus(ln 3) = ln 4, softplus(−ln 3) = ln(4/3), linear above 20; softplus' = σ.
        (
            "softplus",
            |t| t.softplus(),
            vec![0.0, 3f64.ln(), -(3f64.ln()), 30.0],
            vec![LN_2, 1.3862943611198906, 0.28768207245178085, 30.0],
            vec![0.5, 0.75, 0.25, 1.0],
        ),
    ];
    for (name, op, x, y_exp, g_exp) in cases {
        let (y, g) = unary(op, &x);
        assert_eq!(y.len(), y_exp.len(), "{name}");
        for (i, (a, b)) in y.iter().zip(&y_exp).chain(g.iter().zip(&g_exp)).enumerate() {
            assert!(
                (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                "{name}: value {i}: {a} vs {b} (y {y:?}, δx {g:?})"
            );
        }
        // f32 forward agrees to f32 precision.
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        assert_close(&vals(&op(&t32(&x32, (x.len(),))).unwrap()), &y_exp, 1e-6);
    }
}

#[test]
fn activations_do_not_overflow() {
    let x = t64(&[-1000.0, 1000.0, -50.0], (3,));
    assert_close(&vals(&x.sigmoid().unwrap()), &[0.0, 1.0, 1.9287498479639178e-22], 1e-12);
    assert_close(
        &vals(&x.softplus().unwrap()),
        &[0.0, 1000.0, 1.9287498479639178e-22],
        1e-12,
    );
    assert_close(&vals(&x.tanh().unwrap()), &[-1.0, 1.0, -1.0], 0.0);
    let x32 = t32(&[-100.0, 100.0], (2,));
    assert_close(&vals(&x32.sigmoid().unwrap()), &[0.0, 1.0], 1e-30);
}

#[test]
fn comparisons_give_masks_in_the_input_dtype() {
    let a = t32(&[1.0, 2.0, 3.0], (3,));
    let b = t32(&[3.0, 2.0, 1.0], (3,));
    let cases: [(&str, Tensor, [f64; 3]); 6] = [
        ("eq", a.eq(&b).unwrap(), [0.0, 1.0, 0.0]),
        ("ne", a.ne(&b).unwrap(), [1.0, 0.0, 1.0]),
        ("lt", a.lt(&b).unwrap(), [1.0, 0.0, 0.0]),
        ("le", a.le(&b).unwrap(), [1.0, 1.0, 0.0]),
        ("gt", a.gt(&b).unwrap(), [0.0, 0.0, 1.0]),
        ("ge", a.ge(&b).unwrap(), [0.0, 1.0, 1.0]),
    ];
    for (name, m, exp) in cases {
        assert_eq!(m.dtype(), DType::F32, "{name}");
        assert_eq!(vals(&m), exp, "{name}");
    }
    let scalar: [(&str, Tensor, [f64; 3]); 6] = [
        ("eq_scalar", a.eq_scalar(2.0).unwrap(), [0.0, 1.0, 0.0]),
        ("ne_scalar", a.ne_scalar(2.0).unwrap(), [1.0, 0.0, 1.0]),
        ("lt_scalar", a.lt_scalar(2.0).unwrap(), [1.0, 0.0, 0.0]),
        ("le_scalar", a.le_scalar(2.0).unwrap(), [1.0, 1.0, 0.0]),
        ("gt_scalar", a.gt_scalar(2.0).unwrap(), [0.0, 0.0, 1.0]),
        ("ge_scalar", a.ge_scalar(2.0).unwrap(), [0.0, 1.0, 1.0]),
    ];
    for (name, m, exp) in scalar {
        assert_eq!(vals(&m), exp, "{name}");
    }
    // Broadcasting: [2, 1] < [3].
    let col = t64(&[1.5, 2.5], (2, 1));
    let row = t64(&[1.0, 2.0, 3.0], (3,));
    assert_tensor(&col.lt(&row).unwrap(), &[2, 3], &[0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    // Not differentiable: the mask does not track gradients.
    let x = leaf(&[1.0, 2.0], (2,));
    assert!(!x.gt_scalar(1.5).unwrap().tracks_grad());
    // Integer tensors compare too (accuracy: argmax == label).
    let pred = ti64(&[3, 1, 4, 1], (4,));
    let label = ti64(&[3, 2, 4, 0], (4,));
    let hits = pred.eq(&label).unwrap();
    assert_eq!(hits.dtype(), DType::I64);
    assert_eq!(hits.to_vec::<i64>().unwrap(), vec![1, 0, 1, 0]);
    assert_eq!(hits.count_nonzero().unwrap(), 2);
    assert_eq!(pred.gt_scalar(1.0).unwrap().to_vec::<i64>().unwrap(), vec![1, 0, 1, 0]);
}

#[test]
fn where_cond_selects_and_routes_gradients() {
    let mask = ti64(&[1, 0, 1, 0], (4,));
    let a = leaf(&[1.0, 2.0, 3.0, 4.0], (4,));
    let b = leaf(&[10.0, 20.0, 30.0, 40.0], (4,));
    let y = Tensor::where_cond(&mask, &a, &b).unwrap();
    assert_close(&vals(&y), &[1.0, 20.0, 3.0, 40.0], 0.0);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &a), &[1.0, 0.0, 1.0, 0.0], 0.0);
    assert_close(&grad(&g, &b), &[0.0, 1.0, 0.0, 1.0], 0.0);

    // Broadcast: mask [2, 1], a [3], b [1] → [2, 3].
    let mask = t32(&[1.0, 0.0], (2, 1));
    let a = leaf(&[1.0, 2.0, 3.0], (3,));
    let b = leaf(&[0.0], (1,));
    let y = Tensor::where_cond(&mask, &a, &b).unwrap();
    assert_tensor(&y, &[2, 3], &[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_close(&grad(&g, &a), &[1.0, 1.0, 1.0], 0.0);
    assert_close(&grad(&g, &b), &[3.0], 0.0);
    assert_is_err(Tensor::where_cond(&mask, &a, &t32(&[0.0], (1,))));
    assert_is_err(Tensor::where_cond(
        &t64(&[1.0, 0.0, 1.0], (3,)),
        &a,
        &leaf(&[0.0, 1.0], (2,)),
    ));
}

#[test]
fn to_dtype_converts_and_carries_gradients_between_floats() {
    let x = t64(&[1.7, -1.7, 2.5, 3.0], (4,));
    assert_eq!(
        x.to_dtype(DType::I64).unwrap().to_vec::<i64>().unwrap(),
        vec![1, -1, 2, 3]
    );
    assert_eq!(
        x.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(),
        vec![1.7f32, -1.7, 2.5, 3.0]
    );
    assert_eq!(
        ti64(&[3, -4], (2,))
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![3.0, -4.0]
    );
    assert_eq!(
        ti64(&[3, -4], (2,))
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![3.0, -4.0]
    );
    assert_eq!(
        t32(&[0.5, 7.9], (2,))
            .to_dtype(DType::I64)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![0, 7]
    );

    let w = t32(&[0.5, 2.0], (2,)).requires_grad_();
    let loss = w
        .to_dtype(DType::F64)
        .unwrap()
        .mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap();
    assert_eq!(loss.dtype(), DType::F64);
    let g = loss.backward().unwrap();
    let gw = g.get(&w).unwrap();
    assert_eq!(gw.dtype(), DType::F32);
    assert_eq!(gw.to_vec::<f32>().unwrap(), vec![3.0, 3.0]);
}

#[test]
fn gradchecks_of_every_differentiable_op() {
    let a = t64(&[0.7, 1.3, 2.1, 0.4, 1.9, 1.1], (2, 3));
    let b = t64(&[1.6, 0.9, 1.4], (3,));
    let col = t64(&[0.8, 1.7], (2, 1));
    check(|x| x[0].add(&x[1]), &[a.clone(), b.clone()]);
    check(|x| x[0].sub(&x[1]), &[col.clone(), b.clone()]);
    check(|x| x[0].mul(&x[1]), &[a.clone(), col.clone()]);
    check(|x| x[0].div(&x[1]), &[a.clone(), b.clone()]);
    check(|x| x[1].div(&x[0]), &[a.clone(), col.clone()]);
    check(|x| x[0].pow(&x[1]), &[a.clone(), b.clone()]);
    // Distinct values: no ties, where the gradient jumps.
    check(|x| x[0].maximum(&x[1]), &[a.clone(), b.clone()]);
    check(|x| x[0].minimum(&x[1]), &[a.clone(), col.clone()]);

    let x = t64(&[0.7, -1.3, 2.1, -0.4, 1.9, -1.1], (2, 3));
    let pos = t64(&[0.7, 1.3, 2.1, 0.4, 1.9, 1.1], (2, 3));
    type Op = fn(&Tensor) -> Result<Tensor>;
    let on_any: [Op; 22] = [
        |t| t.add_scalar(2.5),
        |t| t.sub_scalar(2.5),
        |t| t.mul_scalar(-1.5),
        |t| t.div_scalar(4.0),
        |t| t.rsub_scalar(1.0),
        |t| t.affine(-0.5, 3.0),
        |t| t.powf(2.0),
        |t| t.powf(3.0),
        |t| t.clamp(Some(-1.0), Some(1.5)),
        |t| t.clamp(None, Some(0.0)),
        |t| t.neg(),
        |t| t.exp(),
        |t| t.sqr(),
        |t| t.abs(),
        |t| t.recip(),
        |t| t.relu(),
        |t| t.leaky_relu(0.2),
        |t| t.sigmoid(),
        |t| t.tanh(),
        |t| t.softplus(),
        |t| t.to_dtype(DType::F32)?.to_dtype(DType::F64),
        |t| Tensor::where_cond(&t.gt_scalar(0.0)?, &t.exp()?, &t.sqr()?),
    ];
    for (i, op) in on_any.iter().enumerate() {
        if i == 20 {
            // A round trip through f32 loses precision: check it loosely by hand instead.
            let w = x.clone().requires_grad_();
            let g = op(&w).unwrap().sum_all().unwrap().backward().unwrap();
            assert_close(&grad(&g, &w), &[1.0; 6], 0.0);
            continue;
        }
        check(|t| op(&t[0]), std::slice::from_ref(&x));
    }
    let on_positive: [Op; 4] = [|t| t.log(), |t| t.sqrt(), |t| t.powf(-1.5), |t| t.powf(0.5)];
    for op in on_positive {
        check(|t| op(&t[0]), std::slice::from_ref(&pos));
    }
    // A composite: softplus(x)·tanh(x)/(1 + x²).
    check(
        |t| t[0].softplus()?.mul(&t[0].tanh()?)?.div(&t[0].sqr()?.add_scalar(1.0)?),
        &[x],
    );
}

#[test]
fn strided_inputs_match_contiguous_copies() {
    let v = [0.5, 1.25, 2.0, 0.75, 1.5, 2.5];
    let other = t64(&[1.5, -0.5, 2.0], (3,));
    type Op = Box<dyn Fn(&Tensor) -> Result<Tensor>>;
    let o = other.clone();
    let o2 = other.clone();
    let o3 = other.clone();
    let o4 = other.clone();
    let ops: Vec<Op> = vec![
        Box::new(move |t| t.add(&o)),
        Box::new(move |t| o2.sub(t)),
        Box::new(move |t| t.mul(&o3)),
        Box::new(move |t| o4.div(t)),
        Box::new(|t| t.pow(&t.mul_scalar(0.5)?)),
        Box::new(|t| t.maximum(&t64(&[1.0], (1,)))),
        Box::new(|t| t.minimum(&t.t()?.t()?.mul_scalar(0.9)?)),
        Box::new(|t| t.affine(3.0, -1.0)),
        Box::new(|t| t.powf(1.5)),
        Box::new(|t| t.clamp(Some(0.6), Some(2.2))),
        Box::new(|t| t.exp()),
        Box::new(|t| t.log()),
        Box::new(|t| t.sqrt()),
        Box::new(|t| t.sqr()),
        Box::new(|t| t.sub_scalar(1.0)?.abs()),
        Box::new(|t| t.recip()),
        Box::new(|t| t.sub_scalar(1.0)?.relu()),
        Box::new(|t| t.sub_scalar(1.0)?.leaky_relu(0.1)),
        Box::new(|t| t.sigmoid()),
        Box::new(|t| t.tanh()),
        Box::new(|t| t.softplus()),
        Box::new(|t| Tensor::where_cond(&t.gt_scalar(1.0)?, t, &t.neg()?)),
        Box::new(|t| t.to_dtype(DType::F32)?.mul_scalar(2.0)?.to_dtype(DType::F64)),
    ];
    for op in ops {
        check_views(v, op);
    }
    // Comparisons on strided operands.
    let base = t64(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], (3, 2));
    let m = base.t().unwrap().gt(&t64(&[1.5, 5.0, 3.0], (3,))).unwrap();
    assert_tensor(&m, &[2, 3], &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
}

#[test]
fn large_tensors_take_the_parallel_paths() {
    // 300 × 200 = 60 000 elements, above the threshold where kernels split across threads.
    let (r, c) = (300, 200);
    let a: Vec<f64> = (0..r * c).map(|i| (i % 97) as f64 * 0.25 - 12.0).collect();
    let b: Vec<f64> = (0..c).map(|j| j as f64 * 0.5).collect();
    let ta = t64(&a, (r, c));
    let tb = t64(&b, (c,));
    let sum: Vec<f64> = (0..r * c).map(|i| a[i] + b[i % c]).collect();
    assert_close(&vals(&ta.add(&tb).unwrap()), &sum, 0.0);
    let prod: Vec<f64> = (0..r * c).map(|i| a[i] * a[i]).collect();
    assert_close(&vals(&ta.mul(&ta).unwrap()), &prod, 0.0);
    assert_close(&vals(&ta.sqr().unwrap()), &prod, 0.0);
    let relu: Vec<f64> = a.iter().map(|&x| x.max(0.0)).collect();
    assert_close(&vals(&ta.relu().unwrap()), &relu, 0.0);
    // A strided operand: the transpose of a [c, r] tensor against a [r, 1] column.
    let at: Vec<f64> = (0..c).flat_map(|j| (0..r).map(move |i| (i * c + j) as f64)).collect();
    let col: Vec<f64> = (0..r).map(|i| i as f64).collect();
    let z = t64(&at, (c, r)).t().unwrap().sub(&t64(&col, (r, 1))).unwrap();
    let exp: Vec<f64> = (0..r * c).map(|k| (k as f64) - (k / c) as f64).collect();
    assert_close(&vals(&z), &exp, 0.0);
}

#[test]
fn mismatched_operands_are_errors() {
    let a = Tensor::zeros((2, 3), DType::F32);
    let b = Tensor::zeros((4,), DType::F32);
    assert_err(
        a.add(&b),
        "add: shapes [2, 3] and [4] cannot be broadcast: 3 != 4 in dimension 1",
    );
    assert_err(
        a.mul(&Tensor::zeros((3, 3), DType::F32)),
        "mul: shapes [2, 3] and [3, 3] cannot be broadcast: 2 != 3 in dimension 0",
    );
    assert_err(
        a.maximum(&b),
        "maximum: shapes [2, 3] and [4] cannot be broadcast: 3 != 4 in dimension 1",
    );
    assert_err(
        a.lt(&b),
        "lt: shapes [2, 3] and [4] cannot be broadcast: 3 != 4 in dimension 1",
    );
    assert_err(
        a.sub(&Tensor::zeros((2, 3), DType::F64)),
        "sub: dtype mismatch: lhs F32, rhs F64",
    );
    assert_err(ti64(&[1, 2], (2,)).exp(), "exp: not supported for dtype I64");
    assert_err(
        ti64(&[1, 2], (2,)).div(&ti64(&[1, 2], (2,))),
        "div: not supported for dtype I64",
    );
    // Integer arithmetic that PyTorch has, on every device alike.
    let sum = ti64(&[1, 2], (2,)).add(&ti64(&[3, -4], (2,))).unwrap();
    assert_eq!(sum.to_vec::<i64>().unwrap(), vec![4, -2]);
    assert_eq!(
        ti64(&[-1, 5], (2,)).relu().unwrap().to_vec::<i64>().unwrap(),
        vec![0, 5]
    );
}
