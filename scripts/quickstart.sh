#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds, and runs the main job on the embedded defaults:
# vlm_finetune_and_eval --config configs/quickstart.yaml (a tiny Qwen2-VL learns to name coloured shapes with two
# LoRA variants, evaluated next to the untuned model). Outputs go to results/quickstart/ (or $VLMRT_QUICKSTART_OUT).
# Running it again skips finished runs; delete the output folder to start over.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install_deps.sh"
# Only the main program and what it links (not the test suite): scripts/build.sh passes --target to cmake --build.
VLMRT_BUILD_TARGETS=vlm_finetune_and_eval "$root/scripts/build.sh"
build="${VLMRT_BUILD_DIR:-$root/build}"
out="${VLMRT_QUICKSTART_OUT:-$root/results/quickstart}"

cd "$root"
status=0
"$build/cli/vlm_finetune_and_eval" --config "$root/configs/quickstart.yaml" --output-dir "$out" "$@" || status=$?
echo
if [ -f "$out/ablation_summary.json" ]; then
  echo "Outputs are in $out/:"
  echo "  ablation_summary.md, ablation_summary.json   every run side by side"
  for run in "$out"/*/; do
    echo "  $(basename "$run")/"
  done
  echo "Each run folder: lora_adapter/ (PEFT adapter), final/ (merged model), checkpoints/, metrics.json (loss"
  echo "history), predictions.jsonl, generation_metrics.json, run.log. Run this script again to skip finished runs;"
  echo "delete $out to start over."
fi
exit "$status"
