//! Element-wise maps on host memory, one monomorphised loop per [`UnaryOp`] and [`BinaryOp`]
//! (the `match` on the op runs once per call, not per element). Formulas as PyTorch's.

use super::strided::{binary_map, unary_map};
use crate::backend::params::{BinaryOp, UnaryOp};
use crate::error::{Error, Result};
use crate::shape::Layout;
use crate::storage::CpuStorage;
use crate::{Float, WithDType};

/// y = f(x) for a float element type.
fn unary_float<T: Float>(v: &[T], l: &Layout, op: UnaryOp) -> Vec<T> {
    let c = T::from_f64;
    match op {
        UnaryOp::Neg => unary_map(v, l, |x: T| -x),
        UnaryOp::Exp => unary_map(v, l, |x: T| x.exp()),
        UnaryOp::Log => unary_map(v, l, |x: T| x.ln()),
        UnaryOp::Sqrt => unary_map(v, l, |x: T| x.sqrt()),
        UnaryOp::Abs => unary_map(v, l, |x: T| x.abs()),
        UnaryOp::Relu => unary_map(v, l, |x: T| if x > T::zero() { x } else { T::zero() }),
        // σ(x) without overflow for large |x|.
        UnaryOp::Sigmoid => unary_map(v, l, |x: T| {
            if x >= T::zero() {
                T::one() / (T::one() + (-x).exp())
            } else {
                let e = x.exp();
                e / (T::one() + e)
            }
        }),
        UnaryOp::Tanh => unary_map(v, l, |x: T| x.tanh()),
        // Linear above the threshold 20, as PyTorch's softplus (β = 1).
        UnaryOp::Softplus => unary_map(v, l, |x: T| if x > c(20.0) { x } else { x.exp().ln_1p() }),
        UnaryOp::Affine { mul, add } => {
            let (m, a) = (c(mul), c(add));
            unary_map(v, l, |x: T| x * m + a)
        }
        UnaryOp::Powf(e) => {
            let e = c(e);
            unary_map(v, l, |x: T| x.powf(e))
        }
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (c(min), c(max));
            // NOTE: the upper bound is applied last, as PyTorch's min(max(x, lo), hi): when
            // lo > hi every element becomes hi. NaN passes through.
            unary_map(v, l, move |x: T| {
                let y = if x < lo { lo } else { x };
                if y > hi { hi } else { y }
            })
        }
        UnaryOp::Recip => unary_map(v, l, |x: T| x.recip()),
        UnaryOp::Sqr => unary_map(v, l, |x: T| x * x),
        UnaryOp::Sin => unary_map(v, l, |x: T| x.sin()),
        UnaryOp::Cos => unary_map(v, l, |x: T| x.cos()),
        UnaryOp::Sign => unary_map(v, l, |x: T| {
            if x > T::zero() {
                T::one()
            } else if x < T::zero() {
                -T::one()
            } else {
                x
            }
        }),
    }
}

/// y = f(x) for i64 (the ops that make sense on integers).
fn unary_int(v: &[i64], l: &Layout, op: UnaryOp) -> Result<Vec<i64>> {
    Ok(match op {
        // NOTE: wrapping on overflow, as PyTorch and the GPU (no panic in debug builds).
        UnaryOp::Neg => unary_map(v, l, |x: i64| x.wrapping_neg()),
        UnaryOp::Abs => unary_map(v, l, |x: i64| x.wrapping_abs()),
        UnaryOp::Relu => unary_map(v, l, |x: i64| x.max(0)),
        UnaryOp::Sqr => unary_map(v, l, |x: i64| x.wrapping_mul(x)),
        UnaryOp::Sign => unary_map(v, l, |x: i64| x.signum()),
        // Whole m and c only (checked by the op): exact integer arithmetic.
        UnaryOp::Affine { mul, add } => {
            let (m, c) = (mul as i64, add as i64);
            unary_map(v, l, move |x: i64| x.wrapping_mul(m).wrapping_add(c))
        }
        UnaryOp::Clamp { min, max } => unary_map(v, l, |x: i64| {
            let y = if (x as f64) < min { min as i64 } else { x };
            if (y as f64) > max { max as i64 } else { y }
        }),
        _ => {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype: crate::DType::I64,
            });
        }
    })
}

pub(crate) fn unary(x: &CpuStorage, l: &Layout, op: UnaryOp) -> Result<CpuStorage> {
    Ok(match x {
        CpuStorage::F32(v) => CpuStorage::F32(unary_float(v, l, op)),
        CpuStorage::F64(v) => CpuStorage::F64(unary_float(v, l, op)),
        CpuStorage::I64(v) => CpuStorage::I64(unary_int(v, l, op)?),
    })
}

/// 1 or 0 in the element type.
#[inline]
fn flag<T: WithDType>(b: bool) -> T {
    T::from_f64(if b { 1.0 } else { 0.0 })
}

