#!/usr/bin/env python3
"""Exports every zoo model (and the example architecture files) to ONNX with `nabla export`,
checks each file with onnx.checker (full check, with shape inference), runs it in onnxruntime
on the two test inputs nabla wrote beside it, and prints a table of the largest relative error
against nabla's logits, max|ort - nabla| / max|nabla|, and of that error against the spread
max|nabla(x1) - nabla(x2)| of the two inputs' logits.

    pip install onnx onnxruntime safetensors numpy
    cargo build --release
    python3 tools/check_onnx.py [--nabla target/release/nabla] [--models resnet20,vgg11] [--markdown]

Models are untrained (`--model NAME`, seed 0, 10 classes, batch-norm statistics from one batch
of random inputs), at 224×224 for the ImageNet models and 32×32 for the CIFAR ones; the two
test inputs must give different logits (else only the biases would be compared). A model passes when the error is at most 1e-4 and the file has a
dynamic batch dimension, and the error is at most 1% of the spread between the two inputs'
logits (the part of the logits that depends on the input) — or, for networks that amplify
rounding, when the error is at most ten times nabla's own change under inputs nudged by 2^-20
relative ("sensitivity"): then the two runtimes differ as much as float32 rounding allows.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (model, input) — every name of `nabla_models::zoo::zoo_names()` and `registry::model_names()`.
IMAGENET = "3x224x224"
CIFAR = "3x32x32"
MODELS = [
    ("lenet5", "1x28x28"),
    ("lenet5-classic", "1x28x28"),
    ("mlp", "1x28x28"),
    ("mlp:300,100", "1x28x28"),
    ("alexnet", IMAGENET),
    ("alexnet-two-stream", IMAGENET),
    ("alexnet-torchvision", IMAGENET),
    ("zfnet", IMAGENET),
    ("vgg11", IMAGENET),
    ("vgg13", IMAGENET),
    ("vgg16", IMAGENET),
    ("vgg19", IMAGENET),
    ("vgg11-bn", IMAGENET),
    ("vgg13-bn", IMAGENET),
    ("vgg16-bn", IMAGENET),
    ("vgg19-bn", IMAGENET),
    ("nin", CIFAR),
    ("googlenet", IMAGENET),
    ("googlenet-5x5", IMAGENET),
    ("resnet18", IMAGENET),
    ("resnet34", IMAGENET),
    ("resnet50", IMAGENET),
    ("resnet101", IMAGENET),
    ("resnet152", IMAGENET),
    ("resnet20", CIFAR),
    ("resnet32", CIFAR),
    ("resnet44", CIFAR),
    ("resnet56", CIFAR),
    ("resnet110", CIFAR),
    ("resnet20-b", CIFAR),
    ("resnet32-b", CIFAR),
    ("resnet44-b", CIFAR),
    ("resnet56-b", CIFAR),
    ("resnet110-b", CIFAR),
    ("plain18", IMAGENET),
    ("plain34", IMAGENET),
    ("plain20", CIFAR),
    ("plain32", CIFAR),
    ("plain44", CIFAR),
    ("plain56", CIFAR),
    ("plain110", CIFAR),
    ("se-resnet18", IMAGENET),
    ("se-resnet50", IMAGENET),
]
ARCHS = "examples/archs"


def check(nabla, model, shape, work):
    """(max relative error, dynamic batch, seconds) or raises with the reason."""
    stem = os.path.join(work, model.replace(":", "_").replace("/", "_").replace(",", "_"))
    path, sample = stem + ".onnx", stem + ".sample.safetensors"
    t0 = time.time()
    out = subprocess.run(
        [nabla, "export", "--model", model, "--input", shape, "--format", "onnx",
         "-o", path, "--sample", sample, "--force"],
        capture_output=True, text=True, cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError("export: " + out.stderr.strip().splitlines()[-1])
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dynamic = dims[0].dim_param != "" and m.graph.output[0].type.tensor_type.shape.dim[0].dim_param != ""
    io = load_file(sample)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input": io["input"]})[0]
    want = io["logits"]
    err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
    # Each sample alone gives its own row (the batch dimension is really dynamic).
    one = session.run(["logits"], {"input": io["input"][1:]})[0]
    err = max(err, float(np.max(np.abs(one - want[1:])) / max(np.max(np.abs(want)), 1e-30)))
    os.remove(path)
    # The two inputs must give different logits, or the comparison would only see the biases;
    # where the input-dependent part is small (untrained AlexNet: biases of 1 and weights of
    # N(0, 0.01)), the error must also be small against it.
    spread = float(np.max(np.abs(want[0] - want[1])) / max(np.max(np.abs(want)), 1e-30))
    if spread < 1e-6:
        raise RuntimeError(f"degenerate: both inputs give the same logits (spread {spread:.1e})")
    # nabla's own change under inputs changed by 2^-20 relative: deep untrained networks
    # (plain110) amplify rounding so much that no float32 runtime can agree with another to 1e-4.
    sensitivity = float(np.max(np.abs(io["logits_nudged"] - want)) / max(np.max(np.abs(want)), 1e-30))
    return err, err / spread, sensitivity, dynamic, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nabla", default=os.path.join(ROOT, "target", "release", "nabla"))
    ap.add_argument("--models", help="comma-separated NAME or NAME@CxHxW (default: all)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()

    cases = list(MODELS)
    for f in sorted(os.listdir(os.path.join(ROOT, ARCHS))):
        if f.endswith(".toml"):
            cases.append((os.path.join(ARCHS, f), "1x28x28"))
    if args.models:
        # NAME or NAME@CxHxW; a name not in the list (an architecture file) is taken at 1x28x28.
        known = dict(cases)
        cases = []
        for item in args.models.split(","):
            name, _, shape = item.partition("@")
            cases.append((name, shape or known.get(name, "1x28x28")))

    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, tolerance {args.tolerance:g}", file=sys.stderr)
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as work:
        for model, shape in cases:
            try:
                err, of_spread, sens, dynamic, secs = check(args.nabla, model, shape, work)
                # Within the tolerance, or (for networks that amplify rounding) within ten
                # times nabla's own change under a 2^-20 nudge of the input.
                within = err <= args.tolerance and of_spread <= 1e-2
                conditioned = err <= 10 * sens
                ok = (within or conditioned) and dynamic
                verdict = "pass" if within and dynamic else ("pass (≤ 10× sensitivity)" if ok else "FAIL")
                rows.append(
                    (model, shape, f"{err:.1e}", f"{of_spread:.1e}", f"{sens:.1e}", "yes" if dynamic else "NO", verdict)
                )
            except Exception as e:  # noqa: BLE001 - every failure is a row of the table
                ok = False
                rows.append((model, shape, "-", "-", "-", "-", f"FAIL: {str(e)[:120]}"))
            failed += not ok
            print(" ".join(rows[-1]), file=sys.stderr)

    header = ("model", "input", "max rel. error", "error / spread", "nabla's sensitivity", "dynamic batch", "result")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|---|---|---:|---:|---:|---|---|")
        for r in rows:
            print("| " + " | ".join(f"`{r[0]}`" if i == 0 else r[i] for i in range(len(r))) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        for r in [header, *rows]:
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print(f"{len(rows) - failed} of {len(rows)} passed", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
