//! Storage: the buffer behind one or more tensors, one variant per device.

use crate::backend::params::{
    AdamUpdate, BatchNormParams, BinaryOp, ConvGeometry, LrnParams, Pad2dParams, PoolGeometry, PoolKind, Precision,
    ReduceOp, SgdUpdate, UnaryOp,
};
use crate::backend::{BackendStorage, Dense, Saved};
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::shape::Layout;
use crate::{DType, Device};

/// A buffer in host memory.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::I64(_) => DType::I64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A buffer of `len` elements, all `value` (converted to the dtype).
    pub fn full(dtype: DType, len: usize, value: f64) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![value as f32; len]),
            DType::F64 => CpuStorage::F64(vec![value; len]),
            DType::I64 => CpuStorage::I64(vec![value as i64; len]),
        }
    }
    /// A zero-filled buffer.
    pub fn zeros(dtype: DType, len: usize) -> Self {
        CpuStorage::full(dtype, len, 0.0)
    }
}

/// `CpuStorage::$V(body)` for each variant `$V` of `$s`, with `$v` bound to its vector: one
/// line for what every dtype does alike (copies, gathers, index kernels).
macro_rules! each_dtype {
    ($s:expr, |$v:ident| $body:expr) => {
        match $s {
            $crate::storage::CpuStorage::F32($v) => $crate::storage::CpuStorage::F32($body),
            $crate::storage::CpuStorage::F64($v) => $crate::storage::CpuStorage::F64($body),
            $crate::storage::CpuStorage::I64($v) => $crate::storage::CpuStorage::I64($body),
        }
    };
}
pub(crate) use each_dtype;

/// The storage of a tensor on some device: host memory always, NVIDIA GPUs with the `cuda`
/// feature. Each kernel method below dispatches once to the device's [`BackendStorage`]; a second
/// operand on another device is a `DeviceMismatch` error, never a silent copy.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

/// The values of `range`, as a buffer of their own.
fn slice_of(s: &CpuStorage, range: std::ops::Range<usize>) -> CpuStorage {
    each_dtype!(s, |v| v[range].to_vec())
}

/// One device's storage type as a variant of [`Storage`].
trait Variant: BackendStorage {
    fn of(s: &Storage) -> Option<&Self>;
    fn of_mut(s: &mut Storage) -> Option<&mut Self>;
    fn wrap(self) -> Storage;
}

impl Variant for CpuStorage {
    fn of(s: &Storage) -> Option<&Self> {
        #[allow(irrefutable_let_patterns)]
        if let Storage::Cpu(c) = s { Some(c) } else { None }
    }
    fn of_mut(s: &mut Storage) -> Option<&mut Self> {
        #[allow(irrefutable_let_patterns)]
        if let Storage::Cpu(c) = s { Some(c) } else { None }
    }
    fn wrap(self) -> Storage {
        Storage::Cpu(self)
    }
}

#[cfg(feature = "cuda")]
impl Variant for crate::cuda::CudaStorage {
    fn of(s: &Storage) -> Option<&Self> {
        if let Storage::Cuda(c) = s { Some(c) } else { None }
    }
    fn of_mut(s: &mut Storage) -> Option<&mut Self> {
        if let Storage::Cuda(c) = s { Some(c) } else { None }
    }
    fn wrap(self) -> Storage {
        Storage::Cuda(self)
    }
}

/// `other` as the same device's storage as `first`, or an error naming `op` and both devices.
fn on_same<'a, B: Variant>(op: &'static str, first: &B, other: &'a Storage) -> Result<&'a B> {
    match B::of(other) {
        Some(o) if o.device() == first.device() => Ok(o),
        _ => Err(Error::DeviceMismatch {
            op,
            lhs: first.device(),
            rhs: other.device(),
        }),
    }
}

fn on_same_mut<'a, B: Variant>(op: &'static str, first: Device, other: &'a mut Storage) -> Result<&'a mut B> {
    let device = other.device();
    match B::of_mut(other) {
        Some(o) if device == first => Ok(o),
        _ => Err(Error::DeviceMismatch {
            op,
            lhs: first,
            rhs: device,
        }),
    }
}

