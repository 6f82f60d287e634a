"""Writes tests/fixtures/train/: the reference that vlmrt's LoRA training engine must equal. Everything runs
explicitly with the pinned libraries (transformers model + PEFT get_peft_model + torch.optim.AdamW +
transformers' get_linear_schedule_with_warmup + clip_grad_norm_ + the token-sum loss of
/work/shared/docs/trainer-notes.md), float32, CPU, fixed seeds. The real transformers Trainer is run once too
(trainer_log.json) to record how it differs. File formats: tests/fixtures/train/README.md.

Base model: tests/fixtures/session/qwen2_vl_tiny (read only).

Run: tools/oracle/.venv/bin/python tools/oracle/gen_train_fixtures.py
"""
import copy
import csv
import io
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import warnings

import numpy as np
import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageTextToText, PreTrainedTokenizerFast, get_linear_schedule_with_warmup
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

REPO = pathlib.Path(__file__).resolve().parents[2]
ROOT = REPO / "tests" / "fixtures"
BASE = ROOT / "session" / "qwen2_vl_tiny"
BASE_REL = "tests/fixtures/session/qwen2_vl_tiny"
OUT = ROOT / "train"
PAD_ID = 0  # the tokenizer's pad token <|endoftext|>
IGNORE = -100

ROWS = [  # (width, height, instruction, response); every word is in the tiny WordLevel vocabulary
    (56, 56, "Describe this image .", "a red table in the kitchen ."),
    (84, 56, "What is in the picture ?", "two cats on a blue sofa ."),
    (56, 112, "What color is the lamp ?", "it is green ."),
    (64, 48, "how many dog ?", "there is a big dog and two cats with a lamp"),
    (48, 80, "Describe the room .", "a living room , with a sofa\nand a window ."),
    (72, 72, "What is on the table ?", "a small red lamp ."),
    (40, 40, "Describe this photo .", "the kitchen with a big window and a table ."),
    (96, 32, "What is in the room ?", "a chair , a sofa and a lamp !"),
]

CURVE = dict(seed=42, per_device_train_batch_size=2, gradient_accumulation_steps=2, num_train_epochs=10,
             max_steps=20, learning_rate=2e-3, lr_scheduler_type="linear", warmup_ratio=0.1, weight_decay=0.01,
             adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=0.05)
ONE_STEP = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
LORA_START = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])


def image(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), rng.integers(0, 256, (h, w))], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def make_processor():
    tokenizer = PreTrainedTokenizerFast.from_pretrained(BASE)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(BASE)
    # torchvision (needed only by the video processor class check) is not in the pinned environment; no videos here
    transformers.processing_utils.ProcessorMixin.check_argument_for_proper_class = lambda self, name, arg: arg
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                            chat_template=(BASE / "chat_template.jinja").read_text())


def load_base():
    return AutoModelForImageTextToText.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32)


def write_data():
    data = OUT / "data"
    (data / "images").mkdir(parents=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["url", "instruction", "response"])
    for i, (w, h, ins, resp) in enumerate(ROWS):
        image(w, h, 100 + i).save(data / "images" / f"img{i}.png")
        writer.writerow([f"images/img{i}.png", ins, resp])
    (data / "train.csv").write_text(buf.getvalue())


def read_rows():
    with open(OUT / "data" / "train.csv", newline="") as f:
        return list(csv.DictReader(f))


