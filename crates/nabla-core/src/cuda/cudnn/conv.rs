//! 2-d convolution (cross-correlation, as PyTorch) forward, backward-data and backward-filter.
//!
//! ```text
//! y[n, o, i, j] = Σ_{c ∈ group(o), p, q} x[n, c, i·s_h + p·d_h − pad_t, j·s_w + q·d_w − pad_l] · w[o, c, p, q]
//! δx = conv_transpose(δy, w)       δw[o, c, p, q] = Σ_{n, i, j} δy[n, o, i, j] · x[n, c, ...]
//! ```
//! cuDNN pads with zeros, symmetrically. Other padding modes and asymmetric padding go through
//! the `pad2d` kernel in front (and `pad2d_backward` after backward-data).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cudarc::cudnn::sys;

use super::{Scaling, TensorDesc, check, check_len, conv_tf32, data_type, nchw, ptr, ptr_mut, to_i32};
use crate::backend::params::{Conv2dOptions, PaddingMode};
use crate::cuda::allocator;
use crate::cuda::context::{CudaDevice, lock};
use crate::cuda::ops::{contiguous, pad2d, pad2d_backward, same_device, same_dtype};
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Result, arg_err, shape_err};
use crate::shape::Layout;

/// Algorithms that need more workspace than this are passed over.
const WORKSPACE_LIMIT: usize = 1 << 30;

struct FilterDesc(sys::cudnnFilterDescriptor_t);
impl Drop for FilterDesc {
    fn drop(&mut self) {
        // SAFETY: created by cudnnCreateFilterDescriptor and destroyed once.
        unsafe { sys::cudnnDestroyFilterDescriptor(self.0) };
    }
}
struct ConvDesc(sys::cudnnConvolutionDescriptor_t);
impl Drop for ConvDesc {
    fn drop(&mut self) {
        // SAFETY: created by cudnnCreateConvolutionDescriptor and destroyed once.
        unsafe { sys::cudnnDestroyConvolutionDescriptor(self.0) };
    }
}

/// Everything that determines the algorithm choice (cache key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConvKey {
    ordinal: usize,
    pass: u8,
    double: bool,
    x: [usize; 4],
    w: [usize; 4],
    pad: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    tf32: bool,
}

/// A cached choice: algorithm (as its integer value) and math type. The workspace size is
/// asked of cuDNN at each call (cheap) and served by the caching allocator.
#[derive(Debug, Clone, Copy)]
struct Choice {
    algo: u32,
    math: sys::cudnnMathType_t,
}

fn cache() -> &'static Mutex<HashMap<ConvKey, Choice>> {
    static CACHE: OnceLock<Mutex<HashMap<ConvKey, Choice>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The shapes and descriptors of one convolution, after explicit padding is taken out.
struct Setup {
    /// Input dims as cuDNN sees them (after explicit padding).
    xp: [usize; 4],
    y: [usize; 4],
    /// Explicit padding (top, bottom, left, right) done by `pad2d`, when needed.
    explicit: Option<(usize, usize, usize, usize)>,
    xd: TensorDesc,
    wd: FilterDesc,
    yd: TensorDesc,
    cd: ConvDesc,
    key: ConvKey,
}

