#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a few seconds each, starting from
# the committed seeds, and fails on any crash, hang or allocation over the limit.
#
#   scripts/fuzz-smoke.sh [SECONDS]     (default 20 per target)
#
# Needs a nightly toolchain (libFuzzer's instrumentation): it installs one with rustup where
# none is there; where that cannot be done either, it says so and passes.
# The corpus grown during the run goes to a temporary folder, so fuzz/corpus/ stays as
# committed; a crashing input is kept in fuzz/artifacts/<target>/. See docs/RELIABILITY.md.
set -euo pipefail

seconds="${1:-20}"
cd "$(dirname "$0")/../fuzz"

if ! cargo +nightly --version >/dev/null 2>&1; then
    if ! timeout 600 rustup toolchain install nightly --profile minimal; then
        echo "fuzz smoke SKIPPED: no nightly toolchain, and rustup could not install one"
        exit 0
    fi
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The same flags as the long runs in docs/RELIABILITY.md: the targets cap one tensor at
# 64 MiB, so a single allocation of 256 MiB or more is a bug.
flags=(-rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export NABLA_NUM_THREADS=1 RAYON_NUM_THREADS=1

cargo +nightly fuzz build
failed=()
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$work/$target"
    if ! cargo +nightly fuzz run "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" "${flags[@]}" 2>"$work/$target.log"; then
        tail -n 60 "$work/$target.log"
        failed+=("$target")
    else
        grep -E '^Done|^#[0-9]+.*DONE' "$work/$target.log" | tail -n 2 || true
    fi
done

if ((${#failed[@]})); then
    echo "fuzz smoke FAILED: ${failed[*]} (reproducers in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz smoke passed: every target ran ${seconds}s without a crash"
