#!/usr/bin/env bash
# The foundation's op benchmark beside PyTorch's, in one sitting on one machine, alternating
# so that both see the same conditions; prints both and the ratios nabla/PyTorch (higher is
# better for GFLOP/s, and we print PyTorch-time/nabla-time for the conv timings).
# Usage: tools/bench_ops.sh [ROUNDS=2]   (needs python3 with torch for the PyTorch side)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
cargo bench -p nabla-core --bench ops --no-run 2>/dev/null
bin=$(ls -t target/release/deps/ops-* | grep -v '\.d$' | head -1)
peer=${PYTORCH_OPS:-../shared/bench/pytorch_cpu_ops.py}
for r in $(seq "$rounds"); do
  NABLA_NUM_THREADS=${NABLA_NUM_THREADS:-2} "$bin" --json > "/tmp/nabla_ops_$r.json"
  python3 "$peer" --threads 2 --json > "/tmp/torch_ops_$r.json"
done
python3 - "$rounds" <<'PY'
import json, statistics, sys
r = int(sys.argv[1])
n = [json.load(open(f"/tmp/nabla_ops_{i}.json")) for i in range(1, r + 1)]
t = [json.load(open(f"/tmp/torch_ops_{i}.json")) for i in range(1, r + 1)]
print(f"{'figure':<28}{'nabla':>12}{'PyTorch':>12}{'ratio':>8}")
for k in n[0]:
    if k == "threads" or k not in t[0]:
        continue
    a = statistics.median(x[k] for x in n); b = statistics.median(x[k] for x in t)
    ratio = a / b if k.endswith("gflops") else b / a
    print(f"{k:<28}{a:>12.3f}{b:>12.3f}{ratio:>8.2f}")
print("ratio > 1: nabla faster (GFLOP/s: nabla/PyTorch; times: PyTorch/nabla). torch", t[0].get("torch"))
PY
