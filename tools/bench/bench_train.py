"""LoRA training benchmark, Python peer: transformers + PEFT + torch.optim.AdamW on a "small" random Qwen2-VL.

The checkpoint (Qwen2-VL layout; LM hidden 896, --layers 24, 14 heads / 2 KV heads, intermediate 4864,
vocab --vocab 151936 with Qwen2-VL's special-token ids; vision depth --vision-depth 32, embed 1280, 16 heads,
patch 14, merge 2; random weights, fp32, seed 0) is written once to --model-dir together with a WordLevel
tokenizer.json (one token per whitespace-separated word, specials at Qwen2-VL's ids), the Qwen2-VL chat template,
a Pillow Qwen2-VL preprocessor_config.json and a data set bench_data/train.csv (url,instruction,response) with 8
synthetic 448x448 PNGs and responses of --response-tokens - 1 words (+ <|im_end|> = --response-tokens labels), so
the native benchmark can train on exactly the same folder and CSV. An existing folder is reused when its
config.json matches the flags and refused otherwise (use another --model-dir).

Training: LoRA r 16, alpha 32, dropout 0, q_proj + v_proj; batch 1 x gradient accumulation --grad-accum 8;
examples built like tools/oracle/gen_train_fixtures.py (chat template, Qwen2VLProcessor, prompt masked, loss on the
response tokens, token-sum loss over the window); AdamW lr 2e-4, clip 1.0. One warm-up update (--warmup) is not
timed, then --steps timed updates. --dtype bf16 = torch.autocast("cpu", bfloat16) around the forward (weights fp32).

Prints one JSON line: samples_per_second, tokens_per_second (all input tokens incl. image tokens),
seconds_per_update, peak_rss_mib (getrusage ru_maxrss, whole process incl. building/loading), and the share of the
timed updates spent in data preparation (processor + collate), the vision tower forward (hooks on model.visual),
the LM forward (rest of the forward + loss), backward, and the optimizer (clip + step + zero_grad).

Measured on the 2-core build machine (shared, load average ~10, so wall times are 2-4x the CPU time): one
full-size sample (406 tokens: 256 image + 22 prompt + 128 response) took 169 s fp32 (vision 45 %, LM forward 23 %,
backward 31 %), peak RSS 7.1 GiB, so a full update of 8 samples is ~20 minutes there. Use --layers /
--vision-depth to shrink the model for quick runs (--layers 2 --vision-depth 2: 18-39 s per sample fp32, ~18 s
bf16, peak RSS 2.9 GiB); a shrunk model needs its own --model-dir. Progress goes to stderr; stdout is the JSON line.

Run: tools/oracle/.venv/bin/python tools/bench/bench_train.py --model-dir /tmp/vlmrt-bench-train [--dtype bf16]
"""
import argparse
import csv
import io
import json
import multiprocessing
import pathlib
import resource
import sys
import time

import numpy as np
import torch
import transformers
from peft import LoraConfig, get_peft_model
from PIL import Image
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

REPO = pathlib.Path(__file__).resolve().parents[2]
SPECIALS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>", 151646: "[UNK]",
            151652: "<|vision_start|>", 151653: "<|vision_end|>", 151655: "<|image_pad|>", 151656: "<|video_pad|>"}
WORDS = "system user assistant You are a helpful . Describe this image in detail".split()
NUM_ROWS = 8


def model_config(args):
    return Qwen2VLConfig(
        text_config=dict(vocab_size=args.vocab, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=args.layers, num_attention_heads=14, num_key_value_heads=2,
                         rms_norm_eps=1e-6, max_position_embeddings=32768,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]}),
        vision_config=dict(depth=args.vision_depth, embed_dim=1280, hidden_size=896, num_heads=16, mlp_ratio=4,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653,
        bos_token_id=151643, eos_token_id=151645, tie_word_embeddings=True)


def shape_of(config):
    t, v = config.text_config, config.vision_config
    return dict(layers=t.num_hidden_layers, hidden=t.hidden_size, vocab=t.vocab_size, vision_depth=v.depth,
                vision_embed=v.embed_dim)


def make_tokenizer(vocab_size):
    vocab = {t: i for i, t in SPECIALS.items() if i < vocab_size}
    for i, w in enumerate(WORDS):
        vocab[w] = 100 + i
    for i in range(vocab_size):
        if i not in SPECIALS and not 100 <= i < 100 + len(WORDS):
            vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for i, t in SPECIALS.items() if t != "[UNK]"])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="[UNK]", padding_side="right")


def synthetic_image(size, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    rgb = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), rng.integers(0, 256, (size, size))], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def build(args, folder):
    print(f"building the checkpoint in {folder} ...", file=sys.stderr, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(model_config(args))
    model.save_pretrained(folder)
    del model
    make_tokenizer(args.vocab).save_pretrained(folder)
    Qwen2VLImageProcessorPil(patch_size=14, merge_size=2, temporal_patch_size=2).save_pretrained(folder)
    (folder / "chat_template.jinja").write_text((REPO / "tests/fixtures/chat/templates/qwen2_vl.jinja").read_text())
    data = folder / "bench_data"
    (data / "images").mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["url", "instruction", "response"])
    rng = np.random.default_rng(1)
    for i in range(NUM_ROWS):
        synthetic_image(args.image_size, 10 + i).save(data / "images" / f"img{i}.png")
        words = " ".join(f"w{int(j)}" for j in rng.integers(200, 150000, args.response_tokens - 1))
        writer.writerow([f"images/img{i}.png", "Describe this image in detail .", words])
    (data / "train.csv").write_text(buf.getvalue())


