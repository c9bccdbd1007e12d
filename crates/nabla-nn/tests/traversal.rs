//! A network states its parts once, in `children()`: parameters, buffers and the train/eval
//! mode follow from it (the defaults of `Module`), under PyTorch's dotted names.

use nabla_core::{Result, Tensor};
use nabla_nn::{BatchNorm, Dropout, Linear, Module};

struct Block {
    fc: Linear,
    bn: BatchNorm,
    drop: Dropout,
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.drop.forward(&self.bn.forward(&self.fc.forward(x)?)?)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("fc".into(), &self.fc as &dyn Module),
            ("bn".into(), &self.bn),
            ("drop".into(), &self.drop),
        ]
    }
}

struct Net {
    first: Block,
    second: Block,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.second.forward(&self.first.forward(x)?)
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![
            ("first".into(), &self.first as &dyn Module),
            ("second".into(), &self.second),
        ]
    }
}

fn block(i: usize, o: usize) -> Block {
    Block {
        fc: Linear::new(i, o).unwrap(),
        bn: BatchNorm::new_1d(o),
        drop: Dropout::new(0.5).unwrap(),
    }
}

#[test]
fn parameters_buffers_and_mode_come_from_children() {
    let net = Net {
        first: block(3, 4),
        second: block(4, 2),
    };
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "first.fc.weight",
            "first.fc.bias",
            "first.bn.weight",
            "first.bn.bias",
            "second.fc.weight",
            "second.fc.bias",
            "second.bn.weight",
            "second.bn.bias"
        ]
    );
    assert_eq!(net.num_parameters(), 3 * 4 + 4 + 8 + 4 * 2 + 2 + 4);
    let buffers: Vec<String> = net.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers.len(), 6);
    assert_eq!(buffers[0], "first.bn.running_mean");
    // eval() reaches the dropout and batch norm inside: the output no longer depends on chance.
    net.eval();
    let x = Tensor::from_vec(vec![0.5f32; 6], vec![2, 3]).unwrap();
    let (a, b) = (net.forward(&x).unwrap(), net.forward(&x).unwrap());
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
}
