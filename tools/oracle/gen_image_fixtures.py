"""Writes tests/fixtures/image/: PNG and JPEG files in every mode vlmrt must read, and for each the RGB pixels
Hugging Face's `transformers.image_utils.load_image` returns (Pillow: open -> exif_transpose -> convert("RGB")).

PNG variants Pillow cannot write (interlaced, 2/4-bit gray, 16-bit colour) are written with pypng.
Run: tools/oracle/.venv/bin/python tools/oracle/gen_image_fixtures.py
"""
import io
import json
import pathlib
import shutil

import numpy as np
import PIL
import png  # pypng
import transformers
from PIL import Image
from transformers.image_utils import load_image

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "image"
W, H = 23, 13  # odd sizes catch stride and subsampling edge cases
rng = np.random.default_rng(1234)


def gradient_rgb(w=W, h=H):
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    return np.stack([r, g, b], axis=-1)


def write_pypng(name, rows, **kw):
    path = OUT / name
    with open(path, "wb") as f:
        png.Writer(**kw).write(f, rows)
    return path


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    files = []
    rgb = gradient_rgb()
    gray = rgb[..., 0] // 2 + rgb[..., 2] // 2

    # Pillow-written PNGs.
    Image.fromarray(rgb).save(OUT / "rgb8.png"); files.append("rgb8.png")
    Image.fromarray(gray).save(OUT / "gray8.png"); files.append("gray8.png")
    Image.fromarray(gray > 127).save(OUT / "gray1.png"); files.append("gray1.png")
    rgba = np.dstack([rgb, rng.integers(0, 256, size=(H, W), dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(OUT / "rgba8.png"); files.append("rgba8.png")
    Image.fromarray(np.dstack([gray, 255 - gray]), "LA").save(OUT / "graya8.png"); files.append("graya8.png")
    pal = Image.fromarray(rgb).quantize(colors=16)
    pal.save(OUT / "palette8.png"); files.append("palette8.png")
    pal.save(OUT / "palette4.png", bits=4); files.append("palette4.png")
    pal.save(OUT / "palette_trns.png", transparency=3); files.append("palette_trns.png")
    g16 = (rng.integers(0, 65536, size=(H, W))).astype(np.uint16)
    g16[0, :5] = [0, 1, 255, 256, 65535]
    Image.fromarray(g16).save(OUT / "gray16.png"); files.append("gray16.png")
    Image.fromarray(rgb).save(OUT / "rgb_trns.png", transparency=(0, 0, 0)); files.append("rgb_trns.png")

    # pypng-written PNGs.
    files.append(write_pypng("gray2.png", (gray >> 6).tolist(), width=W, height=H, greyscale=True, bitdepth=2).name)
    files.append(write_pypng("gray4.png", (gray >> 4).tolist(), width=W, height=H, greyscale=True, bitdepth=4).name)
    rgb16 = rng.integers(0, 65536, size=(H, W, 3)).astype(np.uint16)
    files.append(write_pypng("rgb16.png", rgb16.reshape(H, -1).tolist(), width=W, height=H, greyscale=False,
                             bitdepth=16).name)
    rgba16 = rng.integers(0, 65536, size=(H, W, 4)).astype(np.uint16)
    files.append(write_pypng("rgba16.png", rgba16.reshape(H, -1).tolist(), width=W, height=H, greyscale=False,
                             alpha=True, bitdepth=16).name)
    ga16 = rng.integers(0, 65536, size=(H, W, 2)).astype(np.uint16)
    files.append(write_pypng("graya16.png", ga16.reshape(H, -1).tolist(), width=W, height=H, greyscale=True,
                             alpha=True, bitdepth=16).name)
    files.append(write_pypng("rgb8_interlaced.png", rgb.reshape(H, -1).tolist(), width=W, height=H,
                             greyscale=False, bitdepth=8, interlace=True).name)
    files.append(write_pypng("gray1_interlaced.png", (gray > 100).astype(int).tolist(), width=W, height=H,
                             greyscale=True, bitdepth=1, interlace=True).name)
    palette = [tuple(int(v) for v in rng.integers(0, 256, size=3)) for _ in range(4)]
    idx = (rgb[..., 0] // 64).tolist()
    files.append(write_pypng("palette2_interlaced.png", idx, width=W, height=H, palette=palette, bitdepth=2,
                             interlace=True).name)

    # JPEGs written by Pillow (libjpeg-turbo).
    big = gradient_rgb(64, 48)
    Image.fromarray(big).save(OUT / "baseline.jpg", quality=90); files.append("baseline.jpg")
    Image.fromarray(big).save(OUT / "baseline444.jpg", quality=95, subsampling=0); files.append("baseline444.jpg")
    Image.fromarray(big).save(OUT / "progressive.jpg", quality=85, progressive=True); files.append("progressive.jpg")
    Image.fromarray(big[..., 1]).save(OUT / "gray.jpg", quality=90); files.append("gray.jpg")
    Image.fromarray(big).convert("CMYK").save(OUT / "cmyk.jpg", quality=90); files.append("cmyk.jpg")
    Image.fromarray(rgb).save(OUT / "odd.jpg", quality=75); files.append("odd.jpg")

    # EXIF orientation 1..8, in JPEG (APP1) and PNG (eXIf chunk).
    asym = gradient_rgb(7, 4)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = f"orient{orientation}.png"
        Image.fromarray(asym).save(OUT / name, exif=exif); files.append(name)
        name = f"orient{orientation}.jpg"
        Image.fromarray(gradient_rgb(16, 8)).save(OUT / name, quality=95, subsampling=0, exif=exif)
        files.append(name)

    manifest = {}
    for name in files:
        image = load_image(str(OUT / name))
        arr = np.asarray(image, dtype=np.uint8)
        assert image.mode == "RGB"
        (OUT / (name + ".rgb")).write_bytes(arr.tobytes())
        manifest[name] = {"width": image.width, "height": image.height, "source_mode": Image.open(OUT / name).mode}

    # Corrupt inputs: the C++ tests build most of them by cutting these files; these two need crafting.
    data = (OUT / "rgb8.png").read_bytes()
    bad_crc = bytearray(data)
    bad_crc[-20] ^= 0xFF  # inside IDAT data -> CRC mismatch / zlib error
    (OUT / "corrupt_idat.png").write_bytes(bytes(bad_crc))
    jpg = (OUT / "baseline.jpg").read_bytes()
    (OUT / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    for name in ["corrupt_idat.png", "truncated.jpg"]:
        try:
            load_image(str(OUT / name)).load()
            manifest[name] = {"pillow": "decoded"}
        except Exception as e:  # record what the reference does with it
            manifest[name] = {"pillow_error": type(e).__name__ + ": " + str(e)}

    manifest["_versions"] = {"pillow": PIL.__version__, "transformers": transformers.__version__,
                             "pypng": png.__version__, "numpy": np.__version__}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print("wrote", len(files), "images to", OUT)


if __name__ == "__main__":
    main()
