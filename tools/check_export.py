"""Loads a state dict written by `nabla export --weights-only` into torchvision's model of the
same name with `load_state_dict(strict=True)` and prints the logits of a fixed input.

    nabla train --model resnet18 --input 3x32x32 --epochs 1 --out runs/r18
    nabla export --checkpoint runs/r18/checkpoint.safetensors --weights-only -o r18.safetensors
    python tools/check_export.py resnet18 r18.safetensors 10

Needs `pip install torch torchvision safetensors`; CI does not run it.
"""
import sys

import torch
import torchvision
from safetensors.torch import load_file

name, path, classes = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = getattr(torchvision.models, name)(num_classes=classes)
print(model.load_state_dict(load_file(path), strict=True))
model.eval()
with torch.no_grad():
    print(model(torch.zeros(1, 3, 32, 32)).flatten().tolist())
