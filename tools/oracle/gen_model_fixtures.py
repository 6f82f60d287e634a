"""Writes tests/fixtures/model/: tiny random Qwen2-VL, Qwen2.5-VL, Qwen2 and Llama checkpoints and the logits that
transformers' own models compute for them, for the C++ forward-parity tests (tests/model/).

For every config: <name>/config.json + <name>/model.safetensors (some in the Hub key layout with a flat config,
some in the transformers >= 4.52 layout), and <name>/cases/<case>.safetensors holding input_ids, attention_mask,
(pixel_values, image_grid_thw), position_ids when the case passes them explicitly, and logits (float32, every
position) from the eager forward. Each checkpoint is reloaded with from_pretrained and must give the same logits,
and the sdpa forward must agree with eager; the script stops otherwise.

Run: tools/oracle/.venv/bin/python tools/oracle/gen_model_fixtures.py
"""
import json
import pathlib
import shutil

import safetensors.torch
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                          Qwen2Config, Qwen2ForCausalLM, Qwen2VLConfig, Qwen2VLForConditionalGeneration)

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "model"
VOCAB = 256
IMAGE = 250  # image_token_id
VSTART, VEND = 248, 249
PATCH = 4
SDPA_TOLERANCE = 1e-4  # the same bound the C++ parity tests use


def randomize(model, seed):
    """transformers' init (std 0.02) gives near-constant logits; scale weights so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or ".norm" in name or "ln_q" in name or "layernorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def vl_config(kind, *, kv_heads, tied, mrope, window=None, fullatt=(1,), attn="eager"):
    text = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=kv_heads, rms_norm_eps=1e-6, max_position_embeddings=512,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
                bos_token_id=1, eos_token_id=2, pad_token_id=0)
    common = dict(image_token_id=IMAGE, video_token_id=251, vision_start_token_id=VSTART, vision_end_token_id=VEND,
                  tie_word_embeddings=tied)
    if kind == "qwen2_vl":
        vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=PATCH,
                      spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, **common)
    else:
        vision = dict(depth=3, hidden_size=32, out_hidden_size=64, intermediate_size=48, num_heads=2,
                      patch_size=PATCH, spatial_merge_size=2, temporal_patch_size=2, in_channels=3,
                      window_size=window, fullatt_block_indexes=list(fullatt))
        cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
    cfg._attn_implementation = attn
    return cfg


def hub_key(name):
    """transformers >= 4.52 in-memory names -> the Hub layout (model.layers..., visual..., lm_head)."""
    if name.startswith("model.visual."):
        return name[len("model."):]
    if name.startswith("model.language_model."):
        return "model." + name[len("model.language_model."):]
    return name


def flat_hub_config(cfg, kind):
    """The config.json layout of the Hub checkpoints: LM keys at the top level, rope_scaling type mrope."""
    t = cfg.text_config
    v = cfg.vision_config.to_dict()
    for key in ("transformers_version", "dtype", "torch_dtype", "rope_parameters", "output_attentions",
                "output_hidden_states", "return_dict", "chunk_size_feed_forward", "problem_type", "id2label",
                "label2id", "architectures", "_name_or_path"):
        v.pop(key, None)
    arch = "Qwen2VLForConditionalGeneration" if kind == "qwen2_vl" else "Qwen2_5_VLForConditionalGeneration"
    return {
        "architectures": [arch], "model_type": kind, "torch_dtype": "float32",
        "vocab_size": t.vocab_size, "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
        "num_key_value_heads": t.num_key_value_heads, "rms_norm_eps": t.rms_norm_eps, "hidden_act": "silu",
        "max_position_embeddings": t.max_position_embeddings, "rope_theta": t.rope_parameters["rope_theta"],
        "rope_scaling": {"type": "mrope", "mrope_section": list(t.rope_parameters["mrope_section"])},
        "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": cfg.tie_word_embeddings,
        "image_token_id": cfg.image_token_id, "video_token_id": cfg.video_token_id,
        "vision_start_token_id": cfg.vision_start_token_id, "vision_end_token_id": cfg.vision_end_token_id,
        "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": t.num_hidden_layers,
        "vision_config": v,
    }


def save_checkpoint(model, folder, layout, config_dict):
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue  # tied: save_pretrained drops it too
        state[hub_key(name) if layout == "hub" else name] = tensor.detach().contiguous().clone()
    safetensors.torch.save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True) + "\n")


def image_tokens(grid):
    return int(grid[0] * grid[1] * grid[2] // 4)


def vl_prompt(g, grids, text_lens):
    """text, <vision_start> image <vision_end>, text, ... with random text ids below the special ids."""
    ids = list(torch.randint(3, 240, (text_lens[0],), generator=g).tolist())
    for grid, tail in zip(grids, text_lens[1:]):
        ids += [VSTART] + [IMAGE] * image_tokens(grid) + [VEND]
        ids += torch.randint(3, 240, (tail,), generator=g).tolist()
    return ids


def vl_cases(g):
    """(name, rows, grids): rows are lists of ids, grids every image's (t, h, w) in patches, in order."""
    one = [(1, 4, 6)]
    two = [(1, 4, 4), (1, 6, 10)]
    return [
        ("one_image", [vl_prompt(g, one, [5, 7])], one),
        ("two_images", [vl_prompt(g, two, [3, 4, 6])], two),
        ("no_image", [torch.randint(3, 240, (12,), generator=g).tolist()], []),
        ("batch_left_pad", [vl_prompt(g, [(1, 4, 6)], [4, 5]), vl_prompt(g, [(1, 6, 4), (1, 4, 4)], [2, 3, 6])],
         [(1, 4, 6), (1, 6, 4), (1, 4, 4)]),
    ]


