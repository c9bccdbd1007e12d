#!/usr/bin/env python3
"""Writes the PyTorch (and torchvision) reference fixtures that nabla's tests compare with.

Run from anywhere:

    python3 tools/make_fixtures.py              # every fixture
    python3 tools/make_fixtures.py ops nn       # some of them
    python3 tools/make_fixtures.py nn --check-nabla   # also check a state dict nabla wrote

One module per area, each with a docstring that states its file format and cases:

    ops     tools/fixtures/ops.py     crates/nabla-core/tests/fixtures/ops.safetensors
    nn      tools/fixtures/nn.py      crates/nabla-nn/tests/fixtures/{layers,torch_state}.safetensors
    optim   tools/fixtures/optim.py   crates/nabla-nn/tests/fixtures/optim.safetensors
    models  tools/fixtures/models.py  crates/nabla-models/tests/fixtures/*

PyTorch (CPU), numpy and the `safetensors` package are needed (torchvision for `models`);
only to regenerate the files: CI and `cargo test` never run this script.
"""

import importlib
import os
import sys

AREAS = ["ops", "nn", "optim", "models"]


def run(argv):
    chosen = [a for a in argv if not a.startswith("-")] or AREAS
    unknown = [a for a in chosen if a not in AREAS]
    if unknown:
        sys.exit(f"unknown fixture area(s) {unknown}: choose from {AREAS}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    for area in chosen:
        print(f"== {area}")
        importlib.import_module(f"fixtures.{area}").main()


if __name__ == "__main__":
    run(sys.argv[1:])
