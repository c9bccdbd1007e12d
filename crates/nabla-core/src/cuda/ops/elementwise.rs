//! Unary and binary maps, `where`, strided copies and casts, fill and 2-d padding.

use cudarc::driver::PushKernelArg;

use super::{
    Scalar, Strided, check_layout, collapse, float_only, grid, launch, push_scalar, same_device, same_dtype, suffix,
};
use crate::backend::params::{BinaryOp, PaddingMode, UnaryOp};
use crate::cuda::kernels::elementwise::{BINARY, COPY, UNARY, WHERE};
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Error, Result, arg_err, shape_err};
use crate::shape::Layout;

impl UnaryOp {
    /// (kernel code, p0, p1, also defined for i64).
    fn code(self) -> (i32, f64, f64, bool) {
        use UnaryOp::*;
        match self {
            Neg => (0, 0.0, 0.0, true),
            Exp => (1, 0.0, 0.0, false),
            Log => (2, 0.0, 0.0, false),
            Sqrt => (3, 0.0, 0.0, false),
            Abs => (4, 0.0, 0.0, true),
            Relu => (5, 0.0, 0.0, true),
            Sigmoid => (6, 0.0, 0.0, false),
            Tanh => (7, 0.0, 0.0, false),
            Softplus => (8, 0.0, 0.0, false),
            Affine { mul, add } => (10, mul, add, true),
            Powf(p) => (11, p, 0.0, false),
            Clamp { min, max } => (12, min, max, true),
            Recip => (13, 0.0, 0.0, false),
            Sqr => (14, 0.0, 0.0, true),
            Sin => (15, 0.0, 0.0, false),
            Cos => (16, 0.0, 0.0, false),
            Sign => (17, 0.0, 0.0, true),
        }
    }
}

impl BinaryOp {
    fn code(self) -> (i32, bool) {
        use BinaryOp::*;
        match self {
            Add => (0, true),
            Sub => (1, true),
            Mul => (2, true),
            Div => (3, false),
            Maximum => (4, true),
            Minimum => (5, true),
            Pow => (6, false),
            Eq => (7, true),
            Ne => (8, true),
            Lt => (9, true),
            Le => (10, true),
            Gt => (11, true),
            Ge => (12, true),
            ReluBackward => (13, false),
            SigmoidBackward => (14, false),
            TanhBackward => (15, false),
        }
    }
}

fn check_int(op: &'static str, dtype: DType, int_ok: bool) -> Result<()> {
    if dtype == DType::I64 && !int_ok {
        return Err(Error::UnsupportedDType { op, dtype });
    }
    Ok(())
}

/// `y = f(x)` element-wise; `y` is contiguous in `layout`'s shape.
pub fn unary(op: UnaryOp, x: &CudaStorage, layout: &Layout) -> Result<CudaStorage> {
    const OP: &str = "cuda::unary";
    check_layout(OP, x, layout)?;
    let (code, p0, p1, int_ok) = op.code();
    check_int(OP, x.dtype(), int_ok)?;
    let dev = x.cuda_device().clone();
    let n = layout.elem_count();
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let (d, s) = collapse(layout.dims(), &[layout.strides()]);
    let sx = Strided::new(OP, &d, &s[0])?;
    let f = dev.function(OP, &UNARY, &format!("unary_{}", suffix(x.dtype())))?;
    let (n64, px, py) = (n as u64, x.elem_ptr(layout.offset()), y.device_ptr());
    let (p0, p1) = (Scalar::new(x.dtype(), p0), Scalar::new(x.dtype(), p1));
    let mut b = dev.stream().launch_builder(&f);
    b.arg(&code).arg(&n64).arg(&sx).arg(&px).arg(&py);
    push_scalar(&mut b, &p0);
    push_scalar(&mut b, &p1);
    launch(&dev, OP, &mut b, grid(n))?;
    Ok(y)
}

