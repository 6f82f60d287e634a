#!/usr/bin/env python3
"""Differential fuzzing of the metrics tokenizers and scores against the pinned Python packages.

Random strings over a pool of tricky characters and pieces (quotes, dashes, contractions, Unicode case and
whitespace corner cases) go through bench/metrics/metrics_probe (C++) and through sacrebleu's 13a tokenizer,
nltk word_tokenize(preserve_line=True), rouge_score's tokenizer (with and without Porter), str.lower,
PorterStemmer, sacrebleu sentence_bleu and nltk meteor_score without WordNet. Prints the number of mismatches per
check and the first few.

Usage: tools/oracle/.venv/bin/python tools/oracle/fuzz_metrics.py build-metrics/bench/metrics/metrics_probe \
           --nltk-data build-metrics/nltk_data [--seed 1] [--cases 3000]
(--nltk-data: the folder with tokenizers/punkt_tab/english from tools/oracle/gen_metrics_punkt_data.py)
"""
import argparse
import json
import random
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")

POOL = list("abcdeiIsSkKtTnNoO  .,;:!?'\"`()[]{}<>-—–*&@#$%0123456789\n\t") + [
    ". ", ". ", "! ", "? ", "Mr. ", "Dr. ", "U.S. ", "e.g. ", "J. ", "3. ", "The ", "He ", "A ", "...", "\n\n",
    "İ", "ı", "ſ", "\u212a", "Σ", "σ", "ς", "«", "»", "“", "”", "‘", "’", "„", "\u00a0", "\u2009", "\u3000", "\x1c",
    "\x85", "é", "ß", "ǅ", "ﬁ", "🙂", "猫", "\u0301", "''", "``", "--", "...", "n't", "'s", "'ll", "can", "not", "gon",
    "na", "wan", "'t", "is", "was", "gim", "me", "lem", "d", "'ye", "more", "'n", "ing", "ed", "ies", "sses",
    "ational", "ization", "&amp;", "&lt;", "<skipped>", "-\n"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe")
    ap.add_argument("--nltk-data", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000)
    args = ap.parse_args()

    import os
    import nltk
    nltk.data.path[:] = [os.path.abspath(args.nltk_data)]
    import sacrebleu
    from nltk.stem.porter import PorterStemmer
    from nltk.tokenize import word_tokenize
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import tokenize as rouge_tokenize
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    class NoWordNet:
        def synsets(self, word):
            return []

    rng = random.Random(args.seed)
    cases = []
    for _ in range(args.cases):
        t = "".join(rng.choice(POOL) for _ in range(rng.randint(0, 25)))
        r = "".join(rng.choice(POOL) for _ in range(rng.randint(0, 25)))
        cases.append((t, r))
    stdin = "".join(json.dumps({"text": t, "ref": r}) + "\n" for t, r in cases)
    out = subprocess.run([args.probe], input=stdin, capture_output=True, text=True, check=True).stdout.split("\n")
    tok13a, stemmer = Tokenizer13a(), PorterStemmer()
    tok = lambda s: word_tokenize(s, preserve_line=True)
    bad = {}
    for (t, r), line in zip(cases, out):
        got = json.loads(line)
        expected = {
            "13a": tok13a(t.rstrip()), "nltk": tok(t), "nltk_punkt": word_tokenize(t), "rouge": rouge_tokenize.tokenize(t, None),
            "rouge_stem": rouge_tokenize.tokenize(t, stemmer), "lower": t.lower(),
            "stems": [stemmer.stem(w) for w in t.split()], "bleu": sacrebleu.sentence_bleu(t, [r]).score,
            "meteor_nown": meteor_score([tok(r)], tok(t), wordnet=NoWordNet()),
        }
        for key, value in expected.items():
            ok = abs(got.get(key, float("nan")) - value) <= 1e-9 if isinstance(value, float) else got.get(key) == value
            if not ok:
                bad.setdefault(key, []).append((t, got.get(key, got.get("error")), value))
    print(f"{len(cases)} cases (seed {args.seed}); mismatches: {({k: len(v) for k, v in bad.items()}) or 'none'}")
    for key, items in bad.items():
        for t, got, value in items[:3]:
            print(f"  {key}: {t!r}: vlmrt {got!r}, reference {value!r}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
