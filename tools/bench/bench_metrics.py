#!/usr/bin/env python3
"""Metrics benchmark: vlmrt (bench/metrics/bench_metrics) vs the Python reference packages, in the same run.

Scores N prediction/reference pairs (default 10,000, built like the conformance corpus) with the full metric set:
HF exact_match (plain and whitespace-normalised), sacrebleu corpus_bleu + sentence_bleu per pair, nltk meteor_score
(HF evaluate settings, WordNet, word_tokenize with Punkt), rouge_score rougeL + rougeLsum (score_multi),
and token statistics. Both sides load WordNet before the clock starts. Prints both times, the ratio, and the largest
difference between the two sides' numbers.

Usage (from the repository root, after building with -DVLMRT_BUILD_BENCH=ON (target bench_metrics), running
scripts/make_wordnet_lexnames.sh and tools/oracle/gen_metrics_punkt_data.py):
  tools/oracle/.venv/bin/python tools/bench/bench_metrics.py \
      --native build-metrics/bench/metrics/bench_metrics --nltk-data build-metrics/nltk_data [--pairs 10000]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--native", required=True, help="path of the bench_metrics program")
    ap.add_argument("--nltk-data", required=True, help="folder with corpora/wordnet (make_wordnet_lexnames.sh)")
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3, help="native repetitions (best time is reported)")
    args = ap.parse_args()

    import nltk
    nltk.data.path[:] = [os.path.abspath(args.nltk_data)]
    from nltk.corpus import wordnet as wn
    from nltk.tokenize import word_tokenize
    from nltk.translate.meteor_score import meteor_score
    import sacrebleu
    from rouge_score import rouge_scorer
    import gen_metrics_fixtures as gen

    t0 = time.perf_counter()
    wn.synsets("dog")  # loads the WordNet indices
    py_load = time.perf_counter() - t0

    examples = []
    seed = gen.SEED + 1000
    while len(examples) < args.pairs:
        examples.extend(gen.build_corpus(random.Random(seed), wn))
        seed += 1
    examples = examples[: args.pairs]
    preds = [e["prediction"] for e in examples]
    refs = [e["references"] for e in examples]

    with tempfile.TemporaryDirectory() as tmp:
        pairs_path = os.path.join(tmp, "pairs.jsonl")
        with open(pairs_path, "w", encoding="utf-8") as f:
            for p, rs in zip(preds, refs):
                f.write(json.dumps({"prediction": p, "references": rs}, ensure_ascii=False) + "\n")

        # ---- Python reference packages
        tok = word_tokenize  # as HF evaluate calls it (Punkt sentences, then NLTKWordTokenizer)
        t0 = time.perf_counter()
        em = gen.exact_match_per_example(preds, refs)
        em_norm = gen.exact_match_per_example(preds, refs, normalize=True)
        max_refs = max(len(r) for r in refs)
        streams = [[r[k] if k < len(r) else None for r in refs] for k in range(max_refs)]
        bleu = sacrebleu.corpus_bleu(preds, streams).score
        sbleu = [sacrebleu.sentence_bleu(p, rs).score for p, rs in zip(preds, refs)]
        meteor = [meteor_score([tok(r) for r in rs], tok(p), alpha=0.9, beta=3.0, gamma=0.5)
                  for p, rs in zip(preds, refs)]
        scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=False)
        rouge = [scorer.score_multi(rs, p) for p, rs in zip(preds, refs)]
        rl = [s["rougeL"].fmeasure for s in rouge]
        rlsum = [s["rougeLsum"].fmeasure for s in rouge]
        pred_words = [len(p.split()) for p in preds]
        ref_words = [len(r.split()) for rs in refs for r in rs]
        pred_tokens = [len(p.encode("utf-8")) // 4 + 1 for p in preds]
        stats = {k: (float(np.mean(v)), float(np.median(v)), int(np.max(v)))
                 for k, v in (("pred_words", pred_words), ("ref_words", ref_words), ("pred_tokens", pred_tokens))}
        py_seconds = time.perf_counter() - t0
        py = {"exact_match": float(np.mean(em)), "exact_match_normalized": float(np.mean(em_norm)), "bleu": bleu,
              "sentence_bleu": float(np.mean(sbleu)), "meteor": float(np.mean(meteor)), "rougeL": float(np.mean(rl)),
              "rougeLsum": float(np.mean(rlsum))}

        # ---- vlmrt
        def run_native(threads):
            out_json = os.path.join(tmp, f"native-{threads}.json")
            proc = subprocess.run([args.native, pairs_path, "--repeat", str(args.repeat), "--threads", str(threads),
                                   "--json", out_json], capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"native benchmark failed ({proc.returncode}): {proc.stderr}")
            with open(out_json, encoding="utf-8") as f:
                return json.load(f)

        native = run_native(1)
        native_all = run_native(0)

    print(f"pairs: {len(examples)}, CPU threads: {os.cpu_count()}")
    print(f"python (sacrebleu {sacrebleu.__version__}, nltk {nltk.__version__}, rouge_score 0.1.2): "
          f"{py_seconds:.3f} s   (WordNet load {py_load:.3f} s, not counted)")
    for label, result in (("1 thread", native), (f"all {os.cpu_count()} threads", native_all)):
        print(f"vlmrt, {label}: {result['seconds']:.3f} s best of {args.repeat}   (WordNet load "
              f"{result['wordnet_load_seconds']:.3f} s, not counted)   speed-up {py_seconds / result['seconds']:.1f}x")
    if native_all["metrics"] != native["metrics"] or native_all["examples"] != native["examples"]:
        sys.exit("error: the threaded run's scores differ from the single-threaded run's")
    worst = 0.0
    for name, value in py.items():
        got = native["metrics"][name]["value"]
        worst = max(worst, abs(got - value))
        print(f"  {name:24s} python {value:.12f}  vlmrt {got:.12f}")
    per = native["examples"]
    for key, values in (("sentence_bleu", sbleu), ("meteor", meteor), ("rougeL", rl), ("rougeLsum", rlsum),
                        ("exact_match", em), ("exact_match_normalized", em_norm)):
        worst = max(worst, max(abs(per[i][key] - values[i]) for i in range(len(values))))
    ts = native["token_statistics"]
    for key, native_key in (("pred_words", "prediction_words"), ("ref_words", "reference_words"),
                            ("pred_tokens", "prediction_tokens")):
        mean, median, mx = stats[key]
        n = ts[native_key]
        worst = max(worst, abs(n["mean"] - mean), abs(n["median"] - median), abs(n["max"] - mx))
    print(f"largest difference (corpus, per pair, token statistics): {worst:.3g}")


if __name__ == "__main__":
    main()