fn setup(
    dev: &CudaDevice,
    op: &'static str,
    dtype: DType,
    x: [usize; 4],
    w: [usize; 4],
    o: &Conv2dOptions,
) -> Result<Setup> {
    let dt = data_type(op, dtype)?;
    let g = o.groups;
    if g == 0 || !x[1].is_multiple_of(g) || !w[0].is_multiple_of(g) || w[1] * g != x[1] {
        return shape_err(op, format!("input {x:?} and weight {w:?} do not fit groups = {g}"));
    }
    if o.stride.contains(&0) || o.dilation.contains(&0) {
        return arg_err(
            op,
            format!("stride {:?} and dilation {:?} must be ≥ 1", o.stride, o.dilation),
        );
    }
    let [t, b, l, r] = o.padding;
    let symmetric_zeros = o.padding_mode == PaddingMode::Zeros && t == b && l == r;
    let (xp, pad, explicit) = if symmetric_zeros {
        (x, [t, l], None)
    } else {
        ([x[0], x[1], x[2] + t + b, x[3] + l + r], [0, 0], Some((t, b, l, r)))
    };
    let span = |size: usize, p: usize, k: usize, d: usize, s: usize| -> Option<usize> {
        let eff = d * (k - 1) + 1;
        (size + 2 * p >= eff && k > 0).then(|| (size + 2 * p - eff) / s + 1)
    };
    let (oh, ow) = match (
        span(xp[2], pad[0], w[2], o.dilation[0], o.stride[0]),
        span(xp[3], pad[1], w[3], o.dilation[1], o.stride[1]),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            return shape_err(
                op,
                format!(
                    "kernel {w:?} (dilation {:?}) is larger than the padded input {xp:?}",
                    o.dilation
                ),
            );
        }
    };
    let y = [x[0], w[0], oh, ow];
    let xd = TensorDesc::new(dev, op, dtype, xp)?;
    let yd = TensorDesc::new(dev, op, dtype, y)?;
    let mut raw = std::ptr::null_mut();
    // SAFETY: out-pointers to fresh descriptors, each freed by its Drop.
    check(dev, op, unsafe { sys::cudnnCreateFilterDescriptor(&mut raw) })?;
    let wd = FilterDesc(raw);
    let w32 = [
        to_i32(op, w[0])?,
        to_i32(op, w[1])?,
        to_i32(op, w[2])?,
        to_i32(op, w[3])?,
    ];
    check(dev, op, unsafe {
        sys::cudnnSetFilter4dDescriptor(
            raw,
            dt,
            sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW,
            w32[0],
            w32[1],
            w32[2],
            w32[3],
        )
    })?;
    let mut raw = std::ptr::null_mut();
    check(dev, op, unsafe { sys::cudnnCreateConvolutionDescriptor(&mut raw) })?;
    let cd = ConvDesc(raw);
    check(dev, op, unsafe {
        sys::cudnnSetConvolution2dDescriptor(
            raw,
            to_i32(op, pad[0])?,
            to_i32(op, pad[1])?,
            to_i32(op, o.stride[0])?,
            to_i32(op, o.stride[1])?,
            to_i32(op, o.dilation[0])?,
            to_i32(op, o.dilation[1])?,
            sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            dt,
        )
    })?;
    check(dev, op, unsafe {
        sys::cudnnSetConvolutionGroupCount(raw, to_i32(op, g)?)
    })?;
    let tf32 = dtype == DType::F32 && conv_tf32();
    // NOTE: cuDNN's default math lets f32 convolutions use TF32 on Ampere and later; FMA math
    // is the only way to forbid it.
    let math = if tf32 || dtype == DType::F64 {
        sys::cudnnMathType_t::CUDNN_DEFAULT_MATH
    } else {
        sys::cudnnMathType_t::CUDNN_FMA_MATH
    };
    check(dev, op, unsafe { sys::cudnnSetConvolutionMathType(raw, math) })?;
    let key = ConvKey {
        ordinal: dev.ordinal(),
        pass: 0,
        double: dtype == DType::F64,
        x: xp,
        w,
        pad,
        stride: o.stride,
        dilation: o.dilation,
        groups: g,
        tf32,
    };
    Ok(Setup {
        xp,
        y,
        explicit,
        xd,
        wd,
        yd,
        cd,
        key,
    })
}

