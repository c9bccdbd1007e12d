//! The device seam. Every op reaches its kernels through [`BackendStorage`], which each device's
//! storage implements (`CpuStorage` in `cpu/backend.rs`, `CudaStorage` in `cuda/backend.rs`);
//! [`crate::storage::Storage`] dispatches to the one that holds the data, once per call.
//!
//! An op (in `ops/`) checks its arguments, builds the kernel parameters of [`params`], calls the
//! backend once through `Storage`, and records one backward pass written with tensor ops, so
//! that gradients are written once for all devices. A device that lacks a kernel does not
//! compile: adding a slot here makes the compiler name every implementation that must fill it.
//! ARCHITECTURE.md walks through one op end to end.

pub mod params;

use crate::error::Result;
use crate::rng::Generator;
use crate::shape::Layout;
use crate::storage::CpuStorage;
use crate::{DType, Device};
use params::{
    AdamUpdate, BatchNormParams, BinaryOp, ConvGeometry, LrnParams, Pad2dParams, PoolGeometry, PoolKind, Precision,
    ReduceOp, SgdUpdate, UnaryOp,
};

/// The elements a dense tensor covers in its buffer.
pub type Dense = std::ops::Range<usize>;

/// State a kernel keeps from a forward pass for its backward pass (the CPU's unfolded conv
/// input, max pooling's argmax indices). Opaque to the ops: each device reads back only what it
/// wrote, and a device that keeps nothing returns `None`.
pub type Saved = Box<dyn std::any::Any + Send + Sync>;

/// The kernels of one device. Each input comes with the [`Layout`] through which the tensor sees
/// it (offset and strides); outputs are new contiguous buffers unless the method says "in place".
/// The layer kernels (conv, pool, LRN, pad) are given contiguous inputs, which may still start
/// at an offset into their buffer: a device must honour it (the finding of issue 14 was GPU
/// entry points that took a bare buffer and read from its start).
/// Shapes, dtypes and devices are checked by the op before the call, and again by the device
/// where a mistake would read out of bounds.
pub trait BackendStorage: Sized + Send + Sync {
    fn device(&self) -> Device;
    fn dtype(&self) -> DType;
    /// Elements in the buffer.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A copy of the whole buffer in host memory.
    fn to_cpu(&self) -> Result<CpuStorage>;
    /// A buffer of `len` elements, all `value`, on this storage's device.
    fn full(&self, dtype: DType, len: usize, value: f64) -> Result<Self>;

    // ------------------------------------------------------------ element-wise and copies

    /// y = f(x) element-wise.
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self>;
    /// y = f(a, b) element-wise; both layouts are already broadcast to the output's shape.
    fn binary(&self, l: &Layout, rhs: &Self, rl: &Layout, op: BinaryOp) -> Result<Self>;
    /// y = cond ≠ 0 ? a : b (`self` is the condition, of any dtype); layouts broadcast.
    fn where_cond(&self, l: &Layout, a: &Self, al: &Layout, b: &Self, bl: &Layout) -> Result<Self>;
    /// The values seen through `l`, converted to `dtype`.
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self>;
    /// In place: writes the values seen through `l` into `dst` through `dl` (same shape; any dtypes).
    fn copy_strided(&self, l: &Layout, dst: &mut Self, dl: &Layout) -> Result<()>;

    // ------------------------------------------------------------ reductions and products

