//! The zoo's parameter counts against the papers and torchvision (`sum(p.numel() for p in
//! model.parameters())`), and, for the models torchvision has, every parameter and buffer name
//! and shape against torchvision's `state_dict()` (fixture `fixtures/torchvision_state_dicts.txt`,
//! written by tools/fixtures/models.py).
//!
//! Each model is built once, at 224×224 (32×32 for the CIFAR models) with 1000 classes (10 for
//! CIFAR). Building the biggest allocates and initialises their weights (VGG-19: 144 M floats,
//! about 4 s of normal sampling).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use nabla_models::zoo::build_zoo;
use nabla_nn::Module;

const IMAGENET: [usize; 3] = [3, 224, 224];
const CIFAR: [usize; 3] = [3, 32, 32];

type StateDictShapes = Vec<(String, Vec<usize>)>;

/// torchvision's state dicts: model → [(name, shape)].
fn torchvision() -> &'static BTreeMap<String, StateDictShapes> {
    static FIXTURE: OnceLock<BTreeMap<String, StateDictShapes>> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/torchvision_state_dicts.txt"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut out: BTreeMap<String, StateDictShapes> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let mut parts = line.split_whitespace();
            let (model, name) = (parts.next().unwrap(), parts.next().unwrap());
            let shape = parts
                .next()
                .unwrap_or("")
                .split('x')
                .filter(|s| !s.is_empty())
                .map(|d| d.parse().unwrap())
                .collect();
            out.entry(model.to_string())
                .or_default()
                .push((name.to_string(), shape));
        }
        out
    })
}

