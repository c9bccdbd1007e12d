//! Times each pass of a convolution (LeNet-5's second by default) with every algorithm that
//! computes it, and the algorithms the table chooses. Run: `cargo run --release -p nabla-core --example conv_profile [b ci h co k pad [stride]]`
use nabla_core::DType;
use nabla_core::cpu::conv::{self, ConvAlgorithm, ConvGeometry, Isa, Pass, choose};

mod common;

fn time(label: &str, f: impl FnMut()) {
    println!("{label:<22} {:.3} ms", common::median_ms(5, 7, 20, f));
}

fn main() {
    nabla_core::runtime::keep_freed_memory();
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let (n, c_in, h, c_out, k, p, s) = if args.len() >= 6 {
        (
            args[0],
            args[1],
            args[2],
            args[3],
            args[4],
            args[5],
            args.get(6).copied().unwrap_or(1),
        )
    } else {
        (128, 6, 14, 16, 5, 0, 1)
    };
    let o = (h + 2 * p - k) / s + 1;
    let g = ConvGeometry {
        n,
        c_in,
        h,
        w: h,
        c_out,
        kh: k,
        kw: k,
        stride: [s, s],
        dilation: [1, 1],
        pad_top: p,
        pad_left: p,
        oh: o,
        ow: o,
        groups: 1,
        precision: nabla_core::autocast::Precision::F32,
    };
    let val = |len: usize| {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    let (x, w, dy) = (val(n * c_in * h * h), val(c_out * c_in * k * k), val(n * c_out * o * o));
    println!("conv {n}×{c_in}×{h}×{h} → {c_out} channels, {k}×{k}, padding {p}");
    let isa = Isa::detect();
    for alg in ConvAlgorithm::ALL {
        if alg.applies(Pass::Forward, &g, DType::F32, isa) {
            time(&format!("forward {alg:?}"), || {
                drop(alg.forward(isa, &x, &w, None, &g, false))
            });
        }
        if alg.applies(Pass::BackwardInput, &g, DType::F32, isa) {
            time(&format!("δx {alg:?}"), || drop(alg.backward_input(isa, &dy, &w, &g)));
        }
        if alg.applies(Pass::BackwardWeight, &g, DType::F32, isa) {
            time(&format!("δW {alg:?}"), || {
                drop(alg.backward_weight(isa, &x, &dy, &g, None))
            });
        }
    }
    let (_, saved) = ConvAlgorithm::Im2col.forward(isa, &x, &w, None, &g, true);
    time("δW Im2col (saved)", || {
        drop(ConvAlgorithm::Im2col.backward_weight(isa, &x, &dy, &g, saved.as_ref()))
    });
    let chosen = Pass::ALL.map(|pass| choose(pass, &g, DType::F32, isa));
    time(&format!("all three, chosen {chosen:?}"), || {
        drop(conv::conv2d_forward(&x, &w, None, &g));
        drop(conv::conv2d_backward_weight(&x, &dy, &g, None));
        drop(conv::conv2d_backward_input(&dy, &w, &g));
    });
}