/// Picks (or recalls) the algorithm of one pass with cuDNN's heuristics and sets its math type.
fn choose(
    dev: &CudaDevice,
    op: &'static str,
    s: &mut Setup,
    pass: u8,
    heuristics: impl FnOnce() -> Result<Vec<(u32, sys::cudnnStatus_t, sys::cudnnMathType_t, usize)>>,
) -> Result<Choice> {
    s.key.pass = pass;
    let cached = lock(cache()).get(&s.key).copied();
    let choice = match cached {
        Some(c) => c,
        None => {
            let found = heuristics()?;
            let best = found
                .iter()
                .find(|(_, st, _, mem)| *st == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS && *mem <= WORKSPACE_LIMIT)
                .ok_or_else(|| {
                    dev.err(
                        op,
                        crate::cuda::context::Library::Cudnn,
                        format!("no algorithm for {:?}", s.key),
                    )
                })?;
            let c = Choice {
                algo: best.0,
                math: if s.key.tf32 {
                    best.2
                } else {
                    sys::cudnnMathType_t::CUDNN_FMA_MATH
                },
            };
            lock(cache()).insert(s.key.clone(), c);
            c
        }
    };
    if s.key.tf32 {
        // SAFETY: a live descriptor.
        check(dev, op, unsafe {
            sys::cudnnSetConvolutionMathType(s.cd.0, choice.math)
        })?;
    }
    Ok(choice)
}

/// Runs a heuristics query that fills up to 8 perf structs and returns how many it wrote.
fn query<P>(
    f: impl FnOnce(*mut P, &mut i32) -> sys::cudnnStatus_t,
    dev: &CudaDevice,
    op: &'static str,
) -> Result<Vec<P>> {
    let mut v: Vec<P> = Vec::with_capacity(8);
    let mut n = 0i32;
    check(dev, op, f(v.as_mut_ptr(), &mut n))?;
    // SAFETY: cuDNN initialised the first `n` (≤ 8) entries.
    unsafe { v.set_len(n.clamp(0, 8) as usize) };
    Ok(v)
}

fn contiguous_in(x: &CudaStorage, l: &Layout) -> Result<Option<CudaStorage>> {
    Ok(if l.is_contiguous() && l.offset() == 0 {
        None
    } else {
        Some(contiguous(x, l)?)
    })
}

/// `y = conv2d(x, w)` without bias (add it with a broadcasting `binary` add). `x` is
/// `[N, C, H, W]`, `w` is `[O, C/groups, KH, KW]`; `y` is contiguous `[N, O, OH, OW]`.
pub fn conv2d(x: &CudaStorage, xl: &Layout, w: &CudaStorage, wl: &Layout, o: &Conv2dOptions) -> Result<CudaStorage> {
    const OP: &str = "cuda::conv2d";
    same_dtype(OP, x.dtype(), w.dtype())?;
    let dev = same_device(OP, x, &[w])?;
    crate::cuda::ops::check_layout(OP, x, xl)?;
    crate::cuda::ops::check_layout(OP, w, wl)?;
    let (xdims, wdims) = (nchw(OP, "input", xl.dims())?, nchw(OP, "weight", wl.dims())?);
    let (xc, wc) = (contiguous_in(x, xl)?, contiguous_in(w, wl)?);
    let (x, w) = (xc.as_ref().unwrap_or(x), wc.as_ref().unwrap_or(w));
    let mut s = setup(&dev, OP, x.dtype(), xdims, wdims, o)?;
    let xpad;
    let x = match s.explicit {
        Some(p) => {
            xpad = pad2d(x, &Layout::contiguous(xdims.to_vec()), p, o.padding_mode)?;
            &xpad
        }
        None => x,
    };
    let y = CudaStorage::uninit(&dev, OP, x.dtype(), s.y.iter().product())?;
    if s.y.iter().product::<usize>() == 0 {
        return Ok(y);
    }
    dev.with_cudnn(OP, |h| {
        let (xd, wd, cd, yd) = (s.xd.0, s.wd.0, s.cd.0, s.yd.0);
        let c = choose(&dev, OP, &mut s, 0, || {
            let v = query::<sys::cudnnConvolutionFwdAlgoPerf_t>(
                // SAFETY: valid handle and descriptors; room for 8 results.
                |p, n| unsafe { sys::cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, 8, n, p) },
                &dev,
                OP,
            )?;
            Ok(v.iter()
                .map(|p| (p.algo as u32, p.status, p.mathType, p.memory))
                .collect())
        })?;
        let algo = fwd_algo(c.algo);
        let mut ws = 0usize;
        // SAFETY: as above.
        check(&dev, OP, unsafe {
            sys::cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, algo, &mut ws)
        })?;
        let buf = allocator::alloc(&dev, OP, ws)?;
        let k = Scaling::new(x.dtype(), 0.0);
        // SAFETY: pointers of live, contiguous buffers matching the descriptors.
        check(&dev, OP, unsafe {
            sys::cudnnConvolutionForward(
                h,
                k.alpha(),
                xd,
                ptr(x),
                wd,
                ptr(w),
                cd,
                algo,
                buf.ptr() as _,
                ws,
                k.beta(),
                yd,
                ptr_mut(&y),
            )
        })
    })?;
    Ok(y)
}

