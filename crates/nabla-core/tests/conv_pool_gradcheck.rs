//! Gradient checks in f64 (central differences, PyTorch's tolerances) for convolution in every
//! padding mode, pad2d, pooling, LRN and dropout, plus small cases whose values were worked out
//! by hand: a 3×3 convolution, the four padding modes, max pooling's tie-breaking and average
//! pooling's divisors at the borders. The gradient checks run on every device
//! (`nabla_core::device_test!`): f64 exists on both.

use nabla_core::{
    AvgPool2dOptions, Conv2dOptions, DType, Device, Generator, GradcheckOptions, MaxPool2dOptions, PaddingMode, Result,
    Tensor, gradcheck,
};

const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Replicate,
    PaddingMode::Circular,
];

/// Uniform values in [-1, 1) from a seeded generator, f64.
fn rand64(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform_with(
        -1.0,
        1.0,
        shape.to_vec(),
        DType::F64,
        &mut Generator::seed_from_u64(seed),
    )
    .unwrap()
}

fn t64(data: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape.to_vec()).unwrap()
}

/// Runs the gradient check on `device` (the inputs moved there) and panics with its message
/// (naming `what` and the device) on a mismatch.
#[track_caller]
fn check(device: Device, what: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    let inputs: Vec<Tensor> = inputs.iter().map(|x| x.to_device(device).unwrap()).collect();
    if let Err(e) = gradcheck(f, &inputs, GradcheckOptions::default()) {
        panic!("{what} on {device}: {e}");
    }
}

#[track_caller]
fn assert_close(what: &str, actual: &[f64], expected: &[f64]) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length ({actual:?} vs {expected:?})"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-12 * (1.0 + e.abs()),
            "{what}: element {i}: {a} vs {e}\n  got      {actual:?}\n  expected {expected:?}"
        );
    }
}