/// Runs `$body` with `$s` bound to the device storage of `$self` and `$B` its type.
macro_rules! dispatch {
    ($self:expr, |$s:ident: $B:ident| $body:expr) => {
        match $self {
            Storage::Cpu($s) => {
                #[allow(dead_code)]
                type $B = CpuStorage;
                $body
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda($s) => {
                #[allow(dead_code)]
                type $B = crate::cuda::CudaStorage;
                $body
            }
        }
    };
}

impl Storage {
    pub fn dtype(&self) -> DType {
        dispatch!(self, |s: B| BackendStorage::dtype(s))
    }
    pub fn device(&self) -> Device {
        dispatch!(self, |s: B| BackendStorage::device(s))
    }
    pub fn len(&self) -> usize {
        dispatch!(self, |s: B| BackendStorage::len(s))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The host buffer, or an error naming `op` when the storage is on another device.
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn cpu(&self, op: &'static str) -> Result<&CpuStorage> {
        CpuStorage::of(self).ok_or(Error::Unimplemented {
            op,
            device: self.device(),
        })
    }
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn cpu_mut(&mut self, op: &'static str) -> Result<&mut CpuStorage> {
        let device = self.device();
        CpuStorage::of_mut(self).ok_or(Error::Unimplemented { op, device })
    }
    /// A copy of the whole buffer in host memory.
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        dispatch!(self, |s: B| s.to_cpu())
    }
    /// A copy of the elements `range` of this buffer on `device` (through host memory between
    /// devices; the framework moves data between GPUs rarely: no model parallelism).
    pub(crate) fn copy_to(&self, range: std::ops::Range<usize>, device: Device) -> Result<Storage> {
        let host = match self {
            Storage::Cpu(s) => slice_of(s, range),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => slice_of(&s.to_cpu()?, range),
        };
        match device {
            Device::Cpu => Ok(Storage::Cpu(host)),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => Ok(Storage::Cuda(crate::cuda::CudaStorage::from_cpu(n, &host)?)),
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Err(Error::Argument {
                op: "to_device",
                msg: "this build of nabla has no CUDA support: rebuild with `--features cuda`".into(),
            }),
        }
    }
    /// A buffer of `len` elements, all `value`, on this storage's device.
    pub fn full(&self, dtype: DType, len: usize, value: f64) -> Result<Storage> {
        dispatch!(self, |s: B| s.full(dtype, len, value).map(B::wrap))
    }

    pub(crate) fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage> {
        dispatch!(self, |s: B| s.unary(l, op).map(B::wrap))
    }
    pub(crate) fn binary(&self, l: &Layout, rhs: &Storage, rl: &Layout, op: BinaryOp) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .binary(l, on_same(op.name(), s, rhs)?, rl, op)
            .map(B::wrap))
    }
    pub(crate) fn where_cond(&self, l: &Layout, a: &Storage, al: &Layout, b: &Storage, bl: &Layout) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .where_cond(l, on_same("where", s, a)?, al, on_same("where", s, b)?, bl)
            .map(B::wrap))
    }
    pub(crate) fn cast(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        dispatch!(self, |s: B| s.cast(l, dtype).map(B::wrap))
    }
    pub(crate) fn copy_strided(&self, l: &Layout, dst: &mut Storage, dl: &Layout) -> Result<()> {
        dispatch!(self, |s: B| s.copy_strided(
            l,
            on_same_mut::<B>("copy_", s.device(), dst)?,
            dl
        ))
    }
    pub(crate) fn reduce(&self, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<Storage> {
        dispatch!(self, |s: B| s.reduce(l, op, dims).map(B::wrap))
    }
    pub(crate) fn softmax(&self, l: &Layout, log: bool) -> Result<Storage> {
        dispatch!(self, |s: B| s.softmax(l, log).map(B::wrap))
    }
    pub(crate) fn softmax_cross_entropy(
        &self,
        l: &Layout,
        t: &Storage,
        tl: &Layout,
        scale: f64,
    ) -> Result<(Storage, Storage)> {
        dispatch!(self, |s: B| s
            .softmax_cross_entropy(l, on_same("softmax_cross_entropy", s, t)?, tl, scale)
            .map(|(a, b)| (a.wrap(), b.wrap())))
    }
    pub(crate) fn matmul(&self, l: &Layout, rhs: &Storage, rl: &Layout, precision: Precision) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .matmul(l, on_same("matmul", s, rhs)?, rl, precision)
            .map(B::wrap))
    }
    pub(crate) fn conv2d(
        &self,
        l: &Layout,
        w: &Storage,
        wl: &Layout,
        bias: Option<(&Storage, &Layout)>,
        g: &ConvGeometry,
        keep: bool,
    ) -> Result<(Storage, Option<Saved>)> {
        dispatch!(self, |s: B| {
            let bias = match bias {
                Some((b, bl)) => Some((on_same::<B>("conv2d", s, b)?, bl)),
                None => None,
            };
            s.conv2d(l, on_same("conv2d", s, w)?, wl, bias, g, keep)
                .map(|(y, saved)| (y.wrap(), saved))
        })
    }
    pub(crate) fn conv2d_backward_input(
        &self,
        l: &Layout,
        w: &Storage,
        wl: &Layout,
        g: &ConvGeometry,
    ) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .conv2d_backward_input(l, on_same("conv2d", s, w)?, wl, g)
            .map(B::wrap))
    }
    pub(crate) fn conv2d_backward_weight(
        &self,
        l: &Layout,
        dy: &Storage,
        dyl: &Layout,
        g: &ConvGeometry,
        saved: Option<Saved>,
    ) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .conv2d_backward_weight(l, on_same("conv2d", s, dy)?, dyl, g, saved)
            .map(B::wrap))
    }
    pub(crate) fn pool2d(&self, l: &Layout, kind: PoolKind, g: &PoolGeometry) -> Result<(Storage, Option<Saved>)> {
        dispatch!(self, |s: B| s.pool2d(l, kind, g).map(|(y, saved)| (y.wrap(), saved)))
    }
    pub(crate) fn pool2d_backward(
        &self,
        l: &Layout,
        dy: &Storage,
        dyl: &Layout,
        kind: PoolKind,
        g: &PoolGeometry,
        saved: Option<&Saved>,
    ) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .pool2d_backward(l, on_same("pool2d", s, dy)?, dyl, kind, g, saved)
            .map(B::wrap))
    }
    pub(crate) fn lrn(&self, l: &Layout, p: &LrnParams) -> Result<(Storage, Storage)> {
        dispatch!(self, |s: B| s.lrn(l, p).map(|(y, sc)| (y.wrap(), sc.wrap())))
    }
    pub(crate) fn lrn_backward(
        &self,
        l: &Layout,
        scale: &Storage,
        dy: &Storage,
        dyl: &Layout,
        p: &LrnParams,
    ) -> Result<Storage> {
        const OP: &str = "local_response_norm";
        dispatch!(self, |s: B| s
            .lrn_backward(l, on_same(OP, s, scale)?, on_same(OP, s, dy)?, dyl, p)
            .map(B::wrap))
    }
    pub(crate) fn batch_norm_train(
        &self,
        l: &Layout,
        weight: (&Storage, &Layout),
        bias: (&Storage, &Layout),
        running: Option<(&mut Storage, &mut Storage)>,
        p: &BatchNormParams,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "batch_norm";
        dispatch!(self, |s: B| {
            let (w, b) = (on_same::<B>(OP, s, weight.0)?, on_same::<B>(OP, s, bias.0)?);
            let running = match running {
                Some((m, v)) => Some((
                    on_same_mut::<B>(OP, s.device(), m)?,
                    on_same_mut::<B>(OP, s.device(), v)?,
                )),
                None => None,
            };
            s.batch_norm_train(l, (w, weight.1), (b, bias.1), running, p)
                .map(|(y, m, i)| (y.wrap(), m.wrap(), i.wrap()))
        })
    }
    pub(crate) fn batch_norm_eval(
        &self,
        l: &Layout,
        weight: (&Storage, &Layout),
        bias: (&Storage, &Layout),
        stats: [(&Storage, &Layout); 2],
        p: &BatchNormParams,
    ) -> Result<Storage> {
        const OP: &str = "batch_norm";
        dispatch!(self, |s: B| {
            let (w, b) = (on_same::<B>(OP, s, weight.0)?, on_same::<B>(OP, s, bias.0)?);
            let [(m, ml), (v, vl)] = stats;
            let (m, v) = (on_same::<B>(OP, s, m)?, on_same::<B>(OP, s, v)?);
            s.batch_norm_eval(l, (w, weight.1), (b, bias.1), [(m, ml), (v, vl)], p)
                .map(B::wrap)
        })
    }
    pub(crate) fn batch_norm_backward(
        &self,
        l: &Layout,
        dy: (&Storage, &Layout),
        weight: (&Storage, &Layout),
        mean: &Storage,
        inv_std: &Storage,
        p: &BatchNormParams,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "batch_norm";
        dispatch!(self, |s: B| {
            let (g, w) = (on_same::<B>(OP, s, dy.0)?, on_same::<B>(OP, s, weight.0)?);
            let (m, i) = (on_same::<B>(OP, s, mean)?, on_same::<B>(OP, s, inv_std)?);
            s.batch_norm_backward(l, (g, dy.1), (w, weight.1), m, i, p)
                .map(|(a, b, c)| (a.wrap(), b.wrap(), c.wrap()))
        })
    }
    pub(crate) fn pad2d(&self, l: &Layout, p: &Pad2dParams) -> Result<Storage> {
        dispatch!(self, |s: B| s.pad2d(l, p).map(B::wrap))
    }
    pub(crate) fn pad2d_backward(&self, l: &Layout, p: &Pad2dParams) -> Result<Storage> {
        dispatch!(self, |s: B| s.pad2d_backward(l, p).map(B::wrap))
    }
    pub(crate) fn index_select(&self, l: &Layout, dim: usize, idx: &Storage) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .index_select(l, dim, on_same("index_select", s, idx)?)
            .map(B::wrap))
    }
    pub(crate) fn index_add(
        &mut self,
        dims: &[usize],
        dim: usize,
        idx: &Storage,
        src: &Storage,
        sl: &Layout,
    ) -> Result<()> {
        dispatch!(self, |s: B| {
            let (i, x) = (on_same::<B>("index_add", s, idx)?, on_same::<B>("index_add", s, src)?);
            s.index_add(dims, dim, i, x, sl)
        })
    }
    pub(crate) fn gather(&self, l: &Layout, dim: usize, index: &Storage, index_dims: &[usize]) -> Result<Storage> {
        dispatch!(self, |s: B| s
            .gather(l, dim, on_same("gather", s, index)?, index_dims)
            .map(B::wrap))
    }
    pub(crate) fn scatter_add(
        &mut self,
        dims: &[usize],
        dim: usize,
        index: &Storage,
        index_dims: &[usize],
        src: &Storage,
        sl: &Layout,
    ) -> Result<()> {
        dispatch!(self, |s: B| {
            let (i, x) = (
                on_same::<B>("scatter_add", s, index)?,
                on_same::<B>("scatter_add", s, src)?,
            );
            s.scatter_add(dims, dim, i, index_dims, x, sl)
        })
    }
    pub(crate) fn dropout_mask(&self, dtype: DType, len: usize, p: f64, rng: &mut Generator) -> Result<Storage> {
        dispatch!(self, |s: B| s.dropout_mask(dtype, len, p, rng).map(B::wrap))
    }
    pub(crate) fn sgd_update(
        &mut self,
        range: Dense,
        grad: (&Storage, Dense),
        buffer: Option<(&mut Storage, Dense)>,
        u: &SgdUpdate,
    ) -> Result<()> {
        const OP: &str = "sgd_update_";
        let device = self.device();
        dispatch!(self, |s: B| {
            let g = (on_same::<B>(OP, s, grad.0)?, grad.1);
            let b = match buffer {
                Some((b, r)) => Some((on_same_mut::<B>(OP, device, b)?, r)),
                None => None,
            };
            s.sgd_update(range, g, b, u)
        })
    }
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn adam_update(
        &mut self,
        range: Dense,
        grad: (&Storage, Dense),
        m: (&mut Storage, Dense),
        v: (&mut Storage, Dense),
        v_max: Option<(&mut Storage, Dense)>,
        u: &AdamUpdate,
    ) -> Result<()> {
        const OP: &str = "adam_update_";
        let device = self.device();
        dispatch!(self, |s: B| {
            let g = (on_same::<B>(OP, s, grad.0)?, grad.1);
            let m = (on_same_mut::<B>(OP, device, m.0)?, m.1);
            let v = (on_same_mut::<B>(OP, device, v.0)?, v.1);
            let vm = match v_max {
                Some((b, r)) => Some((on_same_mut::<B>(OP, device, b)?, r)),
                None => None,
            };
            s.adam_update(range, g, m, v, vm, u)
        })
    }
}
