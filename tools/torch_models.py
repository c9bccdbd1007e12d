#!/usr/bin/env python3
"""PyTorch's side of `tools/bench.py zoo`: a zoo model timed on random inputs with the
protocol of `nabla bench --model NAME --steps N` (crates/nabla-cli/src/bench_timed.rs): SGD
momentum 0.9, cross-entropy on labels i mod classes, 2 warm-up steps, N timed training steps
and N timed inference batches (eval mode, inference_mode); samples/s from the median step.

Models: resnet20/32/44/56/110 (He et al. 2016, §4.2, option A shortcuts: stride-2 subsampling
and zero channels, written here), and from torchvision (pip install --no-deps torchvision):
resnet18/34/50/101/152, vgg11/13/16/19 (and -bn), alexnet-torchvision, googlenet (with its
auxiliary classifiers in training, loss = main + 0.3·(aux1 + aux2), as nabla's).

Usage: tools/torch_models.py MODEL [--input 3x224x224] [--batch-size 16] [--steps 10]
       [--classes 10] [--threads 2] [--precision f32|bf16]
"""

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """The basic block of the CIFAR ResNets, with the option-A shortcut."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        s = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra:
            s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + s)


def cifar_resnet(depth, channels, classes):
    n = (depth - 2) // 6
    layers = [nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for stage, cout in enumerate([16, 32, 64]):
        for i in range(n):
            layers.append(Block(cin, cout, 2 if stage > 0 and i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def build(name, channels, classes):
    if name.startswith("resnet") and name[6:].isdigit() and int(name[6:]) in (20, 32, 44, 56, 110):
        return cifar_resnet(int(name[6:]), channels, classes)
    import torchvision.models as tv

    if name == "googlenet":
        return tv.googlenet(num_classes=classes, aux_logits=True, init_weights=True)
    if name == "alexnet-torchvision":
        return tv.alexnet(num_classes=classes)
    return getattr(tv, name.replace("-", "_"))(num_classes=classes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--input", default="3x224x224")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c, h, w = (int(v) for v in a.input.split("x"))
    model = build(a.model, c, a.classes)
    if c != 3 and not isinstance(model, nn.Sequential):
        raise SystemExit("torchvision models take 3 channels")
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.precision == "bf16" else contextlib.nullcontext
    x = torch.randn(a.batch_size, c, h, w)
    y = torch.arange(a.batch_size) % a.classes
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    train = []
    for s in range(a.steps + 2):
        t0 = time.perf_counter()
        with cast():
            out = model(x)
            if isinstance(out, tuple):  # GoogLeNet's auxiliary classifiers
                loss = F.cross_entropy(out[0], y) + 0.3 * (F.cross_entropy(out[1], y) + F.cross_entropy(out[2], y))
            else:
                loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if s >= 2:
            train.append(time.perf_counter() - t0)
    model.eval()
    infer = []
    with torch.inference_mode():
        for s in range(a.steps + 1):
            t0 = time.perf_counter()
            with cast():
                model(x).sum().item()
            if s >= 1:
                infer.append(time.perf_counter() - t0)
    peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(f"RESULT framework=torch-{torch.__version__} model={a.model} input={a.input} batch={a.batch_size} "
          f"steps={a.steps} train_sps={a.batch_size / statistics.median(train):.1f} "
          f"infer_sps={a.batch_size / statistics.median(infer):.1f} peak_rss_mb={int(peak) / 1024:.1f} "
          f"precision={a.precision}")


if __name__ == "__main__":
    main()