def tokenize(processor):
    """Per row: the training example exactly as the recommended data path builds it."""
    rows = read_rows()
    assert len(rows) == 8 and rows[4]["response"] == ROWS[4][3]
    examples, texts = [], []
    for i, row in enumerate(rows):
        img = Image.open(OUT / "data" / row["url"]).convert("RGB")
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["instruction"]}]},
                    {"role": "assistant", "content": [{"type": "text", "text": row["response"]}]}]
        full = processor.apply_chat_template(messages, tokenize=False)
        prompt = processor.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
        assert full.startswith(prompt), (full, prompt)
        assert full.endswith(row["response"] + "<|im_end|>\n"), full
        enc = processor(images=[img], text=[full], return_tensors="pt")
        penc = processor(images=[img], text=[prompt], return_tensors="pt")
        ids, pids = enc["input_ids"][0], penc["input_ids"][0]
        assert torch.equal(ids[:len(pids)], pids), f"row {i}: prompt ids are not a prefix of the full ids"
        labels = ids.clone()
        labels[:len(pids)] = IGNORE
        examples.append(dict(input_ids=ids.long(), labels=labels.long(), pixel_values=enc["pixel_values"].float(),
                             image_grid_thw=enc["image_grid_thw"].long(),
                             mm_token_type_ids=enc["mm_token_type_ids"][0].long()))
        texts.append(dict(row=i, url=row["url"], instruction=row["instruction"], response=row["response"],
                          full_text=full, prompt_text=prompt, num_prompt_tokens=len(pids), num_tokens=len(ids),
                          image_size=list(img.size), image_grid_thw=enc["image_grid_thw"][0].tolist(),
                          response_token_ids=ids[len(pids):].tolist()))
    tensors = {}
    for i, ex in enumerate(examples):
        for k in ("input_ids", "labels", "pixel_values", "image_grid_thw", "mm_token_type_ids"):
            tensors[f"{k}_{i}"] = ex[k].contiguous()
    save_file(tensors, OUT / "tokenized.safetensors")
    info = dict(chat_template="tests/fixtures/session/qwen2_vl_tiny/chat_template.jinja", pad_token_id=PAD_ID,
                ignore_index=IGNORE, rows=texts,
                note=("full text ends with '<|im_end|>\\n'; the WordLevel tokenizer's Whitespace pre-tokenizer emits "
                      "no token for the trailing newline (nor for the newline inside row 4), so the last label is "
                      "<|im_end|> (id 2)"))
    (OUT / "tokenized.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    return examples


def collate(examples, idx):
    """Right padding with PAD_ID; labels -100 and attention_mask 0 on padding."""
    L = max(len(examples[i]["input_ids"]) for i in idx)
    B = len(idx)
    ids = torch.full((B, L), PAD_ID, dtype=torch.long)
    labels = torch.full((B, L), IGNORE, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    mm = torch.zeros((B, L), dtype=torch.long)
    for b, i in enumerate(idx):
        n = len(examples[i]["input_ids"])
        ids[b, :n] = examples[i]["input_ids"]
        labels[b, :n] = examples[i]["labels"]
        mask[b, :n] = 1
        mm[b, :n] = examples[i]["mm_token_type_ids"]
    return dict(input_ids=ids, attention_mask=mask, labels=labels, mm_token_type_ids=mm,
                pixel_values=torch.cat([examples[i]["pixel_values"] for i in idx]),
                image_grid_thw=torch.cat([examples[i]["image_grid_thw"] for i in idx]))


def forward_logits(model, batch):
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"],
                mm_token_type_ids=batch["mm_token_type_ids"], use_cache=False)
    return out.logits.float()


def token_ce_sum(logits, labels):
    """Sum of token cross-entropies over the shifted labels, and the number of predicted tokens."""
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    ce = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE, reduction="sum")
    return ce, int((shift_labels != IGNORE).sum())


def saved_key(param_name, adapter="default"):
    """Parameter name in the PeftModel -> key in adapter_model.safetensors (PEFT drops the adapter name)."""
    return param_name.replace(f".{adapter}.", ".").replace(f".{adapter}", "")