def pixels_for(g, grids):
    rows = sum(t * h * w for t, h, w in grids)
    return torch.randn(rows, 3 * 2 * PATCH * PATCH, generator=g)


def left_pad(rows):
    length = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, length - len(r):] = torch.tensor(r)
        mask[i, length - len(r):] = 1
    return ids, mask


def vl_forward(model, ids, mask, pixels, grid_thw):
    kwargs = dict(input_ids=ids, attention_mask=mask)
    if grid_thw is not None:
        kwargs.update(pixel_values=pixels.to(model.dtype), image_grid_thw=grid_thw,
                      mm_token_type_ids=(ids == IMAGE).int())
    with torch.no_grad():
        return model(**kwargs).logits.float()


def write_case(folder, name, tensors):
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "cases" / f"{name}.safetensors"))


def make_vl(name, kind, layout, seed, manifest, **cfg_args):
    torch.manual_seed(seed)
    cfg = vl_config(kind, **cfg_args)
    cls = Qwen2VLForConditionalGeneration if kind == "qwen2_vl" else Qwen2_5_VLForConditionalGeneration
    model = cls(cfg).eval()
    randomize(model, seed)
    folder = OUT / name
    config_dict = flat_hub_config(cfg, kind) if layout == "hub" else json.loads(cfg.to_json_string())
    save_checkpoint(model, folder, layout, config_dict)
    reloaded = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    sdpa = cls.from_pretrained(str(folder), attn_implementation="sdpa").eval()
    g = torch.Generator().manual_seed(seed + 1)
    cases = []
    for case, rows, grids in vl_cases(g):
        ids, mask = left_pad(rows)
        pixels = pixels_for(g, grids) if grids else None
        grid_thw = torch.tensor(grids, dtype=torch.long) if grids else None
        logits = vl_forward(model, ids, mask, pixels, grid_thw)
        again = vl_forward(reloaded, ids, mask, pixels, grid_thw)
        assert torch.equal(logits, again), f"{name}/{case}: from_pretrained changed the logits"
        sdpa_diff = (vl_forward(sdpa, ids, mask, pixels, grid_thw) - logits)[mask.bool()].abs().max().item()
        assert sdpa_diff < SDPA_TOLERANCE, f"{name}/{case}: sdpa differs from eager by {sdpa_diff}"
        tensors = {"input_ids": ids, "attention_mask": mask, "logits": logits}
        if grids:
            tensors.update(pixel_values=pixels, image_grid_thw=grid_thw)
        write_case(folder, case, tensors)
        cases.append({"name": case, "dtype": "float32", "sdpa_max_abs_diff": sdpa_diff,
                      "max_abs_logit": logits.abs().max().item()})
    # bf16: the same weights rounded to bfloat16, transformers computing in bfloat16.
    ids, mask = left_pad(vl_cases(torch.Generator().manual_seed(seed + 1))[0][1])
    g = torch.Generator().manual_seed(seed + 2)
    grids = [(1, 4, 6)]
    pixels = pixels_for(g, grids)
    grid_thw = torch.tensor(grids)
    bf16 = cls.from_pretrained(str(folder), attn_implementation="eager", dtype=torch.bfloat16).eval()
    logits16 = vl_forward(bf16, ids, mask, pixels, grid_thw)
    logits32 = vl_forward(reloaded, ids, mask, pixels, grid_thw)
    write_case(folder, "one_image_bf16", {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels,
                                          "image_grid_thw": grid_thw, "logits": logits16, "logits_fp32": logits32})
    cases.append({"name": "one_image_bf16", "dtype": "bfloat16",
                  "bf16_vs_fp32_max_abs_diff": (logits16 - logits32).abs().max().item(),
                  "max_abs_logit": logits32.abs().max().item()})
    manifest[name] = {"class": cls.__name__, "layout": layout, "cases": cases, **{k: v for k, v in cfg_args.items()}}