    /// Reduces over `dims` (sorted, distinct), keeping each as size 1.
    fn reduce(&self, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<Self>;
    /// Softmax (or log-softmax) of each row of the last dim.
    fn softmax(&self, l: &Layout, log: bool) -> Result<Self>;
    /// Per-row −log softmax(x)\[t\] of contiguous `[rows, cols]` logits and i64 targets, and
    /// `scale·(softmax(x) − onehot(t))`, the gradient (targets already checked).
    fn softmax_cross_entropy(&self, l: &Layout, targets: &Self, tl: &Layout, scale: f64) -> Result<(Self, Self)>;
    /// Batched matrix product `[.., m, k]·[.., k, n]`, batch dims broadcast in the layouts;
    /// f32 operands in `precision` (f64 ignores it).
    fn matmul(&self, l: &Layout, rhs: &Self, rl: &Layout, precision: Precision) -> Result<Self>;

    // ------------------------------------------------------------ layers

    /// y = W ⋆ x (+ b), zero padding; returns what the weight gradient may reuse when `keep`.
    fn conv2d(
        &self,
        l: &Layout,
        w: &Self,
        wl: &Layout,
        bias: Option<(&Self, &Layout)>,
        g: &ConvGeometry,
        keep: bool,
    ) -> Result<(Self, Option<Saved>)>;
    /// δx of [`conv2d`](Self::conv2d): `self` is δy.
    fn conv2d_backward_input(&self, l: &Layout, w: &Self, wl: &Layout, g: &ConvGeometry) -> Result<Self>;
    /// δW of [`conv2d`](Self::conv2d): `self` is x.
    fn conv2d_backward_weight(
        &self,
        l: &Layout,
        dy: &Self,
        dyl: &Layout,
        g: &ConvGeometry,
        saved: Option<Saved>,
    ) -> Result<Self>;
    /// Pooling of `planes` contiguous planes.
    fn pool2d(&self, l: &Layout, kind: PoolKind, g: &PoolGeometry) -> Result<(Self, Option<Saved>)>;
    /// δx of [`pool2d`](Self::pool2d): `self` is x.
    fn pool2d_backward(
        &self,
        l: &Layout,
        dy: &Self,
        dyl: &Layout,
        kind: PoolKind,
        g: &PoolGeometry,
        saved: Option<&Saved>,
    ) -> Result<Self>;
    /// LRN of contiguous `self`: (b, s) where s is the scale before the power.
    fn lrn(&self, l: &Layout, p: &LrnParams) -> Result<(Self, Self)>;
    /// δa of [`lrn`](Self::lrn): `self` is a, with s (as `lrn` returned it) and δb.
    fn lrn_backward(&self, l: &Layout, scale: &Self, dy: &Self, dyl: &Layout, p: &LrnParams) -> Result<Self>;
    /// Batch norm in training mode of contiguous `self` (`[N, C, S]`, formulas at
    /// [`BatchNormParams`]) with contiguous γ and β: (y, μ, σ̂⁻¹ = 1/√(σ² + ε)) per channel; the
    /// running statistics, when given, are updated in place.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_train(
        &self,
        l: &Layout,
        weight: (&Self, &Layout),
        bias: (&Self, &Layout),
        running: Option<(&mut Self, &mut Self)>,
        p: &BatchNormParams,
    ) -> Result<(Self, Self, Self)>;
    /// Batch norm in evaluation mode of contiguous `self` (`[N, C, S]`) with contiguous γ, β
    /// and the running mean and variance: y = γ·(x − μ)/√(σ² + ε) + β per channel.
    fn batch_norm_eval(
        &self,
        l: &Layout,
        weight: (&Self, &Layout),
        bias: (&Self, &Layout),
        stats: [(&Self, &Layout); 2],
        p: &BatchNormParams,
    ) -> Result<Self>;
    /// (δx, δγ, δβ) of [`batch_norm_train`](Self::batch_norm_train): `self` is x; μ and σ̂⁻¹ as it returned them.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_backward(
        &self,
        l: &Layout,
        dy: (&Self, &Layout),
        weight: (&Self, &Layout),
        mean: &Self,
        inv_std: &Self,
        p: &BatchNormParams,
    ) -> Result<(Self, Self, Self)>;
    /// Pads contiguous `[planes, h, w]` (seen through `l`).
    fn pad2d(&self, l: &Layout, p: &Pad2dParams) -> Result<Self>;
    /// δx of [`pad2d`](Self::pad2d): folds δy (`self`) back onto the input's planes.
    fn pad2d_backward(&self, l: &Layout, p: &Pad2dParams) -> Result<Self>;

    // ------------------------------------------------------------ indexing

    /// `y` = `self` with dim `dim` replaced by the rows `idx` (i64, contiguous, checked in range).
    fn index_select(&self, l: &Layout, dim: usize, idx: &Self) -> Result<Self>;
    /// In place: `self[.., idx[i], ..] += src[.., i, ..]` along `dim`; `self` contiguous of `dims`.
    fn index_add(&mut self, dims: &[usize], dim: usize, idx: &Self, src: &Self, sl: &Layout) -> Result<()>;
    /// `y[i] = x[.., index[i], ..]` along `dim` (index i64 contiguous of `index_dims`, checked).
    fn gather(&self, l: &Layout, dim: usize, index: &Self, index_dims: &[usize]) -> Result<Self>;
    /// In place: the adjoint of [`gather`](Self::gather) into contiguous `self` of `dims`;
    /// `src`, seen through `sl`, has the index's shape.
    fn scatter_add(
        &mut self,
        dims: &[usize],
        dim: usize,
        index: &Self,
        index_dims: &[usize],
        src: &Self,
        sl: &Layout,
    ) -> Result<()>;

    // ------------------------------------------------------------ random numbers and optimisers

    /// A dropout mask of `len` values 0 and 1/(1 − p) in `dtype` on this device, drawn from `rng`
    /// (the CPU draws every value from it; a GPU draws one seed for its Philox generator).
    fn dropout_mask(&self, dtype: DType, len: usize, p: f64, rng: &mut Generator) -> Result<Self>;
    /// In place, one SGD step on the parameter's elements `range` (formulas at [`SgdUpdate`]);
    /// every state is a dense range of the same length (checked by the op).
    fn sgd_update(
        &mut self,
        range: Dense,
        grad: (&Self, Dense),
        buffer: Option<(&mut Self, Dense)>,
        u: &SgdUpdate,
    ) -> Result<()>;
    /// In place, one Adam step (formulas at [`AdamUpdate`]); ranges as for SGD.
    fn adam_update(
        &mut self,
        range: Dense,
        grad: (&Self, Dense),
        m: (&mut Self, Dense),
        v: (&mut Self, Dense),
        v_max: Option<(&mut Self, Dense)>,
        u: &AdamUpdate,
    ) -> Result<()>;
}
