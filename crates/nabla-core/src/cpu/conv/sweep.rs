//! Every algorithm, on every geometry of one table where it applies, with every instruction
//! set this CPU has, against the definition (naive.rs) in f64.

use super::test_util::{assert_close_f32, f32s, val};
use super::{ConvAlgorithm, ConvGeometry, Isa, Pass, choose, naive};
use crate::DType;
use std::collections::HashSet;

/// (c_in, c_out, h, w, k, stride, dilation, [pad top, left, bottom, right], groups): LeNet-5's
/// layers, strides and dilations, uneven padding, groups and depthwise, 1×1, planes smaller than
/// a pixel block, and the channel counts where the f32 algorithms start to apply.
#[rustfmt::skip]
const GEOMETRIES: [(usize, usize, usize, usize, usize, [usize; 2], [usize; 2], [usize; 4], usize); 19] = [
    (1, 6, 12, 12, 5, [1, 1], [1, 1], [2, 2, 2, 2], 1),
    (6, 16, 14, 14, 5, [1, 1], [1, 1], [0, 0, 0, 0], 1),
    (3, 8, 9, 7, 3, [2, 2], [1, 1], [1, 2, 1, 0], 1),
    (2, 32, 8, 8, 3, [1, 1], [2, 2], [2, 2, 2, 2], 1),
    (5, 3, 6, 7, 3, [1, 1], [1, 1], [1, 1, 1, 1], 1),
    (8, 5, 9, 11, 3, [1, 1], [1, 1], [1, 0, 2, 1], 1),
    (13, 4, 8, 8, 1, [1, 1], [1, 1], [0, 0, 0, 0], 1),
    (32, 9, 5, 20, 3, [1, 1], [1, 1], [0, 2, 0, 0], 1),
    (36, 8, 6, 10, 3, [1, 1], [1, 1], [1, 1, 1, 1], 1),
    (16, 20, 9, 11, 3, [1, 1], [1, 1], [1, 1, 1, 1], 1),
    (17, 16, 8, 7, 5, [1, 1], [1, 1], [2, 2, 2, 2], 1),
    (8, 40, 9, 7, 3, [1, 1], [1, 1], [1, 1, 1, 1], 1),
    (4, 33, 11, 10, 3, [1, 1], [2, 2], [2, 2, 2, 2], 1),
    (40, 36, 7, 6, 3, [1, 1], [1, 1], [0, 2, 1, 3], 1),
    (16, 64, 4, 3, 2, [1, 1], [1, 1], [0, 0, 0, 0], 1),
    (3, 16, 3, 5, 3, [1, 1], [1, 1], [0, 0, 0, 0], 1),
    (4, 6, 9, 8, 3, [2, 1], [1, 2], [2, 0, 1, 3], 2),
    (6, 6, 6, 7, 2, [2, 3], [2, 1], [0, 1, 1, 0], 6),
    (2, 2, 5, 5, 1, [1, 1], [1, 1], [0, 0, 0, 0], 1),
];

fn geometries(n: usize) -> impl Iterator<Item = ConvGeometry> {
    GEOMETRIES.into_iter().map(
        move |(c_in, c_out, h, w, k, stride, dilation, [pt, pl, pb, pr], groups)| ConvGeometry {
            n,
            c_in,
            h,
            w,
            c_out,
            kh: k,
            kw: k,
            stride,
            dilation,
            pad_top: pt,
            pad_left: pl,
            oh: (h + pt + pb - dilation[0] * (k - 1) - 1) / stride[0] + 1,
            ow: (w + pl + pr - dilation[1] * (k - 1) - 1) / stride[1] + 1,
            groups,
            precision: crate::autocast::Precision::F32,
        },
    )
}

