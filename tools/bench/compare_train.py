"""Side-by-side LoRA training benchmark: transformers + PEFT (bench_train.py) and vlmrt (bench/train/bench_train) on the
same checkpoint and CSV, in one run, with the throughput and memory ratios.

Run (after building with -DVLMRT_BUILD_BENCH=ON):
  tools/oracle/.venv/bin/python tools/bench/compare_train.py --native build/bench/train/bench_train \
      --model-dir /tmp/vlmrt-bench-train [--dtype fp32|bf16] [--layers 24 --vision-depth 32] [--steps 3 --grad-accum 8]
The Python peer writes the checkpoint into --model-dir first (see bench_train.py for the configuration).
"""
import argparse
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def run(cmd):
    print("+", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--native", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--vision-depth", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--grad-accum", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--grad-accum", str(args.grad_accum),
              "--dtype", args.dtype, "--threads", str(args.threads), "--model-dir", args.model_dir]
    peer = run([sys.executable, str(HERE / "bench_train.py"), "--layers", str(args.layers),
                "--vision-depth", str(args.vision_depth)] + common)
    native = run([args.native] + common)
    rows = [("samples/s", "samples_per_second"), ("tokens/s", "tokens_per_second"),
            ("s/update", "seconds_per_update"), ("peak RSS MiB", "peak_rss_mib")]
    print(f"| {args.dtype} | transformers+PEFT | vlmrt | vlmrt / peer |")
    print("|---|---|---|---|")
    for label, key in rows:
        a, b = peer.get(key), native.get(key)
        ratio = b / a if a else float("nan")
        print(f"| {label} | {a:.4g} | {b:.4g} | {ratio:.2f}x |")
    print("peer shares:", json.dumps(peer.get("share", peer.get("shares"))))
    print("vlmrt shares:", json.dumps(native.get("share")))


if __name__ == "__main__":
    main()
