//! Element-wise ops with NumPy/PyTorch broadcasting, activations, comparisons and `where`.
//! Each backward reduces δ back to its input's shape with [`Tensor::sum_to_shape`]; each is
//! written once with tensor ops, so it runs on every device.

use crate::backend::params::{BinaryOp, UnaryOp};
use crate::error::{Error, Result};
use crate::{DType, Shape, Tensor};

impl Tensor {
    // ---------------------------------------------------------------- binary, broadcasting

    /// a + b.  δa = δ, δb = δ (each summed over its broadcast dimensions).
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = self.zip(rhs, BinaryOp::Add, "add")?;
        let (ls, rs) = (self.shape().clone(), rhs.shape().clone());
        Ok(out.record("add", &[self, rhs], move |g| {
            Ok(vec![Some(g.sum_to_shape(&ls)?), Some(g.sum_to_shape(&rs)?)])
        }))
    }

    /// a − b.  δa = δ, δb = −δ.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = self.zip(rhs, BinaryOp::Sub, "sub")?;
        let (ls, rs) = (self.shape().clone(), rhs.shape().clone());
        Ok(out.record("sub", &[self, rhs], move |g| {
            Ok(vec![Some(g.sum_to_shape(&ls)?), Some(g.neg()?.sum_to_shape(&rs)?)])
        }))
    }

    /// a · b.  δa = δ·b, δb = δ·a.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = self.zip(rhs, BinaryOp::Mul, "mul")?;
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
        let out = self.zip(rhs, BinaryOp::Div, "div")?;
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
        let out = self.zip(rhs, BinaryOp::Pow, "pow")?;
        let (a, b, y) = (self.detach(), rhs.detach(), out.detach());
        let (ta, tb) = (self.tracks_grad(), rhs.tracks_grad());
        Ok(out.record("pow", &[self, rhs], move |g| {
            // NOTE: as in PyTorch, ∂/∂a is 0 where b = 0 (not 0·0⁻¹ = NaN at a = 0), and ∂/∂b is 0
            // where a = 0 and b ≥ 0 (not 0·ln 0 = NaN).
            let zero = Tensor::full_on(0.0, (), a.dtype(), a.device())?;
            let ga = if ta {
                let da = b.mul(&a.pow(&b.sub_scalar(1.0)?)?)?;
                let da = Tensor::where_cond(&b.eq_scalar(0.0)?, &zero, &da)?;
                Some(g.mul(&da)?.sum_to_shape(a.shape())?)
            } else {
                None
            };
            let gb = if tb {
                let db = y.mul(&a.log()?)?;
                let flat = a.eq_scalar(0.0)?.mul(&b.ge_scalar(0.0)?)?;
                let db = Tensor::where_cond(&flat, &zero, &db)?;
                Some(g.mul(&db)?.sum_to_shape(b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        }))
    }

    /// max(a, b) (NaN propagates).  δ goes to the larger input; on ties it is split in halves, as in PyTorch.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = self.zip(rhs, BinaryOp::Maximum, "maximum")?;
        self.record_extremum("maximum", rhs, out, BinaryOp::Lt)
    }

    /// min(a, b) (NaN propagates).  δ goes to the smaller input; on ties it is split in halves, as in PyTorch.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        let out = self.zip(rhs, BinaryOp::Minimum, "minimum")?;
        self.record_extremum("minimum", rhs, out, BinaryOp::Gt)
    }

    /// PyTorch's rule: δ/2 to each on ties, else all of δ to each input that does not lose
    /// (`a_loses`: a < b for maximum); with a NaN neither loses, so both get δ.
    fn record_extremum(&self, op: &'static str, rhs: &Tensor, out: Tensor, a_loses: BinaryOp) -> Result<Tensor> {
        let b_loses = if a_loses == BinaryOp::Lt {
            BinaryOp::Gt
        } else {
            BinaryOp::Lt
        };
        let (a, b) = (self.detach(), rhs.detach());
        Ok(out.record(op, &[self, rhs], move |g| {
            let share = a.zip(&b, BinaryOp::Eq, op)?.mul_scalar(-0.5)?.add_scalar(1.0)?;
            let wa = share.mul(&a.zip(&b, a_loses, op)?.rsub_scalar(1.0)?)?;
            let wb = share.mul(&a.zip(&b, b_loses, op)?.rsub_scalar(1.0)?)?;
            let ga = g.mul(&wa)?.sum_to_shape(a.shape())?;
            let gb = g.mul(&wb)?.sum_to_shape(b.shape())?;
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

    /// y = m·x + c.  δx = m·δ.  On i64 tensors `m` and `c` must be whole numbers (PyTorch would
    /// promote to a float tensor; nabla says so instead of truncating).
    pub fn affine(&self, m: f64, c: f64) -> Result<Tensor> {
        if self.dtype() == DType::I64 && (m.fract() != 0.0 || c.fract() != 0.0) {
            return Err(Error::Argument {
                op: "affine",
                msg: format!("m = {m}, c = {c} on an i64 tensor: convert it with to_dtype first"),
            });
        }
        let out = self.map(UnaryOp::Affine { mul: m, add: c })?;
        Ok(out.record("affine", &[self], move |g| Ok(vec![Some(g.affine(m, 0.0)?)])))
    }

    /// xᵉ for a constant exponent.  δx = δ·e·xᵉ⁻¹.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        let out = self.map(UnaryOp::Powf(e))?;
        let x = self.detach();
        Ok(out.record("powf", &[self], move |g| {
            // NOTE: for e = 0 the formula gives 0·0⁻¹ = NaN at x = 0, but x⁰ = 1 is flat: δx = 0 (as PyTorch).
            if e == 0.0 {
                return Ok(vec![Some(Tensor::full_on(
                    0.0,
                    g.shape().clone(),
                    g.dtype(),
                    g.device(),
                )?)]);
            }
            Ok(vec![Some(g.mul(&x.powf(e - 1.0)?.mul_scalar(e)?)?)])
        }))
    }

    /// clamp(x, min, max); either bound may be absent.  δx = δ where min ≤ x ≤ max, else 0.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        let (lo, hi) = (min.unwrap_or(f64::NEG_INFINITY), max.unwrap_or(f64::INFINITY));
        let out = self.map(UnaryOp::Clamp { min: lo, max: hi })?;
        let x = self.detach();
        Ok(out.record("clamp", &[self], move |g| {
            let inside = x.ge_scalar(lo)?.mul(&x.le_scalar(hi)?)?;
            Ok(vec![Some(g.mul(&inside)?)])
        }))
    }

    // ---------------------------------------------------------------- unary

    /// −x.
    pub fn neg(&self) -> Result<Tensor> {
        self.affine(-1.0, 0.0)
    }

    /// eˣ.  δx = δ·y.
    pub fn exp(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Exp)?;
        let y = out.detach();
        Ok(out.record("exp", &[self], move |g| Ok(vec![Some(g.mul(&y)?)])))
    }

    /// ln x.  δx = δ/x.
    pub fn log(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Log)?;
        let x = self.detach();
        Ok(out.record("log", &[self], move |g| Ok(vec![Some(g.div(&x)?)])))
    }

    /// √x.  δx = δ/(2y).
    pub fn sqrt(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Sqrt)?;
        let y = out.detach();
        Ok(out.record("sqrt", &[self], move |g| Ok(vec![Some(g.div(&y.add(&y)?)?)])))
    }

    /// x².  δx = 2x·δ.
    pub fn sqr(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Sqr)?;
        let x = self.detach();
        Ok(out.record("sqr", &[self], move |g| Ok(vec![Some(g.mul(&x.add(&x)?)?)])))
    }

    /// |x|.  δx = δ·sign(x) (0 at 0, as in PyTorch).
    pub fn abs(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Abs)?;
        let x = self.detach();
        // NOTE: the mask 1[x > 0] − 1[x < 0], not sign(x): sign(NaN) is NaN, and PyTorch's δ is 0 there.
        Ok(out.record("abs", &[self], move |g| {
            Ok(vec![Some(g.mul(&x.gt_scalar(0.0)?.sub(&x.lt_scalar(0.0)?)?)?)])
        }))
    }

    /// sign(x): −1, 0 or 1 (NaN stays NaN). Not differentiable (δx = 0, as in PyTorch).
    pub fn sign(&self) -> Result<Tensor> {
        self.map(UnaryOp::Sign)
    }

    /// 1/x.  δx = −δ·y².
    pub fn recip(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Recip)?;
        let y = out.detach();
        Ok(out.record("recip", &[self], move |g| Ok(vec![Some(g.mul(&y.sqr()?)?.neg()?)])))
    }

    // ---------------------------------------------------------------- activations

    /// y = max(x, 0).  δx = δ·1\[x > 0\] (the subgradient at 0 is 0, as in PyTorch).
    pub fn relu(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Relu)?;
        let y = out.detach();
        // NOTE: the mask is taken from y, not x: y > 0 ⇔ x > 0, and y is kept alive anyway by the next layer.
        Ok(out.record("relu", &[self], move |g| {
            Ok(vec![Some(y.zip(g, BinaryOp::ReluBackward, "relu_backward")?)])
        }))
    }

    /// y = x for x > 0, slope·x otherwise: a composite, where(x > 0, x, slope·x), whose
    /// gradient (δ or slope·δ) comes from `where` and the product.
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        Tensor::where_cond(&self.detach().gt_scalar(0.0)?, self, &self.mul_scalar(slope)?)
    }

    /// σ(x) = 1/(1 + e⁻ˣ), computed without overflow for large |x|.  δx = δ·y(1 − y).
    pub fn sigmoid(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Sigmoid)?;
        let y = out.detach();
        Ok(out.record("sigmoid", &[self], move |g| {
            Ok(vec![Some(y.zip(g, BinaryOp::SigmoidBackward, "sigmoid_backward")?)])
        }))
    }

    /// tanh x.  δx = δ·(1 − y²).
    pub fn tanh(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Tanh)?;
        let y = out.detach();
        Ok(out.record("tanh", &[self], move |g| {
            Ok(vec![Some(y.zip(g, BinaryOp::TanhBackward, "tanh_backward")?)])
        }))
    }

    /// softplus(x) = ln(1 + eˣ) (β = 1; linear above the threshold 20, as in PyTorch).
    /// δx = δ·σ(x), and δ above the threshold.
    pub fn softplus(&self) -> Result<Tensor> {
        let out = self.map(UnaryOp::Softplus)?;
        let x = self.detach();
        Ok(out.record("softplus", &[self], move |g| {
            let slope = Tensor::where_cond(
                &x.gt_scalar(20.0)?,
                &Tensor::full_on(1.0, (), x.dtype(), x.device())?,
                &x.sigmoid()?,
            )?;
            Ok(vec![Some(g.mul(&slope)?)])
        }))
    }

    // ---------------------------------------------------------------- comparisons and where

    /// 1 where a == b, else 0 (a mask in the inputs' dtype; not differentiable).
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.zip(rhs, BinaryOp::Eq, "eq")
    }
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.zip(rhs, BinaryOp::Ne, "ne")
    }
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.zip(rhs, BinaryOp::Lt, "lt")
    }
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.zip(rhs, BinaryOp::Le, "le")
    }
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.zip(rhs, BinaryOp::Gt, "gt")
    }
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.zip(rhs, BinaryOp::Ge, "ge")
    }
    fn compare_scalar(&self, c: f64, op: BinaryOp, name: &'static str) -> Result<Tensor> {
        if self.dtype() == DType::I64 && c.fract() != 0.0 {
            // 0.5 (or NaN) would truncate to an integer: compare in f64, answer in i64.
            return self
                .to_dtype(DType::F64)?
                .compare_scalar(c, op, name)?
                .to_dtype(DType::I64);
        }
        self.zip(&Tensor::full_on(c, (), self.dtype(), self.device())?, op, name)
    }
    pub fn eq_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, BinaryOp::Eq, "eq")
    }
    pub fn ne_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, BinaryOp::Ne, "ne")
    }
    pub fn lt_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, BinaryOp::Lt, "lt")
    }
    pub fn le_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, BinaryOp::Le, "le")
    }
    pub fn gt_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, BinaryOp::Gt, "gt")
    }
    pub fn ge_scalar(&self, c: f64) -> Result<Tensor> {
        self.compare_scalar(c, BinaryOp::Ge, "ge")
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
        // The mask is data, not a differentiable input: it follows the values to their device.
        let mask = &mask.detach().to_device(a.device())?;
        let (m, al, bl) = (
            mask.layout().broadcast_to("where", &shape)?,
            a.layout().broadcast_to("where", &shape)?,
            b.layout().broadcast_to("where", &shape)?,
        );
        let out = {
            let (sm, sa, sb) = (mask.storage(), a.storage(), b.storage());
            sm.where_cond(&m, &sa, &al, &sb, &bl)?
        };
        let out = Tensor::from_any_storage(out, shape);
        let (mask, dtype) = (mask.clone(), a.dtype());
        let (sa, sb) = (a.shape().clone(), b.shape().clone());
        Ok(out.record("where", &[a, b], move |g| {
            let keep = mask.ne_scalar(0.0)?.to_dtype(dtype)?;
            let ga = g.mul(&keep)?.sum_to_shape(&sa)?;
            let gb = g.mul(&keep.rsub_scalar(1.0)?)?.sum_to_shape(&sb)?;
            Ok(vec![Some(ga), Some(gb)])
        }))
    }

    /// Converts to another dtype. Between floats the gradient is converted back.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let from = self.dtype();
        let out = self.storage().cast(self.layout(), dtype)?;
        let out = Tensor::from_any_storage(out, self.shape().clone());
        if !(from.is_float() && dtype.is_float()) {
            return Ok(out);
        }
        Ok(out.record("to_dtype", &[self], move |g| Ok(vec![Some(g.to_dtype(from)?)])))
    }
}
