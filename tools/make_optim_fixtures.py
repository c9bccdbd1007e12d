#!/usr/bin/env python3
"""Generates PyTorch reference fixtures for nabla-nn's optimisers and learning-rate schedules.

Run from the repository root:

    python3 tools/make_optim_fixtures.py

It writes ONE file, crates/nabla-nn/tests/fixtures/optim.safetensors, read by
crates/nabla-nn/tests/optim.rs and crates/nabla-nn/tests/schedule.rs. PyTorch (CPU) and the
`safetensors` package are needed only to regenerate the file; CI never runs this script.

The problem
-----------
A 3x4 weight W and a 3-vector bias b, a fixed batch X (5x4) and targets Y (5x3):

    loss(W, b) = sum((X @ W.T + b - Y)^2) / 5 + 0.1 * sum(W^4)

Tensors
-------
* `problem/{w0,b0,x,y}`: the starting parameters and the data, float64.
* `optim/<case>/<dtype>/step<k>/{weight,bias}` for k = 1..5 and dtype in {f32, f64}: the
  parameters after k calls of `optimizer.step()`, starting from w0, b0 converted to dtype
  (the data X, Y converted too). Every step recomputes the loss and its gradient.
* `schedule/<case>/lr`: float64, the learning rate at epoch 0 (right after construction)
  followed by the rate after each of 12 `scheduler.step()` calls (13 values).

Metadata (str -> JSON)
----------------------
* `optim/<case>`: {"optim": "sgd" | "adam" | "adamw" | "rmsprop", the constructor's keyword
  arguments (betas as a list), optionally "groups": [{"params": ["weight"], ...overrides}]
  and "exp_lr_gamma" (an ExponentialLR stepped after every optimizer step), "torch": the
  call, for humans}.
* `schedule/<case>`: {"kind": ..., the constructor's arguments, "base_lr", for plateaus
  "metrics": the 12 values passed to step(), "torch": the call}.
* `__about__`: the generator (script, torch version, seed).
"""

import json
import os
import struct
import sys

import torch
from safetensors.torch import load, save

SEED = 20240607
STEPS = 5
EPOCHS = 12
OUT_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "nabla-nn", "tests", "fixtures", "optim.safetensors"
)

tensors = {}
metadata = {}


def loss_fn(w, b, x, y):
    return ((x @ w.T + b - y) ** 2).sum() / x.shape[0] + 0.1 * (w**4).sum()


# name -> (optimizer, kwargs, extra)
OPTIM_CASES = {
    "sgd_plain": ("sgd", {"lr": 0.05}, {}),
    "sgd_momentum": ("sgd", {"lr": 0.05, "momentum": 0.9}, {}),
    "sgd_dampening": ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}, {}),
    "sgd_nesterov": ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {}),
    "sgd_weight_decay": ("sgd", {"lr": 0.05, "weight_decay": 0.1}, {}),
    "sgd_momentum_weight_decay": ("sgd", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1}, {}),
    "adam": ("adam", {"lr": 0.05}, {}),
    "adam_betas": ("adam", {"lr": 0.05, "betas": [0.8, 0.95], "eps": 1e-6}, {}),
    "adam_weight_decay": ("adam", {"lr": 0.05, "weight_decay": 0.1}, {}),
    "adam_amsgrad": ("adam", {"lr": 0.05, "amsgrad": True}, {}),
    "adamw": ("adamw", {"lr": 0.05}, {}),
    "adamw_strong": ("adamw", {"lr": 0.05, "weight_decay": 0.5, "amsgrad": True}, {}),
    "rmsprop": ("rmsprop", {"lr": 0.01}, {}),
    "rmsprop_momentum": ("rmsprop", {"lr": 0.01, "momentum": 0.9}, {}),
    "rmsprop_centered": ("rmsprop", {"lr": 0.01, "centered": True}, {}),
    "rmsprop_all": (
        "rmsprop",
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1, "momentum": 0.5, "centered": True},
        {},
    ),
    # Two parameter groups (the weight decayed, the bias with its own lr), and an exponential
    # schedule applied after every step: checks that groups keep their ratio to the default lr.
    "sgd_groups_schedule": (
        "sgd",
        {"lr": 0.1, "momentum": 0.9},
        {"groups": [{"params": ["weight"], "weight_decay": 0.05}, {"params": ["bias"], "lr": 0.02}], "exp_lr_gamma": 0.8},
    ),
    "adamw_groups": (
        "adamw",
        {"lr": 0.05, "weight_decay": 0.2},
        {"groups": [{"params": ["weight"]}, {"params": ["bias"], "weight_decay": 0.0}]},
    ),
}

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}


