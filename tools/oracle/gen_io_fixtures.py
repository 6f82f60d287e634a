"""Writes tests/fixtures/io/: safetensors files made by the reference `safetensors` package (every dtype, a
sharded checkpoint through huggingface_hub) with the expected bytes of every tensor, for the C++ reader.

Run: tools/oracle/.venv/bin/python tools/oracle/gen_io_fixtures.py
"""
import json
import pathlib
import shutil

import huggingface_hub
import numpy as np
import safetensors
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "io"


def tensors_of_every_dtype():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2, 3, generator=g) * 100
    return {
        "f64": base.to(torch.float64),
        "f32": base.to(torch.float32),
        "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16),
        "i64": torch.tensor([[-(2**40), 0, 2**40]], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), -1, 0, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-32768, 7, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 1, 254, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True], dtype=torch.bool),
        "u16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
        "u32": torch.tensor([0, 1, 2**32 - 1], dtype=torch.uint32),
        "u64": torch.tensor([0, 1, 2**63], dtype=torch.uint64),
        "f8_e4m3": torch.tensor([0.5, -2.0, 448.0], dtype=torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([0.5, -2.0, 57344.0], dtype=torch.float8_e5m2),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }


def expected_entry(t):
    raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    entry = {"shape": list(t.shape), "bytes_hex": raw.hex()}
    if t.dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        entry["values"] = t.to(torch.float64).flatten().tolist()
    return entry


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    tensors = tensors_of_every_dtype()
    save_file(tensors, OUT / "all_dtypes.safetensors", metadata={"format": "pt", "note": "every dtype"})
    expected = {name: expected_entry(t) for name, t in tensors.items()}
    (OUT / "all_dtypes.expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")

    # A sharded checkpoint as transformers/huggingface_hub write it (small shard size to force 3+ shards).
    g = torch.Generator().manual_seed(1)
    state = {f"model.layers.{i}.weight": torch.randn(8, 8, generator=g) for i in range(4)}
    state["model.embed_tokens.weight"] = torch.randn(16, 8, generator=g).to(torch.bfloat16)
    sharded = OUT / "sharded"
    sharded.mkdir()
    huggingface_hub.save_torch_state_dict(state, sharded, max_shard_size=600)
    (OUT / "sharded.expected.json").write_text(
        json.dumps({k: expected_entry(v) for k, v in state.items()}, indent=1, sort_keys=True) + "\n")

    versions = {"torch": torch.__version__, "safetensors": safetensors.__version__,
                "huggingface_hub": huggingface_hub.__version__, "numpy": np.__version__}
    (OUT / "VERSIONS.json").write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n")
    print("wrote", OUT, versions)


if __name__ == "__main__":
    main()