/// The three passes of one algorithm in f32 (`None` where it does not apply), against f64
/// oracles, within `tolerance` of the values' scale.
fn check_f32(alg: ConvAlgorithm, isa: Isa, g: &ConvGeometry, tolerance: f64, ran: &mut HashSet<(ConvAlgorithm, Pass)>) {
    let (x, w, b) = (
        val(g.n * g.c_in * g.h * g.w, 1),
        val(g.c_out * g.k(), 2),
        val(g.c_out, 3),
    );
    let dy = val(g.n * g.c_out * g.oh * g.ow, 4);
    let what = |pass: Pass| format!("{alg:?} {pass:?} {isa:?} f32 {g:?}");
    if alg.applies(Pass::Forward, g, DType::F32, isa) {
        let (y, _) = alg.forward(isa, &f32s(&x), &f32s(&w), Some(&f32s(&b)), g, false);
        assert_close_f32(
            &y,
            &naive::forward(&x, &w, Some(&b), g),
            tolerance,
            &what(Pass::Forward),
        );
        ran.insert((alg, Pass::Forward));
    }
    if alg.applies(Pass::BackwardInput, g, DType::F32, isa) {
        let dx = alg.backward_input(isa, &f32s(&dy), &f32s(&w), g);
        assert_close_f32(
            &dx,
            &naive::backward_input(&dy, &w, g),
            tolerance,
            &what(Pass::BackwardInput),
        );
        ran.insert((alg, Pass::BackwardInput));
    }
    if alg.applies(Pass::BackwardWeight, g, DType::F32, isa) {
        let dw = alg.backward_weight(isa, &f32s(&x), &f32s(&dy), g, None);
        assert_close_f32(
            &dw,
            &naive::backward_weight(&x, &dy, g),
            tolerance,
            &what(Pass::BackwardWeight),
        );
        ran.insert((alg, Pass::BackwardWeight));
    }
}

fn assert_close_f64(fast: &[f64], slow: &[f64], what: &str) {
    assert_eq!(fast.len(), slow.len(), "{what}");
    for (i, (a, e)) in fast.iter().zip(slow).enumerate() {
        assert!((a - e).abs() < 1e-11, "{what} at {i}: {a} vs {e}");
    }
}

/// The f32 algorithms within f32 rounding; Winograd's transforms add rounding of their own
/// (2e-6 to 1.2e-5 of the scale, see winograd.rs), hence its wider bound.
#[test]
fn every_f32_algorithm_matches_the_definition() {
    let mut ran = HashSet::new();
    for isa in Isa::supported() {
        for g in geometries(2) {
            for alg in ConvAlgorithm::ALL {
                let tolerance = if alg == ConvAlgorithm::Winograd { 5e-5 } else { 1e-5 };
                check_f32(alg, isa, &g, tolerance, &mut ran);
            }
        }
    }
    // The table reaches every pass of every algorithm this CPU can run (a geometry that drifts
    // out of an algorithm's rule must not silently leave it untested).
    let mut expected = vec![
        (ConvAlgorithm::Direct, Pass::Forward),
        (ConvAlgorithm::Direct, Pass::BackwardWeight),
        (ConvAlgorithm::Winograd, Pass::Forward),
        (ConvAlgorithm::Winograd, Pass::BackwardInput),
    ];
    expected.extend(Pass::ALL.map(|p| (ConvAlgorithm::Im2col, p)));
    if Isa::detect() != Isa::Portable {
        expected.extend([
            (ConvAlgorithm::ScatterDx, Pass::BackwardInput),
            (ConvAlgorithm::DirectDx, Pass::BackwardInput),
        ]);
        expected.extend(Pass::ALL.map(|p| (ConvAlgorithm::Wide, p)));
    } else {
        eprintln!("no AVX2/FMA: the SIMD-only algorithms were not run");
    }
    for pair in expected {
        assert!(ran.contains(&pair), "{pair:?} met no geometry of the table");
    }
}

/// f64 (what the gradient checks use) runs the algorithms that take any float type.
#[test]
fn every_f64_algorithm_matches_the_definition() {
    let mut ran = HashSet::new();
    for g in geometries(3) {
        let (x, w, b) = (
            val(g.n * g.c_in * g.h * g.w, 5),
            val(g.c_out * g.k(), 6),
            val(g.c_out, 7),
        );
        let dy = val(g.n * g.c_out * g.oh * g.ow, 8);
        for alg in ConvAlgorithm::ALL {
            let isa = Isa::detect();
            let what = |pass: Pass| format!("{alg:?} {pass:?} f64 {g:?}");
            if alg.applies(Pass::Forward, &g, DType::F64, isa) {
                let (y, kept) = alg.forward(isa, &x, &w, Some(&b), &g, true);
                assert_close_f64(&y, &naive::forward(&x, &w, Some(&b), &g), &what(Pass::Forward));
                if alg.applies(Pass::BackwardWeight, &g, DType::F64, isa) {
                    // With the columns the forward pass kept, if it kept any.
                    let dw = alg.backward_weight(isa, &x, &dy, &g, kept.as_ref());
                    let expected = naive::backward_weight(&x, &dy, &g);
                    assert_close_f64(&dw, &expected, &what(Pass::BackwardWeight));
                    ran.insert((alg, Pass::BackwardWeight));
                }
                ran.insert((alg, Pass::Forward));
            }
            if alg.applies(Pass::BackwardInput, &g, DType::F64, isa) {
                let dx = alg.backward_input(isa, &dy, &w, &g);
                assert_close_f64(&dx, &naive::backward_input(&dy, &w, &g), &what(Pass::BackwardInput));
                ran.insert((alg, Pass::BackwardInput));
            }
        }
    }
    let mut expected: Vec<_> = Pass::ALL.map(|p| (ConvAlgorithm::Im2col, p)).to_vec();
    expected.extend([
        (ConvAlgorithm::Direct, Pass::Forward),
        (ConvAlgorithm::Direct, Pass::BackwardWeight),
    ]);
    assert_eq!(ran, expected.into_iter().collect::<HashSet<_>>());
}

