#!/usr/bin/env python3
"""Generates PyTorch reference fixtures for nabla-nn's layer, loss and state-dict tests.

Run from the repository root:

    python3 tools/make_nn_fixtures.py            # write the fixtures
    python3 tools/make_nn_fixtures.py --check-nabla   # also check a file written by nabla

It writes two files (PyTorch (CPU) and the `safetensors` package are needed only to
regenerate them; CI never runs this script):

* crates/nabla-nn/tests/fixtures/layers.safetensors, read by crates/nabla-nn/tests/layers.rs,
  tests/losses.rs and tests/state.rs;
* crates/nabla-nn/tests/fixtures/torch_state.safetensors: exactly what
  `safetensors.torch.save_file(model.state_dict(), path)` writes for a small trained
  nn.Sequential(Conv2d, BatchNorm2d, ReLU, Flatten, Linear) (see `torch_state_case`); its
  fixed input and eval-mode output are stored in layers.safetensors under `torch_state/`.

Format of layers.safetensors
----------------------------
* Tensors are float32, except class-index targets (int64). Names are `<case>/<role>`, where
  `<case>` is `<layer or loss>/<variant>`, e.g. `conv2d/reflect_s2`.
* Roles of a layer case:
    - `param.<name>`: the layer's parameters (and buffers) under PyTorch's state_dict names,
      set before the forward pass (`param.weight`, `param.bias`, `param.running_mean`, ...);
    - `input`, `out`, `grad_out` (a fixed random upstream gradient of `out`'s shape),
      `grad_input` and `grad.<name>` for each parameter: the gradients of `(out * grad_out).sum()`;
    - for batch norm, the same with a `train/` or `eval/` prefix, and `after3.<buffer>` for
      the buffers after three training batches (`train/input`, `step2/input`, `step3/input`)
      (see `batchnorm_case`).
* Roles of a loss case: the inputs (`input`, `target`, optionally `weight`), `out` (the loss),
  `grad_input` (of `out` itself for scalar losses, of `(out * grad_out).sum()` for
  reduction "none", with `grad_out` stored), and `grad_target` for the losses whose target
  is a float tensor (mse, bce, bce_with_logits).
* The header metadata holds, under the key `<case>`, a JSON object with the case's
  hyper-parameters (`kind` names the layer or loss, the rest are its constructor arguments).
  The key `__about__` describes the generator (script, torch version, seed).
"""

import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

SEED = 20240607
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE_DIR = os.path.join(ROOT, "crates", "nabla-nn", "tests", "fixtures")
LAYERS_PATH = os.path.join(FIXTURE_DIR, "layers.safetensors")
TORCH_STATE_PATH = os.path.join(FIXTURE_DIR, "torch_state.safetensors")

tensors = {}
metadata = {}


def put(name, t):
    assert name not in tensors, name
    tensors[name] = t.detach().contiguous().clone()


def meta(case, params):
    assert case not in metadata, case
    metadata[case] = json.dumps(params, sort_keys=True)


def run_layer(case, prefix, module, x, store_params=True):
    """Forward `x` through `module`, backward a random grad_out, store everything under `case/prefix`."""
    if store_params:
        for k, v in module.state_dict().items():
            put(f"{case}/param.{k}", v)
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    out = module(x)
    grad_out = torch.randn(out.shape)
    (out * grad_out).sum().backward()
    put(f"{case}/{prefix}input", x)
    put(f"{case}/{prefix}out", out)
    put(f"{case}/{prefix}grad_out", grad_out)
    put(f"{case}/{prefix}grad_input", x.grad)
    for k, p in module.named_parameters():
        put(f"{case}/{prefix}grad.{k}", p.grad)


