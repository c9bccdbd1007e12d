#!/usr/bin/env bash
# The CUDA check of issue 7, in two halves:
#
#   scripts/gpu-check.sh build   on the development machine (x86-64, no GPU needed): builds the
#                                release binary and the GPU test binaries with --features cuda
#                                and copies them, with shared/bench/device_env.sh, into .device/
#                                (ignored by git; carry it to the GPU machine, < 64 MiB).
#   scripts/gpu-check.sh run     on the GPU machine, from the repository root: runs the GPU
#                                tests (each op on cuda:0 against the CPU, forward and backward),
#                                then a short training of LeNet-5 and of CIFAR ResNet-20 on
#                                Fashion-MNIST on cuda and on the CPU, and prints a table last.
#
#   scripts/gpu-check.sh stash   moves the large tracked files (the bundled Fashion-MNIST,
#                                30 MB, already compiled into the binary, and the 45 MB
#                                ResNet-18 fixture) into the ignored .device-stash/: the
#                                device tool sends at most 64 MiB (tree + .device is 45 MB).
#   scripts/gpu-check.sh restore puts them back (git status is clean again).
#
# Device call (one, under 8 minutes), between stash and restore:
#   run(command="bash scripts/gpu-check.sh run", carry=[".device"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/gpu-check.sh build|stash|run|restore}
dev=.device

if [ "$mode" = build ]; then
    mkdir -p "$dev"
    cargo build --release --features cuda -p nabla-cli
    cp target/release/nabla "$dev/nabla"
    # The test binaries: cargo prints their paths with --no-run (JSON messages, one per artefact).
    cargo test --release --features cuda -p nabla-core --test devices --test cuda_kernels --no-run \
        --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' |
        while read -r name exe; do cp "$exe" "$dev/test-$name"; done
    cp ../shared/bench/device_env.sh "$dev/device_env.sh"
    strip "$dev"/nabla "$dev"/test-* 2>/dev/null || true
    du -sh "$dev"
    exit 0
fi

big="data/fashion-mnist crates/nabla-models/tests/fixtures/resnet18.safetensors"
if [ "$mode" = stash ]; then
    for f in $big; do mkdir -p ".device-stash/$(dirname "$f")"; mv "$f" ".device-stash/$f"; done
    echo "moved aside: $big (scripts/gpu-check.sh restore puts them back)"
    exit 0
fi
if [ "$mode" = restore ]; then
    for f in $big; do [ -e ".device-stash/$f" ] && mv ".device-stash/$f" "$f"; done
    rm -rf .device-stash
    git status --short
    exit 0
fi

[ "$mode" = run ] || { echo "unknown mode $mode" >&2; exit 2; }
# shellcheck disable=SC1091
source "$dev/device_env.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
status=0
for t in "$dev"/test-*; do
    echo "== $t"
    "$t" --test-threads=1 2>&1 | tee "$out/$(basename "$t").log" | grep -E "^test |test result|skipped|panicked" || status=1
done

# Short trainings, the same settings on both devices (seeded; the CPU run uses every core).
train() { # name device model extra...
    local name=$1 device=$2 model=$3; shift 3
    local t0; t0=$(date +%s.%N)
    if "$dev/nabla" train --model "$model" --device "$device" --out "/tmp/runs/$name-$device" "$@" \
        > "$out/train-$name-$device.log" 2>&1; then
        local t1; t1=$(date +%s.%N)
        python3 - "$name" "$device" "/tmp/runs/$name-$device/summary.json" "$t0" "$t1" <<'PY'
import json, sys
name, device, path, t0, t1 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
s = json.load(open(path))
top1 = s.get("test_top1", s.get("top1", float("nan")))
print(f"| {name} | {device} | {top1 * 100:.2f}% | {t1 - t0:.1f} s |")
PY
    else
        echo "| $name | $device | FAILED (see $out/train-$name-$device.log) | |"
        tail -5 "$out/train-$name-$device.log" >&2
        status=1
    fi
}
rows=$( {
    train lenet5 cuda lenet5 --epochs 2
    train lenet5 cpu lenet5 --epochs 2
    train resnet20 cuda resnet20 --epochs 2 --train-subset 20000 --test-subset 5000
    train resnet20 cpu resnet20 --epochs 2 --train-subset 20000 --test-subset 5000
} )
echo
echo "| model | device | test top-1 | wall time |"
echo "|---|---|---:|---:|"
echo "$rows"
echo
echo "GPU memory per epoch (flat when the caching allocator reuses its blocks):"
grep -h "gpu memory" "$out"/train-*-cuda.log || echo "(none printed)"
exit $status
