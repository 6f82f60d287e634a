"""Writes tests/fixtures/processor/: what Pillow's Image.resize and transformers' slow (Pillow) image processors
produce, for vlmrt's image processors to match (tests/processor/).

  images/*.png            source images (synthetic: gradients, sharp-edged blocks that make bicubic/lanczos
                          overshoot and clip, a noisy patch); vlmrt decodes them with its own PNG reader
  resize/cases.json       Image.resize((w, h), filter) for every filter Pillow has except MKS2013/MKS2021 over
                          upscales, downscales, odd sizes and extreme aspect ratios; the RGB bytes are
                          concatenated in resize/expected.bin.gz
  configs/<name>/preprocessor_config.json
                          hub-style configs (Qwen2-VL-2B-Instruct, Qwen2.5-VL-3B-Instruct, llava-1.5-7b-hf,
                          blip2-opt-2.7b, blip-image-captioning-base) and small variants that reach other branches
  processor/cases.json    pixel_values, image_grid_thw and <|image_pad|> counts from
                          AutoImageProcessor.from_pretrained(config_dir, backend="pil") (= use_fast=False); the
                          pixel_values of each case are stored losslessly as a float32 palette (np.unique of the
                          array) plus uint16 indices, in processor/expected.bin.gz. The generator checks that
                          palette[indices] reproduces the transformers array bit for bit.

Run: tools/oracle/.venv/bin/python tools/oracle/gen_processor_fixtures.py
"""
import gzip
import io
import json
import pathlib
import shutil
import types

