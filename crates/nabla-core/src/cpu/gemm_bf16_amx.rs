//! The bf16 product on Intel AMX (Advanced Matrix Extensions; Sapphire Rapids and later).
//!
//! AMX adds eight tile registers of up to 16 rows × 64 bytes and `tdpbf16ps`, which adds to a
//! 16×16 f32 tile C the product of a 16×32 bf16 tile A and a 32×16 bf16 tile B, the latter
//! stored as 16 rows of pairs (b₂ₚ,ⱼ, b₂ₚ₊₁,ⱼ): 16,384 floating-point operations in one
//! instruction (measured here: about 3 TFLOP/s on one core, against about 0.2 for f32 FMAs).
//! Each product is exact in f32 and the sums are f32, as in the other kernels.
//!
//! The layout: C in blocks of 32×32 (tiles 0–3), A as bf16 rows (tiles 4–5: rows 0–15 and
//! 16–31 of the block, 32 values of k each), B in the panels of [`super::gemm_bf16::pack_b`]
//! (tiles 6–7: columns 0–15 and 16–31 of a panel, 16 pairs of k each); k runs in steps of 32.
//! The operands are zero-padded to whole tiles, so every tile is full; C tiles that reach past
//! m or n are stored to a buffer and copied in part.
//!
//! The instructions are written with `asm!` (the AMX intrinsics are not stable Rust). Linux
//! hands out the tile state only to processes that ask (`arch_prctl(ARCH_REQ_XCOMP_PERM)`),
//! which [`available`] does once. NOTE: the tile registers live across the `asm!` blocks of one
//! call; that holds because nothing else in the process uses AMX, and each call configures the
//! tiles first and releases them at the end (the OS then saves nothing on a context switch).

use super::gemm::MatRef;
use super::gemm_bf16::{NR, convert_to_bf16, pack_b, to_bf16_bits};
use rayon::prelude::*;

/// Rows of C per block (two tiles).
const MB: usize = 32;
/// Values of k per step (one tile row: 64 bytes of bf16).
const KB: usize = 32;

/// Whether this CPU has AMX-BF16 and the OS lets this process use the tiles (asked once).
pub fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    // CPUID leaf 7 (when the CPU has it): EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    use std::arch::x86_64::__cpuid_count;
    // NOTE: `__cpuid_count` is safe from Rust 1.94 and unsafe before (the MSRV is 1.89).
    #[allow(unused_unsafe)]
    // SAFETY: CPUID is present on every x86-64 CPU; leaf 7 is read only when leaf 0 lists it.
    let has = unsafe {
        __cpuid_count(0, 0).eax >= 7 && {
            let edx = __cpuid_count(7, 0).edx;
            edx & (1 << 22) != 0 && edx & (1 << 24) != 0
        }
    };
    if !has || std::env::var_os("NABLA_NO_AMX").is_some() {
        return false;
    }
    // arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18): 0 when granted.
    let ret: i64;
    // SAFETY: the system call reads two integers and changes nothing but the permission.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") 158i64 => ret,
            in("rdi") 0x1023i64,
            in("rsi") 18i64,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// A rows padded to MB, k padded to KB, as bf16 bits: row i at `i·kp`.
fn pack_rows(m: usize, k: usize, kp: usize, a: MatRef<f32>) -> Vec<u16> {
    let mp = m.div_ceil(MB) * MB;
    let mut out = vec![0u16; mp * kp];
    out.par_chunks_mut(MB * kp).enumerate().for_each(|(blk, rows)| {
        for (r, row) in rows.chunks_mut(kp).enumerate() {
            let i = blk * MB + r;
            if i >= m {
                break;
            }
            if a.cs == 1 {
                convert_to_bf16(&a.data[a.offset + i * a.rs..][..k], &mut row[..k]);
            } else {
                for (p, d) in row[..k].iter_mut().enumerate() {
                    *d = to_bf16_bits(a.data[a.offset + i * a.rs + p * a.cs]);
                }
            }
        }
    });
    out
}

