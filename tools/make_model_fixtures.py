#!/usr/bin/env python3
"""Generates torchvision reference fixtures for nabla-models' zoo tests.

Run from the repository root:

    python3 tools/make_model_fixtures.py

PyTorch, torchvision and the `safetensors` package are needed only to regenerate the
fixtures; CI never runs this script. If torchvision is missing, install it without letting pip
replace the installed PyTorch: `pip install --no-deps torchvision pillow` (the script only
builds torchvision's models; it needs none of its compiled image or video operators). The
committed fixtures were written with torch 2.15.0 and torchvision 0.29.2.

It writes three files under crates/nabla-models/tests/fixtures/:

* torchvision_state_dicts.txt, read by tests/param_counts.rs: one line per entry of
  `state_dict()` of torchvision's alexnet, vgg11, vgg16, vgg19, vgg16_bn, googlenet (with its
  auxiliary classifiers) and resnet18 … resnet152, all for 1000 classes, as
  `<model> <name> <shape>` with the shape written `AxBxC` (empty for a scalar), in
  state-dict order. The zoo's names and shapes must equal these. (VGG-13 and the other -bn
  variants are the same code with other depths; they are left out to keep the test quick.)

* resnet18.safetensors, read by tests/torchvision_resnet18.rs: exactly what
  `safetensors.torch.save_file(model.state_dict(), path)` writes for
  `torchvision.models.resnet18(num_classes=10)` with seeded random weights. Batch norm's
  weights, biases and running statistics are randomised too (torchvision initialises them to
  1, 0, 0, 1, which would let a wrong use of them go unnoticed). float32, about 45 MB.

* resnet18_io.safetensors: `input`, a fixed 1×3×64×64 float32 input, and `logits`, the
  model's output for it in eval mode (`model.eval(); model(input)`), float32 [1, 10].

The one line that exports any torchvision model for nabla (docs/MODELS.md):

    safetensors.torch.save_file(torchvision.models.resnet18(weights="DEFAULT").state_dict(), "resnet18.safetensors")
"""

import os

import torch
import torchvision
from safetensors.torch import save_file

SEED = 20240611
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE_DIR = os.path.join(ROOT, "crates", "nabla-models", "tests", "fixtures")

STATE_DICT_MODELS = [
    "alexnet",
    "vgg11",
    "vgg16",
    "vgg19",
    "vgg16_bn",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


def build(name):
    kwargs = {}
    if name == "googlenet":
        # The auxiliary classifiers are part of the zoo's googlenet; skip the slow init.
        kwargs.update(aux_logits=True, init_weights=False)
    return getattr(torchvision.models, name)(**kwargs)


def write_state_dict_names():
    lines = [
        "# torchvision state_dict() entries (1000 classes): <model> <name> <shape AxBxC>",
        f"# written by tools/make_model_fixtures.py with torch {torch.__version__}, torchvision {torchvision.__version__}",
    ]
    for name in STATE_DICT_MODELS:
        model = build(name)
        for key, t in model.state_dict().items():
            lines.append(f"{name} {key} {'x'.join(str(d) for d in t.shape)}".rstrip())
    path = os.path.join(FIXTURE_DIR, "torchvision_state_dicts.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path} ({len(lines) - 2} entries)")


def write_resnet18():
    torch.manual_seed(SEED)
    model = torchvision.models.resnet18(num_classes=10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = os.path.join(FIXTURE_DIR, "resnet18.safetensors")
    save_file(state, path, metadata={"about": "torchvision resnet18(num_classes=10), seeded random weights"})
    io_path = os.path.join(FIXTURE_DIR, "resnet18_io.safetensors")
    save_file(
        {"input": x.contiguous(), "logits": logits.contiguous()},
        io_path,
        metadata={"about": f"eval-mode logits of resnet18.safetensors, seed {SEED}, torch {torch.__version__}"},
    )
    for p in (path, io_path):
        os.chmod(p, 0o644)  # safetensors writes 0600
    size = os.path.getsize(path) / 2**20
    print(f"wrote {path} ({size:.1f} MiB) and {io_path}; logits {logits.flatten().tolist()}")


if __name__ == "__main__":
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    write_state_dict_names()
    write_resnet18()