import numpy as np
import PIL
import transformers
from PIL import Image
from transformers import AutoImageProcessor
from transformers.image_utils import load_image
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "processor"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def synthetic_image(w, h, seed, noise_block=32):
    """Smooth gradients (compress well as PNG) plus sharp blocks and one noisy square."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x * 255.0 / max(w - 1, 1)
    g = y * 255.0 / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(x / 7.0 + y / 11.0 + seed)
    img = np.stack([r, g, b], axis=-1).round().clip(0, 255).astype(np.uint8)
    # Flat blocks with hard edges: black/white/saturated colours next to each other.
    for i in range(6):
        bw, bh = max(1, w // (3 + i)), max(1, h // (4 + i))
        x0, y0 = int(rng.integers(0, max(1, w - bw))), int(rng.integers(0, max(1, h - bh)))
        img[y0:y0 + bh, x0:x0 + bw] = rng.choice([0, 255], size=3)
    # A checkerboard strip (1-pixel alternation is the worst case for ringing).
    cw = max(1, w // 5)
    checker = ((np.arange(h)[:, None] + np.arange(cw)[None, :]) % 2 * 255).astype(np.uint8)
    img[:, :cw, 1] = checker
    n = min(noise_block, w, h)
    img[h - n:, w - n:] = rng.integers(0, 256, size=(n, n, 3), dtype=np.uint8)
    return img


def noise_image(w, h, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


class Images:
    def __init__(self):
        self.names = {}
        (OUT / "images").mkdir(parents=True)

    def add(self, name, array):
        Image.fromarray(array, "RGB").save(OUT / "images" / name)
        # Reload: what the test decodes is what Pillow reads back.
        self.names[name] = np.array(Image.open(OUT / "images" / name).convert("RGB"))
        assert np.array_equal(self.names[name], array)
        return name

    def add_jpeg(self, name, array, quality):
        # A decoded JPEG goes through the whole path: vlmrt's decoder, then the processor.
        Image.fromarray(array, "RGB").save(OUT / "images" / name, quality=quality)
        self.names[name] = np.array(load_image(str(OUT / "images" / name)))
        return name

    def pil(self, name):
        return Image.fromarray(self.names[name], "RGB")


def gen_resize(images):
    sources = {
        "noise_37x23.png": noise_image(37, 23, 1),
        "synth_64x48.png": synthetic_image(64, 48, 2, noise_block=12),
        "noise_5x3.png": noise_image(5, 3, 3),
        "noise_1x1.png": noise_image(1, 1, 4),
        "synth_300x4.png": synthetic_image(300, 4, 5, noise_block=4),
        "synth_4x250.png": synthetic_image(4, 250, 6, noise_block=4),
        "synth_129x97.png": synthetic_image(129, 97, 7, noise_block=20),
        "synth_517x389.png": synthetic_image(517, 389, 8, noise_block=24),
    }
    for name, arr in sources.items():
        images.add(name, arr)
    filters = {
        "nearest": Image.Resampling.NEAREST,
        "lanczos": Image.Resampling.LANCZOS,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "box": Image.Resampling.BOX,
        "hamming": Image.Resampling.HAMMING,
    }
    targets = {
        "noise_37x23.png": [(74, 46), (111, 23), (37, 69), (18, 11), (12, 7), (1, 1), (3, 40), (53, 29), (36, 22)],
        "synth_64x48.png": [(28, 28), (56, 56), (64, 20), (16, 48), (100, 75), (7, 5), (64, 49)],
        "noise_5x3.png": [(56, 56), (9, 2), (1, 3), (28, 28)],
        "noise_1x1.png": [(3, 2), (28, 28)],
        "synth_300x4.png": [(150, 2), (28, 28), (600, 4), (13, 1)],
        "synth_4x250.png": [(2, 125), (28, 56), (1, 250), (8, 31)],
        "synth_129x97.png": [(150, 113), (56, 42), (33, 25), (129, 1), (1, 97), (160, 97)],
        "synth_517x389.png": [(84, 56), (130, 98), (28, 28), (33, 389)],
    }
    cases, blob = [], bytearray()
    for src, sizes in targets.items():
        im = images.pil(src)
        for (w, h) in sizes:
            for fname, f in filters.items():
                out = np.array(im.resize((w, h), resample=f))
                assert out.shape == (h, w, 3)
                cases.append({"image": src, "filter": fname, "pil_filter": int(f), "width": w, "height": h,
                              "offset": len(blob), "size": out.nbytes})
                blob += out.tobytes()
    (OUT / "resize").mkdir()
    with gzip.GzipFile(OUT / "resize" / "expected.bin.gz", "wb", mtime=0) as f:
        f.write(bytes(blob))
    (OUT / "resize" / "cases.json").write_text(json.dumps(cases, indent=0) + "\n")
    return len(cases)


CONFIGS = {
    # Qwen/Qwen2-VL-2B-Instruct (transformers 4.x style: min/max_pixels keys)
    "qwen2_vl": {
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor",
    },
    # Qwen/Qwen2.5-VL-3B-Instruct: same image processor class
    "qwen2_5_vl": {
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    },
    # transformers 5 style: the budget in "size" only, written by the Fast class; bilinear to prove "resample" counts
    "qwen2_vl_size_bilinear": {
        "size": {"shortest_edge": 6272, "longest_edge": 200704}, "patch_size": 14, "temporal_patch_size": 2,
        "merge_size": 2, "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "image_processor_type": "Qwen2VLImageProcessorFast",
    },
    # llava-hf/llava-1.5-7b-hf
    "llava_1_5": {
        "crop_size": {"height": 336, "width": 336}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD, "processor_class": "LlavaProcessor",
        "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 336},
    },
    # Small CLIP variants: non-square crop inside the resized image, and a crop larger than it (zero padding).
    "clip_small": {
        "crop_size": {"height": 30, "width": 36}, "image_processor_type": "CLIPImageProcessor",
        "size": {"shortest_edge": 40},
    },
    "clip_pad": {
        "crop_size": {"height": 33, "width": 32}, "do_center_crop": True, "image_processor_type": "CLIPImageProcessor",
        "size": {"shortest_edge": 24}, "image_mean": [0.1, 0.2, 0.3], "image_std": [0.9, 0.8, 0.7],
    },
    # Old-style integer sizes (CLIP: shortest edge; crop: square) and shortest+longest edge.
    "clip_int_size": {
        "crop_size": 28, "image_processor_type": "CLIPImageProcessor", "size": 30, "do_center_crop": True,
    },
    "clip_longest_edge": {
        "image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 32, "longest_edge": 50},
        "do_center_crop": False,
    },
    # Salesforce/blip2-opt-2.7b
    "blip2": {
        "do_normalize": True, "do_resize": True, "image_mean": CLIP_MEAN, "image_processor_type": "BlipImageProcessor",
        "image_std": CLIP_STD, "processor_class": "Blip2Processor", "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"height": 224, "width": 224}, "do_rescale": True,
        "do_convert_rgb": True,
    },
    # Salesforce/blip-image-captioning-base style, but small
    "blip_small": {
        "image_processor_type": "BlipImageProcessor", "size": {"height": 30, "width": 45},
        "do_rescale": True, "do_normalize": False,
    },
}


def gen_processors(images):
    (OUT / "configs").mkdir()
    for name, cfg in CONFIGS.items():
        d = OUT / "configs" / name
        d.mkdir()
        (d / "preprocessor_config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    images.add("synth_100x100.png", synthetic_image(100, 100, 11))
    images.add("synth_250x60.png", synthetic_image(250, 60, 12))
    images.add("synth_45x190.png", synthetic_image(45, 190, 13))
    images.add("noise_28x28.png", noise_image(28, 28, 14))
    images.add("noise_29x31.png", noise_image(29, 31, 15))
    images.add("noise_20x100.png", noise_image(20, 100, 16))
    images.add("noise_12x9.png", noise_image(12, 9, 17))
    images.add("synth_98x70.png", synthetic_image(98, 70, 18))  # 70/28 = 2.5: round half to even
    images.add("synth_1024x768.png", synthetic_image(1024, 768, 19, noise_block=48))
    images.add("synth_500x500.png", synthetic_image(500, 500, 20))
    images.add("synth_40x30.png", synthetic_image(40, 30, 21))
    images.add("synth_333x222.png", synthetic_image(333, 222, 22))
    images.add("synth_401x299.png", synthetic_image(401, 299, 23))
    images.add("synth_57x33.png", synthetic_image(57, 33, 24))
    images.add("synth_20x90.png", synthetic_image(20, 90, 25))
    images.add("synth_30x17.png", synthetic_image(30, 17, 26))
    images.add("synth_150x97.png", synthetic_image(150, 97, 27))
    images.add("synth_600x10.png", synthetic_image(600, 10, 28))
    images.add_jpeg("photo_like_203x157.jpg", synthetic_image(203, 157, 29), quality=87)

    q224 = {"min_pixels": 224 * 224, "max_pixels": 224 * 224}
    case_specs = [
        # name, config, images, processor kwargs (vlmrt overrides)
        ("qwen2_vl_square", "qwen2_vl", ["synth_100x100.png"], {}),
        ("qwen2_vl_wide", "qwen2_vl", ["synth_250x60.png"], {}),
        ("qwen2_vl_tall", "qwen2_vl", ["synth_45x190.png"], {}),
        ("qwen2_vl_tiny_28", "qwen2_vl", ["noise_28x28.png"], {}),
        ("qwen2_vl_tiny_29x31", "qwen2_vl", ["noise_29x31.png"], {}),
        ("qwen2_vl_below_factor", "qwen2_vl", ["noise_20x100.png"], {}),
        ("qwen2_vl_12x9", "qwen2_vl", ["noise_12x9.png"], {}),
        ("qwen2_vl_round_half_even", "qwen2_vl", ["synth_98x70.png"], {}),
        ("qwen2_vl_aspect_60", "qwen2_vl", ["synth_600x10.png"], {}),
        ("qwen2_vl_fixed_224_square", "qwen2_vl", ["synth_500x500.png"], q224),
        ("qwen2_vl_fixed_224_1024x768", "qwen2_vl", ["synth_1024x768.png"], q224),
        ("qwen2_vl_large_downscale", "qwen2_vl", ["synth_1024x768.png"], {"max_pixels": 28 * 28 * 100}),
        ("qwen2_vl_min_pixels", "qwen2_vl", ["synth_40x30.png"], {"min_pixels": 28 * 28 * 16}),
        ("qwen2_vl_batch", "qwen2_vl", ["synth_100x100.png", "synth_250x60.png", "noise_12x9.png"], {}),
        ("qwen2_5_vl", "qwen2_5_vl", ["synth_333x222.png"], {}),
        ("qwen2_vl_size_bilinear", "qwen2_vl_size_bilinear", ["synth_333x222.png", "synth_40x30.png"], {}),
        ("llava_1_5_odd", "llava_1_5", ["synth_401x299.png"], {}),
        ("clip_small_batch", "clip_small", ["synth_57x33.png", "synth_20x90.png", "synth_100x100.png"], {}),
        ("clip_pad", "clip_pad", ["synth_30x17.png", "synth_20x90.png"], {}),
        ("clip_int_size", "clip_int_size", ["synth_57x33.png"], {}),
        ("clip_longest_edge", "clip_longest_edge", ["synth_20x90.png"], {}),
        ("blip2", "blip2", ["synth_150x97.png"], {}),
        ("blip_small_batch", "blip_small", ["synth_57x33.png", "synth_20x90.png"], {}),
        # transformers.image_utils.load_image of a JPEG file, then the processor (the product's whole path).
        ("qwen2_vl_jpeg", "qwen2_vl", ["photo_like_203x157.jpg"], {}),
        ("llava_1_5_jpeg_small", "clip_small", ["photo_like_203x157.jpg"], {}),
    ]
    cases, blob = [], bytearray()
    for name, cfg_name, img_names, kwargs in case_specs:
        proc = AutoImageProcessor.from_pretrained(str(OUT / "configs" / cfg_name), backend="pil")
        assert proc.backend == "pil", type(proc)
        for k, v in kwargs.items():
            setattr(proc, k, v)  # what users do: processor.image_processor.min_pixels = ...
        pils = [images.pil(n) for n in img_names]
        out = proc(images=pils, return_tensors="np")
        pv = np.ascontiguousarray(out["pixel_values"], dtype=np.float32)
        assert out["pixel_values"].dtype == np.float32
        palette, indices = np.unique(pv, return_inverse=True)
        assert len(palette) < 65536
        indices = indices.reshape(-1).astype("<u2")
        assert np.array_equal(palette.astype("<f4")[indices].view(np.uint32), pv.reshape(-1).view(np.uint32))
        case = {"name": name, "config": cfg_name, "class": type(proc).__name__, "images": img_names,
                "overrides": kwargs, "shape": list(pv.shape),
                "palette_offset": len(blob), "palette_count": int(len(palette))}
        blob += palette.astype("<f4").tobytes()
        case["indices_offset"] = len(blob)
        blob += indices.tobytes()
        if "image_grid_thw" in out:
            grid = out["image_grid_thw"]
            case["image_grid_thw"] = grid.tolist()
            # The processor's own expansion of <|image_pad|> (Qwen2VLProcessor.replace_image_token).
            stub = types.SimpleNamespace(image_processor=proc, image_token="<|image_pad|>")
            tokens = [len(Qwen2VLProcessor.replace_image_token(stub, out, i)) // len("<|image_pad|>")
                      for i in range(len(pils))]
            patches = [proc.get_number_of_image_patches(p.height, p.width, dict(kwargs)) for p in pils]
            assert tokens == [n // proc.merge_size ** 2 for n in patches], (tokens, patches)
            case["num_image_tokens"] = tokens
            case["resized_hw"] = [[int(g[1]) * proc.patch_size, int(g[2]) * proc.patch_size] for g in grid]
        cases.append(case)
        print(f"{name}: {type(proc).__name__} {pv.shape} palette {len(palette)}")

    # Inputs the reference refuses, and how (vlmrt must refuse them too, with its own message).
    errors = []
    proc = AutoImageProcessor.from_pretrained(str(OUT / "configs" / "qwen2_vl"), backend="pil")
    for (h, w) in [(1, 201), (300, 1), (2, 500)]:
        try:
            proc(images=[Image.new("RGB", (w, h))], return_tensors="np")
            errors.append({"config": "qwen2_vl", "height": h, "width": w, "error": None})
        except ValueError as e:
            errors.append({"config": "qwen2_vl", "height": h, "width": w, "error": str(e)})
    (OUT / "processor").mkdir()
    with gzip.GzipFile(OUT / "processor" / "expected.bin.gz", "wb", mtime=0) as f:
        f.write(bytes(blob))
    (OUT / "processor" / "cases.json").write_text(json.dumps({"cases": cases, "errors": errors}, indent=1) + "\n")
    return len(cases)


def main():
    # Everything here is generated except README.md.
    OUT.mkdir(parents=True, exist_ok=True)
    for entry in OUT.iterdir():
        if entry.name != "README.md":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    images = Images()
    n_resize = gen_resize(images)
    n_proc = gen_processors(images)
    versions = {"pillow": PIL.__version__, "transformers": transformers.__version__, "numpy": np.__version__}
    (OUT / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    print(f"{n_resize} resize cases, {n_proc} processor cases, versions {versions}")


if __name__ == "__main__":
    main()
