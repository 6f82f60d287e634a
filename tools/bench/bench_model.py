"""Model forward benchmark: transformers vs vlmrt on the same "small" random Qwen2-VL checkpoint, in one run.

Writes the checkpoint (text: hidden 512, 8 layers, 8 heads / 2 KV heads, vocab 8192; vision: depth 4, embed 256,
patch 14) to --workdir, times transformers' prefill (one image of 16x16 patches = 64 tokens inside a --prompt-token
prompt) and one-token decode steps through its DynamicCache, then runs build-*/bench/model/bench_model on the same
folder and prints both and the ratios (transformers time / vlmrt time; > 1 means vlmrt is faster).

Run (after building bench_model with -DVLMRT_BUILD_BENCH=ON):
  tools/oracle/.venv/bin/python tools/bench/bench_model.py --bench build-model/bench/model/bench_model --threads 2

--config small-issue instead benchmarks generation on the Qwen2-VL issue's configuration (text hidden 896, 24 layers,
14 / 2 heads, intermediate 4864, vocab 151936; vision depth 32, embed 1280, 16 heads; one 448x448 image = 32x32
patches = 256 merged tokens per row): greedy generate() of exactly --new-tokens tokens at each --batches size and
--dtypes dtype, time to first token, decode tokens/s (rows x (new tokens - 1) / time from the first to the last
token) and peak RSS, each side in its own process (transformers in a child of this script, vlmrt through
bench_model --generate --serve). Both processes stay loaded and take turns, --iters runs each, so every
transformers run has a vlmrt run next to it in time: on a shared host the memory rate, which sets vlmrt's batch-1
decode speed, can move by half within minutes. Each cell's ratios are the medians of the per-pair ratios. Each pair
also reports the memory's read rate around the vlmrt run (bench_model reads the language model's weights before
and after it), vlmrt's decode rate as a share of what that read rate allows (the weights streamed once per step),
and ratio_ceiling: the ratio to transformers that reading the weights at that rate, and nothing else, would give
(the bytes a step reads: decode_read_bytes, which counts coded weights at their coded size; VLMRT_CODED_WEIGHTS=0
in the environment runs vlmrt without them).
--text-layers / --vision-depth shrink the model for slow machines:
  tools/oracle/.venv/bin/python tools/bench/bench_model.py --bench build-model/bench/model/bench_model --threads 2 \
      --config small-issue --text-layers 24 --vision-depth 32
"""
import argparse
import json
import pathlib
import sys
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


def issue_config(text_layers, vision_depth):
    return Qwen2VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=text_layers,
                         num_attention_heads=14, num_key_value_heads=2, rms_norm_eps=1e-6,
                         max_position_embeddings=32768,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]}),
        vision_config=dict(depth=vision_depth, embed_dim=1280, hidden_size=896, num_heads=16, mlp_ratio=4,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=IMAGE, video_token_id=8001, vision_start_token_id=8002, vision_end_token_id=8003,
        tie_word_embeddings=True)


ISSUE_GRID = 32  # 448 / 14 patches a side; 2x2 merged: 256 image tokens


def issue_prompt(prompt):
    image_tokens = ISSUE_GRID * ISSUE_GRID // 4
    head = (prompt - image_tokens) // 2
    return [IMAGE if head <= i < head + image_tokens else 3 + (i * 7919) % 200 for i in range(prompt)]


class StepClock:
    """A generate() streamer that notes when each step's tokens arrive (the first put() is the prompt)."""

    def __init__(self):
        self.times = []
        self.prompt_seen = False

    def put(self, value):
        if self.prompt_seen:
            self.times.append(time.perf_counter())
        self.prompt_seen = True

    def end(self):
        pass


def peak_rss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the parent that built the checkpoint.
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return -1.0


def hf_generate_worker(args):
    """One transformers cell in this process (so its peak RSS is its own), in the protocol of bench_model --serve:
    a ready line, then one timed generate() per "run" line on stdin, each answered by a JSON line, and at "quit"
    or the end of input a summary line."""
    torch.set_num_threads(args.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    t0 = time.perf_counter()
    model = Qwen2VLForConditionalGeneration.from_pretrained(args.workdir, attn_implementation=args.attn,
                                                            dtype=dtype).eval()
    load_ms = (time.perf_counter() - t0) * 1e3
    torch.manual_seed(0)
    input_ids = torch.tensor([issue_prompt(args.prompt)] * args.batch)
    kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                  pixel_values=torch.randn(args.batch * ISSUE_GRID * ISSUE_GRID, 3 * 2 * 14 * 14).to(dtype),
                  image_grid_thw=torch.tensor([[1, ISSUE_GRID, ISSUE_GRID]] * args.batch),
                  mm_token_type_ids=(input_ids == IMAGE).int())

    def run(new_tokens):
        clock = StepClock()
        t0 = time.perf_counter()
        out = model.generate(**kwargs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             streamer=clock, pad_token_id=0)
        assert out.shape[1] == input_ids.shape[1] + new_tokens, out.shape
        return (clock.times[0] - t0) * 1e3, args.batch * (new_tokens - 1) / (clock.times[-1] - clock.times[0])

    cells = []
    with torch.no_grad():
        run(2)  # warm-up
        print(json.dumps({"ready": True, "load_ms": load_ms}), flush=True)
        for line in sys.stdin:
            if line.strip() == "quit":
                break
            if line.strip() != "run":
                raise SystemExit(f"worker reads 'run' or 'quit' lines, not {line!r}")
            cells.append(run(args.new_tokens))
            print(json.dumps({"ttft_ms": cells[-1][0], "decode_tokens_per_s": cells[-1][1]}), flush=True)
    print(json.dumps({"dtype": args.dtype, "batch": args.batch, "threads": torch.get_num_threads(),
                      "load_ms": load_ms,
                      "ttft_ms_median": statistics.median(c[0] for c in cells),
                      "decode_tokens_per_s_median": statistics.median(c[1] for c in cells),
                      "peak_rss_mb": peak_rss_mb()}), flush=True)