def optim_case(name, kind, kwargs, extra, problem):
    about = {"optim": kind, **kwargs, **extra}
    call = f"torch.optim.{OPTIMIZERS[kind].__name__}"
    for dtype_name, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        w = problem["w0"].to(dtype).clone().requires_grad_()
        b = problem["b0"].to(dtype).clone().requires_grad_()
        x, y = problem["x"].to(dtype), problem["y"].to(dtype)
        named = {"weight": w, "bias": b}
        torch_kwargs = dict(kwargs)
        if "betas" in torch_kwargs:
            torch_kwargs["betas"] = tuple(torch_kwargs["betas"])
        if "groups" in extra:
            groups = []
            for g in extra["groups"]:
                g = dict(g)
                g["params"] = [named[p] for p in g["params"]]
                groups.append(g)
        else:
            groups = [w, b]
        opt = OPTIMIZERS[kind](groups, foreach=False, **torch_kwargs)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, extra["exp_lr_gamma"]) if "exp_lr_gamma" in extra else None
        for k in range(1, STEPS + 1):
            opt.zero_grad()
            loss_fn(w, b, x, y).backward()
            opt.step()
            if sched is not None:
                sched.step()
            tensors[f"optim/{name}/{dtype_name}/step{k}/weight"] = w.detach().clone()
            tensors[f"optim/{name}/{dtype_name}/step{k}/bias"] = b.detach().clone()
    about["torch"] = f"{call}({'groups' if 'groups' in extra else '[w, b]'}, {kwargs})" + (
        f"; ExponentialLR(opt, {extra['exp_lr_gamma']}) stepped after each step" if "exp_lr_gamma" in extra else ""
    )
    metadata[f"optim/{name}"] = json.dumps(about, sort_keys=True)


BASE_LR = 0.1
PLATEAU_METRICS = [1.0, 0.9, 0.91, 0.92, 0.93, 0.8, 0.85, 0.86, 0.87, 0.88, 0.8795, 0.9]
PLATEAU_MAX_METRICS = [0.5, 0.6, 0.6, 0.605, 0.6, 0.7, 0.7, 0.7, 0.7, 0.71, 0.705, 0.7]


def dummy_optimizer():
    p = torch.zeros(1, requires_grad=True)
    return torch.optim.SGD([p], lr=BASE_LR)


def schedule_case(name, about, make, metrics=None):
    opt = dummy_optimizer()
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for e in range(EPOCHS):
        opt.step()
        if metrics is not None:
            sched.step(metrics[e])
        else:
            sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    tensors[f"schedule/{name}/lr"] = torch.tensor(lrs, dtype=torch.float64)
    about = {**about, "base_lr": BASE_LR}
    if metrics is not None:
        about["metrics"] = metrics
    metadata[f"schedule/{name}"] = json.dumps(about, sort_keys=True)