/// δx of [`conv2d`] from contiguous δy `[N, O, OH, OW]` and the weight; `x_dims` is the input's
/// shape. δx is contiguous.
pub fn conv2d_backward_data(
    dy: &CudaStorage,
    w: &CudaStorage,
    wl: &Layout,
    x_dims: &[usize],
    o: &Conv2dOptions,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::conv2d_backward_data";
    same_dtype(OP, dy.dtype(), w.dtype())?;
    let dev = same_device(OP, dy, &[w])?;
    crate::cuda::ops::check_layout(OP, w, wl)?;
    let (xdims, wdims) = (nchw(OP, "input", x_dims)?, nchw(OP, "weight", wl.dims())?);
    let wc = contiguous_in(w, wl)?;
    let w = wc.as_ref().unwrap_or(w);
    let mut s = setup(&dev, OP, dy.dtype(), xdims, wdims, o)?;
    check_len(OP, "δy", dy, &s.y)?;
    let dxp = CudaStorage::zeros(dy.ordinal(), dy.dtype(), s.xp.iter().product())?;
    if s.y.iter().product::<usize>() > 0 && !dxp.is_empty() {
        dev.with_cudnn(OP, |h| {
            let (xd, wd, cd, yd) = (s.xd.0, s.wd.0, s.cd.0, s.yd.0);
            let c = choose(&dev, OP, &mut s, 1, || {
                let v = query::<sys::cudnnConvolutionBwdDataAlgoPerf_t>(
                    // SAFETY: valid handle and descriptors; room for 8 results.
                    |p, n| unsafe { sys::cudnnGetConvolutionBackwardDataAlgorithm_v7(h, wd, yd, cd, xd, 8, n, p) },
                    &dev,
                    OP,
                )?;
                Ok(v.iter()
                    .map(|p| (p.algo as u32, p.status, p.mathType, p.memory))
                    .collect())
            })?;
            let algo = bwd_data_algo(c.algo);
            let mut ws = 0usize;
            // SAFETY: as above.
            check(&dev, OP, unsafe {
                sys::cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, yd, cd, xd, algo, &mut ws)
            })?;
            let buf = allocator::alloc(&dev, OP, ws)?;
            let k = Scaling::new(dy.dtype(), 0.0);
            // SAFETY: pointers of live, contiguous buffers matching the descriptors.
            check(&dev, OP, unsafe {
                sys::cudnnConvolutionBackwardData(
                    h,
                    k.alpha(),
                    wd,
                    ptr(w),
                    yd,
                    ptr(dy),
                    cd,
                    algo,
                    buf.ptr() as _,
                    ws,
                    k.beta(),
                    xd,
                    ptr_mut(&dxp),
                )
            })
        })?;
    }
    match s.explicit {
        Some(p) => pad2d_backward(&dxp, &xdims, p, o.padding_mode),
        None => Ok(dxp),
    }
}

