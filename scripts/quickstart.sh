#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds, and runs the main job on the embedded defaults.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
build="${VLMRT_BUILD_DIR:-$root/build}"

if [ -x "$build/cli/vlm_finetune_and_eval" ] && [ -f "$root/configs/quickstart.yaml" ]; then
  exec "$build/cli/vlm_finetune_and_eval" --config "$root/configs/quickstart.yaml"
fi

# The fine-tuning pipeline is not part of this build yet: show the most complete thing that exists, the
# checkpoint and image loaders, on the embedded sample checkpoint and images.
echo
echo "vlm_finetune_and_eval is not built yet in this version of vlmrt; showing what the runtime reads instead."
echo
"$build/cli/vlm_inspect" --version \
  --model "$root/tests/fixtures/io/sharded" \
  --image "$root/tests/fixtures/image/baseline.jpg" \
  --image "$root/tests/fixtures/image/orient6.jpg"
