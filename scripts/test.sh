#!/usr/bin/env bash
# Command 2 of the README (and what CI runs): installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh" "$@"
build="${VLMRT_BUILD_DIR:-$root/build}"
ctest --test-dir "$build" --output-on-failure -j "${VLMRT_JOBS:-$(nproc)}"
