//! Times a convolution's forward and backward passes in f32 and under bf16 autocast, on the
//! 3×3 layers of ResNet-20 (CIFAR-sized planes) and VGG/ResNet-18 (ImageNet-sized), to set the
//! rule of `cpu/conv/im2col.rs::bf16_pays`:
//! `cargo run --release -p nabla-core --example conv_precision`.

use nabla_core::autocast::{Precision, autocast};
use nabla_core::{Conv2dOptions, DType, Tensor};

mod common;

fn main() {
    for (n, c_in, c_out, hw) in [
        (128, 16, 16, 28),
        (128, 32, 32, 14),
        (128, 64, 64, 7),
        (16, 64, 64, 56),
        (16, 128, 128, 28),
        (16, 256, 256, 14),
        (16, 512, 512, 7),
    ] {
        let x = Tensor::randn(vec![n, c_in, hw, hw], DType::F32)
            .unwrap()
            .requires_grad_();
        let w = Tensor::randn(vec![c_out, c_in, 3, 3], DType::F32)
            .unwrap()
            .requires_grad_();
        let opts = Conv2dOptions::default().padding(1);
        let step = |p: Precision| {
            autocast(p, || {
                let y = x.conv2d(&w, None, &opts).unwrap();
                drop(y.sum_all().unwrap().backward().unwrap());
            })
        };
        let f32 = common::median_ms(2, 5, 1, || step(Precision::F32));
        let bf16 = common::median_ms(2, 5, 1, || step(Precision::Bf16));
        println!(
            "n={n:<3} {c_in:>3}→{c_out:<3} {hw:>2}×{hw:<2} forward+backward: f32 {f32:8.2} ms  bf16 {bf16:8.2} ms  bf16/f32 speed {:.2}",
            f32 / bf16
        );
    }
}
