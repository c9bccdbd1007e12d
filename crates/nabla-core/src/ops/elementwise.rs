//! Element-wise ops with NumPy/PyTorch broadcasting, activations, comparisons and `where`.
//! Each backward reduces δ back to its input's shape with [`Tensor::sum_to_shape`].

use super::{map_float, with_float_slice, zip_float};
use crate::error::{Error, Result};
use crate::storage::CpuStorage;
use crate::{DType, Shape, Tensor, WithDType};

impl Tensor {
    // ---------------------------------------------------------------- binary, broadcasting

    /// a + b.  δa = δ, δb = δ (each summed over its broadcast dimensions).
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "add", cuda: crate::cuda::ops::BinaryOp::Add, |x: T, y| x + y);
        let (ls, rs) = (self.shape().clone(), rhs.shape().clone());
        Ok(out.record("add", &[self, rhs], move |g| {
            Ok(vec![Some(g.sum_to_shape(&ls)?), Some(g.sum_to_shape(&rs)?)])
        }))
    }

    /// a − b.  δa = δ, δb = −δ.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "sub", cuda: crate::cuda::ops::BinaryOp::Sub, |x: T, y| x - y);
        let (ls, rs) = (self.shape().clone(), rhs.shape().clone());
        Ok(out.record("sub", &[self, rhs], move |g| {
            Ok(vec![Some(g.sum_to_shape(&ls)?), Some(g.neg()?.sum_to_shape(&rs)?)])
        }))
    }

    /// a · b.  δa = δ·b, δb = δ·a.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "mul", cuda: crate::cuda::ops::BinaryOp::Mul, |x: T, y| x * y);
        let (a, b) = (self.detach(), rhs.detach());
        let (ta, tb) = (self.tracks_grad(), rhs.tracks_grad());
        Ok(out.record("mul", &[self, rhs], move |g| {
            let ga = if ta {
                Some(g.mul(&b)?.sum_to_shape(a.shape())?)
            } else {
                None
            };
            let gb = if tb {
                Some(g.mul(&a)?.sum_to_shape(b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        }))
    }

    /// a / b.  δa = δ/b, δb = −δ·a/b².
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "div", cuda: crate::cuda::ops::BinaryOp::Div, |x: T, y| x / y);
        let (a, b) = (self.detach(), rhs.detach());
        let (ta, tb) = (self.tracks_grad(), rhs.tracks_grad());
        Ok(out.record("div", &[self, rhs], move |g| {
            let ga = if ta {
                Some(g.div(&b)?.sum_to_shape(a.shape())?)
            } else {
                None
            };
            let gb = if tb {
                Some(g.mul(&a)?.div(&b.sqr()?)?.neg()?.sum_to_shape(b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        }))
    }

    /// aᵇ element-wise.  δa = δ·b·aᵇ⁻¹, δb = δ·aᵇ·ln a.
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "pow", cuda: crate::cuda::ops::BinaryOp::Pow, |x: T, y| x.powf(y));
        let (a, b) = (self.detach(), rhs.detach());
        let (ta, tb) = (self.tracks_grad(), rhs.tracks_grad());
        Ok(out.record("pow", &[self, rhs], move |g| {
            // NOTE: as in PyTorch, ∂/∂a is 0 where b = 0 (not 0·0⁻¹ = NaN at a = 0), and ∂/∂b is 0
            // where a = 0 and b ≥ 0 (not 0·ln 0 = NaN).
            let ga = if ta {
                let da = zip_float!(&a, &b, "pow_backward", |x: T, e| if e == 0.0 {
                    0.0
                } else {
                    e * x.powf(e - 1.0)
                });
                Some(g.mul(&da)?.sum_to_shape(a.shape())?)
            } else {
                None
            };
            let gb = if tb {
                let db = zip_float!(&a, &b, "pow_backward", |x: T, e| if x == 0.0 && e >= 0.0 {
                    0.0
                } else {
                    x.powf(e) * x.ln()
                });
                Some(g.mul(&db)?.sum_to_shape(b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        }))
    }

    /// max(a, b).  δ goes to the larger input; on ties it is split in halves, as in PyTorch.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "maximum", cuda: crate::cuda::ops::BinaryOp::Maximum, |x: T, y| if x >= y { x } else { y });
        self.record_extremum("maximum", rhs, out, 1.0)
    }

    /// min(a, b).  δ goes to the smaller input; on ties it is split in halves, as in PyTorch.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = zip_float!(self, rhs, "minimum", cuda: crate::cuda::ops::BinaryOp::Minimum, |x: T, y| if x <= y { x } else { y });
        self.record_extremum("minimum", rhs, out, -1.0)
    }

    fn record_extremum(&self, op: &'static str, rhs: &Tensor, out: Tensor, sign: f64) -> Result<Tensor> {
        let (a, b) = (self.detach(), rhs.detach());
        Ok(out.record(op, &[self, rhs], move |g| {
            // weight of a: 1 where a wins, ½ on ties, 0 where b wins.
            let wa = zip_float!(&a, &b, op, |x: T, y| {
                let (x, y) = (x * T::from_f64(sign), y * T::from_f64(sign));
                if x > y {
                    1.0 as T
                } else if x == y {
                    0.5
                } else {
                    0.0
                }
            });
            let ga = g.mul(&wa)?.sum_to_shape(a.shape())?;
            let gb = g.mul(&wa.neg()?.add_scalar(1.0)?)?.sum_to_shape(b.shape())?;
            Ok(vec![Some(ga), Some(gb)])
        }))
    }

    // ---------------------------------------------------------------- scalar forms

    /// x + c.
    pub fn add_scalar(&self, c: f64) -> Result<Tensor> {
        self.affine(1.0, c)
    }
    /// x − c.
    pub fn sub_scalar(&self, c: f64) -> Result<Tensor> {
        self.affine(1.0, -c)
    }
    /// x · c.
    pub fn mul_scalar(&self, c: f64) -> Result<Tensor> {
        self.affine(c, 0.0)
    }
    /// x / c.
    pub fn div_scalar(&self, c: f64) -> Result<Tensor> {
        self.affine(1.0 / c, 0.0)
    }
    /// c − x (PyTorch's `rsub`).
    pub fn rsub_scalar(&self, c: f64) -> Result<Tensor> {
        self.affine(-1.0, c)
    }

    /// y = m·x + c.  δx = m·δ.
    pub fn affine(&self, m: f64, c: f64) -> Result<Tensor> {
        let out = map_float!(self, "affine", cuda: crate::cuda::ops::UnaryOp::Affine { mul: m, add: c }, |x: T| x * T::from_f64(m) + T::from_f64(c));
        Ok(out.record("affine", &[self], move |g| Ok(vec![Some(g.affine(m, 0.0)?)])))
    }

    /// xᵉ for a constant exponent.  δx = δ·e·xᵉ⁻¹.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        let out = map_float!(self, "powf", cuda: crate::cuda::ops::UnaryOp::Powf(e), |x: T| x.powf(T::from_f64(e)));
        let x = self.detach();
        Ok(out.record("powf", &[self], move |g| {
            // NOTE: for e = 0 the formula gives 0·0⁻¹ = NaN at x = 0, but x⁰ = 1 is flat: δx = 0 (as PyTorch).
            let d = zip_float!(g, &x, "powf_backward", |g: T, x| if e == 0.0 {
                0.0
            } else {
                g * T::from_f64(e) * x.powf(T::from_f64(e - 1.0))
            });
            Ok(vec![Some(d)])
        }))
    }

    /// clamp(x, min, max); either bound may be absent.  δx = δ where min ≤ x ≤ max, else 0.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        let (lo, hi) = (min.unwrap_or(f64::NEG_INFINITY), max.unwrap_or(f64::INFINITY));
        let out = map_float!(self, "clamp", |x: T| {
            let (lo, hi) = (T::from_f64(lo), T::from_f64(hi));
            // NOTE: the upper bound is applied last, as PyTorch's min(max(x, lo), hi): when
            // lo > hi every element becomes hi (testing x < lo first returned lo).
            let y = if x < lo { lo } else { x };
            if y > hi { hi } else { y }
        });
        let x = self.detach();
        Ok(out.record("clamp", &[self], move |g| {
            let d = zip_float!(g, &x, "clamp_backward", |g: T, x| {
                if x >= T::from_f64(lo) && x <= T::from_f64(hi) {
                    g
                } else {
                    0.0
                }
            });
            Ok(vec![Some(d)])
        }))
    }

    // ---------------------------------------------------------------- unary

    /// −x.
    pub fn neg(&self) -> Result<Tensor> {
        self.affine(-1.0, 0.0)
    }

    /// eˣ.  δx = δ·y.
    pub fn exp(&self) -> Result<Tensor> {
        let out = map_float!(self, "exp", cuda: crate::cuda::ops::UnaryOp::Exp, |x: T| x.exp());
        let y = out.detach();
        Ok(out.record("exp", &[self], move |g| Ok(vec![Some(g.mul(&y)?)])))
    }

    /// ln x.  δx = δ/x.
    pub fn log(&self) -> Result<Tensor> {
        let out = map_float!(self, "log", cuda: crate::cuda::ops::UnaryOp::Log, |x: T| x.ln());
        let x = self.detach();
        Ok(out.record("log", &[self], move |g| Ok(vec![Some(g.div(&x)?)])))
    }

    /// √x.  δx = δ/(2y).
    pub fn sqrt(&self) -> Result<Tensor> {
        let out = map_float!(self, "sqrt", cuda: crate::cuda::ops::UnaryOp::Sqrt, |x: T| x.sqrt());
        let y = out.detach();
        Ok(out.record("sqrt", &[self], move |g| {
            if g.device().is_cuda() {
                // On a GPU from its kernels: δ / (y + y).
                return Ok(vec![Some(g.div(&y.add(&y)?)?)]);
            }
            Ok(vec![Some(zip_float!(g, &y, "sqrt_backward", |g: T, y| g / (y + y)))])
        }))
    }

    /// x².  δx = 2x·δ.
    pub fn sqr(&self) -> Result<Tensor> {
        let out = map_float!(self, "sqr", cuda: crate::cuda::ops::UnaryOp::Sqr, |x: T| x * x);
        let x = self.detach();
        Ok(out.record("sqr", &[self], move |g| {
            if g.device().is_cuda() {
                // On a GPU from its kernels: δ · (x + x).
                return Ok(vec![Some(g.mul(&x.add(&x)?)?)]);
            }
            Ok(vec![Some(zip_float!(g, &x, "sqr_backward", |g: T, x| g * (x + x)))])
        }))
    }

    /// |x|.  δx = δ·sign(x) (0 at 0, as in PyTorch).
    pub fn abs(&self) -> Result<Tensor> {
        let out = map_float!(self, "abs", cuda: crate::cuda::ops::UnaryOp::Abs, |x: T| x.abs());
        let x = self.detach();
        Ok(out.record("abs", &[self], move |g| {
            Ok(vec![Some(zip_float!(g, &x, "abs_backward", |g: T, x| if x > 0.0 {
                g
            } else if x < 0.0 {
                -g
            } else {
                0.0
            }))])
        }))
    }

    /// 1/x.  δx = −δ·y².
    pub fn recip(&self) -> Result<Tensor> {
        let out = map_float!(self, "recip", cuda: crate::cuda::ops::UnaryOp::Recip, |x: T| x.recip());
        let y = out.detach();
        Ok(out.record("recip", &[self], move |g| {
            if g.device().is_cuda() {
                // On a GPU from its kernels: −δ · y · y.
                return Ok(vec![Some(g.neg()?.mul(&y)?.mul(&y)?)]);
            }
            Ok(vec![Some(zip_float!(g, &y, "recip_backward", |g: T, y| -g * y * y))])
        }))
    }

    // ---------------------------------------------------------------- activations

    /// y = max(x, 0).  δx = δ·1[x > 0] (the subgradient at 0 is 0, as in PyTorch).
    pub fn relu(&self) -> Result<Tensor> {
        let out = map_float!(self, "relu", cuda: crate::cuda::ops::UnaryOp::Relu, |x: T| if x > 0.0 { x } else { 0.0 });
        let y = out.detach();
        // NOTE: the mask is taken from y, not x: y > 0 ⇔ x > 0, and y is kept alive anyway by the next layer.
        Ok(out.record("relu", &[self], move |g| {
            Ok(vec![Some(zip_float!(g, &y, "relu_backward", cuda_swapped: crate::cuda::ops::BinaryOp::ReluBackward, |g: T, y| if y > 0.0 {
                g
            } else {
                0.0
            }))])
        }))
    }

    /// y = x for x > 0, slope·x otherwise.  δx = δ·(1 or slope).
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        let out = map_float!(self, "leaky_relu", cuda: crate::cuda::ops::UnaryOp::LeakyRelu(slope), |x: T| if x > 0.0 {
            x
        } else {
            x * T::from_f64(slope)
        });
        let x = self.detach();
        Ok(out.record("leaky_relu", &[self], move |g| {
            Ok(vec![Some(zip_float!(
                g,
                &x,
                "leaky_relu_backward",
                |g: T, x| if x > 0.0 { g } else { g * T::from_f64(slope) }
            ))])
        }))
    }

    /// σ(x) = 1/(1 + e⁻ˣ), computed without overflow for large |x|.  δx = δ·y(1 − y).
    pub fn sigmoid(&self) -> Result<Tensor> {
        let out = map_float!(self, "sigmoid", cuda: crate::cuda::ops::UnaryOp::Sigmoid, |x: T| if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        });
        let y = out.detach();
        Ok(out.record("sigmoid", &[self], move |g| {
            Ok(vec![Some(zip_float!(g, &y, "sigmoid_backward", cuda_swapped: crate::cuda::ops::BinaryOp::SigmoidBackward, |g: T, y| g
                * y
                * (1.0 - y)))])
        }))
    }

    /// tanh x.  δx = δ·(1 − y²).
    pub fn tanh(&self) -> Result<Tensor> {
        let out = map_float!(self, "tanh", cuda: crate::cuda::ops::UnaryOp::Tanh, |x: T| x.tanh());
        let y = out.detach();
        Ok(out.record("tanh", &[self], move |g| {
            Ok(vec![Some(
                zip_float!(g, &y, "tanh_backward", cuda_swapped: crate::cuda::ops::BinaryOp::TanhBackward, |g: T, y| g * (1.0 - y * y))
            )])
        }))
    }

    /// softplus(x) = ln(1 + eˣ) (β = 1; linear above the threshold 20, as in PyTorch).  δx = δ·σ(x).
    pub fn softplus(&self) -> Result<Tensor> {
        let out = map_float!(self, "softplus", cuda: crate::cuda::ops::UnaryOp::Softplus, |x: T| if x > 20.0 { x } else { x.exp().ln_1p() });
        let x = self.detach();
        Ok(out.record("softplus", &[self], move |g| {
            Ok(vec![Some(zip_float!(
                g,
                &x,
                "softplus_backward",
                |g: T, x| if x > 20.0 { g } else { g / (1.0 + (-x).exp()) }
            ))])
        }))
    }

    // ---------------------------------------------------------------- comparisons and where

    fn compare(&self, rhs: &Tensor, op: &'static str, pred: fn(f64, f64) -> bool) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        {
            use crate::cuda::ops::BinaryOp;
            let kind = match op {
                "eq" => BinaryOp::Eq,
                "ne" => BinaryOp::Ne,
                "lt" => BinaryOp::Lt,
                "le" => BinaryOp::Le,
                "gt" => BinaryOp::Gt,
                _ => BinaryOp::Ge,
            };
            if let Some(out) = super::cuda_binary(op, self, rhs, kind, false)? {
                return Ok(out);
            }
        }
        if self.dtype() != DType::I64 || rhs.dtype() != DType::I64 {
            return Ok(zip_float!(self, rhs, op, |x: T, y| if pred(x.to_f64(), y.to_f64()) {
                1.0
            } else {
                0.0
            }));
        }
        // NOTE: zip_float! takes floats only, but i64 tensors must compare too (argmax == labels).
        let shape = Shape::broadcast(op, self.shape(), rhs.shape())?;
        let (al, bl) = (
            self.layout().broadcast_to(op, &shape)?,
            rhs.layout().broadcast_to(op, &shape)?,
        );
        let (sa, sb) = (self.storage(), rhs.storage());
        let out = match (sa.cpu("compare")?, sb.cpu("compare")?) {
            (CpuStorage::I64(va), CpuStorage::I64(vb)) => {
                crate::cpu::strided::binary_map(va, &al, vb, &bl, |x, y| i64::from(pred(x as f64, y as f64)))
            }
            (x, _) => return Err(Error::UnsupportedDType { op, dtype: x.dtype() }),
        };
        drop((sa, sb));
        Ok(Tensor::from_storage(CpuStorage::I64(out), shape))
    }
    /// 1 where a == b, else 0 (a mask in the inputs' dtype; not differentiable).
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, "eq", |x, y| x == y)
    }
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, "ne", |x, y| x != y)
    }
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, "lt", |x, y| x < y)
    }
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, "le", |x, y| x <= y)
    }
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, "gt", |x, y| x > y)
    }
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, "ge", |x, y| x >= y)
    }
    fn compare_scalar(&self, c: f64, op: &'static str, pred: fn(f64, f64) -> bool) -> Result<Tensor> {
        if self.device().is_cuda() {
            return self.compare(&Tensor::full_on(c, (), self.dtype(), self.device())?, op, pred);
        }
        let storage = self.storage();
        if let CpuStorage::I64(v) = storage.cpu("compare_scalar")? {
            let out = crate::cpu::strided::unary_map(v, self.layout(), |x: i64| i64::from(pred(x as f64, c)));
            return Ok(Tensor::from_storage(CpuStorage::I64(out), self.shape().clone()));
        }
        drop(storage);
        Ok(map_float!(self, op, |x: T| if pred(x.to_f64(), c) { 1.0 } else { 0.0 }))
    }
    pub fn eq_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, "eq", |x, y| x == y)
    }
    pub fn ne_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, "ne", |x, y| x != y)
    }
    pub fn lt_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, "lt", |x, y| x < y)
    }
    pub fn le_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, "le", |x, y| x <= y)
    }
    pub fn gt_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, "gt", |x, y| x > y)
    }
    pub fn ge_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, "ge", |x, y| x >= y)
    }

    /// `mask ? a : b` element-wise with broadcasting (mask: non-zero means true, any dtype).
    /// δa = δ·mask, δb = δ·(1 − mask).
    pub fn where_cond(mask: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let shape = Shape::broadcast("where", &Shape::broadcast("where", mask.shape(), a.shape())?, b.shape())?;
        if a.dtype() != b.dtype() {
            return Err(Error::DTypeMismatch {
                op: "where",
                lhs: a.dtype(),
                rhs: b.dtype(),
            });
        }
        #[cfg(feature = "cuda")]
        if a.device().is_cuda() || b.device().is_cuda() {
            return super::on_cuda::where_cond(mask, a, b, shape);
        }
        let picks: Vec<bool> = mask
            .broadcast_to(&shape)?
            .to_vec_f64()
            .iter()
            .map(|&m| m != 0.0)
            .collect();
        let (a_full, b_full) = (a.broadcast_to(&shape)?.detach(), b.broadcast_to(&shape)?.detach());
        let out = with_float_slice!(&a_full, "where", |_va: T| {
            let (va, vb) = (a_full.to_vec::<T>()?, b_full.to_vec::<T>()?);
            T::into_storage(
                va.iter()
                    .zip(&vb)
                    .zip(&picks)
                    .map(|((&x, &y), &c)| if c { x } else { y })
                    .collect(),
            )
        });
        let out = Tensor::from_storage(out, shape.clone());
        let float_mask: Vec<f64> = picks.iter().map(|&c| if c { 1.0 } else { 0.0 }).collect();
        let mask = Tensor::from_vec(float_mask, shape)?.to_dtype(a.dtype())?;
        let (sa, sb) = (a.shape().clone(), b.shape().clone());
        Ok(out.record("where", &[a, b], move |g| {
            let ga = g.mul(&mask)?.sum_to_shape(&sa)?;
            let gb = g.mul(&mask.rsub_scalar(1.0)?)?.sum_to_shape(&sb)?;
            Ok(vec![Some(ga), Some(gb)])
        }))
    }

    /// Converts to another dtype. Between floats the gradient is converted back.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let from = self.dtype();
        #[cfg(feature = "cuda")]
        if self.device().is_cuda() {
            let out = super::on_cuda::to_dtype(self, dtype)?;
            if !(from.is_float() && dtype.is_float()) {
                return Ok(out);
            }
            return Ok(out.record("to_dtype", &[self], move |g| Ok(vec![Some(g.to_dtype(from)?)])));
        }
        let storage = self.storage();
        let l = self.layout();
        use crate::cpu::strided::cast;
        let out = match (storage.cpu("to_dtype")?, dtype) {
            (CpuStorage::F32(v), DType::F64) => CpuStorage::F64(cast::<f32, f64>(v, l)),
            (CpuStorage::F32(v), DType::I64) => CpuStorage::I64(cast::<f32, i64>(v, l)),
            (CpuStorage::F64(v), DType::F32) => CpuStorage::F32(cast::<f64, f32>(v, l)),
            (CpuStorage::F64(v), DType::I64) => CpuStorage::I64(cast::<f64, i64>(v, l)),
            (CpuStorage::I64(v), DType::F32) => CpuStorage::F32(cast::<i64, f32>(v, l)),
            (CpuStorage::I64(v), DType::F64) => CpuStorage::F64(cast::<i64, f64>(v, l)),
            _ => unreachable!("same dtype handled above"),
        };
        drop(storage);
        let out = Tensor::from_storage(out, self.shape().clone());
        if !(from.is_float() && dtype.is_float()) {
            return Ok(out);
        }
        Ok(out.record("to_dtype", &[self], move |g| Ok(vec![Some(g.to_dtype(from)?)])))
    }
}
