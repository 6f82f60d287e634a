"""Writes tests/fixtures/spm/: a tiny SentencePiece model trained by the reference `sentencepiece` package and
the ids it gives for a few strings. Used to prove that SentencePiece (run through vlmrt's plugin) and libtorch
work in one process.

Run: tools/oracle/.venv/bin/python tools/oracle/gen_spm_fixture.py
"""
import io
import json
import pathlib
import shutil

import sentencepiece as spm

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "spm"

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a picture of a living room with a sofa and a lamp",
    "panoramic view of a kitchen, a table and four chairs",
    "two cats sleep on the bed next to the window",
] * 20

SAMPLES = ["the lazy dog", "A living room!", "four chairs and a sofa", "", "unseen wörds ✓"]


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=50,
                                   model_type="unigram", character_coverage=1.0, byte_fallback=False,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
    (OUT / "tokenizer.model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    expected = [{"text": s, "ids": sp.encode(s), "decoded": sp.decode(sp.encode(s))} for s in SAMPLES]
    (OUT / "expected.json").write_text(json.dumps({"sentencepiece": spm.__version__, "samples": expected},
                                                  ensure_ascii=False, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