/// The table chooses only algorithms that apply, for every pass, dtype and instruction set.
#[test]
fn the_table_chooses_only_what_applies() {
    for isa in Isa::supported() {
        for dtype in [DType::F32, DType::F64] {
            for g in geometries(2) {
                for pass in Pass::ALL {
                    let alg = choose(pass, &g, dtype, isa);
                    assert!(
                        alg.applies(pass, &g, dtype, isa),
                        "{alg:?} chosen for {pass:?} {dtype:?} {isa:?} {g:?}"
                    );
                }
            }
        }
    }
}

/// Each row of the table, on a layer it was measured on.
#[test]
fn the_table_picks_the_measured_winners() {
    let isa = Isa::detect();
    if isa == Isa::Portable {
        eprintln!("no AVX2/FMA: the f32 rows were not checked");
        return;
    }
    let layer = |c_in, c_out, hw, k, pad| ConvGeometry {
        n: 32,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: k,
        kw: k,
        stride: [1, 1],
        dilation: [1, 1],
        pad_top: pad,
        pad_left: pad,
        oh: hw + 2 * pad + 1 - k,
        ow: hw + 2 * pad + 1 - k,
        groups: 1,
        precision: crate::autocast::Precision::F32,
    };
    use ConvAlgorithm::*;
    let lenet_c3 = layer(6, 16, 14, 5, 0);
    assert_eq!(choose(Pass::Forward, &lenet_c3, DType::F32, isa), Direct);
    assert_eq!(choose(Pass::BackwardWeight, &lenet_c3, DType::F32, isa), Direct);
    assert_eq!(choose(Pass::BackwardInput, &lenet_c3, DType::F32, isa), ScatterDx);
    assert_eq!(choose(Pass::BackwardInput, &lenet_c3, DType::F64, isa), Im2col);
    // 16 → 16 3×3 at 32×32: too large a δy for the scatter buffer, so the row kernel; with
    // AVX-512 the 16-channel register blocks of the wide kernel.
    let small_planes = if isa == Isa::Avx512 { Wide } else { DirectDx };
    assert_eq!(
        choose(Pass::BackwardInput, &layer(16, 16, 32, 3, 1), DType::F32, isa),
        small_planes
    );
    // ResNet-20's stages (16, 32, 64 channels at 28², 14², 7²): Wide for every pass with
    // AVX-512; without it, forward Direct up to 32 output channels and Wide above.
    for (c, hw) in [(16, 28), (32, 14), (64, 7)] {
        let stage = layer(c, c, hw, 3, 1);
        if isa == Isa::Avx512 {
            for pass in Pass::ALL {
                assert_eq!(choose(pass, &stage, DType::F32, isa), Wide, "{pass:?} {c} at {hw}²");
            }
        } else {
            let fwd = if c > 32 { Wide } else { Direct };
            assert_eq!(choose(Pass::Forward, &stage, DType::F32, isa), fwd, "{c} at {hw}²");
        }
    }
    let vgg = layer(64, 128, 56, 3, 1);
    assert_eq!(choose(Pass::Forward, &vgg, DType::F32, isa), Winograd);
    assert_eq!(choose(Pass::BackwardInput, &vgg, DType::F32, isa), Winograd);
    assert_eq!(choose(Pass::BackwardWeight, &vgg, DType::F32, isa), Wide);
    // A strided 5×5 layer with many channels: wide forward; δx with stride 2 is not a forward pass.
    let strided = ConvGeometry {
        stride: [2, 2],
        oh: 14,
        ow: 14,
        ..layer(64, 192, 27, 5, 2)
    };
    assert_eq!(choose(Pass::Forward, &strided, DType::F32, isa), Wide);
    assert_eq!(choose(Pass::BackwardInput, &strided, DType::F32, isa), Im2col);
    let deep = layer(512, 512, 7, 3, 1);
    assert_eq!(choose(Pass::Forward, &deep, DType::F32, isa), Im2col);
}
