"""Checks that safetensors files written by vlmrt load in the reference `safetensors` package with the values
vlmrt meant to write (the definitions mirror the test "files written for the reference reader" in
tests/tensor/test_tensor_io.cpp).

Run:  VLM_TEST_OUTPUT_DIR=/tmp/vlm-out build/tests/test_tensor -tc="files written for the reference reader"
      tools/oracle/.venv/bin/python tools/oracle/check_written_safetensors.py /tmp/vlm-out
"""
import json
import pathlib
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def expected():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    return {
        "f32": base, "f16": base.half(), "bf16": base.bfloat16(), "f64": base.double(),
        "transposed": base.t().contiguous(),
        "i64": torch.arange(-3, 3, dtype=torch.int64), "i32": torch.arange(-3, 3, dtype=torch.int32),
        "i16": torch.arange(-3, 3, dtype=torch.int16), "i8": torch.arange(-3, 3, dtype=torch.int8),
        "u8": torch.arange(250, 256, dtype=torch.int32).to(torch.uint8),
        "mask": base > 0, "scalar": torch.tensor(2.5),
    }


def check(tensors, label):
    want = expected()
    assert set(tensors) == set(want), (label, sorted(tensors))
    for name, t in want.items():
        got = tensors[name]
        assert got.dtype == t.dtype and got.shape == t.shape and torch.equal(got, t), (label, name, got, t)
    print(f"{label}: {len(tensors)} tensors equal")


def main(folder):
    folder = pathlib.Path(folder)
    single = folder / "single.safetensors"
    check(load_file(single), str(single))
    with safe_open(single, "pt") as f:
        assert f.metadata() == {"format": "pt", "writer": "vlmrt"}, f.metadata()
    index = json.loads((folder / "sharded" / "model.safetensors.index.json").read_text())
    tensors = {}
    for shard in sorted(set(index["weight_map"].values())):
        tensors.update(load_file(folder / "sharded" / shard))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    assert index["metadata"]["total_size"] == total, (index["metadata"], total)
    check(tensors, str(folder / "sharded"))


if __name__ == "__main__":
    main(sys.argv[1])