class Server:
    """A benchmark process in the run/quit line protocol (hf_generate_worker, bench_model --serve)."""

    def __init__(self, name, argv):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.answer()

    def answer(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} ended early (exit status {self.proc.wait()})")
        return json.loads(line)

    def run(self):
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self.answer()

    def finish(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        summary = self.answer()
        if self.proc.wait() != 0:
            raise SystemExit(f"{self.name} failed with exit status {self.proc.returncode}")
        return summary


def issue_main(args):
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="vlmrt-bench-issue-"))
    want = issue_config(args.text_layers, args.vision_depth)
    if (workdir / "config.json").exists():
        # Reuse a checkpoint of the same shape (writing the full-size one takes minutes); refuse another shape.
        have = Qwen2VLConfig.from_pretrained(str(workdir))
        shape = lambda c: (c.text_config.num_hidden_layers, c.vision_config.depth, c.text_config.hidden_size)
        if shape(have) != shape(want):
            raise SystemExit(f"{workdir} holds a checkpoint of shape {shape(have)}, the flags ask for {shape(want)}")
    else:
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(want).eval()
        model.save_pretrained(str(workdir))
        del model
    rows = []
    for dtype in args.dtypes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            common = ["--workdir", str(workdir), "--threads", str(args.threads), "--prompt", str(args.prompt),
                      "--new-tokens", str(args.new_tokens)]
            # Both sides stay loaded and take turns (the first alternating), so each pair of runs meets the same
            # memory rate; the ratios are per pair, their median is the cell's.
            hf = Server("transformers", [sys.executable, __file__, "--worker", "--attn", args.attn, "--dtype", dtype,
                                         "--batch", str(batch), *common])
            native = Server("bench_model", [
                args.bench, "--model", str(workdir), "--prompt", str(args.prompt), "--grid-h", str(ISSUE_GRID),
                "--grid-w", str(ISSUE_GRID), "--generate", str(args.new_tokens), "--batch", str(batch),
                "--threads", str(args.threads), "--dtype", dtype, "--serve"])
            pairs = []
            for it in range(args.iters):
                first, second = (hf, native) if it % 2 == 0 else (native, hf)
                runs = {first.name: first.run(), second.name: second.run()}
                pairs.append((runs["transformers"], runs["bench_model"]))
            hf_summary, native_summary = hf.finish(), native.finish()
            decode_ratios = [n["decode_tokens_per_s"] / h["decode_tokens_per_s"] for h, n in pairs]
            # The memory's read rate around each vlmrt run against the bytes a decode step streams (with coded
            # weights, their coded size): the decode rate vlmrt reached as a share of that rate, and the best
            # ratio to transformers that streaming those bytes once per step could have reached in that pair.
            weight_gb = native.ready.get("decode_read_bytes", native.ready["decode_weight_bytes"]) / 1e9
            def memory(h, n):
                ceiling = batch * n["read_GBps"] / weight_gb
                return {"read_GBps": n["read_GBps"],
                        "vlmrt_share_of_read_rate": n["decode_tokens_per_s"] / ceiling,
                        "ratio_ceiling": ceiling / h["decode_tokens_per_s"]}
            row = {"dtype": dtype, "batch": batch, "transformers": hf_summary, "vlmrt": native_summary,
                   "pairs": [{"transformers": h, "vlmrt": n, "memory": memory(h, n)} for h, n in pairs],
                   "ratio_ttft": statistics.median(h["ttft_ms"] / n["ttft_ms"] for h, n in pairs),
                   "ratio_decode_tokens_per_s": statistics.median(decode_ratios),
                   "ratio_decode_tokens_per_s_range": [min(decode_ratios), max(decode_ratios)],
                   "ratio_ceiling": statistics.median(memory(h, n)["ratio_ceiling"] for h, n in pairs),
                   "vlmrt_share_of_read_rate": statistics.median(memory(h, n)["vlmrt_share_of_read_rate"]
                                                                 for h, n in pairs),
                   "rss_vlmrt_over_transformers": native_summary["peak_rss_mb"] / hf_summary["peak_rss_mb"]}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(json.dumps({"config": "small-issue", "text_layers": args.text_layers, "vision_depth": args.vision_depth,
                      "torch": torch.__version__, "attn": args.attn, "cells": rows}, indent=2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", help="path of the native bench_model binary")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--prompt", type=int, default=None, help="prompt tokens (small: 128, small-issue: 300)")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--iters", type=int, default=None,
                    help="timed iterations (small: 5) or pairs of runs per cell (small-issue: 3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--config", default="small", choices=["small", "small-issue"])
    ap.add_argument("--text-layers", type=int, default=24, help="small-issue: language model layers")
    ap.add_argument("--vision-depth", type=int, default=32, help="small-issue: vision blocks")
    ap.add_argument("--new-tokens", type=int, default=64, help="small-issue: tokens generated per row")
    ap.add_argument("--batches", default="1,8", help="small-issue: batch sizes")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="small-issue: dtypes")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return hf_generate_worker(args)
    if not args.bench:
        ap.error("--bench is required")
    small_issue = args.config == "small-issue"
    if args.prompt is None:
        args.prompt = 300 if small_issue else 128  # small-issue: 256 image tokens and 44 of text
    if args.iters is None:
        args.iters = 3 if small_issue else 5
    if small_issue:
        return issue_main(args)
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
