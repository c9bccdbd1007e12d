#!/usr/bin/env bash
# Scaling of data-parallel training on one 2-core machine (docs/DISTRIBUTED.md): LeNet-5 and the
# MLP on Fashion-MNIST, one epoch, training samples/s from summary.json, for one process with 1
# and 2 threads and 2 MPI ranks of 1 thread; then the all-reduce benchmark. Needs
#   cargo build --release -p nabla-cli --features mpi
#   cargo build --release -p nabla-dist --features mpi --example allreduce_bench
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="$ROOT/target/release/nabla"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; cd "$work"
sps() { python3 -c "import json;print(round(json.load(open('$1/summary.json'))['train_samples_per_s']))"; }
for model in lenet5 mlp; do
  for bs in 128 512; do
    NABLA_NUM_THREADS=1 $B train --quiet --model $model --epochs 1 --batch-size $bs --test-subset 1000 --out $model-1x1-$bs
    NABLA_NUM_THREADS=2 $B train --quiet --model $model --epochs 1 --batch-size $bs --test-subset 1000 --out $model-1x2-$bs
    NABLA_NUM_THREADS=1 mpirun -n 2 -x NABLA_NUM_THREADS $B train --quiet --model $model --epochs 1 --batch-size $bs --test-subset 1000 --out $model-2x1-$bs
    echo "$model batch $bs: 1 proc 1 thread $(sps $model-1x1-$bs)  1 proc 2 threads $(sps $model-1x2-$bs)  2 ranks x 1 thread $(sps $model-2x1-$bs) samples/s"
  done
done
mpirun -n 2 "$ROOT/target/release/examples/allreduce_bench"
