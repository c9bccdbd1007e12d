#!/usr/bin/env python3
"""Generates torchvision reference fixtures for nabla-models' zoo tests.

Run from the repository root:

    python3 tools/make_model_fixtures.py

PyTorch, torchvision, numpy and the `safetensors` package are needed only to regenerate the
fixtures; CI never runs this script. If torchvision is missing, install it without letting pip
replace the installed PyTorch: `pip install --no-deps torchvision pillow` (the script only
builds torchvision's models; it needs none of its compiled image or video operators). The
committed fixtures were written with torch 2.15.0 and torchvision 0.29.2.

It writes two files under crates/nabla-models/tests/fixtures/:

* torchvision_state_dicts.txt, read by tests/param_counts.rs: one line per entry of
  `state_dict()` of torchvision's alexnet, vgg11, vgg16, vgg19, vgg16_bn, googlenet (with its
  auxiliary classifiers) and resnet18 … resnet152, all for 1000 classes, as
  `<model> <name> <shape>` with the shape written `AxBxC` (empty for a scalar), in
  state-dict order. The zoo's names and shapes must equal these. (VGG-13 and the other -bn
  variants are the same code with other depths; they are left out to keep the test quick.)

* resnet18_io.safetensors, read by tests/torchvision_resnet18.rs (about 50 KB): `input`, a fixed
  1×3×64×64 float32 input (torch.randn after torch.manual_seed(SEED)); `logits`, the eval-mode
  output (`model.eval(); model(input)`, float32 [1, 10]) of `torchvision.models.resnet18(
  num_classes=10)` whose state dict is filled by the formula below; and `probe`, float32
  [122, 3], the first, middle and last value of each state-dict entry, in state-dict order
  (num_batches_tracked as a float), so the test can tell a formula that drifted from a model that
  computes differently. The weights themselves are not stored: the test computes them.

The formula (the same in tests/torchvision_resnet18.rs, bit for bit). Entry k is the k-th of
`state_dict()` in torchvision's order (0 = conv1.weight, 1 = bn1.weight, …, 121 = fc.bias; the
num_batches_tracked entries count), the order of the resnet18 lines of
torchvision_state_dicts.txt. Element i is the flat row-major index. With wrapping u64 arithmetic,

    splitmix64(x): z = x + 0x9E3779B97F4A7C15
                   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                   return z ^ (z >> 31)
    u = ((splitmix64(k * 2^32 + i) >> 40) - 2^23) / 2^23       24 bits, exact, in [-1, 1)
    value = f32(a + s * u), computed in f64 and rounded once, where (a, s) is
      conv and fc weight (rank ≥ 2)       (0, 1.5 / sqrt(fan_in)), fan_in = elements / dims[0]
      batch norm weight, running_var      (1, 0.5)      in [0.5, 1.5)
      bias (batch norm, fc), running_mean (0, 0.2)
      num_batches_tracked                 int64 scalar 0

Every step is exact or one IEEE-754 rounding, so numpy and Rust get identical bits. Batch norm's
statistics and affine parameters are not torchvision's 1, 0, 0, 1, so a wrong use of them is
caught; the gain 1.5 keeps the activations O(1) through the network and the logits spread over
about [-1.1, 1.8].

The one line that exports any torchvision model for nabla (docs/MODELS.md):

    safetensors.torch.save_file(torchvision.models.resnet18(weights="DEFAULT").state_dict(), "resnet18.safetensors")
"""

import math
import os

import numpy as np
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


# The formula weights: tests/torchvision_resnet18.rs computes the same values (bit for bit) in
# Rust. Keep the two in step; the docstring above and the test's module comment state it.
SPLITMIX_INC = np.uint64(0x9E3779B97F4A7C15)
SPLITMIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
SPLITMIX_M2 = np.uint64(0x94D049BB133111EB)
CONV_GAIN = 1.5  # s = CONV_GAIN / sqrt(fan_in) for conv and fc weights


def splitmix64(x):
    """splitmix64's output function on uint64 arrays (wrapping arithmetic mod 2^64)."""
    with np.errstate(over="ignore"):
        z = x + SPLITMIX_INC
        z = (z ^ (z >> np.uint64(30))) * SPLITMIX_M1
        z = (z ^ (z >> np.uint64(27))) * SPLITMIX_M2
        return z ^ (z >> np.uint64(31))


def uniform(k, n):
    """u_i = ((splitmix64(k * 2^32 + i) >> 40) - 2^23) / 2^23 for i < n, exact float64 in [-1, 1)."""
    i = np.arange(n, dtype=np.uint64)
    h = splitmix64((np.uint64(k) << np.uint64(32)) | i)
    return ((h >> np.uint64(40)).astype(np.int64) - 2**23).astype(np.float64) / 2.0**23


def formula_entry(k, name, shape):
    """The value of state-dict entry number k (in state_dict() order), called `name`, of `shape`."""
    n = int(np.prod(shape, dtype=np.int64))
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    if leaf == "weight" and len(shape) >= 2:  # conv or fc
        a, s = 0.0, CONV_GAIN / math.sqrt(n // shape[0])
    elif leaf in ("weight", "running_var"):  # batch norm's scale, running variance
        a, s = 1.0, 0.5
    elif leaf in ("bias", "running_mean"):  # batch norm's shift and mean, fc's bias
        a, s = 0.0, 0.2
    else:
        raise ValueError(f"no formula for {name}")
    values = (a + s * uniform(k, n)).astype(np.float32)  # float64 arithmetic, rounded once
    return torch.from_numpy(values.reshape(shape))


def write_resnet18():
    model = torchvision.models.resnet18(num_classes=10)
    state = model.state_dict()  # tensors share storage with the model's
    probe = []
    with torch.no_grad():
        for k, (name, t) in enumerate(state.items()):
            v = formula_entry(k, name, tuple(t.shape))
            assert v.dtype == t.dtype, name
            t.copy_(v)
            flat = v.flatten().to(torch.float32)
            probe.append([flat[0], flat[flat.numel() // 2], flat[-1]])
    model.eval()
    torch.manual_seed(SEED)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
    io_path = os.path.join(FIXTURE_DIR, "resnet18_io.safetensors")
    save_file(
        {"input": x.contiguous(), "logits": logits.contiguous(), "probe": torch.tensor(probe, dtype=torch.float32)},
        io_path,
        metadata={
            "about": f"eval-mode logits of torchvision resnet18(num_classes=10) with the formula weights; "
            f"input seed {SEED}; torch {torch.__version__}, torchvision {torchvision.__version__}"
        },
    )
    os.chmod(io_path, 0o644)  # safetensors writes 0600
    size = os.path.getsize(io_path) / 2**10
    print(f"wrote {io_path} ({size:.0f} KiB); {len(state)} state-dict entries; logits {logits.flatten().tolist()}")


if __name__ == "__main__":
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    write_state_dict_names()
    write_resnet18()