def generate_positions(mask):
    """What generate() feeds a decoder-only model with left padding: cumsum(mask) - 1, pads 1."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def make_causal(name, cls, cfg, seed, manifest):
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = cls(cfg).eval()
    randomize(model, seed)
    folder = OUT / name
    save_checkpoint(model, folder, "new", json.loads(cfg.to_json_string()))
    reloaded = cls.from_pretrained(str(folder), attn_implementation="eager").eval()
    sdpa = cls.from_pretrained(str(folder), attn_implementation="sdpa").eval()
    g = torch.Generator().manual_seed(seed + 1)
    rows_cases = [("single", [torch.randint(3, 250, (14,), generator=g).tolist()]),
                  ("batch_left_pad", [torch.randint(3, 250, (9,), generator=g).tolist(),
                                      torch.randint(3, 250, (15,), generator=g).tolist()])]
    cases = []
    for case, rows in rows_cases:
        ids, mask = left_pad(rows)
        pos = generate_positions(mask)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
            again = reloaded(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
            other = sdpa(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
        assert torch.equal(logits, again)
        sdpa_diff = (other - logits)[mask.bool()].abs().max().item()
        assert sdpa_diff < SDPA_TOLERANCE, f"{name}/{case}: sdpa differs by {sdpa_diff}"
        write_case(folder, case, {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "logits": logits})
        cases.append({"name": case, "dtype": "float32", "sdpa_max_abs_diff": sdpa_diff,
                      "max_abs_logit": logits.abs().max().item()})
    ids, mask = left_pad(rows_cases[0][1])
    bf16 = cls.from_pretrained(str(folder), attn_implementation="eager", dtype=torch.bfloat16).eval()
    with torch.no_grad():
        logits16 = bf16(input_ids=ids, attention_mask=mask).logits.float()
        logits32 = reloaded(input_ids=ids, attention_mask=mask).logits.float()
    write_case(folder, "single_bf16", {"input_ids": ids, "attention_mask": mask, "logits": logits16,
                                       "logits_fp32": logits32})
    cases.append({"name": "single_bf16", "dtype": "bfloat16",
                  "bf16_vs_fp32_max_abs_diff": (logits16 - logits32).abs().max().item(),
                  "max_abs_logit": logits32.abs().max().item()})
    manifest[name] = {"class": cls.__name__, "layout": "new", "cases": cases}


def main():
    readme = (OUT / "README.md").read_text() if (OUT / "README.md").exists() else None
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = {}
    make_vl("qwen2_vl_gqa_tied_hub", "qwen2_vl", "hub", 11, manifest, kv_heads=2, tied=True, mrope=[2, 3, 3])
    make_vl("qwen2_vl_mha_untied", "qwen2_vl", "new", 12, manifest, kv_heads=4, tied=False, mrope=[4, 2, 2])
    # window 16 px = 2 merged units: grids 4x6 / 4x4 are multiples of the window, 6x10 and 6x4 are not.
    make_vl("qwen2_5_vl_window_untied", "qwen2_5_vl", "new", 13, manifest, kv_heads=2, tied=False, mrope=[2, 3, 3],
            window=16, fullatt=[1])
    make_vl("qwen2_5_vl_window24_tied_hub", "qwen2_5_vl", "hub", 14, manifest, kv_heads=4, tied=True,
            mrope=[4, 2, 2], window=24, fullatt=[0, 2])
    make_causal("qwen2_tied", Qwen2ForCausalLM,
                Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                            max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                            tie_word_embeddings=True, bos_token_id=1, eos_token_id=2), 21, manifest)
    make_causal("llama_llama3_untied", LlamaForCausalLM,
                LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-5,
                            max_position_embeddings=256, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                             "original_max_position_embeddings": 16}), 22, manifest)
    make_causal("llama_linear_headdim", LlamaForCausalLM,
                LlamaConfig(vocab_size=VOCAB, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=2, head_dim=32, rms_norm_eps=1e-5,
                            max_position_embeddings=256, tie_word_embeddings=True, attention_bias=True,
                            mlp_bias=True, rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                                                            "factor": 2.0}), 23, manifest)
    manifest["_versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                             "safetensors": safetensors.__version__}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if readme:
        (OUT / "README.md").write_text(readme)


if __name__ == "__main__":
    main()
