"""Writes tests/fixtures/llava/: tiny random LlavaForConditionalGeneration checkpoints and what transformers
computes for them, for the C++ LLaVA tests (tests/model/test_llava*.cpp).

  <config>/config.json + model.safetensors   checkpoints in either key layout (see README.md)
  <config>/cases/<case>.safetensors          input_ids, attention_mask, position_ids (what generate() passes),
                                             pixel_values [N, 3, H, W], logits (eager, float32, every position)
  generate.json                              generate() greedy / beam on the cases, batched and row by row
  session/                                   a complete checkpoint folder (Llama-style byte-fallback BPE tokenizer
                                             with an <image> token, LLaVA chat template, CLIP preprocessor) and what
                                             LlavaProcessor + generate() make of conversations with image files
  lora/                                      a PEFT adapter, the PeftModel's logits and one training step (AdamW)

Each checkpoint is reloaded with from_pretrained and must give identical logits; sdpa must agree with eager.

Run: tools/oracle/.venv/bin/python tools/oracle/gen_llava_fixtures.py
"""
import json
import pathlib
import shutil

import numpy as np
import peft
import safetensors.torch
import tokenizers
import torch
import transformers
from PIL import Image
from safetensors.torch import load_file, save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
from transformers import (CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                          PreTrainedTokenizerFast)

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "llava"
VOCAB = 256
IMAGE = 250
SDPA_TOLERANCE = 1e-4
SETTINGS = [{"name": "greedy", "max_new_tokens": 10},
            {"name": "beam3", "max_new_tokens": 6, "num_beams": 3}]


