"""Writes data/quickstart/: the embedded default experiment of configs/quickstart.yaml.

  model/       a tiny Qwen2-VL checkpoint (random weights, ~0.3 MB) with a WordLevel tokenizer whose vocabulary
               covers the dataset, the Qwen2-VL chat template and a Pillow-path image processor config
  images/      32x32 PNGs of coloured shapes on a light background (train and validation images differ in
               position and size)
  train.csv    url,instruction,response      ("What is shown in the image ?" -> "the image shows a red square")
  val.csv      url,query,annotation          (the evaluation columns of the seed's data)

The untuned model answers gibberish; LoRA fine-tuning teaches it to name the colour and the shape, which is what
the quickstart shows (falling loss, metrics above the untuned baseline).

Run: tools/oracle/.venv/bin/python tools/oracle/gen_quickstart.py
"""
import csv
import json
import pathlib
import shutil

import numpy as np
import torch
import transformers
from PIL import Image, ImageDraw
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "data" / "quickstart"
COLORS = {"red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (235, 200, 20),
          "purple": (140, 40, 170), "orange": (245, 130, 20)}
SHAPES = ["square", "circle", "triangle"]
QUESTION = "What is shown in the image ?"
VOCAB = 64
SPECIALS = {0: "<|endoftext|>", 1: "<|im_start|>", 2: "<|im_end|>", 3: "[UNK]", 60: "<|vision_start|>",
            61: "<|vision_end|>", 62: "<|image_pad|>", 63: "<|video_pad|>"}
WORDS = ("system user assistant You are a helpful . What is shown in the image ? Describe this picture an of "
         "shape colour color small big shows").split() + list(COLORS) + SHAPES


def make_tokenizer():
    vocab = {t: i for i, t in SPECIALS.items()}
    next_id = 4
    for w in WORDS:
        if w not in vocab:
            vocab[w] = next_id
            next_id += 1
    while next_id < 60:
        vocab[f"w{next_id}"] = next_id
        next_id += 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(SPECIALS[i], special=True, normalized=False) for i in (0, 1, 2, 60, 61, 62, 63)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="[UNK]", padding_side="left")


def make_model(seed=7):
    text = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=512,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, in_channels=3)
    cfg = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=62, video_token_id=63,
                        vision_start_token_id=60, vision_end_token_id=61, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg).eval()
    # transformers' init (std 0.02) gives near-constant logits; scale weights so activations stay O(1).
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_q" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
    return model


def draw(color, shape, rng, size=32):
    im = Image.new("RGB", (size, size), (235, 235, 228))
    d = ImageDraw.Draw(im)
    extent = int(rng.integers(14, 25))
    x0 = int(rng.integers(1, size - extent))
    y0 = int(rng.integers(1, size - extent))
    box = [x0, y0, x0 + extent, y0 + extent]
    fill = tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in COLORS[color])
    if shape == "square":
        d.rectangle(box, fill=fill)
    elif shape == "circle":
        d.ellipse(box, fill=fill)
    else:
        d.polygon([(x0 + extent / 2, y0), (x0, y0 + extent), (x0 + extent, y0 + extent)], fill=fill)
    return im


def main():
    readme = (OUT / "README.md").read_text() if (OUT / "README.md").exists() else None
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "images").mkdir(parents=True)
    if readme is not None:
        (OUT / "README.md").write_text(readme)
    folder = OUT / "model"
    model = make_model()
    model.save_pretrained(folder)
    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(folder)
    image_processor = Qwen2VLImageProcessorPil(patch_size=4, merge_size=2, temporal_patch_size=2,
                                               size={"shortest_edge": 32 * 32, "longest_edge": 32 * 32})
    image_processor.save_pretrained(folder)
    template = (ROOT / "tests" / "fixtures" / "chat" / "templates" / "qwen2_vl.jinja").read_text()
    (folder / "chat_template.jinja").write_text(template)
    (folder / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "transformers_version": transformers.__version__},
        indent=2) + "\n")

    rng = np.random.default_rng(2026)
    combos = [(c, s) for c in COLORS for s in SHAPES]
    splits = {"train": 4, "val": 1}  # images per colour/shape combination
    for split, per_combo in splits.items():
        rows = []
        for k in range(per_combo):
            for color, shape in combos:
                name = f"images/{split}_{color}_{shape}_{k}.png"
                draw(color, shape, rng).save(OUT / name, optimize=True)
                rows.append((name, QUESTION, f"the image shows a {color} {shape}"))
        rng.shuffle(rows)
        header = ["url", "instruction", "response"] if split == "train" else ["url", "query", "annotation"]
        with open(OUT / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
    print("wrote", OUT, sum(1 for _ in OUT.rglob("*") if _.is_file()), "files")


if __name__ == "__main__":
    main()
