//! Times each pass of a convolution (LeNet-5's second by default) both ways: the direct kernels
//! and im2col + GEMM. Run: `cargo run --release -p nabla-core --example conv_profile [b ci h co k pad]`
use nabla_core::cpu::conv::{self, ConvGeometry};
use nabla_core::cpu::conv_direct as direct;
use nabla_core::cpu::conv_wide as wide;
use nabla_core::cpu::conv_winograd as winograd;

mod common;

fn time(label: &str, f: impl FnMut()) {
    println!("{label:<22} {:.3} ms", common::median_ms(5, 7, 20, f));
}

fn main() {
    nabla_core::cpu::keep_freed_memory();
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (n, c_in, h, c_out, k, p) = if args.len() == 6 {
        (args[0], args[1], args[2], args[3], args[4], args[5])
    } else {
        (128, 6, 14, 16, 5, 0)
    };
    let o = h + 2 * p - k + 1;
    let g = ConvGeometry {
        n,
        c_in,
        h,
        w: h,
        c_out,
        kh: k,
        kw: k,
        stride: [1, 1],
        dilation: [1, 1],
        pad_top: p,
        pad_left: p,
        oh: o,
        ow: o,
        groups: 1,
    };
    let val = |len: usize| {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    let (x, w, dy) = (val(n * c_in * h * h), val(c_out * c_in * k * k), val(n * c_out * o * o));
    println!("conv {n}×{c_in}×{h}×{h} → {c_out} channels, {k}×{k}, padding {p}");
    let small = direct::direct_applies(&g);
    if small {
        time("forward direct", || {
            drop(direct::conv2d_forward_direct(&x, &w, None, &g))
        });
    }
    time("forward im2col", || {
        drop(conv::conv2d_forward_im2col(&x, &w, None, &g, false))
    });
    if small {
        time("δW direct", || drop(direct::conv2d_weight_grad_direct(&x, &dy, &g)));
    }
    let (_, saved) = conv::conv2d_forward_im2col(&x, &w, None, &g, true);
    time("δW im2col (saved)", || {
        drop(conv::conv2d_backward_weight_im2col(&x, &dy, &g, saved.as_ref()))
    });
    time("δW im2col", || {
        drop(conv::conv2d_backward_weight_im2col(&x, &dy, &g, None))
    });
    if wide::wide_applies(&g) {
        time("forward wide", || drop(wide::conv2d_forward_wide(&x, &w, None, &g)));
        time("δW wide", || drop(wide::conv2d_weight_grad_wide(&x, &dy, &g)));
    }
    if winograd::winograd_applies(&g) {
        time("forward winograd", || {
            drop(winograd::conv2d_forward_winograd(&x, &w, None, &g))
        });
    }
    if winograd::winograd_dx_applies(&g) {
        time("δx winograd", || {
            drop(winograd::conv2d_backward_input_winograd(&dy, &w, &g))
        });
    }
    if wide::wide_dx_applies(&g) {
        time("δx wide", || drop(wide::conv2d_backward_input_wide(&dy, &w, &g)));
    }
    if nabla_core::cpu::conv_direct_dx::direct_dx_applies(&g) {
        time("δx direct", || {
            drop(nabla_core::cpu::conv_direct_dx::conv2d_backward_input_direct(
                &dy, &w, &g,
            ))
        });
    }
    #[cfg(target_arch = "x86_64")]
    if nabla_core::cpu::conv_scatter_dx::scatter_dx_applies(&g)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        time("δx scatter", || {
            // SAFETY: AVX2 and FMA were detected; the rule holds.
            drop(unsafe { nabla_core::cpu::conv_scatter_dx::conv2d_backward_input_scatter(&dy, &w, &g) })
        });
    }
    time("all three, dispatched", || {
        drop(conv::conv2d_forward(&x, &w, None, &g));
        drop(conv::conv2d_backward_weight(&x, &dy, &g, None));
        drop(conv::conv2d_backward_input(&dy, &w, &g));
    });
    time("δx im2col", || drop(conv::conv2d_backward_input_im2col(&dy, &w, &g)));
}
