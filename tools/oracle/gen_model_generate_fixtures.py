"""Writes tests/fixtures/generate/models.json: transformers' generate() (greedy and beam search) on the tiny
checkpoints of tests/fixtures/model/ (made by gen_model_fixtures.py), with the prompts of their cases, so the C++
generation engine running the C++ models is checked token for token, batched and row by row.

Run (after gen_model_fixtures.py): tools/oracle/.venv/bin/python tools/oracle/gen_model_generate_fixtures.py
"""
import json
import pathlib

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
MODELS = ["qwen2_vl_gqa_tied_hub", "qwen2_5_vl_window_untied", "qwen2_tied", "llama_llama3_untied"]
IMAGE = 250
SETTINGS = [{"name": "greedy", "max_new_tokens": 10},
            {"name": "beam3", "max_new_tokens": 6, "num_beams": 3},
            {"name": "greedy_rep", "max_new_tokens": 8, "repetition_penalty": 1.4}]


def load(name):
    folder = ROOT / "model" / name
    config = json.loads((folder / "config.json").read_text())
    vision = "vision_config" in config
    cls = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    return cls.from_pretrained(folder, attn_implementation="eager").eval(), vision


def run(model, vision, inputs, setting):
    kw = {k: v for k, v in setting.items() if k != "name"}
    args = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], do_sample=False,
                eos_token_id=2, pad_token_id=0, **kw)
    if vision and "pixel_values" in inputs:
        args.update(pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                    mm_token_type_ids=(inputs["input_ids"] == IMAGE).int())
    with torch.no_grad():
        out = model.generate(**args)
    return out[:, inputs["input_ids"].shape[1]:].tolist()


def split_rows(inputs):
    """The rows of a left-padded batch as separate unpadded prompts, each with its own images."""
    rows = []
    patch_start = 0
    image_index = 0
    for r in range(inputs["input_ids"].shape[0]):
        keep = inputs["attention_mask"][r].bool()
        ids = inputs["input_ids"][r][keep].unsqueeze(0)
        row = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if "pixel_values" in inputs:
            n_images = int(((ids[0] == IMAGE).int().diff(prepend=torch.tensor([0])) == 1).sum())
            grids = inputs["image_grid_thw"][image_index:image_index + n_images]
            n_patches = int(grids.prod(-1).sum())
            if n_images:
                row["pixel_values"] = inputs["pixel_values"][patch_start:patch_start + n_patches]
                row["image_grid_thw"] = grids
            patch_start += n_patches
            image_index += n_images
        rows.append(row)
    return rows


def main():
    results = []
    for name in MODELS:
        model, vision = load(name)
        cases_dir = ROOT / "model" / name / "cases"
        for case_file in sorted(cases_dir.glob("*.safetensors")):
            if case_file.stem.endswith("bf16"):
                continue
            inputs = {k: v for k, v in load_file(case_file).items() if k != "logits" and k != "position_ids"}
            for setting in SETTINGS:
                entry = {"model": name, "case": case_file.stem, "setting": setting,
                         "batched": run(model, vision, inputs, setting)}
                if inputs["input_ids"].shape[0] > 1:
                    entry["rows"] = [run(model, vision, row, setting)[0] for row in split_rows(inputs)]
                results.append(entry)
    out = ROOT / "generate" / "models.json"
    out.write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                               "eos_token_id": 2, "pad_token_id": 0, "results": results}) + "\n")
    print("wrote", len(results), "results to", out)


if __name__ == "__main__":
    main()
