"""LLaVA inference benchmark: transformers vs vlmrt on the same random LLaVA checkpoint, in one run.

Writes a LlavaForConditionalGeneration checkpoint with random weights to --workdir: CLIP-L/14-336 layout (hidden
1024, 24 layers, 16 heads, image 336, patch 14: 576 image tokens) and a Llama language model of hidden 1024 x 16
layers (16 heads, intermediate 2816, vocab 32064); --vision-layers / --text-layers shrink it for small machines.
Times transformers' time to first token (prefill of a --prompt-token prompt with one image, argmax of the last
logits) and one-token decode steps through its cache, then runs build-*/bench/model/bench_llava on the same folder
and prints both and the ratios (transformers time / vlmrt time; > 1 means vlmrt is faster).

Run (after building bench_llava with -DVLMRT_BUILD_BENCH=ON):
  tools/oracle/.venv/bin/python tools/bench/bench_llava.py --bench build-llava/bench/model/bench_llava --threads 2
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile
import time

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration

IMAGE = 32000


def bench_config(vision_layers, text_layers):
    return LlavaConfig(
        text_config=dict(model_type="llama", vocab_size=32064, hidden_size=1024, intermediate_size=2816,
                         num_hidden_layers=text_layers, num_attention_heads=16, num_key_value_heads=16,
                         rms_norm_eps=1e-5, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2,
                         pad_token_id=32001),
        vision_config=dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096,
                           num_hidden_layers=vision_layers, num_attention_heads=16, image_size=336, patch_size=14,
                           projection_dim=768),
        image_token_index=IMAGE, vision_feature_layer=-2, vision_feature_select_strategy="default",
        projector_hidden_act="gelu", tie_word_embeddings=False, image_seq_length=576)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True, help="path of the native bench_llava binary")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--prompt", type=int, default=640)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vision-layers", type=int, default=24)
    ap.add_argument("--text-layers", type=int, default=16)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="vlmrt-bench-llava-"))
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(bench_config(args.vision_layers, args.text_layers)).eval()
    model.save_pretrained(str(workdir))
    del model
    model = LlavaForConditionalGeneration.from_pretrained(str(workdir), attn_implementation=args.attn).eval()

    image_tokens = 576
    head = 6
    ids = [1] + [IMAGE if head <= i < head + image_tokens else 3 + (i * 7919) % 200 for i in range(1, args.prompt)]
    input_ids = torch.tensor([ids])
    pixel_values = torch.randn(1, 3, 336, 336)
    ttft_ms, step_ms = [], []
    with torch.no_grad():
        for it in range(args.iters + 1):
            t0 = time.perf_counter()
            out = model(input_ids=input_ids, pixel_values=pixel_values, use_cache=True, logits_to_keep=1)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            if it:
                ttft_ms.append((time.perf_counter() - t0) * 1e3)
            cache = out.past_key_values
            for _ in range(args.steps):
                t0 = time.perf_counter()
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                if it:
                    step_ms.append((time.perf_counter() - t0) * 1e3)
                cache = out.past_key_values
    del model
    step = statistics.median(step_ms)
    hf = {"ttft_ms_median": statistics.median(ttft_ms), "decode_step_ms_median": step,
          "decode_tokens_per_s": 1000.0 / step}
    native = json.loads(subprocess.run(
        [args.bench, "--model", str(workdir), "--prompt", str(args.prompt), "--steps", str(args.steps),
         "--iters", str(args.iters), "--threads", str(args.threads)],
        check=True, capture_output=True, text=True).stdout)
    print(json.dumps({"config": {"vision_layers": args.vision_layers, "text_layers": args.text_layers,
                                 "prompt": args.prompt, "steps": args.steps, "iters": args.iters,
                                 "threads": args.threads},
                      "transformers": {**hf, "attn": args.attn, "torch": torch.__version__}, "vlmrt": native,
                      "ratio_ttft": hf["ttft_ms_median"] / native["ttft_ms_median"],
                      "ratio_decode_tokens_per_s": native["decode_tokens_per_s"] / hf["decode_tokens_per_s"]},
                     indent=2))


if __name__ == "__main__":
    main()
