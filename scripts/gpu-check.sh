#!/usr/bin/env bash
# The GPU check, in two halves:
#
#   scripts/gpu-check.sh build   on the development machine (x86-64, no GPU needed): builds the
#                                release binary (--features cuda, without the compiled-in
#                                Fashion-MNIST: it reads data/fashion-mnist) and the GPU test
#                                binaries, and copies them with shared/bench/device_env.sh into
#                                .device/ (ignored by git; carry it to the GPU machine).
#   scripts/gpu-check.sh run     on the GPU machine, from the repository root: runs every GPU
#                                test binary with NABLA_REQUIRE_GPU=1 (a test that finds no GPU
#                                fails), lists the tests that ran on the GPU and those skipped,
#                                then trains LeNet-5 and ResNet-20 briefly on cuda and on the CPU
#                                and prints a table. Any failed step makes the script exit 1.
#
# One device call (the tree, about 33 MB, and .device fit the 64 MiB transfer):
#   run(command="bash scripts/gpu-check.sh run", carry=[".device"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/gpu-check.sh build|run}
dev=.device

if [ "$mode" = build ]; then
    set -e
    rm -rf "$dev" && mkdir -p "$dev"
    # A target folder of its own: these builds differ in features from the everyday ones.
    export CARGO_TARGET_DIR=target/gpu-check
    cargo build --release -p nabla-cli --no-default-features --features cuda
    cp "$CARGO_TARGET_DIR/release/nabla" "$dev/nabla"
    # The test binaries: cargo prints their paths with --no-run (JSON messages, one per artefact).
    copy_tests() { # package test...
        local pkg=$1; shift
        local args=()
        for t in "$@"; do args+=(--test "$t"); done
        cargo test --release --features nabla-core/cuda -p "$pkg" "${args[@]}" --no-run \
            --message-format=json 2>/dev/null |
            python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' |
            while read -r name exe; do cp "$exe" "$dev/test-$pkg-$name"; done
    }
    copy_tests nabla-core devices cuda_kernels pytorch_fixtures conv_pool_gradcheck \
        elementwise matmul_softmax reduce views_index autograd
    copy_tests nabla-nn devices
    copy_tests nabla-models devices
    cp ../shared/bench/device_env.sh "$dev/device_env.sh"
    cp ../shared/bench/pytorch_gpu.py "$dev/pytorch_gpu.py"
    # The fixture tests find their files through the path they were built in.
    pwd > "$dev/BUILD_ROOT"
    strip "$dev"/nabla "$dev"/test-* 2>/dev/null || true
    # Compressed: the tree (about 33 MB) and these must fit one 64 MiB transfer.
    gzip -9 "$dev"/nabla "$dev"/test-*
    ls -la "$dev"
    du -sh "$dev"
    exit 0
fi

[ "$mode" = run ] || { echo "unknown mode $mode (expected build or run)" >&2; exit 2; }
[ -f "$dev/BUILD_ROOT" ] || { echo "no $dev/BUILD_ROOT: run scripts/gpu-check.sh build first, and carry $dev" >&2; exit 2; }
# shellcheck disable=SC1091
source "$dev/device_env.sh"
# NOTE: the image has more than one cuDNN 9 (a system one and PyTorch's); cudarc opening one's
# libcudnn.so while cuDNN dlopens the other's sub-libraries fails with
# CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH. One folder of links to a single complete set (the
# set PyTorch uses where there is one), first on the library path, keeps them together.
cudnn_sets=$(find /opt/torch/.venv /usr/local /usr/lib/x86_64-linux-gnu -name 'libcudnn_cnn.so.9*' 2>/dev/null | xargs -r -n1 dirname | sort -u)
echo "cuDNN sets found: $(echo "$cudnn_sets" | paste -sd' ')"
cudnn_dir=$(echo "$cudnn_sets" | grep -m1 torch || echo "$cudnn_sets" | head -1)
if [ -n "$cudnn_dir" ]; then
    rm -rf /tmp/cudnn-one && mkdir -p /tmp/cudnn-one
    for f in "$cudnn_dir"/libcudnn*.so*; do ln -sf "$f" /tmp/cudnn-one/; done
    main=$(ls "$cudnn_dir"/libcudnn.so.9* 2>/dev/null | head -1)
    [ -n "$main" ] && ln -sf "$main" /tmp/cudnn-one/libcudnn.so
    export LD_LIBRARY_PATH="/tmp/cudnn-one:$LD_LIBRARY_PATH"
    echo "cuDNN used: $cudnn_dir"