/// δw of [`conv2d`] from the input and contiguous δy; `w_dims` is the weight's shape. δw is
/// contiguous.
pub fn conv2d_backward_filter(
    x: &CudaStorage,
    xl: &Layout,
    dy: &CudaStorage,
    w_dims: &[usize],
    o: &Conv2dOptions,
) -> Result<CudaStorage> {
    const OP: &str = "cuda::conv2d_backward_filter";
    same_dtype(OP, x.dtype(), dy.dtype())?;
    let dev = same_device(OP, x, &[dy])?;
    crate::cuda::ops::check_layout(OP, x, xl)?;
    let (xdims, wdims) = (nchw(OP, "input", xl.dims())?, nchw(OP, "weight", w_dims)?);
    let xc = contiguous_in(x, xl)?;
    let x = xc.as_ref().unwrap_or(x);
    let mut s = setup(&dev, OP, x.dtype(), xdims, wdims, o)?;
    check_len(OP, "δy", dy, &s.y)?;
    let xpad;
    let x = match s.explicit {
        Some(p) => {
            xpad = pad2d(x, &Layout::contiguous(xdims.to_vec()), p, o.padding_mode)?;
            &xpad
        }
        None => x,
    };
    let dw = CudaStorage::zeros(x.ordinal(), x.dtype(), wdims.iter().product())?;
    if s.y.iter().product::<usize>() == 0 || dw.is_empty() {
        return Ok(dw);
    }
    dev.with_cudnn(OP, |h| {
        let (xd, wd, cd, yd) = (s.xd.0, s.wd.0, s.cd.0, s.yd.0);
        let c = choose(&dev, OP, &mut s, 2, || {
            let v = query::<sys::cudnnConvolutionBwdFilterAlgoPerf_t>(
                // SAFETY: valid handle and descriptors; room for 8 results.
                |p, n| unsafe { sys::cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, xd, yd, cd, wd, 8, n, p) },
                &dev,
                OP,
            )?;
            Ok(v.iter()
                .map(|p| (p.algo as u32, p.status, p.mathType, p.memory))
                .collect())
        })?;
        let algo = bwd_filter_algo(c.algo);
        let mut ws = 0usize;
        // SAFETY: as above.
        check(&dev, OP, unsafe {
            sys::cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, cd, wd, algo, &mut ws)
        })?;
        let buf = allocator::alloc(&dev, OP, ws)?;
        let k = Scaling::new(x.dtype(), 0.0);
        // SAFETY: pointers of live, contiguous buffers matching the descriptors.
        check(&dev, OP, unsafe {
            sys::cudnnConvolutionBackwardFilter(
                h,
                k.alpha(),
                xd,
                ptr(x),
                yd,
                ptr(dy),
                cd,
                algo,
                buf.ptr() as _,
                ws,
                k.beta(),
                wd,
                ptr_mut(&dw),
            )
        })
    })?;
    Ok(dw)
}

fn fwd_algo(a: u32) -> sys::cudnnConvolutionFwdAlgo_t {
    use sys::cudnnConvolutionFwdAlgo_t::*;
    [
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
        CUDNN_CONVOLUTION_FWD_ALGO_FFT,
        CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
        CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
        CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
    ]
    .get(a as usize)
    .copied()
    .unwrap_or(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM)
}

fn bwd_data_algo(a: u32) -> sys::cudnnConvolutionBwdDataAlgo_t {
    use sys::cudnnConvolutionBwdDataAlgo_t::*;
    [
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED,
    ]
    .get(a as usize)
    .copied()
    .unwrap_or(CUDNN_CONVOLUTION_BWD_DATA_ALGO_0)
}

fn bwd_filter_algo(a: u32) -> sys::cudnnConvolutionBwdFilterAlgo_t {
    use sys::cudnnConvolutionBwdFilterAlgo_t::*;
    [
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING,
    ]
    .get(a as usize)
    .copied()
    .unwrap_or(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0)
}
