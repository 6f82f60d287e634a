"""Model forward benchmark: transformers vs vlmrt on the same "small" random Qwen2-VL checkpoint, in one run.

Writes the checkpoint (text: hidden 512, 8 layers, 8 heads / 2 KV heads, vocab 8192; vision: depth 4, embed 256,
patch 14) to --workdir, times transformers' prefill (one image of 16x16 patches = 64 tokens inside a --prompt-token
prompt) and one-token decode steps through its DynamicCache, then runs build-*/bench/model/bench_model on the same
folder and prints both and the ratios (transformers time / vlmrt time; > 1 means vlmrt is faster).

Run (after building bench_model with -DVLMRT_BUILD_BENCH=ON):
  tools/oracle/.venv/bin/python tools/bench/bench_model.py --bench build-model/bench/model/bench_model --threads 2
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile
import time

import torch
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

IMAGE = 8000


def small_config():
    return Qwen2VLConfig(
        text_config=dict(vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=2, rms_norm_eps=1e-6,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]}),
        vision_config=dict(depth=4, embed_dim=256, hidden_size=512, num_heads=4, mlp_ratio=4, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=IMAGE, video_token_id=8001, vision_start_token_id=8002, vision_end_token_id=8003,
        tie_word_embeddings=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path of the native bench_model binary")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="vlmrt-bench-model-"))
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(small_config()).eval()
    model.save_pretrained(str(workdir))
    model = Qwen2VLForConditionalGeneration.from_pretrained(str(workdir), attn_implementation=args.attn).eval()

    grid_h = grid_w = 16
    image_tokens = grid_h * grid_w // 4
    head = (args.prompt - image_tokens) // 2
    ids = [IMAGE if head <= i < head + image_tokens else 3 + (i * 7919) % 200 for i in range(args.prompt)]
    input_ids = torch.tensor([ids])
    kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                  pixel_values=torch.randn(grid_h * grid_w, 3 * 2 * 14 * 14),
                  image_grid_thw=torch.tensor([[1, grid_h, grid_w]]), mm_token_type_ids=(input_ids == IMAGE).int())
    prefill_ms, step_ms = [], []
    with torch.no_grad():
        for it in range(args.iters + 1):
            model.model.rope_deltas = None
            t0 = time.perf_counter()
            out = model(**kwargs, use_cache=True)
            if it:
                prefill_ms.append((time.perf_counter() - t0) * 1e3)
            cache = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(args.steps):
                # No mask on decode steps (no padding): the model then places the token at past + rope_deltas;
                # a full-length mask outside generate() would make it compute positions for every column.
                t0 = time.perf_counter()
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                if it:
                    step_ms.append((time.perf_counter() - t0) * 1e3)
                cache = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    hf = {"prefill_ms_median": statistics.median(prefill_ms), "decode_step_ms_median": statistics.median(step_ms)}
    native = json.loads(subprocess.run(
        [args.bench, "--model", str(workdir), "--prompt", str(args.prompt), "--grid-h", str(grid_h), "--grid-w",
         str(grid_w), "--steps", str(args.steps), "--iters", str(args.iters), "--threads", str(args.threads)],
        check=True, capture_output=True, text=True).stdout)
    print(json.dumps({"transformers": {**hf, "attn": args.attn, "torch": torch.__version__}, "vlmrt": native,
                      "ratio_prefill": hf["prefill_ms_median"] / native["prefill_ms_median"],
                      "ratio_decode_step": hf["decode_step_ms_median"] / native["decode_step_ms_median"]}, indent=2))


if __name__ == "__main__":
    main()
