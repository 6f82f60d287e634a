"""Dev-only check of a vlmrt training run folder against transformers + PEFT.

Usage:
  tools/oracle/.venv/bin/python tools/oracle/check_vlmrt_outputs.py RUN_DIR BASE_MODEL_DIR \\
      [--batch tests/fixtures/train/one_step.safetensors] [--tol 1e-4] \\
      [--vlmrt-logits FILE.safetensors [--logits-key logits]] [--no-merged]

RUN_DIR is what vlmrt's trainer wrote (core/train/trainer.h): RUN_DIR/lora_adapter/ (adapter_config.json +
adapter_model.safetensors, PEFT format) and RUN_DIR/final/ (the merged model, Hugging Face format).

(a) loads RUN_DIR/lora_adapter with PeftModel.from_pretrained on BASE_MODEL_DIR (a missing or unexpected adapter
    key is a failure: PEFT only warns and would silently run without the adapter), loads RUN_DIR/final with the
    class named by its config.json "architectures" and with AutoModelForImageTextToText, and compares the logits
    of all three on a fixed batch;
(b) with --vlmrt-logits, compares a logits tensor vlmrt wrote for the same batch with the PEFT logits.

The batch file holds tensors named batch_<forward argument> (batch_input_ids, batch_attention_mask,
batch_pixel_values, batch_image_grid_thw, batch_mm_token_type_ids for Qwen2-VL; whatever the model's forward takes
for other families, e.g. batch_pixel_values [B, 3, H, W] for LLaVA); batch_labels is ignored. Logits are compared
where batch_attention_mask is 1 (padded positions carry no meaning), all in float32.

Prints one line per comparison with the max abs diff and exits 1 when a diff exceeds --tol or anything fails to
load, 0 otherwise.
"""
import argparse
import json
import pathlib
import sys
import warnings

import torch
import transformers
from peft import PeftModel
from safetensors.torch import load_file


def model_class(folder):
    config = json.loads((pathlib.Path(folder) / "config.json").read_text())
    for name in config.get("architectures") or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    return transformers.AutoModelForImageTextToText


def load(cls, folder):
    return cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def read_batch(path):
    tensors = load_file(path)
    batch = {k[len("batch_"):]: v for k, v in tensors.items() if k.startswith("batch_") and k != "batch_labels"}
    if "input_ids" not in batch:
        raise SystemExit(f"{path}: no batch_input_ids tensor; pass a file with batch_<argument> tensors")
    return batch


def logits_of(model, batch):
    with torch.no_grad():
        return model(**batch, use_cache=False).logits.float()


def masked_max_diff(a, b, mask):
    if a.shape != b.shape:
        raise ValueError(f"shape {tuple(a.shape)} vs {tuple(b.shape)}")
    keep = mask.bool() if mask is not None else torch.ones(a.shape[:-1], dtype=torch.bool)
    return float((a - b).abs()[keep].max())


def load_adapter_strict(base_dir, adapter_dir):
    base = load(model_class(base_dir), base_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, adapter_dir).eval()
    bad = [str(w.message) for w in caught
           if "missing adapter keys" in str(w.message).lower() or "unexpected keys" in str(w.message).lower()]
    if bad:
        raise RuntimeError("PEFT did not load every adapter tensor: " + " | ".join(m[:300] for m in bad))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("base_model")
    ap.add_argument("--batch", default=str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" /
                                           "train" / "one_step.safetensors"))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--vlmrt-logits", help="a safetensors file vlmrt wrote with logits for the same batch")
    ap.add_argument("--logits-key", default="logits")
    ap.add_argument("--no-merged", action="store_true", help="skip RUN_DIR/final (a run with write_merged off)")
    args = ap.parse_args()

    run = pathlib.Path(args.run_dir)
    failures = []

    def report(name, diff):
        ok = diff <= args.tol
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max abs diff {diff:.3e} (tol {args.tol:g})")
        if not ok:
            failures.append(name)

    batch = read_batch(args.batch)
    mask = batch.get("attention_mask")
    try:
        peft_model = load_adapter_strict(args.base_model, run / "lora_adapter")
        reference = logits_of(peft_model, batch)
        base_logits = logits_of(load(model_class(args.base_model), args.base_model), batch)
        print(f"info adapter vs base model: max abs diff {masked_max_diff(reference, base_logits, mask):.3e} "
              "(0 would mean the adapter does nothing)")
    except Exception as e:  # noqa: BLE001 - any load failure is a failed check
        print(f"FAIL loading {run / 'lora_adapter'} with PEFT on {args.base_model}: {e}")
        return 1

    if not args.no_merged:
        final = run / "final"
        classes = [model_class(final) if (final / "config.json").exists() else None,
                   transformers.AutoModelForImageTextToText]
        for cls in dict.fromkeys(c for c in classes if c is not None):
            name = f"merged final/ ({cls.__name__}) vs PEFT adapter"
            try:
                diff = masked_max_diff(logits_of(load(cls, final), batch), reference, mask)
            except Exception as e:  # noqa: BLE001
                print(f"FAIL {name}: {e}")
                failures.append(name)
                continue
            report(name, diff)
        if classes[0] is None:
            print(f"FAIL {final}/config.json missing")
            failures.append("final config")

    if args.vlmrt_logits:
        name = f"vlmrt logits ({args.vlmrt_logits}:{args.logits_key}) vs PEFT adapter"
        try:
            theirs = load_file(args.vlmrt_logits)[args.logits_key].float()
            report(name, masked_max_diff(theirs, reference, mask))
        except Exception as e:  # noqa: BLE001
            print(f"FAIL {name}: {e}")
            failures.append(name)

    print("PASS" if not failures else f"FAILED: {len(failures)} check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
