//! The CPU's side of the device seam: [`BackendStorage`] for host memory, each slot a thin
//! adapter from (buffer, layout) to the kernels of this folder.

use super::{conv, elementwise, index, lrn, matmul, norm, optim, pad, pool, reduce, softmax, strided};
use crate::backend::params::{
    AdamUpdate, BatchNormParams, BinaryOp, ConvGeometry, LrnParams, Pad2dParams, PoolGeometry, PoolKind, Precision,
    ReduceOp, SgdUpdate, UnaryOp,
};
use crate::backend::{BackendStorage, Dense, Saved};
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::shape::Layout;
use crate::storage::{CpuStorage, each_dtype};
use crate::{DType, Device, Float, WithDType};

/// Runs `$body` with `$v` bound to the float slice of `$s` from its layout's offset and `$T`
/// its element type; i64 is an error naming `$op`.
macro_rules! float_slice {
    ($s:expr, $op:expr, |$v:ident: $T:ident| $body:expr) => {
        match $s {
            CpuStorage::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            CpuStorage::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            CpuStorage::I64(_) => {
                return Err(Error::UnsupportedDType {
                    op: $op,
                    dtype: DType::I64,
                });
            }
        }
    };
}

/// The same float slice of a second storage (dtypes were checked by the op).
fn same<'a, T: WithDType>(s: &'a CpuStorage, op: &'static str) -> Result<&'a [T]> {
    T::slice(s).ok_or(Error::DTypeMismatch {
        op,
        lhs: T::DTYPE,
        rhs: s.dtype(),
    })
}

fn same_mut<'a, T: WithDType>(s: &'a mut CpuStorage, op: &'static str) -> Result<&'a mut [T]> {
    let dtype = s.dtype();
    T::slice_mut(s).ok_or(Error::DTypeMismatch {
        op,
        lhs: T::DTYPE,
        rhs: dtype,
    })
}

/// The values of an i64 index buffer (already checked to lie in range) as positions.
fn positions(idx: &CpuStorage, op: &'static str) -> Result<Vec<usize>> {
    Ok(same::<i64>(idx, op)?.iter().map(|&i| i as usize).collect())
}

/// Max pooling's argmax indices, kept for its backward pass.
struct ArgMax(Vec<u32>);
/// im2col's unfolded input, kept for the weight gradient.
struct Columns<T>(conv::SavedColumns<T>);

