//! `zoo::smallest_input` against the models themselves: each model takes a grey image of its
//! smallest side (one forward pass, one row of logits), and building it for, or passing it, an
//! image one pixel smaller fails. `build_model` refuses the smaller input up front, naming the
//! size to pass.

use nabla_core::Tensor;
use nabla_models::zoo::{build_zoo, smallest_input};
use nabla_models::{ModelSpec, build_model};
use nabla_nn::Module;

/// Builds `name` for a `side`×`side` grey image and runs it on zeros: the logits' shape, or
/// the error of building or running.
fn run(name: &str, side: usize) -> Result<Vec<usize>, String> {
    let model = build_zoo(name, [1, side, side], 10)
        .expect("a zoo name")
        .map_err(|e| e.to_string())?;
    model.eval();
    let x = Tensor::zeros((1, 1, side, side), nabla_core::DType::F32);
    model.forward(&x).map(|y| y.dims().to_vec()).map_err(|e| e.to_string())
}

#[test]
fn every_zoo_model_takes_its_smallest_input_and_nothing_smaller() {
    // The big ImageNet models are left out for time (their geometry is that of resnet18 and
    // vgg11); each family is here.
    for name in [
        "alexnet",
        "alexnet-two-stream",
        "alexnet-torchvision",
        "zfnet",
        "vgg11",
        "nin",
        "googlenet",
        "googlenet-5x5",
        "resnet18",
        "resnet20",
        "resnet20-b",
        "plain20",
        "se-resnet18",
    ] {
        let min = smallest_input(name).unwrap();
        assert_eq!(run(name, min), Ok(vec![1, 10]), "{name} at {min}×{min}");
        if min > 1 {
            assert!(run(name, min - 1).is_err(), "{name} at {}×{}", min - 1, min - 1);
            let spec = ModelSpec {
                input: [1, min - 1, min - 1],
                classes: 10,
            };
            let err = build_model(name, &spec).err().expect("refused").to_string();
            assert!(err.contains(&format!("pass --input 1x{min}x{min}")), "{err}");
        }
    }
    assert_eq!(smallest_input("lenet5"), None);
}
