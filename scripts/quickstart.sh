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

# The fine-tuning pipeline is not part of this build yet: run the most complete thing that exists instead, on the
# embedded tiny Qwen2-VL checkpoint (random weights, so its answer is gibberish; it equals transformers' output).
model="$root/tests/fixtures/session/qwen2_vl_tiny"
echo
echo "vlm_finetune_and_eval is not built yet in this version of vlmrt. Running instead:"
echo "  1. vlm_inspect: what vlmrt reads from the embedded checkpoint and an image"
echo "  2. vlm_generate: the full inference path (chat template, tokenizer, image processor, model, generation)"
echo
"$build/cli/vlm_inspect" --version --model "$model" --image "$root/tests/fixtures/session/wide.png"
echo
"$build/cli/vlm_generate" --model "$model" --image "$root/tests/fixtures/session/wide.png" \
  --max-new-tokens 8 --json "Describe this image ."
