#!/usr/bin/env python3
"""Chat template benchmark: vlmrt (bench/chat/bench_chat) vs transformers' apply_chat_template, in the same run.

Builds N conversations (default 3,000: 1-8 turns, system prompts, images, Unicode) split over the real templates
(Qwen3 from the shared tokenizer, Qwen2-VL, llava-hf), renders them with transformers (tokenizer /
processor.apply_chat_template(tokenize=False), template compiled once and cached as transformers does), writes the
workload with Python's prompts, runs the native program (which checks every prompt byte for byte), and prints both
times and the ratio. Also times the bare jinja2 render (compiled.render) to show how much is transformers' overhead.

Usage (from the repository root, after building the bench_chat target):
  tools/oracle/.venv/bin/python tools/oracle/bench_chat_template.py --native build-chat/bench/chat/bench_chat
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_chat_fixtures import LLAVA, QWEN2_VL, load_tokenizer, make_processor  # noqa: E402
from transformers.utils.chat_template_utils import _compile_jinja_template  # noqa: E402

WORDS = "the a cat dog image shows red blue green large small café 東京 naïve résumé what is where how many".split()


def sentence(rng):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))).capitalize() + rng.choice(".?!")


def conversation(rng, vision):
    messages = []
    if rng.random() < 0.4:
        text = sentence(rng)
        messages.append({"role": "system", "content": [{"type": "text", "text": text}] if vision else text})
    for turn in range(rng.randint(1, 4)):
        if vision:
            content = [{"type": "image"} for _ in range(rng.randint(0 if turn else 1, 2))]
            content.append({"type": "text", "text": sentence(rng)})
            messages.append({"role": "user", "content": content})
            if rng.random() < 0.8:
                messages.append({"role": "assistant", "content": [{"type": "text", "text": sentence(rng)}]})
        else:
            messages.append({"role": "user", "content": sentence(rng)})
            if rng.random() < 0.8:
                messages.append({"role": "assistant", "content": sentence(rng)})
    return messages


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--native", required=True, help="path of the bench_chat program")
    ap.add_argument("--conversations", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3, help="repetitions on each side (best time is reported)")
    args = ap.parse_args()

    rng = random.Random(1234)
    qwen3 = load_tokenizer("qwen3")
    llama2 = load_tokenizer("llama2")
    renderers = {
        "qwen3": (qwen3, qwen3.chat_template, False),
        "qwen2_vl": (make_processor("qwen2_vl", qwen3, QWEN2_VL), QWEN2_VL, True),
        "llava": (make_processor("llava", llama2, LLAVA), LLAVA, True),
    }
    names = list(renderers)
    items = []
    for i in range(args.conversations):
        name = names[i % len(names)]
        items.append({"template": name, "messages": conversation(rng, renderers[name][2]),
                      "add_generation_prompt": rng.random() < 0.5})

    def run_python():
        out = []
        for item in items:
            obj = renderers[item["template"]][0]
            out.append(obj.apply_chat_template(item["messages"], tokenize=False,
                                               add_generation_prompt=item["add_generation_prompt"]))
        return out

    prompts = run_python()  # warm-up: compiles and caches the templates
    py_best = min(timed(run_python) for _ in range(args.repeat))

    special = {"qwen3": qwen3.special_tokens_map, "qwen2_vl": qwen3.special_tokens_map, "llava": llama2.special_tokens_map}

    def run_bare():
        for item in items:
            compiled = _compile_jinja_template(renderers[item["template"]][1])
            compiled.render(messages=item["messages"], tools=None, documents=None,
                            add_generation_prompt=item["add_generation_prompt"], **special[item["template"]])
    bare_best = min(timed(run_bare) for _ in range(args.repeat))

    for item, prompt in zip(items, prompts):
        item["expected"] = prompt
    workload = {"templates": {n: renderers[n][1] for n in names}, "special_tokens": special, "items": items}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(workload, f, ensure_ascii=False)
        path = f.name
    try:
        result = subprocess.run([args.native, path, "--repeat", str(args.repeat)], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if result.returncode != 0 and not result.stdout:
        sys.exit(f"native side failed: {result.stderr}")
    native = json.loads(result.stdout)
    n = len(items)
    print(f"conversations: {n} (qwen3, qwen2_vl, llava), best of {args.repeat}")
    print(f"python transformers apply_chat_template: {py_best:.4f} s ({py_best / n * 1e6:.1f} us/prompt)")
    print(f"python bare jinja2 compiled.render:      {bare_best:.4f} s ({bare_best / n * 1e6:.1f} us/prompt)")
    print(f"vlmrt apply_chat_template:               {native['best_seconds']:.4f} s "
          f"({native['best_seconds'] / n * 1e6:.1f} us/prompt; parsing the 3 templates {native['parse_seconds'] * 1e3:.2f} ms)")
    print(f"prompts differing from Python: {native['mismatches']}")
    print(f"speed-up vs apply_chat_template: {py_best / native['best_seconds']:.1f}x; "
          f"vs bare jinja2 render: {bare_best / native['best_seconds']:.1f}x")
    return 0 if native["mismatches"] == 0 else 1


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
