#!/usr/bin/env python3
"""Runs `nabla bench` and the peers (PyTorch, candle, burn-flex; built by
../shared/bench/peers/setup.sh) one after another, in one run on one machine, and prints a
Markdown table of their figures with the ratios nabla/peer (issue 6).

Usage: tools/bench_peers.py [--epochs 3] [--models mlp,lenet] [--rounds 1] [--peers DIR]

Peak memory is the maximum resident set size that /usr/bin/time reports for each process, the
same measure for every program. Throughput ratios > 1 mean nabla is faster; the memory ratio
is nabla/peer (< 1: nabla uses less).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, cwd=None):
    """Runs one program under /usr/bin/time; returns its RESULT fields and peak RSS in MB."""
    full = ["/usr/bin/time", "-f", "MAXRSS_KB %M"] + cmd
    p = subprocess.run(full, cwd=cwd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    fields = {}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                fields.setdefault(k, v)  # acc1 appears twice when epochs == 1
            # the last-epoch accuracy is the last accN field
            accs = re.findall(r"acc(\d+)=([0-9.]+)", line)
            if accs:
                fields["acc_last"] = accs[-1][1]
        if line.startswith("MAXRSS_KB"):
            fields["peak_mb"] = int(line.split()[1]) / 1024
    if "train_sps_median3" not in fields:
        sys.stderr.write(f"no RESULT from {' '.join(cmd)} (exit {p.returncode}):\n{out[-2000:]}\n")
        return None
    return fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--models", default="mlp,lenet")
    ap.add_argument("--rounds", type=int, default=1, help="alternate the programs this many times; medians")
    ap.add_argument("--peers", default="/tmp/nabla-peers")
    a = ap.parse_args()

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
                r = run(cmd(m))
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


if __name__ == "__main__":
    main()