def schedule_cases():
    S = torch.optim.lr_scheduler
    schedule_case(
        "constant",
        {"kind": "constant", "factor": 0.5, "total_iters": 4, "torch": "ConstantLR(opt, factor=0.5, total_iters=4)"},
        lambda o: S.ConstantLR(o, factor=0.5, total_iters=4),
    )
    schedule_case(
        "step",
        {"kind": "step", "step_size": 3, "gamma": 0.5, "torch": "StepLR(opt, step_size=3, gamma=0.5)"},
        lambda o: S.StepLR(o, step_size=3, gamma=0.5),
    )
    schedule_case(
        "multistep",
        {"kind": "multistep", "milestones": [2, 5, 9], "gamma": 0.3, "torch": "MultiStepLR(opt, [2, 5, 9], gamma=0.3)"},
        lambda o: S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3),
    )
    schedule_case(
        "exponential",
        {"kind": "exponential", "gamma": 0.9, "torch": "ExponentialLR(opt, gamma=0.9)"},
        lambda o: S.ExponentialLR(o, gamma=0.9),
    )
    schedule_case(
        "cosine",
        {"kind": "cosine", "t_max": 8, "eta_min": 0.001, "torch": "CosineAnnealingLR(opt, T_max=8, eta_min=0.001)"},
        lambda o: S.CosineAnnealingLR(o, T_max=8, eta_min=0.001),
    )
    schedule_case(
        "linear",
        {"kind": "linear", "start_factor": 1.0, "end_factor": 0.1, "total_iters": 6, "torch": "LinearLR(opt, 1.0, 0.1, total_iters=6)"},
        lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6),
    )
    schedule_case(
        "warmup_cosine",
        {
            "kind": "warmup",
            "start_factor": 0.1,
            "warmup": 3,
            "inner": {"kind": "cosine", "t_max": 6, "eta_min": 0.0},
            "torch": "SequentialLR(opt, [LinearLR(opt, 0.1, 1.0, total_iters=3), CosineAnnealingLR(opt, T_max=6)], milestones=[3])",
        },
        lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=3), S.CosineAnnealingLR(o, T_max=6)], milestones=[3]
        ),
    )
    schedule_case(
        "warmup_step",
        {
            "kind": "warmup",
            "start_factor": 0.25,
            "warmup": 2,
            "inner": {"kind": "step", "step_size": 3, "gamma": 0.5},
            "torch": "SequentialLR(opt, [LinearLR(opt, 0.25, 1.0, total_iters=2), StepLR(opt, 3, 0.5)], milestones=[2])",
        },
        lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=2), S.StepLR(o, step_size=3, gamma=0.5)], milestones=[2]
        ),
    )
    schedule_case(
        "plateau_min",
        {
            "kind": "plateau",
            "mode": "min",
            "factor": 0.5,
            "patience": 2,
            "threshold": 0.01,
            "threshold_mode": "rel",
            "cooldown": 1,
            "min_lr": 0.02,
            "torch": "ReduceLROnPlateau(opt, 'min', factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.02)",
        },
        lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.02),
        PLATEAU_METRICS,
    )
    schedule_case(
        "plateau_max_abs",
        {
            "kind": "plateau",
            "mode": "max",
            "factor": 0.3,
            "patience": 1,
            "threshold": 0.01,
            "threshold_mode": "abs",
            "cooldown": 0,
            "min_lr": 0.0,
            "torch": "ReduceLROnPlateau(opt, 'max', factor=0.3, patience=1, threshold=0.01, threshold_mode='abs')",
        },
        lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.3, patience=1, threshold=0.01, threshold_mode="abs"),
        PLATEAU_MAX_METRICS,
    )


def write_canonical(path):
    """safetensors with a sorted header, so that regenerating gives the same bytes."""
    tensors_c = {k: v.contiguous() for k, v in tensors.items()}
    raw = save(tensors_c, metadata=metadata)
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text)) + text + data
    with open(path, "wb") as f:
        f.write(blob)
    back = load(blob)
    assert back.keys() == tensors_c.keys() and all(torch.equal(back[k], tensors_c[k]) for k in tensors_c)


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    problem = {
        "w0": torch.randn(3, 4, dtype=torch.float64) * 0.7,
        "b0": torch.randn(3, dtype=torch.float64) * 0.3,
        "x": torch.randn(5, 4, dtype=torch.float64),
        "y": torch.randn(5, 3, dtype=torch.float64),
    }
    # Round through f32 so that the f32 and f64 runs start from exactly the same numbers.
    problem = {k: v.to(torch.float32).to(torch.float64) for k, v in problem.items()}
    for k, v in problem.items():
        tensors[f"problem/{k}"] = v
    for name, (kind, kwargs, extra) in OPTIM_CASES.items():
        optim_case(name, kind, kwargs, extra, problem)
    schedule_cases()
    metadata["__about__"] = json.dumps(
        {"script": "tools/make_optim_fixtures.py", "torch": torch.__version__, "seed": SEED, "steps": STEPS, "epochs": EPOCHS},
        sort_keys=True,
    )
    path = os.path.normpath(OUT_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_canonical(path)
    print(f"wrote {len(metadata) - 1} cases, {len(tensors)} tensors, {os.path.getsize(path)} bytes to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
