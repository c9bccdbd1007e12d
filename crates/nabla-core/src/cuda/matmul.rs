//! Batched matrix products through cuBLAS (`cublas{S,D}gemmStridedBatched`).
//!
//! cuBLAS is column-major. A row-major `C[m, n]` is, read column-major, `Cᵀ[n, m]`, so
//! `C = A·B` is computed as `Cᵀ = Bᵀ·Aᵀ`: cuBLAS's first operand is B, its second A, and its
//! (m, n) are our (n, m). A row-major operand (inner stride 1) read column-major already *is*
//! its transpose (op N, ld = row stride); a column-major one (a transposed view, outer stride 1)
//! is passed with op T (ld = column stride). Only an operand that is neither is copied.
//!
//! Batch dims (already broadcast to one shape) are merged where all three operands allow; the
//! last merged batch dim becomes cuBLAS's batch (its stride may be 0 for a broadcast operand),
//! and any further batch dims are looped over on the host.
//!
//! TF32 for f32 products is off by default (PyTorch's `torch.backends.cuda.matmul.allow_tf32`
//! default since 1.12): [`set_matmul_tf32`] switches it.

use std::sync::atomic::{AtomicBool, Ordering};

use cudarc::cublas::sys::{cublasMath_t, cublasOperation_t};

use crate::cuda::context::Library;
use crate::cuda::ops::{collapse, contiguous, float_only, same_device, same_dtype};
use crate::cuda::storage::CudaStorage;
use crate::dtype::DType;
use crate::error::{Result, arg_err, shape_err};
use crate::shape::Layout;

static MATMUL_TF32: AtomicBool = AtomicBool::new(false);

/// Lets cuBLAS use TF32 tensor cores for f32 products (10-bit mantissa inputs, f32
/// accumulation). Off by default, as in PyTorch.
pub fn set_matmul_tf32(on: bool) {
    MATMUL_TF32.store(on, Ordering::Relaxed);
}

/// Whether f32 products may use TF32.
pub fn matmul_tf32() -> bool {
    MATMUL_TF32.load(Ordering::Relaxed)
}

/// How cuBLAS reads one operand: transpose flag and leading dimension.
#[derive(Debug, Clone, Copy)]
struct Operand {
    /// true: row-major in memory (cuBLAS op N after the swap); false: column-major (op T).
    row_major: bool,
    ld: usize,
}

/// Classifies a `[r, c]` matrix with strides `(sr, sc)`; `None` when it must be copied.
/// NOTE: a size-1 dim's stride is arbitrary (views produce anything there), so it is ignored.
fn classify(r: usize, c: usize, sr: usize, sc: usize) -> Option<Operand> {
    let (r1, c1) = (r.max(1), c.max(1));
    let sc_row = if c <= 1 { 1 } else { sc };
    let sr_row = if r <= 1 { c1 } else { sr };
    if sc_row == 1 && sr_row >= c1 {
        return Some(Operand {
            row_major: true,
            ld: sr_row,
        });
    }
    let sr_col = if r <= 1 { 1 } else { sr };
    let sc_col = if c <= 1 { r1 } else { sc };
    if sr_col == 1 && sc_col >= r1 {
        return Some(Operand {
            row_major: false,
            ld: sc_col,
        });
    }
    None
}

fn to_i32(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).or_else(|_| arg_err(op, format!("{what} = {v} exceeds cuBLAS's 32-bit limit")))
}