def randomize(model, seed):
    """transformers' init (std 0.02) gives near-constant logits; scale weights so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1 and "class_embedding" not in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "position_embedding" in name or "class_embedding" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def llava_config(*, vocab=VOCAB, image_token=IMAGE, kv_heads, tied, layer, strategy, image_size, rope=None,
                 projector_bias=True, vision_layers=3, text_hidden=64, text_layers=2):
    text = dict(model_type="llama", vocab_size=vocab, hidden_size=text_hidden, intermediate_size=96,
                num_hidden_layers=text_layers, num_attention_heads=4, num_key_value_heads=kv_heads,
                rms_norm_eps=1e-5, max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                tie_word_embeddings=tied,
                rope_parameters=rope or {"rope_type": "default", "rope_theta": 10000.0})
    vision = dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
                  num_hidden_layers=vision_layers, num_attention_heads=2, image_size=image_size, patch_size=14,
                  projection_dim=16, layer_norm_eps=1e-5, hidden_act="quick_gelu")
    cfg = LlavaConfig(text_config=text, vision_config=vision, image_token_index=image_token,
                      vision_feature_layer=layer, vision_feature_select_strategy=strategy,
                      projector_hidden_act="gelu", multimodal_projector_bias=projector_bias,
                      tie_word_embeddings=tied, image_seq_length=(image_size // 14) ** 2)
    cfg._attn_implementation = "eager"
    return cfg


def layout_key(name, layout):
    """transformers 5.23's names (model.language_model., model.vision_tower.embeddings...) -> the key layout:
    "new" as is; "v4" (transformers 4.52 .. 4.x saves) with the CLIPVisionModel's vision_model. level;
    "hub" (the llava-hf Hub checkpoints) language_model.model..., language_model.lm_head, vision_tower.vision_model...
    """
    if layout == "new":
        return name
    if name.startswith("model.vision_tower."):
        name = "model.vision_tower.vision_model." + name[len("model.vision_tower."):]
    if layout == "v4":
        return name
    if name.startswith("model.language_model."):
        return "language_model.model." + name[len("model.language_model."):]
    if name == "lm_head.weight":
        return "language_model.lm_head.weight"
    if name.startswith("model."):
        return name[len("model."):]
    return name


def hub_config(cfg):
    """config.json as the llava-hf checkpoints write it: image_token_index, text/vision sub-dicts."""
    d = json.loads(cfg.to_json_string())
    d["image_token_index"] = d.pop("image_token_id", cfg.image_token_id)
    d["architectures"] = ["LlavaForConditionalGeneration"]
    return d


def save_checkpoint(model, folder, layout, config_dict):
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue
        state[layout_key(name, layout)] = tensor.detach().contiguous().clone()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")


def tokens_per_image(cfg):
    n = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    return n if cfg.vision_feature_select_strategy == "default" else n + 1


def prompt(g, n_tokens, images, text_lens):
    ids = [1] + torch.randint(3, 240, (text_lens[0],), generator=g).tolist()
    for tail in text_lens[1:images + 1]:
        ids += [IMAGE] * n_tokens + torch.randint(3, 240, (tail,), generator=g).tolist()
    return ids


def left_pad(rows):
    length = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, length - len(r):] = torch.tensor(r)
        mask[i, length - len(r):] = 1
    return ids, mask


def generate_positions(mask):
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def cases_for(cfg, g):
    n = tokens_per_image(cfg)
    size = cfg.vision_config.image_size
    rows = {
        "one_image": ([prompt(g, n, 1, [4, 6])], 1),
        "two_images": ([prompt(g, n, 2, [3, 4, 5])], 2),
        "no_image": ([[1] + torch.randint(3, 240, (11,), generator=g).tolist()], 0),
        "batch_left_pad": ([prompt(g, n, 1, [2, 3]), prompt(g, n, 2, [3, 2, 6])], 3),
    }
    out = []
    for name, (r, images) in rows.items():
        ids, mask = left_pad(r)
        pixels = torch.randn(images, 3, size, size, generator=g) if images else None
        out.append((name, ids, mask, pixels))
    return out


def forward(model, ids, mask, pixels):
    kw = dict(input_ids=ids, attention_mask=mask, position_ids=generate_positions(mask))
    if pixels is not None:
        kw["pixel_values"] = pixels.to(model.dtype)
    with torch.no_grad():
        return model(**kw).logits.float()


def write_case(folder, name, tensors):
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "cases" / f"{name}.safetensors"))


def make_model(name, layout, seed, manifest, **cfg_args):
    torch.manual_seed(seed)
    cfg = llava_config(**cfg_args)
    model = LlavaForConditionalGeneration(cfg).eval()
    randomize(model, seed)
    folder = OUT / name
    save_checkpoint(model, folder, layout, hub_config(cfg) if layout == "hub" else json.loads(cfg.to_json_string()))
    reloaded = LlavaForConditionalGeneration.from_pretrained(str(folder), attn_implementation="eager").eval()
    sdpa = LlavaForConditionalGeneration.from_pretrained(str(folder), attn_implementation="sdpa").eval()
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for case, ids, mask, pixels in cases_for(cfg, g):
        logits = forward(model, ids, mask, pixels)
        assert torch.equal(logits, forward(reloaded, ids, mask, pixels)), f"{name}/{case}: reload changed logits"
        sdpa_diff = (forward(sdpa, ids, mask, pixels) - logits)[mask.bool()].abs().max().item()
        assert sdpa_diff < SDPA_TOLERANCE, f"{name}/{case}: sdpa differs from eager by {sdpa_diff}"
        tensors = {"input_ids": ids, "attention_mask": mask, "position_ids": generate_positions(mask),
                   "logits": logits}
        if pixels is not None:
            tensors["pixel_values"] = pixels
        write_case(folder, case, tensors)
        cases.append({"name": case, "sdpa_max_abs_diff": sdpa_diff, "max_abs_logit": logits.abs().max().item()})
    # bf16: the same weights rounded to bfloat16, computed in bfloat16.
    case, ids, mask, pixels = cases_for(cfg, torch.Generator().manual_seed(seed + 1))[0]
    bf16 = LlavaForConditionalGeneration.from_pretrained(str(folder), attn_implementation="eager",
                                                         dtype=torch.bfloat16).eval()
    logits16 = forward(bf16, ids, mask, pixels)
    logits32 = forward(reloaded, ids, mask, pixels)
    write_case(folder, "one_image_bf16", {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels,
                                          "logits": logits16, "logits_fp32": logits32})
    manifest[name] = {"layout": layout, "tokens_per_image": tokens_per_image(cfg), "cases": cases,
                      "bf16_vs_fp32_max_abs_diff": (logits16 - logits32).abs().max().item(),
                      **{k: v for k, v in cfg_args.items()}}
    return reloaded, cfg


def split_rows(ids, mask, pixels, n_tokens):
    rows, used = [], 0
    for r in range(ids.shape[0]):
        row_ids = ids[r][mask[r].bool()].unsqueeze(0)
        images = int((row_ids == IMAGE).sum()) // n_tokens
        rows.append((row_ids, torch.ones_like(row_ids), pixels[used:used + images] if images else None))
        used += images
    return rows


def run_generate(model, ids, mask, pixels, setting):
    kw = {k: v for k, v in setting.items() if k != "name"}
    args = dict(input_ids=ids, attention_mask=mask, do_sample=False, eos_token_id=2, pad_token_id=0, **kw)
    if pixels is not None:
        args["pixel_values"] = pixels
    with torch.no_grad():
        out = model.generate(**args)
    return out[:, ids.shape[1]:].tolist()


def make_generate(models):
    results = []
    for name, (model, cfg) in models.items():
        for case_file in sorted((OUT / name / "cases").glob("*.safetensors")):
            if case_file.stem.endswith("bf16"):
                continue
            t = load_file(case_file)
            pixels = t.get("pixel_values")
            for setting in SETTINGS:
                entry = {"model": name, "case": case_file.stem, "setting": setting,
                         "batched": run_generate(model, t["input_ids"], t["attention_mask"], pixels, setting)}
                if t["input_ids"].shape[0] > 1:
                    entry["rows"] = [run_generate(model, i, m, p, setting)[0]
                                     for i, m, p in split_rows(t["input_ids"], t["attention_mask"], pixels,
                                                               tokens_per_image(cfg))]
                results.append(entry)
    (OUT / "generate.json").write_text(json.dumps({"eos_token_id": 2, "pad_token_id": 0, "results": results}) + "\n")


# ---- session: a complete checkpoint folder --------------------------------------------------------------------

CORPUS = ("USER: What is in this image ? ASSISTANT: A red cat on a blue sofa . Describe the picture . "
          "There are two dogs and a green lamp in the living room . How many chairs ? Three chairs , one table . "
          "What colour is the sky ? The sky is blue . Is there a window ? Yes , a big window with curtains .")


def make_tokenizer(folder):
    """A LLaMA-style SentencePiece BPE (Prepend/Replace normalizer, byte fallback, <s> post-processor) trained on
    a tiny corpus, with <unk> <s> </s>, the 256 byte tokens, the learnt pieces, then <image> and <pad>."""
    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer_tok.normalizer = normalizer
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"],
                                             show_progress=False)
    trainer_tok.train_from_iterator([CORPUS], trainer)
    learnt = json.loads(trainer_tok.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece, _ in sorted(learnt["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizer
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    tok.add_special_tokens([AddedToken("<unk>", special=True), AddedToken("<s>", special=True),
                            AddedToken("</s>", special=True)])
    tok.add_tokens([AddedToken("<image>", special=True, normalized=False)])
    tok.add_special_tokens([AddedToken("<pad>", special=True, normalized=False)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", padding_side="left")
    fast.save_pretrained(folder)
    return fast


def image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), rng.integers(0, 256, (h, w))], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def make_session(manifest):
    out = OUT / "session"
    folder = out / "llava_tiny"
    folder.mkdir(parents=True)
    tokenizer = make_tokenizer(folder)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    pad_id = tokenizer.convert_tokens_to_ids("<pad>")
    torch.manual_seed(41)
    cfg = llava_config(vocab=len(tokenizer), image_token=image_id, kv_heads=2, tied=False, layer=-2,
                       strategy="default", image_size=28)
    cfg.text_config.pad_token_id = pad_id
    model = LlavaForConditionalGeneration(cfg).eval()
    randomize(model, 41)
    model.save_pretrained(folder)
    # The llava-hf processor settings (CLIP-L/14-336 preprocessing scaled down to 28 px).
    image_processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                         resample=3, do_center_crop=True, do_normalize=True, do_rescale=True,
                                         image_mean=[0.48145466, 0.4578275, 0.40821073],
                                         image_std=[0.26862954, 0.26130258, 0.27577711], do_convert_rgb=True)
    template = LLAVA_TEMPLATE
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=template)
    # The file layout of the llava-hf Hub checkpoints: preprocessor_config.json for the image processor and a
    # processor_config.json with the LlavaProcessor settings only (transformers 5 would nest both in one file).
    image_processor.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(template)
    (folder / "processor_config.json").write_text(json.dumps(
        {"image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": 14,
         "processor_class": "LlavaProcessor", "vision_feature_select_strategy": "default"}, indent=2) + "\n")
    images = {"wide.png": image(57, 23, 1), "tall.png": image(19, 44, 2), "square.png": image(32, 32, 3)}
    for name, im in images.items():
        im.save(out / name)
    conversations = [
        {"name": "one_image", "images": ["wide.png"],
         "messages": [{"role": "user", "content": [{"type": "image"},
                                                   {"type": "text", "text": "What is in this image?"}]}]},
        {"name": "two_images", "images": ["tall.png", "square.png"],
         "messages": [{"role": "user", "content": [{"type": "text", "text": "Describe the picture ."},
                                                   {"type": "image"}, {"type": "image"}]}]},
        {"name": "text_only", "images": [],
         "messages": [{"role": "user", "content": [{"type": "text", "text": "How many chairs ? ünïcödé"}]}]},
    ]
    cases, tensors = [], {}
    for conv in conversations:
        pil = [Image.open(out / n).convert("RGB") for n in conv["images"]]
        text = processor.apply_chat_template(conv["messages"], add_generation_prompt=True, tokenize=False)
        # What processor.apply_chat_template(tokenize=True) does: special tokens unless the text starts with BOS.
        inputs = processor(text=[text], images=pil or None, return_tensors="pt",
                           add_special_tokens=not text.startswith(tokenizer.bos_token))
        gen = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], do_sample=False,
                   max_new_tokens=8, eos_token_id=2, pad_token_id=pad_id)
        if pil:
            gen["pixel_values"] = inputs["pixel_values"]
        with torch.no_grad():
            new = model.generate(**gen)[0, inputs["input_ids"].shape[1]:].tolist()
        case = {"name": conv["name"], "images": conv["images"], "messages": conv["messages"], "prompt_text": text,
                "input_ids": inputs["input_ids"][0].tolist(), "generated": new,
                "generated_text": processor.batch_decode([new], skip_special_tokens=True)[0]}
        if pil:
            tensors[conv["name"] + ".pixel_values"] = inputs["pixel_values"].contiguous()
        cases.append(case)
    save_file(tensors, str(out / "pixel_values.safetensors"))
    (out / "cases.json").write_text(json.dumps({"max_new_tokens": 8, "image_token_id": image_id,
                                                "cases": cases}, indent=1, ensure_ascii=False) + "\n")
    manifest["session"] = {"vocab": len(tokenizer), "image_token_id": image_id, "pad_token_id": pad_id}


# llava-hf/llava-1.5-7b-hf's chat_template (processor_config / chat_template.json).
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")


# ---- LoRA: a PEFT adapter and one training step ----------------------------------------------------------------

def make_lora(name, manifest):
    folder = OUT / "lora"
    folder.mkdir(parents=True)
    model = LlavaForConditionalGeneration.from_pretrained(str(OUT / name), attn_implementation="eager").eval()
    cfg = model.config
    lora_cfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none",
                               target_modules=r".*language_model.*\.(q_proj|v_proj)")
    pm = peft.get_peft_model(model, lora_cfg)
    g = torch.Generator().manual_seed(77)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    pm.peft_config["default"].base_model_name_or_path = "tests/fixtures/llava/" + name
    pm.save_pretrained(str(folder / "adapter"))
    # The batch: two rows, prompt (with images) + answer, left-padded; labels = ids with prompt and pads -100.
    n = tokens_per_image(cfg)
    size = cfg.vision_config.image_size
    prompts = [prompt(g, n, 1, [3, 4]), prompt(g, n, 2, [2, 3, 2])]
    answers = [torch.randint(3, 240, (5,), generator=g).tolist() + [2], torch.randint(3, 240, (3,), generator=g).tolist() + [2]]
    rows = [p + a for p, a in zip(prompts, answers)]
    ids, mask = left_pad(rows)
    labels = torch.full_like(ids, -100)
    for r, a in enumerate(answers):
        labels[r, ids.shape[1] - len(a):] = torch.tensor(a)
    pixels = torch.randn(3, 3, size, size, generator=g)
    pos = generate_positions(mask)
    pm.eval()
    with torch.no_grad():
        logits = pm(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixels).logits.float()
    # One training step (train mode; dropout is 0 everywhere in these configs).
    pm.train()
    # Named as the adapter file names them (PeftModel's parameter names without the adapter name "default").
    lora_params = {n.replace(".default", ""): p for n, p in pm.named_parameters() if p.requires_grad}
    assert all("lora_" in n for n in lora_params), list(lora_params)
    assert all("language_model" in n for n in lora_params)
    out = pm(input_ids=ids, attention_mask=mask, position_ids=pos, pixel_values=pixels)
    shift_logits = out.logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    count = (shift_labels != -100).sum()
    loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=-100, reduction="sum") / count
    loss.backward()
    opt = torch.optim.AdamW(list(lora_params.values()), lr=1e-3, weight_decay=0.01)
    grads = {f"grad.{n}": p.grad.detach().clone() for n, p in lora_params.items()}
    before = {f"before.{n}": p.detach().clone() for n, p in lora_params.items()}
    opt.step()
    after = {f"after.{n}": p.detach().clone() for n, p in lora_params.items()}
    save_file({"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels,
               "pixel_values": pixels, "logits": logits, "loss": loss.detach().reshape(1),
               **grads, **before, **after}, str(folder / "step.safetensors"))
    manifest["lora"] = {"base": name, "r": 4, "lora_alpha": 8, "target_modules": lora_cfg.target_modules,
                        "loss": loss.item(), "num_lora_tensors": len(lora_params), "peft": peft.__version__}


def main():
    readme = (OUT / "README.md").read_text() if (OUT / "README.md").exists() else None
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = {}
    models = {
        "llava_default_gqa_untied": make_model("llava_default_gqa_untied", "new", 31, manifest, kv_heads=2,
                                               tied=False, layer=-2, strategy="default", image_size=28),
        "llava_full_list_tied_hub": make_model("llava_full_list_tied_hub", "hub", 32, manifest, kv_heads=4,
                                               tied=True, layer=[-3, -1], strategy="full", image_size=42),
        "llava_last_linear_nobias": make_model("llava_last_linear_nobias", "v4", 33, manifest, kv_heads=1,
                                               tied=False, layer=-1, strategy="default", image_size=28,
                                               projector_bias=False, vision_layers=2,
                                               rope={"rope_type": "linear", "rope_theta": 5000.0, "factor": 2.0}),
    }
    make_generate(models)
    make_session(manifest)
    make_lora("llava_default_gqa_untied", manifest)
    manifest["_versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                             "peft": peft.__version__, "tokenizers": tokenizers.__version__,
                             "safetensors": safetensors.__version__}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if readme:
        (OUT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()
