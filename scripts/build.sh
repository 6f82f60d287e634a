#!/usr/bin/env bash
# Configures and builds vlmrt in ./build (or $VLMRT_BUILD_DIR). Extra arguments go to cmake's configure step,
# e.g. scripts/build.sh -DVLMRT_SANITIZE=address,undefined. VLMRT_BUILD_TARGETS limits what is built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VLMRT_BUILD_DIR:-$root/build}"
jobs="${VLMRT_JOBS:-$(nproc)}"
generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$build/Makefile" ]; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build" "${generator[@]}" "$@"
# VLMRT_BUILD_TARGETS: space-separated targets to build instead of everything (the quickstart builds one program).
targets=()
for t in ${VLMRT_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$jobs" "${targets[@]}"