/// `C = A·B` for `al` = `[..., m, k]` and `bl` = `[..., k, n]` with equal (already broadcast)
/// batch dims; `C` is contiguous `[..., m, n]`. f32 and f64.
pub fn matmul(a: &CudaStorage, al: &Layout, b: &CudaStorage, bl: &Layout) -> Result<CudaStorage> {
    const OP: &str = "cuda::matmul";
    let (ad, bd) = (al.dims(), bl.dims());
    let rank = ad.len();
    if rank < 2 || bd.len() != rank || ad[..rank - 2] != bd[..rank - 2] || ad[rank - 1] != bd[rank - 2] {
        return shape_err(
            OP,
            format!(
                "shapes {} and {} do not multiply (batch dims must be broadcast first)",
                al.shape(),
                bl.shape()
            ),
        );
    }
    float_only(OP, a.dtype())?;
    same_dtype(OP, a.dtype(), b.dtype())?;
    let dev = same_device(OP, a, &[b])?;
    crate::cuda::ops::check_layout(OP, a, al)?;
    crate::cuda::ops::check_layout(OP, b, bl)?;
    let (m, k, n) = (ad[rank - 2], ad[rank - 1], bd[rank - 1]);
    let batch_dims = &ad[..rank - 2];
    let batch: usize = batch_dims.iter().product();
    if batch * m * n == 0 || k == 0 {
        return CudaStorage::zeros(a.ordinal(), a.dtype(), batch * m * n);
    }

    // Operands cuBLAS cannot read directly are made contiguous.
    let (ac, bc);
    let (a, al) = match classify(m, k, al.strides()[rank - 2], al.strides()[rank - 1]) {
        Some(_) => (a, al.clone()),
        None => {
            ac = contiguous(a, al)?;
            (&ac, Layout::contiguous(al.shape().clone()))
        }
    };
    let (b, bl) = match classify(k, n, bl.strides()[rank - 2], bl.strides()[rank - 1]) {
        Some(_) => (b, bl.clone()),
        None => {
            bc = contiguous(b, bl)?;
            (&bc, Layout::contiguous(bl.shape().clone()))
        }
    };
    let ao = classify(m, k, al.strides()[rank - 2], al.strides()[rank - 1]).expect("contiguous is row-major");
    let bo = classify(k, n, bl.strides()[rank - 2], bl.strides()[rank - 1]).expect("contiguous is row-major");

    // Batch dims: merge what all three operands allow; the last one is cuBLAS's batch.
    let c_strides: Vec<usize> = {
        let mut s = vec![m * n; batch_dims.len()];
        for i in (0..batch_dims.len().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * batch_dims[i + 1];
        }
        s
    };
    let (bdims, bstr) = collapse(
        batch_dims,
        &[&al.strides()[..rank - 2], &bl.strides()[..rank - 2], &c_strides],
    );
    let last = bdims.len() - 1;
    let (count, sa, sb, sc) = (bdims[last], bstr[0][last], bstr[1][last], bstr[2][last]);
    let outer: usize = bdims[..last].iter().product();

    let c = CudaStorage::uninit(&dev, OP, a.dtype(), batch * m * n)?;
    // cuBLAS sees (m', n', k) = (n, m, k), first operand B, second A (see the module doc).
    let (mi, ni, ki) = (to_i32(OP, "n", n)?, to_i32(OP, "m", m)?, to_i32(OP, "k", k)?);
    let (lda, ldb, ldc) = (to_i32(OP, "ld", bo.ld)?, to_i32(OP, "ld", ao.ld)?, mi);
    let count = to_i32(OP, "batch", count)?;
    let trans = |row_major: bool| {
        if row_major {
            cublasOperation_t::CUBLAS_OP_N
        } else {
            cublasOperation_t::CUBLAS_OP_T
        }
    };
    let (op_b, op_a) = (trans(bo.row_major), trans(ao.row_major));
    let size = a.dtype().size_in_bytes() as u64;
    let tf32 = a.dtype() == DType::F32 && matmul_tf32();
    dev.with_cublas(OP, |h| {
        let mode = if tf32 {
            cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
        } else {
            cublasMath_t::CUBLAS_DEFAULT_MATH
        };
        // SAFETY: `h` is this device's handle, bound to its stream.
        unsafe { cudarc::cublas::sys::cublasSetMathMode(h, mode) }
            .result()
            .map_err(|e| dev.err(OP, Library::Cublas, e))?;
        for o in 0..outer {
            // Offsets of the o-th outer batch (row-major over the outer merged dims).
            let (mut rem, mut oa, mut ob, mut oc) = (o, 0usize, 0usize, 0usize);
            for d in (0..last).rev() {
                let i = rem % bdims[d];
                rem /= bdims[d];
                oa += i * bstr[0][d];
                ob += i * bstr[1][d];
                oc += i * bstr[2][d];
            }
            let pa = a.device_ptr() + (al.offset() + oa) as u64 * size;
            let pb = b.device_ptr() + (bl.offset() + ob) as u64 * size;
            let pc = c.device_ptr() + oc as u64 * size;
            // SAFETY: pointers address live buffers whose extents were checked against the
            // layouts; leading dimensions and strides come from those layouts.
            let r = unsafe {
                match a.dtype() {
                    DType::F32 => cudarc::cublas::result::sgemm_strided_batched(
                        h,
                        op_b,
                        op_a,
                        mi,
                        ni,
                        ki,
                        &1.0f32,
                        pb as *const f32,
                        lda,
                        sb as i64,
                        pa as *const f32,
                        ldb,
                        sa as i64,
                        &0.0f32,
                        pc as *mut f32,
                        ldc,
                        sc as i64,
                        count,
                    ),
                    _ => cudarc::cublas::result::dgemm_strided_batched(
                        h,
                        op_b,
                        op_a,
                        mi,
                        ni,
                        ki,
                        &1.0f64,
                        pb as *const f64,
                        lda,
                        sb as i64,
                        pa as *const f64,
                        ldb,
                        sa as i64,
                        &0.0f64,
                        pc as *mut f64,
                        ldc,
                        sc as i64,
                        count,
                    ),
                }
            };
            r.map_err(|e| dev.err(OP, Library::Cublas, e))?;
        }
        Ok(())
    })?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn operands_are_read_in_place_when_one_stride_is_one() {
        let row = classify(3, 4, 4, 1).unwrap();
        assert!(row.row_major && row.ld == 4);
        let col = classify(3, 4, 1, 3).unwrap(); // the transpose of a contiguous [4, 3]
        assert!(!col.row_major && col.ld == 3);
        assert!(classify(3, 4, 8, 2).is_none());
        let vec = classify(1, 4, 0, 1).unwrap(); // a broadcast row
        assert!(vec.row_major && vec.ld == 4);
        let padded = classify(3, 4, 6, 1).unwrap(); // a narrow of a [3, 6]
        assert_eq!(padded.ld, 6);
    }
}
