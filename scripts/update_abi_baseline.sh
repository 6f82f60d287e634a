#!/bin/sh
# Regenerates the committed ABI baseline abi/vlmrt.abi from a built libvlmrt (needs abigail-tools and a build
# with debug info, e.g. RelWithDebInfo, the default):
#   scripts/update_abi_baseline.sh [BUILD_DIR]      (default: build)
# Run it when the C API changed on purpose; when it changed incompatibly (a function removed, a struct
# changed), bump VLMRT_ABI_VERSION in CMakeLists.txt and include/vlmrt.h too. The test test_abi compares the
# library against this file with abidiff.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
lib="$build/capi/libvlmrt.so"
if [ ! -f "$lib" ]; then
  echo "update_abi_baseline: $lib does not exist; build the vlmrt target first" >&2
  exit 1
fi
mkdir -p "$root/abi"
abidw --no-corpus-path --no-comp-dir-path --no-show-locs --exported-interfaces-only \
  --headers-dir "$root/include" --drop-private-types "$lib" \
  --out-file "$root/abi/vlmrt.abi"
echo "wrote $root/abi/vlmrt.abi ($(grep -c '<elf-symbol name=' "$root/abi/vlmrt.abi") exported symbols)"
