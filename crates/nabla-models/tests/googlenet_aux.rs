//! The trainer's generic loss, L(main) + Σ wᵢ·L(auxᵢ) from `forward_with_aux`, equals
//! GoogLeNet's own training loss with the paper's weight 0.3 (Szegedy et al., 2014, §5).

use nabla_core::{DType, Tensor, manual_seed};
use nabla_models::build_zoo;
use nabla_models::googlenet::{AUX_LOSS_WEIGHT, GoogLeNet, GoogLeNetConfig};
use nabla_nn::Module;
use nabla_nn::loss::{CrossEntropyOptions, cross_entropy};

#[test]
fn auxiliary_heads_enter_the_training_loss_with_weight_0_3() {
    manual_seed(0);
    let net: GoogLeNet = GoogLeNetConfig::new(3, 10).init().unwrap();
    net.eval(); // no dropout: two forward passes give the same numbers
    let x = Tensor::randn((2, 3, 64, 64), DType::F32).unwrap();
    let y = Tensor::from_vec(vec![3i64, 7], (2,)).unwrap();
    let (logits, aux) = net.forward_with_aux(&x).unwrap();
    assert_eq!(aux.len(), 2);
    assert!(aux.iter().all(|(w, a)| *w == 0.3 && a.dims() == [2, 10]));
    let ce = |z: &Tensor| {
        cross_entropy(z, &y, &CrossEntropyOptions::default())
            .unwrap()
            .item()
            .unwrap()
    };
    let generic = ce(&logits) + aux.iter().map(|(w, a)| w * ce(a)).sum::<f64>();
    let own = net.training_loss(&x, &y).unwrap().item().unwrap();
    assert!((generic - own).abs() < 1e-5, "{generic} vs {own}");
    assert_eq!(AUX_LOSS_WEIGHT, 0.3);
    // Evaluation uses the main head only, and a model without heads reports none.
    assert_eq!(
        net.forward(&x).unwrap().to_vec_f64().unwrap(),
        logits.to_vec_f64().unwrap()
    );
    let resnet = build_zoo("resnet20", [3, 32, 32], 10).unwrap().unwrap();
    assert!(
        resnet
            .forward_with_aux(&Tensor::zeros((1, 3, 32, 32), DType::F32))
            .unwrap()
            .1
            .is_empty()
    );
}