impl BackendStorage for CpuStorage {
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn len(&self) -> usize {
        CpuStorage::len(self)
    }
    fn to_cpu(&self) -> Result<CpuStorage> {
        Ok(self.clone())
    }
    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<Self> {
        Ok(CpuStorage::full(dtype, len, value))
    }

    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        elementwise::unary(self, l, op)
    }
    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<Self> {
        elementwise::binary(self, l, rhs, rl, op)
    }
    fn where_cond(&self, l: &Layout, a: &Self, al: &Layout, b: &Self, bl: &Layout) -> Result<Self> {
        elementwise::where_cond(self, l, a, al, b, bl)
    }
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self> {
        use strided::{cast, gather_contiguous};
        Ok(match (self, dtype) {
            (s, d) if s.dtype() == d => each_dtype!(s, |v| gather_contiguous(v, l)),
            (CpuStorage::F32(v), DType::F64) => CpuStorage::F64(cast::<f32, f64>(v, l)),
            (CpuStorage::F32(v), DType::I64) => CpuStorage::I64(cast::<f32, i64>(v, l)),
            (CpuStorage::F64(v), DType::F32) => CpuStorage::F32(cast::<f64, f32>(v, l)),
            (CpuStorage::F64(v), DType::I64) => CpuStorage::I64(cast::<f64, i64>(v, l)),
            (CpuStorage::I64(v), DType::F32) => CpuStorage::F32(cast::<i64, f32>(v, l)),
            (CpuStorage::I64(v), DType::F64) => CpuStorage::F64(cast::<i64, f64>(v, l)),
            _ => unreachable!("same dtype handled above"),
        })
    }
    fn copy_strided(&self, l: &Layout, dst: &mut Self, dl: &Layout) -> Result<()> {
        if self.dtype() == dst.dtype() {
            return strided::scatter_into(dst, dl, self, l);
        }
        let converted = self.cast(l, dst.dtype())?;
        strided::scatter_into(dst, dl, &converted, &Layout::contiguous(l.dims().to_vec()))
    }

    fn reduce(&self, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<Self> {
        reduce::reduce(self, l, op, dims)
    }
    fn softmax(&self, l: &Layout, log: bool) -> Result<Self> {
        let row = *l.dims().last().unwrap_or(&1);
        float_slice!(self, "softmax", |v: T| {
            let x = strided::dense_or_gathered(v, l);
            Ok(T::into_storage(softmax::softmax_rows(&x, row.max(1), log)))
        })
    }
    fn softmax_cross_entropy(&self, l: &Layout, targets: &Self, tl: &Layout, scale: f64) -> Result<(Self, Self)> {
        const OP: &str = "softmax_cross_entropy";
        let cols = l.dims()[1];
        let t = strided::dense_or_gathered(same::<i64>(targets, OP)?, tl);
        float_slice!(self, OP, |v: T| {
            let x = strided::dense_or_gathered(v, l);
            let (loss, grad) = softmax::xent_rows(&x, cols, &t, T::from_f64(scale));
            Ok((T::into_storage(loss), T::into_storage(grad)))
        })
    }
    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout, precision: Precision) -> Result<Self> {
        let r = l.dims().len();
        let (m, k, n) = (l.dims()[r - 2], l.dims()[r - 1], rl.dims()[r - 1]);
        float_slice!(self, "matmul", |a: T| {
            let b = same::<T>(rhs, "matmul")?;
            Ok(T::into_storage(matmul::batched_gemm(a, l, b, rl, m, n, k, precision)))
        })
    }

    fn conv2d(
        &self,
        l: &Layout,
        w: &Self,
        wl: &Layout,
        bias: Option<(&Self, &Layout)>,
        g: &ConvGeometry,
        keep: bool,
    ) -> Result<(Self, Option<Saved>)> {
        const OP: &str = "conv2d";
        float_slice!(self, OP, |x: T| {
            let w = &same::<T>(w, OP)?[wl.offset()..];
            let b = match bias {
                Some((b, bl)) => Some(&same::<T>(b, OP)?[bl.offset()..]),
                None => None,
            };
            let (y, cols) = conv::conv2d_forward_saving(&x[l.offset()..], w, b, g, keep);
            Ok((T::into_storage(y), cols.map(|c| Box::new(Columns(c)) as Saved)))
        })
    }
    fn conv2d_backward_input(&self, l: &Layout, w: &Self, wl: &Layout, g: &ConvGeometry) -> Result<Self> {
        float_slice!(self, "conv2d backward", |dy: T| {
            let w = &same::<T>(w, "conv2d backward")?[wl.offset()..];
            Ok(T::into_storage(conv::conv2d_backward_input(&dy[l.offset()..], w, g)))
        })
    }
    fn conv2d_backward_weight(
        &self,
        l: &Layout,
        dy: &Self,
        dyl: &Layout,
        g: &ConvGeometry,
        saved: Option<Saved>,
    ) -> Result<Self> {
        float_slice!(self, "conv2d backward", |x: T| {
            let dy = &same::<T>(dy, "conv2d backward")?[dyl.offset()..];
            let cols = saved.and_then(|s| s.downcast::<Columns<T>>().ok());
            Ok(T::into_storage(conv::conv2d_backward_weight(
                &x[l.offset()..],
                dy,
                g,
                cols.as_ref().map(|c| &c.0),
            )))
        })
    }
    fn pool2d(&self, l: &Layout, kind: PoolKind, g: &PoolGeometry) -> Result<(Self, Option<Saved>)> {
        float_slice!(self, "pool2d", |v: T| {
            let x = &v[l.offset()..];
            Ok(match kind {
                PoolKind::Max => {
                    let (y, idx) = pool::max_pool2d_forward(x, g);
                    (T::into_storage(y), Some(Box::new(ArgMax(idx)) as Saved))
                }
                PoolKind::Avg {
                    count_include_pad,
                    divisor_override,
                } => (
                    T::into_storage(pool::avg_pool2d_forward(x, g, count_include_pad, divisor_override)),
                    None,
                ),
                PoolKind::AdaptiveAvg => (T::into_storage(pool::adaptive_avg_pool2d_forward(x, g)), None),
            })
        })
    }
    fn pool2d_backward(
        &self,
        _l: &Layout,
        dy: &Self,
        dyl: &Layout,
        kind: PoolKind,
        g: &PoolGeometry,
        saved: Option<&Saved>,
    ) -> Result<Self> {
        float_slice!(self, "pool2d backward", |_x: T| {
            let dy = &same::<T>(dy, "pool2d backward")?[dyl.offset()..];
            Ok(T::into_storage(match kind {
                PoolKind::Max => {
                    let idx = saved.and_then(|s| s.downcast_ref::<ArgMax>()).ok_or(Error::Argument {
                        op: "max_pool2d backward",
                        msg: "the forward pass kept no indices".into(),
                    })?;
                    pool::max_pool2d_backward(dy, &idx.0, g)
                }
                PoolKind::Avg {
                    count_include_pad,
                    divisor_override,
                } => pool::avg_pool2d_backward(dy, g, count_include_pad, divisor_override),
                PoolKind::AdaptiveAvg => pool::adaptive_avg_pool2d_backward(dy, g),
            }))
        })
    }
    fn lrn(&self, l: &Layout, p: &LrnParams) -> Result<(Self, Self)> {
        float_slice!(self, "local_response_norm", |v: T| {
            let x = &v[l.offset()..l.offset() + p.n * p.c * p.s];
            let scale = lrn::lrn_scale(x, p.c, p.s, p.size, p.alpha, p.k);
            let b = T::from_f64(p.beta);
            let y: Vec<T> = x.iter().zip(&scale).map(|(&a, &sc)| a / sc.powf(b)).collect();
            Ok((T::into_storage(y), T::into_storage(scale)))
        })
    }
    fn lrn_backward(&self, l: &Layout, scale: &Self, dy: &Self, dyl: &Layout, p: &LrnParams) -> Result<Self> {
        const OP: &str = "local_response_norm backward";
        let len = p.n * p.c * p.s;
        float_slice!(self, OP, |x: T| {
            let (sc, dy) = (same::<T>(scale, OP)?, same::<T>(dy, OP)?);
            let (x, dy) = (&x[l.offset()..l.offset() + len], &dy[dyl.offset()..dyl.offset() + len]);
            Ok(T::into_storage(lrn::lrn_backward(
                x, sc, dy, p.c, p.s, p.size, p.alpha, p.beta,
            )))
        })
    }
    fn batch_norm_train(
        &self,
        l: &Layout,
        weight: (&Self, &Layout),
        bias: (&Self, &Layout),
        running: Option<(&mut Self, &mut Self)>,
        p: &BatchNormParams,
    ) -> Result<(Self, Self, Self)> {
        const OP: &str = "batch_norm";
        let len = p.n * p.c * p.s;
        float_slice!(self, OP, |x: T| {
            let x = &x[l.offset()..l.offset() + len];
            let w = &same::<T>(weight.0, OP)?[weight.1.offset()..];
            let b = &same::<T>(bias.0, OP)?[bias.1.offset()..];
            let (y, mean, inv_std, var) = norm::batch_norm_train(x, w, b, p);
            if let Some((rm, rv)) = running {
                let unbiased = (p.n * p.s) as f64 / ((p.n * p.s) as f64 - 1.0);
                let m = p.momentum;
                // NOTE: in the running statistics' own dtype and PyTorch's order: (1 − m)·r + m·batch.
                let rm = same_mut::<T>(rm, OP)?;
                for (r, &v) in rm.iter_mut().zip(&mean) {
                    *r = T::from_f64(1.0 - m) * *r + T::from_f64(m) * v;
                }
                let rv = same_mut::<T>(rv, OP)?;
                for (r, &v) in rv.iter_mut().zip(&var) {
                    *r = T::from_f64(1.0 - m) * *r + T::from_f64(m) * T::from_f64(v * unbiased);
                }
            }
            Ok((T::into_storage(y), T::into_storage(mean), T::into_storage(inv_std)))
        })
    }
    fn batch_norm_eval(
        &self,
        l: &Layout,
        weight: (&Self, &Layout),
        bias: (&Self, &Layout),
        stats: [(&Self, &Layout); 2],
        p: &BatchNormParams,
    ) -> Result<Self> {
        const OP: &str = "batch_norm";
        let len = p.n * p.c * p.s;
        /// The `c` values of a dense per-channel parameter.
        fn per_channel<'a, T: Float>((s, l): (&'a CpuStorage, &Layout), c: usize) -> Result<&'a [T]> {
            Ok(&same::<T>(s, OP)?[l.offset()..l.offset() + c])
        }
        float_slice!(self, OP, |x: T| {
            let x = &x[l.offset()..l.offset() + len];
            let (w, b) = (per_channel::<T>(weight, p.c)?, per_channel::<T>(bias, p.c)?);
            let (mean, var) = (per_channel::<T>(stats[0], p.c)?, per_channel::<T>(stats[1], p.c)?);
            Ok(T::into_storage(norm::batch_norm_eval(x, w, b, mean, var, p)))
        })
    }
    fn batch_norm_backward(
        &self,
        l: &Layout,
        dy: (&Self, &Layout),
        weight: (&Self, &Layout),
        mean: &Self,
        inv_std: &Self,
        p: &BatchNormParams,
    ) -> Result<(Self, Self, Self)> {
        const OP: &str = "batch_norm backward";
        let len = p.n * p.c * p.s;
        float_slice!(self, OP, |x: T| {
            let x = &x[l.offset()..l.offset() + len];
            let g = &same::<T>(dy.0, OP)?[dy.1.offset()..dy.1.offset() + len];
            let w = &same::<T>(weight.0, OP)?[weight.1.offset()..];
            let (mu, inv) = (same::<T>(mean, OP)?, same::<T>(inv_std, OP)?);
            let (dx, dw, db) = norm::batch_norm_backward(x, g, w, mu, inv, p);
            Ok((T::into_storage(dx), T::into_storage(dw), T::into_storage(db)))
        })
    }
    fn pad2d(&self, l: &Layout, p: &Pad2dParams) -> Result<Self> {
        let [top, bottom, left, right] = p.sides;
        let rows = pad::source_map("pad2d", p.h, top, bottom, p.mode)?;
        let cols = pad::source_map("pad2d", p.w, left, right, p.mode)?;
        float_slice!(self, "pad2d", |v: T| {
            Ok(T::into_storage(pad::pad_forward(
                &v[l.offset()..],
                p.planes,
                p.h,
                p.w,
                &rows,
                &cols,
            )))
        })
    }
    fn pad2d_backward(&self, l: &Layout, p: &Pad2dParams) -> Result<Self> {
        let [top, bottom, left, right] = p.sides;
        let rows = pad::source_map("pad2d", p.h, top, bottom, p.mode)?;
        let cols = pad::source_map("pad2d", p.w, left, right, p.mode)?;
        float_slice!(self, "pad2d backward", |dy: T| {
            Ok(T::into_storage(pad::pad_backward(
                &dy[l.offset()..],
                p.planes,
                p.h,
                p.w,
                &rows,
                &cols,
            )))
        })
    }

    fn index_select(&self, l: &Layout, dim: usize, idx: &Self) -> Result<Self> {
        let idx = positions(idx, "index_select")?;
        let x = each_dtype!(self, |v| index::index_select_kernel(
            &strided::dense_or_gathered(v, l),
            l.dims(),
            dim,
            &idx
        ));
        Ok(x)
    }
    fn index_add(&mut self, dims: &[usize], dim: usize, idx: &Self, src: &Self, sl: &Layout) -> Result<()> {
        const OP: &str = "index_add";
        let idx = positions(idx, OP)?;
        fn run<T: WithDType + std::ops::AddAssign>(
            dst: &mut CpuStorage,
            dims: &[usize],
            dim: usize,
            idx: &[usize],
            src: &[T],
            sl: &Layout,
        ) -> Result<()> {
            let src = strided::dense_or_gathered(src, sl);
            let dst = same_mut::<T>(dst, OP)?;
            index::index_add_into(dst, &src, dims, dim, idx);
            Ok(())
        }
        match src {
            CpuStorage::F32(s) => run(self, dims, dim, &idx, s, sl),
            CpuStorage::F64(s) => run(self, dims, dim, &idx, s, sl),
            CpuStorage::I64(s) => run(self, dims, dim, &idx, s, sl),
        }
    }
    fn gather(&self, l: &Layout, dim: usize, index: &Self, index_dims: &[usize]) -> Result<Self> {
        let idx = positions(index, "gather")?;
        let offsets = index::gather_offsets(l.dims(), index_dims, dim, &idx);
        fn pick<T: Copy>(v: &[T], l: &Layout, offsets: &[usize]) -> Vec<T> {
            let x = strided::dense_or_gathered(v, l);
            offsets.iter().map(|&o| x[o]).collect()
        }
        Ok(each_dtype!(self, |v| pick(v, l, &offsets)))
    }
    fn scatter_add(
        &mut self,
        dims: &[usize],
        dim: usize,
        index: &Self,
        index_dims: &[usize],
        src: &Self,
        sl: &Layout,
    ) -> Result<()> {
        const OP: &str = "scatter_add";
        let idx = positions(index, OP)?;
        let offsets = index::gather_offsets(dims, index_dims, dim, &idx);
        fn add<T: WithDType + std::ops::AddAssign>(
            dst: &mut CpuStorage,
            src: &CpuStorage,
            sl: &Layout,
            offsets: &[usize],
        ) -> Result<()> {
            let s = strided::dense_or_gathered(same::<T>(src, OP)?, sl);
            let d = same_mut::<T>(dst, OP)?;
            for (&o, &v) in offsets.iter().zip(s.iter()) {
                d[o] += v;
            }
            Ok(())
        }
        match self.dtype() {
            DType::F32 => add::<f32>(self, src, sl, &offsets),
            DType::F64 => add::<f64>(self, src, sl, &offsets),
            DType::I64 => add::<i64>(self, src, sl, &offsets),
        }
    }

    fn dropout_mask(&self, dtype: DType, len: usize, p: f64, rng: &mut Generator) -> Result<Self> {
        let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
        let mask: Vec<f64> = (0..len).map(|_| if rng.next_f64() < p { 0.0 } else { scale }).collect();
        CpuStorage::F64(mask).cast(&Layout::contiguous(vec![len]), dtype)
    }
    fn sgd_update(
        &mut self,
        range: Dense,
        grad: (&Self, Dense),
        buffer: Option<(&mut Self, Dense)>,
        u: &SgdUpdate,
    ) -> Result<()> {
        const OP: &str = "sgd_update_";
        fn run<T: Float>(
            p: &mut CpuStorage,
            range: Dense,
            grad: (&CpuStorage, Dense),
            buffer: Option<(&mut CpuStorage, Dense)>,
            u: &SgdUpdate,
        ) -> Result<()> {
            let g = &same::<T>(grad.0, OP)?[grad.1];
            let p = &mut same_mut::<T>(p, OP)?[range];
            match buffer {
                Some((b, br)) => optim::sgd_momentum(p, g, &mut same_mut::<T>(b, OP)?[br], u),
                None => optim::sgd_plain(p, g, u),
            }
            Ok(())
        }
        match self.dtype() {
            DType::F32 => run::<f32>(self, range, grad, buffer, u),
            DType::F64 => run::<f64>(self, range, grad, buffer, u),
            DType::I64 => Err(Error::UnsupportedDType {
                op: OP,
                dtype: DType::I64,
            }),
        }
    }
    fn adam_update(
        &mut self,
        range: Dense,
        grad: (&Self, Dense),
        m: (&mut Self, Dense),
        v: (&mut Self, Dense),
        v_max: Option<(&mut Self, Dense)>,
        u: &AdamUpdate,
    ) -> Result<()> {
        const OP: &str = "adam_update_";
        fn run<T: Float>(
            p: &mut CpuStorage,
            range: Dense,
            grad: (&CpuStorage, Dense),
            m: (&mut CpuStorage, Dense),
            v: (&mut CpuStorage, Dense),
            v_max: Option<(&mut CpuStorage, Dense)>,
            u: &AdamUpdate,
        ) -> Result<()> {
            let g = &same::<T>(grad.0, OP)?[grad.1];
            let p = &mut same_mut::<T>(p, OP)?[range];
            let m = &mut same_mut::<T>(m.0, OP)?[m.1];
            let v = &mut same_mut::<T>(v.0, OP)?[v.1];
            let vm = match v_max {
                Some((s, r)) => Some(&mut same_mut::<T>(s, OP)?[r]),
                None => None,
            };
            optim::adam(p, g, m, v, vm, u);
            Ok(())
        }
        match self.dtype() {
            DType::F32 => run::<f32>(self, range, grad, m, v, v_max, u),
            DType::F64 => run::<f64>(self, range, grad, m, v, v_max, u),
            DType::I64 => Err(Error::UnsupportedDType {
                op: OP,
                dtype: DType::I64,
            }),
        }
    }
}
