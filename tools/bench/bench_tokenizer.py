#!/usr/bin/env python3
"""Tokenizer benchmark: vlmrt vs Hugging Face `tokenizers`, side by side in one run, single thread.

  tools/oracle/.venv/bin/python tools/bench/bench_tokenizer.py --native build-text/bench/text/bench_tokenizer \\
      [--megabytes 10] [--tokenizers qwen3,llama2,gpt2]

Builds a mixed corpus of about 10 MB (the fixture corpus generator with a different seed: English, Korean,
Chinese, Japanese, Arabic, Hindi, emoji, code, URLs, whitespace runs, special tokens), then for each tokenizer:
  - load time: best of 3, tokenizers.Tokenizer.from_file vs vlm::Tokenizer::load (raw flavor);
  - encode throughput over every line, one thread: tokenizers' encode_batch with RAYON_NUM_THREADS=1 (no
    Python loop overhead) and, for reference, a Python loop of encode(); vlmrt's encode() in a C++ loop.
The id checksums of both sides must agree (the script fails otherwise).
"""
import os

os.environ["RAYON_RS_NUM_CPUS"] = "1"
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "oracle"))

import gen_tokenizer_fixtures as gen  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def build_corpus(megabytes):
    rng = random.Random(7)
    lines, size = [], 0
    while size < megabytes * 1_000_000:
        parts = [gen.fragment(rng) for _ in range(rng.randint(4, 20))]
        s = " ".join(parts)
        lines.append(s)
        size += len(s.encode("utf-8"))
    return lines, size


def checksum(all_ids):
    c = 0
    for ids in all_ids:
        for i in ids:
            c = (c * 1000003 + i) % (1 << 64)
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--native", required=True, help="path of the built bench_tokenizer")
    ap.add_argument("--megabytes", type=float, default=10)
    ap.add_argument("--tokenizers", default="qwen3,llama2,gpt2")
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "data", "tokenizers"))
    args = ap.parse_args()
    lines, size = build_corpus(args.megabytes)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for s in lines:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")
        corpus_path = f.name
    print(f"corpus: {len(lines)} lines, {size / 1e6:.2f} MB")
    results = {}
    for name in args.tokenizers.split(","):
        folder = os.path.join(args.shared, name)
        if os.path.exists(os.path.join(folder, "tokenizer.json")):
            path = os.path.join(folder, "tokenizer.json")
            loads = []
            for _ in range(3):
                t0 = time.perf_counter()
                tok = Tokenizer.from_file(path)
                loads.append(time.perf_counter() - t0)
        else:
            path = folder
            loads = []
            for _ in range(3):
                t0 = time.perf_counter()
                tok = gen.gpt2_reference(folder)
                loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        encs = tok.encode_batch(lines, add_special_tokens=False)
        hf_batch = time.perf_counter() - t0
        ids = [e.ids for e in encs]
        tok2 = Tokenizer.from_str(tok.to_str())  # fresh word cache for the loop timing
        t0 = time.perf_counter()
        for s in lines:
            tok2.encode(s, add_special_tokens=False)
        hf_loop = time.perf_counter() - t0
        native = json.loads(subprocess.run([args.native, path, corpus_path, "raw", "3"], check=True,
                                           capture_output=True, text=True).stdout)
        same = native["checksum"] == checksum(ids)
        r = {"hf_load_s": min(loads), "vlm_load_s": native["load_s"],
             "hf_encode_batch_1thread_s": hf_batch, "hf_encode_loop_s": hf_loop, "vlm_encode_s": native["encode_s"],
             "hf_mb_per_s": size / 1e6 / hf_batch, "vlm_mb_per_s": native["mb_per_s"],
             "tokens": native["tokens"], "ids_identical": same}
        results[name] = r
        print(f"{name}: load  HF {r['hf_load_s']:.3f}s  vlmrt {r['vlm_load_s']:.3f}s  "
              f"(vlmrt/HF time {r['vlm_load_s'] / r['hf_load_s']:.2f}x)")
        print(f"{name}: encode HF {r['hf_mb_per_s']:.2f} MB/s (encode_batch, 1 thread; Python loop "
              f"{size / 1e6 / hf_loop:.2f} MB/s)  vlmrt {r['vlm_mb_per_s']:.2f} MB/s  "
              f"(speed ratio vlmrt/HF {r['vlm_mb_per_s'] / r['hf_mb_per_s']:.2f}x)  ids identical: {same}")
        if not same:
            print(f"ERROR: {name}: token ids differ between vlmrt and tokenizers", file=sys.stderr)
    os.unlink(corpus_path)
    print(json.dumps(results, indent=1))
    return 0 if all(r["ids_identical"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
