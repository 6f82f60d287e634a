#!/usr/bin/env bash
# Creates tools/oracle/.venv with the pinned reference libraries (requirements.txt).
# Developers only: the product, its tests and CI never run Python.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ["torch", "transformers", "peft", "tokenizers", "safetensors", "pillow",
             "sacrebleu", "rouge-score", "nltk", "numpy", "jinja2", "accelerate", "pypng", "sentencepiece"]:
    print(f"{name}=={md.version(name)}")
PY
