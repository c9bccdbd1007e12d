#!/usr/bin/env python3
"""nabla's one benchmark entry point: nabla beside its peers, in one sitting on one machine,
the programs alternating so that each sees the same conditions; medians over the rounds.

    python3 tools/bench.py ops [--rounds 2]
        The kernel table (`cargo bench -p nabla-core --bench ops`: GEMM GFLOP/s, convolution,
        pooling and element-wise timings) beside PyTorch's (../shared/bench/pytorch_cpu_ops.py,
        or $PYTORCH_OPS), both on 2 threads. Ratio > 1: nabla faster (GFLOP/s: nabla/PyTorch;
        times: PyTorch/nabla).

    python3 tools/bench.py models [--epochs 3] [--models mlp,lenet] [--rounds 1] [--peers DIR]
        Training and inference of the benchmark models: `nabla bench` beside PyTorch, candle and
        burn-flex (built by ../shared/bench/peers/setup.sh into DIR). A Markdown table of
        samples/s, accuracy and peak memory (the maximum resident set size /usr/bin/time reports,
        the same measure for every program), with the ratios nabla/peer: throughput > 1 means
        nabla is faster, memory < 1 that it uses less.

    python3 tools/bench.py precision [--epochs 5] [--models mlp,lenet5] [--rounds 1]
        Mixed precision: `nabla bench --precision f32|bf16` beside PyTorch in f32 and under
        torch.autocast("cpu", dtype=torch.bfloat16) (tools/torch_precision.py, the same models,
        data and schedule): samples/s, accuracy after the first and the last epoch, peak memory,
        and each program's bf16/f32 ratios.

    python3 tools/bench.py zoo [--models resnet20,resnet18,vgg11,googlenet] [--steps 10]
            [--rounds 1] [--precision f32]
        The lecture's deep networks timed on random inputs: `nabla bench --model M --steps N`
        beside tools/torch_models.py (the same architectures, batch, optimiser and protocol):
        training and inference samples/s, peak memory, ratios nabla/PyTorch. ResNet-20 runs on
        1×28×28 at batch 128, the ImageNet models on 3×224×224 at batch 16.

Everything else that times nabla (`nabla bench --profile`, the examples under
crates/nabla-core/examples) is a profiler for finding where time goes, not a benchmark.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ops(a):
    build = ["cargo", "bench", "-p", "nabla-core", "--bench", "ops", "--no-run", "--message-format=json"]
    out = subprocess.run(build, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    bins = [m["executable"] for m in map(json.loads, out.splitlines()) if m.get("executable")]
    nabla = [bins[-1], "--json"]
    peer = os.environ.get("PYTORCH_OPS", os.path.join(ROOT, "..", "shared", "bench", "pytorch_cpu_ops.py"))
    torch = [sys.executable, peer, "--threads", "2", "--json"]
    env = dict(os.environ, NABLA_NUM_THREADS=os.environ.get("NABLA_NUM_THREADS", "2"))
    n, t = [], []
    for _ in range(a.rounds):
        n.append(json.loads(subprocess.run(nabla, env=env, check=True, capture_output=True, text=True).stdout))
        t.append(json.loads(subprocess.run(torch, check=True, capture_output=True, text=True).stdout))
    print(f"{'figure':<28}{'nabla':>12}{'PyTorch':>12}{'ratio':>8}")
    for k in n[0]:
        if k == "threads" or k not in t[0]:
            continue
        x, y = statistics.median(r[k] for r in n), statistics.median(r[k] for r in t)
        ratio = x / y if k.endswith("gflops") else y / x
        print(f"{k:<28}{x:>12.3f}{y:>12.3f}{ratio:>8.2f}")
    print(f"ratio > 1: nabla faster (GFLOP/s: nabla/PyTorch; times: PyTorch/nabla); torch {t[0].get('torch')}")


def timed(cmd, key="train_sps_median3"):
    """Runs one program under /usr/bin/time; its RESULT fields and peak RSS in MB, or None."""
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M"] + cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    fields = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                fields.setdefault(k, v)  # acc1 appears twice when epochs == 1
            accs = re.findall(r"acc(\d+)=([0-9.]+)", line)
            if accs:
                fields["acc_last"] = accs[-1][1]  # the last epoch's
        if line.startswith("MAXRSS_KB"):
            fields["peak_mb"] = int(line.split()[1]) / 1024
    if key not in fields:
        sys.stderr.write(f"no RESULT from {' '.join(cmd)} (exit {p.returncode}):\n{out[-2000:]}\n")
        return None
    return fields


def models(a):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nabla-cli"], cwd=ROOT, check=True)
    nabla = os.path.join(ROOT, "target", "release", "nabla")
    e = str(a.epochs)
    programs = {
        "nabla": lambda m: [nabla, "bench", "--model", "lenet5" if m == "lenet" else m, "--epochs", e],
        "PyTorch": lambda m: [os.path.join(a.peers, ".venv/bin/python"), os.path.join(a.peers, "torch/bench.py"), m, "--epochs", e],
        "candle": lambda m: [os.path.join(a.peers, "candle/target/release/peers-candle"), m, e, "0.05"],
        "burn-flex": lambda m: [os.path.join(a.peers, "burn-flex/target/release/peers-burn-flex"), m, e, "0.05"],
    }
    print(f"| model | program | train samples/s | infer samples/s | acc 1 ep | acc {e} ep | peak MB | train ratio | infer ratio | memory ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in a.models.split(","):
        results = {name: [] for name in programs}
        for _ in range(a.rounds):
            for name, cmd in programs.items():
                r = timed(cmd(m))
                if r:
                    results[name].append(r)

        def med(name, key):
            vals = [float(r[key]) for r in results[name] if key in r]
            return statistics.median(vals) if vals else float("nan")

        nt, ni, nm = med("nabla", "train_sps_median3"), med("nabla", "infer_sps"), med("nabla", "peak_mb")
        for name in programs:
            if not results[name]:
                continue
            t, i, mem = med(name, "train_sps_median3"), med(name, "infer_sps"), med(name, "peak_mb")
            ratios = "| — | — | — |" if name == "nabla" else f"| {nt / t:.2f} | {ni / i:.2f} | {nm / mem:.2f} |"
            print(
                f"| {m} | {name} | {t:,.0f} | {i:,.0f} | {med(name, 'acc1'):.4f} | {med(name, 'acc_last'):.4f} "
                f"| {mem:,.0f} {ratios}",
                flush=True,
            )


def precision(a):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nabla-cli"], cwd=ROOT, check=True)
    nabla = os.path.join(ROOT, "target", "release", "nabla")
    torch = os.path.join(ROOT, "tools", "torch_precision.py")
    e = str(a.epochs)
    programs = {
        "nabla": lambda m, p: [nabla, "bench", "--model", m, "--epochs", e, "--precision", p],
        "PyTorch": lambda m, p: [sys.executable, torch, m, "--epochs", e, "--precision", p],
    }
    print(f"| model | program | precision | train samples/s | infer samples/s | acc 1 ep | acc {e} ep | peak MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for m in a.models.split(","):
        results = {}
        for _ in range(a.rounds):
            for p in ["f32", "bf16"]:
                for name, cmd in programs.items():
                    r = timed(cmd(m, p))
                    if r:
                        results.setdefault((name, p), []).append(r)
        med = lambda key, rs: statistics.median(float(r[key]) for r in rs)
        for (name, p), rs in sorted(results.items()):
            print(f"| {m} | {name} | {p} | {med('train_sps_median3', rs):,.0f} | {med('infer_sps', rs):,.0f} "
                  f"| {med('acc1', rs):.4f} | {med('acc_last', rs):.4f} | {med('peak_mb', rs):,.0f} |", flush=True)


def zoo(a):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "nabla-cli"], cwd=ROOT, check=True)
    nabla = os.path.join(ROOT, "target", "release", "nabla")
    torch = os.path.join(ROOT, "tools", "torch_models.py")
    print(f"| model | input, batch | program | train samples/s | infer samples/s | peak MB | train ratio | infer ratio | memory ratio |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for m in a.models.split(","):
        cifar = m.startswith("resnet") and m[6:].isdigit() and int(m[6:]) < 152 and int(m[6:]) % 6 == 2
        shape, batch = ("1x28x28", 128) if cifar else ("3x224x224", 16)
        common = ["--steps", str(a.steps), "--batch-size", str(batch), "--input", shape, "--precision", a.precision]
        programs = {
            "nabla": [nabla, "bench", "--model", m] + common,
            "PyTorch": [sys.executable, torch, m] + common,
        }
        results = {name: [] for name in programs}
        for _ in range(a.rounds):
            for name, cmd in programs.items():
                r = timed(cmd, key="train_sps")
                if r:
                    results[name].append(r)
        med = lambda name, key: statistics.median(float(r[key]) for r in results[name]) if results[name] else float("nan")
        n = {k: med("nabla", k) for k in ("train_sps", "infer_sps", "peak_mb")}
        for name in programs:
            t, i, mem = med(name, "train_sps"), med(name, "infer_sps"), med(name, "peak_mb")
            ratios = "| — | — | — |" if name == "nabla" else f"| {n['train_sps'] / t:.2f} | {n['infer_sps'] / i:.2f} | {n['peak_mb'] / mem:.2f} |"
            print(f"| {m} | {shape}, {batch} | {name} | {t:,.1f} | {i:,.1f} | {mem:,.0f} {ratios}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    o = sub.add_parser("ops", help="the kernel table beside PyTorch's")
    o.add_argument("--rounds", type=int, default=2)
    m = sub.add_parser("models", help="training and inference beside PyTorch, candle and burn")
    m.add_argument("--epochs", type=int, default=3)
    m.add_argument("--models", default="mlp,lenet")
    m.add_argument("--rounds", type=int, default=1, help="alternate the programs this many times; medians")
    m.add_argument("--peers", default=os.path.join(tempfile.gettempdir(), "nabla-peers"))
    q = sub.add_parser("precision", help="f32 and bf16 beside PyTorch's f32 and autocast")
    q.add_argument("--epochs", type=int, default=5)
    q.add_argument("--models", default="mlp,lenet5")
    q.add_argument("--rounds", type=int, default=1)
    z = sub.add_parser("zoo", help="deep networks on random inputs beside PyTorch")
    z.add_argument("--models", default="resnet20,resnet18,vgg11,googlenet")
    z.add_argument("--steps", type=int, default=10)
    z.add_argument("--rounds", type=int, default=1)
    z.add_argument("--precision", default="f32")
    a = ap.parse_args()
    {"ops": ops, "models": models, "precision": precision, "zoo": zoo}[a.what](a)


if __name__ == "__main__":
    main()