fi
for f in "$dev"/*.gz; do gzip -dc "$f" > "${f%.gz}" && chmod +x "${f%.gz}"; done
export NABLA_REQUIRE_GPU=1
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || status=1

# Tests built elsewhere read their fixtures from the build's path: make it lead here.
root=$(cat "$dev/BUILD_ROOT")
if [ "$root" != "$PWD" ] && [ ! -e "$root" ]; then
    mkdir -p "$(dirname "$root")" && ln -s "$PWD" "$root"
fi

gpu_list="$out/tests-on-gpu.txt"
skip_list="$out/tests-skipped.txt"
: > "$gpu_list"
: > "$skip_list"
for t in "$dev"/test-*; do
    case $t in *.gz) continue ;; esac
    name=$(basename "$t")
    log="$out/$name.log"
    "$t" --test-threads=1 > "$log" 2>&1
    rc=$?
    # Which tests ran on the GPU: every test of the GPU-only binaries, the `::cuda` half of the
    # per-device ones. A GPU test that found no GPU says "skipped:" (and fails, as required).
    case $name in
        *cuda_kernels | test-nabla-nn-devices | test-nabla-models-devices) pattern='^test .* \.\.\. ok$' ;;
        *) pattern='^test .*::cuda \.\.\. ok$' ;;
    esac
    grep -E "$pattern" "$log" | sed -E "s/^test (.*) \.\.\. ok$/$name: \1/" >> "$gpu_list"
    grep -E "^skipped:" "$log" | sed "s/^/$name: /" >> "$skip_list"
    echo "== $name: $(grep -E '^test result:' "$log" | tail -1)"
    if [ $rc -ne 0 ]; then
        echo "   FAILED (exit $rc):"
        grep -E "^test .* FAILED$|panicked|assertion|left:|right:" "$log" | head -30 | sed 's/^/     /'
        status=1
    fi
done
echo
echo "tests that ran on the GPU ($(wc -l < "$gpu_list")), listed in $gpu_list:"
cut -d' ' -f2 "$gpu_list" | sed -E 's/::cuda$//' | paste -sd' ' | fold -w 160
echo "GPU tests skipped ($(wc -l < "$skip_list")):"
cat "$skip_list"
[ -s "$skip_list" ] && status=1

# Short trainings, the same settings on both devices (seeded; the CPU run uses every core).
rows="$out/train-rows.md"
: > "$rows"
train() { # name device model extra...
    local name=$1 device=$2 model=$3; shift 3
    local t0 t1
    t0=$(date +%s.%N)
    if "$dev/nabla" train --model "$model" --device "$device" --data-dir data/fashion-mnist \
        --out "/tmp/runs/$name-$device" "$@" > "$out/train-$name-$device.log" 2>&1; then
        t1=$(date +%s.%N)
        python3 - "$name" "$device" "/tmp/runs/$name-$device/summary.json" "$t0" "$t1" >> "$rows" <<'PY'
import json, sys
name, device, path, t0, t1 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
s = json.load(open(path))
top1 = s.get("test_top1", s.get("top1", float("nan")))
print(f"| {name} | {device} | {top1 * 100:.2f}% | {t1 - t0:.1f} s |")
PY
    else
        echo "| $name | $device | FAILED (see $out/train-$name-$device.log) | |" >> "$rows"
        tail -5 "$out/train-$name-$device.log" >&2
        status=1
    fi
}
rm -rf /tmp/runs
train lenet5 cuda lenet5 --epochs 2
train lenet5 cpu lenet5 --epochs 2
train resnet20 cuda resnet20 --epochs 2 --train-subset 10000 --test-subset 2000
train resnet20 cpu resnet20 --epochs 2 --train-subset 10000 --test-subset 2000
# A checkpoint trained on the GPU, evaluated on both devices: the same predictions (top-1 within
# one image in 10,000: the devices round differently).
ck=/tmp/runs/lenet5-cuda/checkpoint.safetensors
for dv in cpu cuda; do
    "$dev/nabla" eval --checkpoint "$ck" --device "$dv" --data-dir data/fashion-mnist --json \
        > "$out/eval-$dv.json" 2> "$out/eval-$dv.log" || { echo "eval on $dv FAILED" >&2; status=1; }
done
python3 - "$out/eval-cpu.json" "$out/eval-cuda.json" <<'PY' || status=1
import json, sys
a, b = (json.load(open(p))["top1"] for p in sys.argv[1:3])
print(f"the cuda-trained LeNet-5 evaluated on cpu: {a * 100:.2f}%, on cuda: {b * 100:.2f}%")
sys.exit(0 if abs(a - b) <= 1e-4 else 1)
PY
echo
echo "| model | device | test top-1 | wall time |"
echo "|---|---|---:|---:|"
cat "$rows"
echo
echo "GPU memory per epoch (flat when the caching allocator reuses its blocks):"
grep -h "gpu memory" "$out"/train-*-cuda.log || echo "(none printed)"

# Informational speed figures (GPU_CHECK_BENCH=1): nabla's benchmark on cuda beside PyTorch's
# (../shared/bench/pytorch_gpu.py, its first cases), in the same call. Not part of the verdict.
if [ "${GPU_CHECK_BENCH:-0}" = 1 ]; then
    echo
    echo "speed (informational), training samples/s on this GPU:"
    for m in mlp lenet5; do
        "$dev/nabla" bench --model "$m" --device cuda --epochs 2 --data-dir data/fashion-mnist --json 2>&1 | tail -1
    done
    BUDGET_S=20 python3 "$dev/pytorch_gpu.py" 2>&1 | grep -v skipped | head -5
fi
echo "gpu-check: $([ $status -eq 0 ] && echo PASSED || echo FAILED)"
exit $status
