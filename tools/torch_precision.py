#!/usr/bin/env python3
"""PyTorch's side of `tools/bench.py precision`: the benchmark MLP or LeNet-5 of `nabla bench`
(Fashion-MNIST from data/, SGD momentum 0.9, lr 0.05, batch 128, the same splitmix64 shuffle),
in f32 or under torch.autocast("cpu", dtype=torch.bfloat16), printing one RESULT line with the
fields `nabla bench` prints: training samples/s (median of the first 3 epochs), test accuracy
after the first and the last epoch, inference samples/s (batch 1000, median of 3).

Usage: tools/torch_precision.py {mlp|lenet5} [--precision f32|bf16] [--epochs 3] [--threads 2]
"""

import argparse
import contextlib
import gzip
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "fashion-mnist")
MASK = (1 << 64) - 1


def idx(name):
    raw = gzip.open(os.path.join(DATA, name), "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def permutation(n, state):
    """Fisher–Yates driven by splitmix64, j = z mod (i + 1): nabla bench's shuffle."""
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        j = z % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order, state


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["mlp", "lenet5"])
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.precision == "bf16" else contextlib.nullcontext
    xtr = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    ytr = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = mlp() if a.model == "mlp" else lenet5()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    @torch.inference_mode()
    def accuracy():
        model.eval()
        correct = 0
        with cast():
            for i in range(0, len(yte), 1000):
                correct += int((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum())
        return correct / len(yte)

    n, state, times, accs = len(ytr), 42, [], []
    for _ in range(a.epochs):
        order, state = permutation(n, state)
        order = torch.tensor(order)
        model.train()
        t0 = time.perf_counter()
        for i in range(0, n, 128):
            b = order[i:i + 128]
            with cast():
                loss = F.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        accs.append(accuracy())
    inference = []
    for _ in range(3):
        t0 = time.perf_counter()
        accuracy()
        inference.append(time.perf_counter() - t0)
    print(f"RESULT framework=torch-{torch.__version__} model={a.model} train_sps_median3={n / statistics.median(times[:3]):.1f} "
          f"acc1={accs[0]:.4f} acc{a.epochs}={accs[-1]:.4f} infer_sps={len(yte) / statistics.median(inference):.1f} "
          f"precision={a.precision}")


if __name__ == "__main__":
    main()
