//! The `Tensor`: a cheap handle to shared storage plus a layout, and the autograd record of
//! the op that produced it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::autograd::{BackwardFn, Node, is_grad_enabled};
use crate::error::{Error, Result, arg_err};
use crate::rng::{Generator, with_default_generator};
use crate::storage::{CpuStorage, Storage};
use crate::{DType, Device, Layout, Shape, WithDType};

/// A unique id per tensor handle, used to look gradients up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(usize);

impl TensorId {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct TensorInner {
    id: TensorId,
    storage: Arc<RwLock<Storage>>,
    layout: Layout,
    dtype: DType,
    node: Option<Arc<Node>>,
    requires_grad: bool,
}

/// An n-dimensional array of f32, f64 or i64 that records the ops applied to it when it (or
/// one of its inputs) requires gradients. Cloning is cheap: clones share storage and identity.
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

impl Tensor {
    // ------------------------------------------------------------------ construction

    pub(crate) fn from_storage(storage: CpuStorage, shape: impl Into<Shape>) -> Tensor {
        Tensor::from_any_storage(Storage::Cpu(storage), shape)
    }

    /// A contiguous tensor over storage on any device.
    pub(crate) fn from_any_storage(storage: Storage, shape: impl Into<Shape>) -> Tensor {
        let shape = shape.into();
        debug_assert_eq!(storage.len(), shape.elem_count());
        let dtype = storage.dtype();
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage: Arc::new(RwLock::new(storage)),
            layout: Layout::contiguous(shape),
            dtype,
            node: None,
            requires_grad: false,
        }))
    }

    /// A tensor from a vector in row-major order.
    ///
    /// ```
    /// use nabla_core::Tensor;
    /// let t = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], (2, 3)).unwrap();
    /// assert_eq!(t.dims(), &[2, 3]);
    /// assert!(Tensor::from_vec(vec![1f32, 2.], (2, 3)).is_err());
    /// ```
    pub fn from_vec<T: WithDType>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return arg_err(
                "from_vec",
                format!(
                    "{} values do not fill shape {} ({} elements)",
                    data.len(),
                    shape,
                    shape.elem_count()
                ),
            );
        }
        Ok(Tensor::from_storage(T::into_storage(data), shape))
    }

    pub fn from_slice<T: WithDType>(data: &[T], shape: impl Into<Shape>) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A zero-dimensional tensor holding one value.
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        Tensor::full(value, (), dtype)
    }

    pub fn full(value: f64, shape: impl Into<Shape>, dtype: DType) -> Tensor {
        let shape = shape.into();
        Tensor::from_storage(CpuStorage::full(dtype, shape.elem_count(), value), shape)
    }
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        Tensor::full(0.0, shape, dtype)
    }
    pub fn ones(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        Tensor::full(1.0, shape, dtype)
    }
    /// Zeros of `t`'s shape and dtype, on `t`'s device.
    pub fn zeros_like(t: &Tensor) -> Result<Tensor> {
        Tensor::full_like(t, 0.0)
    }
    pub fn ones_like(t: &Tensor) -> Result<Tensor> {
        Tensor::full_like(t, 1.0)
    }
    pub fn full_like(t: &Tensor, value: f64) -> Result<Tensor> {
        Tensor::full_on(value, t.shape().clone(), t.dtype(), t.device())
    }
    /// `value` everywhere, on `device`.
    pub fn full_on(value: f64, shape: impl Into<Shape>, dtype: DType, device: Device) -> Result<Tensor> {
        let shape = shape.into();
        crate::limits::check_tensor(shape.dims(), dtype.size_in_bytes(), "full")?;
        match device {
            Device::Cpu => Ok(Tensor::full(value, shape, dtype)),
            #[cfg(feature = "cuda")]
            Device::Cuda(n) => {
                let s = crate::cuda::CudaStorage::full(n, dtype, shape.elem_count(), value)?;
                Ok(Tensor::from_any_storage(Storage::Cuda(s), shape))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Tensor::full(value, shape, dtype).to_device(device),
        }
    }

    /// `start, start + step, ...` up to but excluding `end`, as `torch.arange`.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || (end - start) / step < 0.0 {
            return arg_err("arange", format!("cannot go from {start} to {end} in steps of {step}"));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(v, (n,))?.to_dtype(dtype)
    }

    /// The n×n identity matrix.
    pub fn eye(n: usize, dtype: DType) -> Result<Tensor> {
        let mut v = vec![0.0; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        Tensor::from_vec(v, (n, n))?.to_dtype(dtype)
    }

    fn sampled(shape: impl Into<Shape>, dtype: DType, mut sample: impl FnMut() -> f64) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType { op: "random", dtype });
        }
        let shape = shape.into();
        crate::limits::check_tensor(shape.dims(), 8, "random tensor")?;
        let v: Vec<f64> = (0..shape.elem_count()).map(|_| sample()).collect();
        Tensor::from_vec(v, shape)?.to_dtype(dtype)
    }

    /// Uniform on [lo, hi), drawn from `gen`.
    pub fn uniform_with(lo: f64, hi: f64, shape: impl Into<Shape>, dtype: DType, g: &mut Generator) -> Result<Tensor> {
        // NOTE: values are drawn in f64; rounding to f32 can reach `hi` itself (about once in
        // 3·10⁷ draws for [0, 1)), so such a value becomes the largest f32 below `hi`.
        let top = (hi as f32).next_down() as f64;
        let f32_out = dtype == DType::F32 && lo < hi;
        Tensor::sampled(shape, dtype, || {
            let v = g.uniform(lo, hi);
            if f32_out && v as f32 >= hi as f32 { top } else { v }
        })
    }
    /// N(mean, std²), drawn from `gen`.
    pub fn normal_with(
        mean: f64,
        std: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        g: &mut Generator,
    ) -> Result<Tensor> {
        Tensor::sampled(shape, dtype, || mean + std * g.normal())
    }
    /// Uniform on [0, 1) from the default generator (see [`crate::manual_seed`]).
    pub fn rand(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        with_default_generator(|g| Tensor::uniform_with(0.0, 1.0, shape, dtype, g))
    }
    /// Standard normal from the default generator (see [`crate::manual_seed`]).
    pub fn randn(shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        with_default_generator(|g| Tensor::normal_with(0.0, 1.0, shape, dtype, g))
    }
    pub fn uniform(lo: f64, hi: f64, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        with_default_generator(|g| Tensor::uniform_with(lo, hi, shape, dtype, g))
    }
    pub fn normal(mean: f64, std: f64, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        with_default_generator(|g| Tensor::normal_with(mean, std, shape, dtype, g))
    }

    // ------------------------------------------------------------------ accessors

    pub fn id(&self) -> TensorId {
        self.0.id
    }
    pub fn shape(&self) -> &Shape {
        self.0.layout.shape()
    }
    pub fn dims(&self) -> &[usize] {
        self.0.layout.dims()
    }
    pub fn rank(&self) -> usize {
        self.shape().rank()
    }
    /// Size of one dimension (negative indices count from the end).
    pub fn dim(&self, dim: isize) -> Result<usize> {
        let d = self.shape().dim("dim", dim)?;
        Ok(self.dims()[d])
    }
    pub fn elem_count(&self) -> usize {
        self.0.layout.elem_count()
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// Where the values live. Read from the storage, so that moving a shared buffer
    /// ([`Tensor::move_to_`]) moves every handle and view of it.
    pub fn device(&self) -> Device {
        self.storage().device()
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// True for a leaf marked with [`Tensor::requires_grad_`].
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    /// True when ops on this tensor are recorded: it requires grad or was computed from one that does.
    pub fn tracks_grad(&self) -> bool {
        self.0.requires_grad || self.0.node.is_some()
    }
    /// The name of the op that produced this tensor, if it was recorded (PyTorch's `grad_fn`).
    pub fn grad_fn(&self) -> Option<&'static str> {
        self.0.node.as_ref().map(|n| n.op)
    }
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.0.node.as_ref()
    }
    /// Drops this handle and returns its node if it was the last handle (see `Drop for Node`).
    pub(crate) fn into_last_node(self) -> Option<Arc<Node>> {
        Arc::into_inner(self.0).and_then(|inner| inner.node)
    }
    pub(crate) fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }
    /// True when both handles share one buffer (a view and its base, say).
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// A new leaf that shares storage and will collect gradients (PyTorch's `requires_grad_()`).
    pub fn requires_grad_(self) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            node: None,
            requires_grad: true,
        }))
    }

    /// The same values, cut off from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Tensor {
        if !self.tracks_grad() {
            return self.clone();
        }
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            node: None,
            requires_grad: false,
        }))
    }

    /// A view of the same storage with another layout (no gradient recorded).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout,
            dtype: self.0.dtype,
            node: None,
            requires_grad: false,
        }))
    }

    /// Attaches the autograd record of an op to a freshly computed `self`, if grad mode is on
    /// and any input tracks gradients. `backward` maps δout to one gradient per input.
    pub(crate) fn record(
        self,
        op: &'static str,
        inputs: &[&Tensor],
        backward: impl FnOnce(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
    ) -> Tensor {
        if !is_grad_enabled() || !inputs.iter().any(|t| t.tracks_grad()) {
            return self;
        }
        let backward: BackwardFn = Box::new(backward);
        let node = Node {
            op,
            scope: crate::profile::current_scope(),
            inputs: Mutex::new(inputs.iter().map(|t| (*t).clone()).collect()),
            backward: Mutex::new(Some(backward)),
        };
        let inner = TensorInner {
            id: self.0.id,
            storage: self.0.storage.clone(),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            node: Some(Arc::new(node)),
            requires_grad: false,
        };
        Tensor(Arc::new(inner))
    }

    // ------------------------------------------------------------------ reading values

    /// All values in row-major order. The dtype must match `T`.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        if !self.device().is_cpu() {
            return self.to_device(Device::Cpu)?.to_vec();
        }
        let storage = self.storage();
        let data = T::slice(storage.cpu("to_vec")?).ok_or(Error::DTypeMismatch {
            op: "to_vec",
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })?;
        Ok(crate::cpu::strided::gather_contiguous(data, self.layout()))
    }

    /// All values converted to f64, whatever the dtype and device (values on a GPU are copied
    /// back first; a failed copy is an error, not an empty vector).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.to_dtype(DType::F64)?.to_vec::<f64>()
    }

    /// The one value of a one-element tensor.
    pub fn to_scalar<T: WithDType>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return arg_err("to_scalar", format!("expected one element, got shape {}", self.shape()));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The one value of a one-element tensor, as f64 (PyTorch's `item()`).
    pub fn item(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return arg_err("item", format!("expected one element, got shape {}", self.shape()));
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// Nested rows of a 2-D tensor, handy in tests.
    pub fn to_vec2<T: WithDType>(&self) -> Result<Vec<Vec<T>>> {
        if self.rank() != 2 {
            return arg_err("to_vec2", format!("expected a 2-D tensor, got shape {}", self.shape()));
        }
        let cols = self.dims()[1];
        Ok(self.to_vec::<T>()?.chunks(cols.max(1)).map(|c| c.to_vec()).collect())
    }

    // ------------------------------------------------------------------ in-place updates

    /// Overwrites the values of this tensor with those of `src` (same shape), without recording
    /// anything: the optimisers' `p.data.copy_(...)`. Every tensor sharing the storage sees it.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() || src.dtype() != self.dtype() {
            return arg_err(
                "copy_",
                format!(
                    "source {} {:?} does not match destination {} {:?}",
                    src.shape(),
                    src.dtype(),
                    self.shape(),
                    self.dtype()
                ),
            );
        }
        let src = src.to_device(self.device())?;
        if self.same_storage(&src) {
            // Source and destination share a buffer: read the values out before writing (the
            // write guard would otherwise wait on the read guard of the same lock).
            return self.copy_(&src.contiguous_copy()?);
        }
        // NOTE: no copy of the source: this runs for every parameter at every optimiser step.
        let read = src.storage();
        let mut dst = self.storage_mut();
        read.copy_strided(src.layout(), &mut dst, self.layout())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{} {:?}", self.shape(), self.dtype())?;
        if let Some(op) = self.grad_fn() {
            write!(f, " grad_fn={op}")?;
        } else if self.requires_grad() {
            write!(f, " requires_grad")?;
        }
        Ok(())
    }
}
