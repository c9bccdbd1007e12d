#!/usr/bin/env python3
"""Generates PyTorch reference fixtures for nabla-core's op tests.

Run from the repository root:

    python3 tools/make_fixtures.py

It writes ONE file, crates/nabla-core/tests/fixtures/ops.safetensors, read by
crates/nabla-core/tests/pytorch_fixtures.rs. PyTorch (CPU) and the `safetensors` package are
needed only to regenerate the file; CI never runs this script.

Format
------
* Every tensor is float32 (integer-valued inputs, e.g. the max-pool ties case, are stored as
  float32 too). Tensor names are `<case>/<role>`, where `<case>` is `<op>/<variant>`, e.g.
  `conv2d/reflect_s2/input`.
* Roles:
    - the op's inputs, named as listed in the case's `inputs` (see below): `input`, `weight`,
      `bias` (conv2d), `a`, `b` (matmul);
    - `out`: the op's output;
    - `grad_out`: a fixed random upstream gradient of `out`'s shape;
    - `grad_<name>` for every input: the gradient of `(out * grad_out).sum()` with respect to
      that input (PyTorch's `out.backward(grad_out)`).
* The safetensors header metadata (a str -> str map) holds, under the key `<case>`, a JSON
  object with the case's parameters. Common keys:
    - `op`: one of conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, local_response_norm,
      softmax, log_softmax, matmul;
    - `inputs`: the input names in call order;
    - `torch`: the PyTorch call that produced `out`, for humans.
  Per op:
    - conv2d: `stride` [sh, sw], `padding` [top, bottom, left, right], `padding_mode`
      (zeros | reflect | replicate | circular), `dilation` [dh, dw], `groups`, `bias` (bool).
      Cases whose `via` is `nn.Conv2d` use nn.Conv2d(padding=(ph, pw), padding_mode=...), which
      pads non-zero modes with F.pad(x, (pw, pw, ph, ph)) before a zero-padded convolution;
      cases whose `via` is `F.pad` pad explicitly with F.pad(x, (left, right, top, bottom),
      mode) (asymmetric per-side padding) and convolve without padding.
    - max_pool2d: `kernel`, `stride`, `padding`, `dilation` (each [h, w]), `ceil_mode`.
    - avg_pool2d: `kernel`, `stride`, `padding` ([h, w]), `ceil_mode`, `count_include_pad`,
      `divisor_override` (int or null).
    - adaptive_avg_pool2d: `output_size` [oh, ow].
    - local_response_norm: `size`, `alpha`, `beta`, `k` (F.local_response_norm's arguments).
    - softmax / log_softmax: `dim` (may be negative).
    - matmul: nothing beyond `inputs` (torch.matmul(a, b)).
* The metadata key `__about__` describes the generator (script, torch version, seed).
* The header is written with sorted keys, so a rerun with the same PyTorch version gives the
  same bytes (safetensors' own writer orders the metadata differently on every run).
"""

import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load, save

SEED = 20240531
OUT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "nabla-core", "tests", "fixtures", "ops.safetensors")

tensors = {}
metadata = {}


def add_case(name, params, inputs, fn):
    """Runs `fn(*inputs)`, backpropagates a random grad_out and stores everything under `name`."""
    assert name not in metadata, name
    leaves = {k: v.detach().clone().float().requires_grad_(True) for k, v in inputs.items()}
    out = fn(*leaves.values())
    grad_out = torch.randn(out.shape, dtype=torch.float32)
    (out * grad_out).sum().backward()
    for k, v in leaves.items():
        tensors[f"{name}/{k}"] = v.detach().contiguous()
        assert v.grad is not None, f"{name}: no gradient for {k}"
        tensors[f"{name}/grad_{k}"] = v.grad.detach().contiguous()
    tensors[f"{name}/out"] = out.detach().contiguous()
    tensors[f"{name}/grad_out"] = grad_out.contiguous()
    params = dict(params)
    params["inputs"] = list(inputs.keys())
    metadata[name] = json.dumps(params, sort_keys=True)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