/// lhs (m×k) · rhs (k×n) in bf16 on AMX tiles, f32 sums, as a new row-major m×n vector. The
/// caller checked [`available`] and the operands' bounds.
pub fn product(m: usize, n: usize, k: usize, lhs: MatRef<f32>, rhs: MatRef<f32>, threads: usize) -> Vec<f32> {
    let kp = k.div_ceil(KB) * KB;
    let (a, b) = (pack_rows(m, k, kp, lhs), pack_b(k, n, rhs, kp / 2));
    let (blocks, panels) = (m.div_ceil(MB), n.div_ceil(NR));
    let mut out = vec![0.0f32; m * n];
    let dst = super::gemm::Dst(out.as_mut_ptr());
    let run = |r: usize, qs: std::ops::Range<usize>| {
        // SAFETY: AMX is available (the caller's promise); block r's rows and panels qs lie in
        // the packed operands (padded to whole tiles) and write only their own part of dst.
        unsafe { blocks_amx(&a, &b, kp, r, qs, dst.at(0), m, n) }
    };
    if threads <= 1 {
        (0..blocks).for_each(|r| run(r, 0..panels));
    } else if blocks >= threads || panels == 1 {
        (0..blocks).into_par_iter().for_each(|r| run(r, 0..panels));
    } else {
        // Few rows (inference on a small batch): one task per panel of B.
        (0..panels)
            .into_par_iter()
            .for_each(|q| (0..blocks).for_each(|r| run(r, q..q + 1)));
    }
    out
}

/// The tile configuration: palette 1; tiles 0–7 all 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn full() -> TileConfig {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64; // bytes per row (u16, little-endian)
            c[48 + t] = 16; // rows
        }
        TileConfig(c)
    }
}

/// C rows `r·MB..` × panels `qs` of the product, written into dst (m×n, row-major).
///
/// # Safety
/// AMX tiles granted; `a` holds MB·(r+1) rows of kp bf16, `b` the panels of kp/2 pairs; dst
/// valid for m×n writes, of which this call writes only block r's rows and panels qs.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(clippy::too_many_arguments)]
unsafe fn blocks_amx(
    a: &[u16],
    b: &[u32],
    kp: usize,
    r: usize,
    qs: std::ops::Range<usize>,
    dst: *mut f32,
    m: usize,
    n: usize,
) {
    use std::arch::asm;
    let cfg = TileConfig::full();
    let k2 = kp / 2;
    let a_stride = kp * 2; // bytes between rows of A
    let b_stride = NR * 4; // bytes between pair-rows of a panel
    let mut buf = [0f32; 16 * 16];
    // SAFETY (all blocks below): every tile load reads 16 rows of 64 bytes inside the padded
    // operands (r·MB + 31 < padded m, k0 + 31 < kp, panel q < panels); stores go to dst only
    // for tiles wholly inside m×n, else to `buf`.
    unsafe {
        asm!("ldtilecfg [{0}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for q in qs {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for k0 in (0..kp).step_by(KB) {
                let a0 = a.as_ptr().add(r * MB * kp + k0);
                let a1 = a0.add(16 * kp);
                let b0 = b.as_ptr().add((q * k2 + k0 / 2) * NR);
                let b1 = b0.add(16);
                asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0,
                    a1 = in(reg) a1,
                    b0 = in(reg) b0,
                    b1 = in(reg) b1,
                    sa = in(reg) a_stride,
                    sb = in(reg) b_stride,
                    options(nostack, readonly)
                );
            }
            // Tile t covers rows i0.. and columns j0.. of C.
            for t in 0..4 {
                let (i0, j0) = (r * MB + 16 * (t / 2), q * NR + 16 * (t % 2));
                if i0 >= m || j0 >= n {
                    continue;
                }
                let full = i0 + 16 <= m && j0 + 16 <= n;
                let (base, stride) = if full {
                    (dst.add(i0 * n + j0), n * 4)
                } else {
                    (buf.as_mut_ptr(), 64)
                };
                match t {
                    0 => asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) base, s = in(reg) stride, options(nostack)),
                    1 => asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) base, s = in(reg) stride, options(nostack)),
                    2 => asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) base, s = in(reg) stride, options(nostack)),
                    _ => asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) base, s = in(reg) stride, options(nostack)),
                }
                if !full {
                    for i in 0..16.min(m - i0) {
                        for j in 0..16.min(n - j0) {
                            *dst.add((i0 + i) * n + j0 + j) = buf[i * 16 + j];
                        }
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[allow(clippy::too_many_arguments)]
unsafe fn blocks_amx(
    _: &[u16],
    _: &[u32],
    _: usize,
    _: usize,
    _: std::ops::Range<usize>,
    _: *mut f32,
    _: usize,
    _: usize,
) {
    unreachable!("available() is false off x86-64 Linux")
}