def randomize(module):
    """Non-default parameter values, so that weight and bias are both seen."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)


# ---------------------------------------------------------------- layers


def linear_cases():
    for name, bias in [("bias", True), ("nobias", False)]:
        m = nn.Linear(5, 3, bias=bias)
        meta(f"linear/{name}", {"kind": "linear", "in": 5, "out": 3, "bias": bias})
        run_layer(f"linear/{name}", "", m, torch.randn(4, 5))
    # A batch of sequences: [N, L, in] (matmul over the last dimension).
    m = nn.Linear(4, 2)
    meta("linear/3d", {"kind": "linear", "in": 4, "out": 2, "bias": True})
    run_layer("linear/3d", "", m, torch.randn(2, 3, 4))


def conv_cases():
    # (variant, in, out, kernel, stride, padding, padding_mode, dilation, groups, bias, input HxW)
    cases = [
        ("zeros_p1", 3, 4, 3, 1, 1, "zeros", 1, 1, True, (6, 5)),
        ("reflect_p1", 2, 3, 3, 1, 1, "reflect", 1, 1, True, (5, 6)),
        ("replicate_p2", 2, 3, 3, 1, 2, "replicate", 1, 1, True, (5, 5)),
        ("circular_p1", 2, 3, 3, 1, 1, "circular", 1, 1, True, (5, 4)),
        ("reflect_s2", 3, 4, 3, 2, 1, "reflect", 1, 1, True, (7, 6)),
        ("zeros_s2_p2", 2, 3, 5, 2, 2, "zeros", 1, 1, True, (9, 8)),
        ("dilation2", 2, 3, 3, 1, 2, "zeros", 2, 1, True, (7, 7)),
        ("groups2", 4, 6, 3, 1, 1, "zeros", 1, 2, True, (5, 5)),
        ("depthwise", 3, 3, 3, 1, 1, "replicate", 1, 3, True, (5, 5)),
        ("nobias", 3, 2, 2, 1, 0, "zeros", 1, 1, False, (4, 5)),
        ("alexnet_conv1", 3, 4, 11, 4, 2, "zeros", 1, 1, True, (23, 23)),
    ]
    for v, cin, cout, k, s, p, mode, d, g, bias, (h, w) in cases:
        m = nn.Conv2d(cin, cout, k, stride=s, padding=p, padding_mode=mode, dilation=d, groups=g, bias=bias)
        meta(
            f"conv2d/{v}",
            {
                "kind": "conv2d",
                "in": cin,
                "out": cout,
                "kernel": k,
                "stride": s,
                "padding": p,
                "padding_mode": mode,
                "dilation": d,
                "groups": g,
                "bias": bias,
            },
        )
        run_layer(f"conv2d/{v}", "", m, torch.randn(2, cin, h, w))


def pool_cases():
    meta("max_pool2d/k3s2", {"kind": "max_pool2d", "kernel": 3, "stride": 2, "padding": 0})
    run_layer("max_pool2d/k3s2", "", nn.MaxPool2d(3, stride=2), torch.randn(2, 3, 9, 7))
    meta("max_pool2d/k2", {"kind": "max_pool2d", "kernel": 2, "stride": 2, "padding": 0})
    run_layer("max_pool2d/k2", "", nn.MaxPool2d(2), torch.randn(1, 2, 6, 6))
    meta("avg_pool2d/k2", {"kind": "avg_pool2d", "kernel": 2, "stride": 2, "padding": 0})
    run_layer("avg_pool2d/k2", "", nn.AvgPool2d(2), torch.randn(2, 2, 6, 5))
    meta("avg_pool2d/k3s2p1", {"kind": "avg_pool2d", "kernel": 3, "stride": 2, "padding": 1})
    run_layer("avg_pool2d/k3s2p1", "", nn.AvgPool2d(3, stride=2, padding=1), torch.randn(1, 2, 7, 6))
    meta("adaptive_avg_pool2d/3x2", {"kind": "adaptive_avg_pool2d", "output": [3, 2]})
    run_layer("adaptive_avg_pool2d/3x2", "", nn.AdaptiveAvgPool2d((3, 2)), torch.randn(2, 3, 7, 5))
    meta("adaptive_avg_pool2d/6x6", {"kind": "adaptive_avg_pool2d", "output": [6, 6]})
    run_layer("adaptive_avg_pool2d/6x6", "", nn.AdaptiveAvgPool2d((6, 6)), torch.randn(1, 2, 13, 13))


def lrn_cases():
    meta("lrn/alexnet", {"kind": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0})
    # Large activations, so that the α·Σa² term matters.
    run_layer("lrn/alexnet", "", nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), torch.randn(2, 7, 3, 3) * 30)


def batchnorm_case(case, module, shape):
    """Train-mode step on `train/input` (output and grads), two more training steps, buffers
    after the three steps (`after3.*`), then an eval-mode forward/backward on `eval/input`."""
    randomize(module)
    for k, v in module.state_dict().items():
        put(f"{case}/param.{k}", v)
    module.train()
    run_layer(case, "train/", module, torch.randn(shape) * 2 + 1, store_params=False)
    for step in (2, 3):
        x = torch.randn(shape) * (step + 0.5) - step
        put(f"{case}/step{step}/input", x)
        with torch.no_grad():
            module(x)
    for k, v in module.named_buffers():
        put(f"{case}/after3.{k}", v)
    module.eval()
    run_layer(case, "eval/", module, torch.randn(shape), store_params=False)


def norm_cases():
    meta("batchnorm1d/2d_input", {"kind": "batchnorm1d", "channels": 4, "momentum": 0.1, "eps": 1e-5})
    batchnorm_case("batchnorm1d/2d_input", nn.BatchNorm1d(4), (6, 4))
    meta("batchnorm1d/3d_input", {"kind": "batchnorm1d", "channels": 3, "momentum": 0.1, "eps": 1e-5})
    batchnorm_case("batchnorm1d/3d_input", nn.BatchNorm1d(3), (4, 3, 5))
    meta("batchnorm1d/cumulative", {"kind": "batchnorm1d", "channels": 4, "momentum": None, "eps": 1e-5})
    batchnorm_case("batchnorm1d/cumulative", nn.BatchNorm1d(4, momentum=None), (5, 4))
    meta("batchnorm2d/default", {"kind": "batchnorm2d", "channels": 3, "momentum": 0.1, "eps": 1e-5})
    batchnorm_case("batchnorm2d/default", nn.BatchNorm2d(3), (2, 3, 4, 5))
    meta("batchnorm2d/cumulative", {"kind": "batchnorm2d", "channels": 2, "momentum": None, "eps": 1e-5})
    batchnorm_case("batchnorm2d/cumulative", nn.BatchNorm2d(2, momentum=None), (3, 2, 3, 3))
    meta("batchnorm2d/m0.3_eps1e-3", {"kind": "batchnorm2d", "channels": 2, "momentum": 0.3, "eps": 1e-3})
    batchnorm_case("batchnorm2d/m0.3_eps1e-3", nn.BatchNorm2d(2, momentum=0.3, eps=1e-3), (2, 2, 3, 4))


def simple_cases():
    d = nn.Dropout(0.5)
    d.eval()
    meta("dropout/eval", {"kind": "dropout", "p": 0.5})
    run_layer("dropout/eval", "", d, torch.randn(3, 4))
    meta("flatten/4d", {"kind": "flatten"})
    run_layer("flatten/4d", "", nn.Flatten(), torch.randn(2, 3, 2, 2))
    x = torch.randn(3, 5)
    x[0, 0] = 0.0  # the kink: PyTorch's ReLU gradient is 0 there, LeakyReLU's the slope
    x[1, 2] = 0.0
    meta("relu/with_zeros", {"kind": "relu"})
    run_layer("relu/with_zeros", "", nn.ReLU(), x)
    meta("leaky_relu/default", {"kind": "leaky_relu", "slope": 0.01})
    run_layer("leaky_relu/default", "", nn.LeakyReLU(), x)
    meta("leaky_relu/0.2", {"kind": "leaky_relu", "slope": 0.2})
    run_layer("leaky_relu/0.2", "", nn.LeakyReLU(0.2), torch.randn(2, 3, 4))
    meta("sigmoid/wide", {"kind": "sigmoid"})
    run_layer("sigmoid/wide", "", nn.Sigmoid(), torch.randn(4, 5) * 6)
    meta("tanh/wide", {"kind": "tanh"})
    run_layer("tanh/wide", "", nn.Tanh(), torch.randn(4, 5) * 3)
    meta("softmax/dim1", {"kind": "softmax", "dim": 1})
    run_layer("softmax/dim1", "", nn.Softmax(dim=1), torch.randn(4, 6) * 3)
    meta("softmax/dim-1_3d", {"kind": "softmax", "dim": -1})
    run_layer("softmax/dim-1_3d", "", nn.Softmax(dim=-1), torch.randn(2, 3, 4))
    meta("log_softmax/dim1", {"kind": "log_softmax", "dim": 1})
    run_layer("log_softmax/dim1", "", nn.LogSoftmax(dim=1), torch.randn(4, 6) * 3)
    # Large logits: log-softmax must not overflow.
    meta("log_softmax/large", {"kind": "log_softmax", "dim": 1})
    run_layer("log_softmax/large", "", nn.LogSoftmax(dim=1), torch.tensor([[1000.0, 0.0, -1000.0], [50.0, 51.0, 49.0]]))


def sequential_case():
    """A small network made of several layers, to test composition and the `k.name` names."""
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3 * 2 * 2, 4),
    )
    randomize(net[1])
    net.train()
    meta(
        "sequential/conv_bn_relu_pool_linear",
        {
            "kind": "sequential",
            "state_dict_keys": list(net.state_dict().keys()),
            "parameter_names": [k for k, _ in net.named_parameters()],
        },
    )
    run_layer("sequential/conv_bn_relu_pool_linear", "", net, torch.randn(3, 2, 4, 4))
    for k, v in net.named_buffers():
        put(f"sequential/conv_bn_relu_pool_linear/after.{k}", v)


# ---------------------------------------------------------------- losses


def run_loss(case, params, fn, inputs, grad_of=("input",), none=False):
    meta(case, params)
    leaves = {}
    for k, v in inputs.items():
        v = v.detach().clone()
        if k in grad_of:
            v.requires_grad_(True)
        leaves[k] = v
    out = fn(**leaves)
    if none:
        grad_out = torch.randn(out.shape)
        (out * grad_out).sum().backward()
        put(f"{case}/grad_out", grad_out)
    else:
        assert out.dim() == 0
        out.backward()
    for k, v in leaves.items():
        put(f"{case}/{k}", v)
        if k in grad_of:
            put(f"{case}/grad_{k}", v.grad)
    put(f"{case}/out", out)


def loss_cases():
    x, y = torch.randn(4, 3), torch.randn(4, 3)
    for red in ["mean", "sum", "none"]:
        run_loss(
            f"mse/{red}",
            {"kind": "mse", "reduction": red},
            lambda input, target, red=red: F.mse_loss(input, target, reduction=red),
            {"input": x, "target": y},
            grad_of=("input", "target"),
            none=red == "none",
        )

    p = torch.sigmoid(torch.randn(6, 2) * 2)
    t = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.3, 0.7], [0.5, 0.9]])
    for red in ["mean", "sum", "none"]:
        run_loss(
            f"bce/{red}",
            {"kind": "bce", "reduction": red},
            lambda input, target, red=red: F.binary_cross_entropy(input, target, reduction=red),
            {"input": p, "target": t},
            grad_of=("input", "target"),
            none=red == "none",
        )

    # Probabilities of exactly 0 and 1 (a saturated f32 sigmoid): PyTorch clamps each log at
    # −100 and divides the gradient (p − y) by max(p(1 − p), 1e-12), so it stays finite.
    p = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.5, 0.25]])
    t = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.5, 0.5, 1.0, 0.0]])
    run_loss(
        "bce/saturated",
        {"kind": "bce", "reduction": "none"},
        lambda input, target: F.binary_cross_entropy(input, target, reduction="none"),
        {"input": p, "target": t},
        grad_of=("input", "target"),
        none=True,
    )

    z = torch.tensor([[0.0, 0.0, 100.0, -100.0], [100.0, -100.0, 1.5, -2.5], [0.3, -0.7, 20.0, -20.0]])
    t = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.25, 1.0], [1.0, 0.0, 0.0, 1.0]])
    for red in ["mean", "sum", "none"]:
        run_loss(
            f"bce_with_logits/{red}",
            {"kind": "bce_with_logits", "reduction": red},
            lambda input, target, red=red: F.binary_cross_entropy_with_logits(input, target, reduction=red),
            {"input": z, "target": t},
            grad_of=("input", "target"),
            none=red == "none",
        )

    logits = torch.randn(5, 4) * 2
    target = torch.tensor([0, 3, 1, 1, 2], dtype=torch.int64)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0])
    for name, weight, ls, red in [
        ("plain", None, 0.0, "mean"),
        ("sum", None, 0.0, "sum"),
        ("none", None, 0.0, "none"),
        ("weight", w, 0.0, "mean"),
        ("weight_sum", w, 0.0, "sum"),
        ("smoothing", None, 0.1, "mean"),
        ("smoothing_none", None, 0.2, "none"),
        ("weight_smoothing", w, 0.1, "mean"),
        ("weight_smoothing_sum", w, 0.3, "sum"),
        ("weight_smoothing_none", w, 0.1, "none"),
    ]:
        inputs = {"input": logits, "target": target}
        if weight is not None:
            inputs["weight"] = weight
        run_loss(
            f"cross_entropy/{name}",
            {"kind": "cross_entropy", "reduction": red, "label_smoothing": ls, "weight": weight is not None},
            lambda input, target, weight=None, red=red, ls=ls: F.cross_entropy(
                input, target, weight=weight, reduction=red, label_smoothing=ls
            ),
            inputs,
            none=red == "none",
        )

    log_probs = F.log_softmax(torch.randn(5, 4), dim=1)
    for name, weight, red in [("plain", None, "mean"), ("weight", w, "mean"), ("sum", None, "sum"), ("weight_none", w, "none")]:
        inputs = {"input": log_probs, "target": target}
        if weight is not None:
            inputs["weight"] = weight
        run_loss(
            f"nll/{name}",
            {"kind": "nll", "reduction": red, "weight": weight is not None},
            lambda input, target, weight=None, red=red: F.nll_loss(input, target, weight=weight, reduction=red),
            inputs,
            none=red == "none",
        )


# ---------------------------------------------------------------- a state dict written by PyTorch


def torch_state_net():
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5),
    )


def torch_state_case():
    net = torch_state_net()
    randomize(net[1])
    net.train()
    with torch.no_grad():  # non-trivial running statistics
        for _ in range(4):
            net(torch.randn(6, 2, 4, 4) * 2 + 0.5)
    net.eval()
    save_file(net.state_dict(), TORCH_STATE_PATH)
    x = torch.randn(3, 2, 4, 4)
    with torch.no_grad():
        out = net(x)
    meta(
        "torch_state",
        {"kind": "torch_state", "file": "torch_state.safetensors", "state_dict_keys": list(net.state_dict().keys())},
    )
    put("torch_state/input", x)
    put("torch_state/out", out)


def check_nabla_direction():
    """Asks nabla (an ignored test of tests/state.rs) to save a network, its input and its eval
    output, then loads the file into the equivalent PyTorch module and compares."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NABLA_STATE_OUT=d)
        cmd = ["cargo", "test", "-q", "-p", "nabla-nn", "--test", "state", "--", "--ignored", "write_state_for_pytorch"]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        net = torch_state_net()
        net.load_state_dict(load_file(os.path.join(d, "model.safetensors")), strict=True)
        net.eval()
        io = load_file(os.path.join(d, "io.safetensors"))
        with torch.no_grad():
            out = net(io["input"])
        diff = (out - io["out"]).abs().max().item()
        scale = max(1.0, io["out"].abs().max().item())
        assert diff <= 1e-5 * scale, f"PyTorch output differs from nabla's by {diff}"
        print(f"OK: a state dict saved by nabla loads into PyTorch (strict) and gives nabla's output (max diff {diff:.2e})")


def main():
    torch.manual_seed(SEED)
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    linear_cases()
    conv_cases()
    pool_cases()
    lrn_cases()
    norm_cases()
    simple_cases()
    sequential_case()
    loss_cases()
    torch_state_case()
    metadata["__about__"] = json.dumps(
        {"script": "tools/make_nn_fixtures.py", "torch": torch.__version__, "seed": SEED}, sort_keys=True
    )
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file(tensors, LAYERS_PATH, metadata=metadata)
    size = os.path.getsize(LAYERS_PATH)
    assert size < 1_000_000, size
    print(f"wrote {LAYERS_PATH} ({len(tensors)} tensors, {size} bytes, {len(metadata) - 1} cases)")
    print(f"wrote {TORCH_STATE_PATH} ({os.path.getsize(TORCH_STATE_PATH)} bytes)")
    if "--check-nabla" in sys.argv:
        check_nabla_direction()


if __name__ == "__main__":
    main()