/// Builds zoo model `name` and checks its parameter count and, when `tv` names a torchvision
/// model, that its state dict has exactly torchvision's names and shapes.
fn check(name: &str, input: [usize; 3], classes: usize, expected: usize, tv: Option<&str>) -> Box<dyn Module> {
    let net = build_zoo(name, input, classes)
        .unwrap_or_else(|| panic!("{name} is not in the zoo"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(net.num_parameters(), expected, "parameters of {name}");
    if let Some(tv) = tv {
        let mut ours: StateDictShapes = net
            .state_dict()
            .into_iter()
            .map(|(n, t)| (n, t.dims().to_vec()))
            .collect();
        let mut theirs = torchvision()
            .get(tv)
            .unwrap_or_else(|| panic!("torchvision's {tv} is not in the fixture"))
            .clone();
        ours.sort();
        theirs.sort();
        let missing: Vec<_> = theirs.iter().filter(|e| !ours.contains(e)).collect();
        let extra: Vec<_> = ours.iter().filter(|e| !theirs.contains(e)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name} against torchvision's {tv}: missing {missing:?}, unexpected {extra:?}"
        );
    }
    net
}

#[test]
fn alexnet_and_zfnet() {
    check("alexnet-torchvision", IMAGENET, 1000, 61_100_840, Some("alexnet"));
    // conv1 34,944 + conv2 614,656 + conv3 885,120 + conv4 1,327,488 + conv5 884,992
    // + fc6 37,752,832 + fc7 16,781,312 + fc8 4,097,000
    check("alexnet", IMAGENET, 1000, 62_378_344, None);
    // conv2, conv4, conv5 halved by groups = 2: 307,456 + 663,936 + 442,624
    check("alexnet-two-stream", IMAGENET, 1000, 60_965_224, None);
    // conv1 14,208 (96·3·7·7 + 96), the rest as the single-tower AlexNet
    check("zfnet", IMAGENET, 1000, 62_357_608, None);
}

#[test]
fn vgg() {
    check("vgg11", IMAGENET, 1000, 132_863_336, Some("vgg11"));
    check("vgg16", IMAGENET, 1000, 138_357_544, Some("vgg16"));
    check("vgg19", IMAGENET, 1000, 143_667_240, Some("vgg19"));
    check("vgg16-bn", IMAGENET, 1000, 138_365_992, Some("vgg16_bn"));
}

#[test]
fn googlenet_without_and_with_auxiliary_heads() {
    use nabla_models::googlenet::GoogLeNetConfig;
    // The zoo's googlenet keeps its auxiliary classifiers, as torchvision's with aux_logits=True.
    check("googlenet", IMAGENET, 1000, 13_004_888, Some("googlenet"));
    let mut net = GoogLeNetConfig::new(3, 1000).init().unwrap();
    net.drop_aux_heads();
    assert_eq!(net.num_parameters(), 6_624_904);
    let mut paper = GoogLeNetConfig::new(3, 1000).paper_5x5(true).init().unwrap();
    paper.drop_aux_heads();
    // 380,928 more: the nine "5×5" branches with 5×5 instead of 3×3 kernels.
    assert_eq!(paper.num_parameters(), 7_005_832);
}

#[test]
fn imagenet_resnets() {
    check("resnet18", IMAGENET, 1000, 11_689_512, Some("resnet18"));
    check("resnet34", IMAGENET, 1000, 21_797_672, Some("resnet34"));
    check("resnet50", IMAGENET, 1000, 25_557_032, Some("resnet50"));
    check("resnet101", IMAGENET, 1000, 44_549_160, Some("resnet101"));
    check("resnet152", IMAGENET, 1000, 60_192_808, Some("resnet152"));
    // Without the three projection shortcuts (8,448 + 33,280 + 132,096).
    check("plain18", IMAGENET, 1000, 11_515_688, None);
    check("plain34", IMAGENET, 1000, 21_623_848, None);
}

#[test]
fn se_resnets() {
    // ResNet-50 + Σ over blocks of 2C²/16 + C/16 + C (fc1 and fc2 with biases): 2,530,992.
    check("se-resnet50", IMAGENET, 1000, 28_088_024, None);
    // ResNet-18 + 2·(580 + 2,184 + 8,464 + 33,312) for the SE blocks of 64, 128, 256, 512 channels.
    check("se-resnet18", IMAGENET, 1000, 11_778_592, None);
}

#[test]
fn cifar_resnets() {
    check("resnet20", CIFAR, 10, 269_722, None);
    check("resnet32", CIFAR, 10, 464_154, None);
    check("resnet44", CIFAR, 10, 658_586, None);
    check("resnet56", CIFAR, 10, 853_018, None);
    check("resnet110", CIFAR, 10, 1_727_962, None);
    // Option B adds two projections: 16·32 + 2·32 and 32·64 + 2·64.
    check("resnet20-b", CIFAR, 10, 269_722 + 576 + 2_176, None);
    check("resnet110-b", CIFAR, 10, 1_727_962 + 576 + 2_176, None);
    // Option A has no parameters in its shortcuts: the plain networks count the same.
    check("plain20", CIFAR, 10, 269_722, None);
    check("plain110", CIFAR, 10, 1_727_962, None);
}

#[test]
fn nin() {
    check("nin", CIFAR, 10, 966_986, None);
}

#[test]
fn unknown_names_are_none() {
    for name in [
        "resnet19",
        "vgg12",
        "vgg16-b",
        "resnet50-b",
        "plain50",
        "se-resnet34",
        "lenet5",
        "",
    ] {
        assert!(build_zoo(name, IMAGENET, 10).is_none(), "{name}");
    }
}

#[test]
fn lenet5_follows_its_input_size() {
    use nabla_models::{LeNet5, LeNetStyle};
    // CIFAR's 3×32×32: S4 is 16×6×6, so C5 has 576 inputs.
    // 3·6·25 + 6 + 6·16·25 + 16 + 576·120 + 120 + 120·84 + 84 + 84·10 + 10 = 83,126.
    let net = LeNet5::for_input([3, 32, 32], 10, LeNetStyle::Modern).unwrap();
    assert_eq!(net.num_parameters(), 83_126);
    let x = nabla_core::Tensor::zeros((2, 3, 32, 32), nabla_core::DType::F32);
    assert_eq!(net.forward(&x).unwrap().dims(), &[2, 10]);
    let e = LeNet5::for_input([1, 11, 11], 10, LeNetStyle::Classic)
        .err()
        .expect("11×11 is too small")
        .to_string();
    assert!(e.contains("11×11 are too small"), "{e}");
}
