//! The model zoo by name: the classic image classifiers of the lecture, from AlexNet to
//! SENet, for `--model NAME` on the command line. docs/MODELS.md describes each one.

use nabla_core::Result;
use nabla_nn::Module;

use crate::alexnet::{AlexNet, AlexNetLayout};
use crate::googlenet::GoogLeNetConfig;
use crate::nin::Nin;
use crate::resnet::{ResNetConfig, Shortcut};
use crate::senet::se_resnet;
use crate::vgg::Vgg;
use crate::zfnet::ZfNet;

/// Every name [`build_zoo`] knows.
pub fn zoo_names() -> &'static [&'static str] {
    &[
        "alexnet",
        "alexnet-two-stream",
        "alexnet-torchvision",
        "zfnet",
        "vgg11",
        "vgg13",
        "vgg16",
        "vgg19",
        "vgg11-bn",
        "vgg13-bn",
        "vgg16-bn",
        "vgg19-bn",
        "nin",
        "googlenet",
        "googlenet-5x5",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
        "resnet110",
        "resnet20-b",
        "resnet32-b",
        "resnet44-b",
        "resnet56-b",
        "resnet110-b",
        "plain18",
        "plain34",
        "plain20",
        "plain32",
        "plain44",
        "plain56",
        "plain110",
        "se-resnet18",
        "se-resnet50",
    ]
}

/// The smallest height and width zoo model `name` takes (its strides and pooling windows leave
/// nothing of a smaller image), or `None` for a name the zoo does not know. Measured by building
/// each model for square inputs of growing size; the test below checks each side both ways.
pub fn smallest_input(name: &str) -> Option<usize> {
    if !zoo_names().contains(&name) {
        return None;
    }
    Some(match name {
        n if n.starts_with("alexnet") || n == "zfnet" => 63,
        n if n.starts_with("vgg") => 32,
        "googlenet" | "googlenet-5x5" => 31,
        "nin" => 6,
        _ => 1, // ResNets and SE-ResNets: global average pooling after stride 32 of padded layers
    })
}

/// Builds the zoo model `name` for inputs `[channels, height, width]` and `classes` outputs,
/// or `None` if the zoo has no model of that name.
///
/// - `alexnet` (the paper, one tower), `alexnet-two-stream` (the paper's two GPUs),
///   `alexnet-torchvision`; `zfnet`: the paper layouts size fc6 from `input` (224×224 in the papers).
/// - `vgg11` … `vgg19`, `vgg11-bn` … `vgg19-bn`: torchvision's VGG, with batch norm for `-bn`.
/// - `nin`: Network in Network for CIFAR-10.
/// - `googlenet` (torchvision's, with the auxiliary classifiers), `googlenet-5x5` (the paper's
///   5×5 branch).
/// - `resnet18` … `resnet152`: torchvision's ImageNet ResNets; `resnet20` … `resnet110`: the
///   CIFAR ResNets with option A shortcuts, `-b` for option B; `plain18`, `plain34`,
///   `plain20` … `plain110`: the same without shortcuts; `se-resnet18`, `se-resnet50`.
///
/// ```
/// use nabla_models::zoo::build_zoo;
/// let net = build_zoo("resnet20", [3, 32, 32], 10).unwrap().unwrap();
/// assert_eq!(net.num_parameters(), 269_722);
/// assert!(build_zoo("resnet19", [3, 32, 32], 10).is_none());
/// ```
pub fn build_zoo(name: &str, input: [usize; 3], classes: usize) -> Option<Result<Box<dyn Module>>> {
    if !zoo_names().contains(&name) {
        return None;
    }
    let c = input[0];
    fn boxed<M: Module + 'static>(m: Result<M>) -> Result<Box<dyn Module>> {
        m.map(|m| Box::new(m) as Box<dyn Module>)
    }
    let imagenet = |depth: usize, shortcut: Shortcut| {
        boxed(
            ResNetConfig::imagenet(depth, c, classes).and_then(|cfg| match shortcut {
                Shortcut::None => cfg.plain().init(),
                _ => cfg.init(),
            }),
        )
    };
    let cifar = |depth: usize, shortcut: Shortcut| {
        boxed(ResNetConfig::cifar(depth, shortcut, c, classes).and_then(|cfg| cfg.init()))
    };
    // The names are checked above, so the numbers parsed below are the zoo's.
    let depth = |digits: &str| {
        digits
            .trim_end_matches("-bn")
            .trim_end_matches("-b")
            .parse::<usize>()
            .ok()
    };
    Some(match name {
        "alexnet" => boxed(AlexNet::new(AlexNetLayout::SingleTower, input, classes)),
        "alexnet-two-stream" => boxed(AlexNet::new(AlexNetLayout::TwoStream, input, classes)),
        "alexnet-torchvision" => boxed(AlexNet::new(AlexNetLayout::Torchvision, input, classes)),
        "zfnet" => boxed(ZfNet::new(input, classes)),
        "nin" => boxed(Nin::new(c, classes)),
        "googlenet" => boxed(GoogLeNetConfig::new(c, classes).init()),
        "googlenet-5x5" => boxed(GoogLeNetConfig::new(c, classes).paper_5x5(true).init()),
        "se-resnet18" => boxed(se_resnet(18, c, classes)),
        "se-resnet50" => boxed(se_resnet(50, c, classes)),
        _ => {
            if let Some(rest) = name.strip_prefix("vgg") {
                boxed(Vgg::new(depth(rest)?, rest.ends_with("-bn"), c, classes))
            } else if let Some(rest) = name.strip_prefix("plain") {
                match depth(rest)? {
                    d @ (18 | 34) => imagenet(d, Shortcut::None),
                    d => cifar(d, Shortcut::None),
                }
            } else if let Some(rest) = name.strip_prefix("resnet") {
                match (depth(rest)?, rest.ends_with("-b")) {
                    (d @ (18 | 34 | 50 | 101 | 152), _) => imagenet(d, Shortcut::Projection),
                    (d, true) => cifar(d, Shortcut::Projection),
                    (d, false) => cifar(d, Shortcut::ZeroPad),
                }
            } else {
                return None;
            }
        }
    })
}
