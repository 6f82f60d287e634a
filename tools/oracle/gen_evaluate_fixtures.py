"""Writes tests/fixtures/evaluate/: a small evaluation CSV over the session fixture's images, and what the reference
libraries make of it, for vlm_evaluate's end-to-end check:
  * the answers of transformers' generate() (greedy, max_new_tokens 6) for every row, the prompt built as vlmrt's
    evaluation builds it (optional system message, then one user turn: the image, then the prompt template with
    {query} replaced), for the tiny Qwen2-VL (tests/fixtures/session/qwen2_vl_tiny) alone and with the PEFT adapter
    tests/fixtures/train/adapter_after_curve loaded by peft.PeftModel.from_pretrained;
  * the corpus metrics of those answers against the CSV's references from the reference packages: sacrebleu
    corpus_bleu, rouge_score RougeScorer rougeL/rougeLsum (mean F-measure), and HF evaluate's exact_match restated
    (a mean of string equality; the `evaluate` package fetches that code from the Hub, which is unreachable).
    METEOR needs nltk's WordNet and Punkt data (see gen_metrics_fixtures.py); it is checked against core/metrics.

Run (after gen_session_fixtures.py and gen_train_fixtures.py):
  tools/oracle/.venv/bin/python tools/oracle/gen_evaluate_fixtures.py
"""
import csv
import io
import json
import pathlib

import numpy as np
import peft
import sacrebleu
import torch
import transformers
from peft import PeftModel
from PIL import Image
from rouge_score import rouge_scorer
from transformers import AutoModelForImageTextToText, PreTrainedTokenizerFast
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"
OUT = ROOT / "evaluate"
BASE = ROOT / "session" / "qwen2_vl_tiny"
ADAPTER = ROOT / "train" / "adapter_after_curve"
MAX_NEW_TOKENS = 6
PROMPT_TEMPLATE = "Question : {query}"
SYSTEM_MESSAGE = "You are a helpful assistant ."
# (image relative to the CSV's folder, query)
ROWS = [("../session/wide.png", "Describe this image ."),
        ("../session/tall.png", "What is in the room ?"),
        ("../session/square.png", "how many cats and dog ?"),
        ("../session/wide.png", "what color is the sofa ?"),
        ("../session/square.png", "Describe this picture .")]


def make_processor():
    tokenizer = PreTrainedTokenizerFast.from_pretrained(BASE)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(BASE)
    # torchvision (needed only by the video processor class check) is not in the pinned environment; no videos here
    transformers.processing_utils.ProcessorMixin.check_argument_for_proper_class = lambda self, name, arg: arg
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                            chat_template=(BASE / "chat_template.jinja").read_text())


def load_base():
    return AutoModelForImageTextToText.from_pretrained(BASE, attn_implementation="eager", dtype=torch.float32).eval()


def answers(model, processor):
    out = []
    for image_path, query in ROWS:
        messages = [{"role": "system", "content": SYSTEM_MESSAGE},
                    {"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": PROMPT_TEMPLATE.replace("{query}", query)}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        image = Image.open(OUT / image_path).convert("RGB")
        inputs = processor(text=[text], images=[image], return_tensors="pt")
        with torch.no_grad():
            generated = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                       pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                                       mm_token_type_ids=inputs["mm_token_type_ids"], do_sample=False,
                                       max_new_tokens=MAX_NEW_TOKENS, eos_token_id=2, pad_token_id=0)
        new = generated[0, inputs["input_ids"].shape[1]:].tolist()
        out.append({"tokens": new, "text": processor.batch_decode([new], skip_special_tokens=True)[0]})
    return out


def corpus_metrics(predictions, references):
    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=False)
    rouge = [scorer.score_multi([r], p) for p, r in zip(predictions, references)]
    return {
        "exact_match": float(np.mean([p == r for p, r in zip(predictions, references)])),
        "bleu": sacrebleu.corpus_bleu(predictions, [references]).score,
        "sentence_bleu": float(np.mean([sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(predictions, references)])),
        "rougeL": float(np.mean([s["rougeL"].fmeasure for s in rouge])),
        "rougeLsum": float(np.mean([s["rougeLsum"].fmeasure for s in rouge])),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    processor = make_processor()
    base = answers(load_base(), processor)
    tuned = answers(PeftModel.from_pretrained(load_base(), ADAPTER).eval(), processor)
    # References chosen so that the metrics are neither all 0 nor all 1: row 0 is the base model's answer, row 3
    # the adapter's, the others share some words with the answers.
    references = [base[0]["text"],
                  " ".join(base[1]["text"].split()[:2] + ["sofa", "lamp"]),
                  "two cats and a dog",
                  tuned[3]["text"],
                  " ".join(tuned[4]["text"].split()[-2:] + ["picture"])]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["url", "query", "annotation"])
    for (image_path, query), reference in zip(ROWS, references):
        writer.writerow([image_path, query, reference])
    (OUT / "val.csv").write_text(buffer.getvalue())
    result = {
        "transformers": transformers.__version__, "torch": torch.__version__, "peft": peft.__version__,
        "sacrebleu": sacrebleu.__version__, "rouge_score": "0.1.2",
        "max_new_tokens": MAX_NEW_TOKENS, "prompt_template": PROMPT_TEMPLATE, "system_message": SYSTEM_MESSAGE,
        "adapter": "../train/adapter_after_curve",
        "references": references,
        "base": {"predictions": base, "metrics": corpus_metrics([b["text"] for b in base], references)},
        "adapter_run": {"predictions": tuned, "metrics": corpus_metrics([t["text"] for t in tuned], references)},
    }
    (OUT / "expected.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k]["metrics"] for k in ("base", "adapter_run")}, indent=1))
    print([b["text"] for b in base])
    print([t["text"] for t in tuned])


if __name__ == "__main__":
    main()