/// `y = f(a, b)` element-wise; `al` and `bl` already broadcast to one shape (stride 0 on
/// broadcast dims). `y` is contiguous in that shape.
pub fn binary(op: BinaryOp, a: &CudaStorage, al: &Layout, b: &CudaStorage, bl: &Layout) -> Result<CudaStorage> {
    const OP: &str = "cuda::binary";
    if al.dims() != bl.dims() {
        return shape_err(
            OP,
            format!(
                "operands of shapes {} and {} (broadcast them first)",
                al.shape(),
                bl.shape()
            ),
        );
    }
    same_dtype(OP, a.dtype(), b.dtype())?;
    let dev = same_device(OP, a, &[b])?;
    check_layout(OP, a, al)?;
    check_layout(OP, b, bl)?;
    let (code, int_ok) = op.code();
    check_int(OP, a.dtype(), int_ok)?;
    let n = al.elem_count();
    let y = CudaStorage::uninit(&dev, OP, a.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let (d, s) = collapse(al.dims(), &[al.strides(), bl.strides()]);
    let (sa, sb) = (Strided::new(OP, &d, &s[0])?, Strided::new(OP, &d, &s[1])?);
    let f = dev.function(OP, &BINARY, &format!("binary_{}", suffix(a.dtype())))?;
    let (n64, pa, pb, py) = (
        n as u64,
        a.elem_ptr(al.offset()),
        b.elem_ptr(bl.offset()),
        y.device_ptr(),
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&code).arg(&n64).arg(&sa).arg(&sb).arg(&pa).arg(&pb).arg(&py);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(y)
}

/// `y = cond ≠ 0 ? a : b` element-wise; the three layouts already broadcast to one shape.
/// `cond` may have any dtype; `a` and `b` share theirs.
pub fn where_cond(
    cond: &CudaStorage,
    cl: &Layout,
    a: &CudaStorage,
    al: &Layout,
    b: &CudaStorage,
    bl: &Layout,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::where";
    if cl.dims() != al.dims() || al.dims() != bl.dims() {
        return shape_err(
            OP,
            format!(
                "shapes {}, {} and {} (broadcast them first)",
                cl.shape(),
                al.shape(),
                bl.shape()
            ),
        );
    }
    same_dtype(OP, a.dtype(), b.dtype())?;
    let dev = same_device(OP, cond, &[a, b])?;
    for (s, l) in [(cond, cl), (a, al), (b, bl)] {
        check_layout(OP, s, l)?;
    }
    let n = al.elem_count();
    let y = CudaStorage::uninit(&dev, OP, a.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let (d, s) = collapse(al.dims(), &[cl.strides(), al.strides(), bl.strides()]);
    let (sc, sa, sb) = (
        Strided::new(OP, &d, &s[0])?,
        Strided::new(OP, &d, &s[1])?,
        Strided::new(OP, &d, &s[2])?,
    );
    let name = format!("where_{}_{}", suffix(cond.dtype()), suffix(a.dtype()));
    let f = dev.function(OP, &WHERE, &name)?;
    let (n64, pc, pa, pb, py) = (
        n as u64,
        cond.elem_ptr(cl.offset()),
        a.elem_ptr(al.offset()),
        b.elem_ptr(bl.offset()),
        y.device_ptr(),
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&sc)
        .arg(&sa)
        .arg(&sb)
        .arg(&pc)
        .arg(&pa)
        .arg(&pb)
        .arg(&py);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(y)
}

/// In place: `dst[dl] = src[sl]` element by element (same shape), converting the dtype if the
/// two differ. With `dl` a narrow of a contiguous destination this is the assignment that `cat`
/// and `narrow`-assignment need. NOTE: `dl` must not address one element twice (no stride 0).
pub fn copy_strided(src: &CudaStorage, sl: &Layout, dst: &mut CudaStorage, dl: &Layout) -> Result<()> {
    const OP: &str = "cuda::copy_strided";
    if sl.dims() != dl.dims() {
        return shape_err(
            OP,
            format!("source shape {} and destination shape {}", sl.shape(), dl.shape()),
        );
    }
    let dev = same_device(OP, src, &[dst])?;
    check_layout(OP, src, sl)?;
    check_layout(OP, dst, dl)?;
    if dl.dims().iter().zip(dl.strides()).any(|(&d, &s)| d > 1 && s == 0) {
        return arg_err(
            OP,
            format!(
                "destination layout with a zero stride ({:?}) writes one element twice",
                dl.strides()
            ),
        );
    }
    let n = sl.elem_count();
    if n == 0 {
        return Ok(());
    }
    let (d, s) = collapse(sl.dims(), &[sl.strides(), dl.strides()]);
    let (ss, sd) = (Strided::new(OP, &d, &s[0])?, Strided::new(OP, &d, &s[1])?);
    let name = format!("copy_{}_{}", suffix(src.dtype()), suffix(dst.dtype()));
    let f = dev.function(OP, &COPY, &name)?;
    let (n64, ps, pd) = (n as u64, src.elem_ptr(sl.offset()), dst.elem_ptr(dl.offset()));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&ss).arg(&sd).arg(&ps).arg(&pd);
    launch(&dev, OP, &mut l, grid(n))
}

/// A contiguous copy of `x` seen through `layout`, converted to `dtype` (float → i64 truncates).
pub fn cast(x: &CudaStorage, layout: &Layout, dtype: DType) -> Result<CudaStorage> {
    let mut y = CudaStorage::uninit(x.cuda_device(), "cuda::cast", dtype, layout.elem_count())?;
    copy_strided(x, layout, &mut y, &Layout::contiguous(layout.shape().clone()))?;
    Ok(y)
}

/// A contiguous copy of `x` seen through `layout`.
pub fn contiguous(x: &CudaStorage, layout: &Layout) -> Result<CudaStorage> {
    cast(x, layout, x.dtype())
}

/// In place: every element of `dst` becomes `value` (converted to its dtype).
pub fn fill(dst: &mut CudaStorage, value: f64) -> Result<()> {
    const OP: &str = "cuda::fill";
    let n = dst.len();
    if n == 0 {
        return Ok(());
    }
    let dev = dst.cuda_device().clone();
    let f = dev.function(OP, &COPY, &format!("fill_{}", suffix(dst.dtype())))?;
    let (n64, p, v) = (n as u64, dst.device_ptr(), Scalar::new(dst.dtype(), value));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&p);
    push_scalar(&mut l, &v);
    launch(&dev, OP, &mut l, grid(n))
}

