"""Qwen2-VL image preprocessing benchmark: vlmrt (bench/processor/bench_processor) against transformers' slow
(Pillow, backend="pil" = use_fast=False) and fast (torchvision) Qwen2VLImageProcessor, on the same 1024x768 image in
the same run, for the hub config (max_pixels 12845056: 1036x756 -> 3996 patches) and the fixed 224x224 budget
(min_pixels = max_pixels = 224*224: 252x168 -> 216 patches). Prints milliseconds per image and the ratios, and
checks that vlmrt's pixel_values equal the slow processor's.

torchvision is not part of the pinned oracle environment (installing it there would change which class
AutoImageProcessor picks for everyone). Install it aside and point --torchvision-path at it:

    tools/oracle/.venv/bin/python -m pip install --no-deps --target /tmp/vlmrt-pydeps/torchvision-0.29.2 \
        torchvision==0.29.2
    tools/oracle/.venv/bin/python tools/bench/bench_processor.py --build build-processor \
        --torchvision-path /tmp/vlmrt-pydeps/torchvision-0.29.2

Without it the fast column says "unavailable". The native side builds with the benchmarks switched on:

    cmake -S . -B build-processor -G Ninja -DVLMRT_BUILD_BENCH=ON && cmake --build build-processor --target bench_processor
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="CMake build folder holding bench/processor/bench_processor")
    ap.add_argument("--torchvision-path", default=None, help="folder with torchvision installed (pip --target)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads for vlmrt's multi-threaded run and for torch (the fast processor)")
    return ap.parse_args()


def timed(fn, iters):
    fn()  # warm-up
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return {"mean_ms": sum(ms) / len(ms), "min_ms": ms[0], "median_ms": ms[len(ms) // 2]}


def main():
    args = parse_args()
    if args.torchvision_path:
        sys.path.insert(0, args.torchvision_path)
    import numpy as np
    import torch
    from PIL import Image
    import transformers
    from transformers import AutoImageProcessor

    sys.path.insert(0, str(ROOT / "tools" / "oracle"))
    from gen_processor_fixtures import CONFIGS, synthetic_image

    torch.set_num_threads(args.threads)
    try:
        import torchvision  # noqa: F401
        have_tv = True
    except ImportError:
        have_tv = False

    native = ROOT / args.build / "bench" / "processor" / "bench_processor"
    if not native.exists():
        sys.exit(f"{native} not found: configure with -DVLMRT_BUILD_BENCH=ON, then "
                 f"cmake --build {args.build} --target bench_processor")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "cfg").mkdir()
        (tmp / "cfg" / "preprocessor_config.json").write_text(json.dumps(CONFIGS["qwen2_vl"]))
        image = Image.fromarray(synthetic_image(1024, 768, 19, noise_block=48), "RGB")
        image.save(tmp / "image.png")
        image = Image.open(tmp / "image.png").convert("RGB")
        image.load()

        modes = [("hub config (max_pixels 12845056)", {}),
                 ("fixed 224x224 (min = max = 50176)", {"min_pixels": 224 * 224, "max_pixels": 224 * 224})]
        print(f"Qwen2-VL preprocessing of one 1024x768 RGB image, {args.iters} iterations, "
              f"torch threads {args.threads}; transformers {transformers.__version__}, torch {torch.__version__}"
              + (f", torchvision {torchvision.__version__}" if have_tv else ", torchvision unavailable"))
        for label, kw in modes:
            slow = AutoImageProcessor.from_pretrained(str(tmp / "cfg"), backend="pil")
            for k, v in kw.items():
                setattr(slow, k, v)
            ref = slow(images=image, return_tensors="np")["pixel_values"]
            t_slow = timed(lambda: slow(images=image, return_tensors="np"), args.iters)
            t_fast = None
            if have_tv:
                fast = AutoImageProcessor.from_pretrained(str(tmp / "cfg"), backend="torchvision")
                for k, v in kw.items():
                    setattr(fast, k, v)
                fast_out = fast(images=image, return_tensors="pt")["pixel_values"].numpy()
                fast_diff = float(np.abs(fast_out - ref).max()) if fast_out.shape == ref.shape else None
                t_fast = timed(lambda: fast(images=image, return_tensors="pt"), args.iters)
            runs = {}
            for threads in sorted({1, args.threads}):
                cmd = [str(native), "--config", str(tmp / "cfg"), "--image", str(tmp / "image.png"),
                       "--iters", str(args.iters), "--threads", str(threads), "--out", str(tmp / "out.f32")]
                if "min_pixels" in kw:
                    cmd += ["--min-pixels", str(kw["min_pixels"]), "--max-pixels", str(kw["max_pixels"])]
                res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                got = np.fromfile(tmp / "out.f32", dtype="<f4").reshape(res["shape"])
                res["max_abs_diff_vs_slow"] = float(np.abs(got - ref).max())
                runs[threads] = res
            print(f"\n{label}: pixel_values {list(ref.shape)}")
            print(f"  transformers slow (PIL)        {t_slow['median_ms']:9.2f} ms  (median; mean {t_slow['mean_ms']:.2f})")
            if t_fast:
                print(f"  transformers fast (torchvision){t_fast['median_ms']:9.2f} ms  (median; mean {t_fast['mean_ms']:.2f});"
                      f" max |fast - slow| = {fast_diff}")
            else:
                print("  transformers fast (torchvision)   unavailable (pass --torchvision-path)")
            for threads, res in runs.items():
                line = (f"  vlmrt, {threads} thread{'s' if threads > 1 else ' '}           {res['median_ms']:9.2f} ms"
                        f"  (median; mean {res['mean_ms']:.2f}); max |vlmrt - slow| = {res['max_abs_diff_vs_slow']}")
                line += f"; slow/vlmrt = {t_slow['median_ms'] / res['median_ms']:.1f}x"
                if t_fast:
                    line += f", fast/vlmrt = {t_fast['median_ms'] / res['median_ms']:.1f}x"
                print(line)


if __name__ == "__main__":
    main()
