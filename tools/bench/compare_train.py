"""Side-by-side LoRA training benchmark: transformers + PEFT (bench_train.py) and vlmrt (bench/train/bench_train) on the
same checkpoint and CSV, in one run, with the throughput and memory ratios.

Run (after building with -DVLMRT_BUILD_BENCH=ON):
  tools/oracle/.venv/bin/python tools/bench/compare_train.py --native build/bench/train/bench_train \
      --model-dir /tmp/vlmrt-bench-train [--dtype fp32|bf16] [--layers 24 --vision-depth 32] [--steps 3 --grad-accum 8]
The Python peer writes the checkpoint into --model-dir first (see bench_train.py for the configuration).

vlmrt runs three times: a first epoch (--feature-cache-mb 0: the vision tower runs at every step), a later epoch (the
features of the warm-up update reused from memory) and the first epoch of a further LoRA variant of an experiment grid
(--feature-store: the features an earlier run of the same model stored are read from disk). The last lines put a grid
of --grid-variants variants x 1 epoch side by side, as a config such as configs/vlm_ablation.yaml runs it: the peer
pays its per-update time once per variant, vlmrt a first epoch for the first variant and store reads for the others.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

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
    ap.add_argument("--grid-variants", type=int, default=2, help="LoRA variants per model in the grid line")
    args = ap.parse_args()
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--grad-accum", str(args.grad_accum),
              "--dtype", args.dtype, "--threads", str(args.threads), "--model-dir", args.model_dir]
    peer = run([sys.executable, str(HERE / "bench_train.py"), "--layers", str(args.layers),
                "--vision-depth", str(args.vision_depth)] + common)
    first = run([args.native, "--feature-cache-mb", "0"] + common)
    later = run([args.native] + common)
    with tempfile.TemporaryDirectory(prefix="vlmrt-feature-store-") as store:
        # The warm-up update fills the store as the grid's first variant would; the timed ones read it back.
        stored = run([args.native, "--feature-cache-mb", "0", "--feature-store", store] + common)
    runs = [("1st epoch", first), ("later epochs", later), ("next variant, from the store", stored)]
    rows = [("samples/s", "samples_per_second"), ("tokens/s", "tokens_per_second"),
            ("s/update", "seconds_per_update"), ("peak RSS MiB", "peak_rss_mib")]
    print(f"| {args.dtype} | transformers+PEFT | " + " | ".join(f"vlmrt {name} | ratio" for name, _ in runs) + " |")
    print("|---" * (2 + 2 * len(runs)) + "|")
    for label, key in rows:
        a = peer.get(key)
        cells = []
        for _, native in runs:
            b = native.get(key)
            cells.append(f"{b:.4g} | {b / a if a else float('nan'):.2f}x")
        print(f"| {label} | {a:.4g} | " + " | ".join(cells) + " |")
    k = args.grid_variants
    peer_grid = k * peer["seconds_per_update"]
    native_grid = first["seconds_per_update"] + (k - 1) * stored["seconds_per_update"]
    print(f"grid of {k} variants x 1 update: transformers+PEFT {peer_grid:.1f} s, vlmrt {native_grid:.1f} s "
          f"({peer_grid / native_grid:.2f}x the peer's throughput)")
    print("peer shares:", json.dumps(peer.get("share", peer.get("shares"))))
    for name, native in runs:
        print(f"vlmrt {name} shares:", json.dumps(native.get("share")))


if __name__ == "__main__":
    main()