def lora_params(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def randomise(model, seed, magnitude=False, lora_bias=False, modules_to_save=False):
    """lora_B ~ N(0, 0.02) (seeded) so the adapter changes the output and A gets gradients."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n and (n.endswith("weight") or (lora_bias and n.endswith("bias"))):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif magnitude and "lora_magnitude_vector" in n:
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif modules_to_save and "modules_to_save" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.02)


def save_adapter(model, folder):
    model.peft_config["default"].base_model_name_or_path = BASE_REL
    model.save_pretrained(folder)
    # the model card PEFT writes names this checkout's absolute path; loading never reads it
    (pathlib.Path(folder) / "README.md").unlink(missing_ok=True)


def make_start_adapter():
    torch.manual_seed(0)
    model = get_peft_model(load_base(), LoraConfig(**LORA_START))
    randomise(model, 1)
    save_adapter(model, OUT / "adapter_start")
    return model


def load_start(is_trainable=True):
    return PeftModel.from_pretrained(load_base(), OUT / "adapter_start", is_trainable=is_trainable)


def one_step(examples):
    model = load_start()
    model.train()
    batch = collate(examples, [0, 1])
    logits = forward_logits(model, batch)
    ce, n = token_ce_sum(logits, batch["labels"])
    loss = ce / n
    with torch.no_grad():  # transformers' own loss (no num_items_in_batch: mean over predicted tokens) agrees
        own = model(**{k: v for k, v in batch.items()}, use_cache=False).loss
    assert abs(float(own) - float(loss)) < 1e-5, (float(own), float(loss))
    loss.backward()
    params = lora_params(model)
    out = {"batch_input_ids": batch["input_ids"], "batch_attention_mask": batch["attention_mask"],
           "batch_labels": batch["labels"], "batch_pixel_values": batch["pixel_values"],
           "batch_image_grid_thw": batch["image_grid_thw"], "batch_mm_token_type_ids": batch["mm_token_type_ids"],
           "loss": loss.detach().reshape(()), "num_predicted_tokens": torch.tensor(n, dtype=torch.long),
           "logits": logits.detach()}
    for name, p in params:
        out["before." + saved_key(name)] = p.detach().clone()
        out["grad." + saved_key(name)] = p.grad.detach().clone()
    opt = torch.optim.AdamW([p for _, p in params], **ONE_STEP)
    opt.step()
    for name, p in params:
        out["after." + saved_key(name)] = p.detach().clone()
    # no metadata: safetensors writes its map in random order, which would make regeneration non-reproducible
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "one_step.safetensors")
    return batch, float(loss), n


def orders_for(epochs, seed, n):
    orders = []
    for epoch in range(epochs):
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        orders.append(torch.randperm(n, generator=g).tolist())
    return orders


def curve(examples):
    cfg = CURVE
    N, bs, ga = len(examples), cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"]
    len_dl = math.ceil(N / bs)
    updates_per_epoch = max(len_dl // ga + (len_dl % ga > 0), 1)
    total = cfg["max_steps"]
    warmup = math.ceil(total * cfg["warmup_ratio"])
    epochs = math.ceil(total / updates_per_epoch)
    assert epochs == cfg["num_train_epochs"]
    orders = orders_for(epochs, cfg["seed"], N)

    torch.manual_seed(cfg["seed"])
    model = load_start()
    model.train()
    params = [p for _, p in lora_params(model)]
    opt = torch.optim.AdamW(params, lr=cfg["learning_rate"], betas=(cfg["adam_beta1"], cfg["adam_beta2"]),
                            eps=cfg["adam_epsilon"], weight_decay=cfg["weight_decay"])
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    updates = []
    early = {}  # weights after the first updates, to localise a mismatch (warmup lr 0, clipping, decay)
    step = 0
    for epoch, order in enumerate(orders):
        micro = [order[j:j + bs] for j in range(0, N, bs)]
        windows = [micro[j:j + ga] for j in range(0, len(micro), ga)]
        for window in windows:
            if step >= total:
                break
            batches = [collate(examples, idx) for idx in window]
            n_window = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
            loss_sum = 0.0
            for b in batches:
                ce, _ = token_ce_sum(forward_logits(model, b), b["labels"])
                (ce / n_window).backward()
                loss_sum += float(ce.detach())
            lr = sched.get_last_lr()[0]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg["max_grad_norm"]))
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step <= 3:
                for name, p in lora_params(model):
                    early[f"after_update_{step}.{saved_key(name)}"] = p.detach().clone()
            updates.append(dict(step=step, epoch=epoch, micro_batches=window, loss=loss_sum / n_window,
                                num_predicted_tokens=n_window, grad_norm=grad_norm, learning_rate=lr,
                                clipped=grad_norm > cfg["max_grad_norm"]))
    config = dict(cfg, warmup_steps=warmup, total_updates=total, updates_per_epoch=updates_per_epoch,
                  num_examples=N, shuffle="per epoch: g=torch.Generator(); g.manual_seed(seed+epoch); "
                  "torch.randperm(num_examples, generator=g); micro-batches are consecutive slices of the order",
                  padding="right", pad_token_id=PAD_ID, loss="sum of token CE over shifted labels in the "
                  "accumulation window / predicted tokens in the window", optimizer="torch.optim.AdamW, one group, "
                  "all LoRA tensors decayed", schedule="transformers.get_linear_schedule_with_warmup; update k uses "
                  "the multiplier of step k-1", clipping="torch.nn.utils.clip_grad_norm_ (norm 2) before every "
                  "update; grad_norm is the pre-clip total", dtype="float32", lora=LORA_START,
                  start_adapter="adapter_start", base_model=BASE_REL)
    (OUT / "curve.json").write_text(json.dumps(dict(config=config, orders=orders, updates=updates), indent=1) + "\n")
    save_file(early, OUT / "curve_weights.safetensors")
    save_adapter(model, OUT / "adapter_after_curve")
    return orders, updates


class RowDataset(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"row": i}


def trainer_run(examples, orders, updates):
    """The real transformers Trainer with the same settings; only its logged losses are kept."""
    cfg = CURVE
    torch.manual_seed(cfg["seed"])
    model = load_start()
    seen_orders = []

    def collator(items):
        idx = [it["row"] for it in items]
        seen_orders.append(idx)
        return collate(examples, idx)

    with tempfile.TemporaryDirectory() as tmp:
        args = transformers.TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg["per_device_train_batch_size"],
            gradient_accumulation_steps=cfg["gradient_accumulation_steps"], num_train_epochs=cfg["num_train_epochs"],
            learning_rate=cfg["learning_rate"], lr_scheduler_type="linear", warmup_steps=cfg["warmup_ratio"],
            weight_decay=cfg["weight_decay"], max_grad_norm=cfg["max_grad_norm"], logging_steps=1,
            seed=cfg["seed"], report_to=[], use_cpu=True, remove_unused_columns=False, save_strategy="no",
            dataloader_num_workers=0, disable_tqdm=True)
        trainer = transformers.Trainer(model=model, args=args, train_dataset=RowDataset(len(examples)),
                                       data_collator=collator)
        trainer.train()
        # wall-clock figures would make the file differ on every regeneration
        history = [{k: (None if "runtime" in k or "per_second" in k else v) for k, v in h.items()}
                   for h in trainer.state.log_history]
    logged = [h for h in history if "loss" in h]
    flat = [i for o in orders for i in o]
    trainer_flat = [i for b in seen_orders for i in b]
    final = {saved_key(n): p.detach().clone() for n, p in lora_params(model)}
    ref = load_file(OUT / "adapter_after_curve" / "adapter_model.safetensors")
    max_weight_diff = max(float((final[k] - ref[k]).abs().max()) for k in ref)
    rows = []
    for h, u in zip(logged, updates):
        rows.append(dict(step=h["step"], trainer_loss=h["loss"], explicit_loss=u["loss"],
                         ratio=h["loss"] / u["loss"], trainer_grad_norm=h.get("grad_norm"),
                         explicit_grad_norm=u["grad_norm"], trainer_learning_rate=h.get("learning_rate"),
                         explicit_learning_rate=u["learning_rate"]))
    result = dict(transformers=transformers.__version__, peft=peft.__version__, torch=torch.__version__,
                  same_data_order=trainer_flat[:len(flat)] == flat, trainer_order=seen_orders,
                  max_abs_diff_final_adapter_vs_explicit=max_weight_diff, log_history=history, compared=rows)
    (OUT / "trainer_log.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    return result


VARIANTS = {
    "rslora": dict(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "v_proj"]),
    "dora": dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj"]),
    "all_linear": dict(r=4, lora_alpha=8, target_modules="all-linear"),
    "regex": dict(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|o_proj)"),
    "patterns": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"], rank_pattern={"v_proj": 2},
                     alpha_pattern={"gate_proj": 16}),
    "layers": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], layers_to_transform=[1]),
    "exclude": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                    exclude_modules=["model.language_model.layers.0.self_attn.v_proj"]),
    "lora_bias": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_bias=True),
    "modules_to_save": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head"]),
}


def jsonable(d):
    out = {}
    for k, v in d.items():
        if isinstance(v, set):
            v = sorted(v)
        elif hasattr(v, "value") and not isinstance(v, (int, float, str)):
            v = v.value
        try:
            json.dumps(v)
        except TypeError:
            v = str(v)
        out[k] = v
    return out


def variants(batch):
    index = {}
    for k, (name, cfg) in enumerate(VARIANTS.items()):
        folder = OUT / "variants" / name
        torch.manual_seed(10 + k)
        base = load_base()
        tied_before = base.lm_head.weight.data_ptr() == base.model.language_model.embed_tokens.weight.data_ptr()
        model = get_peft_model(base, LoraConfig(lora_dropout=0.0, **cfg))
        randomise(model, 20 + k, magnitude=cfg.get("use_dora", False), lora_bias=cfg.get("lora_bias", False),
                  modules_to_save=bool(cfg.get("modules_to_save")))
        model.eval()
        trainable, total = model.get_nb_trainable_parameters()
        lora_modules = sorted({n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n})
        save_adapter(model, folder)
        keys = {}
        with safetensors.safe_open(folder / "adapter_model.safetensors", "pt") as f:
            for key in f.keys():
                keys[key] = list(f.get_slice(key).get_shape())
        with torch.no_grad():
            logits = forward_logits(model, batch)
            # reload from disk to prove the saved files alone reproduce the logits
            reloaded = PeftModel.from_pretrained(load_base(), folder).eval()
            reload_diff = float((forward_logits(reloaded, batch) - logits).abs().max())
            merged = reloaded.merge_and_unload().eval()
            merged_logits = forward_logits(merged, batch)
        base_logits = forward_logits(load_base().eval(), batch).detach()
        save_file({"logits": logits.contiguous(), "merged_logits": merged_logits.contiguous()},
                  folder / "logits.safetensors")
        index[name] = dict(
            config=jsonable(json.loads((folder / "adapter_config.json").read_text())),
            requested=cfg, adapter_keys=keys, lora_modules=[m.replace("base_model.model.", "", 1) for m in lora_modules],
            trainable_params=trainable, all_params=total,
            max_abs_diff_logits_vs_base=float((logits - base_logits).abs().max()),
            max_abs_diff_merged_vs_unmerged=float((merged_logits - logits).abs().max()),
            max_abs_diff_reloaded_vs_in_memory=reload_diff, lm_head_tied_in_base=tied_before)
        print("variant", name, trainable, total, index[name]["max_abs_diff_merged_vs_unmerged"])
    (OUT / "variants" / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    return index


def old_naming(batch):
    folder = OUT / "old_naming"
    folder.mkdir()
    src = OUT / "adapter_start"
    tensors = load_file(src / "adapter_model.safetensors")
    renamed = {k.replace("base_model.model.model.language_model.", "base_model.model.model."): v
               for k, v in tensors.items()}
    save_file(renamed, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    shutil.copy(src / "adapter_config.json", folder / "adapter_config.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(load_base(), folder).eval()
    loaded = {saved_key(n): p.detach() for n, p in model.named_parameters() if "lora_" in n}
    match = {k: bool(torch.equal(loaded[k], tensors[k])) for k in tensors}
    start = PeftModel.from_pretrained(load_base(), src).eval()
    # the rule transformers 4.52-4.57 kept in Qwen2VLForConditionalGeneration._checkpoint_conversion_mapping (PEFT
    # applies that attribute by default; transformers 5.x models no longer carry it)
    mapping = {"^visual": "model.visual", r"^model(?!\.(language_model|visual))": "model.language_model"}
    mapped = PeftModel.from_pretrained(load_base(), folder, key_mapping=mapping).eval()
    mapped_ok = all(torch.equal(p.detach(), tensors[saved_key(n)]) for n, p in mapped.named_parameters() if "lora_" in n)
    with torch.no_grad():
        ref = forward_logits(start, batch)
        diff = float((forward_logits(model, batch) - ref).abs().max())
        diff_base = float((forward_logits(model, batch) - forward_logits(load_base().eval(), batch)).abs().max())
        diff_mapped = float((forward_logits(mapped, batch) - ref).abs().max())
    result = dict(peft=peft.__version__, transformers=transformers.__version__,
                  renamed_keys=sorted(renamed), all_lora_weights_loaded=all(match.values()), per_key=match,
                  max_abs_diff_logits_vs_adapter_start=diff, max_abs_diff_logits_vs_base_model=diff_base,
                  has_checkpoint_conversion_mapping=hasattr(load_base(), "_checkpoint_conversion_mapping"),
                  explicit_key_mapping=mapping, explicit_key_mapping_loads_all=mapped_ok,
                  explicit_key_mapping_max_abs_diff_logits_vs_adapter_start=diff_mapped,
                  warnings=sorted({str(w.message)[:400] for w in caught if "missing" in str(w.message).lower()
                                   or "unexpected" in str(w.message).lower()}))
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT stores target_modules from a set: fix its order
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if OUT.exists():
        keep = OUT / "README.md"
        readme = keep.read_text() if keep.exists() else None
        shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        if readme is not None:
            keep.write_text(readme)
    else:
        OUT.mkdir(parents=True)
    write_data()
    processor = make_processor()
    examples = tokenize(processor)
    make_start_adapter()
    batch, loss, n = one_step(examples)
    print("one_step loss", loss, "predicted tokens", n)
    orders, updates = curve(examples)
    for u in updates:
        print("update", u["step"], u["loss"], u["grad_norm"], u["learning_rate"])
    res = trainer_run(examples, orders, updates)
    print("trainer same order", res["same_data_order"], "final adapter diff",
          res["max_abs_diff_final_adapter_vs_explicit"])
    for r in res["compared"]:
        print("trainer", r["step"], r["trainer_loss"], r["explicit_loss"], r["ratio"])
    variants(batch)
    print("old naming", old_naming(batch)["all_lora_weights_loaded"])
    (OUT / "VERSIONS.json").write_text(json.dumps(dict(torch=torch.__version__, transformers=transformers.__version__,
                                                       peft=peft.__version__, safetensors=safetensors.__version__,
                                                       pillow=Image.__version__), indent=1) + "\n")


if __name__ == "__main__":
    main()