def ensure_model(args):
    folder = pathlib.Path(args.model_dir)
    if not (folder / "config.json").exists():
        # a child process, so that building does not count in this process's peak RSS
        child = multiprocessing.get_context("fork").Process(target=build, args=(args, folder))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"building the checkpoint in {folder} failed (exit code {child.exitcode})")
    have = shape_of(Qwen2VLConfig.from_pretrained(folder))
    want = shape_of(model_config(args))
    if have != want:
        raise SystemExit(f"{folder} holds a checkpoint of shape {have}, the flags ask for {want}: pass another "
                         "--model-dir (or delete that folder)")
    return folder


def make_processor(folder):
    transformers.processing_utils.ProcessorMixin.check_argument_for_proper_class = lambda self, name, arg: arg
    return Qwen2VLProcessor(image_processor=Qwen2VLImageProcessorPil.from_pretrained(folder),
                            tokenizer=PreTrainedTokenizerFast.from_pretrained(folder), video_processor=None,
                            chat_template=(folder / "chat_template.jinja").read_text())


def example(processor, folder, row):
    img = Image.open(folder / "bench_data" / row["url"]).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["instruction"]}]},
                {"role": "assistant", "content": [{"type": "text", "text": row["response"]}]}]
    full = processor.apply_chat_template(messages, tokenize=False)
    prompt = processor.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
    enc = processor(images=[img], text=[full], return_tensors="pt")
    n_prompt = processor(images=[img], text=[prompt], return_tensors="pt")["input_ids"].shape[1]
    labels = enc["input_ids"].clone()
    labels[:, :n_prompt] = -100
    return dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels,
                pixel_values=enc["pixel_values"], image_grid_thw=enc["image_grid_thw"],
                mm_token_type_ids=enc["mm_token_type_ids"])


class Timers:
    def __init__(self):
        self.total = {k: 0.0 for k in ("data", "vision", "lm_forward", "backward", "optimizer")}
        self._vision_start = None
        self.vision_now = 0.0

    def vision_pre(self, *_):
        self._vision_start = time.perf_counter()

    def vision_post(self, *_):
        self.vision_now += time.perf_counter() - self._vision_start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True, help="checkpoint cache folder, created when missing")
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--vision-depth", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--image-size", type=int, default=448)
    ap.add_argument("--response-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3, help="timed optimizer updates")
    ap.add_argument("--warmup", type=int, default=1, help="untimed updates first")
    ap.add_argument("--grad-accum", type=int, default=8)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    t_build = time.perf_counter()
    folder = ensure_model(args)
    model = Qwen2VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32, attn_implementation=args.attn)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    model.train()
    trainable, total = model.get_nb_trainable_parameters()
    processor = make_processor(folder)
    with open(folder / "bench_data" / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    load_seconds = time.perf_counter() - t_build

    timers = Timers()
    visual = model.base_model.model.model.visual
    visual.register_forward_pre_hook(timers.vision_pre)
    visual.register_forward_hook(timers.vision_post)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    cursor = 0
    samples = tokens = 0
    update_seconds = []
    for update in range(args.warmup + args.steps):
        timed = update >= args.warmup
        part = {k: 0.0 for k in timers.total}
        t_update = time.perf_counter()
        t0 = time.perf_counter()
        batch = []
        for _ in range(args.grad_accum):
            batch.append(example(processor, folder, rows[cursor % len(rows)]))
            cursor += 1
        n_window = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batch)
        part["data"] += time.perf_counter() - t0
        for b in batch:
            timers.vision_now = 0.0
            t0 = time.perf_counter()
            with autocast:
                logits = model(**{k: v for k, v in b.items() if k != "labels"}, use_cache=False).logits
            ce = torch.nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1), b["labels"][:, 1:].flatten(),
                                                   ignore_index=-100, reduction="sum")
            loss = ce / n_window
            t1 = time.perf_counter()
            part["vision"] += timers.vision_now
            part["lm_forward"] += (t1 - t0) - timers.vision_now
            loss.backward()
            part["backward"] += time.perf_counter() - t1
            if timed:
                samples += 1
                tokens += b["input_ids"].numel()
        t0 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        part["optimizer"] += time.perf_counter() - t0
        seconds = time.perf_counter() - t_update
        print(f"update {update + 1}{'' if timed else ' (warm-up)'}: {seconds:.2f} s", file=sys.stderr, flush=True)
        if timed:
            update_seconds.append(seconds)
            for k in part:
                timers.total[k] += part[k]

    timed_total = sum(update_seconds)
    result = dict(
        bench="train", impl="transformers+peft", transformers=transformers.__version__, torch=torch.__version__,
        dtype=args.dtype, threads=torch.get_num_threads(), attn=args.attn, model=shape_of(model_config(args)),
        lora=dict(r=16, alpha=32, targets=["q_proj", "v_proj"]), trainable_params=trainable, all_params=total,
        batch=1, grad_accum=args.grad_accum, image_size=args.image_size, response_tokens=args.response_tokens,
        tokens_per_sample=tokens / max(samples, 1), steps=args.steps, warmup=args.warmup,
        samples_per_second=samples / timed_total if timed_total else None,
        tokens_per_second=tokens / timed_total if timed_total else None,
        seconds_per_update=timed_total / len(update_seconds) if update_seconds else None,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, load_seconds=load_seconds,
        share={k: v / timed_total if timed_total else None for k, v in timers.total.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
