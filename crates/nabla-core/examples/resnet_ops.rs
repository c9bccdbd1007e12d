//! Times the non-convolution ops of a ResNet block (batch norm in training and evaluation,
//! ReLU, the residual add) at ResNet-20's three stages, forward and forward + backward, for
//! comparison with PyTorch (`tools/torch_resnet_ops.py` prints the same lines).
//! Run: `cargo run --release -p nabla-core --example resnet_ops`
use nabla_core::{DType, Tensor};

mod common;

fn main() -> nabla_core::Result<()> {
    nabla_core::runtime::keep_freed_memory();
    for (c, h) in [(16usize, 28usize), (32, 14), (64, 7)] {
        let x = Tensor::randn(vec![128, c, h, h], DType::F32)?.requires_grad_();
        let dy = Tensor::randn(vec![128, c, h, h], DType::F32)?;
        let w = Tensor::ones(vec![c], DType::F32).requires_grad_();
        let b = Tensor::zeros(vec![c], DType::F32).requires_grad_();
        let (rm, rv) = (Tensor::zeros(vec![c], DType::F32), Tensor::ones(vec![c], DType::F32));
        let time = |f: &mut dyn FnMut()| common::median_ms(3, 7, 10, f);
        let bn_f = time(&mut || {
            drop(
                x.detach()
                    .batch_norm_train(&w.detach(), &b.detach(), Some((&rm, &rv)), 0.1, 1e-5)
                    .unwrap(),
            )
        });
        let bn_fb = time(&mut || {
            let y = x.batch_norm_train(&w, &b, Some((&rm, &rv)), 0.1, 1e-5).unwrap();
            drop(y.backward_with(&dy).unwrap())
        });
        let xd = x.detach();
        let bn_e = time(&mut || drop(xd.batch_norm_eval(&w.detach(), &b.detach(), &rm, &rv, 1e-5).unwrap()));
        let relu_f = time(&mut || drop(xd.relu().unwrap()));
        let relu_fb = time(&mut || drop(x.relu().unwrap().backward_with(&dy).unwrap()));
        let add_f = time(&mut || drop(xd.add(&dy).unwrap()));
        println!(
            "128x{c}x{h}x{h}: bn train fwd {bn_f:.3} fwd+bwd {bn_fb:.3} eval {bn_e:.3} | relu fwd {relu_f:.3} fwd+bwd {relu_fb:.3} | add {add_f:.3} ms"
        );
    }
    Ok(())
}
