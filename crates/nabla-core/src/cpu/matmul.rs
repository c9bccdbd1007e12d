//! Batched matrix products on host memory: one GEMM per batch entry (cpu/gemm.rs, or
//! cpu/gemm_bf16.rs for f32 operands in bf16).

use super::gemm::{MatRef, gemm, gemm_new};
use crate::backend::params::Precision;
use crate::{Float, Layout, Shape, WithDType};
use rayon::prelude::*;

/// One GEMM per batch entry; batch entries run in parallel when there are enough of them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn batched_gemm<T: Float + WithDType>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    m: usize,
    n: usize,
    k: usize,
    precision: Precision,
) -> Vec<T> {
    let r = al.dims().len();
    let batch_dims = &al.dims()[..r - 2];
    let batch_count: usize = batch_dims.iter().product();
    let a_batch = Layout::new(Shape::from(batch_dims), al.strides()[..r - 2].to_vec(), al.offset());
    let b_batch = Layout::new(Shape::from(batch_dims), bl.strides()[..r - 2].to_vec(), bl.offset());
    let offsets: Vec<(usize, usize)> = a_batch.offsets().zip(b_batch.offsets()).collect();
    if m * n == 0 {
        return Vec::new();
    }
    crate::cpu::ensure_thread_pool();
    let threads = rayon::current_num_threads();
    let (ars, acs) = (al.strides()[r - 2], al.strides()[r - 1]);
    let (brs, bcs) = (bl.strides()[r - 2], bl.strides()[r - 1]);
    // The operands of the batch entry whose matrices start at offsets (ao, bo).
    let operands = |(ao, bo): (usize, usize)| {
        (
            MatRef {
                data: a,
                offset: ao,
                rs: ars,
                cs: acs,
            },
            MatRef {
                data: b,
                offset: bo,
                rs: brs,
                cs: bcs,
            },
        )
    };
    if let (Precision::Bf16, Some(a), Some(b)) = (precision, super::as_f32(a), super::as_f32(b)) {
        let mut out = Vec::with_capacity(batch_count * m * n);
        for &(ao, bo) in &offsets {
            let lhs = MatRef {
                data: a,
                offset: ao,
                rs: ars,
                cs: acs,
            };
            let rhs = MatRef {
                data: b,
                offset: bo,
                rs: brs,
                cs: bcs,
            };
            out.extend(super::gemm_bf16::gemm_bf16_new(m, n, k, lhs, rhs, threads));
        }
        let mut out = std::mem::ManuallyDrop::new(out);
        // SAFETY: T is f32 (as_f32 returned Some): the same allocation, read as the same type.
        return unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<T>(), out.len(), out.capacity()) };
    }
    if batch_count == 1 {
        let (lhs, rhs) = operands(offsets[0]);
        return gemm_new(m, n, k, lhs, rhs, threads);
    }
    let mut out = vec![T::zero(); batch_count * m * n];
    let run = |(dst, &entry): (&mut [T], &(usize, usize)), threads: usize| {
        let (lhs, rhs) = operands(entry);
        gemm(m, n, k, dst, lhs, rhs, false, threads);
    };
    if batch_count >= threads && threads > 1 {
        out.par_chunks_mut(m * n)
            .zip(offsets.par_iter())
            .for_each(|p| run(p, 1));
    } else {
        out.chunks_mut(m * n).zip(offsets.iter()).for_each(|p| run(p, threads));
    }
    out
}