# --------------------------------------------------------------------------- conv2d


def conv_module_case(name, *, n, c_in, c_out, hw, k, stride, padding, mode, dilation, groups, bias=True):
    """nn.Conv2d with padding (ph, pw) and padding_mode (PyTorch's own F.pad ordering)."""
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, padding_mode=mode)
    x = randn(n, c_in, *hw)
    inputs = {"input": x, "weight": conv.weight.detach().clone()}
    if bias:
        inputs["bias"] = conv.bias.detach().clone()

    def fn(x, w, b=None):
        # nn.Conv2d.forward is `self._conv_forward(input, self.weight, self.bias)`; calling it
        # with our leaves keeps the module's own padding path and puts the gradients on them.
        return conv._conv_forward(x, w, b)

    ph, pw = padding
    add_case(
        name,
        {
            "op": "conv2d",
            "via": "nn.Conv2d",
            "stride": list(stride),
            "padding": [ph, ph, pw, pw],
            "padding_mode": mode,
            "dilation": list(dilation),
            "groups": groups,
            "bias": bias,
            "torch": f"nn.Conv2d({c_in}, {c_out}, {k}, stride={stride}, padding={padding}, dilation={dilation}, groups={groups}, bias={bias}, padding_mode='{mode}')",
        },
        inputs,
        fn,
    )