/// The ops defined for every element type (arithmetic, extrema, comparisons).
macro_rules! common_binary {
    ($a:expr, $al:expr, $b:expr, $bl:expr, $op:expr, $T:ty, $other:ident => $rest:expr) => {
        match $op {
            BinaryOp::Add => binary_map($a, $al, $b, $bl, |x: $T, y| x + y),
            BinaryOp::Sub => binary_map($a, $al, $b, $bl, |x: $T, y| x - y),
            BinaryOp::Mul => binary_map($a, $al, $b, $bl, |x: $T, y| x * y),
            BinaryOp::Eq => binary_map($a, $al, $b, $bl, |x: $T, y| flag(x == y)),
            BinaryOp::Ne => binary_map($a, $al, $b, $bl, |x: $T, y| flag(x != y)),
            BinaryOp::Lt => binary_map($a, $al, $b, $bl, |x: $T, y| flag(x < y)),
            BinaryOp::Le => binary_map($a, $al, $b, $bl, |x: $T, y| flag(x <= y)),
            BinaryOp::Gt => binary_map($a, $al, $b, $bl, |x: $T, y| flag(x > y)),
            BinaryOp::Ge => binary_map($a, $al, $b, $bl, |x: $T, y| flag(x >= y)),
            $other => $rest,
        }
    };
}

fn binary_float<T: Float>(a: &[T], al: &Layout, b: &[T], bl: &Layout, op: BinaryOp) -> Vec<T> {
    common_binary!(a, al, b, bl, op, T, other => match other {
        BinaryOp::Div => binary_map(a, al, b, bl, |x: T, y| x / y),
        // NaN-propagating, as PyTorch's maximum/minimum.
        BinaryOp::Maximum => binary_map(a, al, b, bl, |x: T, y| if x.is_nan() || x > y { x } else { y }),
        BinaryOp::Minimum => binary_map(a, al, b, bl, |x: T, y| if x.is_nan() || x < y { x } else { y }),
        BinaryOp::Pow => binary_map(a, al, b, bl, |x: T, y| x.powf(y)),
        BinaryOp::ReluBackward => binary_map(a, al, b, bl, |x: T, g| if x > T::zero() { g } else { T::zero() }),
        BinaryOp::SigmoidBackward => binary_map(a, al, b, bl, |y: T, g| g * y * (T::one() - y)),
        BinaryOp::TanhBackward => binary_map(a, al, b, bl, |y: T, g| g * (T::one() - y * y)),
        _ => unreachable!("handled by common_binary"),
    })
}

fn binary_int(a: &[i64], al: &Layout, b: &[i64], bl: &Layout, op: BinaryOp, name: &'static str) -> Result<Vec<i64>> {
    // Wrapping on overflow, as PyTorch and the GPU.
    match op {
        BinaryOp::Add => return Ok(binary_map(a, al, b, bl, |x: i64, y| x.wrapping_add(y))),
        BinaryOp::Sub => return Ok(binary_map(a, al, b, bl, |x: i64, y| x.wrapping_sub(y))),
        BinaryOp::Mul => return Ok(binary_map(a, al, b, bl, |x: i64, y| x.wrapping_mul(y))),
        _ => {}
    }
    Ok(common_binary!(a, al, b, bl, op, i64, other => match other {
        BinaryOp::Maximum => binary_map(a, al, b, bl, |x: i64, y| x.max(y)),
        BinaryOp::Minimum => binary_map(a, al, b, bl, |x: i64, y| x.min(y)),
        _ => return Err(Error::UnsupportedDType { op: name, dtype: crate::DType::I64 }),
    }))
}

pub(crate) fn binary(a: &CpuStorage, al: &Layout, b: &CpuStorage, bl: &Layout, op: BinaryOp) -> Result<CpuStorage> {
    let name = op.name();
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => CpuStorage::F32(binary_float(x, al, y, bl, op)),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => CpuStorage::F64(binary_float(x, al, y, bl, op)),
        (CpuStorage::I64(x), CpuStorage::I64(y)) => CpuStorage::I64(binary_int(x, al, y, bl, op, name)?),
        (x, y) => {
            return Err(Error::DTypeMismatch {
                op: name,
                lhs: x.dtype(),
                rhs: y.dtype(),
            });
        }
    })
}

/// y = c ≠ 0 ? a : b, every layout broadcast to the output's shape.
pub(crate) fn where_cond(
    c: &CpuStorage,
    cl: &Layout,
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
) -> Result<CpuStorage> {
    let picks: Vec<bool> = match c {
        CpuStorage::F32(v) => unary_map(v, cl, |x| x != 0.0),
        CpuStorage::F64(v) => unary_map(v, cl, |x| x != 0.0),
        CpuStorage::I64(v) => unary_map(v, cl, |x| x != 0),
    };
    fn pick<T: WithDType>(p: &[bool], a: &[T], al: &Layout, b: &[T], bl: &Layout) -> Vec<T> {
        let both: Vec<(T, T)> = binary_map(a, al, b, bl, |x, y| (x, y));
        p.iter().zip(both).map(|(&p, (x, y))| if p { x } else { y }).collect()
    }
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => CpuStorage::F32(pick(&picks, x, al, y, bl)),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => CpuStorage::F64(pick(&picks, x, al, y, bl)),
        (CpuStorage::I64(x), CpuStorage::I64(y)) => CpuStorage::I64(pick(&picks, x, al, y, bl)),
        (x, y) => {
            return Err(Error::DTypeMismatch {
                op: "where",
                lhs: x.dtype(),
                rhs: y.dtype(),
            });
        }
    })
}
