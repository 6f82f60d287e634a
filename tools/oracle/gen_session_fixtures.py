"""Writes tests/fixtures/session/: a complete tiny Qwen2-VL checkpoint folder (the model of
tests/fixtures/model/qwen2_vl_gqa_tied_hub, a small WordLevel tokenizer whose special tokens sit at the model's
ids, the Qwen2-VL chat template, a Pillow-path image processor config) and what transformers' processor and
generate() make of conversations with images: input ids, pixel values, grids, generated ids and text.

Run (after gen_model_fixtures.py): tools/oracle/.venv/bin/python tools/oracle/gen_session_fixtures.py
"""
import json
import pathlib
import shutil

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from transformers import AutoModelForImageTextToText, PreTrainedTokenizerFast
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
OUT = ROOT / "session"
MODEL = ROOT / "model" / "qwen2_vl_gqa_tied_hub"
SPECIALS = {0: "<|endoftext|>", 1: "<|im_start|>", 2: "<|im_end|>", 248: "<|vision_start|>",
            249: "<|vision_end|>", 250: "<|image_pad|>", 251: "<|video_pad|>", 3: "[UNK]"}
WORDS = ("system user assistant You are a helpful . Describe this image picture What is in the room photo "
         "living kitchen table chair sofa lamp window two cats dog red blue green big small and of with on "
         "? , ! there it how many color colour").split()


def make_tokenizer():
    vocab = {}
    for i, t in SPECIALS.items():
        vocab[t] = i
    next_id = 4
    for w in WORDS:
        if w not in vocab:
            vocab[w] = next_id
            next_id += 1
    while next_id < 248:  # fill the rest of the model's vocabulary with filler words
        vocab[f"w{next_id}"] = next_id
        next_id += 1
    for i in range(252, 256):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(SPECIALS[i], special=True, normalized=False) for i in (0, 1, 2, 248, 249, 250, 251)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="[UNK]", padding_side="left")


def image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), rng.integers(0, 256, (h, w))], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    folder = OUT / "qwen2_vl_tiny"
    folder.mkdir(parents=True)
    model = AutoModelForImageTextToText.from_pretrained(MODEL, attn_implementation="eager").eval()
    model.save_pretrained(folder)
    tokenizer = make_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(patch_size=4, merge_size=2, temporal_patch_size=2,
                                               size={"shortest_edge": 16 * 16, "longest_edge": 40 * 40})
    template = (ROOT / "chat" / "templates" / "qwen2_vl.jinja").read_text()
    # torchvision (for the video processor the class insists on) is not in the pinned environment and videos are
    # not used here: skip that class check.
    transformers.processing_utils.ProcessorMixin.check_argument_for_proper_class = lambda self, name, arg: arg
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                                 chat_template=template)
    tokenizer.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(template)

    images = {"wide.png": image(57, 23, 1), "tall.png": image(19, 44, 2), "square.png": image(32, 32, 3)}
    for name, im in images.items():
        im.save(OUT / name)
    conversations = [
        {"name": "one_image", "images": ["wide.png"],
         "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image ."}]}]},
        {"name": "two_images_system", "images": ["tall.png", "square.png"],
         "messages": [{"role": "system", "content": "You are a helpful assistant ."},
                      {"role": "user", "content": [{"type": "text", "text": "What is in the room ?"}, {"type": "image"},
                                                   {"type": "image"}]}]},
        {"name": "text_only", "images": [],
         "messages": [{"role": "user", "content": "how many cats and dog ?"}]},
    ]
    cases = []
    tensors = {}
    for conv in conversations:
        text = processor.apply_chat_template(conv["messages"], add_generation_prompt=True, tokenize=False)
        pil = [Image.open(OUT / n).convert("RGB") for n in conv["images"]]
        inputs = processor(text=[text], images=pil or None, return_tensors="pt")
        gen_args = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], do_sample=False,
                        max_new_tokens=8, eos_token_id=2, pad_token_id=0)
        if pil:
            gen_args.update(pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                            mm_token_type_ids=inputs["mm_token_type_ids"])
        with torch.no_grad():
            out = model.generate(**gen_args)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        case = {"name": conv["name"], "images": conv["images"], "messages": conv["messages"], "prompt_text": text,
                "input_ids": inputs["input_ids"][0].tolist(), "generated": new,
                "generated_text": processor.batch_decode([new], skip_special_tokens=True)[0]}
        if pil:
            case["image_grid_thw"] = inputs["image_grid_thw"].tolist()
            tensors[conv["name"] + ".pixel_values"] = inputs["pixel_values"].contiguous()
        cases.append(case)
    save_file(tensors, OUT / "pixel_values.safetensors")
    (OUT / "cases.json").write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                                                "max_new_tokens": 8, "cases": cases}, indent=1) + "\n")
    print("wrote", OUT, [c["generated"] for c in cases])


if __name__ == "__main__":
    main()