/// Paddings of the last two dims: (top, bottom, left, right).
pub type Pad2d = (usize, usize, usize, usize);

fn pad_mode(op: &'static str, mode: PaddingMode, (h, w): (usize, usize), (t, bo, le, r): Pad2d) -> Result<i32> {
    let (code, limit) = match mode {
        PaddingMode::Zeros => (0, usize::MAX),
        PaddingMode::Reflect => (1, 0),
        PaddingMode::Replicate => (2, usize::MAX),
        PaddingMode::Circular => (3, 1),
    };
    // Reflect needs pad < size, circular pad ≤ size; replicate needs a non-empty input.
    let fits = |p: usize, size: usize| match limit {
        0 => p < size,
        1 => p <= size,
        _ => size > 0 || p == 0 || code == 0,
    };
    if !(fits(t, h) && fits(bo, h) && fits(le, w) && fits(r, w)) {
        return arg_err(
            op,
            format!("{mode:?} padding ({t}, {bo}, {le}, {r}) does not fit an input of {h}×{w}"),
        );
    }
    Ok(code)
}

/// Pads the last two dims of `x` (rank ≥ 2, read through `layout`): output
/// `[..., H + top + bottom, W + left + right]`, contiguous, with the mode's values outside.
pub fn pad2d(x: &CudaStorage, layout: &Layout, pad: Pad2d, mode: PaddingMode) -> Result<CudaStorage> {
    const OP: &str = "cuda::pad2d";
    let dims = layout.dims();
    if dims.len() < 2 {
        return shape_err(OP, format!("needs rank ≥ 2, got shape {}", layout.shape()));
    }
    float_only(OP, x.dtype())?;
    let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let code = pad_mode(OP, mode, (h, w), pad)?;
    let xc;
    let x = if layout.is_contiguous() && layout.offset() == 0 {
        x
    } else {
        xc = contiguous(x, layout)?;
        &xc
    };
    let (oh, ow) = (h + pad.0 + pad.1, w + pad.2 + pad.3);
    let planes: usize = dims[..dims.len() - 2].iter().product();
    let n = planes * oh * ow;
    let dev = x.cuda_device().clone();
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), n)?;
    if n == 0 {
        return Ok(y);
    }
    let f = dev.function(OP, &COPY, &format!("pad2d_{}", suffix(x.dtype())))?;
    let ints = [
        code,
        h as i32,
        w as i32,
        oh as i32,
        ow as i32,
        pad.0 as i32,
        pad.2 as i32,
    ];
    let (n64, px, py) = (n as u64, x.device_ptr(), y.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64);
    for i in &ints {
        l.arg(i);
    }
    l.arg(&px).arg(&py);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(y)
}

/// The adjoint of [`pad2d`]: δx (contiguous, shape `x_dims`) from a contiguous δy of the padded
/// shape; each δy element is added to the input element it was read from.
pub fn pad2d_backward(dy: &CudaStorage, x_dims: &[usize], pad: Pad2d, mode: PaddingMode) -> Result<CudaStorage> {
    const OP: &str = "cuda::pad2d_backward";
    if x_dims.len() < 2 {
        return shape_err(OP, format!("needs rank ≥ 2, got {x_dims:?}"));
    }
    float_only(OP, dy.dtype())?;
    let (h, w) = (x_dims[x_dims.len() - 2], x_dims[x_dims.len() - 1]);
    let code = pad_mode(OP, mode, (h, w), pad)?;
    let (oh, ow) = (h + pad.0 + pad.1, w + pad.2 + pad.3);
    let planes: usize = x_dims[..x_dims.len() - 2].iter().product();
    let n = planes * oh * ow;
    if dy.len() != n {
        return shape_err(
            OP,
            format!("δy has {} elements, the padded shape of {x_dims:?} has {n}", dy.len()),
        );
    }
    let dx = CudaStorage::zeros(dy.ordinal(), dy.dtype(), planes * h * w)?;
    if n == 0 {
        return Ok(dx);
    }
    let dev = dy.cuda_device().clone();
    let f = dev.function(OP, &COPY, &format!("pad2d_backward_{}", suffix(dy.dtype())))?;
    let ints = [
        code,
        h as i32,
        w as i32,
        oh as i32,
        ow as i32,
        pad.0 as i32,
        pad.2 as i32,
    ];
    let (n64, pdy, pdx) = (n as u64, dy.device_ptr(), dx.device_ptr());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64);
    for i in &ints {
        l.arg(i);
    }
    l.arg(&pdy).arg(&pdx);
    launch(&dev, OP, &mut l, grid(n))?;
    Ok(dx)
}
