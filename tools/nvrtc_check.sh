#!/usr/bin/env bash
# Compiles every CUDA kernel of nabla through NVRTC on a machine without a GPU, then (when
# ptxas is available) prints a register/spill report per kernel for sm_90.
#
#   tools/nvrtc_check.sh            # venv in /tmp/nabla-nvrtc-venv, reused across runs
#   NVRTC_VENV=/some/dir tools/nvrtc_check.sh
#
# NVRTC and ptxas come from PyPI (nvidia-cuda-nvrtc, nvidia-cuda-nvcc, CUDA 13 series), so no
# CUDA toolkit is needed. Catch kernel compile errors here, not on the lent GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${NVRTC_VENV:-/tmp/nabla-nvrtc-venv}
ARCH=${PTXAS_ARCH:-sm_90}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
find_lib() { find "$VENV" -name 'libnvrtc.so*' -print -quit 2>/dev/null; }
if [ -z "$(find_lib)" ]; then
    "$VENV/bin/pip" install --quiet nvidia-cuda-nvrtc
fi
NVRTC_LIB=$(dirname "$(find_lib)")
export LD_LIBRARY_PATH="$NVRTC_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "libnvrtc: $NVRTC_LIB"

PTX_DIR=$(mktemp -d /tmp/nabla-ptx.XXXXXX)
export NABLA_PTX_DIR="$PTX_DIR"
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/nabla-cuda-target} \
    cargo test -p nabla-core --features cuda --test cuda_kernels -- --nocapture --exact nvrtc_compiles_every_kernel

# ptxas (optional): from nvidia-cuda-nvcc.
PTXAS=$(find "$VENV" -name ptxas -type f -print -quit 2>/dev/null || true)
if [ -z "$PTXAS" ]; then
    "$VENV/bin/pip" install --quiet nvidia-cuda-nvcc >/dev/null 2>&1 || true
    PTXAS=$(find "$VENV" -name ptxas -type f -print -quit 2>/dev/null || true)
fi
if [ -z "$PTXAS" ]; then
    echo "ptxas not available (pip install nvidia-cuda-nvcc failed): no register report"
    exit 0
fi
echo
echo "ptxas -v for $ARCH (registers, spills, shared memory per kernel):"
status=0
for ptx in "$PTX_DIR"/*_compute_90.ptx; do
    module=$(basename "$ptx" _compute_90.ptx)
    if ! out=$("$PTXAS" -v -arch="$ARCH" -o /dev/null "$ptx" 2>&1); then
        echo "$module: ptxas failed"; echo "$out"; status=1; continue
    fi
    # Pair each "Compiling entry function 'x'" with its "Used N registers" line.
    echo "$out" | awk -v m="$module" '
        /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); fn = substr($0, RSTART + 1, RLENGTH - 2) }
        /bytes spill stores/ { spill = $0; sub(/^.*: /, "", spill) }
        /Used [0-9]+ registers/ { reg = $0; sub(/^.*Used /, "", reg); printf "  %-8s %-28s %s | %s\n", m, fn, reg, spill }'
done
rm -rf "$PTX_DIR"
exit $status