def conv_fpad_case(name, *, n, c_in, c_out, hw, k, stride, sides, mode, dilation, groups, bias=True):
    """Asymmetric padding: F.pad(x, (left, right, top, bottom), mode) then an unpadded conv."""
    top, bottom, left, right = sides
    x = randn(n, c_in, *hw)
    w = randn(c_out, c_in // groups, k, k) * 0.5
    inputs = {"input": x, "weight": w}
    if bias:
        inputs["bias"] = randn(c_out)
    fmode = "constant" if mode == "zeros" else mode

    def fn(x, w, b=None):
        xp = F.pad(x, (left, right, top, bottom), mode=fmode)
        return F.conv2d(xp, w, b, stride=stride, dilation=dilation, groups=groups)

    add_case(
        name,
        {
            "op": "conv2d",
            "via": "F.pad",
            "stride": list(stride),
            "padding": [top, bottom, left, right],
            "padding_mode": mode,
            "dilation": list(dilation),
            "groups": groups,
            "bias": bias,
            "torch": f"F.conv2d(F.pad(x, ({left}, {right}, {top}, {bottom}), mode='{fmode}'), w, b, stride={stride}, dilation={dilation}, groups={groups})",
        },
        inputs,
        fn,
    )


def conv_cases():
    # nn.Conv2d's own padding_mode, padding (ph, pw) with ph != pw to pin the order of F.pad.
    conv_module_case("conv2d/zeros_s2_d2_g2", n=2, c_in=4, c_out=6, hw=(7, 8), k=3, stride=(2, 2), padding=(1, 2), mode="zeros", dilation=(2, 2), groups=2)
    conv_module_case("conv2d/reflect_s2", n=2, c_in=3, c_out=4, hw=(7, 6), k=3, stride=(2, 2), padding=(2, 1), mode="reflect", dilation=(1, 1), groups=1)
    conv_module_case("conv2d/replicate_d2_g2", n=2, c_in=4, c_out=4, hw=(6, 7), k=3, stride=(1, 1), padding=(1, 2), mode="replicate", dilation=(2, 2), groups=2)
    conv_module_case("conv2d/circular_s21_depthwise", n=2, c_in=3, c_out=6, hw=(6, 5), k=3, stride=(2, 1), padding=(2, 1), mode="circular", dilation=(1, 1), groups=3)
    conv_module_case("conv2d/reflect_s2_d12_g2", n=1, c_in=4, c_out=2, hw=(8, 7), k=3, stride=(2, 2), padding=(1, 2), mode="reflect", dilation=(1, 2), groups=2)
    conv_module_case("conv2d/zeros_nobias", n=2, c_in=3, c_out=5, hw=(5, 6), k=3, stride=(1, 1), padding=(1, 1), mode="zeros", dilation=(1, 1), groups=1, bias=False)
    conv_module_case("conv2d/circular_nobias_s2", n=1, c_in=2, c_out=3, hw=(5, 5), k=2, stride=(2, 2), padding=(1, 1), mode="circular", dilation=(1, 1), groups=1, bias=False)
    # A batch larger than the thread count of most machines: the batch-parallel kernels.
    conv_module_case("conv2d/batch40_reflect_g2", n=40, c_in=2, c_out=2, hw=(4, 5), k=3, stride=(1, 1), padding=(1, 1), mode="reflect", dilation=(1, 1), groups=2)
    conv_module_case("conv2d/pointwise", n=2, c_in=4, c_out=3, hw=(3, 4), k=1, stride=(1, 1), padding=(0, 0), mode="zeros", dilation=(1, 1), groups=1)
    # Asymmetric per-side padding [top, bottom, left, right] through F.pad.
    for mode in ["zeros", "reflect", "replicate", "circular"]:
        conv_fpad_case(f"conv2d/asym_{mode}_s2_g2", n=2, c_in=4, c_out=4, hw=(6, 7), k=3, stride=(2, 2), sides=(1, 3, 2, 0), mode=mode, dilation=(1, 1), groups=2)
        conv_fpad_case(f"conv2d/asym_{mode}_d2", n=1, c_in=2, c_out=3, hw=(7, 6), k=2, stride=(1, 2), sides=(0, 2, 3, 1), mode=mode, dilation=(2, 2), groups=1)
    conv_fpad_case("conv2d/asym_reflect_nobias", n=1, c_in=2, c_out=2, hw=(5, 5), k=3, stride=(1, 1), sides=(2, 0, 0, 4), mode="reflect", dilation=(1, 1), groups=1, bias=False)


# --------------------------------------------------------------------------- pooling


def max_pool_case(name, x, *, kernel, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    add_case(
        name,
        {
            "op": "max_pool2d",
            "kernel": list(kernel),
            "stride": list(stride),
            "padding": list(padding),
            "dilation": list(dilation),
            "ceil_mode": ceil_mode,
            "torch": f"F.max_pool2d(x, {kernel}, stride={stride}, padding={padding}, dilation={dilation}, ceil_mode={ceil_mode})",
        },
        {"input": x},
        lambda x: F.max_pool2d(x, kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode),
    )


def avg_pool_case(name, x, *, kernel, stride, padding=(0, 0), ceil_mode=False, count_include_pad=True, divisor_override=None):
    add_case(
        name,
        {
            "op": "avg_pool2d",
            "kernel": list(kernel),
            "stride": list(stride),
            "padding": list(padding),
            "ceil_mode": ceil_mode,
            "count_include_pad": count_include_pad,
            "divisor_override": divisor_override,
            "torch": f"F.avg_pool2d(x, {kernel}, stride={stride}, padding={padding}, ceil_mode={ceil_mode}, count_include_pad={count_include_pad}, divisor_override={divisor_override})",
        },
        {"input": x},
        lambda x: F.avg_pool2d(x, kernel, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override),
    )


def adaptive_case(name, x, output_size):
    add_case(
        name,
        {"op": "adaptive_avg_pool2d", "output_size": list(output_size), "torch": f"F.adaptive_avg_pool2d(x, {output_size})"},
        {"input": x},
        lambda x: F.adaptive_avg_pool2d(x, output_size),
    )


def pool_cases():
    # AlexNet's overlapping pooling: 3x3 windows, stride 2.
    max_pool_case("max_pool2d/overlap_k3s2", randn(2, 3, 7, 7), kernel=(3, 3), stride=(2, 2))
    max_pool_case("max_pool2d/ceil_k3s2", randn(1, 2, 6, 6), kernel=(3, 3), stride=(2, 2), ceil_mode=True)
    max_pool_case("max_pool2d/pad1_k3s2", randn(1, 2, 6, 7), kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    # ceil_mode where the last window would start in the right padding and is dropped: 5 -> 3.
    max_pool_case("max_pool2d/ceil_pad_k2s2", randn(1, 2, 5, 5), kernel=(2, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    # All negative values: the padding must act as -inf, not 0.
    max_pool_case("max_pool2d/negative_pad_ceil", -(torch.rand(1, 2, 6, 5) + 0.1), kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    max_pool_case("max_pool2d/dilation2", randn(1, 2, 7, 8), kernel=(3, 3), stride=(1, 2), dilation=(2, 2))
    max_pool_case("max_pool2d/rank3", randn(3, 5, 6), kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    max_pool_case("max_pool2d/rect_k23", randn(2, 1, 6, 7), kernel=(2, 3), stride=(1, 2))
    # Exact ties (small integers): the gradient goes to the first maximum of each window in
    # row-major order, as PyTorch's CPU kernel does.
    ties = torch.randint(0, 3, (2, 2, 6, 6)).float()
    max_pool_case("max_pool2d/ties_k3s1", ties, kernel=(3, 3), stride=(1, 1))
    max_pool_case("max_pool2d/ties_k3s2_pad_ceil", ties.clone(), kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    max_pool_case("max_pool2d/ties_constant", torch.full((1, 1, 4, 5), 2.0), kernel=(2, 2), stride=(1, 1))

    avg_pool_case("avg_pool2d/k3s2_pad1_include", randn(2, 2, 6, 7), kernel=(3, 3), stride=(2, 2), padding=(1, 1), count_include_pad=True)
    avg_pool_case("avg_pool2d/k3s2_pad1_exclude", randn(2, 2, 6, 7), kernel=(3, 3), stride=(2, 2), padding=(1, 1), count_include_pad=False)
    avg_pool_case("avg_pool2d/ceil_pad1_include", randn(1, 2, 6, 6), kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True, count_include_pad=True)
    avg_pool_case("avg_pool2d/ceil_pad1_exclude", randn(1, 2, 6, 6), kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True, count_include_pad=False)
    avg_pool_case("avg_pool2d/ceil_nopad", randn(1, 2, 5, 7), kernel=(2, 3), stride=(2, 2), ceil_mode=True)
    avg_pool_case("avg_pool2d/divisor_override", randn(1, 2, 5, 6), kernel=(2, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True, divisor_override=3)
    avg_pool_case("avg_pool2d/k2_plain", randn(2, 3, 4, 6), kernel=(2, 2), stride=(2, 2))
    avg_pool_case("avg_pool2d/overlap_k3s1_pad1", randn(1, 1, 4, 4), kernel=(3, 3), stride=(1, 1), padding=(1, 1), count_include_pad=True)

    adaptive_case("adaptive_avg_pool2d/7x5_to_3x2", randn(2, 2, 7, 5), (3, 2))
    adaptive_case("adaptive_avg_pool2d/5x7_to_2x3", randn(1, 3, 5, 7), (2, 3))
    adaptive_case("adaptive_avg_pool2d/4x3_to_6x5", randn(1, 2, 4, 3), (6, 5))
    adaptive_case("adaptive_avg_pool2d/6x6_to_1x1", randn(2, 2, 6, 6), (1, 1))
    adaptive_case("adaptive_avg_pool2d/rank3_7x7_to_3x3", randn(2, 7, 7), (3, 3))


# --------------------------------------------------------------------------- LRN, softmax, matmul


def lrn_case(name, x, size, alpha, beta, k):
    add_case(
        name,
        {"op": "local_response_norm", "size": size, "alpha": alpha, "beta": beta, "k": k, "torch": f"F.local_response_norm(x, {size}, alpha={alpha}, beta={beta}, k={k})"},
        {"input": x},
        lambda x: F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k),
    )


def softmax_case(name, x, dim, log):
    op = "log_softmax" if log else "softmax"
    f = F.log_softmax if log else F.softmax
    add_case(name, {"op": op, "dim": dim, "torch": f"F.{op}(x, dim={dim})"}, {"input": x}, lambda x: f(x, dim=dim))


def matmul_case(name, a, b):
    add_case(name, {"op": "matmul", "torch": "torch.matmul(a, b)"}, {"a": a, "b": b}, lambda a, b: torch.matmul(a, b))


def other_cases():
    # AlexNet's LRN. Inputs scaled up (as after a ReLU conv layer) so that the normalisation
    # and its cross-channel gradient term are not negligible next to k = 2.
    lrn_case("local_response_norm/alexnet_size5", randn(2, 7, 3, 3) * 40.0, 5, 1e-4, 0.75, 2.0)
    # An even size: the window is [c - 2, c + 1], asymmetric.
    lrn_case("local_response_norm/size4", randn(2, 6, 3, 2), 4, 0.5, 0.75, 1.0)
    lrn_case("local_response_norm/size2_beta1", randn(1, 5, 2, 3), 2, 0.8, 1.0, 1.5)
    # A window wider than the channel count.
    lrn_case("local_response_norm/size6_c3", randn(2, 3, 2, 2), 6, 0.9, 0.6, 1.0)
    lrn_case("local_response_norm/rank3", randn(2, 5, 4), 3, 0.7, 0.75, 1.0)

    # Large values (±1000) exercise the max subtraction; one row holds ties at the maximum.
    x = randn(3, 4, 5) * 3.0
    x[0, 1, :] = torch.tensor([1000.0, -1000.0, 999.0, 0.5, 1000.0])
    x[1, :, 2] = torch.tensor([-1000.0, 1000.0, 998.5, -999.0])
    x[2, 3, 4] = -1000.0
    softmax_case("softmax/dim1", x, 1, False)
    softmax_case("softmax/dim_last", x.clone(), -1, False)
    softmax_case("log_softmax/dim1", x.clone(), 1, True)
    softmax_case("log_softmax/dim_last", x.clone(), -1, True)
    y = randn(4, 6) * 2.0
    y[2, :] = torch.tensor([-1000.0, -1001.0, -999.5, -1000.0, -1002.0, -998.0])
    softmax_case("softmax/2d_dim0", y, 0, False)
    softmax_case("log_softmax/2d_dim1", y.clone(), 1, True)

    matmul_case("matmul/broadcast_4d_3d", randn(2, 1, 3, 4), randn(5, 4, 2))
    matmul_case("matmul/2d", randn(3, 4), randn(4, 5))
    matmul_case("matmul/batch_3d_2d", randn(2, 3, 4), randn(4, 5))
    matmul_case("matmul/1d_1d", randn(4), randn(4))
    matmul_case("matmul/1d_2d", randn(4), randn(4, 3))
    matmul_case("matmul/2d_1d", randn(3, 4), randn(4))
    matmul_case("matmul/3d_1d", randn(2, 3, 4), randn(4))
    matmul_case("matmul/1d_3d", randn(4), randn(2, 4, 3))


def write_canonical(tensors, metadata, path):
    """safetensors' `save` with the header's keys sorted, so that reruns give identical bytes.

    The binding builds the header from a hash map whose order changes from run to run; the
    data section is already in a fixed order. The header is re-serialised with sorted keys and
    padded with spaces to a multiple of 8 bytes, as the format asks, and read back to check.
    """
    raw = save(tensors, metadata=metadata)
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text)) + text + data
    with open(path, "wb") as f:
        f.write(blob)
    back = load(blob)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    conv_cases()
    pool_cases()
    other_cases()
    metadata["__about__"] = json.dumps(
        {"script": "tools/make_fixtures.py", "torch": torch.__version__, "seed": SEED, "cases": len([k for k in metadata if k != "__about__"])},
        sort_keys=True,
    )
    path = os.path.normpath(OUT_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_canonical(tensors, metadata, path)
    print(f"wrote {len(metadata) - 1} cases, {len(tensors)} tensors, {os.path.getsize(path)} bytes to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
