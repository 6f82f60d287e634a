"""Writes tests/fixtures/generate/: reference outputs of transformers' generate() on a tiny deterministic
"bigram" language model (next-token logits = table[last token]), so the C++ generation engine can be checked
token for token (greedy, beam search with every early_stopping mode and length penalties, repetition penalty,
min_new_tokens, several EOS ids, left-padded batches), and the outputs of transformers' logits processors
(temperature, top-k, top-p, repetition penalty, min-new-tokens) on random score rows.

Run: tools/oracle/.venv/bin/python tools/oracle/gen_generate_fixtures.py
"""
import json
import pathlib

import torch
import transformers
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel
from transformers.generation import GenerationMixin
from transformers.generation.logits_process import (MinNewTokensLengthLogitsProcessor,
                                                    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                    TopKLogitsWarper, TopPLogitsWarper)
from transformers.modeling_outputs import CausalLMOutputWithPast

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "generate"
VOCAB = 24


class BigramConfig(PretrainedConfig):
    model_type = "vlmrt_bigram"

    def __init__(self, vocab_size=VOCAB, **kw):
        self.vocab_size = vocab_size
        super().__init__(**kw)


class BigramLM(PreTrainedModel, GenerationMixin):
    config_class = BigramConfig
    main_input_name = "input_ids"

    def __init__(self, config, table):
        super().__init__(config)
        self.table = torch.nn.Parameter(table.clone(), requires_grad=False)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        return CausalLMOutputWithPast(logits=self.table[input_ids])

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        return {"input_ids": input_ids}


def make_table(seed):
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(VOCAB, VOCAB, generator=g) * 2.0
    return table


def run(model, prompts, pad_id, **gen):
    """Left-pads the prompts into one batch and returns the generated tokens of each row (prompt removed)."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    cfg = GenerationConfig(pad_token_id=pad_id, use_cache=False, **gen)
    out = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
    return out[:, width:].tolist()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = []
    prompts = [[5, 9, 2], [7], [11, 4, 4, 6, 1], [20, 13]]
    settings = [
        {"name": "greedy", "max_new_tokens": 12},
        {"name": "greedy_two_eos", "max_new_tokens": 15, "eos_token_id": [3, 8]},
        {"name": "greedy_repetition", "max_new_tokens": 14, "repetition_penalty": 1.7},
        {"name": "greedy_repetition_below_one", "max_new_tokens": 10, "repetition_penalty": 0.6},
        {"name": "greedy_min_new", "max_new_tokens": 12, "min_new_tokens": 6, "eos_token_id": [3, 8]},
        {"name": "beam3", "max_new_tokens": 10, "num_beams": 3},
        {"name": "beam4_early_true", "max_new_tokens": 10, "num_beams": 4, "early_stopping": True},
        {"name": "beam4_early_never", "max_new_tokens": 10, "num_beams": 4, "early_stopping": "never"},
        {"name": "beam3_lp0", "max_new_tokens": 9, "num_beams": 3, "length_penalty": 0.0},
        {"name": "beam3_lp2", "max_new_tokens": 9, "num_beams": 3, "length_penalty": 2.0},
        {"name": "beam3_lp_neg", "max_new_tokens": 9, "num_beams": 3, "length_penalty": -1.0,
         "early_stopping": "never"},
        {"name": "beam2_two_eos_rep", "max_new_tokens": 11, "num_beams": 2, "eos_token_id": [3, 8],
         "repetition_penalty": 1.3},
        {"name": "beam3_min_new", "max_new_tokens": 8, "num_beams": 3, "min_new_tokens": 4},
    ]
    for seed in (0, 1):
        table = make_table(seed)
        # Make token 3 (an EOS) likely after a few tokens so that sequences finish at different steps.
        table[:, 3] += torch.linspace(-3, 2.5, VOCAB)
        model = BigramLM(BigramConfig(), table).eval()
        for s in settings:
            gen = {k: v for k, v in s.items() if k != "name"}
            gen.setdefault("eos_token_id", 3)
            one_by_one = [run(model, [p], 0, **gen)[0] for p in prompts]
            batched = run(model, prompts, 0, **gen)
            cases.append({"name": f"{s['name']}_seed{seed}", "seed": seed, "options": gen, "prompts": prompts,
                          "pad_token_id": 0, "one_by_one": one_by_one, "batched": batched})
        torch.save  # tables are saved below as JSON for the C++ test double
        (OUT / f"bigram_table_seed{seed}.json").write_text(json.dumps(table.tolist()) + "\n")

    # Logits processors on random rows.
    g = torch.Generator().manual_seed(7)
    scores = torch.randn(3, VOCAB, generator=g) * 3
    input_ids = torch.tensor([[1, 5, 5, 9], [2, 2, 2, 2], [0, 23, 7, 3]])
    processors = {
        "temperature_0.7": TemperatureLogitsWarper(0.7),
        "top_k_5": TopKLogitsWarper(5),
        "top_p_0.8": TopPLogitsWarper(0.8),
        "top_p_0.01": TopPLogitsWarper(0.01),
        "repetition_1.5": RepetitionPenaltyLogitsProcessor(1.5),
        "min_new_2_of_6": MinNewTokensLengthLogitsProcessor(prompt_length_to_skip=1, min_new_tokens=6,
                                                            eos_token_id=[3, 7]),
    }
    processed = {name: p(input_ids, scores.clone()).tolist() for name, p in processors.items()}
    processed = {k: [[None if v == float("-inf") else v for v in row] for row in rows] for k, rows in processed.items()}
    (OUT / "processors.json").write_text(json.dumps({"scores": scores.tolist(), "input_ids": input_ids.tolist(),
                                                      "processed": processed}) + "\n")
    (OUT / "cases.json").write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                                                "vocab": VOCAB, "cases": cases}, indent=None) + "\n")
    print("wrote", len(cases), "cases to", OUT)


if __name__ == "__main__":
    main()