/// The output of `f(x)` and ∂(Σ out)/∂x (an all-ones upstream gradient).
fn value_and_grad(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> (Tensor, Vec<f64>) {
    let leaf = x.detach().requires_grad_();
    let y = f(&leaf).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    let g = grads
        .get(&leaf)
        .map(|g| g.to_vec_f64().unwrap())
        .unwrap_or_else(|| vec![0.0; x.elem_count()]);
    (y.detach(), g)
}

// ------------------------------------------------------------------------------------------
// conv2d

/// (input dims, weight dims, stride [h, w], padding [t, b, l, r], dilation [h, w], groups)
type ConvCase = ([usize; 4], [usize; 4], [usize; 2], [usize; 4], [usize; 2], usize);

const CONV_CASES: [ConvCase; 6] = [
    // strided, dilated, grouped, asymmetric padding
    ([2, 4, 7, 8], [4, 2, 3, 3], [2, 2], [1, 2, 0, 1], [2, 2], 2),
    ([1, 4, 6, 7], [6, 2, 3, 3], [2, 1], [2, 1, 1, 2], [1, 1], 2),
    ([2, 3, 6, 6], [2, 3, 2, 3], [1, 2], [1, 2, 2, 0], [2, 1], 1),
    // depthwise, stride 2 and dilation 2 together
    ([1, 4, 7, 7], [4, 1, 3, 3], [2, 2], [2, 2, 1, 3], [2, 2], 4),
    // padding up to the limits of circular (≤ size: 5 on a 5-high input) and reflect (< size)
    ([1, 2, 5, 5], [2, 2, 2, 2], [1, 1], [5, 1, 0, 4], [1, 1], 1),
    ([1, 2, 5, 5], [2, 2, 2, 2], [1, 1], [4, 1, 0, 4], [1, 1], 1),
];

fn conv_opts(&(_, _, stride, padding, dilation, groups): &ConvCase, mode: PaddingMode) -> Conv2dOptions {
    let mut o = Conv2dOptions::default()
        .stride_hw(stride[0], stride[1])
        .padding_sides(padding)
        .padding_mode(mode)
        .groups(groups);
    o.dilation = dilation;
    o
}

nabla_core::device_test! {
    conv2d_gradcheck_every_padding_mode: |d| {
        for (i, case) in CONV_CASES.iter().enumerate() {
            for mode in MODES {
                if mode == PaddingMode::Reflect && case.3.iter().any(|&p| p >= 5) {
                    continue; // reflect needs padding < size
                }
                let opts = conv_opts(case, mode);
                let (x, w, b) = (
                    rand64(&case.0, 10 + i as u64),
                    rand64(&case.1, 20 + i as u64),
                    rand64(&[case.1[0]], 30 + i as u64),
                );
                check(
                    d,
                    &format!("conv2d case {i} {mode:?}"),
                    |xs| xs[0].conv2d(&xs[1], Some(&xs[2]), &opts),
                    &[x, w, b],
                );
            }
        }
        Ok(())
    };
}

nabla_core::device_test! {
    conv2d_gradcheck_without_bias: |d| {
        let case = &CONV_CASES[1];
        for mode in MODES {
            let opts = conv_opts(case, mode);
            check(
                    d,
                &format!("conv2d without bias {mode:?}"),
                |xs| xs[0].conv2d(&xs[1], None, &opts),
                &[rand64(&case.0, 1), rand64(&case.1, 2)],
            );
        }
        Ok(())
    };
}

#[test]
fn conv2d_3x3_by_hand() {
    // x[i][j] = 4i + j + 1 on a 4×4 grid; with this kernel
    // y[i][j] = x[i][j] + 2·x[i][j+1] + x[i+1][j+1] − x[i+2][j+2] = 12i + 3j, plus the bias 1.
    let x = t64(&(1..=16).map(f64::from).collect::<Vec<_>>(), &[1, 1, 4, 4]).requires_grad_();
    let w = t64(&[1., 2., 0., 0., 1., 0., 0., 0., -1.], &[1, 1, 3, 3]).requires_grad_();
    let b = t64(&[1.0], &[1]).requires_grad_();
    let y = x.conv2d(&w, Some(&b), &Conv2dOptions::default()).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    assert_close("y", &y.to_vec_f64().unwrap(), &[1., 4., 13., 16.]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    // δx: the kernel added at each of the four output positions.
    let dx = [1., 3., 2., 0., 1., 4., 3., 0., 0., 1., 0., -1., 0., 0., -1., -1.];
    assert_close("dx", &grads.get(&x).unwrap().to_vec_f64().unwrap(), &dx);
    // δW[p][q] = the sum of the 2×2 block of x at (p, q) = 16p + 4q + 14.
    assert_close(
        "dw",
        &grads.get(&w).unwrap().to_vec_f64().unwrap(),
        &[14., 18., 22., 30., 34., 38., 46., 50., 54.],
    );
    assert_close("db", &grads.get(&b).unwrap().to_vec_f64().unwrap(), &[4.0]);
}

/// An output narrower than the padding (a 1-pixel image under a 5×5 kernel with padding 2,
/// which the zoo's smallest inputs reach): every kernel column but the centre falls wholly in
/// the padding. The unfolding once took such an empty range for a negative offset and panicked.
#[test]
fn conv2d_output_narrower_than_the_padding() {
    let x = t64(&[3.0], &[1, 1, 1, 1]).requires_grad_();
    let w = t64(&(0..25).map(f64::from).collect::<Vec<_>>(), &[1, 1, 5, 5]).requires_grad_();
    let y = x.conv2d(&w, None, &Conv2dOptions::default().padding(2)).unwrap();
    assert_eq!(y.dims(), &[1, 1, 1, 1]);
    // Only the kernel's centre, w[2][2] = 12, meets the pixel.
    assert_close("y", &y.to_vec_f64().unwrap(), &[36.0]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_close("dx", &grads.get(&x).unwrap().to_vec_f64().unwrap(), &[12.0]);
    let mut dw = [0.0; 25];
    dw[12] = 3.0;
    assert_close("dw", &grads.get(&w).unwrap().to_vec_f64().unwrap(), &dw);
    // Two channels of 1×2 pixels, three filters, every padding mode that takes padding 2.
    for mode in [PaddingMode::Zeros, PaddingMode::Replicate] {
        let opts = Conv2dOptions::default().padding(2).padding_mode(mode);
        check(
            Device::Cpu,
            &format!("narrow conv2d {mode:?}"),
            |xs| xs[0].conv2d(&xs[1], Some(&xs[2]), &opts),
            &[rand64(&[2, 2, 1, 2], 1), rand64(&[3, 2, 5, 5], 2), rand64(&[3], 3)],
        );
    }
}

/// The f32 kernels (direct, Winograd, wide, im2col by channel count) on images no wider than
/// the padding, against the f64 convolution of the same values: forward, δx and δW.
#[test]
fn conv2d_f32_kernels_on_images_narrower_than_the_padding() {
    for (cin, cout) in [(1, 1), (4, 8), (16, 32), (64, 16)] {
        for (h, w) in [(1, 1), (1, 2), (2, 2), (3, 1)] {
            for (k, p) in [(5, 2), (3, 1), (3, 2), (1, 1)] {
                let x = rand64(&[2, cin, h, w], 5);
                let wt = rand64(&[cout, cin, k, k], 6);
                let opts = Conv2dOptions::default().padding(p);
                let run = |dtype: DType| {
                    let (x, wt) = (
                        x.to_dtype(dtype).unwrap().requires_grad_(),
                        wt.to_dtype(dtype).unwrap().requires_grad_(),
                    );
                    let y = x.conv2d(&wt, None, &opts).unwrap();
                    let g = y.sum_all().unwrap().backward().unwrap();
                    [
                        y.to_vec_f64().unwrap(),
                        g.get(&x).unwrap().to_vec_f64().unwrap(),
                        g.get(&wt).unwrap().to_vec_f64().unwrap(),
                    ]
                };
                let (single, double) = (run(DType::F32), run(DType::F64));
                for (what, (a, e)) in ["y", "dx", "dw"].iter().zip(single.iter().zip(&double)) {
                    for (i, (a, e)) in a.iter().zip(e).enumerate() {
                        assert!(
                            (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                            "{cin}→{cout} {h}×{w} k{k} p{p} {what}[{i}]: {a} vs {e}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn conv2d_padding_modes_by_hand() {
    // A 3×3 kernel of ones over 1..9 padded by one: each output sums its padded 3×3 block.
    // Corner (0, 0) — zeros: 1+2+4+5; reflect: rows [5 4 5], [2 1 2], [5 4 5];
    // replicate: [1 1 2], [1 1 2], [4 4 5]; circular: [9 7 8], [3 1 2], [6 4 5].
    let x = t64(&(1..=9).map(f64::from).collect::<Vec<_>>(), &[1, 1, 3, 3]);
    let w = Tensor::ones((1, 1, 3, 3), DType::F64);
    let expected: [(PaddingMode, [f64; 9]); 4] = [
        (PaddingMode::Zeros, [12., 21., 16., 27., 45., 33., 24., 39., 28.]),
        (PaddingMode::Reflect, [33., 36., 39., 42., 45., 48., 51., 54., 57.]),
        (PaddingMode::Replicate, [21., 27., 33., 39., 45., 51., 57., 63., 69.]),
        (PaddingMode::Circular, [45.; 9]),
    ];
    for (mode, want) in expected {
        let y = x
            .conv2d(&w, None, &Conv2dOptions::default().padding(1).padding_mode(mode))
            .unwrap();
        assert_close(&format!("{mode:?}"), &y.to_vec_f64().unwrap(), &want);
    }
}

// ------------------------------------------------------------------------------------------
// pad2d

nabla_core::device_test! {
    pad2d_gradcheck_every_mode: |d| {
        let x = rand64(&[2, 2, 4, 5], 5);
        // Up to the limits: reflect < size, circular ≤ size.
        let sides = |mode| match mode {
            PaddingMode::Reflect => [3, 1, 2, 4],
            PaddingMode::Circular => [4, 1, 5, 2],
            _ => [3, 6, 0, 7],
        };
        for mode in MODES {
            let s = sides(mode);
            check(
                    d,
                &format!("pad2d {mode:?} {s:?}"),
                |xs| xs[0].pad2d(s, mode),
                std::slice::from_ref(&x),
            );
            // rank 2 as well
            check(
                    d,
                &format!("pad2d rank 2 {mode:?}"),
                |xs| xs[0].pad2d([1, 2, 3, 0], mode),
                &[rand64(&[3, 4], 6)],
            );
        }
        Ok(())
    };
}

#[test]
fn pad2d_by_hand() {
    let x = t64(&[1., 2., 3.], &[1, 3]);
    let cases = [
        (PaddingMode::Zeros, [0., 0., 1., 2., 3., 0., 0.], [1., 1., 1.]),
        (PaddingMode::Reflect, [3., 2., 1., 2., 3., 2., 1.], [2., 3., 2.]),
        (PaddingMode::Replicate, [1., 1., 1., 2., 3., 3., 3.], [3., 1., 3.]),
        (PaddingMode::Circular, [2., 3., 1., 2., 3., 1., 2.], [2., 3., 2.]),
    ];
    for (mode, want, want_grad) in cases {
        // The gradient of Σ out counts how many outputs copy each input.
        let (y, g) = value_and_grad(&x, |x| x.pad2d([0, 0, 2, 2], mode));
        assert_eq!(y.dims(), &[1, 7]);
        assert_close(&format!("{mode:?}"), &y.to_vec_f64().unwrap(), &want);
        assert_close(&format!("{mode:?} grad"), &g, &want_grad);
    }
    assert!(
        x.pad2d([0, 0, 3, 0], PaddingMode::Reflect).is_err(),
        "reflect padding must be < size"
    );
    assert!(
        x.pad2d([0, 0, 4, 0], PaddingMode::Circular).is_err(),
        "circular padding must be ≤ size"
    );
}

// ------------------------------------------------------------------------------------------
// max_pool2d

/// Distinct values (a shuffled ramp, 0.05 apart), so that no window has a tie within ε.
fn distinct(shape: &[usize], seed: u64) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.05 - 1.0).collect();
    Generator::seed_from_u64(seed).shuffle(&mut v);
    v
}

nabla_core::device_test! {
    max_pool2d_gradcheck_overlapping_windows: |d| {
        // AlexNet's 3×3 stride-2 windows overlap: positions with even coordinates inside sit in
        // four windows. A large value at one such position per channel wins all four.
        let dims = [1, 2, 7, 7];
        let mut v = distinct(&dims, 3);
        for (c, y, x) in [(0, 2, 2), (1, 4, 2)] {
            v[(c * 7 + y) * 7 + x] += 10.0;
        }
        let x = t64(&v, &dims);
        let opts = MaxPool2dOptions::new(3).stride(2);
        let (y, g) = value_and_grad(&x, |x| x.max_pool2d(&opts));
        assert_eq!(y.dims(), &[1, 2, 3, 3]);
        assert_eq!(
            (g[2 * 7 + 2], g[49 + 4 * 7 + 2]),
            (4.0, 4.0),
            "each boosted element wins its four windows: {g:?}"
        );
        assert_eq!(g.iter().sum::<f64>(), 18.0, "one unit of gradient per output");
        check(d, "max_pool2d k3 s2", |xs| xs[0].max_pool2d(&opts), &[x]);
        Ok(())
    };
}

nabla_core::device_test! {
    max_pool2d_gradcheck_ceil_mode_padding_dilation: |d| {
        let cases: [([usize; 4], MaxPool2dOptions); 5] = [
            ([1, 2, 6, 6], MaxPool2dOptions::new(3).stride(2).ceil_mode(true)),
            (
                [2, 1, 6, 7],
                MaxPool2dOptions::new(3).stride(2).padding(1).ceil_mode(true),
            ),
            (
                [1, 2, 5, 5],
                MaxPool2dOptions::new(2).stride(2).padding(1).ceil_mode(true),
            ),
            ([1, 1, 7, 8], MaxPool2dOptions::new(3).stride(1).dilation(2)),
            ([1, 2, 5, 6], MaxPool2dOptions::kernel_hw(2, 3).stride(1)),
        ];
        for (i, (dims, opts)) in cases.into_iter().enumerate() {
            let x = t64(&distinct(&dims, 40 + i as u64), &dims);
            check(d, &format!("max_pool2d {opts:?}"), |xs| xs[0].max_pool2d(&opts), &[x]);
        }
        Ok(())
    };
}

#[test]
fn max_pool2d_ties_go_to_the_first_maximum() {
    // Two 3s tie in one 2×2 window: PyTorch routes the gradient to the first in row-major order.
    let x = t64(&[1., 3., 3., 2.], &[1, 1, 2, 2]);
    let (y, g) = value_and_grad(&x, |x| x.max_pool2d(&MaxPool2dOptions::new(2)));
    assert_close("y", &y.to_vec_f64().unwrap(), &[3.]);
    assert_close("grad", &g, &[0., 1., 0., 0.]);

    // A constant 3×3 input, 2×2 windows with stride 1: each window picks its top-left element.
    let x = Tensor::full(5.0, (1, 1, 3, 3), DType::F64);
    let (y, g) = value_and_grad(&x, |x| x.max_pool2d(&MaxPool2dOptions::new(2).stride(1)));
    assert_close("y", &y.to_vec_f64().unwrap(), &[5.; 4]);
    assert_close("grad", &g, &[1., 1., 0., 1., 1., 0., 0., 0., 0.]);

    // Overlapping 3×3 stride-2 windows sharing a tied maximum at (0, 2) and (2, 2) = 7:
    // window (0, 0) sees (0, 2) first; window (0, 1) also sees (0, 2) first.
    #[rustfmt::skip]
    let x = t64(&[
        1., 0., 7., 0., 1.,
        0., 0., 0., 0., 0.,
        2., 0., 7., 0., 7.,
    ], &[1, 1, 3, 5]);
    let (y, g) = value_and_grad(&x, |x| x.max_pool2d(&MaxPool2dOptions::new(3).stride(2)));
    assert_close("y", &y.to_vec_f64().unwrap(), &[7., 7.]);
    let mut want = [0.0; 15];
    want[2] = 2.0;
    assert_close("grad", &g, &want);
}

#[test]
fn max_pool2d_padding_is_minus_infinity() {
    let x = Tensor::full(-1.0, (1, 1, 2, 2), DType::F64);
    let (y, g) = value_and_grad(&x, |x| x.max_pool2d(&MaxPool2dOptions::new(2).stride(1).padding(1)));
    assert_eq!(y.dims(), &[1, 1, 3, 3]);
    assert_close("y", &y.to_vec_f64().unwrap(), &[-1.; 9]);
    // 9 windows; the top-left element is the first valid one of windows (0,0), (0,1), (1,0), (1,1).
    assert_close("grad", &g, &[4., 2., 2., 1.]);
}

// ------------------------------------------------------------------------------------------
// avg_pool2d and adaptive_avg_pool2d

nabla_core::device_test! {
    avg_pool2d_gradcheck: |d| {
        let base = AvgPool2dOptions::new(3).stride(2).padding(1);
        let cases: [([usize; 4], AvgPool2dOptions); 7] = [
            ([2, 2, 6, 7], base.count_include_pad(true)),
            ([2, 2, 6, 7], base.count_include_pad(false)),
            ([1, 2, 6, 6], base.ceil_mode(true).count_include_pad(true)),
            ([1, 2, 6, 6], base.ceil_mode(true).count_include_pad(false)),
            ([1, 2, 5, 5], AvgPool2dOptions::new(2).ceil_mode(true)),
            (
                [1, 2, 5, 6],
                AvgPool2dOptions::new(2).padding(1).ceil_mode(true).divisor_override(3),
            ),
            (
                [1, 1, 4, 4],
                AvgPool2dOptions::new(3).stride(1).padding(1).count_include_pad(false),
            ),
        ];
        for (i, (dims, opts)) in cases.into_iter().enumerate() {
            check(
                    d,
                &format!("avg_pool2d {opts:?}"),
                |xs| xs[0].avg_pool2d(&opts),
                &[rand64(&dims, 50 + i as u64)],
            );
        }
        Ok(())
    };
}

#[test]
fn avg_pool2d_divisors_at_the_borders() {
    let ones = Tensor::ones((1, 1, 3, 3), DType::F64);
    let k3p1 = AvgPool2dOptions::new(3).stride(1).padding(1);
    // count_include_pad: each window divides by 9, so a corner sees 4 of 9 ones.
    let (y, _) = value_and_grad(&ones, |x| x.avg_pool2d(&k3p1.count_include_pad(true)));
    assert_close(
        "include",
        &y.to_vec_f64().unwrap(),
        &[4., 6., 4., 6., 9., 6., 4., 6., 4.].map(|v| v / 9.0),
    );
    // Without it each window divides by its real elements: all ones. The gradient at a corner
    // gathers 1/4 + 1/6 + 1/6 + 1/9 from the four windows that hold it.
    let (y, g) = value_and_grad(&ones, |x| x.avg_pool2d(&k3p1.count_include_pad(false)));
    assert_close("exclude", &y.to_vec_f64().unwrap(), &[1.; 9]);
    assert_close(
        "exclude grad",
        &g,
        &[25., 40., 25., 40., 64., 40., 25., 40., 25.].map(|v| v / 36.0),
    );

    // ceil_mode: 4 → 3 windows of 3 with stride 2 and padding 1; the last one starts at input
    // row 3 and holds one real row and one padding row (the part past the padding is not
    // counted, as in PyTorch).
    let ones = Tensor::ones((1, 1, 4, 4), DType::F64);
    let ceil = AvgPool2dOptions::new(3).stride(2).padding(1).ceil_mode(true);
    let (y, _) = value_and_grad(&ones, |x| x.avg_pool2d(&ceil));
    assert_eq!(y.dims(), &[1, 1, 3, 3]);
    assert_close(
        "ceil include",
        &y.to_vec_f64().unwrap(),
        &[16., 24., 12., 24., 36., 18., 12., 18., 9.].map(|v| v / 36.0),
    );
    let (y, _) = value_and_grad(&ones, |x| x.avg_pool2d(&ceil.count_include_pad(false)));
    assert_close("ceil exclude", &y.to_vec_f64().unwrap(), &[1.; 9]);
    let (y, g) = value_and_grad(&ones, |x| x.avg_pool2d(&ceil.divisor_override(2)));
    assert_close(
        "ceil override",
        &y.to_vec_f64().unwrap(),
        &[4., 6., 2., 6., 9., 3., 2., 3., 1.].map(|v| v / 2.0),
    );
    // The windows hold rows 0..2, 1..4 and 3..4 (likewise columns): row r is in 1, 2, 1, 2 of
    // them, and each window passes on 1/2 of its unit gradient.
    let per_axis = [1., 2., 1., 2.];
    let want: Vec<f64> = per_axis.iter().flat_map(|&r| per_axis.map(|c| r * c / 2.0)).collect();
    assert_close("ceil override grad", &g, &want);

    // ceil_mode without padding: 5 → 3 windows of 2; the last holds one element and divides by 1.
    let x = t64(&(1..=25).map(f64::from).collect::<Vec<_>>(), &[1, 1, 5, 5]);
    let (y, _) = value_and_grad(&x, |x| x.avg_pool2d(&AvgPool2dOptions::new(2).ceil_mode(true)));
    assert_close(
        "ceil 5x5",
        &y.to_vec_f64().unwrap(),
        &[4., 6., 7.5, 14., 16., 17.5, 21.5, 23.5, 25.],
    );
}

nabla_core::device_test! {
    adaptive_avg_pool2d_gradcheck: |d| {
        for (i, (dims, out)) in [
            ([1, 2, 7, 5], [3, 2]),
            ([2, 1, 5, 7], [2, 3]),
            ([1, 2, 4, 3], [6, 5]),
            ([1, 1, 6, 6], [1, 1]),
        ]
        .into_iter()
        .enumerate()
        {
            check(
                    d,
                &format!("adaptive_avg_pool2d {dims:?} → {out:?}"),
                |xs| xs[0].adaptive_avg_pool2d(out),
                &[rand64(&dims, 60 + i as u64)],
            );
        }
        Ok(())
    };
}

#[test]
fn adaptive_avg_pool2d_windows_by_hand() {
    // 7 → 3: windows [0, 3), [2, 5), [4, 7) (⌊i·7/3⌋ to ⌈(i+1)·7/3⌉), overlapping at 2 and 4.
    let x = t64(&[1., 2., 3., 4., 5., 6., 7.], &[1, 1, 1, 7]);
    let (y, g) = value_and_grad(&x, |x| x.adaptive_avg_pool2d([1, 3]));
    assert_close("7→3", &y.to_vec_f64().unwrap(), &[2., 4., 6.]);
    assert_close("7→3 grad", &g, &[1., 1., 2., 1., 2., 1., 1.].map(|v| v / 3.0));
    // 5 → 2: windows [0, 3) and [2, 5).
    let x = t64(&[1., 2., 3., 4., 5.], &[1, 1, 5, 1]);
    let (y, g) = value_and_grad(&x, |x| x.adaptive_avg_pool2d([2, 1]));
    assert_close("5→2", &y.to_vec_f64().unwrap(), &[2., 4.]);
    assert_close("5→2 grad", &g, &[1., 1., 2., 1., 1.].map(|v| v / 3.0));
}

// ------------------------------------------------------------------------------------------
// local response normalisation

nabla_core::device_test! {
    lrn_gradcheck: |d| {
        // (input dims, size, alpha, beta, k, input scale)
        let cases = [
            ([2, 7, 3, 3], 5, 1e-4, 0.75, 2.0, 40.0), // AlexNet's constants, with activations large enough to matter
            ([1, 6, 2, 3], 4, 0.5, 0.75, 1.0, 1.0),   // even size: the window [c − 2, c + 1] is asymmetric
            ([2, 5, 2, 2], 2, 0.8, 1.0, 1.5, 1.0),
            ([1, 3, 2, 2], 6, 0.9, 0.6, 1.0, 1.0), // a window wider than the channels
            ([2, 5, 4, 1], 3, 0.7, 0.75, 1.0, 1.0),
        ];
        for (i, (dims, size, alpha, beta, k, scale)) in cases.into_iter().enumerate() {
            let x = rand64(&dims, 70 + i as u64).mul_scalar(scale).unwrap();
            check(
                    d,
                &format!("lrn size {size} alpha {alpha}"),
                |xs| xs[0].local_response_norm(size, alpha, beta, k),
                &[x],
            );
        }
        // rank 3: [N, C, L]
        check(
                    d,
            "lrn rank 3",
            |xs| xs[0].local_response_norm(3, 0.6, 0.75, 1.0),
            &[rand64(&[2, 4, 3], 79)],
        );
        Ok(())
    };
}

#[test]
fn lrn_by_hand() {
    // Channels 1, 2, 3 at one pixel; β = 1, k = 1 and α = n so that s_c = 1 + Σ_window a².
    let x = t64(&[1., 2., 3.], &[1, 3, 1, 1]);
    // size 3: windows {0,1}, {0,1,2}, {1,2} → s = 6, 15, 14.
    let y = x.local_response_norm(3, 3.0, 1.0, 1.0).unwrap();
    assert_close("size 3", &y.to_vec_f64().unwrap(), &[1. / 6., 2. / 15., 3. / 14.]);
    // size 2: PyTorch's window is [c − 1, c] (⌊n/2⌋ before, ⌊(n−1)/2⌋ after) → s = 2, 6, 14.
    let y = x.local_response_norm(2, 2.0, 1.0, 1.0).unwrap();
    assert_close("size 2", &y.to_vec_f64().unwrap(), &[1. / 2., 2. / 6., 3. / 14.]);
}

// ------------------------------------------------------------------------------------------
// dropout

nabla_core::device_test! {
    dropout_gradcheck_with_a_fixed_generator: |d| {
    // A fresh generator with the same seed on every call gives the same mask each time.
    let x = rand64(&[3, 4, 5], 80);
    check(
        d,
        "dropout",
        |xs| xs[0].dropout(0.4, &mut Generator::seed_from_u64(9)),
        std::slice::from_ref(&x),
    );
    check(
        d,
        "dropout2d",
        |xs| xs[0].dropout2d(0.5, &mut Generator::seed_from_u64(9)),
        std::slice::from_ref(&x),
    );
    Ok(())
    };
}

#[test]
fn dropout_scales_kept_elements_and_routes_the_gradient_through_the_mask() {
    let x = rand64(&[4, 50], 81).add_scalar(2.0).unwrap(); // in [1, 3): never 0
    let (y, g) = value_and_grad(&x, |x| x.dropout(0.5, &mut Generator::seed_from_u64(1)));
    let (xv, yv) = (x.to_vec_f64().unwrap(), y.to_vec_f64().unwrap());
    let kept = yv.iter().filter(|&&v| v != 0.0).count();
    assert!(
        (60..140).contains(&kept),
        "about half of 200 should be kept, got {kept}"
    );
    for i in 0..xv.len() {
        if yv[i] == 0.0 {
            assert_eq!(g[i], 0.0);
        } else {
            assert!(
                (yv[i] - 2.0 * xv[i]).abs() < 1e-12,
                "kept elements are scaled by 1/(1 − p)"
            );
            assert_eq!(g[i], 2.0);
        }
    }
    // The same seed gives the same mask; p = 0 is the identity and p = 1 zeroes everything.
    let (y2, _) = value_and_grad(&x, |x| x.dropout(0.5, &mut Generator::seed_from_u64(1)));
    assert_eq!(y2.to_vec_f64().unwrap(), yv);
    let (y0, g0) = value_and_grad(&x, |x| x.dropout(0.0, &mut Generator::seed_from_u64(1)));
    assert_eq!(y0.to_vec_f64().unwrap(), xv);
    assert!(g0.iter().all(|&v| v == 1.0));
    let (y1, g1) = value_and_grad(&x, |x| x.dropout(1.0, &mut Generator::seed_from_u64(1)));
    assert!(y1.to_vec_f64().unwrap().iter().chain(&g1).all(|&v| v == 0.0));
}
